//! The scheduling queue shared by the event handlers (which add pods and report cluster changes), the
//! scheduling loop (which pops them) and a flusher (which ends backoffs). The logic lives in
//! [`state::QueueState`]; this wraps it in a lock and wakes the loop when a pod becomes active.

pub mod state;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use tokio::sync::Notify;

pub use state::{Lengths, QueueState, QueuedPod, Where};

/// How often backoff expiry is checked (upstream flushes the backoff queue every second).
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct SchedulingQueue {
    state: Mutex<QueueState>,
    wake: Notify,
}

impl SchedulingQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// A queue over `state` (built with the profiles' QueueSort and PreEnqueue plugins).
    pub fn with_state(state: QueueState) -> Self {
        Self { state: Mutex::new(state), wake: Notify::new() }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // A panic while holding the lock cannot leave the state half-updated in a way that matters more
        // than stopping the scheduler would, so keep going with the inner value.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn after<T>(&self, f: impl FnOnce(&mut QueueState) -> T) -> T {
        let mut s = self.lock();
        let out = f(&mut s);
        if s.has_active() {
            self.wake.notify_one();
        }
        out
    }

    pub fn add_or_update(&self, pod: Arc<Pod>) {
        self.after(|s| s.add_or_update(pod, Instant::now()));
    }

    pub fn delete(&self, key: &str) {
        self.lock().delete(key);
    }

    pub fn done(&self, key: &str) {
        self.lock().done(key);
    }

    pub fn add_unschedulable(&self, qp: QueuedPod, cycle: u64) {
        self.after(|s| s.add_unschedulable(qp, cycle, Instant::now()));
    }

    pub fn add_backoff(&self, qp: QueuedPod) {
        self.after(|s| s.add_backoff(qp, Instant::now()));
    }

    pub fn move_all_to_active_or_backoff(&self) {
        self.after(|s| s.move_all_to_active_or_backoff(Instant::now()));
    }

    /// Retries the unschedulable pods `affected` picks (see [`QueueState::move_to_active_or_backoff_where`]).
    pub fn move_to_active_or_backoff_where(&self, affected: impl Fn(&Pod) -> bool) {
        self.after(|s| s.move_to_active_or_backoff_where(Instant::now(), affected));
    }

    pub fn flush(&self) {
        self.after(|s| s.flush(Instant::now()));
    }

    pub fn lengths(&self) -> Lengths {
        self.lock().lengths()
    }

    /// Waits for an active pod and takes it, with the scheduling cycle it was popped in.
    pub async fn pop(&self) -> (QueuedPod, u64) {
        loop {
            let notified = self.wake.notified();
            if let Some(popped) = self.lock().pop() {
                return popped;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::pod;

    #[tokio::test]
    async fn pop_wakes_when_a_pod_arrives() {
        let q = Arc::new(SchedulingQueue::new());
        let popper = tokio::spawn({
            let q = q.clone();
            async move { q.pop().await.0.key }
        });
        tokio::task::yield_now().await;
        q.add_or_update(Arc::new(pod("p")));
        let key = tokio::time::timeout(Duration::from_secs(5), popper).await;
        assert_eq!(key.ok().and_then(Result::ok).as_deref(), Some("default/p"));
    }
}

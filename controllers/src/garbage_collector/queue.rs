//! A de-duplicating work queue with per-item retry backoff.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::graph::Work;

const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Default)]
struct State {
    order: VecDeque<Work>,
    queued: HashSet<Work>,
    failures: HashMap<Work, u32>,
}

#[derive(Default, Clone)]
pub struct Queue {
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn push(&self, work: Work) {
        let mut state = self.lock();
        if state.queued.insert(work.clone()) {
            state.order.push_back(work);
            drop(state);
            self.notify.notify_one();
        }
    }

    pub fn extend(&self, work: impl IntoIterator<Item = Work>) {
        for w in work {
            self.push(w);
        }
    }

    /// The next item, waiting for one if the queue is empty.
    pub async fn pop(&self) -> Work {
        loop {
            let notified = self.notify.notified();
            if let Some(work) = {
                let mut state = self.lock();
                let next = state.order.pop_front();
                if let Some(w) = &next {
                    state.queued.remove(w);
                }
                next
            } {
                return work;
            }
            notified.await;
        }
    }

    /// Queues `work` again after a delay that doubles with each consecutive failure.
    pub fn retry(&self, work: Work) {
        let attempts = {
            let mut state = self.lock();
            let n = state.failures.entry(work.clone()).or_default();
            *n = n.saturating_add(1);
            *n
        };
        let delay = backoff(attempts);
        let queue = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queue.push(work);
        });
    }

    pub fn succeeded(&self, work: &Work) {
        self.lock().failures.remove(work);
    }
}

/// 200ms, 400ms, … capped at a minute.
pub fn backoff(attempts: u32) -> Duration {
    let factor = 1u64.checked_shl(attempts.saturating_sub(1).min(20)).unwrap_or(u64::MAX);
    Duration::from_millis(200u64.saturating_mul(factor)).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn deduplicates_and_keeps_order() {
        let q = Queue::default();
        q.push(Work::AttemptToDelete("a".into()));
        q.push(Work::AttemptToDelete("b".into()));
        q.push(Work::AttemptToDelete("a".into()));
        assert_eq!(q.pop().await, Work::AttemptToDelete("a".into()));
        assert_eq!(q.pop().await, Work::AttemptToDelete("b".into()));
        assert!(q.lock().order.is_empty());
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(2), Duration::from_millis(400));
        assert_eq!(backoff(50), MAX_BACKOFF);
    }
}

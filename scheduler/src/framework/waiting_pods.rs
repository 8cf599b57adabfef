//! Pods a Permit plugin told to wait, between the scheduling cycle and binding (upstream's waiting pods
//! map). Each waiting plugin has its own deadline; the pod binds once every one of them allowed it, and is
//! rejected when any rejects it or its deadline passes first.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::Status;

struct Entry {
    /// Plugins that have not allowed the pod yet, with their deadlines and timeouts.
    pending: BTreeMap<&'static str, (Instant, Duration)>,
    verdict: Option<oneshot::Sender<Status>>,
}

/// The pods waiting on Permit plugins, by `namespace/name`. Plugins reach it through the
/// [`Handle`](super::Handle) to allow or reject pods other than the one they are asked about.
#[derive(Default)]
pub struct WaitingPods {
    pods: Mutex<HashMap<String, Entry>>,
}

/// One pod's wait, returned by [`WaitingPods::add`] and consumed by [`Waiter::wait`].
pub struct Waiter {
    key: String,
    pods: Arc<WaitingPods>,
    verdict: oneshot::Receiver<Status>,
}

impl WaitingPods {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.pods.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers `key` as waiting on `plugins` (each with how long it may take).
    pub fn add(self: &Arc<Self>, key: &str, plugins: &[(&'static str, Duration)]) -> Waiter {
        let now = Instant::now();
        let (tx, rx) = oneshot::channel();
        let pending = plugins.iter().map(|(p, d)| (*p, (now + *d, *d))).collect();
        self.lock().insert(key.to_string(), Entry { pending, verdict: Some(tx) });
        Waiter { key: key.to_string(), pods: self.clone(), verdict: rx }
    }

    /// `plugin` lets the pod go; it binds once no plugin is left. False if the pod is not waiting.
    pub fn allow(&self, key: &str, plugin: &str) -> bool {
        let mut pods = self.lock();
        let Some(entry) = pods.get_mut(key) else { return false };
        entry.pending.remove(plugin);
        if entry.pending.is_empty()
            && let Some(tx) = pods.remove(key).and_then(|mut e| e.verdict.take())
        {
            let _ = tx.send(Status::success());
        }
        true
    }

    /// Turns the pod down (it goes back to the queue as unschedulable). False if it is not waiting.
    pub fn reject(&self, key: &str, plugin: &'static str, message: &str) -> bool {
        let Some(tx) = self.lock().remove(key).and_then(|mut e| e.verdict.take()) else { return false };
        let _ = tx.send(Status::unschedulable(message).with_plugin(plugin));
        true
    }

    pub fn is_waiting(&self, key: &str) -> bool {
        self.lock().contains_key(key)
    }

    /// The earliest deadline of a plugin still pending: the plugin, the deadline and its timeout.
    fn next_deadline(&self, key: &str) -> Option<(&'static str, Instant, Duration)> {
        self.lock().get(key).and_then(|e| e.pending.iter().min_by_key(|(_, (d, _))| *d).map(|(p, (d, t))| (*p, *d, *t)))
    }
}

impl Waiter {
    /// Waits for the verdict, or rejects the pod when a plugin's deadline passes first.
    pub async fn wait(mut self) -> Status {
        loop {
            let Some((plugin, deadline, timeout)) = self.pods.next_deadline(&self.key) else {
                // Decided already: the verdict is in the channel (or the sender went away).
                return (&mut self.verdict).await.unwrap_or_else(|_| Status::error("waiting pod dropped without a verdict"));
            };
            tokio::select! {
                verdict = &mut self.verdict => {
                    return verdict.unwrap_or_else(|_| Status::error("waiting pod dropped without a verdict"));
                }
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                    if self.pods.next_deadline(&self.key).is_some_and(|(p, d, _)| p == plugin && d <= Instant::now()) {
                        let message = format!("rejected due to timeout after waiting {timeout:?} at plugin {plugin}");
                        self.pods.reject(&self.key, plugin, &message);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;

    #[tokio::test]
    async fn verdicts() {
        let pods = Arc::new(WaitingPods::default());
        let long = Duration::from_secs(60);

        let w = pods.add("ns/allowed", &[("A", long), ("B", long)]);
        assert!(pods.allow("ns/allowed", "A"));
        assert!(pods.is_waiting("ns/allowed"), "B has not allowed it yet");
        assert!(pods.allow("ns/allowed", "B"));
        assert_eq!(w.wait().await.code(), Code::Success);
        assert!(!pods.is_waiting("ns/allowed"));

        let w = pods.add("ns/rejected", &[("A", long)]);
        assert!(pods.reject("ns/rejected", "A", "no quorum"));
        let s = w.wait().await;
        assert_eq!((s.code(), s.message(), s.plugin()), (Code::Unschedulable, "no quorum".to_string(), Some("A")));

        let w = pods.add("ns/late", &[("A", long), ("Slow", Duration::from_millis(20))]);
        let s = w.wait().await;
        assert_eq!((s.code(), s.plugin()), (Code::Unschedulable, Some("Slow")));
        assert!(s.message().starts_with("rejected due to timeout after waiting"), "{}", s.message());

        assert!(!pods.allow("ns/unknown", "A") && !pods.reject("ns/unknown", "A", "x"));
    }
}

//! Publishes the scheduler's events through kube-runtime's `Recorder`, from a bounded queue that one task
//! drains in order, as upstream's event broadcaster does: scheduling and binding never wait for an event
//! to be written, and when the apiserver falls behind (a burst of thousands of pods) the events that do
//! not fit in the queue are dropped instead of competing with the bindings for it.
//!
//! The Recorder folds repeats into an event series keyed by reason but not by note, so a pod whose failure
//! message changes would keep showing its first message. Upstream starts a new event when the message
//! changes; this does the same by giving each pending pod its own Recorder, replaced whenever the note
//! differs from the last one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::sync::mpsc;

use crate::framework::node_info::pod_key;

/// Events waiting to be written, at most (client-go's `maxQueuedEvents`).
pub const MAX_QUEUED_EVENTS: usize = 1000;

struct Queued {
    recorder: Recorder,
    event: Event,
    reference: ObjectReference,
    key: String,
}

pub struct PodEvents {
    client: kube::Client,
    reporter: Reporter,
    /// Pod key → (last note, the Recorder that published it).
    per_pod: Mutex<HashMap<String, (String, Recorder)>>,
    queue: mpsc::Sender<Queued>,
    dropped: AtomicU64,
}

impl PodEvents {
    /// Starts the task that writes the events, so it must be called inside a Tokio runtime.
    pub fn new(client: kube::Client, reporter: Reporter) -> Self {
        let (queue, mut pending) = mpsc::channel::<Queued>(MAX_QUEUED_EVENTS);
        tokio::spawn(async move {
            while let Some(q) = pending.recv().await {
                if let Err(e) = q.recorder.publish(&q.event, &q.reference).await {
                    tracing::warn!(pod = %q.key, reason = %q.event.reason, error = %e, "failed to publish event");
                }
            }
        });
        Self { client, reporter, per_pod: Mutex::default(), queue, dropped: AtomicU64::new(0) }
    }

    /// Queues an event about `pod`; a full queue drops it (logged), never blocks.
    pub fn publish(&self, pod: &Pod, type_: EventType, reason: &str, action: &str, note: String) {
        let key = pod_key(pod);
        let recorder = {
            let mut map = self.per_pod.lock().unwrap_or_else(|p| p.into_inner());
            match map.get(&key) {
                Some((last, r)) if *last == note => r.clone(),
                _ => {
                    let r = Recorder::new(self.client.clone(), self.reporter.clone());
                    map.insert(key.clone(), (note.clone(), r.clone()));
                    r
                }
            }
        };
        let reference = kube::Resource::object_ref(pod, &());
        let event = Event { type_, reason: reason.into(), note: Some(note), action: action.into(), secondary: None };
        if let Err(mpsc::error::TrySendError::Full(q)) = self.queue.try_send(Queued { recorder, event, reference, key }) {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped == 1 || dropped.is_multiple_of(1000) {
                tracing::warn!(pod = %q.key, reason = %q.event.reason, dropped, "event queue full; dropping events");
            }
        }
    }

    /// Drops the per-pod state of pods for which `keep` is false (scheduled or deleted ones).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.per_pod.lock().unwrap_or_else(|p| p.into_inner()).retain(|k, _| keep(k));
    }

    pub fn forget(&self, key: &str) {
        self.per_pod.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

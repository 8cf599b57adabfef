//! Publishes the scheduler's events through kube-runtime's `Recorder`. The Recorder folds repeats into an
//! event series keyed by reason but not by note, so a pod whose failure message changes would keep showing
//! its first message. Upstream starts a new event when the message changes; this does the same by giving
//! each pending pod its own Recorder, replaced whenever the note differs from the last one.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use crate::framework::node_info::pod_key;

pub struct PodEvents {
    client: kube::Client,
    reporter: Reporter,
    /// Pod key → (last note, the Recorder that published it).
    per_pod: Mutex<HashMap<String, (String, Recorder)>>,
}

impl PodEvents {
    pub fn new(client: kube::Client, reporter: Reporter) -> Self {
        Self { client, reporter, per_pod: Mutex::default() }
    }

    /// Publishes an event about `pod`; failures are logged, never fatal.
    pub async fn publish(&self, pod: &Pod, type_: EventType, reason: &str, action: &str, note: String) {
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
        let ev = Event { type_, reason: reason.into(), note: Some(note), action: action.into(), secondary: None };
        if let Err(e) = recorder.publish(&ev, &reference).await {
            tracing::warn!(pod = %key, reason, error = %e, "failed to publish event");
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

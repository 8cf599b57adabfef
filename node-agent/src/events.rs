//! Pod events with upstream's reasons, published as reporting controller "kubelet" from this node.

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

pub const PULLING: &str = "Pulling";
pub const PULLED: &str = "Pulled";
pub const FAILED: &str = "Failed";
pub const BACK_OFF: &str = "BackOff";
pub const CREATED: &str = "Created";
pub const STARTED: &str = "Started";
pub const KILLING: &str = "Killing";
pub const SANDBOX_CHANGED: &str = "SandboxChanged";
pub const FAILED_CREATE_SANDBOX: &str = "FailedCreatePodSandBox";
pub const FAILED_MOUNT: &str = "FailedMount";
pub const UNHEALTHY: &str = "Unhealthy";

/// Publishes events about pods; failures are logged, never fatal.
#[derive(Clone)]
pub struct PodEvents {
    recorder: Option<Recorder>,
}

/// The reference to a pod, or to one of its containers (`spec.containers{name}`).
pub fn reference(pod: &Pod, container: Option<(&str, bool)>) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        field_path: container.map(|(name, init)| format!("spec.{}{{{name}}}", if init { "initContainers" } else { "containers" })),
    }
}

impl PodEvents {
    pub fn new(client: kube::Client, node_name: &str) -> Self {
        let reporter = Reporter { controller: "kubelet".into(), instance: Some(node_name.to_string()) };
        Self { recorder: Some(Recorder::new(client, reporter)) }
    }

    /// Events go nowhere (tests).
    pub fn disabled() -> Self {
        Self { recorder: None }
    }

    pub async fn normal(&self, reference: &ObjectReference, reason: &str, note: String) {
        self.publish(reference, EventType::Normal, reason, note).await;
    }

    pub async fn warning(&self, reference: &ObjectReference, reason: &str, note: String) {
        self.publish(reference, EventType::Warning, reason, note).await;
    }

    async fn publish(&self, reference: &ObjectReference, type_: EventType, reason: &str, note: String) {
        let Some(recorder) = &self.recorder else { return };
        // The recorder folds events with the same action and reason into one series, whatever the note;
        // `Failed to pull image …` and `Error: ErrImagePull` are distinct events upstream, so the
        // action carries the note's first word.
        let action = format!("{reason}{}", note.split_whitespace().next().unwrap_or_default().trim_end_matches(':'));
        let event = Event { type_, reason: reason.to_string(), note: Some(note), action, secondary: None };
        if let Err(e) = recorder.publish(&event, reference).await {
            tracing::warn!(error = %e, reason, pod = ?reference.name, "failed to publish event");
        }
    }
}

//! Carries out a preemption decision against the API, as upstream's executor does: lower-priority pods
//! nominated to the node lose their nomination (they may no longer fit), and each victim gets the
//! `DisruptionTarget` condition, is deleted gracefully and is told why with a `Preempted` event.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use crate::eligibility::scheduler_name;
use crate::framework::node_info::pod_key;

/// Condition type, reason and event reason/action upstream uses for preemption.
pub const CONDITION_DISRUPTION_TARGET: &str = "DisruptionTarget";
pub const REASON_PREEMPTION_BY_SCHEDULER: &str = "PreemptionByScheduler";
pub const EVENT_REASON_PREEMPTED: &str = "Preempted";
pub const EVENT_ACTION_PREEMPTING: &str = "Preempting";

/// Failures preempting a pod.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to preempt pod {key}: {action}: {source}")]
    Api {
        key: String,
        action: &'static str,
        #[source]
        source: kube::Error,
    },
}

/// What to do: make room on `node` for `preemptor`.
#[derive(Debug, Clone)]
pub struct Preemption {
    pub preemptor: Arc<Pod>,
    pub node: String,
    pub victims: Vec<Arc<Pod>>,
    /// Pods of lower priority than the preemptor nominated to the same node.
    pub lower_nominated: Vec<Arc<Pod>>,
}

/// The victim's `DisruptionTarget` condition message (upstream's wording).
pub fn disruption_message(preemptor: &Pod) -> String {
    format!("{}: preempting to accommodate a higher priority pod", scheduler_name(preemptor))
}

/// The `Preempted` event's note (upstream's wording).
pub fn preempted_note(preemptor: &Pod, node: &str) -> String {
    format!("Preempted by pod {} on node {node}", preemptor.metadata.uid.as_deref().unwrap_or_default())
}

/// The status patch that adds the condition to a victim.
pub fn disruption_patch(victim: &Pod, preemptor: &Pod, now: k8s_openapi::jiff::Timestamp) -> serde_json::Value {
    serde_json::json!({
        "status": {
            "conditions": [{
                "type": CONDITION_DISRUPTION_TARGET,
                "status": "True",
                "reason": REASON_PREEMPTION_BY_SCHEDULER,
                "message": disruption_message(preemptor),
                "lastProbeTime": null,
                "lastTransitionTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now),
                "observedGeneration": victim.metadata.generation,
            }]
        }
    })
}

fn not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

fn api_for(client: &kube::Client, pod: &Pod) -> Option<(Api<Pod>, String)> {
    let ns = pod.metadata.namespace.as_deref()?;
    let name = pod.metadata.name.clone()?;
    Some((Api::namespaced(client.clone(), ns), name))
}

/// The name this process reports events under, as the scheduler's own events do.
fn reporter(preemptor: &Pod) -> Reporter {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    let controller = scheduler_name(preemptor).to_string();
    Reporter { instance: Some(format!("{controller}-{host}")), controller }
}

/// Preempts one victim: condition, graceful delete, event. A victim already gone is not an error.
async fn preempt_victim(client: &kube::Client, recorder: &Recorder, p: &Preemption, victim: &Pod) -> Result<(), Error> {
    let Some((api, name)) = api_for(client, victim) else { return Ok(()) };
    let key = pod_key(victim);
    let patch = disruption_patch(victim, &p.preemptor, k8s_openapi::jiff::Timestamp::now());
    match api.patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch)).await {
        Ok(_) => {}
        Err(e) if not_found(&e) => return Ok(()),
        Err(source) => return Err(Error::Api { key, action: "add the DisruptionTarget condition", source }),
    }
    match api.delete(&name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(e) if not_found(&e) => return Ok(()),
        Err(source) => return Err(Error::Api { key, action: "delete", source }),
    }
    tracing::info!(preemptor = %pod_key(&p.preemptor), victim = %key, node = %p.node, "preempted pod");
    let ev = Event {
        type_: EventType::Normal,
        reason: EVENT_REASON_PREEMPTED.into(),
        note: Some(preempted_note(&p.preemptor, &p.node)),
        action: EVENT_ACTION_PREEMPTING.into(),
        secondary: Some(kube::Resource::object_ref(p.preemptor.as_ref(), &())),
    };
    if let Err(e) = recorder.publish(&ev, &kube::Resource::object_ref(victim, &())).await {
        tracing::warn!(pod = %key, error = %e, "failed to publish Preempted event");
    }
    Ok(())
}

/// Clears a lower-priority pod's nomination so it looks for room elsewhere.
async fn clear_nomination(client: &kube::Client, pod: &Pod) -> Result<(), Error> {
    let Some((api, name)) = api_for(client, pod) else { return Ok(()) };
    let patch = serde_json::json!({ "status": { "nominatedNodeName": null } });
    match api.patch_status(&name, &PatchParams::default(), &Patch::Merge(patch)).await {
        Ok(_) => Ok(()),
        Err(e) if not_found(&e) => Ok(()),
        Err(source) => Err(Error::Api { key: pod_key(pod), action: "clear nominatedNodeName", source }),
    }
}

/// Runs the whole preemption; errors are logged (the preemptor retries and may preempt again).
pub async fn run(client: kube::Client, p: Preemption) {
    for pod in &p.lower_nominated {
        if let Err(e) = clear_nomination(&client, pod).await {
            tracing::warn!(error = %e, "failed to clear the nomination of a lower-priority pod");
        }
    }
    let recorder = Recorder::new(client.clone(), reporter(&p.preemptor));
    // A victim already terminating needs no second request (upstream skips it too).
    for victim in p.victims.iter().filter(|v| v.metadata.deletion_timestamp.is_none()) {
        if let Err(e) = preempt_victim(&client, &recorder, &p, victim).await {
            tracing::warn!(error = %e, "preemption failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::pod;

    #[test]
    fn upstream_wording() {
        let mut preemptor = pod("high");
        preemptor.metadata.uid = Some("u-1".into());
        let mut victim = pod("low");
        victim.metadata.generation = Some(3);
        let v = disruption_patch(&victim, &preemptor, k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        let c = &v["status"]["conditions"][0];
        let cases = [
            ("type", c["type"].clone(), "DisruptionTarget"),
            ("status", c["status"].clone(), "True"),
            ("reason", c["reason"].clone(), "PreemptionByScheduler"),
            ("message", c["message"].clone(), "default-scheduler: preempting to accommodate a higher priority pod"),
        ];
        for (name, got, want) in cases {
            assert_eq!(got, want, "case {name}");
        }
        assert_eq!(c["observedGeneration"], 3);
        assert_eq!(preempted_note(&preemptor, "n1"), "Preempted by pod u-1 on node n1");
    }
}

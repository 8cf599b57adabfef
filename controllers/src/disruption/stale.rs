//! Clearing stale DisruptionTarget conditions: a pod marked for disruption (by an eviction or
//! preemption) that was not deleted within two minutes gets the condition set back to False, as
//! upstream's disruption controller does, so it is not treated as about to go.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::Store;

/// How long a DisruptionTarget condition may stand on a pod that is not terminating.
pub const STALE_AFTER: SignedDuration = SignedDuration::from_secs(120);
/// How often the pod cache is scanned.
const SCAN_EVERY: Duration = Duration::from_secs(15);
const CONDITION: &str = "DisruptionTarget";

/// True if `pod` carries a DisruptionTarget=True condition older than [`STALE_AFTER`] and is not
/// being deleted.
pub fn is_stale(pod: &Pod, now: Timestamp) -> bool {
    if pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.into_iter().flatten().any(|c| {
        c.type_ == CONDITION && c.status == "True" && c.last_transition_time.as_ref().is_some_and(|t| t.0.saturating_add(STALE_AFTER).is_ok_and(|due| due < now))
    })
}

/// Scans the pod cache until `shutdown` resolves, resetting stale conditions.
pub async fn run(client: kube::Client, pods: Store<Pod>, shutdown: impl std::future::Future<Output = ()>) {
    let scans = async {
        let mut tick = tokio::time::interval(SCAN_EVERY);
        loop {
            tick.tick().await;
            let now = Timestamp::now();
            for pod in pods.state().iter().filter(|p| is_stale(p, now)) {
                reset(&client, pod, now).await;
            }
        }
    };
    tokio::select! {
        () = scans => {}
        () = shutdown => {}
    }
}

async fn reset(client: &kube::Client, pod: &Pod, now: Timestamp) {
    let (Some(ns), Some(name)) = (pod.metadata.namespace.as_deref(), pod.metadata.name.as_deref()) else { return };
    // A strategic merge on the conditions list (merged by type) changes only this condition.
    let patch = serde_json::json!({
        "metadata": { "uid": pod.metadata.uid, "resourceVersion": pod.metadata.resource_version },
        "status": { "conditions": [{ "type": CONDITION, "status": "False", "lastTransitionTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now) }] }
    });
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    match api.patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch)).await {
        Ok(_) => tracing::info!(pod = name, namespace = ns, "reset stale DisruptionTarget condition"),
        Err(error) if crate::api_errors::is_not_found(&error) || crate::api_errors::is_conflict(&error) => {}
        Err(error) => tracing::warn!(pod = name, namespace = ns, %error, "failed to reset stale DisruptionTarget condition"),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn pod(status: &str, since: i64, terminating: bool) -> Pod {
        let mut p = Pod::default();
        if terminating {
            p.metadata.deletion_timestamp = Some(Time(at(0)));
        }
        let condition = PodCondition { type_: CONDITION.into(), status: status.into(), last_transition_time: Some(Time(at(since))), ..Default::default() };
        p.status = Some(PodStatus { conditions: Some(vec![condition]), ..Default::default() });
        p
    }

    #[test]
    fn staleness() {
        let cases = [
            ("old and true", pod("True", 0, false), true),
            ("fresh", pod("True", 900, false), false),
            ("already false", pod("False", 0, false), false),
            ("terminating pod keeps it", pod("True", 0, true), false),
            ("no condition", Pod::default(), false),
        ];
        for (name, p, want) in cases {
            assert_eq!(is_stale(&p, at(1000)), want, "{name}");
        }
    }
}

//! The objects the controllers benchmark creates: the measured Deployment, the raw-ceiling pods, and the
//! readiness test applied to pods (no kubelet runs, so the benchmark marks pods Ready itself).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

/// The label every benchmark pod carries (the Deployment's selector).
pub const APP_LABEL: &str = "bench-app";
/// The label the ReplicaSet controller stamps on each pod of a ReplicaSet.
pub const TEMPLATE_HASH_LABEL: &str = "pod-template-hash";
/// A tiny image: nothing ever pulls it (no node agents), it only has to pass validation.
const IMAGE: &str = "registry.k8s.io/pause:3.10";

/// A Deployment of `replicas` tiny pods, rolling update with maxSurge and maxUnavailable 25%
/// (upstream's defaults, spelled out so the benchmark does not depend on them).
pub fn deployment(name: &str, app: &str, replicas: i32) -> Result<Deployment, serde_json::Error> {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {APP_LABEL: app}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {APP_LABEL: app}},
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": "c", "image": IMAGE, "env": [{"name": "REVISION", "value": "1"}]}],
                },
            },
        },
    }))
}

/// The patch that starts the rolling update: a changed env var in the pod template.
pub fn rollout_patch(revision: u32) -> serde_json::Value {
    json!({"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": IMAGE, "env": [{"name": "REVISION", "value": revision.to_string()}]}
    ]}}}})
}

/// A bare pod like the Deployment's, for the apiserver's raw create ceiling.
pub fn pod(name: &str, app: &str) -> Result<Pod, serde_json::Error> {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {APP_LABEL: app}},
        "spec": {"terminationGracePeriodSeconds": 0, "containers": [{"name": "c", "image": IMAGE}]},
    }))
}

/// The status patch a kubelet would eventually send for a started container: Ready and ContainersReady.
pub fn ready_status_patch(now: &str) -> serde_json::Value {
    let condition = |kind: &str| json!({"type": kind, "status": "True", "lastTransitionTime": now});
    json!({"status": {"conditions": [condition("Ready"), condition("ContainersReady")]}})
}

/// True when the pod has condition Ready=True.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The pod's pod-template-hash label ("" when it has none).
pub fn template_hash(pod: &Pod) -> String {
    pod.metadata.labels.as_ref().and_then(|l| l.get(TEMPLATE_HASH_LABEL)).cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_and_hash_of_pods() {
        let with = |status: serde_json::Value, labels: serde_json::Value| -> Pod {
            serde_json::from_value(json!({"metadata": {"name": "p", "labels": labels}, "status": status}))
                .unwrap_or_default()
        };
        let cases = [
            ("no status", with(json!(null), json!({})), false, ""),
            ("ready", with(ready_status_patch("2026-01-01T00:00:00Z")["status"].clone(), json!({})), true, ""),
            (
                "not ready, hashed",
                with(
                    json!({"conditions": [{"type": "Ready", "status": "False"}]}),
                    json!({TEMPLATE_HASH_LABEL: "abc"}),
                ),
                false,
                "abc",
            ),
        ];
        for (name, pod, ready, hash) in cases {
            assert_eq!(is_ready(&pod), ready, "{name}");
            assert_eq!(template_hash(&pod), hash, "{name}");
        }
    }

    #[test]
    fn objects_deserialize() {
        let d = deployment("d", "a", 7).ok().and_then(|d| d.spec).map(|s| s.replicas);
        assert_eq!(d, Some(Some(7)));
        assert!(pod("p", "a").is_ok());
        assert_eq!(rollout_patch(2)["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"], "2");
    }
}

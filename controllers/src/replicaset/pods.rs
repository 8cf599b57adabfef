//! Facts about pods that the replica set controller counts and acts on.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;

/// A pod that counts toward replicas: not terminating and not finished.
pub fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed"))
}

/// When the pod's Ready condition last became True, if it is True.
pub fn ready_since(pod: &Pod) -> Option<Option<Timestamp>> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let ready = conditions.iter().find(|c| c.type_ == "Ready" && c.status == "True")?;
    Some(ready.last_transition_time.as_ref().map(|t| t.0))
}

pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// Ready for at least `min_ready_seconds` (ready counts at once when that is 0).
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(since)) => now.as_second() - since.as_second() >= i64::from(min_ready_seconds),
    }
}

/// True if every label of the replica set's template is on the pod.
pub fn fully_labeled(pod: &Pod, template_labels: Option<&BTreeMap<String, String>>) -> bool {
    let pod_labels = pod.metadata.labels.as_ref();
    template_labels.into_iter().flatten().all(|(k, v)| pod_labels.and_then(|l| l.get(k)) == Some(v))
}

/// The pod a replica set creates: its template, named `<rs>-<random>` by the apiserver, controlled by
/// the replica set.
pub fn from_template(rs: &ReplicaSet, owner: OwnerReference) -> Pod {
    let template = rs.spec.as_ref().and_then(|s| s.template.clone()).unwrap_or_default();
    let template_meta = template.metadata.unwrap_or_default();
    let name = rs.metadata.name.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: rs.metadata.namespace.clone(),
            labels: template_meta.labels,
            annotations: template_meta.annotations,
            finalizers: template_meta.finalizers,
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: Some(template.spec.unwrap_or_default()),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn pod(phase: &str, ready_at: Option<i64>, deleting: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                deletion_timestamp: deleting.then_some(Time(Timestamp::UNIX_EPOCH)),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: ready_at.map(|at| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Timestamp::from_second(at).ok().map(Time),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn activity() {
        let cases = [
            ("running", pod("Running", None, false), true),
            ("pending", pod("Pending", None, false), true),
            ("succeeded", pod("Succeeded", None, false), false),
            ("failed", pod("Failed", None, false), false),
            ("terminating", pod("Running", None, true), false),
        ];
        for (name, p, want) in cases {
            assert_eq!(is_active(&p), want, "{name}");
        }
    }

    #[test]
    fn availability() {
        let now = Timestamp::from_second(1000).unwrap_or(Timestamp::UNIX_EPOCH);
        let cases = [
            ("not ready", pod("Running", None, false), 0, false),
            ("ready, no min", pod("Running", Some(999), false), 0, true),
            ("ready long enough", pod("Running", Some(990), false), 10, true),
            ("ready too recently", pod("Running", Some(995), false), 10, false),
        ];
        for (name, p, min, want) in cases {
            assert_eq!(is_available(&p, min, now), want, "{name}");
        }
    }

    #[test]
    fn labels_must_all_be_present() {
        let mut p = pod("Running", None, false);
        let want: BTreeMap<String, String> = [("a".to_string(), "1".to_string()), ("b".to_string(), "2".to_string())].into();
        p.metadata.labels = Some([("a".to_string(), "1".to_string())].into());
        assert!(!fully_labeled(&p, Some(&want)));
        p.metadata.labels = Some(want.clone());
        assert!(fully_labeled(&p, Some(&want)));
    }
}

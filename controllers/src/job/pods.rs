//! Facts about a job's pods, and the pods a job creates.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;

/// Keeps a finished pod around until the job has counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// The annotation and label naming an Indexed job pod's completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// The environment variable every container of an Indexed job pod reads its index from.
pub const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// Generated names are at most 63 characters, 5 of which the apiserver appends.
const MAX_GENERATE_NAME: usize = 58;

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref().and_then(|s| s.phase.as_deref())
}

pub fn is_succeeded(pod: &Pod) -> bool {
    phase(pod) == Some("Succeeded")
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), Some("Succeeded" | "Failed"))
}

/// Running or about to: neither finished nor being deleted.
pub fn is_active(pod: &Pod) -> bool {
    !is_terminal(pod) && pod.metadata.deletion_timestamp.is_none()
}

/// Being deleted but not yet finished.
pub fn is_terminating(pod: &Pod) -> bool {
    !is_terminal(pod) && pod.metadata.deletion_timestamp.is_some()
}

/// A failure for the job: the pod failed, or is being deleted before it could succeed (upstream
/// counts those too, as an orphaned pod may never reach the Failed phase). With
/// `podReplacementPolicy: Failed` only the Failed phase counts.
pub fn is_failed(pod: &Pod, only_failed_phase: bool) -> bool {
    if phase(pod) == Some("Failed") {
        return true;
    }
    !only_failed_phase && pod.metadata.deletion_timestamp.is_some() && !is_succeeded(pod)
}

pub fn has_finalizer(pod: &Pod) -> bool {
    pod.metadata.finalizers.iter().flatten().any(|f| f == TRACKING_FINALIZER)
}

pub fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or_default()
}

/// The completion index from the pod's annotation, if it is a valid number.
pub fn completion_index(pod: &Pod) -> Option<u32> {
    let value = pod.metadata.annotations.as_ref()?.get(COMPLETION_INDEX)?;
    // Upstream rejects leading zeros and signs, so "01" is no index.
    if value.len() > 1 && value.starts_with('0') {
        return None;
    }
    value.parse().ok()
}

/// When the pod finished: its last container exit, else when it was marked for deletion, else
/// when it was created (upstream's order of evidence).
pub fn finish_time(pod: &Pod) -> Option<Timestamp> {
    let status = pod.status.as_ref();
    let exits = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref().map(|t| t.0))
        .max();
    exits
        .or_else(|| pod.metadata.deletion_timestamp.as_ref().map(|t| t.0))
        .or_else(|| pod.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// Orders pods so the least advanced come first (unscheduled, pending, not ready, newest): the
/// ones a job deletes when it has too many, as upstream's ActivePods ordering.
pub fn deletion_rank(pod: &Pod) -> (bool, u8, bool, std::cmp::Reverse<i64>) {
    let scheduled = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| !n.is_empty());
    let phase_rank = match phase(pod) {
        Some("Pending") => 0,
        Some("Running") => 2,
        _ => 1,
    };
    let created = pod.metadata.creation_timestamp.as_ref().map_or(0, |t| t.0.as_second());
    (scheduled, phase_rank, crate::replicaset::is_ready(pod), std::cmp::Reverse(created))
}

/// `<job>-<index>-`, the job name cut so the whole prefix fits a generated name.
pub fn indexed_generate_name(job: &str, index: u32) -> String {
    let suffix = format!("-{index}-");
    let room = MAX_GENERATE_NAME.saturating_sub(suffix.len());
    let cut: String = job.chars().take(room).collect();
    format!("{cut}{suffix}")
}

/// The pod a job creates: its template with the tracking finalizer and a controller reference,
/// and for an Indexed job the completion index as annotation, label, environment and hostname.
pub fn from_template(job: &Job, owner: OwnerReference, index: Option<u32>) -> Pod {
    let spec = job.spec.clone().unwrap_or_default();
    let template_meta = spec.template.metadata.unwrap_or_default();
    let name = job.metadata.name.clone().unwrap_or_default();
    let mut finalizers = template_meta.finalizers.unwrap_or_default();
    if !finalizers.iter().any(|f| f == TRACKING_FINALIZER) {
        finalizers.push(TRACKING_FINALIZER.to_string());
    }
    let mut pod_spec = spec.template.spec.unwrap_or_default();
    let mut labels = template_meta.labels;
    let mut annotations = template_meta.annotations;
    let mut generate_name = format!("{name}-");
    if let Some(index) = index {
        annotations.get_or_insert_default().insert(COMPLETION_INDEX.to_string(), index.to_string());
        labels.get_or_insert_default().insert(COMPLETION_INDEX.to_string(), index.to_string());
        pod_spec.hostname = Some(format!("{name}-{index}"));
        generate_name = indexed_generate_name(&name, index);
        for container in pod_spec.containers.iter_mut().chain(pod_spec.init_containers.iter_mut().flatten()) {
            let env = container.env.get_or_insert_default();
            if !env.iter().any(|e| e.name == COMPLETION_INDEX_ENV) {
                env.push(EnvVar {
                    name: COMPLETION_INDEX_ENV.to_string(),
                    value: None,
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            api_version: None,
                            field_path: format!("metadata.annotations['{COMPLETION_INDEX}']"),
                        }),
                        ..Default::default()
                    }),
                });
            }
        }
    }
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name),
            namespace: job.metadata.namespace.clone(),
            labels,
            annotations,
            finalizers: Some(finalizers),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: Some(pod_spec),
        status: None,
    }
}

/// A strategic merge patch removing only the tracking finalizer: idempotent, and it leaves
/// finalizers others added in between alone.
pub fn remove_finalizer_patch() -> serde_json::Value {
    serde_json::json!({ "metadata": { "$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER] } })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::batch::v1::JobSpec;
    use k8s_openapi::api::core::v1::{Container, PodSpec, PodStatus, PodTemplateSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn pod(phase: &str, deleting: bool) -> Pod {
        Pod {
            metadata: ObjectMeta { deletion_timestamp: deleting.then_some(Time(Timestamp::UNIX_EPOCH)), ..Default::default() },
            spec: None,
            status: Some(PodStatus { phase: Some(phase.into()), ..Default::default() }),
        }
    }

    #[test]
    fn pod_states() {
        let cases = [
            // name, pod, active, terminating, failed, failed (only Failed phase)
            ("running", pod("Running", false), true, false, false, false),
            ("succeeded", pod("Succeeded", false), false, false, false, false),
            ("failed", pod("Failed", false), false, false, true, true),
            ("deleted while running", pod("Running", true), false, true, true, false),
            ("deleted after success", pod("Succeeded", true), false, false, false, false),
        ];
        for (name, p, active, terminating, failed, strict) in cases {
            assert_eq!(is_active(&p), active, "{name}: active");
            assert_eq!(is_terminating(&p), terminating, "{name}: terminating");
            assert_eq!(is_failed(&p, false), failed, "{name}: failed");
            assert_eq!(is_failed(&p, true), strict, "{name}: failed, strict");
        }
    }

    #[test]
    fn completion_indexes() {
        let with = |v: &str| Pod {
            metadata: ObjectMeta { annotations: Some([(COMPLETION_INDEX.to_string(), v.to_string())].into()), ..Default::default() },
            ..Default::default()
        };
        let cases = [("plain", with("3"), Some(3)), ("zero", with("0"), Some(0)), ("leading zero", with("03"), None), ("negative", with("-1"), None), ("word", with("x"), None), ("absent", Pod::default(), None)];
        for (name, p, want) in cases {
            assert_eq!(completion_index(&p), want, "{name}");
        }
    }

    #[test]
    fn generate_names() {
        assert_eq!(indexed_generate_name("pi", 3), "pi-3-");
        let long = "a".repeat(70);
        let name = indexed_generate_name(&long, 12);
        assert_eq!(name.len(), MAX_GENERATE_NAME);
        assert!(name.ends_with("-12-"));
    }

    #[test]
    fn indexed_pod_from_template() {
        let job = Job {
            metadata: ObjectMeta { name: Some("work".into()), namespace: Some("ns".into()), ..Default::default() },
            spec: Some(JobSpec {
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta { labels: Some([("app".to_string(), "w".to_string())].into()), ..Default::default() }),
                    spec: Some(PodSpec { containers: vec![Container { name: "c".into(), ..Default::default() }], subdomain: Some("svc".into()), ..Default::default() }),
                },
                ..Default::default()
            }),
            status: None,
        };
        let owner = OwnerReference { uid: "u".into(), controller: Some(true), ..Default::default() };
        let p = from_template(&job, owner.clone(), Some(2));
        assert_eq!(p.metadata.generate_name.as_deref(), Some("work-2-"));
        assert_eq!(completion_index(&p), Some(2));
        assert_eq!(p.metadata.labels.as_ref().and_then(|l| l.get(COMPLETION_INDEX)).map(String::as_str), Some("2"));
        assert_eq!(p.metadata.labels.as_ref().and_then(|l| l.get("app")).map(String::as_str), Some("w"));
        assert!(has_finalizer(&p));
        let spec = p.spec.unwrap_or_default();
        assert_eq!(spec.hostname.as_deref(), Some("work-2"));
        assert_eq!(spec.subdomain.as_deref(), Some("svc"));
        let env = spec.containers[0].env.clone().unwrap_or_default();
        assert!(env.iter().any(|e| e.name == COMPLETION_INDEX_ENV), "index in the environment");

        let plain = from_template(&job, owner, None);
        assert_eq!(plain.metadata.generate_name.as_deref(), Some("work-"));
        assert_eq!(completion_index(&plain), None);
        assert!(plain.spec.and_then(|s| s.hostname).is_none());
    }
}

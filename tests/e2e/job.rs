//! Jobs run pods to completion: a NonIndexed job with 3 completions and parallelism 2 completes
//! with 3 succeeded pods, a job whose pods keep failing stops at its backoff limit, and an Indexed
//! job gives each pod its own completion index and reports `completedIndexes`.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, PostParams};
use rudder_e2e::{TestNamespace, wait};

use crate::common::{ROLLOUT_TIMEOUT, describe, setup};

const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";

async fn create_job(ns: &TestNamespace, manifest: serde_json::Value) -> anyhow::Result<Job> {
    let job: Job = serde_json::from_value(manifest)?;
    Ok(ns.api::<Job>().create(&PostParams::default(), &job).await?)
}

/// The job's pods (by the `job-name` label the apiserver puts on its template).
async fn job_pods(ns: &TestNamespace, job: &str) -> anyhow::Result<Vec<Pod>> {
    Ok(ns.api::<Pod>().list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job}"))).await?.items)
}

/// `type=status(reason)` for every condition, for assertions and failure messages.
fn conditions(job: &Job) -> Vec<String> {
    let list = job.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    list.iter().map(|c| format!("{}={}({})", c.type_, c.status, c.reason.clone().unwrap_or_default())).collect()
}

fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or_default()
}

/// Waits until no pod of the job carries the tracking finalizer any more: every finished pod was
/// counted and released.
async fn wait_finalizers_released(ns: &TestNamespace, job: &str) -> anyhow::Result<Vec<Pod>> {
    wait::until(&format!("pods of job {job} to lose the tracking finalizer"), ROLLOUT_TIMEOUT, || async {
        let pods = job_pods(ns, job).await?;
        let tracked: Vec<String> = pods
            .iter()
            .filter(|p| p.metadata.finalizers.iter().flatten().any(|f| f == TRACKING_FINALIZER))
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        Ok(if tracked.is_empty() { Ok(pods) } else { Err(format!("still tracked: {tracked:?}")) })
    })
    .await
}

/// Waits until events about the job carry every one of `reasons`. Controllers write events in the
/// background, so the last ones may land after the condition the test waited for.
async fn wait_job_events(ns: &TestNamespace, job: &str, reasons: &[&str]) -> anyhow::Result<String> {
    let selector = format!("involvedObject.name={job}");
    let selector = selector.as_str();
    wait::until(&format!("events {reasons:?} about job {job}"), ROLLOUT_TIMEOUT, || async {
        let events = ns.kubectl(&["get", "events", "--field-selector", selector, "-o", "custom-columns=REASON:.reason"]).await?;
        Ok(if reasons.iter().all(|r| events.contains(r)) { Ok(events) } else { Err(format!("events so far: {events}")) })
    })
    .await
}

fn busybox_job(name: &str, spec: serde_json::Value, script: &str) -> serde_json::Value {
    let mut manifest = serde_json::json!({
        "metadata": { "name": name },
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{ "name": "work", "image": "busybox", "command": ["sh", "-c", script] }]
                }
            }
        }
    });
    if let (Some(target), Some(extra)) = (manifest["spec"].as_object_mut(), spec.as_object()) {
        target.extend(extra.clone());
    }
    manifest
}

#[tokio::test]
async fn job_runs_pods_to_completion() -> anyhow::Result<()> {
    let (_cluster, ns) = setup("job").await?;
    create_job(&ns, busybox_job("three", serde_json::json!({ "completions": 3, "parallelism": 2 }), "sleep 1")).await?;

    ns.kubectl(&["wait", "--for=condition=complete", "job/three", "--timeout=180s"]).await?;
    let job = ns.api::<Job>().get("three").await?;
    let status = job.status.clone().unwrap_or_default();
    assert_eq!(status.succeeded, Some(3), "three completions: {:?}", conditions(&job));
    assert_eq!(status.active.unwrap_or(0), 0, "nothing left running");
    assert!(status.completion_time.is_some() && status.start_time.is_some(), "start and completion times are set");
    let seen = conditions(&job);
    assert!(seen.contains(&"SuccessCriteriaMet=True(CompletionsReached)".to_string()), "{seen:?}");
    assert!(seen.contains(&"Complete=True(CompletionsReached)".to_string()), "{seen:?}");
    assert!(status.uncounted_terminated_pods.as_ref().is_none_or(|u| u.succeeded.iter().flatten().count() + u.failed.iter().flatten().count() == 0));

    let pods = wait_finalizers_released(&ns, "three").await?;
    let succeeded = pods.iter().filter(|p| phase(p) == "Succeeded").count();
    assert_eq!(succeeded, 3, "exactly three pods ran, all succeeded: {}", describe(&pods));
    for pod in &pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        assert!(name.starts_with("three-"), "pods are named after the job: {name}");
        let owner = pod.metadata.owner_references.iter().flatten().find(|r| r.controller == Some(true));
        assert_eq!(owner.map(|r| (r.kind.as_str(), r.name.as_str())), Some(("Job", "three")), "{name} is controlled by the job");
    }
    wait_job_events(&ns, "three", &["SuccessfulCreate", "Completed"]).await?;
    Ok(())
}

#[tokio::test]
async fn failing_job_stops_at_its_backoff_limit() -> anyhow::Result<()> {
    let (_cluster, ns) = setup("job-fail").await?;
    create_job(&ns, busybox_job("doomed", serde_json::json!({ "backoffLimit": 1 }), "exit 1")).await?;

    // Two failures (the second after a 10 s backoff) exceed a limit of one.
    ns.kubectl(&["wait", "--for=condition=failed", "job/doomed", "--timeout=180s"]).await?;
    let job = ns.api::<Job>().get("doomed").await?;
    let status = job.status.clone().unwrap_or_default();
    let seen = conditions(&job);
    assert!(seen.contains(&"Failed=True(BackoffLimitExceeded)".to_string()), "{seen:?}");
    assert!(seen.contains(&"FailureTarget=True(BackoffLimitExceeded)".to_string()), "{seen:?}");
    assert!(!seen.iter().any(|c| c.starts_with("Complete=")), "a failed job never completes: {seen:?}");
    assert_eq!(status.failed, Some(2), "backoffLimit 1 allows exactly one retry");
    assert_eq!(status.succeeded.unwrap_or(0), 0);
    assert_eq!(status.active.unwrap_or(0), 0, "nothing left running");

    let pods = wait_finalizers_released(&ns, "doomed").await?;
    assert_eq!(pods.iter().filter(|p| phase(p) == "Failed").count(), 2, "two failed pods: {}", describe(&pods));
    wait_job_events(&ns, "doomed", &["BackoffLimitExceeded"]).await?;
    Ok(())
}

#[tokio::test]
async fn indexed_job_completes_every_index() -> anyhow::Result<()> {
    let (_cluster, ns) = setup("job-indexed").await?;
    let spec = serde_json::json!({ "completions": 3, "parallelism": 3, "completionMode": "Indexed" });
    create_job(&ns, busybox_job("indexed", spec, "echo index=$JOB_COMPLETION_INDEX")).await?;

    ns.kubectl(&["wait", "--for=condition=complete", "job/indexed", "--timeout=180s"]).await?;
    let job = ns.api::<Job>().get("indexed").await?;
    let status = job.status.clone().unwrap_or_default();
    assert_eq!(status.completed_indexes.as_deref(), Some("0-2"), "{:?}", conditions(&job));
    assert_eq!(status.succeeded, Some(3));

    let pods = wait_finalizers_released(&ns, "indexed").await?;
    let mut indexes = Vec::new();
    for pod in pods.iter().filter(|p| phase(p) == "Succeeded") {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let index = pod.metadata.annotations.as_ref().and_then(|a| a.get(COMPLETION_INDEX)).cloned().unwrap_or_default();
        let label = pod.metadata.labels.as_ref().and_then(|l| l.get(COMPLETION_INDEX)).cloned().unwrap_or_default();
        assert_eq!(label, index, "{name}: the index is both annotation and label");
        assert!(name.starts_with(&format!("indexed-{index}-")), "{name} carries its index {index}");
        let hostname = pod.spec.as_ref().and_then(|s| s.hostname.clone()).unwrap_or_default();
        assert_eq!(hostname, format!("indexed-{index}"), "{name}: hostname");
        let logs = ns.kubectl(&["logs", &name]).await?;
        assert!(logs.contains(&format!("index={index}")), "{name} sees JOB_COMPLETION_INDEX={index}: {logs}");
        indexes.push(index);
    }
    indexes.sort();
    assert_eq!(indexes, vec!["0", "1", "2"], "one succeeded pod per index: {}", describe(&pods));
    Ok(())
}

//! The API writes of a job sync: pod creations and deletions, finalizer releases, status.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::batch::v1::{Job, JobStatus};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Resource, ResourceExt};

use super::per_index::{FAILURE_COUNT, IndexFailures};
use super::sync::Target;
use super::{Context, Error, pods};
use crate::api_errors;
use crate::replicaset::api_message;

/// Creates one pod per entry (with that completion index, if any), in slow-start batches of 1,
/// 2, 4, … that stop at the first failure, like upstream. Returns how many were created.
/// With `failure_counts` (per-index backoff), each pod says how often its index failed before.
pub async fn create_pods(
    target: &Target<'_>,
    ctx: &Context,
    indexes: &[Option<u32>],
    failure_counts: Option<&BTreeMap<u32, IndexFailures>>,
) -> (usize, Option<Error>) {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), target.ns);
    let params = PostParams::default();
    let mut created = 0;
    let mut batch = 1;
    let mut rest = indexes;
    while !rest.is_empty() {
        let (now, later) = rest.split_at(batch.min(rest.len()));
        rest = later;
        batch *= 2;
        let requests = now.iter().map(|index| {
            let mut pod = pods::from_template(target.job, target.owner.clone(), *index);
            if let (Some(counts), Some(index)) = (failure_counts, index) {
                let count = counts.get(index).map_or(0, |f| f.count);
                pod.metadata.annotations.get_or_insert_default().insert(FAILURE_COUNT.to_string(), count.to_string());
            }
            let api = &api;
            let params = &params;
            async move { api.create(params, &pod).await }
        });
        for result in futures::future::join_all(requests).await {
            match result {
                Ok(pod) => {
                    created += 1;
                    let pod_name = pod.name_any();
                    ctx.expectations.expect_create(&target.key, (target.ns.to_string(), pod_name.clone()), Instant::now());
                    ctx.events
                        .normal(&target.regarding, Some(pod.object_ref(&())), "SuccessfulCreate", "Create", format!("Created pod: {pod_name}"))
                        .await;
                }
                // Nothing can be created in a terminating namespace, and nothing needs to be.
                Err(source) if api_errors::is_namespace_terminating(&source) => return (created, None),
                Err(source) => {
                    let message = api_message(&source);
                    ctx.events.warning(&target.regarding, None, "FailedCreate", "Create", format!("Error creating: {message}")).await;
                    return (created, Some(target.error("create pod")(source)));
                }
            }
        }
    }
    (created, None)
}

/// Deletes `doomed` all at once. With `uncounted`, the tracking finalizer comes off first so the
/// pods never count (a suspended job or surplus pods); otherwise it stays and they count as
/// failures of a failing job. Returns how many were deleted, how many of those were ready, and
/// the first failure.
pub async fn delete_pods(target: &Target<'_>, ctx: &Context, doomed: &[Arc<Pod>], uncounted: bool) -> (usize, usize, Option<Error>) {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), target.ns);
    if uncounted {
        for pod in doomed {
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            ctx.expectations.expect_delete(&target.key, (target.ns.to_string(), pod.name_any()), uid, Instant::now());
        }
    }
    let deletes = doomed.iter().map(|pod| {
        let api = &api;
        async move {
            let name = pod.name_any();
            if uncounted && pods::has_finalizer(pod) {
                api.patch(&name, &PatchParams::default(), &Patch::Strategic(pods::remove_finalizer_patch())).await?;
            }
            let params = DeleteParams { preconditions: Some(Preconditions { uid: pod.metadata.uid.clone(), resource_version: None }), ..Default::default() };
            api.delete(&name, &params).await.map(|_| ())
        }
    });
    let (mut deleted, mut deleted_ready, mut failure) = (0, 0, None);
    for (pod, result) in doomed.iter().zip(futures::future::join_all(deletes).await) {
        match result {
            Ok(()) => {
                deleted += 1;
                if crate::replicaset::is_ready(pod) {
                    deleted_ready += 1;
                }
                let note = format!("Deleted pod: {}", pod.name_any());
                ctx.events.normal(&target.regarding, Some(pod.object_ref(&())), "SuccessfulDelete", "Delete", note).await;
            }
            Err(e) if api_errors::is_not_found(&e) => deleted += 1,
            Err(source) if failure.is_none() => {
                let message = api_message(&source);
                ctx.events.warning(&target.regarding, None, "FailedDelete", "Delete", format!("Error deleting: {message}")).await;
                failure = Some(target.error("delete pod")(source));
            }
            Err(_) => {}
        }
    }
    (deleted, deleted_ready, failure)
}

/// Removes the tracking finalizer from `pods`; returns the UIDs now free of it (a pod already
/// gone counts) and the first failure.
pub async fn release_finalizers(target: &Target<'_>, ctx: &Context, release: &[Arc<Pod>]) -> (HashSet<String>, Option<Error>) {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), target.ns);
    let patches = release.iter().map(|pod| {
        let api = &api;
        async move { api.patch(&pod.name_any(), &PatchParams::default(), &Patch::Strategic(pods::remove_finalizer_patch())).await }
    });
    let mut released = HashSet::new();
    let mut failure = None;
    for (pod, result) in release.iter().zip(futures::future::join_all(patches).await) {
        match result {
            Ok(_) => {
                released.insert(pods::uid(pod).to_string());
            }
            Err(e) if api_errors::is_not_found(&e) => {
                released.insert(pods::uid(pod).to_string());
            }
            Err(source) => {
                failure.get_or_insert_with(|| target.error("remove tracking finalizer")(source));
            }
        }
    }
    ctx.removals.expect(&target.key, released.iter().cloned());
    (released, failure)
}

/// Writes `status` onto `job` (an update guarded by its resourceVersion) unless it equals `old`;
/// returns the job as now stored.
pub async fn write_status(target: &Target<'_>, ctx: &Context, job: &Job, old: &JobStatus, status: JobStatus) -> Result<Job, Error> {
    let status = normalized(status);
    if status == normalized(old.clone()) {
        return Ok(job.clone());
    }
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), target.ns);
    let updated = Job { status: Some(status), ..job.clone() };
    api.replace_status(target.name, &PostParams::default(), &updated).await.map_err(target.error("update status"))
}

/// The status as the apiserver hands it back: zero counters, empty strings and empty lists are
/// omitted there, so they are omitted here too, or every sync would see a change and write.
fn normalized(mut status: JobStatus) -> JobStatus {
    for counter in [&mut status.active, &mut status.succeeded, &mut status.failed] {
        if *counter == Some(0) {
            *counter = None;
        }
    }
    if status.completed_indexes.as_deref() == Some("") {
        status.completed_indexes = None;
    }
    if status.conditions.as_ref().is_some_and(Vec::is_empty) {
        status.conditions = None;
    }
    if let Some(uncounted) = status.uncounted_terminated_pods.as_mut() {
        for list in [&mut uncounted.succeeded, &mut uncounted.failed] {
            if list.as_ref().is_some_and(Vec::is_empty) {
                *list = None;
            }
        }
    }
    if status.uncounted_terminated_pods.as_ref().is_some_and(|u| u.succeeded.is_none() && u.failed.is_none()) {
        status.uncounted_terminated_pods = None;
    }
    status
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::batch::v1::UncountedTerminatedPods;

    use super::*;

    #[test]
    fn normalization_matches_what_the_apiserver_returns() {
        let written = JobStatus {
            active: Some(0),
            ready: Some(0),
            succeeded: Some(2),
            completed_indexes: Some(String::new()),
            conditions: Some(Vec::new()),
            uncounted_terminated_pods: Some(UncountedTerminatedPods { succeeded: Some(Vec::new()), failed: Some(vec!["u".into()]) }),
            ..Default::default()
        };
        let read = JobStatus {
            ready: Some(0),
            succeeded: Some(2),
            uncounted_terminated_pods: Some(UncountedTerminatedPods { succeeded: None, failed: Some(vec!["u".into()]) }),
            ..Default::default()
        };
        assert_eq!(normalized(written), normalized(read.clone()));
        assert_eq!(normalized(read.clone()).ready, Some(0), "ready is a pointer upstream: 0 is kept");
        let other = JobStatus { succeeded: Some(3), ..read.clone() };
        assert_ne!(normalized(other), normalized(read), "real changes still differ");
    }
}

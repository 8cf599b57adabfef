//! Releasing the tracking finalizer of pods no running job will count: pods whose job is gone
//! (deleted, or replaced by a new object of the same name), has finished, or that no job
//! controls. Without this, such pods could never be deleted.

use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::ResourceExt;

use super::{conditions, pods};
use crate::{api_errors, ownership};

/// Pods released concurrently.
const CONCURRENCY: usize = 8;

/// What to do about a pod carrying the tracking finalizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// A live job counts it: leave it.
    Keep,
    /// Nobody will count it: release it.
    Release,
    /// The job named by its controller reference is not in the cache: ask the apiserver.
    Check { name: String, uid: String },
}

/// Decides from the pod and the job cache (`lookup` by name in the pod's namespace).
pub fn fate(pod: &Pod, lookup: impl Fn(&str) -> Option<Arc<Job>>) -> Fate {
    if !pods::has_finalizer(pod) {
        return Fate::Keep;
    }
    let Some(owner) = ownership::controller_of(&pod.metadata) else { return Fate::Release };
    if owner.kind != "Job" || owner.api_version != "batch/v1" {
        // Another controller's pod: its finalizer is not ours to judge.
        return Fate::Keep;
    }
    match lookup(&owner.name) {
        Some(job) if job.metadata.uid.as_deref() == Some(owner.uid.as_str()) => {
            if conditions::is_finished(&job) { Fate::Release } else { Fate::Keep }
        }
        _ => Fate::Check { name: owner.name.clone(), uid: owner.uid.clone() },
    }
}

/// Runs until `pods` ends, releasing finalizers as pods change.
pub async fn run(client: kube::Client, jobs: Store<Job>, pods: impl Stream<Item = Arc<Pod>> + Send + 'static) {
    // Judging against an empty cache would send every pod to the apiserver.
    let _ = jobs.wait_until_ready().await;
    pods.for_each_concurrent(CONCURRENCY, |pod| {
        let (client, jobs) = (client.clone(), jobs.clone());
        async move {
            let Some(ns) = pod.metadata.namespace.clone() else { return };
            let release = match fate(&pod, |name| jobs.get(&ObjectRef::new(name).within(&ns))) {
                Fate::Keep => false,
                Fate::Release => true,
                Fate::Check { name, uid } => {
                    let api: Api<Job> = Api::namespaced(client.clone(), &ns);
                    match api.get_opt(&name).await {
                        Ok(Some(job)) => job.metadata.uid.as_deref() != Some(uid.as_str()) || conditions::is_finished(&job),
                        Ok(None) => true,
                        Err(error) => {
                            tracing::warn!(%error, pod = %pod.name_any(), "failed to look up the job of a pod");
                            false
                        }
                    }
                }
            };
            if release {
                let api: Api<Pod> = Api::namespaced(client, &ns);
                match api.patch(&pod.name_any(), &PatchParams::default(), &Patch::Strategic(pods::remove_finalizer_patch())).await {
                    Ok(_) => tracing::debug!(pod = %pod.name_any(), "released the tracking finalizer of an orphan pod"),
                    Err(e) if api_errors::is_not_found(&e) => {}
                    Err(error) => tracing::warn!(%error, pod = %pod.name_any(), "failed to remove the tracking finalizer"),
                }
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    use super::*;

    fn pod(owner: Option<(&str, &str, &str)>, finalizer: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                finalizers: finalizer.then(|| vec![pods::TRACKING_FINALIZER.to_string()]),
                owner_references: owner.map(|(api_version, kind, uid)| {
                    vec![OwnerReference { api_version: api_version.into(), kind: kind.into(), name: "j".into(), uid: uid.into(), controller: Some(true), ..Default::default() }]
                }),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn job(uid: &str, finished: bool) -> Arc<Job> {
        Arc::new(Job {
            metadata: ObjectMeta { name: Some("j".into()), uid: Some(uid.into()), ..Default::default() },
            spec: None,
            status: Some(JobStatus {
                conditions: finished.then(|| vec![JobCondition { type_: "Complete".into(), status: "True".into(), ..Default::default() }]),
                ..Default::default()
            }),
        })
    }

    #[test]
    fn fates() {
        let check = Fate::Check { name: "j".into(), uid: "u1".into() };
        let cases = [
            ("no finalizer", pod(Some(("batch/v1", "Job", "u1")), false), Some(job("u1", false)), Fate::Keep),
            ("live job", pod(Some(("batch/v1", "Job", "u1")), true), Some(job("u1", false)), Fate::Keep),
            ("finished job", pod(Some(("batch/v1", "Job", "u1")), true), Some(job("u1", true)), Fate::Release),
            ("job not cached", pod(Some(("batch/v1", "Job", "u1")), true), None, check.clone()),
            ("job recreated", pod(Some(("batch/v1", "Job", "u1")), true), Some(job("u2", false)), check),
            ("no controller", pod(None, true), None, Fate::Release),
            ("someone else's pod", pod(Some(("apps/v1", "ReplicaSet", "u1")), true), None, Fate::Keep),
        ];
        for (name, p, j, want) in cases {
            assert_eq!(fate(&p, |_| j.clone()), want, "{name}");
        }
    }
}

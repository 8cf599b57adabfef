//! The Job controller (batch/v1): runs pods from a job's template until enough have succeeded
//! (`completions`, or any one for a work queue), replacing failed ones with backoff until the
//! `backoffLimit` or `activeDeadlineSeconds` fails the job. Indexed jobs give each pod its own
//! completion index. Finished pods are counted through a tracking finalizer and
//! `status.uncountedTerminatedPods`, so no pod is lost or counted twice.

mod backoff;
mod conditions;
mod indexes;
mod orphans;
mod per_index;
mod plan;
mod pods;
mod policy;
mod removals;
mod sync;
mod track;
mod writes;

use std::sync::Arc;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::events::Events;
use crate::informer::Informer;
use crate::ownership;
use crate::replicaset::Expectations;

pub use indexes::Indexes;
pub use pods::{COMPLETION_INDEX, TRACKING_FINALIZER};

/// The event source name, as upstream.
pub const NAME: &str = "job-controller";

/// Failures syncing one job; the sync is retried. `job` reads `namespace/name`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A job without namespace, name or UID cannot be synced.
    #[error("failed to sync Job: object has no {0}")]
    MissingField(&'static str),
    /// A write to the API failed.
    #[error("failed to {action} for Job {job}: {}", crate::replicaset::api_message(source))]
    Api {
        action: String,
        job: String,
        #[source]
        source: kube::Error,
    },
}

impl Error {
    /// Lost a write race against a newer version: the cache will catch up, so retry soon, quietly.
    fn is_conflict(&self) -> bool {
        matches!(self, Error::Api { source, .. } if crate::api_errors::is_conflict(source))
    }
}

/// What every sync shares.
pub struct Context {
    pub client: kube::Client,
    pub pods: Store<Pod>,
    pub events: Events,
    /// Pod creations and deletions not yet seen in the cache.
    expectations: Arc<Expectations>,
    /// Finalizer removals not yet seen in the cache.
    removals: removals::Removals,
}

/// The controller, running until `shutdown` resolves; it subscribes to the informers at once.
pub fn run(
    client: kube::Client,
    jobs: &Informer<Job>,
    pods: &Informer<Pod>,
    concurrency: u16,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let shutdown = shutdown.shared();
    let job_store = jobs.store();
    let expectations = Arc::new(Expectations::default());
    let context = Arc::new(Context {
        client: client.clone(),
        pods: pods.store(),
        events: Events::new(client.clone(), NAME),
        expectations: expectations.clone(),
        removals: removals::Removals::default(),
    });
    let orphan_sweep = orphans::run(client, job_store.clone(), pods.subscribe().take_until(shutdown.clone()));
    let controller = Controller::for_shared_stream(jobs.subscribe(), job_store.clone())
        .watches_shared_stream(pods.subscribe(), pod_mapper(job_store, expectations))
        .with_config(controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(sync::reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "job sync did not complete");
            }
        });
    async move {
        futures::join!(controller, orphan_sweep);
    }
}

/// The job a controller reference points at, if it points at a batch Job.
fn owning_job(namespace: &Option<String>, owner: Option<&OwnerReference>) -> Option<ObjectRef<Job>> {
    let (ns, owner) = (namespace.as_deref()?, owner?);
    (owner.kind == "Job" && owner.api_version == "batch/v1").then(|| ObjectRef::new(&owner.name).within(ns))
}

/// A pod change concerns its controlling job, or — for an orphan — every job in its namespace
/// that selects it (one of them may adopt it).
fn pod_mapper(jobs: Store<Job>, expectations: Arc<Expectations>) -> impl Fn(Arc<Pod>) -> Vec<ObjectRef<Job>> + Send + Sync + 'static {
    move |pod| {
        let (Some(ns), Some(name)) = (pod.metadata.namespace.clone(), pod.metadata.name.clone()) else {
            return Vec::new();
        };
        expectations.observe((ns.clone(), name), std::time::Instant::now());
        match ownership::controller_of(&pod.metadata) {
            Some(owner) => owning_job(&pod.metadata.namespace, Some(owner)).into_iter().collect(),
            None => jobs
                .state()
                .iter()
                .filter(|j| j.metadata.namespace.as_deref() == Some(ns.as_str()))
                .filter(|j| {
                    let selector = j.spec.as_ref().and_then(|s| s.selector.as_ref()).and_then(ownership::selector);
                    ownership::matches(selector.as_ref(), pod.metadata.labels.as_ref())
                })
                .map(|j| ObjectRef::from_obj(j.as_ref()))
                .collect(),
        }
    }
}

fn error_policy(job: Arc<Job>, error: &Error, _: Arc<Context>) -> Action {
    crate::retry::after_error("Job", job.metadata.name.as_deref(), error.is_conflict(), error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owning_job_only_for_batch_jobs() {
        let ns = Some("ns".to_string());
        let reference = |api_version: &str, kind: &str| OwnerReference { api_version: api_version.into(), kind: kind.into(), name: "pi".into(), ..Default::default() };
        let cases = [
            ("batch job", reference("batch/v1", "Job"), true),
            ("other group", reference("example.com/v1", "Job"), false),
            ("cron job", reference("batch/v1", "CronJob"), false),
        ];
        for (name, r, want) in cases {
            assert_eq!(owning_job(&ns, Some(&r)).is_some(), want, "{name}");
        }
        assert_eq!(owning_job(&ns, Some(&reference("batch/v1", "Job"))), Some(ObjectRef::new("pi").within("ns")));
        assert_eq!(owning_job(&None, Some(&reference("batch/v1", "Job"))), None, "no namespace");
    }
}

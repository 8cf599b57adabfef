//! The CronJob controller (batch/v1): starts a Job from a cron job's template at each time of
//! its schedule (in `spec.timeZone`), honouring `suspend`, `startingDeadlineSeconds` and the
//! concurrency policy (Allow, Forbid, Replace); tracks the running jobs in `status.active`,
//! records `lastScheduleTime` / `lastSuccessfulTime`, and prunes finished jobs beyond the
//! history limits. Each sync is requeued for just after the next scheduled time.

mod policy;
mod schedule;
mod sync;
mod writes;

use std::sync::Arc;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::events::Events;
use crate::informer::Informer;
use crate::ownership;

pub use policy::{SCHEDULED_TIMESTAMP, job_name};

/// The event source name, as upstream.
pub const NAME: &str = "cronjob-controller";

/// Failures syncing one cron job; the sync is retried. `cron_job` reads `namespace/name`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A cron job without namespace, name, UID or creation time cannot be synced.
    #[error("failed to sync CronJob: object has no {0}")]
    MissingField(&'static str),
    /// A request to the API failed.
    #[error("failed to {action} for CronJob {cron_job}: {}", crate::replicaset::api_message(source))]
    Api {
        action: String,
        cron_job: String,
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
    pub jobs: Store<Job>,
    pub events: Events,
}

/// The controller, running until `shutdown` resolves; it subscribes to the informers at once.
pub fn run(
    client: kube::Client,
    cron_jobs: &Informer<CronJob>,
    jobs: &Informer<Job>,
    concurrency: u16,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let shutdown = shutdown.shared();
    let context = Arc::new(Context { client: client.clone(), jobs: jobs.store(), events: Events::new(client, NAME) });
    Controller::for_shared_stream(cron_jobs.subscribe(), cron_jobs.store())
        .watches_shared_stream(jobs.subscribe(), |job: Arc<Job>| owning_cron_job(&job))
        .with_config(controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(sync::reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "cron job sync did not complete");
            }
        })
}

/// The cron job controlling `job`, if a batch CronJob does.
fn owning_cron_job(job: &Job) -> Option<ObjectRef<CronJob>> {
    ownership::controlling::<CronJob>(&job.metadata)
}

fn error_policy(cron_job: Arc<CronJob>, error: &Error, _: Arc<Context>) -> Action {
    crate::retry::after_error("CronJob", cron_job.metadata.name.as_deref(), error.is_conflict(), error)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    use super::*;

    #[test]
    fn jobs_map_to_their_controlling_cron_job() {
        let job = |api_version: &str, kind: &str, controller: bool| {
            let mut job = Job::default();
            job.metadata.namespace = Some("ns".into());
            job.metadata.owner_references =
                Some(vec![OwnerReference { api_version: api_version.into(), kind: kind.into(), name: "nightly".into(), controller: Some(controller), ..Default::default() }]);
            job
        };
        let cases = [
            ("controlled by a cron job", job("batch/v1", "CronJob", true), true),
            ("owned but not controlled", job("batch/v1", "CronJob", false), false),
            ("other group", job("example.com/v1", "CronJob", true), false),
            ("other kind", job("batch/v1", "Job", true), false),
        ];
        for (name, j, want) in cases {
            assert_eq!(owning_cron_job(&j).is_some(), want, "{name}");
        }
        assert_eq!(owning_cron_job(&job("batch/v1", "CronJob", true)), Some(ObjectRef::new("nightly").within("ns")));
    }
}

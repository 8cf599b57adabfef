//! The ReplicaSet controller: keeps `spec.replicas` pods running from a replica set's template.

mod expectations;
mod pods;
mod ranking;
mod reconcile;
mod status;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::events::Events;
use crate::informer::Informer;
use crate::ownership;

pub use expectations::Expectations;

/// The event source name, as upstream.
pub const NAME: &str = "replicaset-controller";

/// Failures syncing one replica set; the sync is retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A replica set without namespace or name cannot be synced.
    #[error("failed to sync replica set: object has no {0}")]
    MissingField(&'static str),
    /// Creating, deleting, adopting or releasing pods failed.
    #[error("failed to {action} for replica set {rs}: {source}")]
    Pods {
        action: &'static str,
        rs: String,
        #[source]
        source: kube::Error,
    },
    /// Writing the status failed.
    #[error("failed to update status of replica set {rs}: {source}")]
    Status {
        rs: String,
        #[source]
        source: kube::Error,
    },
}

/// What every sync shares.
pub struct Context {
    pub client: kube::Client,
    pub pods: Store<Pod>,
    pub events: Events,
    pub expectations: Arc<Expectations>,
}

/// The controller, running until `shutdown` resolves; it subscribes to the informers at once.
pub fn run(
    client: kube::Client,
    replica_sets: &Informer<ReplicaSet>,
    pods: &Informer<Pod>,
    concurrency: u16,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let expectations = Arc::new(Expectations::default());
    let rs_store = replica_sets.store();
    let mapper = pod_mapper(rs_store.clone(), expectations.clone());
    let context = Arc::new(Context {
        client: client.clone(),
        pods: pods.store(),
        events: Events::new(client, NAME),
        expectations,
    });
    Controller::for_shared_stream(replica_sets.subscribe(), rs_store)
        .watches_shared_stream(pods.subscribe(), mapper)
        .with_config(controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "replica set sync did not complete");
            }
        })
}

/// A pod change concerns its controlling replica set, or — for an orphan — every replica set in
/// its namespace that selects it (one of them may adopt it).
fn pod_mapper(
    replica_sets: Store<ReplicaSet>,
    expectations: Arc<Expectations>,
) -> impl Fn(Arc<Pod>) -> Vec<ObjectRef<ReplicaSet>> + Send + Sync + 'static {
    move |pod| {
        let (Some(ns), Some(name)) = (pod.metadata.namespace.clone(), pod.metadata.name.clone()) else {
            return Vec::new();
        };
        expectations.observe((ns.clone(), name), std::time::Instant::now());
        match ownership::controller_of(&pod.metadata) {
            Some(owner) if owner.kind == "ReplicaSet" => vec![ObjectRef::new(&owner.name).within(&ns)],
            Some(_) => Vec::new(),
            None => replica_sets
                .state()
                .iter()
                .filter(|rs| rs.metadata.namespace.as_deref() == Some(ns.as_str()))
                .filter(|rs| {
                    let selector = rs.spec.as_ref().and_then(|s| ownership::selector(&s.selector));
                    ownership::matches(selector.as_ref(), pod.metadata.labels.as_ref())
                })
                .map(|rs| ObjectRef::from_obj(rs.as_ref()))
                .collect(),
        }
    }
}

impl Error {
    /// Lost a write race against a newer version: the cache will catch up, so retry soon, quietly.
    fn is_conflict(&self) -> bool {
        matches!(self, Error::Pods { source, .. } | Error::Status { source, .. } if crate::api_errors::is_conflict(source))
    }
}

fn error_policy(rs: Arc<ReplicaSet>, error: &Error, _: Arc<Context>) -> Action {
    if error.is_conflict() {
        tracing::debug!(replicaset = rs.metadata.name.as_deref().unwrap_or(""), %error, "conflict; retrying");
        return Action::requeue(Duration::from_secs(1));
    }
    tracing::warn!(replicaset = rs.metadata.name.as_deref().unwrap_or(""), %error, "sync failed; retrying");
    Action::requeue(Duration::from_secs(5))
}

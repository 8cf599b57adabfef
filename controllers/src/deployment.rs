//! The Deployment controller: rolls a deployment's pod template out through replica sets.

mod conditions;
mod hash;
mod proportion;
mod replicasets;
mod revision;
mod rollout;
mod strategy;
mod sync;

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::events::Events;
use crate::informer::Informer;
use crate::ownership;

pub use hash::pod_template_hash;

/// The event source name, as upstream.
pub const NAME: &str = "deployment-controller";

/// Failures syncing one deployment; the sync is retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A deployment without namespace, name or UID cannot be synced.
    #[error("failed to sync deployment: object has no {0}")]
    MissingField(&'static str),
    /// `maxSurge` or `maxUnavailable` is not a number or a percentage.
    #[error("failed to sync deployment {0}: invalid maxSurge or maxUnavailable")]
    InvalidFenceposts(String),
    /// A replica set with the new replica set's name belongs to something else.
    #[error("failed to create replica set {0}: the name is taken by another object; collision count raised")]
    HashCollision(String),
    /// A call to the API failed.
    #[error("failed to {action} for deployment {deployment}: {source}")]
    Api {
        action: &'static str,
        deployment: String,
        #[source]
        source: kube::Error,
    },
}

/// What every sync shares.
pub struct Context {
    pub client: kube::Client,
    pub replica_sets: Store<ReplicaSet>,
    pub pods: Store<Pod>,
    pub events: Events,
}

/// The controller, running until `shutdown` resolves; it subscribes to the informers at once.
pub fn run(
    client: kube::Client,
    deployments: &Informer<Deployment>,
    replica_sets: &Informer<ReplicaSet>,
    pods: &Informer<Pod>,
    concurrency: u16,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let context = Arc::new(Context {
        client: client.clone(),
        replica_sets: replica_sets.store(),
        pods: pods.store(),
        events: Events::new(client, NAME),
    });
    Controller::for_shared_stream(deployments.subscribe(), deployments.store())
        .watches_shared_stream(replica_sets.subscribe(), rs_mapper(deployments.store()))
        .watches_shared_stream(pods.subscribe(), deleted_pod_mapper(deployments.store(), replica_sets.store(), pods.store()))
        .with_config(controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(crate::metrics::instrumented("deployment", sync::reconcile), error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "deployment sync did not complete");
            }
        })
}

/// A replica set change concerns its controlling deployment, or — for an orphan — every deployment
/// in its namespace that selects it.
fn rs_mapper(deployments: Store<Deployment>) -> impl Fn(Arc<ReplicaSet>) -> Vec<ObjectRef<Deployment>> + Send + Sync + 'static {
    move |rs| {
        let Some(ns) = rs.metadata.namespace.clone() else { return Vec::new() };
        match ownership::controller_of(&rs.metadata) {
            Some(owner) if owner.kind == "Deployment" => vec![ObjectRef::new(&owner.name).within(&ns)],
            Some(_) => Vec::new(),
            None => deployments
                .state()
                .iter()
                .filter(|d| d.metadata.namespace.as_deref() == Some(ns.as_str()))
                .filter(|d| {
                    let selector = d.spec.as_ref().and_then(|s| ownership::selector(&s.selector));
                    ownership::matches(selector.as_ref(), rs.metadata.labels.as_ref())
                })
                .map(|d| ObjectRef::from_obj(d.as_ref()))
                .collect(),
        }
    }
}

/// A Recreate rollout waits for the old pods to be gone, so the deletion of such a pod wakes its
/// deployment (found through the pod's replica set).
fn deleted_pod_mapper(
    deployments: Store<Deployment>,
    replica_sets: Store<ReplicaSet>,
    pods: Store<Pod>,
) -> impl Fn(Arc<Pod>) -> Option<ObjectRef<Deployment>> + Send + Sync + 'static {
    move |pod| {
        let ns = pod.metadata.namespace.as_deref()?;
        if pods.get(&ObjectRef::from_obj(pod.as_ref())).is_some() {
            return None;
        }
        let rs_owner = ownership::controller_of(&pod.metadata).filter(|o| o.kind == "ReplicaSet")?;
        let rs = replica_sets.get(&ObjectRef::new(&rs_owner.name).within(ns))?;
        let d_owner = ownership::controller_of(&rs.metadata).filter(|o| o.kind == "Deployment")?;
        let reference = ObjectRef::new(&d_owner.name).within(ns);
        let d = deployments.get(&reference)?;
        let recreate = d.spec.as_ref().and_then(|s| s.strategy.as_ref()).and_then(|s| s.type_.as_deref()) == Some("Recreate");
        recreate.then_some(reference)
    }
}

impl Error {
    /// Lost a write race against a newer version, or raised the collision count to escape a hash
    /// collision: the next sync resolves it, so retry soon, quietly.
    fn is_transient(&self) -> bool {
        match self {
            Error::Api { source, .. } => crate::api_errors::is_conflict(source),
            Error::HashCollision(_) => true,
            _ => false,
        }
    }
}

fn error_policy(d: Arc<Deployment>, error: &Error, _: Arc<Context>) -> Action {
    crate::retry::after_error("Deployment", d.metadata.name.as_deref(), error.is_transient(), error)
}

//! The ResourceQuota controller: keeps each quota's `status.hard` equal to its spec and its
//! `status.used` equal to what the namespace holds, recalculated when counted objects change and on
//! a full resync. The apiserver's quota admission plugin enforces the limits from this status.

mod amounts;
mod pods;
mod scopes;
mod sync;
mod triggers;
mod usage;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, ResourceQuota};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::informer::Informer;

pub use amounts::{Amounts, format_milli};
pub use usage::{Source, source_of};

/// Failures syncing one quota; the sync is retried. `quota` reads `namespace/name`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A quota without namespace or name cannot be synced.
    #[error("failed to sync ResourceQuota: object has no {0}")]
    MissingField(&'static str),
    /// Listing the objects a quota counts failed.
    #[error("failed to list {what} for ResourceQuota {quota}: {}", crate::replicaset::api_message(source))]
    List {
        what: String,
        quota: String,
        #[source]
        source: kube::Error,
    },
    /// Writing the status failed.
    #[error("failed to update the status of ResourceQuota {quota}: {}", crate::replicaset::api_message(source))]
    Api {
        quota: String,
        #[source]
        source: kube::Error,
    },
}

impl Error {
    fn is_conflict(&self) -> bool {
        matches!(self, Error::Api { source, .. } if crate::api_errors::is_conflict(source))
    }
}

/// Settings from the command line.
#[derive(Debug, Clone)]
pub struct Config {
    /// Quotas synced concurrently.
    pub concurrency: u16,
    /// How often every quota is recalculated even if nothing it counts was seen to change.
    pub resync: Duration,
}

/// What every sync shares.
pub struct Context {
    pub client: kube::Client,
    pub pods: Store<Pod>,
    pub resync: Duration,
    /// Resolved `(resource, group)` → API resource, so generic counts need discovery only once.
    resources: Mutex<HashMap<(String, String), kube::discovery::ApiResource>>,
}

/// The controller, running until `shutdown` resolves; it subscribes to the informers at once.
pub fn run(
    client: kube::Client,
    quotas: &Informer<ResourceQuota>,
    pod_informer: &Informer<Pod>,
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let quota_store = quotas.store();
    let context = Arc::new(Context { client: client.clone(), pods: pod_informer.store(), resync: config.resync, resources: Mutex::default() });
    let in_namespace = namespace_mapper(quota_store.clone());
    let pod_changes = pod_informer.subscribe().filter_map(|pod| async move { pod.metadata.namespace.clone() });
    let changed = futures::stream::select(pod_changes, triggers::namespaces_of_changes(client)).flat_map(move |ns| futures::stream::iter(in_namespace(&ns)));
    Controller::for_shared_stream(quotas.subscribe(), quota_store)
        .reconcile_on(changed)
        .with_config(controller::Config::default().concurrency(config.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(sync::reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "resource quota sync did not complete");
            }
        })
}

/// A change in a namespace concerns every quota there.
fn namespace_mapper(quotas: Store<ResourceQuota>) -> impl Fn(&str) -> Vec<ObjectRef<ResourceQuota>> + Send + Sync + 'static {
    move |ns| quotas.state().iter().filter(|q| q.metadata.namespace.as_deref() == Some(ns)).map(|q| ObjectRef::from_obj(q.as_ref())).collect()
}

fn error_policy(quota: Arc<ResourceQuota>, error: &Error, _: Arc<Context>) -> Action {
    crate::retry::after_error("ResourceQuota", quota.metadata.name.as_deref(), error.is_conflict(), error)
}

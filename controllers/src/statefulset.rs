//! The StatefulSet controller: runs `spec.replicas` pods with stable identities `<set>-<ordinal>`,
//! each with its own PersistentVolumeClaims, created and deleted in ordinal order (or all at once
//! for `podManagementPolicy: Parallel`), and rolled to new templates through ControllerRevisions.

mod claims;
mod identity;
mod order;
mod pending;
pub(crate) mod revision;
mod status;
mod sync;
mod update;

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::Store;

use crate::events::Events;
use crate::informer::Informer;
use crate::ownership;

pub use identity::{POD_INDEX_LABEL, POD_NAME_LABEL, REVISION_LABEL};

/// The event source name, as upstream.
pub const NAME: &str = "statefulset-controller";

/// Failures syncing one set; the sync is retried. `set` reads `namespace/name`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A set without namespace, name or UID cannot be synced.
    #[error("failed to sync StatefulSet: object has no {0}")]
    MissingField(&'static str),
    /// A write to the API failed.
    #[error("failed to {action} for StatefulSet {set}: {}", crate::replicaset::api_message(source))]
    Api {
        action: String,
        set: String,
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
    pub revisions: Store<ControllerRevision>,
    pub events: Events,
    /// Pod creations and deletions not yet seen in the cache, so a stale cache does not repeat them.
    pending: pending::Pending,
}

/// The controller, running until `shutdown` resolves; it subscribes to the informers at once.
pub fn run(
    client: kube::Client,
    sets: &Informer<StatefulSet>,
    pods: &Informer<Pod>,
    revisions: &Informer<ControllerRevision>,
    concurrency: u16,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let set_store = sets.store();
    let context = Arc::new(Context {
        client: client.clone(),
        pods: pods.store(),
        revisions: revisions.store(),
        events: Events::new(client, NAME),
        pending: pending::Pending::default(),
    });
    Controller::for_shared_stream(sets.subscribe(), set_store.clone())
        .watches_shared_stream(pods.subscribe(), move |pod: Arc<Pod>| ownership::owners_of_pod(&set_store, &pod))
        .watches_shared_stream(revisions.subscribe(), |revision: Arc<ControllerRevision>| {
            ownership::controlling::<StatefulSet>(&revision.metadata).into_iter().collect::<Vec<_>>()
        })
        .with_config(controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(sync::reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "statefulset sync did not complete");
            }
        })
}

impl ownership::SelectsPods for StatefulSet {
    fn pod_selector(&self) -> Option<kube::core::Selector> {
        self.spec.as_ref().and_then(|spec| ownership::selector(&spec.selector))
    }
}

fn error_policy(set: Arc<StatefulSet>, error: &Error, _: Arc<Context>) -> Action {
    crate::retry::after_error("StatefulSet", set.metadata.name.as_deref(), error.is_conflict(), error)
}


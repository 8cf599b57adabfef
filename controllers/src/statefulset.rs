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
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};

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
        .watches_shared_stream(pods.subscribe(), pod_mapper(set_store))
        .watches_shared_stream(revisions.subscribe(), |revision: Arc<ControllerRevision>| {
            owning_set(&revision.metadata.namespace, ownership::controller_of(&revision.metadata)).into_iter().collect::<Vec<_>>()
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

/// The set a controller reference points at, if it points at a StatefulSet.
fn owning_set(namespace: &Option<String>, owner: Option<&OwnerReference>) -> Option<ObjectRef<StatefulSet>> {
    let (ns, owner) = (namespace.as_deref()?, owner?);
    let group = owner.api_version.rsplit_once('/').map_or("", |(group, _)| group);
    (owner.kind == StatefulSet::kind(&()) && group == StatefulSet::group(&())).then(|| ObjectRef::new(&owner.name).within(ns))
}

/// A pod change concerns its controlling set, or — for an orphan — every set in its namespace that
/// selects it (one of them may adopt it).
fn pod_mapper(sets: Store<StatefulSet>) -> impl Fn(Arc<Pod>) -> Vec<ObjectRef<StatefulSet>> + Send + Sync + 'static {
    move |pod| {
        let Some(ns) = pod.metadata.namespace.clone() else {
            return Vec::new();
        };
        match ownership::controller_of(&pod.metadata) {
            Some(owner) => owning_set(&pod.metadata.namespace, Some(owner)).into_iter().collect(),
            None => sets
                .state()
                .iter()
                .filter(|s| s.metadata.namespace.as_deref() == Some(ns.as_str()))
                .filter(|s| {
                    let selector = s.spec.as_ref().and_then(|spec| ownership::selector(&spec.selector));
                    ownership::matches(selector.as_ref(), pod.metadata.labels.as_ref())
                })
                .map(|s| ObjectRef::from_obj(s.as_ref()))
                .collect(),
        }
    }
}

fn error_policy(set: Arc<StatefulSet>, error: &Error, _: Arc<Context>) -> Action {
    let name = set.metadata.name.as_deref().unwrap_or("");
    if error.is_conflict() {
        tracing::debug!(name, %error, "conflict; retrying");
        return Action::requeue(Duration::from_secs(1));
    }
    tracing::warn!(name, %error, "statefulset sync failed; retrying");
    Action::requeue(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owning_set_only_for_statefulsets() {
        let ns = Some("ns".to_string());
        let reference = |api_version: &str, kind: &str| OwnerReference { api_version: api_version.into(), kind: kind.into(), name: "web".into(), ..Default::default() };
        let cases = [
            ("statefulset", reference("apps/v1", "StatefulSet"), true),
            ("other group", reference("example.com/v1", "StatefulSet"), false),
            ("replica set", reference("apps/v1", "ReplicaSet"), false),
        ];
        for (name, r, want) in cases {
            assert_eq!(owning_set(&ns, Some(&r)).is_some(), want, "{name}");
        }
        assert_eq!(owning_set(&ns, Some(&reference("apps/v1", "StatefulSet"))), Some(ObjectRef::new("web").within("ns")));
        assert_eq!(owning_set(&None, Some(&reference("apps/v1", "StatefulSet"))), None, "no namespace");
    }
}

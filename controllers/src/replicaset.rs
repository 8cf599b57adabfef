//! The ReplicaSet controller: keeps `spec.replicas` pods running from a replica set's template.
//! The same engine runs ReplicationControllers (see [`ReplicaOwner`]).

mod expectations;
mod owner;
mod pods;
mod ranking;
mod reconcile;
mod status;

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::events::Events;
use crate::informer::Informer;
use crate::ownership;

pub use expectations::{Expectations, PodKey, Seen};
pub use pods::{is_available, is_ready};
pub use owner::{ReplicaOwner, controller_reference, refers_to};

/// The event source name, as upstream.
pub const NAME: &str = <ReplicaSet as ReplicaOwner>::CONTROLLER;

/// Failures syncing one owner (replica set or replication controller); the sync is retried.
/// `owner` reads `<Kind> <namespace>/<name>`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An owner without namespace, name or UID cannot be synced.
    #[error("failed to sync {kind}: object has no {field}")]
    MissingField { kind: String, field: &'static str },
    /// Creating, deleting, adopting or releasing pods failed.
    #[error("failed to {action} for {owner}: {}", api_message(source))]
    Pods {
        action: &'static str,
        owner: String,
        #[source]
        source: kube::Error,
    },
    /// Writing the status failed.
    #[error("failed to update status of {owner}: {}", api_message(source))]
    Status {
        owner: String,
        #[source]
        source: kube::Error,
    },
}

/// The apiserver's own words for a failed request (its Status message, e.g. `pods "x" is
/// forbidden: exceeded quota: …`), which upstream puts in events and the ReplicaFailure condition;
/// other failures in their display form.
pub fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        other => other.to_string(),
    }
}

/// What every sync shares.
pub struct Context {
    pub client: kube::Client,
    pub pods: Store<Pod>,
    pub events: Events,
    pub expectations: Arc<Expectations>,
}

/// The controller for owners of kind `K`, running until `shutdown` resolves; it subscribes to the
/// informers at once.
pub fn run<K: ReplicaOwner>(
    client: kube::Client,
    owners: &Informer<K>,
    pods: &Informer<Pod>,
    concurrency: u16,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let expectations = Arc::new(Expectations::default());
    let owner_store = owners.store();
    let mapper = pod_mapper(owner_store.clone(), expectations.clone());
    let context = Arc::new(Context {
        client: client.clone(),
        pods: pods.store(),
        events: Events::new(client, K::CONTROLLER),
        expectations,
    });
    // Upstream's workqueue names, for the metrics.
    let queue = if K::CONTROLLER == NAME { "replicaset" } else { "replicationmanager" };
    Controller::for_shared_stream(owners.subscribe(), owner_store)
        .watches_shared_stream(pods.subscribe(), mapper)
        .with_config(controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(crate::metrics::instrumented(queue, reconcile::reconcile::<K>), error_policy::<K>, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(kind = %K::kind(&()), %error, "sync did not complete");
            }
        })
}

/// A pod change concerns its controlling owner, or — for an orphan — every owner in its namespace
/// that selects it. Every change is also noted for the expectations.
fn pod_mapper<K: ReplicaOwner>(
    owners: Store<K>,
    expectations: Arc<Expectations>,
) -> impl Fn(Arc<Pod>) -> Vec<ObjectRef<K>> + Send + Sync + 'static {
    move |pod| {
        if let (Some(ns), Some(name)) = (pod.metadata.namespace.clone(), pod.metadata.name.clone()) {
            expectations.observe((ns, name), std::time::Instant::now());
        }
        ownership::owners_of_pod(&owners, &pod)
    }
}

impl Error {
    /// Lost a write race against a newer version: the cache will catch up, so retry soon, quietly.
    fn is_conflict(&self) -> bool {
        matches!(self, Error::Pods { source, .. } | Error::Status { source, .. } if crate::api_errors::is_conflict(source))
    }
}

fn error_policy<K: ReplicaOwner>(owner: Arc<K>, error: &Error, _: Arc<Context>) -> Action {
    crate::retry::after_error(&K::kind(&()), owner.meta().name.as_deref(), error.is_conflict(), error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(message: &str) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code: 403,
            message: message.to_string(),
            reason: "Forbidden".to_string(),
            ..Default::default()
        }))
    }

    #[test]
    fn failure_messages_are_the_apiservers_words() {
        let quota = r#"pods "web-x" is forbidden: exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1"#;
        let cases = [
            ("api status message", api_error(quota), quota.to_string()),
            ("api status without message falls back to display", api_error(""), api_error("").to_string()),
        ];
        for (name, error, want) in cases {
            assert_eq!(api_message(&error), want, "{name}");
        }
        let sync = Error::Pods { action: "create pod", owner: "ReplicationController ns/web".into(), source: api_error(quota) };
        assert_eq!(sync.to_string(), format!("failed to create pod for ReplicationController ns/web: {quota}"));
        assert!(!sync.to_string().contains("ErrorResponse") && !sync.to_string().contains("Status {"), "no debug dump");
    }
}

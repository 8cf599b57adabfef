//! The disruption controller: keeps each PodDisruptionBudget's status — healthy and expected pods,
//! disruptions allowed, recorded disruptions, the DisruptionAllowed condition — current, so the
//! apiserver's eviction API can decide from it. Also resets stale DisruptionTarget pod conditions.

mod budget;
mod health;
mod scale;
mod stale;
mod status;
mod sync;

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::Selector;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::events::Events;
use crate::informer::Informer;

pub use budget::{NotAPercentage, Requirement, disruptions_allowed, scaled};
pub use status::{DISRUPTION_ALLOWED, INSUFFICIENT_PODS, SUFFICIENT_PODS, SYNC_FAILED};

/// The event source name, as upstream.
pub const NAME: &str = "controllermanager";

/// Failures syncing one budget; the sync is retried. `budget` reads `namespace/name`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A budget without namespace or name cannot be synced.
    #[error("failed to sync PodDisruptionBudget: object has no {0}")]
    MissingField(&'static str),
    /// The budget's selector cannot be parsed.
    #[error("failed to parse the selector of PodDisruptionBudget {budget}: {reason}")]
    Selector { budget: String, reason: String },
    /// The expected pod count could not be worked out.
    #[error("failed to calculate the number of expected pods: {0}")]
    Expected(String),
    /// Writing the status failed.
    #[error("failed to update the status of PodDisruptionBudget {budget}: {}", crate::replicaset::api_message(source))]
    Api {
        budget: String,
        #[source]
        source: kube::Error,
    },
}

impl Error {
    /// The message for the SyncFailed condition: upstream puts the cause there without our prefix.
    fn condition_message(&self) -> String {
        match self {
            Error::Expected(message) => message.clone(),
            other => other.to_string(),
        }
    }

    fn is_conflict(&self) -> bool {
        matches!(self, Error::Api { source, .. } if crate::api_errors::is_conflict(source))
    }
}

/// The informers the controller reads.
pub struct Informers<'a> {
    pub budgets: &'a Informer<PodDisruptionBudget>,
    pub pods: &'a Informer<Pod>,
    pub replica_sets: &'a Informer<ReplicaSet>,
    pub deployments: &'a Informer<Deployment>,
    pub replication_controllers: &'a Informer<ReplicationController>,
    pub stateful_sets: &'a Informer<StatefulSet>,
}

/// What every sync shares.
pub struct Context {
    pub client: kube::Client,
    pub pods: Store<Pod>,
    pub controllers: scale::Stores,
    pub events: Events,
}

/// The selector of a budget: a missing one selects nothing, an empty one every pod of the namespace
/// (policy/v1 semantics).
pub fn budget_selector(selector: Option<&LabelSelector>) -> Result<Option<Selector>, String> {
    selector.map(|s| Selector::try_from(s.clone()).map_err(|e| e.to_string())).transpose()
}

/// The controller, running until `shutdown` resolves; it subscribes to the informers at once.
pub fn run(
    client: kube::Client,
    informers: Informers<'_>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let shutdown = futures::FutureExt::shared(shutdown);
    let budget_store = informers.budgets.store();
    let context = Arc::new(Context {
        client: client.clone(),
        pods: informers.pods.store(),
        controllers: scale::Stores {
            replica_sets: informers.replica_sets.store(),
            deployments: informers.deployments.store(),
            replication_controllers: informers.replication_controllers.store(),
            stateful_sets: informers.stateful_sets.store(),
        },
        events: Events::new(client.clone(), NAME),
    });
    let stale = stale::run(client, informers.pods.store(), shutdown.clone());
    let budgets = Controller::for_shared_stream(informers.budgets.subscribe(), budget_store.clone())
        .watches_shared_stream(informers.pods.subscribe(), pod_mapper(budget_store))
        .with_config(controller::Config::default().concurrency(2))
        .graceful_shutdown_on(shutdown)
        .run(sync::reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "disruption budget sync did not complete");
            }
        });
    async move {
        futures::future::join(budgets, stale).await;
    }
}

/// A pod change concerns every budget of its namespace that selects it.
fn pod_mapper(budgets: Store<PodDisruptionBudget>) -> impl Fn(Arc<Pod>) -> Vec<ObjectRef<PodDisruptionBudget>> + Send + Sync + 'static {
    move |pod| {
        let Some(ns) = pod.metadata.namespace.as_deref() else {
            return Vec::new();
        };
        let empty = Default::default();
        let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
        budgets
            .state()
            .iter()
            .filter(|b| b.metadata.namespace.as_deref() == Some(ns))
            .filter(|b| {
                let selector = budget_selector(b.spec.as_ref().and_then(|s| s.selector.as_ref()));
                selector.ok().flatten().is_some_and(|s| kube::core::SelectorExt::matches(&s, labels))
            })
            .map(|b| ObjectRef::from_obj(b.as_ref()))
            .collect()
    }
}

fn error_policy(budget: Arc<PodDisruptionBudget>, error: &Error, _: Arc<Context>) -> Action {
    crate::retry::after_error("PodDisruptionBudget", budget.metadata.name.as_deref(), error.is_conflict(), error)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kube::core::SelectorExt;

    use super::*;

    #[test]
    fn selectors() {
        let labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
        let other = BTreeMap::from([("app".to_string(), "db".to_string())]);
        let by_app = LabelSelector { match_labels: Some(BTreeMap::from([("app".into(), "web".into())])), ..Default::default() };
        let matches = |s: Option<&LabelSelector>, l: &BTreeMap<String, String>| budget_selector(s).ok().flatten().is_some_and(|s| s.matches(l));
        let cases = [
            ("missing selects nothing", None, &labels, false),
            ("empty selects everything", Some(LabelSelector::default()), &other, true),
            ("labels match", Some(by_app.clone()), &labels, true),
            ("labels differ", Some(by_app), &other, false),
        ];
        for (name, selector, l, want) in cases {
            assert_eq!(matches(selector.as_ref(), l), want, "{name}");
        }
    }
}

//! The DaemonSet controller: one pod of a set's template on every node its placement rules and
//! taints admit, pinned there by node affinity (the scheduler binds it), rolled to new templates
//! through ControllerRevisions either node by node (RollingUpdate) or as pods are deleted
//! (OnDelete).

mod backoff;
mod eligibility;
mod history;
mod plan;
mod pods;
mod rolling;
mod status;
mod sync;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::events::Events;
use crate::informer::Informer;
use crate::ownership;
use crate::replicaset::Expectations;

pub use pods::{REVISION_HASH_LABEL, TEMPLATE_GENERATION_LABEL};

/// The event source name, as upstream.
pub const NAME: &str = "daemonset-controller";

/// Failures syncing one set; the sync is retried. `set` reads `namespace/name`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A set without namespace, name or UID cannot be synced.
    #[error("failed to sync DaemonSet: object has no {0}")]
    MissingField(&'static str),
    /// A write to the API failed.
    #[error("failed to {action} for DaemonSet {set}: {}", crate::replicaset::api_message(source))]
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
    pub nodes: Store<Node>,
    pub revisions: Store<ControllerRevision>,
    pub events: Events,
    expectations: Arc<Expectations>,
    failed_pods: backoff::Backoff,
}

/// The controller, running until `shutdown` resolves; it subscribes to the informers at once.
pub fn run(
    client: kube::Client,
    sets: &Informer<DaemonSet>,
    pods: &Informer<Pod>,
    nodes: &Informer<Node>,
    revisions: &Informer<ControllerRevision>,
    concurrency: u16,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let set_store = sets.store();
    let expectations = Arc::new(Expectations::default());
    let context = Arc::new(Context {
        client: client.clone(),
        pods: pods.store(),
        nodes: nodes.store(),
        revisions: revisions.store(),
        events: Events::new(client, NAME),
        expectations: expectations.clone(),
        failed_pods: backoff::Backoff::default(),
    });
    Controller::for_shared_stream(sets.subscribe(), set_store.clone())
        .watches_shared_stream(pods.subscribe(), pod_mapper(set_store.clone(), expectations))
        .watches_shared_stream(revisions.subscribe(), |revision: Arc<ControllerRevision>| {
            ownership::controlling::<DaemonSet>(&revision.metadata).into_iter().collect::<Vec<_>>()
        })
        .watches_shared_stream(nodes.subscribe(), node_mapper(set_store, nodes.store()))
        .with_config(controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(sync::reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "daemonset sync did not complete");
            }
        })
}

impl ownership::SelectsPods for DaemonSet {
    fn pod_selector(&self) -> Option<kube::core::Selector> {
        self.spec.as_ref().and_then(|spec| ownership::selector(&spec.selector))
    }
}

/// A pod change concerns its controlling set, or — for an orphan — every set in its namespace that
/// selects it. Every change is also noted for the expectations.
fn pod_mapper(sets: Store<DaemonSet>, expectations: Arc<Expectations>) -> impl Fn(Arc<Pod>) -> Vec<ObjectRef<DaemonSet>> + Send + Sync + 'static {
    move |pod| {
        if let (Some(ns), Some(name)) = (pod.metadata.namespace.clone(), pod.metadata.name.clone()) {
            expectations.observe((ns, name), Instant::now());
        }
        ownership::owners_of_pod(&sets, &pod)
    }
}

/// What about a node decides where daemons run: its labels, taints and cordon.
type Placement = (Option<BTreeMap<String, String>>, Option<Vec<Taint>>, Option<bool>);

fn placement_of(node: &Node) -> Placement {
    let spec = node.spec.as_ref();
    (node.metadata.labels.clone(), spec.and_then(|s| s.taints.clone()), spec.and_then(|s| s.unschedulable))
}

/// A node added, removed, relabelled or (un)tainted concerns every set; the status heartbeats
/// node agents send every few seconds concern none, so they are filtered out here.
fn node_mapper(sets: Store<DaemonSet>, nodes: Store<Node>) -> impl Fn(Arc<Node>) -> Vec<ObjectRef<DaemonSet>> + Send + Sync + 'static {
    let known: Mutex<HashMap<String, Placement>> = Mutex::default();
    move |node| {
        let Some(name) = node.metadata.name.clone() else { return Vec::new() };
        let mut known = known.lock().unwrap_or_else(|p| p.into_inner());
        let changed = if nodes.get(&ObjectRef::new(&name)).is_none() {
            known.remove(&name);
            true
        } else {
            let placement = placement_of(&node);
            known.insert(name, placement.clone()).is_none_or(|before| before != placement)
        };
        if !changed {
            return Vec::new();
        }
        sets.state().iter().map(|s| ObjectRef::from_obj(s.as_ref())).collect()
    }
}

fn error_policy(set: Arc<DaemonSet>, error: &Error, _: Arc<Context>) -> Action {
    crate::retry::after_error("DaemonSet", set.metadata.name.as_deref(), error.is_conflict(), error)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::NodeSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use kube::runtime::reflector::store::Writer;
    use kube::runtime::watcher;

    use super::*;

    #[test]
    fn node_heartbeats_are_filtered() {
        let mut set_writer: Writer<DaemonSet> = Writer::default();
        let ds = DaemonSet { metadata: ObjectMeta { name: Some("agent".into()), namespace: Some("ns".into()), ..Default::default() }, ..Default::default() };
        set_writer.apply_watcher_event(&watcher::Event::Apply(ds));
        let mut node_writer: Writer<Node> = Writer::default();
        let node = |labels: &[(&str, &str)], taint: bool| Node {
            metadata: ObjectMeta { name: Some("n1".into()), labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()), ..Default::default() },
            spec: Some(NodeSpec { taints: taint.then(|| vec![Taint { key: "k".into(), effect: "NoSchedule".into(), ..Default::default() }]), ..Default::default() }),
            status: None,
        };
        let mapper = node_mapper(set_writer.as_reader(), node_writer.as_reader());
        let mut deliver = |n: Node, deleted: bool| {
            node_writer.apply_watcher_event(&if deleted { watcher::Event::Delete(n.clone()) } else { watcher::Event::Apply(n.clone()) });
            mapper(Arc::new(n)).len()
        };
        let steps = [
            ("new node", node(&[], false), false, 1),
            ("heartbeat", node(&[], false), false, 0),
            ("relabelled", node(&[("a", "b")], false), false, 1),
            ("tainted", node(&[("a", "b")], true), false, 1),
            ("heartbeat again", node(&[("a", "b")], true), false, 0),
            ("removed", node(&[("a", "b")], true), true, 1),
        ];
        for (name, n, deleted, want) in steps {
            assert_eq!(deliver(n, deleted), want, "{name}");
        }
    }
}

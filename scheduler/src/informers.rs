//! Watches nodes and pods into reflector stores and turns their changes into queue and cache updates:
//! pending pods enter the queue; deleted pods and node changes that could matter to scheduling give
//! unschedulable pods another try.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Api;

use crate::cache::SchedulerCache;
use crate::eligibility::{is_assigned, responsible_for_any};
use crate::framework::node_info::pod_key;
use crate::plugins::node_ready::ready_status;
use crate::queue::SchedulingQueue;

/// Terminal pods hold no resources; upstream's scheduler leaves them out of its informer the same way.
pub const POD_FIELD_SELECTOR: &str = "status.phase!=Succeeded,status.phase!=Failed";

/// The parts of a node that scheduling decisions depend on; heartbeat-only updates leave it unchanged.
#[derive(Debug, Clone, PartialEq)]
struct NodeFingerprint {
    labels: BTreeMap<String, String>,
    taints: Vec<Taint>,
    unschedulable: bool,
    allocatable: BTreeMap<String, String>,
    ready: String,
}

fn fingerprint(node: &Node) -> NodeFingerprint {
    let spec = node.spec.as_ref();
    NodeFingerprint {
        labels: node.metadata.labels.clone().unwrap_or_default(),
        taints: spec.and_then(|s| s.taints.clone()).unwrap_or_default(),
        unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
        allocatable: node
            .status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref())
            .map(|a| a.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect())
            .unwrap_or_default(),
        ready: ready_status(node).to_string(),
    }
}

/// Applies watch events to the queue and cache.
pub struct EventHandlers {
    /// One per profile.
    pub scheduler_names: Vec<String>,
    pub queue: Arc<SchedulingQueue>,
    pub cache: Arc<SchedulerCache>,
    nodes_seen: Mutex<HashMap<String, NodeFingerprint>>,
    /// The reflector stores the events came through.
    pods: Store<Pod>,
    nodes: Store<Node>,
}

/// Whether where other pods run can decide where `pod` fits: its own spread constraints or pod
/// (anti-)affinity. (Existing pods' anti-affinity against it is left to the other requeue triggers.)
fn depends_on_other_pods(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else { return false };
    let affinity = spec.affinity.as_ref();
    spec.topology_spread_constraints.as_ref().is_some_and(|c| !c.is_empty())
        || affinity.is_some_and(|a| a.pod_affinity.is_some() || a.pod_anti_affinity.is_some())
}

impl EventHandlers {
    /// Handlers for one profile over empty stores (the tests feed them events directly).
    #[cfg(test)]
    pub fn new(scheduler_name: String, queue: Arc<SchedulingQueue>, cache: Arc<SchedulerCache>) -> Self {
        let (pods, _) = reflector::store();
        let (nodes, _) = reflector::store();
        Self::for_profiles(vec![scheduler_name], queue, cache, pods, nodes)
    }

    /// Handlers queueing the pods of every listed profile. `pods` and `nodes` are the stores the watch
    /// events are applied to: the cache and queue share their objects, and each relist resyncs the cache
    /// from them.
    pub fn for_profiles(
        scheduler_names: Vec<String>,
        queue: Arc<SchedulingQueue>,
        cache: Arc<SchedulerCache>,
        pods: Store<Pod>,
        nodes: Store<Node>,
    ) -> Self {
        Self { scheduler_names, queue, cache, nodes_seen: Mutex::default(), pods, nodes }
    }

    pub fn on_pod(&self, event: &Event<Pod>) {
        match event {
            Event::Apply(pod) | Event::InitApply(pod) => {
                let key = pod_key(pod);
                // During a relist the store only takes the new objects at its end (InitDone, which
                // resyncs the cache), so it has no version of them to share yet.
                let object = match event {
                    Event::Apply(_) => {
                        let object = shared(&self.pods, pod);
                        self.cache.pod_applied(object.clone());
                        object
                    }
                    _ => Arc::new(pod.clone()),
                };
                if !is_assigned(pod) && responsible_for_any(pod, &self.scheduler_names) {
                    self.queue.add_or_update(object);
                } else {
                    self.queue.delete(&key);
                    if is_assigned(pod) {
                        self.cache.clear_nomination(&key);
                    }
                    // A pod running somewhere changes topology spread counts and inter-pod (anti-)affinity
                    // matches: the pods rejected for those get another try (upstream's queueing hints).
                    if is_assigned(pod) {
                        self.queue.move_to_active_or_backoff_where(depends_on_other_pods);
                    }
                }
            }
            Event::Delete(pod) => {
                let key = pod_key(pod);
                self.queue.delete(&key);
                self.cache.pod_deleted(&key);
                self.cache.clear_nomination(&key);
                if is_assigned(pod) {
                    // Its resources are free now.
                    self.queue.move_all_to_active_or_backoff();
                }
            }
            // A relist may hide deletions that happened while disconnected: give everyone a retry.
            Event::InitDone => {
                self.cache.resync_pods(&self.pods.state());
                self.queue.move_all_to_active_or_backoff();
            }
            Event::Init => {}
        }
    }

    pub fn on_node(&self, event: &Event<Node>) {
        match event {
            Event::Apply(node) | Event::InitApply(node) => {
                if let Event::Apply(_) = event {
                    self.cache.node_applied(shared(&self.nodes, node));
                }
                let name = node.metadata.name.clone().unwrap_or_default();
                let fp = fingerprint(node);
                let changed = {
                    let mut seen = self.nodes_seen.lock().unwrap_or_else(|p| p.into_inner());
                    seen.insert(name, fp.clone()).is_none_or(|old| old != fp)
                };
                if changed {
                    self.queue.move_all_to_active_or_backoff();
                }
            }
            Event::Delete(node) => {
                let name = node.metadata.name.clone().unwrap_or_default();
                self.cache.node_deleted(&name);
                self.nodes_seen.lock().unwrap_or_else(|p| p.into_inner()).remove(&name);
            }
            Event::InitDone => {
                self.cache.resync_nodes(&self.nodes.state());
                self.queue.move_all_to_active_or_backoff();
            }
            Event::Init => {}
        }
    }
}

/// The store's object for exactly this version of `obj` (the reflector applied it before handing on the
/// event), or a copy when the store holds another version (or none).
fn shared<K>(store: &Store<K>, obj: &K) -> Arc<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    store
        .get(&ObjectRef::from_obj(obj))
        .filter(|stored| stored.meta().resource_version == obj.meta().resource_version)
        .unwrap_or_else(|| Arc::new(obj.clone()))
}

/// The watch → reflector stream for pods, with upstream-like backoff on errors.
pub fn pod_stream(client: kube::Client, writer: Writer<Pod>) -> impl Stream<Item = Result<Event<Pod>, watcher::Error>> {
    let api: Api<Pod> = Api::all(client);
    reflector::reflector(writer, watcher::watcher(api, watcher::Config::default().fields(POD_FIELD_SELECTOR)).default_backoff())
}

pub fn node_stream(client: kube::Client, writer: Writer<Node>) -> impl Stream<Item = Result<Event<Node>, watcher::Error>> {
    let api: Api<Node> = Api::all(client);
    reflector::reflector(writer, watcher::watcher(api, watcher::Config::default()).default_backoff())
}

/// Drives a stream, handing each event to `handle`; watch errors are logged (the stream retries).
pub async fn drive<K>(stream: impl Stream<Item = Result<Event<K>, watcher::Error>>, what: &str, handle: impl Fn(&Event<K>)) {
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        match item {
            Ok(ev) => handle(&ev),
            Err(e) => tracing::warn!(error = %e, "{what} watch failed; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod};

    fn handlers() -> EventHandlers {
        EventHandlers::new("default-scheduler".into(), Arc::new(SchedulingQueue::new()), Arc::new(SchedulerCache::new()))
    }

    fn park_unschedulable(h: &EventHandlers) {
        h.on_pod(&Event::Apply(pod("p")));
        let (qp, cycle) = futures::executor::block_on(h.queue.pop());
        h.queue.add_unschedulable(qp, cycle);
    }

    fn lengths(h: &EventHandlers) -> (usize, usize) {
        let l = h.queue.lengths();
        (l.active + l.backoff, l.unschedulable)
    }

    #[test]
    fn pending_pods_are_queued_and_bound_ones_leave() {
        let h = handlers();
        h.on_pod(&Event::Apply(pod("p")));
        assert_eq!(h.queue.lengths().active, 1);
        let mut bound = pod("p");
        if let Some(s) = bound.spec.as_mut() {
            s.node_name = Some("n".into());
        }
        h.on_pod(&Event::Apply(bound));
        assert_eq!(h.queue.lengths().active, 0);
        let mut other = pod("q");
        if let Some(s) = other.spec.as_mut() {
            s.scheduler_name = Some("other".into());
        }
        h.on_pod(&Event::Apply(other));
        assert_eq!(h.queue.lengths().active, 0, "another scheduler's pod is ignored");
    }

    #[test]
    fn cluster_changes_retry_unschedulable_pods() {
        let h = handlers();
        park_unschedulable(&h);
        assert_eq!(lengths(&h), (0, 1));

        h.on_node(&Event::Apply(node("a", "4", "4Gi")));
        assert_eq!(lengths(&h), (1, 0), "node added");

        park_again(&h);
        h.on_node(&Event::Apply(node("a", "4", "4Gi")));
        assert_eq!(lengths(&h), (0, 1), "identical node update (heartbeat) changes nothing");

        let mut cordoned = node("a", "4", "4Gi");
        if let Some(s) = cordoned.spec.as_mut() {
            s.unschedulable = Some(true);
        }
        h.on_node(&Event::Apply(cordoned));
        assert_eq!(lengths(&h), (1, 0), "relevant node update");

        park_again(&h);
        let mut gone = pod("x");
        if let Some(s) = gone.spec.as_mut() {
            s.node_name = Some("a".into());
        }
        h.on_pod(&Event::Delete(gone));
        assert_eq!(lengths(&h), (1, 0), "bound pod deleted");
    }

    fn park_again(h: &EventHandlers) {
        // It may still be backing off; a fresh copy (delete, then add) is poppable at once.
        if h.queue.lengths().active == 0 {
            h.queue.delete("default/p");
            h.on_pod(&Event::Apply(pod("p")));
        }
        let (qp, cycle) = futures::executor::block_on(h.queue.pop());
        // Pop happened after the last move request, so it lands in the unschedulable pool.
        h.queue.add_unschedulable(qp, cycle);
        assert_eq!(h.queue.lengths().unschedulable, 1, "parked");
    }
}

#[cfg(test)]
mod requeue_on_bound_pods {
    use super::*;
    use crate::testing::pod;
    use k8s_openapi::api::core::v1::TopologySpreadConstraint;

    fn bound(name: &str) -> Pod {
        let mut p = pod(name);
        if let Some(s) = p.spec.as_mut() {
            s.node_name = Some("a".into());
        }
        p
    }

    #[test]
    fn a_bound_pod_retries_only_pods_that_depend_on_other_pods() {
        let h = EventHandlers::new("default-scheduler".into(), Arc::new(SchedulingQueue::new()), Arc::new(SchedulerCache::new()));
        let mut spread = pod("spread");
        if let Some(s) = spread.spec.as_mut() {
            s.topology_spread_constraints = Some(vec![TopologySpreadConstraint {
                max_skew: 1,
                topology_key: "kubernetes.io/hostname".into(),
                when_unsatisfiable: "DoNotSchedule".into(),
                ..Default::default()
            }]);
        }
        for p in [spread, pod("plain")] {
            h.on_pod(&Event::Apply(p));
            let (qp, cycle) = futures::executor::block_on(h.queue.pop());
            h.queue.add_unschedulable(qp, cycle);
        }
        assert_eq!(h.queue.lengths().unschedulable, 2);
        h.on_pod(&Event::Apply(bound("elsewhere")));
        let l = h.queue.lengths();
        assert_eq!((l.active + l.backoff, l.unschedulable), (1, 1), "the spread pod retries; the plain one waits");
    }
}

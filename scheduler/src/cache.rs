//! The scheduler's view of where pods are, kept up to date by the watch rather than rebuilt each cycle.
//! The informers report every pod and node change (the objects live in the reflector stores; the cache
//! holds the same `Arc`s) and each cycle's snapshot applies only what changed since the previous one —
//! upstream's cache and incremental snapshot. Pods this scheduler has *assumed* onto a node, whose
//! binding the watch has not shown yet, count there too: the next pod sees the room as taken, and a
//! failed bind forgets the assumption.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::api::core::v1::{Node, Pod};

use crate::framework::node_info::pod_key;
use crate::framework::{NodeInfo, NominatedPods, PodInfo, Snapshot};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

#[derive(Debug, Clone)]
struct Assumed {
    pod: Arc<Pod>,
    node: String,
}

/// A pod the snapshot counts: on which of its nodes, as which object.
struct Counted {
    node: usize,
    pod: Arc<Pod>,
}

#[derive(Default)]
struct State {
    // What the watch and the scheduling cycles say.
    nodes: FastMap<String, Arc<Node>>,
    /// Pods with a node name, by key.
    bound: FastMap<String, Arc<Pod>>,
    assumed: FastMap<String, Assumed>,
    /// Pending pods whose status names a nominated node (their objects are looked up when needed).
    nominated_in_status: FastSet<String>,
    /// Both watches have listed once ([`SchedulerCache::resync_pods`], [`SchedulerCache::resync_nodes`]).
    pods_synced: bool,
    nodes_synced: bool,

    // What the last snapshot counts, and what changed since.
    snapshot: Arc<Snapshot>,
    counted: FastMap<String, Counted>,
    /// Pods placed on a node the snapshot does not have (yet): key → that node's name.
    waiting: FastMap<String, String>,
    dirty_pods: FastSet<String>,
    dirty_nodes: FastSet<String>,
    /// Build the next snapshot from scratch (after a relist, or when a node went away).
    rebuild: bool,
}

#[derive(Default)]
pub struct SchedulerCache {
    state: Mutex<State>,
    /// Pod key → node preemption nominated it to, known before the pod's status shows it (upstream's
    /// in-memory nominator).
    nominations: Mutex<HashMap<String, String>>,
    synced: tokio::sync::Notify,
}

fn node_of(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty())
}

fn status_nomination(pod: &Pod) -> Option<&str> {
    pod.status.as_ref().and_then(|s| s.nominated_node_name.as_deref()).filter(|n| !n.is_empty())
}

impl SchedulerCache {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts `pod` on `node` from now on.
    pub fn assume(&self, pod: Arc<Pod>, node: &str) {
        let key = pod_key(&pod);
        let mut st = self.lock();
        st.assumed.insert(key.clone(), Assumed { pod, node: node.to_string() });
        st.dirty_pods.insert(key);
    }

    /// Drops an assumption: the bind failed or the pod is gone.
    pub fn forget(&self, key: &str) {
        let mut st = self.lock();
        if st.assumed.remove(key).is_some() {
            st.dirty_pods.insert(key.to_string());
        }
    }

    pub fn is_assumed(&self, key: &str) -> bool {
        self.lock().assumed.contains_key(key)
    }

    /// The watch shows this version of a pod. Once it is seen bound, it counts as bound and any assumption
    /// of it is dropped.
    pub fn pod_applied(&self, pod: Arc<Pod>) {
        let key = pod_key(&pod);
        let mut st = self.lock();
        if node_of(&pod).is_some() {
            st.assumed.remove(&key);
            st.nominated_in_status.remove(&key);
            st.bound.insert(key.clone(), pod);
            st.dirty_pods.insert(key);
            return;
        }
        if status_nomination(&pod).is_some() {
            st.nominated_in_status.insert(key.clone());
        } else {
            st.nominated_in_status.remove(&key);
        }
        if st.bound.remove(&key).is_some() {
            st.dirty_pods.insert(key);
        }
    }

    /// The pod is gone (or terminal: the watch leaves those out).
    pub fn pod_deleted(&self, key: &str) {
        let mut st = self.lock();
        st.bound.remove(key);
        st.assumed.remove(key);
        st.nominated_in_status.remove(key);
        st.dirty_pods.insert(key.to_string());
    }

    pub fn node_applied(&self, node: Arc<Node>) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let mut st = self.lock();
        st.nodes.insert(name.clone(), node);
        st.dirty_nodes.insert(name);
    }

    pub fn node_deleted(&self, name: &str) {
        let mut st = self.lock();
        if st.nodes.remove(name).is_some() {
            st.dirty_nodes.insert(name.to_string());
        }
    }

    /// The pod watch (re)listed: these are all the pods there are. Events may have been missed meanwhile,
    /// so the next snapshot is built from scratch; assumptions of pods that no longer exist are dropped.
    pub fn resync_pods(&self, pods: &[Arc<Pod>]) {
        let mut st = self.lock();
        st.bound.clear();
        st.nominated_in_status.clear();
        let mut keys = FastSet::default();
        for p in pods {
            let key = pod_key(p);
            if node_of(p).is_some() {
                st.bound.insert(key.clone(), p.clone());
            } else if status_nomination(p).is_some() {
                st.nominated_in_status.insert(key.clone());
            }
            keys.insert(key);
        }
        let State { assumed, bound, .. } = &mut *st;
        assumed.retain(|key, _| keys.contains(key) && !bound.contains_key(key));
        st.rebuild = true;
        st.pods_synced = true;
        drop(st);
        self.synced.notify_waiters();
    }

    /// The node watch (re)listed: these are all the nodes there are.
    pub fn resync_nodes(&self, nodes: &[Arc<Node>]) {
        let mut st = self.lock();
        st.nodes = nodes.iter().map(|n| (n.metadata.name.clone().unwrap_or_default(), n.clone())).collect();
        st.rebuild = true;
        st.nodes_synced = true;
        drop(st);
        self.synced.notify_waiters();
    }

    /// Returns once both watches have listed into the cache: scheduling on a partial view would
    /// overcommit nodes.
    pub async fn wait_until_synced(&self) {
        loop {
            let notified = self.synced.notified();
            {
                let st = self.lock();
                if st.pods_synced && st.nodes_synced {
                    return;
                }
            }
            notified.await;
        }
    }

    /// Every node with the pods bound or assumed onto it. Drop the returned snapshot before asking for the
    /// next one, or the next one starts as a copy.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        let mut st = self.lock();
        st.apply_changes();
        st.snapshot.clone()
    }

    fn nominations(&self) -> MutexGuard<'_, HashMap<String, String>> {
        self.nominations.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Remembers that preemption nominated the pod to `node`.
    pub fn nominate(&self, key: &str, node: &str) {
        self.nominations().insert(key.to_string(), node.to_string());
    }

    /// The node preemption nominated the pod to, as this scheduler remembers it.
    pub fn nomination(&self, key: &str) -> Option<String> {
        self.nominations().get(key).cloned()
    }

    /// Forgets the pod's nomination: it was bound or deleted.
    pub fn clear_nomination(&self, key: &str) {
        self.nominations().remove(key);
    }

    /// The pending pods `ours` accepts that are nominated to a node, by this scheduler's memory or by
    /// their status; pods already assumed somewhere count there instead. `lookup` gives a pod's current
    /// object by key. Remembered nominations of pods no longer pending are dropped.
    pub fn nominated_pods(&self, lookup: impl Fn(&str) -> Option<Arc<Pod>>, ours: impl Fn(&Pod) -> bool) -> NominatedPods {
        let mut out = NominatedPods::new();
        let st = self.lock();
        let mut remembered = self.nominations();
        let keys: FastSet<String> = st.nominated_in_status.iter().chain(remembered.keys()).cloned().collect();
        for key in keys {
            let pending = lookup(&key).filter(|p| node_of(p).is_none() && p.metadata.deletion_timestamp.is_none());
            let Some(p) = pending else {
                remembered.remove(&key);
                continue;
            };
            let Some(node) = remembered.get(&key).map(String::as_str).or(status_nomination(&p)) else { continue };
            if !st.assumed.contains_key(&key) && ours(&p) {
                out.add(node, p.clone());
            }
        }
        out
    }
}

impl State {
    /// Brings the snapshot up to date with what changed since the last one.
    fn apply_changes(&mut self) {
        let node_removed = self.dirty_nodes.iter().any(|name| !self.nodes.contains_key(name));
        if self.rebuild || node_removed {
            self.rebuild_snapshot();
        }
        if self.dirty_nodes.is_empty() && self.dirty_pods.is_empty() {
            return;
        }
        let State { nodes, bound, assumed, snapshot, counted, waiting, dirty_pods, dirty_nodes, .. } = self;
        let snapshot = Arc::make_mut(snapshot);
        for name in dirty_nodes.drain() {
            let Some(node) = nodes.get(&name) else { continue };
            match snapshot.position(&name).and_then(|i| snapshot.node_mut(i)) {
                Some(info) if Arc::ptr_eq(info.node_arc(), node) => {}
                Some(info) => info.replace_node(node.clone()),
                None => {
                    snapshot.push(NodeInfo::new(node.clone()));
                    // Pods already placed on it can be counted now.
                    dirty_pods.extend(waiting.iter().filter(|(_, n)| **n == name).map(|(k, _)| k.clone()));
                }
            }
        }
        for key in dirty_pods.drain() {
            let desired = match assumed.get(&key) {
                Some(a) => Some((&a.pod, a.node.as_str())),
                None => bound.get(&key).and_then(|p| node_of(p).map(|n| (p, n))),
            };
            let index = desired.and_then(|(_, node)| snapshot.position(node));
            if let (Some(c), Some((pod, _)), Some(i)) = (counted.get(&key), desired, index)
                && c.node == i
                && Arc::ptr_eq(&c.pod, pod)
            {
                continue;
            }
            waiting.remove(&key);
            if let Some(c) = counted.remove(&key)
                && let Some(info) = snapshot.node_mut(c.node)
            {
                info.remove_pod(&key);
            }
            match (desired, index) {
                (Some((pod, _)), Some(i)) => {
                    if let Some(info) = snapshot.node_mut(i) {
                        info.add_pod(PodInfo::new(pod.clone()));
                        counted.insert(key, Counted { node: i, pod: pod.clone() });
                    }
                }
                (Some((_, node)), None) => {
                    waiting.insert(key, node.to_string());
                }
                (None, _) => {}
            }
        }
    }

    /// A fresh snapshot of every node, with every bound and assumed pod to be counted again.
    fn rebuild_snapshot(&mut self) {
        self.snapshot = Arc::new(Snapshot::new(self.nodes.values().map(|n| NodeInfo::new(n.clone())).collect()));
        self.counted.clear();
        self.waiting.clear();
        self.dirty_nodes.clear();
        self.dirty_pods = self.bound.keys().chain(self.assumed.keys()).cloned().collect();
        self.rebuild = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod_with_cpu};

    fn bound(name: &str, node: &str) -> Arc<Pod> {
        let mut p = pod_with_cpu(name, "1");
        if let Some(s) = p.spec.as_mut() {
            s.node_name = Some(node.into());
        }
        Arc::new(p)
    }

    fn cpu_on(s: &Snapshot, node: &str) -> i64 {
        s.get(node).map_or(-1, |n| n.requested().milli_cpu)
    }

    fn synced(nodes: &[Arc<Node>], pods: &[Arc<Pod>]) -> SchedulerCache {
        let cache = SchedulerCache::new();
        cache.resync_nodes(nodes);
        cache.resync_pods(pods);
        cache
    }

    #[test]
    fn assumed_pods_count_until_confirmed_or_forgotten() {
        let nodes = vec![Arc::new(node("a", "4", "4Gi")), Arc::new(node("b", "4", "4Gi"))];
        let pending = Arc::new(pod_with_cpu("p", "1"));
        let cache = synced(&nodes, &[bound("x", "a"), pending.clone()]);

        let s = cache.snapshot();
        assert_eq!((cpu_on(&s, "a"), cpu_on(&s, "b")), (1000, 0), "bound pods counted");
        drop(s);

        cache.assume(pending.clone(), "b");
        let s = cache.snapshot();
        assert_eq!(cpu_on(&s, "b"), 1000, "assumed pod counted before the watch sees it");
        drop(s);

        // The watch shows it bound: counted once, assumption dropped.
        cache.pod_applied(bound("p", "b"));
        let s = cache.snapshot();
        assert_eq!(cpu_on(&s, "b"), 1000);
        assert!(!cache.is_assumed("default/p"));
        drop(s);

        // A failed bind is rolled back.
        cache.assume(Arc::new(pod_with_cpu("q", "1")), "a");
        assert_eq!(cpu_on(&cache.snapshot(), "a"), 2000);
        cache.forget("default/q");
        assert_eq!(cpu_on(&cache.snapshot(), "a"), 1000);

        cache.pod_deleted("default/x");
        assert_eq!(cpu_on(&cache.snapshot(), "a"), 0, "a deleted pod frees its room");
    }

    #[test]
    fn a_held_snapshot_is_not_changed_under_its_holder() {
        let nodes = vec![Arc::new(node("a", "4", "4Gi"))];
        let cache = synced(&nodes, &[]);
        let held = cache.snapshot();
        cache.pod_applied(bound("x", "a"));
        assert_eq!(cpu_on(&cache.snapshot(), "a"), 1000);
        assert_eq!(cpu_on(&held, "a"), 0, "the cycle holding the old snapshot still sees it as it was");
    }

    #[test]
    fn pods_on_a_node_not_seen_yet_count_once_it_appears() {
        let cache = synced(&[], &[bound("x", "late")]);
        assert!(cache.snapshot().is_empty());
        cache.node_applied(Arc::new(node("late", "4", "4Gi")));
        assert_eq!(cpu_on(&cache.snapshot(), "late"), 1000);
        cache.node_deleted("late");
        assert!(cache.snapshot().is_empty());
        cache.node_applied(Arc::new(node("late", "4", "4Gi")));
        assert_eq!(cpu_on(&cache.snapshot(), "late"), 1000, "and again after it came back");
    }

    #[test]
    fn a_relist_drops_assumptions_of_pods_gone_meanwhile() {
        let nodes = vec![Arc::new(node("a", "4", "4Gi"))];
        let cache = synced(&nodes, &[]);
        cache.assume(Arc::new(pod_with_cpu("p", "1")), "a");
        cache.assume(Arc::new(pod_with_cpu("q", "1")), "a");
        cache.resync_pods(&[Arc::new(pod_with_cpu("q", "1"))]);
        assert!(!cache.is_assumed("default/p"), "deleted while the watch was down");
        assert!(cache.is_assumed("default/q"), "still pending: its binding may be in flight");
        assert_eq!(cpu_on(&cache.snapshot(), "a"), 1000);
    }

    #[test]
    fn synced_only_after_both_lists() {
        use futures::FutureExt;
        let cache = SchedulerCache::new();
        let mut waiting = Box::pin(cache.wait_until_synced());
        assert!(waiting.as_mut().now_or_never().is_none());
        cache.resync_nodes(&[]);
        assert!(waiting.as_mut().now_or_never().is_none(), "pods not listed yet");
        cache.resync_pods(&[]);
        assert!(waiting.as_mut().now_or_never().is_some());
    }

    fn lookup(store: &[Arc<Pod>]) -> impl Fn(&str) -> Option<Arc<Pod>> + '_ {
        move |key| store.iter().find(|p| pod_key(p) == key).cloned()
    }

    #[test]
    fn nominated_pods_from_memory_and_status() {
        let from_status = {
            let mut p = pod_with_cpu("s", "1");
            p.status = Some(k8s_openapi::api::core::v1::PodStatus { nominated_node_name: Some("b".into()), ..Default::default() });
            Arc::new(p)
        };
        let remembered = Arc::new(pod_with_cpu("m", "1"));
        let assumed = Arc::new(pod_with_cpu("x", "1"));
        let store = vec![from_status, remembered, assumed.clone(), bound("y", "a")];
        let cache = synced(&[], &store);
        cache.nominate("default/m", "a");
        cache.nominate("default/x", "a");
        cache.assume(assumed, "a");
        cache.nominate("default/gone", "a");
        let n = cache.nominated_pods(lookup(&store), |_| true);
        let names = |node: &str| n.on_node(node).iter().map(PodInfo::key).collect::<Vec<_>>();
        assert_eq!(names("a"), vec!["default/m"], "remembered, not assumed, not bound");
        assert_eq!(names("b"), vec!["default/s"], "from status");
        assert!(!cache.nominations().contains_key("default/gone"), "a deleted pod's nomination is dropped");
        cache.clear_nomination("default/m");
        assert!(cache.nominated_pods(lookup(&store), |_| true).on_node("a").is_empty());
        assert!(cache.nominated_pods(lookup(&store), |_| false).is_empty(), "other schedulers' pods are not counted");
    }

    /// What a snapshot says, node by node (sorted by name): names of its pods (sorted) and the cpu they
    /// request.
    fn summary(s: &Snapshot) -> Vec<(String, Vec<String>, i64)> {
        let mut out: Vec<_> = s
            .nodes()
            .iter()
            .map(|n| {
                let mut pods: Vec<String> = n.pods().iter().map(PodInfo::key).collect();
                pods.sort();
                (n.name().to_string(), pods, n.requested().milli_cpu)
            })
            .collect();
        out.sort();
        out
    }

    /// Random changes, each reported as the watch would; after every one the incremental snapshot must
    /// say what a cache built from scratch from the same objects says.
    #[test]
    fn incremental_snapshots_match_fresh_ones() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut nodes: Vec<Arc<Node>> = (0..4).map(|i| Arc::new(node(&format!("n{i}"), "8", "8Gi"))).collect();
        let mut store: Vec<Arc<Pod>> = Vec::new();
        let cache = synced(&nodes, &store);
        for step in 0..400 {
            match rng.random_range(0..8) {
                0 | 1 => {
                    let p = bound(&format!("p{step}"), &format!("n{}", rng.random_range(0..5)));
                    cache.pod_applied(p.clone());
                    store.push(p);
                }
                2 if !store.is_empty() => {
                    let p = store.remove(rng.random_range(0..store.len()));
                    cache.pod_deleted(&pod_key(&p));
                }
                3 if !store.is_empty() => {
                    // A new version of a pod (an update): same name, new object, maybe another cpu.
                    let i = rng.random_range(0..store.len());
                    let name = store[i].metadata.name.clone().unwrap_or_default();
                    let mut p = pod_with_cpu(&name, if rng.random_bool(0.5) { "2" } else { "1" });
                    if let Some(s) = p.spec.as_mut() {
                        s.node_name = store[i].spec.as_ref().and_then(|s| s.node_name.clone());
                    }
                    store[i] = Arc::new(p);
                    cache.pod_applied(store[i].clone());
                }
                4 => {
                    let i = rng.random_range(0..nodes.len());
                    let name = nodes[i].metadata.name.clone().unwrap_or_default();
                    nodes[i] = Arc::new(node(&name, if rng.random_bool(0.5) { "8" } else { "16" }, "8Gi"));
                    cache.node_applied(nodes[i].clone());
                }
                5 => {
                    let pending = Arc::new(pod_with_cpu(&format!("a{step}"), "1"));
                    cache.pod_applied(pending.clone());
                    store.push(pending.clone());
                    cache.assume(pending, &format!("n{}", rng.random_range(0..4)));
                }
                6 if nodes.len() > 2 => {
                    let gone = nodes.swap_remove(rng.random_range(0..nodes.len()));
                    cache.node_deleted(gone.metadata.name.as_deref().unwrap_or_default());
                }
                7 if nodes.len() < 5 => {
                    let names: Vec<String> = nodes.iter().filter_map(|n| n.metadata.name.clone()).collect();
                    if let Some(name) = (0..5).map(|i| format!("n{i}")).find(|n| !names.contains(n)) {
                        nodes.push(Arc::new(node(&name, "8", "8Gi")));
                        cache.node_applied(nodes[nodes.len() - 1].clone());
                    }
                }
                _ => {}
            }
            let incremental = summary(&cache.snapshot());
            let fresh = synced(&nodes, &store);
            for (key, a) in cache.lock().assumed.iter() {
                fresh.assume(a.pod.clone(), &a.node);
                assert!(store.iter().any(|p| pod_key(p) == *key));
            }
            assert_eq!(incremental, summary(&fresh.snapshot()), "step {step}");
        }
    }
}

//! The scheduler's view of where pods are: the reflector stores' bound pods plus the pods this scheduler
//! has *assumed* onto a node but whose binding the watch has not shown yet. Assuming before the bind call
//! returns lets the next pod see the resources as taken; a failed bind forgets the assumption.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::api::core::v1::{Node, Pod};

use crate::framework::node_info::pod_key;
use crate::framework::{NodeInfo, NominatedPods, PodInfo, Snapshot};

#[derive(Debug, Clone)]
struct Assumed {
    pod: Arc<Pod>,
    node: String,
    /// The bind call succeeded; we are only waiting for the watch to show it.
    bound: bool,
}

/// The last snapshot and what it was built from, so that the next one changes only what changed. The
/// stores hand out the same `Arc` until an object changes, and the snapshot holds every `Arc` it was built
/// from, so an address cannot be reused for another object meanwhile: an address seen before means the
/// very same object. A cycle then costs a pass of pointer lookups instead of rebuilding every node's info
/// (upstream's incremental snapshot, by other means).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Default)]
struct Incremental {
    snapshot: Arc<Snapshot>,
    /// The node objects the snapshot holds, in its order, and where each name is.
    nodes: Vec<usize>,
    node_index: FastMap<String, usize>,
    /// Every pod counted in the snapshot, by address: its node's index, its key, when it was last seen.
    pods: FastMap<usize, Placed>,
    generation: u64,
    /// Pods seen this cycle that the snapshot does not count yet (or counts on another node).
    added: Vec<(usize, Arc<Pod>, usize)>,
}

struct Placed {
    node: usize,
    key: String,
    seen: u64,
}

#[derive(Default)]
pub struct SchedulerCache {
    assumed: Mutex<HashMap<String, Assumed>>,
    incremental: Mutex<Incremental>,
    /// Pod key → node preemption nominated it to, known before the pod's status shows it (upstream's
    /// in-memory nominator).
    nominations: Mutex<HashMap<String, String>>,
}

impl SchedulerCache {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Assumed>> {
        self.assumed.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts `pod` on `node` from now on.
    pub fn assume(&self, pod: Arc<Pod>, node: &str) {
        self.lock().insert(pod_key(&pod), Assumed { pod, node: node.to_string(), bound: false });
    }

    /// The bind call succeeded.
    pub fn finish_binding(&self, key: &str) {
        if let Some(a) = self.lock().get_mut(key) {
            a.bound = true;
        }
    }

    /// Drops an assumption: the bind failed, the pod was deleted, or the watch now shows it bound.
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    pub fn is_assumed(&self, key: &str) -> bool {
        self.lock().contains_key(key)
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
    /// their status; pods already assumed somewhere count there instead. Remembered nominations of pods
    /// no longer pending are dropped.
    pub fn nominated_pods(&self, pods: &[Arc<Pod>], ours: impl Fn(&Pod) -> bool) -> NominatedPods {
        let mut out = NominatedPods::new();
        let assumed = self.lock();
        let mut remembered = self.nominations();
        let mut pending = HashSet::with_capacity(remembered.len());
        for p in pods.iter().filter(|p| node_of(p).is_none() && p.metadata.deletion_timestamp.is_none()) {
            let key = pod_key(p);
            let status = p.status.as_ref().and_then(|s| s.nominated_node_name.as_deref()).filter(|n| !n.is_empty());
            let Some(node) = remembered.get(&key).map(String::as_str).or(status) else { continue };
            if !assumed.contains_key(&key) && ours(p) {
                out.add(node, p.clone());
            }
            pending.insert(key);
        }
        remembered.retain(|k, _| pending.contains(k));
        out
    }

    /// Every node with the pods on it: bound pods from the store, then assumed pods not yet seen bound.
    /// Drop the returned snapshot before asking for the next one, or the next one is a copy.
    pub fn snapshot(&self, nodes: &[Arc<Node>], pods: &[Arc<Pod>]) -> Arc<Snapshot> {
        let mut assumed = self.lock();
        // Only assumed pods need to know whether the store has them bound: look at those alone.
        let assumed_names: HashSet<&str, foldhash::fast::RandomState> =
            assumed.keys().filter_map(|k| k.split_once('/').map(|(_, name)| name)).collect();
        let mut present: HashMap<String, bool> = HashMap::with_capacity(assumed.len());
        for p in pods.iter().filter(|p| p.metadata.name.as_deref().is_some_and(|n| assumed_names.contains(n))) {
            present.insert(pod_key(p), node_of(p).is_some());
        }
        assumed.retain(|key, a| match present.get(key) {
            Some(true) => false,   // the watch shows it bound: the store counts it now
            None if a.bound => false, // bound and since deleted
            _ => true,
        });

        let mut inc = self.incremental.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        inc.sync_nodes(nodes);
        inc.generation += 1;
        for p in pods {
            if let Some(node) = node_of(p) {
                inc.see(p, node, false);
            }
        }
        for a in assumed.values() {
            // The same object may be assumed again elsewhere after a failed bind: check its node.
            inc.see(&a.pod, &a.node, true);
        }
        inc.apply();
        inc.snapshot.clone()
    }
}

fn node_of(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty())
}

impl Incremental {
    /// Rebuilds from scratch when the node list changed shape; swaps in changed node objects otherwise.
    fn sync_nodes(&mut self, nodes: &[Arc<Node>]) {
        let addresses: Vec<usize> = nodes.iter().map(|n| Arc::as_ptr(n) as usize).collect();
        if addresses == self.nodes {
            return;
        }
        let same_names = addresses.len() == self.nodes.len()
            && nodes.iter().zip(self.snapshot.nodes()).all(|(n, info)| n.metadata.name.as_deref() == Some(info.name()));
        if same_names {
            let snapshot = Arc::make_mut(&mut self.snapshot);
            for (i, n) in nodes.iter().enumerate() {
                if addresses.get(i) != self.nodes.get(i)
                    && let Some(info) = snapshot.node_mut(i)
                {
                    info.replace_node(n.clone());
                }
            }
        } else {
            self.snapshot = Arc::new(Snapshot::new(nodes.iter().map(|n| NodeInfo::new(n.clone())).collect()));
            self.node_index = self.snapshot.nodes().iter().enumerate().map(|(i, n)| (n.name().to_string(), i)).collect();
            self.pods.clear();
        }
        self.nodes = addresses;
    }

    /// Notes that `pod` runs (or is assumed) on `node` this cycle. A pod object already counted keeps its
    /// node (its nodeName cannot change without a new object) unless `check_node` asks to compare.
    fn see(&mut self, pod: &Arc<Pod>, node: &str, check_node: bool) {
        let address = Arc::as_ptr(pod) as usize;
        let generation = self.generation;
        let index = |inc: &Self| inc.node_index.get(node).copied();
        match self.pods.get(&address).map(|p| p.node) {
            Some(counted) if !check_node || index(self) == Some(counted) => {
                if let Some(placed) = self.pods.get_mut(&address) {
                    placed.seen = generation;
                }
            }
            _ => {
                if let Some(i) = index(self) {
                    self.added.push((address, pod.clone(), i));
                }
            }
        }
    }

    /// Removes the pods not seen this cycle (deleted, or replaced by a newer version of the object) and
    /// adds the new ones.
    fn apply(&mut self) {
        let generation = self.generation;
        let added = std::mem::take(&mut self.added);
        let gone: Vec<usize> = self.pods.iter().filter(|(_, p)| p.seen != generation).map(|(a, _)| *a).collect();
        if gone.is_empty() && added.is_empty() {
            return;
        }
        let snapshot = Arc::make_mut(&mut self.snapshot);
        // An object re-placed this cycle is handled with the additions, so skip it here.
        let re_placed: HashSet<usize> = added.iter().map(|(a, _, _)| *a).collect();
        for address in gone.into_iter().filter(|a| !re_placed.contains(a)) {
            if let Some(placed) = self.pods.remove(&address)
                && let Some(info) = snapshot.node_mut(placed.node)
            {
                info.remove_pod(&placed.key);
            }
        }
        for (address, pod, node) in added {
            if let Some(old) = self.pods.remove(&address)
                && let Some(info) = snapshot.node_mut(old.node)
            {
                info.remove_pod(&old.key);
            }
            let key = pod_key(&pod);
            if let Some(info) = snapshot.node_mut(node) {
                info.add_pod(PodInfo::new(pod));
                self.pods.insert(address, Placed { node, key, seen: generation });
            }
        }
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

    #[test]
    fn assumed_pods_count_until_confirmed_or_forgotten() {
        let cache = SchedulerCache::new();
        let nodes = vec![Arc::new(node("a", "4", "4Gi")), Arc::new(node("b", "4", "4Gi"))];
        let pending = Arc::new(pod_with_cpu("p", "1"));
        let store = vec![bound("x", "a"), pending.clone()];

        let s = cache.snapshot(&nodes, &store);
        assert_eq!((cpu_on(&s, "a"), cpu_on(&s, "b")), (1000, 0), "bound pods counted");

        cache.assume(pending.clone(), "b");
        let s = cache.snapshot(&nodes, &store);
        assert_eq!(cpu_on(&s, "b"), 1000, "assumed pod counted before the watch sees it");

        // The watch shows it bound: counted once, assumption dropped.
        let store2 = vec![bound("x", "a"), bound("p", "b")];
        let s = cache.snapshot(&nodes, &store2);
        assert_eq!(cpu_on(&s, "b"), 1000);
        assert!(!cache.is_assumed("default/p"));

        // A failed bind is rolled back.
        cache.assume(pending, "a");
        cache.forget("default/p");
        let s = cache.snapshot(&nodes, &store);
        assert_eq!(cpu_on(&s, "a"), 1000);
    }

    #[test]
    fn nominated_pods_from_memory_and_status() {
        let cache = SchedulerCache::new();
        let from_status = {
            let mut p = pod_with_cpu("s", "1");
            p.status = Some(k8s_openapi::api::core::v1::PodStatus { nominated_node_name: Some("b".into()), ..Default::default() });
            Arc::new(p)
        };
        let remembered = Arc::new(pod_with_cpu("m", "1"));
        let assumed = Arc::new(pod_with_cpu("x", "1"));
        cache.nominate("default/m", "a");
        cache.nominate("default/x", "a");
        cache.assume(assumed.clone(), "a");
        cache.nominate("default/gone", "a");
        let store = vec![from_status, remembered, assumed, bound("y", "a")];
        let n = cache.nominated_pods(&store, |_| true);
        let names = |node: &str| n.on_node(node).iter().map(PodInfo::key).collect::<Vec<_>>();
        assert_eq!(names("a"), vec!["default/m"], "remembered, not assumed, not bound");
        assert_eq!(names("b"), vec!["default/s"], "from status");
        assert!(!cache.nominations().contains_key("default/gone"), "a deleted pod's nomination is dropped");
        cache.clear_nomination("default/m");
        assert!(cache.nominated_pods(&store, |_| true).on_node("a").is_empty());
        assert!(cache.nominated_pods(&store, |_| false).is_empty(), "other schedulers' pods are not counted");
    }

    #[test]
    fn bound_then_deleted_assumption_is_dropped() {
        let cache = SchedulerCache::new();
        let nodes = vec![Arc::new(node("a", "4", "4Gi"))];
        cache.assume(Arc::new(pod_with_cpu("p", "1")), "a");
        cache.finish_binding("default/p");
        let s = cache.snapshot(&nodes, &[]);
        assert_eq!(cpu_on(&s, "a"), 0);
        assert!(!cache.is_assumed("default/p"));
    }

    /// What a snapshot says, node by node: names of its pods (sorted) and the cpu they request.
    fn summary(s: &Snapshot) -> Vec<(String, Vec<String>, i64)> {
        s.nodes()
            .iter()
            .map(|n| {
                let mut pods: Vec<String> = n.pods().iter().map(PodInfo::key).collect();
                pods.sort();
                (n.name().to_string(), pods, n.requested().milli_cpu)
            })
            .collect()
    }

    #[test]
    fn incremental_snapshots_match_fresh_ones() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let cache = SchedulerCache::new();
        let mut nodes: Vec<Arc<Node>> = (0..4).map(|i| Arc::new(node(&format!("n{i}"), "8", "8Gi"))).collect();
        let mut store: Vec<Arc<Pod>> = Vec::new();
        for step in 0..300 {
            match rng.random_range(0..6) {
                0 | 1 => store.push(bound(&format!("p{step}"), &format!("n{}", rng.random_range(0..4)))),
                2 if !store.is_empty() => {
                    let i = rng.random_range(0..store.len());
                    store.remove(i);
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
                }
                4 => {
                    let i = rng.random_range(0..nodes.len());
                    nodes[i] = Arc::new(node(&format!("n{i}"), if rng.random_bool(0.5) { "8" } else { "16" }, "8Gi"));
                }
                5 => {
                    let pending = Arc::new(pod_with_cpu(&format!("a{step}"), "1"));
                    store.push(pending.clone());
                    cache.assume(pending, &format!("n{}", rng.random_range(0..4)));
                }
                _ => {}
            }
            let incremental = summary(&cache.snapshot(&nodes, &store));
            let fresh = SchedulerCache::new();
            for (key, a) in cache.lock().iter() {
                fresh.lock().insert(key.clone(), a.clone());
            }
            assert_eq!(incremental, summary(&fresh.snapshot(&nodes, &store)), "step {step}");
        }
    }
}

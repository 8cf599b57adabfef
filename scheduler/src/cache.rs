//! The scheduler's view of where pods are: the reflector stores' bound pods plus the pods this scheduler
//! has *assumed* onto a node but whose binding the watch has not shown yet. Assuming before the bind call
//! returns lets the next pod see the resources as taken; a failed bind forgets the assumption.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::api::core::v1::{Node, Pod};

use crate::framework::node_info::pod_key;
use crate::framework::{NodeInfo, PodInfo, Snapshot};

#[derive(Debug, Clone)]
struct Assumed {
    pod: Arc<Pod>,
    node: String,
    /// The bind call succeeded; we are only waiting for the watch to show it.
    bound: bool,
}

/// Node and pod infos of the previous snapshot, keyed by the address of the object they were made from.
/// The stores hand out the same `Arc` until an object changes, and each info holds its `Arc`, so an
/// address cannot be reused for another object while its entry exists: an entry found is up to date.
/// This keeps a cycle from re-parsing every node's allocatable and every pod's requests.
#[derive(Default)]
struct Memo {
    nodes: HashMap<usize, NodeInfo>,
    pods: HashMap<usize, PodInfo>,
}

#[derive(Default)]
pub struct SchedulerCache {
    assumed: Mutex<HashMap<String, Assumed>>,
    memo: Mutex<Memo>,
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

    /// Every node with the pods on it: bound pods from the store, then assumed pods not yet seen bound.
    pub fn snapshot(&self, nodes: &[Arc<Node>], pods: &[Arc<Pod>]) -> Snapshot {
        let mut memo = self.memo.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut old_nodes = std::mem::take(&mut memo.nodes);
        let mut old_pods = std::mem::take(&mut memo.pods);
        let mut infos: Vec<NodeInfo> = Vec::with_capacity(nodes.len());
        for n in nodes {
            let address = Arc::as_ptr(n) as usize;
            let base = old_nodes.remove(&address).unwrap_or_else(|| NodeInfo::new(n.clone()));
            infos.push(base.clone());
            memo.nodes.insert(address, base);
        }
        let index: HashMap<&str, usize> = nodes.iter().enumerate().filter_map(|(i, n)| Some((n.metadata.name.as_deref()?, i))).collect();

        let mut assumed = self.lock();
        // Only assumed pods need to know whether the store has them (bound or not): look at those alone.
        let assumed_names: std::collections::HashSet<&str> = assumed.keys().filter_map(|k| k.split_once('/').map(|(_, name)| name)).collect();
        let mut present: HashMap<String, bool> = HashMap::with_capacity(assumed.len());
        let mut placed: Vec<(usize, PodInfo)> = Vec::with_capacity(pods.len());
        for p in pods {
            let node = p.spec.as_ref().and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty());
            if p.metadata.name.as_deref().is_some_and(|name| assumed_names.contains(name)) {
                present.insert(pod_key(p), node.is_some());
            }
            let Some(i) = node.and_then(|n| index.get(n)) else { continue };
            let address = Arc::as_ptr(p) as usize;
            let info = old_pods.remove(&address).unwrap_or_else(|| PodInfo::new(p.clone()));
            placed.push((*i, info.clone()));
            memo.pods.insert(address, info);
        }
        drop(memo);
        for (i, info) in placed {
            if let Some(ni) = infos.get_mut(i) {
                ni.add_pod(info);
            }
        }
        assumed.retain(|key, a| match present.get(key) {
            Some(true) => false,   // the watch shows it bound: the store counts it now
            None if a.bound => false, // bound and since deleted
            _ => true,
        });
        let by_name: HashMap<&str, usize> = infos.iter().enumerate().map(|(i, n)| (n.name(), i)).collect::<HashMap<_, _>>();
        let targets: Vec<(usize, PodInfo)> =
            assumed.values().filter_map(|a| Some((*by_name.get(a.node.as_str())?, PodInfo::new(a.pod.clone())))).collect();
        for (i, info) in targets {
            if let Some(ni) = infos.get_mut(i) {
                ni.add_pod(info);
            }
        }
        Snapshot::new(infos)
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
    fn bound_then_deleted_assumption_is_dropped() {
        let cache = SchedulerCache::new();
        let nodes = vec![Arc::new(node("a", "4", "4Gi"))];
        cache.assume(Arc::new(pod_with_cpu("p", "1")), "a");
        cache.finish_binding("default/p");
        let s = cache.snapshot(&nodes, &[]);
        assert_eq!(cpu_on(&s, "a"), 0);
        assert!(!cache.is_assumed("default/p"));
    }
}

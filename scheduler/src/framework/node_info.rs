//! A node together with the pods on it and what they request: the view every Filter and Score plugin sees.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};

use super::affinity_terms::{NO_TERMS, PodTerms};
use crate::resources::{self, Resource};

/// A pod with its requests computed once.
#[derive(Debug, Clone)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    /// Requests for fit checks (missing requests count zero).
    pub requests: Resource,
    /// Requests for scoring (missing cpu/memory count the defaults).
    pub non_zero_requests: Resource,
    /// It has pod affinity or anti-affinity terms (which other pods' placement must consider).
    pub has_pod_affinity: bool,
    /// Those terms, compiled (only when there are some).
    affinity_terms: Option<Arc<PodTerms>>,
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> Self {
        let requests = resources::pod_requests(&pod);
        let non_zero_requests = resources::pod_non_zero_requests(&pod);
        let affinity = pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
        let has_pod_affinity = affinity.is_some_and(|a| a.pod_affinity.is_some() || a.pod_anti_affinity.is_some());
        let affinity_terms = has_pod_affinity.then(|| Arc::new(PodTerms::of(&pod)));
        Self { pod, requests, non_zero_requests, has_pod_affinity, affinity_terms }
    }

    /// The pod's (anti-)affinity terms, compiled once.
    pub fn affinity_terms(&self) -> &PodTerms {
        self.affinity_terms.as_deref().unwrap_or(&NO_TERMS)
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        pod_key(&self.pod)
    }

    /// Whether this is the pod with key `namespace/name` (without building the key).
    pub fn has_key(&self, key: &str) -> bool {
        let meta = &self.pod.metadata;
        key.split_once('/')
            .is_some_and(|(ns, name)| meta.namespace.as_deref().unwrap_or_default() == ns && meta.name.as_deref().unwrap_or_default() == name)
    }

    pub fn priority(&self) -> i32 {
        pod_priority(&self.pod)
    }
}

/// `namespace/name` of a pod.
pub fn pod_key(pod: &Pod) -> String {
    format!("{}/{}", pod.metadata.namespace.as_deref().unwrap_or_default(), pod.metadata.name.as_deref().unwrap_or_default())
}

/// The pod's priority (set by the Priority admission plugin; zero when absent).
pub fn pod_priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

/// A node, the pods bound or assumed onto it and the sums of their requests.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    node: Arc<Node>,
    name: String,
    pods: Vec<PodInfo>,
    /// How many of `pods` have pod (anti-)affinity terms: a node without any can be skipped when only
    /// existing pods' terms matter.
    with_pod_affinity: usize,
    requested: Resource,
    non_zero_requested: Resource,
    allocatable: Resource,
}

impl NodeInfo {
    pub fn new(node: Arc<Node>) -> Self {
        let allocatable = resources::node_allocatable(&node);
        let name = node.metadata.name.clone().unwrap_or_default();
        Self {
            node,
            name,
            pods: Vec::new(),
            with_pod_affinity: 0,
            requested: Resource::default(),
            non_zero_requested: Resource::default(),
            allocatable,
        }
    }

    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The node object itself, to tell whether a newer version replaced it.
    pub fn node_arc(&self) -> &Arc<Node> {
        &self.node
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pods(&self) -> &[PodInfo] {
        &self.pods
    }

    pub fn pods_with_pod_affinity(&self) -> usize {
        self.with_pod_affinity
    }

    pub fn requested(&self) -> &Resource {
        &self.requested
    }

    pub fn non_zero_requested(&self) -> &Resource {
        &self.non_zero_requested
    }

    pub fn allocatable(&self) -> &Resource {
        &self.allocatable
    }

    /// A newer version of the same node: its allocatable again, its pods kept.
    pub fn replace_node(&mut self, node: Arc<Node>) {
        self.allocatable = resources::node_allocatable(&node);
        self.node = node;
    }

    pub fn add_pod(&mut self, pod: PodInfo) {
        self.requested.add(&pod.requests);
        self.non_zero_requested.add(&pod.non_zero_requests);
        self.with_pod_affinity += usize::from(pod.has_pod_affinity);
        self.pods.push(pod);
    }

    /// Removes the pod with this key; returns whether it was there.
    pub fn remove_pod(&mut self, key: &str) -> bool {
        let Some(i) = self.pods.iter().position(|p| p.has_key(key)) else { return false };
        let pod = self.pods.remove(i);
        self.requested.subtract(&pod.requests);
        self.non_zero_requested.subtract(&pod.non_zero_requests);
        self.with_pod_affinity -= usize::from(pod.has_pod_affinity);
        true
    }
}

/// Every node's info at the start of a cycle; plugins read it, nothing writes it during the cycle.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    nodes: Vec<NodeInfo>,
    index: BTreeMap<String, usize>,
}

impl Snapshot {
    pub fn new(nodes: Vec<NodeInfo>) -> Self {
        let index = nodes.iter().enumerate().map(|(i, n)| (n.name().to_string(), i)).collect();
        Self { nodes, index }
    }

    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// The node at `index` in [`Self::nodes`], for the cache to update in place.
    pub(crate) fn node_mut(&mut self, index: usize) -> Option<&mut NodeInfo> {
        self.nodes.get_mut(index)
    }

    pub fn get(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).and_then(|i| self.nodes.get(*i))
    }

    /// Where the node called `name` is in [`Self::nodes`].
    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Adds a node at the end, for the cache to grow the snapshot in place.
    pub(crate) fn push(&mut self, info: NodeInfo) {
        self.index.insert(info.name().to_string(), self.nodes.len());
        self.nodes.push(info);
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod_with_cpu};

    #[test]
    fn add_and_remove_keep_sums() {
        let mut ni = NodeInfo::new(Arc::new(node("n1", "4", "8Gi")));
        ni.add_pod(PodInfo::new(Arc::new(pod_with_cpu("a", "500m"))));
        ni.add_pod(PodInfo::new(Arc::new(pod_with_cpu("b", "250m"))));
        assert_eq!(ni.requested().milli_cpu, 750);
        assert_eq!(ni.allocatable().milli_cpu, 4000);
        assert!(ni.pods()[0].has_key("default/a") && !ni.pods()[0].has_key("default/b") && !ni.pods()[0].has_key("a"));
        assert!(ni.remove_pod("default/a"));
        assert!(!ni.remove_pod("default/a"), "second removal finds nothing");
        assert_eq!(ni.requested().milli_cpu, 250);
        assert_eq!(ni.pods().len(), 1);
    }
}

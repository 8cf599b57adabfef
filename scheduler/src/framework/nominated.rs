//! Pods nominated to a node by an earlier preemption and not bound yet. While they wait for their
//! victims to go, filtering any other pod of no higher priority counts them as already on that node, so
//! the room preemption freed is not taken by someone else (upstream's two-pass `addNominatedPods`).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use super::node_info::{pod_key, pod_priority};
use super::{NodeInfo, PodInfo};

/// CycleState key under which the framework stores the cycle's [`NominatedPods`].
pub const STATE_KEY: &str = "framework/nominated-pods";

/// Nominated pods by node name.
#[derive(Debug, Clone, Default)]
pub struct NominatedPods {
    by_node: BTreeMap<String, Vec<PodInfo>>,
}

impl NominatedPods {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, node: &str, pod: Arc<Pod>) {
        self.by_node.entry(node.to_string()).or_default().push(PodInfo::new(pod));
    }

    /// Every pod nominated to `node`.
    pub fn on_node(&self, node: &str) -> &[PodInfo] {
        self.by_node.get(node).map_or(&[], Vec::as_slice)
    }

    pub fn is_empty(&self) -> bool {
        self.by_node.is_empty()
    }

    /// `node` with the pods nominated to it that `pod` must make room for (priority at least its own,
    /// and not `pod` itself) added, or `None` when there are none.
    pub fn with_nominated(&self, pod: &Pod, node: &NodeInfo) -> Option<NodeInfo> {
        let nominated = self.on_node(node.name());
        if nominated.is_empty() {
            // The common case, checked before the pod's key is built: this runs for every node filtered.
            return None;
        }
        let priority = pod_priority(pod);
        let key = pod_key(pod);
        let mut added = nominated
            .iter()
            .filter(|n| n.priority() >= priority && n.key() != key && !node.pods().iter().any(|p| p.key() == n.key()))
            .peekable();
        added.peek()?;
        let mut out = node.clone();
        for n in added {
            out.add_pod(n.clone());
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, node_info, pod_with_cpu};

    fn prioritized(name: &str, priority: i32) -> Arc<Pod> {
        let mut p = pod_with_cpu(name, "1");
        if let Some(s) = p.spec.as_mut() {
            s.priority = Some(priority);
        }
        Arc::new(p)
    }

    #[test]
    fn which_nominated_pods_count() {
        let mut n = NominatedPods::new();
        n.add("a", prioritized("high", 100));
        n.add("a", prioritized("low", 1));
        n.add("a", prioritized("same", 10));
        n.add("b", prioritized("elsewhere", 100));
        let base = node_info(node("a", "4", "4Gi"), vec![]);
        let cases = [
            ("higher and equal priority count, lower does not", prioritized("p", 10), Some(2000)),
            ("the pod itself is not counted", prioritized("high", 100), None),
            ("everything counts for the lowest pod", prioritized("p", 0), Some(3000)),
            ("nothing outranks a very high pod", prioritized("p", 1000), None),
        ];
        for (name, pod, want) in cases {
            let got = n.with_nominated(&pod, &base).map(|ni| ni.requested().milli_cpu);
            assert_eq!(got, want, "case {name}");
        }
    }
}

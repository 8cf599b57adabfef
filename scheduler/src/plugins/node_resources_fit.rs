//! NodeResourcesFit: the node must have room for the pod's requests (and one more pod); among fitting
//! nodes, the LeastAllocated strategy prefers the emptiest.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::framework::registry::{Handle, Result};
use crate::framework::{
    Code, CycleState, FilterPlugin, MAX_NODE_SCORE, NodeInfo, Plugin, PreFilterPlugin, ScorePlugin, Snapshot, Status,
};
use crate::resources::{self, Resource};

pub const NAME: &str = "NodeResourcesFit";
pub const ERR_REASON_TOO_MANY_PODS: &str = "Too many pods";
pub const ERR_REASON_CPU: &str = "Insufficient cpu";
pub const ERR_REASON_MEMORY: &str = "Insufficient memory";
pub const ERR_REASON_EPHEMERAL_STORAGE: &str = "Insufficient ephemeral-storage";
/// CycleState key for the pod's requests computed at PreFilter.
const PRE_FILTER_STATE_KEY: &str = "PreFilterNodeResourcesFit";

pub struct NodeResourcesFit;

pub fn new(_: &Handle) -> Result<Arc<dyn Plugin>> {
    Ok(Arc::new(NodeResourcesFit))
}

impl Plugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl PreFilterPlugin for NodeResourcesFit {
    fn pre_filter(&self, state: &mut CycleState, pod: &Pod, _: &Snapshot) -> Status {
        state.write(PRE_FILTER_STATE_KEY, resources::pod_requests(pod));
        Status::success()
    }
}

/// One shortfall: its reason, and whether even an empty node would be too small (then preemption cannot
/// help).
struct Shortfall {
    reason: String,
    unresolvable: bool,
}

/// Every way the pod does not fit the node, in upstream's order: pods, cpu, memory, storage, scalars.
fn shortfalls(req: &Resource, node: &NodeInfo) -> Vec<Shortfall> {
    let mut out = Vec::new();
    let alloc = node.allocatable();
    let used = node.requested();
    if i64::try_from(node.pods().len()).unwrap_or(i64::MAX).saturating_add(1) > alloc.allowed_pod_number {
        out.push(Shortfall { reason: ERR_REASON_TOO_MANY_PODS.into(), unresolvable: false });
    }
    if req.is_zero() {
        return out;
    }
    let mut check = |asked: i64, used: i64, allocatable: i64, reason: String| {
        if asked > 0 && asked > allocatable - used {
            out.push(Shortfall { reason, unresolvable: asked > allocatable });
        }
    };
    check(req.milli_cpu, used.milli_cpu, alloc.milli_cpu, ERR_REASON_CPU.into());
    check(req.memory, used.memory, alloc.memory, ERR_REASON_MEMORY.into());
    check(req.ephemeral_storage, used.ephemeral_storage, alloc.ephemeral_storage, ERR_REASON_EPHEMERAL_STORAGE.into());
    for (name, asked) in &req.scalar {
        let u = used.scalar.get(name).copied().unwrap_or(0);
        let a = alloc.scalar.get(name).copied().unwrap_or(0);
        check(*asked, u, a, format!("Insufficient {name}"));
    }
    out
}

impl FilterPlugin for NodeResourcesFit {
    fn filter(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> Status {
        let computed;
        let req = match state.read::<Resource>(PRE_FILTER_STATE_KEY) {
            Some(r) => r,
            None => {
                computed = resources::pod_requests(pod);
                &computed
            }
        };
        let missing = shortfalls(req, node);
        if missing.is_empty() {
            return Status::success();
        }
        let code = if missing.iter().any(|s| s.unresolvable) { Code::UnschedulableAndUnresolvable } else { Code::Unschedulable };
        Status::new(code, missing.into_iter().map(|s| s.reason))
    }
}

/// `(capacity - requested) * MAX / capacity`, 0 when over capacity or capacity is zero.
fn least_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

impl ScorePlugin for NodeResourcesFit {
    /// LeastAllocated over cpu and memory (weight 1 each), counting default requests for pods with none.
    fn score(&self, _: &CycleState, pod: &Pod, node: &NodeInfo) -> std::result::Result<i64, Status> {
        let pod_req = resources::pod_non_zero_requests(pod);
        let used = node.non_zero_requested();
        let alloc = node.allocatable();
        let pairs = [(used.milli_cpu + pod_req.milli_cpu, alloc.milli_cpu), (used.memory + pod_req.memory, alloc.memory)];
        let (mut total, mut weights) = (0, 0);
        for (requested, capacity) in pairs {
            if capacity == 0 {
                continue;
            }
            total += least_requested_score(requested, capacity);
            weights += 1;
        }
        Ok(if weights == 0 { 0 } else { total / weights })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, node_info, pod, pod_with_cpu, pod_with_requests};

    fn run(p: &Pod, ni: &NodeInfo) -> Status {
        let mut state = CycleState::new();
        NodeResourcesFit.pre_filter(&mut state, p, &Snapshot::default());
        NodeResourcesFit.filter(&state, p, ni)
    }

    #[test]
    fn filter() {
        let mut full_node = node("n", "4", "8Gi");
        if let Some(s) = full_node.status.as_mut() {
            s.allocatable.get_or_insert_default().insert("pods".into(), k8s_openapi::apimachinery::pkg::api::resource::Quantity("1".into()));
        }
        let cases = [
            ("fits", pod_with_cpu("p", "1"), node_info(node("n", "4", "8Gi"), vec![]), Status::success()),
            (
                "short of cpu because of other pods",
                pod_with_cpu("p", "2"),
                node_info(node("n", "4", "8Gi"), vec![pod_with_cpu("a", "3")]),
                Status::unschedulable(ERR_REASON_CPU),
            ),
            (
                "more cpu than the node has is unresolvable",
                pod_with_cpu("p", "100"),
                node_info(node("n", "4", "8Gi"), vec![]),
                Status::unresolvable(ERR_REASON_CPU),
            ),
            (
                "cpu and memory both short",
                pod_with_requests("p", &[("cpu", "3"), ("memory", "6Gi")]),
                node_info(node("n", "4", "8Gi"), vec![pod_with_requests("a", &[("cpu", "2"), ("memory", "4Gi")])]),
                Status::new(Code::Unschedulable, [ERR_REASON_CPU, ERR_REASON_MEMORY]),
            ),
            ("too many pods", pod("p"), node_info(full_node, vec![pod("a")]), Status::unschedulable(ERR_REASON_TOO_MANY_PODS)),
            (
                "no requests always fit resources",
                pod("p"),
                node_info(node("n", "1", "1Gi"), vec![pod_with_cpu("a", "1")]),
                Status::success(),
            ),
            (
                "extended resource missing on node",
                pod_with_requests("p", &[("example.com/gpu", "1")]),
                node_info(node("n", "4", "8Gi"), vec![]),
                Status::unresolvable("Insufficient example.com/gpu"),
            ),
        ];
        for (name, p, ni, want) in cases {
            assert_eq!(run(&p, &ni), want, "case {name}");
        }
    }

    #[test]
    fn least_allocated_score() {
        let state = CycleState::new();
        let p = pod_with_requests("p", &[("cpu", "1"), ("memory", "1Gi")]);
        let cases = [
            ("empty node", node_info(node("n", "4", "4Gi"), vec![]), 75),
            ("half used", node_info(node("n", "4", "4Gi"), vec![pod_with_requests("a", &[("cpu", "2"), ("memory", "2Gi")])]), 25),
            // A pod without requests counts 100m / 200Mi: cpu (4000-1100)/4000 → 72, memory (4096-1224)/4096 → 70.
            ("best-effort neighbour counts defaults", node_info(node("n", "4", "4Gi"), vec![pod("a")]), 71),
        ];
        for (name, ni, want) in cases {
            assert_eq!(NodeResourcesFit.score(&state, &p, &ni), Ok(want), "case {name}");
        }
    }
}

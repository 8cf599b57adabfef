//! NodeResourcesFit: the node must have room for the pod's requests (and one more pod); among fitting
//! nodes, the configured scoring strategy (LeastAllocated by default) ranks them.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::framework::registry::{Handle, Result};
use crate::framework::{
    Code, CycleState, FilterPlugin, NodeInfo, Plugin, PreFilterPlugin, PreScorePlugin, ScorePlugin, Snapshot, Status,
};
use crate::plugins::resource_scoring::ScoringStrategy;
use crate::resources::{self, Resource};

pub const NAME: &str = "NodeResourcesFit";
pub const ERR_REASON_TOO_MANY_PODS: &str = "Too many pods";
pub const ERR_REASON_CPU: &str = "Insufficient cpu";
pub const ERR_REASON_MEMORY: &str = "Insufficient memory";
pub const ERR_REASON_EPHEMERAL_STORAGE: &str = "Insufficient ephemeral-storage";
/// CycleState key for the pod's requests computed at PreFilter.
const PRE_FILTER_STATE_KEY: &str = "PreFilterNodeResourcesFit";
/// CycleState key for the requests scoring counts, computed at PreScore.
const PRE_SCORE_STATE_KEY: &str = "PreScoreNodeResourcesFit";

/// `NodeResourcesFitArgs` of `kubescheduler.config.k8s.io/v1`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeResourcesFitArgs {
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    /// Extended resources the filter does not check.
    #[serde(default)]
    pub ignored_resources: Vec<String>,
    /// Extended-resource groups (the part before `/`) the filter does not check.
    #[serde(default)]
    pub ignored_resource_groups: Vec<String>,
    #[serde(default)]
    pub scoring_strategy: Option<ScoringStrategy>,
}

impl NodeResourcesFitArgs {
    /// Field-path errors, empty when valid.
    pub fn validate(&self, path: &str) -> Vec<String> {
        let mut errs = Vec::new();
        for (i, g) in self.ignored_resource_groups.iter().enumerate() {
            if g.is_empty() || g.contains('/') {
                errs.push(format!("{path}.ignoredResourceGroups[{i}]: invalid value {g:?}: must be a non-empty name without '/'"));
            }
        }
        if let Some(s) = &self.scoring_strategy {
            errs.extend(s.validate(&format!("{path}.scoringStrategy")));
        }
        errs
    }

    fn ignores(&self, resource: &str) -> bool {
        self.ignored_resources.iter().any(|r| r == resource)
            || resource.split_once('/').is_some_and(|(group, _)| self.ignored_resource_groups.iter().any(|g| g == group))
    }
}

#[derive(Default)]
pub struct NodeResourcesFit {
    args: NodeResourcesFitArgs,
    strategy: ScoringStrategy,
}

impl NodeResourcesFit {
    pub fn with_args(args: NodeResourcesFitArgs) -> Self {
        let strategy = args.scoring_strategy.clone().unwrap_or_default();
        Self { args, strategy }
    }
}

pub fn new(_: &Handle) -> Result<Arc<dyn Plugin>> {
    Ok(Arc::new(NodeResourcesFit::default()))
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
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
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
fn shortfalls(req: &Resource, node: &NodeInfo, args: &NodeResourcesFitArgs) -> Vec<Shortfall> {
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
    for (name, asked) in req.scalar.iter().filter(|(name, _)| !args.ignores(name)) {
        let u = used.scalar.get(name).copied().unwrap_or(0);
        let a = alloc.scalar.get(name).copied().unwrap_or(0);
        check(*asked, u, a, format!("Insufficient {name}"));
    }
    out
}

impl FilterPlugin for NodeResourcesFit {
    fn filter(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> Status {
        let req = state.read_or(PRE_FILTER_STATE_KEY, || resources::pod_requests(pod));
        let missing = shortfalls(&req, node, &self.args);
        if missing.is_empty() {
            return Status::success();
        }
        let code = if missing.iter().any(|s| s.unresolvable) { Code::UnschedulableAndUnresolvable } else { Code::Unschedulable };
        Status::new(code, missing.into_iter().map(|s| s.reason))
    }
}

/// The pod's requests as scoring counts them: cpu and memory with defaults for containers without any
/// (as upstream's scorers do), everything else as requested.
#[derive(Clone)]
struct ScoreRequests {
    non_zero: Resource,
    requested: Resource,
}

impl ScoreRequests {
    fn of(pod: &Pod) -> Self {
        Self { non_zero: resources::pod_non_zero_requests(pod), requested: resources::pod_requests(pod) }
    }
}

/// `(requested, allocatable)` of one resource on the node with the pod added.
fn amounts(resource: &str, pod: &ScoreRequests, node: &NodeInfo) -> (i64, i64) {
    let alloc = node.allocatable();
    match resource {
        "cpu" => (node.non_zero_requested().milli_cpu + pod.non_zero.milli_cpu, alloc.milli_cpu),
        "memory" => (node.non_zero_requested().memory + pod.non_zero.memory, alloc.memory),
        "ephemeral-storage" => (node.requested().ephemeral_storage + pod.requested.ephemeral_storage, alloc.ephemeral_storage),
        other => {
            let used = node.requested().scalar.get(other).copied().unwrap_or(0);
            let asked = pod.requested.scalar.get(other).copied().unwrap_or(0);
            (used + asked, alloc.scalar.get(other).copied().unwrap_or(0))
        }
    }
}

impl PreScorePlugin for NodeResourcesFit {
    /// The pod's requests, parsed once rather than for every node scored.
    fn pre_score(&self, state: &mut CycleState, pod: &Pod, _: &[&NodeInfo], _: &Snapshot) -> Status {
        state.write(PRE_SCORE_STATE_KEY, ScoreRequests::of(pod));
        Status::success()
    }
}

impl ScorePlugin for NodeResourcesFit {
    /// The configured strategy over the configured resources (cpu and memory, weight 1, by default).
    fn score(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> std::result::Result<i64, Status> {
        let req = state.read_or(PRE_SCORE_STATE_KEY, || ScoreRequests::of(pod));
        Ok(self.strategy.score(self.strategy.resources.iter().map(|r| amounts(&r.name, &req, node))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, node_info, pod, pod_with_cpu, pod_with_requests};

    fn run(p: &Pod, ni: &NodeInfo) -> Status {
        let mut state = CycleState::new();
        NodeResourcesFit::default().pre_filter(&mut state, p, &Snapshot::default());
        NodeResourcesFit::default().filter(&state, p, ni)
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
        let mut pre_scored = CycleState::new();
        assert!(NodeResourcesFit::default().pre_score(&mut pre_scored, &p, &[], &Snapshot::default()).is_success());
        for (name, ni, want) in cases {
            assert_eq!(NodeResourcesFit::default().score(&state, &p, &ni), Ok(want), "case {name}");
            assert_eq!(NodeResourcesFit::default().score(&pre_scored, &p, &ni), Ok(want), "case {name}, requests from PreScore");
        }
    }

    #[test]
    fn most_allocated_prefers_fuller_nodes() {
        use crate::plugins::resource_scoring::{MOST_ALLOCATED, ScoringStrategy};
        let args = NodeResourcesFitArgs {
            scoring_strategy: Some(ScoringStrategy { type_: MOST_ALLOCATED.into(), ..Default::default() }),
            ..Default::default()
        };
        let plugin = NodeResourcesFit::with_args(args);
        let p = pod_with_requests("p", &[("cpu", "1"), ("memory", "1Gi")]);
        let empty = node_info(node("n", "4", "4Gi"), vec![]);
        let half = node_info(node("n", "4", "4Gi"), vec![pod_with_requests("a", &[("cpu", "1"), ("memory", "1Gi")])]);
        assert_eq!(plugin.score(&CycleState::new(), &p, &empty), Ok(25));
        assert_eq!(plugin.score(&CycleState::new(), &p, &half), Ok(50));
    }
}

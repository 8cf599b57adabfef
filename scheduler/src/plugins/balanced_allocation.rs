//! NodeResourcesBalancedAllocation: prefers nodes where cpu and memory would be used in equal proportion
//! once the pod lands, so neither runs out while the other sits idle.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::framework::registry::{Handle, Result};
use crate::framework::{CycleState, MAX_NODE_SCORE, NodeInfo, Plugin, PreScorePlugin, ScorePlugin, Snapshot, Status};
use crate::resources;

pub const NAME: &str = "NodeResourcesBalancedAllocation";
const PRE_SCORE_STATE_KEY: &str = "PreScoreNodeResourcesBalancedAllocation";

pub struct BalancedAllocation;

pub fn new(_: &Handle) -> Result<Arc<dyn Plugin>> {
    Ok(Arc::new(BalancedAllocation))
}

impl Plugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl PreScorePlugin for BalancedAllocation {
    /// Best-effort pods (no cpu or memory requests) change no balance: skip scoring for them.
    fn pre_score(&self, state: &mut CycleState, pod: &Pod, _: &[&NodeInfo], _: &Snapshot) -> Status {
        let req = resources::pod_requests(pod);
        if req.milli_cpu == 0 && req.memory == 0 {
            return Status::skip();
        }
        state.write(PRE_SCORE_STATE_KEY, req);
        Status::success()
    }
}

/// `(1 - std(fractions)) * MAX`, with each fraction capped at 1.
fn balanced_score(fractions: &[f64]) -> i64 {
    let std = match fractions {
        [a, b] => ((a - b) / 2.0).abs(),
        fs if fs.len() > 2 => {
            let n = fs.len() as f64;
            let mean = fs.iter().sum::<f64>() / n;
            (fs.iter().map(|f| (f - mean).powi(2)).sum::<f64>() / n).sqrt()
        }
        _ => 0.0,
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

impl ScorePlugin for BalancedAllocation {
    fn score(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> std::result::Result<i64, Status> {
        let req = state.read_or(PRE_SCORE_STATE_KEY, || resources::pod_requests(pod));
        let used = node.requested();
        let alloc = node.allocatable();
        let fractions: Vec<f64> = [(used.milli_cpu + req.milli_cpu, alloc.milli_cpu), (used.memory + req.memory, alloc.memory)]
            .into_iter()
            .filter(|(_, a)| *a != 0)
            .map(|(r, a)| (r as f64 / a as f64).min(1.0))
            .collect();
        Ok(balanced_score(&fractions))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, node_info, pod, pod_with_requests};

    #[test]
    fn score() {
        let p = pod_with_requests("p", &[("cpu", "1"), ("memory", "1Gi")]);
        let mut state = CycleState::new();
        assert!(BalancedAllocation.pre_score(&mut state, &p, &[], &Snapshot::new(vec![])).is_success());
        let cases = [
            ("balanced", node_info(node("n", "4", "4Gi"), vec![]), 100),
            // cpu 3/4 = 0.75, memory 1/4 = 0.25 → std 0.25 → 75.
            ("cpu heavy", node_info(node("n", "4", "4Gi"), vec![pod_with_requests("a", &[("cpu", "2")])]), 75),
            // cpu capped at 1, memory 0.25 → std 0.375 → 62.
            ("over-committed cpu is capped", node_info(node("n", "1", "4Gi"), vec![pod_with_requests("a", &[("cpu", "2")])]), 62),
        ];
        for (name, ni, want) in cases {
            assert_eq!(BalancedAllocation.score(&state, &p, &ni), Ok(want), "case {name}");
        }
    }

    #[test]
    fn best_effort_pods_skip() {
        assert!(BalancedAllocation.pre_score(&mut CycleState::new(), &pod("p"), &[], &Snapshot::new(vec![])).is_skip());
    }
}

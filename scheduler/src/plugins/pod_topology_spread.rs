//! PodTopologySpread, with upstream's system-default constraints only: pods of the same controller are
//! spread across hosts (`kubernetes.io/hostname`, maxSkew 3) and zones (`topology.kubernetes.io/zone`,
//! maxSkew 5), both `ScheduleAnyway`, so this is a score, never a filter. Upstream derives the selector
//! from the Services/ReplicaSets/StatefulSets selecting the pod; here "same namespace and same
//! controller owner" stands in for it, which is the same set for pods a workload controller creates.
//! Pods with their own `topologySpreadConstraints` are skipped (not supported yet).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::framework::registry::{Handle, Result};
use crate::framework::{
    CycleState, MAX_NODE_SCORE, NodeInfo, NodeScore, NormalizeScorePlugin, Plugin, PreScorePlugin, ScorePlugin, Status,
};

pub const NAME: &str = "PodTopologySpread";
const PRE_SCORE_STATE_KEY: &str = "PreScorePodTopologySpread";
pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
pub const LABEL_ZONE: &str = "topology.kubernetes.io/zone";

/// One system-default constraint.
struct Constraint {
    topology_key: &'static str,
    max_skew: i64,
}

/// Upstream's system defaults (`PodTopologySpreadArgs.defaultingType: System`).
const SYSTEM_DEFAULT_CONSTRAINTS: [Constraint; 2] =
    [Constraint { topology_key: LABEL_HOSTNAME, max_skew: 3 }, Constraint { topology_key: LABEL_ZONE, max_skew: 5 }];

pub struct PodTopologySpread;

pub fn new(_: &Handle) -> Result<Arc<dyn Plugin>> {
    Ok(Arc::new(PodTopologySpread))
}

impl Plugin for PodTopologySpread {
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

/// Matching pods per topology domain, for each constraint, plus each constraint's weight.
struct PreScoreState {
    counts: Vec<BTreeMap<String, i64>>,
    weights: Vec<f64>,
}

/// The uid of the pod's controlling owner.
fn controller_uid(pod: &Pod) -> Option<&str> {
    pod.metadata.owner_references.as_ref()?.iter().find(|o| o.controller == Some(true)).map(|o| o.uid.as_str())
}

fn domain<'a>(node: &'a NodeInfo, key: &str) -> Option<&'a str> {
    node.node().metadata.labels.as_ref()?.get(key).map(String::as_str)
}

impl PreScorePlugin for PodTopologySpread {
    fn pre_score(&self, state: &mut CycleState, pod: &Pod, nodes: &[&NodeInfo]) -> Status {
        let explicit = pod.spec.as_ref().and_then(|s| s.topology_spread_constraints.as_ref()).is_some_and(|c| !c.is_empty());
        let Some(owner) = controller_uid(pod).filter(|_| !explicit) else { return Status::skip() };
        let namespace = pod.metadata.namespace.as_deref();
        let mut counts = Vec::new();
        let mut weights = Vec::new();
        for c in &SYSTEM_DEFAULT_CONSTRAINTS {
            let mut per_domain: BTreeMap<String, i64> = BTreeMap::new();
            for n in nodes {
                let Some(d) = domain(n, c.topology_key) else { continue };
                let matching = n
                    .pods()
                    .iter()
                    .filter(|p| {
                        p.pod.metadata.deletion_timestamp.is_none()
                            && p.pod.metadata.namespace.as_deref() == namespace
                            && controller_uid(&p.pod) == Some(owner)
                    })
                    .count();
                *per_domain.entry(d.to_string()).or_default() += i64::try_from(matching).unwrap_or(i64::MAX);
            }
            // More domains make one more pod in a domain matter less; upstream weighs by log(domains + 2).
            weights.push(((per_domain.len() + 2) as f64).ln());
            counts.push(per_domain);
        }
        state.write(PRE_SCORE_STATE_KEY, PreScoreState { counts, weights });
        Status::success()
    }
}

impl ScorePlugin for PodTopologySpread {
    /// Higher means more crowded; NormalizeScore turns it around.
    fn score(&self, state: &CycleState, _: &Pod, node: &NodeInfo) -> std::result::Result<i64, Status> {
        let Some(s) = state.read::<PreScoreState>(PRE_SCORE_STATE_KEY) else {
            return Err(Status::error(format!("reading {PRE_SCORE_STATE_KEY:?} from cycle state: not found")));
        };
        let mut score = 0.0;
        for (i, c) in SYSTEM_DEFAULT_CONSTRAINTS.iter().enumerate() {
            let Some(d) = domain(node, c.topology_key) else { continue };
            let count = s.counts.get(i).and_then(|m| m.get(d)).copied().unwrap_or(0);
            score += count as f64 * s.weights.get(i).copied().unwrap_or(1.0) + (c.max_skew - 1) as f64;
        }
        Ok(score.round() as i64)
    }

    fn normalizer(&self) -> Option<&dyn NormalizeScorePlugin> {
        Some(self)
    }
}

impl NormalizeScorePlugin for PodTopologySpread {
    /// `MAX * (max + min - s) / max`: the least crowded node gets the top score.
    fn normalize_score(&self, _: &CycleState, _: &Pod, scores: &mut [NodeScore]) -> Status {
        let max = scores.iter().map(|s| s.score).max().unwrap_or(0);
        let min = scores.iter().map(|s| s.score).min().unwrap_or(0);
        for s in scores.iter_mut() {
            s.score = if max == 0 { MAX_NODE_SCORE } else { MAX_NODE_SCORE * (max + min - s.score) / max };
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, node_info, owned_by, pod};

    fn scores(p: &Pod, nodes: &[NodeInfo]) -> Vec<i64> {
        let mut state = CycleState::new();
        let refs: Vec<&NodeInfo> = nodes.iter().collect();
        assert!(PodTopologySpread.pre_score(&mut state, p, &refs).is_success());
        let mut out: Vec<NodeScore> = nodes
            .iter()
            .map(|n| NodeScore { name: n.name().into(), score: PodTopologySpread.score(&state, p, n).unwrap_or(-1) })
            .collect();
        PodTopologySpread.normalize_score(&state, p, &mut out);
        out.into_iter().map(|s| s.score).collect()
    }

    #[test]
    fn prefers_nodes_with_fewer_siblings() {
        let me = owned_by(pod("new"), "rs1");
        let nodes = vec![
            node_info(node("a", "4", "4Gi"), vec![owned_by(pod("s1"), "rs1"), owned_by(pod("s2"), "rs1")]),
            node_info(node("b", "4", "4Gi"), vec![owned_by(pod("s3"), "rs1")]),
            node_info(node("c", "4", "4Gi"), vec![owned_by(pod("x"), "other"), pod("y")]),
        ];
        let s = scores(&me, &nodes);
        assert!(s[2] > s[1] && s[1] > s[0], "emptiest node first, got {s:?}");
        assert_eq!(s[2], 100);
    }

    #[test]
    fn all_equal_scores_max() {
        let me = owned_by(pod("new"), "rs1");
        let nodes = vec![node_info(node("a", "4", "4Gi"), vec![]), node_info(node("b", "4", "4Gi"), vec![])];
        assert_eq!(scores(&me, &nodes), vec![100, 100]);
    }

    #[test]
    fn skips_unowned_pods() {
        assert!(PodTopologySpread.pre_score(&mut CycleState::new(), &pod("lonely"), &[]).is_skip());
    }
}

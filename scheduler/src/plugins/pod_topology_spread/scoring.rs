//! PreScore, Score and NormalizeScore: the pod's own `ScheduleAnyway` constraints, or (for pods with no
//! constraints of their own) the default ones. Fewer matching pods in a node's domains means a higher
//! score; each constraint's count is weighted by `ln(domains + 2)` so that with many domains one pod more
//! matters less, and `maxSkew - 1` is added so a looser constraint weighs less.

use std::collections::{HashMap, HashSet};

use k8s_openapi::api::core::v1::Pod;

use super::PodTopologySpread;
use super::constraint::{
    Constraint, SCHEDULE_ANYWAY, controller_uid, domain_counts, has_all_keys, has_own_constraints, node_label, own_constraints,
};
use crate::framework::{
    CycleState, MAX_NODE_SCORE, NodeInfo, NodeScore, NormalizeScorePlugin, PreScorePlugin, ScorePlugin, Snapshot, Status,
};

const PRE_SCORE_STATE_KEY: &str = "PreScorePodTopologySpread";
const CLUSTER_COUNTS_KEY: &str = "PreFilterPodTopologySpreadScoring";

/// Matching pods per domain over every node of the snapshot, for the pod's own ScheduleAnyway
/// constraints (written by PreFilter).
struct ClusterCounts(Vec<HashMap<String, i64>>);

/// Matching pods per domain of the feasible nodes, each constraint's weight, and the feasible nodes that
/// lack a topology key (they score 0).
struct PreScoreState {
    constraints: Vec<Constraint>,
    counts: Vec<HashMap<String, i64>>,
    weights: Vec<f64>,
    ignored: HashSet<String>,
}

/// Counts the pod's own ScheduleAnyway constraints over the whole cluster, when it has any.
pub fn count_cluster(state: &mut CycleState, pod: &Pod, snapshot: &Snapshot) -> Result<(), String> {
    if !has_own_constraints(pod) {
        return Ok(());
    }
    let constraints = own_constraints(pod, SCHEDULE_ANYWAY)?;
    if !constraints.is_empty() {
        state.write(CLUSTER_COUNTS_KEY, ClusterCounts(domain_counts(&constraints, pod, snapshot.nodes(), true)));
    }
    Ok(())
}

impl PodTopologySpread {
    /// The constraints that score `pod`, and whether a node must carry all their keys to be scored:
    /// its own ScheduleAnyway ones (strict), else the defaults for pods with a controller (lenient).
    fn scoring_constraints(&self, pod: &Pod) -> Result<(Vec<Constraint>, bool), String> {
        if has_own_constraints(pod) {
            return Ok((own_constraints(pod, SCHEDULE_ANYWAY)?, true));
        }
        let Some(owner) = controller_uid(pod) else { return Ok((Vec::new(), false)) };
        let defaults = self.defaults.iter().map(|d| Constraint::system_default(&d.topology_key, d.max_skew, owner)).collect();
        Ok((defaults, false))
    }
}

impl PreScorePlugin for PodTopologySpread {
    fn pre_score(&self, state: &mut CycleState, pod: &Pod, nodes: &[&NodeInfo], _: &Snapshot) -> Status {
        let (constraints, require_all_keys) = match self.scoring_constraints(pod) {
            Ok(c) => c,
            Err(e) => return Status::error(e),
        };
        if constraints.is_empty() || nodes.is_empty() {
            return Status::skip();
        }
        let mut ignored = HashSet::new();
        let mut domains: Vec<HashSet<&str>> = vec![HashSet::new(); constraints.len()];
        for n in nodes {
            if require_all_keys && !has_all_keys(n.node(), &constraints) {
                ignored.insert(n.name().to_string());
                continue;
            }
            for (c, ds) in constraints.iter().zip(domains.iter_mut()) {
                if let Some(d) = node_label(n.node(), &c.topology_key) {
                    ds.insert(d);
                }
            }
        }
        // Counts over the whole cluster when PreFilter made them (the pod's own constraints); otherwise
        // over the feasible nodes, which is what the default constraints have always used.
        let local;
        let all = match state.read::<ClusterCounts>(CLUSTER_COUNTS_KEY).filter(|_| require_all_keys) {
            Some(ClusterCounts(c)) => c,
            None => {
                local = domain_counts(&constraints, pod, nodes.iter().copied(), require_all_keys);
                &local
            }
        };
        let counts: Vec<HashMap<String, i64>> = domains
            .iter()
            .zip(all)
            .map(|(ds, all)| ds.iter().map(|d| (d.to_string(), all.get(*d).copied().unwrap_or(0))).collect())
            .collect();
        let weights = domains.iter().map(|ds| ((ds.len() + 2) as f64).ln()).collect();
        state.write(PRE_SCORE_STATE_KEY, PreScoreState { constraints, counts, weights, ignored });
        Status::success()
    }
}

impl ScorePlugin for PodTopologySpread {
    /// Higher means more crowded; NormalizeScore turns it around.
    fn score(&self, state: &CycleState, _: &Pod, node: &NodeInfo) -> std::result::Result<i64, Status> {
        let Some(s) = state.read::<PreScoreState>(PRE_SCORE_STATE_KEY) else {
            return Err(Status::error(format!("reading {PRE_SCORE_STATE_KEY:?} from cycle state: not found")));
        };
        if s.ignored.contains(node.name()) {
            return Ok(0);
        }
        let mut score = 0.0;
        for ((c, counts), weight) in s.constraints.iter().zip(&s.counts).zip(&s.weights) {
            let Some(d) = node_label(node.node(), &c.topology_key) else { continue };
            let count = counts.get(d).copied().unwrap_or(0);
            score += count as f64 * weight + (c.max_skew - 1) as f64;
        }
        Ok(score.round() as i64)
    }

    fn normalizer(&self) -> Option<&dyn NormalizeScorePlugin> {
        Some(self)
    }
}

impl NormalizeScorePlugin for PodTopologySpread {
    /// `MAX * (max + min - s) / max` over the scored nodes: the least crowded gets the top score; nodes
    /// missing a topology key get 0.
    fn normalize_score(&self, state: &CycleState, _: &Pod, scores: &mut [NodeScore<'_>]) -> Status {
        let empty = HashSet::new();
        let ignored = state.read::<PreScoreState>(PRE_SCORE_STATE_KEY).map_or(&empty, |s| &s.ignored);
        let counted = || scores.iter().filter(|s| !ignored.contains(s.name)).map(|s| s.score);
        let max = counted().max().unwrap_or(0);
        let min = counted().min().unwrap_or(0);
        for s in scores.iter_mut() {
            s.score = if ignored.contains(s.name) {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - s.score) / max
            };
        }
        Status::success()
    }
}

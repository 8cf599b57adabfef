//! PreFilter and Filter for the pod's `DoNotSchedule` constraints: a node fails when placing the pod in
//! its domain would make that domain exceed the least crowded eligible domain by more than `maxSkew`.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Pod;

use super::constraint::{Constraint, DO_NOT_SCHEDULE, domain_counts, node_label, own_constraints};
use super::{PodTopologySpread, scoring};
use crate::framework::{CycleState, FilterPlugin, NodeInfo, PreFilterPlugin, Snapshot, Status};

pub const ERR_REASON_CONSTRAINTS_NOT_MATCH: &str = "node(s) didn't match pod topology spread constraints";
pub const ERR_REASON_NODE_LABEL_NOT_MATCH: &str = "node(s) didn't match pod topology spread constraints (missing required label)";
const PRE_FILTER_STATE_KEY: &str = "PreFilterPodTopologySpread";

/// What Filter needs for each `DoNotSchedule` constraint, computed once per cycle.
pub struct PreFilterState {
    constraints: Vec<Constraint>,
    /// Matching pods per eligible domain.
    counts: Vec<HashMap<String, i64>>,
    /// The global minimum each skew is measured against.
    global_min: Vec<i64>,
}

impl PreFilterState {
    /// Counts over every node of the snapshot (bound and assumed pods alike).
    pub fn compute(constraints: Vec<Constraint>, pod: &Pod, nodes: &[NodeInfo]) -> Self {
        let counts = domain_counts(&constraints, pod, nodes, true);
        let global_min = constraints.iter().zip(&counts).map(|(c, per_domain)| global_min(c, per_domain)).collect();
        Self { constraints, counts, global_min }
    }

    /// The pod's verdict on one node.
    pub fn check(&self, pod: &Pod, node: &NodeInfo) -> Status {
        for ((c, per_domain), min) in self.constraints.iter().zip(&self.counts).zip(&self.global_min) {
            let Some(domain) = node_label(node.node(), &c.topology_key) else {
                return Status::unresolvable(ERR_REASON_NODE_LABEL_NOT_MATCH);
            };
            let existing = per_domain.get(domain).copied().unwrap_or(0);
            let own = i64::from(c.selects(pod));
            if existing + own - min > c.max_skew {
                return Status::unschedulable(ERR_REASON_CONSTRAINTS_NOT_MATCH);
            }
        }
        Status::success()
    }
}

/// The least matching count over the eligible domains, or 0 while there are fewer domains than
/// `minDomains` (so pods keep going to new domains until there are enough).
fn global_min(c: &Constraint, per_domain: &HashMap<String, i64>) -> i64 {
    if per_domain.len() < c.min_domains {
        return 0;
    }
    per_domain.values().copied().min().unwrap_or(0)
}

impl PreFilterPlugin for PodTopologySpread {
    fn pre_filter(&self, state: &mut CycleState, pod: &Pod, snapshot: &Snapshot) -> Status {
        // Scoring for the pod's ScheduleAnyway constraints needs counts over every node, not only the
        // feasible ones PreScore is shown; the snapshot is at hand here.
        if let Err(e) = scoring::count_cluster(state, pod, snapshot) {
            return Status::error(e);
        }
        let constraints = match own_constraints(pod, DO_NOT_SCHEDULE) {
            Ok(c) if c.is_empty() => return Status::skip(),
            Ok(c) => c,
            Err(e) => return Status::error(e),
        };
        state.write(PRE_FILTER_STATE_KEY, PreFilterState::compute(constraints, pod, snapshot.nodes()));
        Status::success()
    }
}

impl FilterPlugin for PodTopologySpread {
    fn filter(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> Status {
        match state.read::<PreFilterState>(PRE_FILTER_STATE_KEY) {
            Some(s) => s.check(pod, node),
            None => Status::error(format!("reading {PRE_FILTER_STATE_KEY:?} from cycle state: not found")),
        }
    }
}

//! PodTopologySpread, with upstream's system-default constraints only: pods of the same controller are
//! spread across hosts (`kubernetes.io/hostname`, maxSkew 3) and zones (`topology.kubernetes.io/zone`,
//! maxSkew 5), both `ScheduleAnyway`, so this is a score, never a filter. Upstream derives the selector
//! from the Services/ReplicaSets/StatefulSets selecting the pod; here "same namespace and same
//! controller owner" stands in for it, which is the same set for pods a workload controller creates.
//! Pods with their own `topologySpreadConstraints` are skipped (not supported yet).
//! `PodTopologySpreadArgs` may replace the system defaults (`defaultingType: List`) with other
//! `ScheduleAnyway` constraints, or none.

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

pub const DEFAULTING_SYSTEM: &str = "System";
pub const DEFAULTING_LIST: &str = "List";
const SCHEDULE_ANYWAY: &str = "ScheduleAnyway";
const DO_NOT_SCHEDULE: &str = "DoNotSchedule";

/// One default constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Constraint {
    topology_key: String,
    max_skew: i64,
}

/// Upstream's system defaults (`PodTopologySpreadArgs.defaultingType: System`).
fn system_default_constraints() -> Vec<Constraint> {
    vec![
        Constraint { topology_key: LABEL_HOSTNAME.into(), max_skew: 3 },
        Constraint { topology_key: LABEL_ZONE.into(), max_skew: 5 },
    ]
}

/// `PodTopologySpreadArgs` of `kubescheduler.config.k8s.io/v1`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodTopologySpreadArgs {
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub default_constraints: Vec<k8s_openapi::api::core::v1::TopologySpreadConstraint>,
    /// `System` (default) or `List`.
    #[serde(default)]
    pub defaulting_type: Option<String>,
}

impl PodTopologySpreadArgs {
    /// Field-path errors, empty when valid.
    pub fn validate(&self, path: &str) -> Vec<String> {
        let mut errs = Vec::new();
        let defaulting = self.defaulting_type.as_deref().unwrap_or(DEFAULTING_SYSTEM);
        if ![DEFAULTING_SYSTEM, DEFAULTING_LIST].contains(&defaulting) {
            errs.push(format!("{path}.defaultingType: unsupported value {defaulting:?}: supported values are \"System\", \"List\""));
        }
        if defaulting == DEFAULTING_SYSTEM && !self.default_constraints.is_empty() {
            errs.push(format!("{path}.defaultConstraints: invalid value: when .defaultingType is \"System\", .defaultConstraints must be empty"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, c) in self.default_constraints.iter().enumerate() {
            let at = format!("{path}.defaultConstraints[{i}]");
            if c.max_skew <= 0 {
                errs.push(format!("{at}.maxSkew: invalid value {}: must be greater than zero", c.max_skew));
            }
            if c.topology_key.is_empty() {
                errs.push(format!("{at}.topologyKey: required value"));
            }
            match c.when_unsatisfiable.as_str() {
                SCHEDULE_ANYWAY => {}
                DO_NOT_SCHEDULE => errs.push(format!("{at}.whenUnsatisfiable: unsupported value \"DoNotSchedule\": rudder supports only \"ScheduleAnyway\" default constraints so far")),
                other => errs.push(format!("{at}.whenUnsatisfiable: unsupported value {other:?}: supported values are \"DoNotSchedule\", \"ScheduleAnyway\"")),
            }
            if c.label_selector.is_some() {
                errs.push(format!("{at}.labelSelector: forbidden: constraint must not define a selector, as they are deduced for each pod"));
            }
            if !seen.insert((c.topology_key.as_str(), c.when_unsatisfiable.as_str())) {
                errs.push(format!("{at}: duplicate value {{{:?}, {:?}}}", c.topology_key, c.when_unsatisfiable));
            }
        }
        errs
    }
}

pub struct PodTopologySpread {
    constraints: Vec<Constraint>,
}

impl Default for PodTopologySpread {
    fn default() -> Self {
        Self { constraints: system_default_constraints() }
    }
}

impl PodTopologySpread {
    pub fn with_args(args: &PodTopologySpreadArgs) -> Self {
        if args.defaulting_type.as_deref() != Some(DEFAULTING_LIST) {
            return Self::default();
        }
        let constraints = args
            .default_constraints
            .iter()
            .map(|c| Constraint { topology_key: c.topology_key.clone(), max_skew: i64::from(c.max_skew) })
            .collect();
        Self { constraints }
    }
}

pub fn new(_: &Handle) -> Result<Arc<dyn Plugin>> {
    Ok(Arc::new(PodTopologySpread::default()))
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
        let Some(owner) = controller_uid(pod).filter(|_| !explicit && !self.constraints.is_empty()) else {
            return Status::skip();
        };
        let namespace = pod.metadata.namespace.as_deref();
        let mut counts = Vec::new();
        let mut weights = Vec::new();
        for c in &self.constraints {
            let mut per_domain: BTreeMap<String, i64> = BTreeMap::new();
            for n in nodes {
                let Some(d) = domain(n, &c.topology_key) else { continue };
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
        for (i, c) in self.constraints.iter().enumerate() {
            let Some(d) = domain(node, &c.topology_key) else { continue };
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
        assert!(PodTopologySpread::default().pre_score(&mut state, p, &refs).is_success());
        let mut out: Vec<NodeScore> = nodes
            .iter()
            .map(|n| NodeScore { name: n.name().into(), score: PodTopologySpread::default().score(&state, p, n).unwrap_or(-1) })
            .collect();
        PodTopologySpread::default().normalize_score(&state, p, &mut out);
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
        assert!(PodTopologySpread::default().pre_score(&mut CycleState::new(), &pod("lonely"), &[]).is_skip());
    }
}

//! InterPodAffinity: required pod affinity and anti-affinity filter nodes (the incoming pod's terms, and
//! existing pods' required anti-affinity toward it); preferred terms of both sides score them. "The same
//! place" is the topology domain of the term's `topologyKey` (for example the node, or the zone).

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};

use crate::framework::registry::{Handle, Result};
use crate::framework::{
    CycleState, FilterPlugin, MAX_NODE_SCORE, NodeInfo, NodeScore, NormalizeScorePlugin, Plugin, PreFilterPlugin,
    PreScorePlugin, ScorePlugin, Snapshot, Status,
};
use crate::framework::affinity_terms::PodTerms;

pub const NAME: &str = "InterPodAffinity";
pub const ERR_REASON_EXISTING_ANTI_AFFINITY: &str = "node(s) didn't satisfy existing pods anti-affinity rules";
pub const ERR_REASON_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const ERR_REASON_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
const PRE_FILTER_STATE_KEY: &str = "PreFilterInterPodAffinity";
const PRE_SCORE_STATE_KEY: &str = "PreScoreInterPodAffinity";
/// What an existing pod's required affinity toward the incoming pod adds to a domain's score (upstream's
/// default `hardPodAffinityWeight`).
const HARD_POD_AFFINITY_WEIGHT: i64 = 1;

/// A number per topology domain (label key → value → number), read and bumped without building keys:
/// filters look one up per node.
#[derive(Debug, Default)]
struct DomainCounts(HashMap<String, HashMap<String, i64>>);

impl DomainCounts {
    /// Adds `by` to the domain `node` is in for `key` (nothing when the node lacks the label).
    fn bump(&mut self, node: &Node, key: &str, by: i64) {
        let Some(value) = label(node, key) else { return };
        if !self.0.contains_key(key) {
            self.0.insert(key.to_string(), HashMap::new());
        }
        let Some(per_value) = self.0.get_mut(key) else { return };
        match per_value.get_mut(value) {
            Some(n) => *n += by,
            None => {
                per_value.insert(value.to_string(), by);
            }
        }
    }

    fn get(&self, key: &str, value: &str) -> Option<i64> {
        self.0.get(key).and_then(|m| m.get(value)).copied()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn label<'a>(node: &'a Node, key: &str) -> Option<&'a str> {
    node.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

struct PreFilterState {
    terms: PodTerms,
    /// Domains where some existing pod's required anti-affinity matches the incoming pod.
    existing_anti: DomainCounts,
    /// Domains holding pods that match all of the incoming pod's required affinity terms.
    affinity: DomainCounts,
    /// Domains holding pods matched by one of the incoming pod's required anti-affinity terms.
    anti: DomainCounts,
}

pub struct InterPodAffinity;

pub fn new(_: &Handle) -> Result<Arc<dyn Plugin>> {
    Ok(Arc::new(InterPodAffinity))
}

impl Plugin for InterPodAffinity {
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

impl PreFilterPlugin for InterPodAffinity {
    fn pre_filter(&self, state: &mut CycleState, pod: &Pod, snapshot: &Snapshot) -> Status {
        let terms = PodTerms::of(pod);
        state.write(PRE_SCORE_STATE_KEY, preferred_scores(pod, &terms, snapshot));
        let mut s = PreFilterState { terms, existing_anti: DomainCounts::default(), affinity: DomainCounts::default(), anti: DomainCounts::default() };
        // Without required terms of its own, only existing pods with terms can matter.
        let own_required = !s.terms.required_affinity.is_empty() || !s.terms.required_anti_affinity.is_empty();
        for n in snapshot.nodes().iter().filter(|n| own_required || n.pods_with_pod_affinity() > 0) {
            for e in n.pods().iter().filter(|e| own_required || e.has_pod_affinity) {
                let existing = e.affinity_terms();
                for t in existing.required_anti_affinity.iter().filter(|t| t.matches(pod)) {
                    s.existing_anti.bump(n.node(), &t.topology_key, 1);
                }
                let req = &s.terms.required_affinity;
                if !req.is_empty() && req.iter().all(|t| t.matches(&e.pod)) {
                    for t in req {
                        s.affinity.bump(n.node(), &t.topology_key, 1);
                    }
                }
                for t in s.terms.required_anti_affinity.iter().filter(|t| t.matches(&e.pod)) {
                    s.anti.bump(n.node(), &t.topology_key, 1);
                }
            }
        }
        let nothing_required = s.terms.required_affinity.is_empty() && s.terms.required_anti_affinity.is_empty();
        if nothing_required && s.existing_anti.is_empty() {
            return Status::skip();
        }
        state.write(PRE_FILTER_STATE_KEY, s);
        Status::success()
    }
}

impl FilterPlugin for InterPodAffinity {
    fn filter(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<PreFilterState>(PRE_FILTER_STATE_KEY) else {
            return Status::error(format!("reading {PRE_FILTER_STATE_KEY:?} from cycle state: not found"));
        };
        let n = node.node();
        let count = |map: &DomainCounts, key: &str| label(n, key).and_then(|v| map.get(key, v)).unwrap_or(0);
        // Upstream's order, which decides the reason reported: the pod's own affinity, its own
        // anti-affinity, then existing pods' anti-affinity toward it.
        let req = &s.terms.required_affinity;
        let all_domains_match = req.iter().all(|t| count(&s.affinity, &t.topology_key) > 0);
        // The first pod of a group that selects itself may go anywhere its topology keys exist.
        let first_of_group = s.affinity.is_empty()
            && req.iter().all(|t| t.matches(pod))
            && req.iter().all(|t| label(n, &t.topology_key).is_some());
        if !req.is_empty() && !all_domains_match && !first_of_group {
            return Status::unresolvable(ERR_REASON_AFFINITY);
        }
        if s.terms.required_anti_affinity.iter().any(|t| count(&s.anti, &t.topology_key) > 0) {
            return Status::unschedulable(ERR_REASON_ANTI_AFFINITY);
        }
        let mut labels = n.metadata.labels.iter().flatten();
        if labels.any(|(k, _)| count(&s.existing_anti, k) > 0) {
            return Status::unschedulable(ERR_REASON_EXISTING_ANTI_AFFINITY);
        }
        Status::success()
    }
}

/// Sums, per domain, the weights of preferred terms matched between the incoming pod and the pods already
/// there (both directions; anti-affinity subtracts). Computed at PreFilter, which sees every node (scores
/// count pods on all nodes, not only the feasible ones).
fn preferred_scores(pod: &Pod, mine: &PodTerms, snapshot: &Snapshot) -> DomainCounts {
    let mut scores = DomainCounts::default();
    // Without preferred terms of its own, only existing pods with terms can add to a score.
    let own_preferred = !mine.preferred_affinity.is_empty() || !mine.preferred_anti_affinity.is_empty();
    for n in snapshot.nodes().iter().filter(|n| own_preferred || n.pods_with_pod_affinity() > 0) {
        for e in n.pods().iter().filter(|e| own_preferred || e.has_pod_affinity) {
            let theirs = e.affinity_terms();
            let node = n.node();
            for t in mine.preferred_affinity.iter().filter(|t| t.matches(&e.pod)) {
                scores.bump(node, &t.topology_key, t.weight);
            }
            for t in mine.preferred_anti_affinity.iter().filter(|t| t.matches(&e.pod)) {
                scores.bump(node, &t.topology_key, -t.weight);
            }
            for t in theirs.preferred_affinity.iter().filter(|t| t.matches(pod)) {
                scores.bump(node, &t.topology_key, t.weight);
            }
            for t in theirs.preferred_anti_affinity.iter().filter(|t| t.matches(pod)) {
                scores.bump(node, &t.topology_key, -t.weight);
            }
            for t in theirs.required_affinity.iter().filter(|t| t.matches(pod)) {
                scores.bump(node, &t.topology_key, HARD_POD_AFFINITY_WEIGHT);
            }
        }
    }
    scores
}

impl PreScorePlugin for InterPodAffinity {
    /// Skips unless PreFilter found preferred terms that matter for this pod.
    fn pre_score(&self, state: &mut CycleState, _: &Pod, _: &[&NodeInfo], _: &Snapshot) -> Status {
        match state.read::<DomainCounts>(PRE_SCORE_STATE_KEY) {
            Some(scores) if !scores.is_empty() => Status::success(),
            _ => Status::skip(),
        }
    }
}

impl ScorePlugin for InterPodAffinity {
    fn score(&self, state: &CycleState, _: &Pod, node: &NodeInfo) -> std::result::Result<i64, Status> {
        let Some(scores) = state.read::<DomainCounts>(PRE_SCORE_STATE_KEY) else {
            return Err(Status::error(format!("reading {PRE_SCORE_STATE_KEY:?} from cycle state: not found")));
        };
        let labels = node.node().metadata.labels.iter().flatten();
        Ok(labels.into_iter().filter_map(|(k, v)| scores.get(k, v)).sum())
    }

    fn normalizer(&self) -> Option<&dyn NormalizeScorePlugin> {
        Some(self)
    }
}

impl NormalizeScorePlugin for InterPodAffinity {
    /// `MAX * (s - min) / (max - min)`; all 0 when every node scored the same.
    fn normalize_score(&self, _: &CycleState, _: &Pod, scores: &mut [NodeScore<'_>]) -> Status {
        let max = scores.iter().map(|s| s.score).max().unwrap_or(0);
        let min = scores.iter().map(|s| s.score).min().unwrap_or(0);
        for s in scores.iter_mut() {
            s.score = if max > min { MAX_NODE_SCORE * (s.score - min) / (max - min) } else { 0 };
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests;

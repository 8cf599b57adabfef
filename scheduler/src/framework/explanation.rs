//! What one scheduling cycle decided and why: each rejected node with the filter that turned it down,
//! and each candidate's per-plugin normalized scores and weighted total. Served as JSON by the explain
//! endpoint and summarized into the `SchedulingExplained` event.

use std::collections::BTreeMap;

use serde::Serialize;

/// How many candidates the short summary lists.
pub const SUMMARY_CANDIDATES: usize = 3;
/// How many candidates, best first, an explanation keeps in full. Every feasible node would be hundreds
/// per cycle in a large cluster, kept for thousands of pods.
pub const EXPLAINED_CANDIDATES: usize = 10;

/// One node a filter (or a PreFilter for every node) rejected.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Rejection {
    pub node: String,
    pub plugin: String,
    pub code: String,
    pub reasons: Vec<String>,
}

/// One plugin's contribution to a candidate's total.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PluginScore {
    pub plugin: String,
    /// After NormalizeScore, in `0..=100`.
    pub score: i64,
    pub weight: i64,
    pub weighted: i64,
}

/// A node that passed every filter.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    pub node: String,
    pub total: i64,
    pub scores: Vec<PluginScore>,
}

/// The record of one cycle.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    pub pod: String,
    pub profile: String,
    /// RFC 3339 time of the cycle.
    pub time: String,
    /// The chosen node, when the cycle found one.
    pub selected_node: Option<String>,
    /// The failure message, when it did not.
    pub failure: Option<String>,
    /// Where preemption made room for the pod, when it did.
    pub nominated_node: Option<String>,
    pub total_nodes: usize,
    /// Nodes the filters ran on (fewer than all when percentageOfNodesToScore stopped the search).
    pub evaluated_nodes: usize,
    pub feasible_nodes: usize,
    /// Plugins turned on, off or reweighted for this pod by its annotation.
    pub pod_plugin_overrides: Option<String>,
    pub rejections: Vec<Rejection>,
    /// The best [`EXPLAINED_CANDIDATES`], highest total first; empty when one feasible node made scoring
    /// unnecessary.
    pub candidates: Vec<Candidate>,
}

impl Explanation {
    /// Orders candidates best first (ties by name, so the output is stable).
    pub fn sort_candidates(&mut self) {
        self.candidates.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.node.cmp(&b.node)));
    }

    /// A one-paragraph summary for an event note: the top candidates with their per-plugin weighted
    /// scores, then the rejected nodes by plugin.
    pub fn summary(&self) -> String {
        let mut out = format!("{}/{} nodes feasible", self.feasible_nodes, self.total_nodes);
        if let Some(node) = &self.selected_node {
            out.push_str(&format!("; selected {node}"));
        }
        if self.candidates.is_empty() && self.feasible_nodes == 1 {
            out.push_str(" (only feasible node, not scored)");
        }
        for c in self.candidates.iter().take(SUMMARY_CANDIDATES) {
            let parts: Vec<String> = c.scores.iter().map(|s| format!("{} {}x{}", s.plugin, s.score, s.weight)).collect();
            out.push_str(&format!("; {} total {} ({})", c.node, c.total, parts.join(", ")));
        }
        let mut by_plugin: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for r in &self.rejections {
            by_plugin.entry(r.plugin.as_str()).or_default().push(r.node.as_str());
        }
        for (plugin, nodes) in by_plugin {
            out.push_str(&format!("; rejected by {plugin}: {}", nodes.join(", ")));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(node: &str, total: i64) -> Candidate {
        Candidate {
            node: node.into(),
            total,
            scores: vec![PluginScore { plugin: "NodeResourcesFit".into(), score: total, weight: 1, weighted: total }],
        }
    }

    #[test]
    fn summaries() {
        let rejection = |node: &str| Rejection {
            node: node.into(),
            plugin: "TaintToleration".into(),
            code: "UnschedulableAndUnresolvable".into(),
            reasons: vec!["node(s) had untolerated taint(s)".into()],
        };
        let cases = [
            (
                "scored candidates best first, rejections grouped",
                Explanation {
                    selected_node: Some("b".into()),
                    total_nodes: 4,
                    feasible_nodes: 2,
                    candidates: vec![candidate("a", 10), candidate("b", 90)],
                    rejections: vec![rejection("c"), rejection("d")],
                    ..Default::default()
                },
                "2/4 nodes feasible; selected b; b total 90 (NodeResourcesFit 90x1); a total 10 (NodeResourcesFit 10x1); rejected by TaintToleration: c, d",
            ),
            (
                "single feasible node is not scored",
                Explanation { selected_node: Some("a".into()), total_nodes: 1, feasible_nodes: 1, ..Default::default() },
                "1/1 nodes feasible; selected a (only feasible node, not scored)",
            ),
        ];
        for (name, mut e, want) in cases {
            e.sort_candidates();
            assert_eq!(e.summary(), want, "case {name}");
        }
    }
}

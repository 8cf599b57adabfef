//! NodeAffinity: `spec.nodeSelector` and required node affinity filter nodes; preferred node affinity
//! terms add their weights to a node's score. `NodeAffinityArgs.addedAffinity` is applied to every pod
//! on top of its own.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, NodeSelectorRequirement, NodeSelectorTerm, Pod};

use super::helper::default_normalize_score;
use crate::framework::registry::{Handle, Result};
use crate::framework::{
    CycleState, FilterPlugin, MAX_NODE_SCORE, NodeInfo, NodeScore, NormalizeScorePlugin, Plugin, ScorePlugin, Status,
};

pub const NAME: &str = "NodeAffinity";
/// Filter reason when the node fails the pod's nodeSelector or required affinity.
pub const ERR_REASON_POD: &str = "node(s) didn't match Pod's node affinity/selector";

/// `NodeAffinityArgs` of `kubescheduler.config.k8s.io/v1`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeAffinityArgs {
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub added_affinity: Option<k8s_openapi::api::core::v1::NodeAffinity>,
}

impl NodeAffinityArgs {
    /// Field-path errors, empty when valid.
    pub fn validate(&self, path: &str) -> Vec<String> {
        let mut errs = Vec::new();
        let Some(a) = &self.added_affinity else { return errs };
        if let Some(r) = &a.required_during_scheduling_ignored_during_execution
            && r.node_selector_terms.is_empty()
        {
            errs.push(format!(
                "{path}.addedAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: must have at least one node selector term"
            ));
        }
        for (i, p) in a.preferred_during_scheduling_ignored_during_execution.iter().flatten().enumerate() {
            if !(1..=100).contains(&p.weight) {
                errs.push(format!(
                    "{path}.addedAffinity.preferredDuringSchedulingIgnoredDuringExecution[{i}].weight: invalid value {}: must be in the range 1-100",
                    p.weight
                ));
            }
        }
        errs
    }
}

#[derive(Default)]
pub struct NodeAffinity {
    added: Option<k8s_openapi::api::core::v1::NodeAffinity>,
}

impl NodeAffinity {
    pub fn with_args(args: NodeAffinityArgs) -> Self {
        Self { added: args.added_affinity }
    }

    fn added_required_matches(&self, node: &Node) -> bool {
        let required = self.added.as_ref().and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref());
        required.is_none_or(|r| r.node_selector_terms.iter().any(|t| term_matches(t, node)))
    }
}

pub fn new(_: &Handle) -> Result<Arc<dyn Plugin>> {
    Ok(Arc::new(NodeAffinity::default()))
}

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

fn node_affinity(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::NodeAffinity> {
    pod.spec.as_ref()?.affinity.as_ref()?.node_affinity.as_ref()
}

/// Whether the node satisfies the pod's nodeSelector and required node affinity.
pub fn required_matches(pod: &Pod, node: &Node) -> bool {
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let selector_ok = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_selector.as_ref())
        .is_none_or(|sel| sel.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let required = node_affinity(pod).and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref());
    let affinity_ok = required.is_none_or(|r| r.node_selector_terms.iter().any(|t| term_matches(t, node)));
    selector_ok && affinity_ok
}

/// A term matches when all its expressions and fields match; a term with neither matches nothing.
fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let name = node.metadata.name.clone().unwrap_or_default();
    let node_fields = BTreeMap::from([("metadata.name".to_string(), name)]);
    exprs.iter().all(|r| requirement_matches(r, labels, true)) && fields.iter().all(|r| requirement_matches(r, &node_fields, false))
}

/// One requirement against a label (or field) set. Fields only support `In` and `NotIn`.
fn requirement_matches(r: &NodeSelectorRequirement, labels: &BTreeMap<String, String>, allow_all_ops: bool) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    let value = labels.get(&r.key);
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" if allow_all_ops => value.is_some(),
        "DoesNotExist" if allow_all_ops => value.is_none(),
        "Gt" | "Lt" if allow_all_ops => {
            let (Some(v), [bound]) = (value, values) else { return false };
            match (v.parse::<i64>(), bound.parse::<i64>()) {
                (Ok(v), Ok(b)) if r.operator == "Gt" => v > b,
                (Ok(v), Ok(b)) => v < b,
                _ => false,
            }
        }
        _ => false,
    }
}

impl FilterPlugin for NodeAffinity {
    fn filter(&self, _: &CycleState, pod: &Pod, node: &NodeInfo) -> Status {
        if required_matches(pod, node.node()) && self.added_required_matches(node.node()) { Status::success() } else { Status::unresolvable(ERR_REASON_POD) }
    }
}

impl ScorePlugin for NodeAffinity {
    /// The sum of the weights of the preferred terms this node matches.
    fn score(&self, _: &CycleState, pod: &Pod, node: &NodeInfo) -> std::result::Result<i64, Status> {
        let preferred = node_affinity(pod)
            .and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_deref())
            .unwrap_or_default();
        let added = self
            .added
            .as_ref()
            .and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_deref())
            .unwrap_or_default();
        Ok(preferred
            .iter()
            .chain(added)
            .filter(|p| p.weight != 0 && term_matches(&p.preference, node.node()))
            .map(|p| i64::from(p.weight))
            .sum())
    }

    fn normalizer(&self) -> Option<&dyn NormalizeScorePlugin> {
        Some(self)
    }
}

impl NormalizeScorePlugin for NodeAffinity {
    fn normalize_score(&self, _: &CycleState, _: &Pod, scores: &mut [NodeScore<'_>]) -> Status {
        default_normalize_score(MAX_NODE_SCORE, false, scores);
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, node_info, pod};
    use k8s_openapi::api::core::v1::{Affinity, NodeSelector, PreferredSchedulingTerm};

    fn labelled(pairs: &[(&str, &str)]) -> Node {
        let mut n = node("n1", "1", "1Gi");
        let labels = n.metadata.labels.get_or_insert_default();
        for (k, v) in pairs {
            labels.insert(k.to_string(), v.to_string());
        }
        n
    }

    fn req(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()).filter(|v: &Vec<String>| !v.is_empty()),
        }
    }

    fn with_terms(terms: Vec<NodeSelectorTerm>) -> Pod {
        let mut p = pod("p");
        if let Some(s) = p.spec.as_mut() {
            s.affinity = Some(Affinity {
                node_affinity: Some(k8s_openapi::api::core::v1::NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector { node_selector_terms: terms }),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        p
    }

    fn exprs(rs: Vec<NodeSelectorRequirement>) -> NodeSelectorTerm {
        NodeSelectorTerm { match_expressions: Some(rs), match_fields: None }
    }

    fn with_selector(pairs: &[(&str, &str)]) -> Pod {
        let mut p = pod("p");
        if let Some(s) = p.spec.as_mut() {
            s.node_selector = Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        }
        p
    }

    #[test]
    fn filter() {
        let n = labelled(&[("disk", "ssd"), ("gen", "5")]);
        let no = Status::unresolvable(ERR_REASON_POD);
        let cases = [
            ("nothing required", pod("p"), Status::success()),
            ("nodeSelector matches", with_selector(&[("disk", "ssd")]), Status::success()),
            ("nodeSelector value differs", with_selector(&[("disk", "hdd")]), no.clone()),
            ("nodeSelector key missing", with_selector(&[("gpu", "yes")]), no.clone()),
            ("In matches", with_terms(vec![exprs(vec![req("disk", "In", &["ssd", "nvme"])])]), Status::success()),
            ("NotIn on missing label matches", with_terms(vec![exprs(vec![req("zone", "NotIn", &["a"])])]), Status::success()),
            ("NotIn rejects", with_terms(vec![exprs(vec![req("disk", "NotIn", &["ssd"])])]), no.clone()),
            ("Exists", with_terms(vec![exprs(vec![req("disk", "Exists", &[])])]), Status::success()),
            ("DoesNotExist rejects", with_terms(vec![exprs(vec![req("disk", "DoesNotExist", &[])])]), no.clone()),
            ("Gt", with_terms(vec![exprs(vec![req("gen", "Gt", &["4"])])]), Status::success()),
            ("Lt rejects", with_terms(vec![exprs(vec![req("gen", "Lt", &["4"])])]), no.clone()),
            (
                "terms are ORed",
                with_terms(vec![exprs(vec![req("disk", "In", &["hdd"])]), exprs(vec![req("gen", "In", &["5"])])]),
                Status::success(),
            ),
            (
                "expressions in a term are ANDed",
                with_terms(vec![exprs(vec![req("disk", "In", &["ssd"]), req("gen", "In", &["4"])])]),
                no.clone(),
            ),
            ("empty term matches nothing", with_terms(vec![NodeSelectorTerm::default()]), no.clone()),
            (
                "matchFields on the node name",
                with_terms(vec![NodeSelectorTerm { match_expressions: None, match_fields: Some(vec![req("metadata.name", "In", &["n1"])]) }]),
                Status::success(),
            ),
            (
                "matchFields on another name",
                with_terms(vec![NodeSelectorTerm { match_expressions: None, match_fields: Some(vec![req("metadata.name", "In", &["n2"])]) }]),
                no.clone(),
            ),
        ];
        for (name, p, want) in cases {
            assert_eq!(NodeAffinity::default().filter(&CycleState::new(), &p, &node_info(n.clone(), vec![])), want, "case {name}");
        }
    }

    #[test]
    fn score_sums_preferred_weights() {
        let mut p = pod("p");
        if let Some(s) = p.spec.as_mut() {
            s.affinity = Some(Affinity {
                node_affinity: Some(k8s_openapi::api::core::v1::NodeAffinity {
                    preferred_during_scheduling_ignored_during_execution: Some(vec![
                        PreferredSchedulingTerm { weight: 10, preference: exprs(vec![req("disk", "In", &["ssd"])]) },
                        PreferredSchedulingTerm { weight: 5, preference: exprs(vec![req("gen", "Exists", &[])]) },
                    ]),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        let state = CycleState::new();
        let both = NodeAffinity::default().score(&state, &p, &node_info(labelled(&[("disk", "ssd"), ("gen", "5")]), vec![]));
        let one = NodeAffinity::default().score(&state, &p, &node_info(labelled(&[("gen", "5")]), vec![]));
        assert_eq!((both, one), (Ok(15), Ok(5)));
    }

    #[test]
    fn added_affinity_applies_to_every_pod() {
        let args = NodeAffinityArgs {
            added_affinity: Some(k8s_openapi::api::core::v1::NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: vec![exprs(vec![req("pool", "In", &["general"])])],
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let plugin = NodeAffinity::with_args(args);
        let cases = [
            ("node in the added pool", labelled(&[("pool", "general")]), Status::success()),
            ("node outside it", labelled(&[("pool", "gpu")]), Status::unresolvable(ERR_REASON_POD)),
        ];
        for (name, n, want) in cases {
            assert_eq!(plugin.filter(&CycleState::new(), &pod("p"), &node_info(n, vec![])), want, "case {name}");
        }
    }
}

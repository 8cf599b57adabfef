//! A topology spread constraint in the form the plugin works with: its selector compiled (with
//! `matchLabelKeys` merged in from the incoming pod's labels), its defaults filled in, and the counting
//! every extension point shares: matching pods per topology domain over the nodes the constraint counts.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::api::core::v1::{Node, Pod, TopologySpreadConstraint};
use kube::core::{Expression, Selector, SelectorExt};

use crate::framework::NodeInfo;
use crate::plugins::helper::pod_tolerates;
use crate::plugins::node_affinity::required_matches;

pub const DO_NOT_SCHEDULE: &str = "DoNotSchedule";
pub const SCHEDULE_ANYWAY: &str = "ScheduleAnyway";
const HONOR: &str = "Honor";

/// Which existing pods a constraint counts (always within the incoming pod's namespace).
#[derive(Debug, Clone)]
pub enum PodSelector {
    /// The constraint's label selector.
    Labels(Selector),
    /// No label selector: upstream's "nothing" selector, which counts no pod.
    Nothing,
    /// The system defaults' stand-in for upstream's derived selector: pods with the same controller.
    SameController(String),
}

/// One constraint, compiled.
#[derive(Debug, Clone)]
pub struct Constraint {
    pub topology_key: String,
    pub max_skew: i64,
    /// Fewer eligible domains than this make the global minimum 0 (`DoNotSchedule` only).
    pub min_domains: usize,
    pub selector: PodSelector,
    /// `nodeAffinityPolicy: Honor` (the default): only nodes matching the pod's nodeSelector and required
    /// node affinity count.
    pub honor_node_affinity: bool,
    /// `nodeTaintsPolicy: Honor` (default `Ignore`): only nodes without untolerated NoSchedule/NoExecute
    /// taints count.
    pub honor_node_taints: bool,
}

/// The pod's labels; pods without labels have an empty set.
pub fn pod_labels(pod: &Pod) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    pod.metadata.labels.as_ref().unwrap_or(&EMPTY)
}

/// The value of `key` on the node, if labelled.
pub fn node_label<'a>(node: &'a Node, key: &str) -> Option<&'a str> {
    node.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

/// The uid of the pod's controlling owner.
pub fn controller_uid(pod: &Pod) -> Option<&str> {
    pod.metadata.owner_references.as_ref()?.iter().find(|o| o.controller == Some(true)).map(|o| o.uid.as_str())
}

/// Whether the pod carries any `topologySpreadConstraints` of its own (then the defaults do not apply).
pub fn has_own_constraints(pod: &Pod) -> bool {
    pod.spec.as_ref().and_then(|s| s.topology_spread_constraints.as_ref()).is_some_and(|c| !c.is_empty())
}

impl Constraint {
    /// A default constraint (no selector of its own: pods of the same controller), counting every node
    /// it is shown.
    pub fn system_default(topology_key: &str, max_skew: i64, controller: &str) -> Self {
        Self {
            topology_key: topology_key.to_string(),
            max_skew,
            min_domains: 1,
            selector: PodSelector::SameController(controller.to_string()),
            honor_node_affinity: false,
            honor_node_taints: false,
        }
    }

    /// Compiles one of the pod's constraints. `matchLabelKeys` whose label the pod carries are added to
    /// the selector as equality requirements (upstream merges them even into a missing selector).
    pub fn from_api(c: &TopologySpreadConstraint, pod: &Pod) -> Result<Self, String> {
        let labels = pod_labels(pod);
        let merged: Vec<Expression> = c
            .match_label_keys
            .iter()
            .flatten()
            .filter_map(|k| labels.get(k).map(|v| Expression::In(k.clone(), BTreeSet::from([v.clone()]))))
            .collect();
        let selector = match &c.label_selector {
            Some(s) => {
                let mut sel = Selector::try_from(s.clone())
                    .map_err(|e| format!("failed to parse labelSelector of constraint on {:?}: {e}", c.topology_key))?;
                sel.extend(merged);
                PodSelector::Labels(sel)
            }
            None if merged.is_empty() => PodSelector::Nothing,
            None => PodSelector::Labels(merged.into_iter().collect()),
        };
        Ok(Self {
            topology_key: c.topology_key.clone(),
            max_skew: i64::from(c.max_skew),
            min_domains: c.min_domains.and_then(|m| usize::try_from(m).ok()).unwrap_or(1),
            selector,
            honor_node_affinity: c.node_affinity_policy.as_deref().is_none_or(|p| p == HONOR),
            honor_node_taints: c.node_taints_policy.as_deref() == Some(HONOR),
        })
    }

    /// Whether `pod` is one of the pods this constraint counts (its namespace is checked by the caller).
    pub fn selects(&self, pod: &Pod) -> bool {
        match &self.selector {
            PodSelector::Labels(s) => s.matches(pod_labels(pod)),
            PodSelector::Nothing => false,
            PodSelector::SameController(uid) => controller_uid(pod) == Some(uid.as_str()),
        }
    }

    /// Whether the node's domain takes part in this constraint for `pod` (the inclusion policies).
    pub fn counts_node(&self, pod: &Pod, node: &Node) -> bool {
        if self.honor_node_affinity && !required_matches(pod, node) {
            return false;
        }
        if self.honor_node_taints {
            let taints = node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or_default();
            let blocked = taints.iter().any(|t| (t.effect == "NoSchedule" || t.effect == "NoExecute") && !pod_tolerates(pod, t));
            if blocked {
                return false;
            }
        }
        true
    }

    /// Live (not terminating) pods on the node in `namespace` that this constraint selects.
    pub fn count_on(&self, node: &NodeInfo, namespace: Option<&str>) -> i64 {
        let n = node
            .pods()
            .iter()
            .filter(|p| p.pod.metadata.deletion_timestamp.is_none() && p.pod.metadata.namespace.as_deref() == namespace)
            .filter(|p| self.selects(&p.pod))
            .count();
        i64::try_from(n).unwrap_or(i64::MAX)
    }
}

/// The pod's own constraints with this `whenUnsatisfiable`.
pub fn own_constraints(pod: &Pod, action: &str) -> Result<Vec<Constraint>, String> {
    let all = pod.spec.as_ref().and_then(|s| s.topology_spread_constraints.as_deref()).unwrap_or_default();
    all.iter().filter(|c| c.when_unsatisfiable == action).map(|c| Constraint::from_api(c, pod)).collect()
}

/// Whether the node carries every constraint's topology key.
pub fn has_all_keys(node: &Node, constraints: &[Constraint]) -> bool {
    constraints.iter().all(|c| node_label(node, &c.topology_key).is_some())
}

/// Matching pods per topology domain, one map per constraint. A domain appears (possibly with 0) once
/// some counted node is in it. With `require_all_keys`, nodes lacking any constraint's key are left out
/// entirely, as upstream does for a pod's own constraints.
pub fn domain_counts<'a>(
    constraints: &[Constraint],
    pod: &Pod,
    nodes: impl IntoIterator<Item = &'a NodeInfo>,
    require_all_keys: bool,
) -> Vec<HashMap<String, i64>> {
    let namespace = pod.metadata.namespace.as_deref();
    let mut counts = vec![HashMap::new(); constraints.len()];
    for n in nodes {
        let node = n.node();
        if require_all_keys && !has_all_keys(node, constraints) {
            continue;
        }
        for (c, per_domain) in constraints.iter().zip(counts.iter_mut()) {
            let Some(domain) = node_label(node, &c.topology_key) else { continue };
            if !c.counts_node(pod, node) {
                continue;
            }
            let count = c.count_on(n, namespace);
            match per_domain.get_mut(domain) {
                Some(sum) => *sum += count,
                None => {
                    per_domain.insert(domain.to_string(), count);
                }
            }
        }
    }
    counts
}

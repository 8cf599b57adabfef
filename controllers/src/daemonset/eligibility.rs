//! Which nodes a daemon pod belongs on: the template's nodeSelector and required node affinity
//! must match the node, and the node's NoSchedule/NoExecute taints must be tolerated by the pod
//! as the controller will create it (with the default daemon tolerations added).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PodSpec, Toleration};

use crate::node_lifecycle::tolerations::tolerates;

/// Taint keys the node lifecycle controller and node agents set, which daemon pods tolerate.
const NOT_READY: &str = "node.kubernetes.io/not-ready";
const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
const DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
const MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
const PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
const NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";

/// Whether a node should get, and may keep, a daemon pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Eligibility {
    /// A daemon pod should be created here if missing.
    pub should_run: bool,
    /// An existing daemon pod may stay (only NoSchedule taints are untolerated, say).
    pub should_continue_running: bool,
}

/// The tolerations upstream's DaemonSet controller adds to every daemon pod, so that daemons keep
/// running on nodes that are unreachable, under pressure or cordoned.
pub fn default_tolerations(host_network: bool) -> Vec<Toleration> {
    let exists = |key: &str, effect: &str| Toleration {
        key: Some(key.to_string()),
        operator: Some("Exists".to_string()),
        effect: Some(effect.to_string()),
        ..Default::default()
    };
    let mut tolerations = vec![
        exists(NOT_READY, "NoExecute"),
        exists(UNREACHABLE, "NoExecute"),
        exists(DISK_PRESSURE, "NoSchedule"),
        exists(MEMORY_PRESSURE, "NoSchedule"),
        exists(PID_PRESSURE, "NoSchedule"),
        exists(UNSCHEDULABLE, "NoSchedule"),
    ];
    if host_network {
        tolerations.push(exists(NETWORK_UNAVAILABLE, "NoSchedule"));
    }
    tolerations
}

/// Adds the default tolerations to `spec`; one with the same key, operator, value and effect
/// replaces the template's (so a `tolerationSeconds` there is dropped, as upstream).
pub fn add_default_tolerations(spec: &mut PodSpec) {
    let host_network = spec.host_network.unwrap_or(false);
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for wanted in default_tolerations(host_network) {
        let same = |t: &Toleration| t.key == wanted.key && t.operator == wanted.operator && t.value == wanted.value && t.effect == wanted.effect;
        match tolerations.iter_mut().find(|t| same(t)) {
            Some(existing) => *existing = wanted,
            None => tolerations.push(wanted),
        }
    }
}

/// One requirement against a node's labels (`matchExpressions`).
fn label_requirement(req: &NodeSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let values = req.values.as_deref().unwrap_or_default();
    let value = labels.get(&req.key);
    let number = |s: &str| s.parse::<i64>().ok();
    match req.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(have), [bound]) = (value.and_then(|v| number(v)), values) else { return false };
            let Some(bound) = number(bound) else { return false };
            if req.operator == "Gt" { have > bound } else { have < bound }
        }
        _ => false,
    }
}

/// One requirement against a node's fields (`matchFields`; only `metadata.name` exists).
fn field_requirement(req: &NodeSelectorRequirement, node_name: &str) -> bool {
    let values = req.values.as_deref().unwrap_or_default();
    let named = values.iter().any(|v| v == node_name);
    match (req.key.as_str(), req.operator.as_str()) {
        ("metadata.name", "In") => named,
        ("metadata.name", "NotIn") => !named,
        _ => false,
    }
}

/// A term matches when all its requirements do; a term with none matches nothing.
fn term_matches(term: &NodeSelectorTerm, node_name: &str, labels: &BTreeMap<String, String>) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs.iter().all(|r| label_requirement(r, labels)) && fields.iter().all(|r| field_requirement(r, node_name))
}

/// Terms are ORed; no terms match nothing.
fn selector_matches(selector: &NodeSelector, node_name: &str, labels: &BTreeMap<String, String>) -> bool {
    selector.node_selector_terms.iter().any(|t| term_matches(t, node_name, labels))
}

/// True if `spec`'s nodeSelector and required node affinity admit `node`.
pub fn placement_matches(spec: &PodSpec, node: &Node) -> bool {
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let node_name = node.metadata.name.as_deref().unwrap_or_default();
    let selected = spec.node_selector.iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| na.required_during_scheduling_ignored_during_execution.as_ref());
    selected && required.is_none_or(|r| selector_matches(r, node_name, labels))
}

/// Whether a daemon pod with `spec` (default tolerations already added) belongs on `node`.
pub fn of(spec: &PodSpec, node: &Node) -> Eligibility {
    if !placement_matches(spec, node) {
        return Eligibility::default();
    }
    let tolerations = spec.tolerations.as_deref().unwrap_or_default();
    let taints = node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or_default();
    let untolerated = |effect: &str| taints.iter().filter(|t| t.effect == effect).any(|t| !tolerations.iter().any(|tol| tolerates(tol, t)));
    let no_execute = untolerated("NoExecute");
    Eligibility { should_run: !no_execute && !untolerated("NoSchedule"), should_continue_running: !no_execute }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Affinity, NodeAffinity, NodeSpec, Taint};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn node(name: &str, labels: &[(&str, &str)], taints: &[(&str, &str)]) -> Node {
        Node {
            metadata: ObjectMeta { name: Some(name.into()), labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()), ..Default::default() },
            spec: Some(NodeSpec {
                taints: Some(taints.iter().map(|(k, e)| Taint { key: k.to_string(), effect: e.to_string(), ..Default::default() }).collect()),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn req(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement { key: key.into(), operator: op.into(), values: Some(values.iter().map(|v| v.to_string()).collect()) }
    }

    fn with_affinity(terms: Vec<NodeSelectorTerm>) -> PodSpec {
        PodSpec {
            affinity: Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector { node_selector_terms: terms }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn daemon(mut spec: PodSpec) -> PodSpec {
        add_default_tolerations(&mut spec);
        spec
    }

    fn eligible(run: bool, keep: bool) -> Eligibility {
        Eligibility { should_run: run, should_continue_running: keep }
    }

    #[test]
    fn eligibility_cases() {
        let ssd = || Some([("disk".to_string(), "ssd".to_string())].into());
        let expr = |r| NodeSelectorTerm { match_expressions: Some(vec![r]), match_fields: None };
        let field = |r| NodeSelectorTerm { match_expressions: None, match_fields: Some(vec![r]) };
        let toleration = |key: &str, effect: &str| Toleration { key: Some(key.into()), operator: Some("Exists".into()), effect: Some(effect.into()), ..Default::default() };
        let cases: Vec<(&str, PodSpec, Node, Eligibility)> = vec![
            ("plain node", daemon(PodSpec::default()), node("n1", &[], &[]), eligible(true, true)),
            ("nodeSelector matches", daemon(PodSpec { node_selector: ssd(), ..Default::default() }), node("n1", &[("disk", "ssd")], &[]), eligible(true, true)),
            ("nodeSelector misses", daemon(PodSpec { node_selector: ssd(), ..Default::default() }), node("n1", &[("disk", "hdd")], &[]), eligible(false, false)),
            ("affinity In", daemon(with_affinity(vec![expr(req("zone", "In", &["a", "b"]))])), node("n1", &[("zone", "b")], &[]), eligible(true, true)),
            ("affinity NotIn", daemon(with_affinity(vec![expr(req("zone", "NotIn", &["b"]))])), node("n1", &[("zone", "b")], &[]), eligible(false, false)),
            ("affinity DoesNotExist", daemon(with_affinity(vec![expr(req("gpu", "DoesNotExist", &[]))])), node("n1", &[], &[]), eligible(true, true)),
            ("affinity Gt", daemon(with_affinity(vec![expr(req("cores", "Gt", &["4"]))])), node("n1", &[("cores", "8")], &[]), eligible(true, true)),
            ("affinity Lt not a number", daemon(with_affinity(vec![expr(req("cores", "Lt", &["4"]))])), node("n1", &[("cores", "x")], &[]), eligible(false, false)),
            ("terms are ORed", daemon(with_affinity(vec![expr(req("a", "Exists", &[])), field(req("metadata.name", "In", &["n1"]))])), node("n1", &[], &[]), eligible(true, true)),
            ("matchFields other node", daemon(with_affinity(vec![field(req("metadata.name", "In", &["n2"]))])), node("n1", &[], &[]), eligible(false, false)),
            ("empty term matches nothing", daemon(with_affinity(vec![NodeSelectorTerm::default()])), node("n1", &[], &[]), eligible(false, false)),
            ("untolerated NoSchedule keeps existing", daemon(PodSpec::default()), node("n1", &[], &[("dedicated", "NoSchedule")]), eligible(false, true)),
            ("untolerated NoExecute", daemon(PodSpec::default()), node("n1", &[], &[("dedicated", "NoExecute")]), eligible(false, false)),
            ("PreferNoSchedule ignored", daemon(PodSpec::default()), node("n1", &[], &[("dedicated", "PreferNoSchedule")]), eligible(true, true)),
            ("template toleration", daemon(PodSpec { tolerations: Some(vec![toleration("dedicated", "NoExecute")]), ..Default::default() }), node("n1", &[], &[("dedicated", "NoExecute")]), eligible(true, true)),
            ("default: not-ready", daemon(PodSpec::default()), node("n1", &[], &[(NOT_READY, "NoExecute"), (NOT_READY, "NoSchedule")]), eligible(false, true)),
            ("default: unreachable NoExecute", daemon(PodSpec::default()), node("n1", &[], &[(UNREACHABLE, "NoExecute")]), eligible(true, true)),
            ("default: cordoned", daemon(PodSpec::default()), node("n1", &[], &[(UNSCHEDULABLE, "NoSchedule")]), eligible(true, true)),
            ("default: memory pressure", daemon(PodSpec::default()), node("n1", &[], &[(MEMORY_PRESSURE, "NoSchedule")]), eligible(true, true)),
            ("network-unavailable, pod network", daemon(PodSpec::default()), node("n1", &[], &[(NETWORK_UNAVAILABLE, "NoSchedule")]), eligible(false, true)),
            ("network-unavailable, host network", daemon(PodSpec { host_network: Some(true), ..Default::default() }), node("n1", &[], &[(NETWORK_UNAVAILABLE, "NoSchedule")]), eligible(true, true)),
        ];
        for (name, spec, node, want) in cases {
            assert_eq!(of(&spec, &node), want, "{name}");
        }
    }

    #[test]
    fn default_tolerations_replace_equal_ones() {
        let mut spec = PodSpec {
            tolerations: Some(vec![Toleration {
                key: Some(UNREACHABLE.into()),
                operator: Some("Exists".into()),
                effect: Some("NoExecute".into()),
                toleration_seconds: Some(30),
                ..Default::default()
            }]),
            ..Default::default()
        };
        add_default_tolerations(&mut spec);
        add_default_tolerations(&mut spec);
        let tolerations = spec.tolerations.unwrap_or_default();
        assert_eq!(tolerations.len(), 6, "no duplicates: {tolerations:?}");
        assert!(tolerations.iter().all(|t| t.toleration_seconds.is_none()), "the default replaced the template's");
    }
}

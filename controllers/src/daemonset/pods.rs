//! Daemon pods: how one is built for a node, which node one is meant for, and the facts about a
//! pod the controller counts (updated, ready, available, oldest first).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Affinity, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::eligibility;

/// The label holding the hash of the revision a pod was made from, as upstream.
pub const REVISION_HASH_LABEL: &str = "controller-revision-hash";
/// The (deprecated upstream, still set) label holding the template generation a pod was made from.
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";
/// The annotation the apiserver keeps on a DaemonSet with its template generation.
pub const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";

/// The template generation the apiserver recorded on `ds`, if any.
pub fn template_generation(ds: &DaemonSet) -> Option<i64> {
    ds.metadata.annotations.as_ref()?.get(TEMPLATE_GENERATION_ANNOTATION)?.parse().ok()
}

/// The template a daemon pod is made from: `template` plus the default tolerations and the
/// revision labels. Eligibility is judged on this, so tolerations the controller adds count.
pub fn daemon_template(template: &PodTemplateSpec, hash: &str, generation: Option<i64>) -> PodTemplateSpec {
    let mut template = template.clone();
    let spec = template.spec.get_or_insert_with(Default::default);
    eligibility::add_default_tolerations(spec);
    let labels = template.metadata.get_or_insert_with(Default::default).labels.get_or_insert_with(BTreeMap::new);
    if let Some(generation) = generation {
        labels.insert(TEMPLATE_GENERATION_LABEL.to_string(), generation.to_string());
    }
    if !hash.is_empty() {
        labels.insert(REVISION_HASH_LABEL.to_string(), hash.to_string());
    }
    template
}

/// A new pod for `node` from a daemon template: named `<ds>-<random>`, pinned to the node by a
/// required `matchFields metadata.name` affinity (replacing the template's required terms, which
/// the node has already been checked against) so that the scheduler binds it there.
pub fn new_pod(ds_name: &str, namespace: &str, template: &PodTemplateSpec, node: &str, owner: OwnerReference) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    let mut spec = template.spec.clone().unwrap_or_default();
    let pin = NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![NodeSelectorRequirement { key: "metadata.name".into(), operator: "In".into(), values: Some(vec![node.to_string()]) }]),
        }],
    };
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    affinity.node_affinity.get_or_insert_with(NodeAffinity::default).required_during_scheduling_ignored_during_execution = Some(pin);
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{ds_name}-")),
            namespace: Some(namespace.to_string()),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// The node a daemon pod runs on or is meant for: its `nodeName`, else the single node its
/// required affinity pins it to.
pub fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(name) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(name.to_string());
    }
    let required = spec.affinity.as_ref()?.node_affinity.as_ref()?.required_during_scheduling_ignored_during_execution.as_ref()?;
    let [term] = required.node_selector_terms.as_slice() else { return None };
    term.match_fields.iter().flatten().find_map(|r| match (r.key.as_str(), r.operator.as_str(), r.values.as_deref()) {
        ("metadata.name", "In", Some([node])) => Some(node.clone()),
        _ => None,
    })
}

/// The pod was made from the current revision (hash) or the current template generation.
pub fn is_updated(pod: &Pod, hash: &str, generation: Option<i64>) -> bool {
    let label = |key| pod.metadata.labels.as_ref().and_then(|l| l.get(key));
    let hash_matches = !hash.is_empty() && label(REVISION_HASH_LABEL).is_some_and(|h| h == hash);
    let generation_matches = generation.is_some_and(|g| label(TEMPLATE_GENERATION_LABEL).is_some_and(|l| *l == g.to_string()));
    hash_matches || generation_matches
}

pub fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or_default()
}

pub fn is_deleting(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// Readiness and availability count as for a ReplicaSet's pods.
pub use crate::replicaset::{is_available, is_ready};

/// Upstream's order among a node's daemon pods: bound pods first, then oldest, then by name. The
/// first is the one that stays when there are several.
pub fn oldest_first(a: &Pod, b: &Pod) -> Ordering {
    let bound = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| !n.is_empty());
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    bound(b).cmp(&bound(a)).then_with(|| created(a).cmp(&created(b))).then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::PodSpec;

    use super::*;

    fn template() -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta { labels: Some([("app".to_string(), "agent".to_string())].into()), ..Default::default() }),
            spec: Some(PodSpec {
                node_selector: Some([("role".to_string(), "edge".to_string())].into()),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn new_pod_is_pinned_and_labelled() {
        let owner = OwnerReference { name: "agent".into(), uid: "u".into(), controller: Some(true), ..Default::default() };
        let pod = new_pod("agent", "ns", &daemon_template(&template(), "abc", Some(3)), "n2", owner);
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("agent-"));
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get(REVISION_HASH_LABEL).map(String::as_str), Some("abc"));
        assert_eq!(labels.get(TEMPLATE_GENERATION_LABEL).map(String::as_str), Some("3"));
        assert_eq!(labels.get("app").map(String::as_str), Some("agent"));
        assert_eq!(target_node(&pod).as_deref(), Some("n2"));
        assert_eq!(pod.spec.as_ref().and_then(|s| s.tolerations.as_ref()).map(Vec::len), Some(6), "default tolerations");
        assert!(pod.spec.as_ref().is_some_and(|s| s.node_selector.is_some()), "nodeSelector kept");
        assert_eq!(pod.metadata.owner_references.as_ref().map(Vec::len), Some(1));
    }

    #[test]
    fn target_node_cases() {
        let pinned = new_pod("d", "ns", &template(), "n1", OwnerReference::default());
        let mut bound = pinned.clone();
        if let Some(spec) = bound.spec.as_mut() {
            spec.node_name = Some("n9".into());
        }
        let cases = [("pinned by affinity", pinned, Some("n1")), ("nodeName wins", bound, Some("n9")), ("neither", Pod::default(), None)];
        for (name, pod, want) in cases {
            assert_eq!(target_node(&pod).as_deref(), want, "{name}");
        }
    }

    #[test]
    fn updated_cases() {
        let pod = |labels: &[(&str, &str)]| Pod {
            metadata: ObjectMeta { labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()), ..Default::default() },
            ..Default::default()
        };
        let cases = [
            ("hash matches", pod(&[(REVISION_HASH_LABEL, "h2")]), true),
            ("old hash", pod(&[(REVISION_HASH_LABEL, "h1")]), false),
            ("generation matches", pod(&[(TEMPLATE_GENERATION_LABEL, "2")]), true),
            ("old generation and hash", pod(&[(TEMPLATE_GENERATION_LABEL, "1"), (REVISION_HASH_LABEL, "h1")]), false),
            ("no labels", pod(&[]), false),
        ];
        for (name, p, want) in cases {
            assert_eq!(is_updated(&p, "h2", Some(2)), want, "{name}");
        }
    }
}

//! A pod (anti-)affinity term in a form that can test pods: which namespaces, which labels, and the
//! topology key that defines "the same place". Every [`PodInfo`](super::PodInfo) compiles its pod's terms
//! once, as upstream's does, so that a cycle matching against thousands of existing pods does not parse
//! their selectors again.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm};
use kube::core::{Selector, SelectorExt};

/// The namespaces a term looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Namespaces {
    /// `namespaceSelector: {}`: every namespace.
    All,
    /// The listed ones (the pod's own when the term lists none).
    Listed(BTreeSet<String>),
}

/// One term, compiled.
#[derive(Debug, Clone)]
pub struct Term {
    namespaces: Namespaces,
    /// `None` (no selector, or an invalid one) matches no pod, as upstream.
    selector: Option<Selector>,
    pub topology_key: String,
    /// For preferred terms; 1 for required ones.
    pub weight: i64,
}

impl Term {
    /// Compiles `term` of a pod in `owner_namespace`. A non-empty `namespaceSelector` would need the
    /// Namespace objects; it is treated as selecting none beyond the listed namespaces.
    pub fn new(term: &PodAffinityTerm, owner_namespace: &str, weight: i64) -> Self {
        let listed: BTreeSet<String> = term.namespaces.iter().flatten().cloned().collect();
        let all = term.namespace_selector.as_ref().is_some_and(|s| {
            s.match_labels.as_ref().is_none_or(|m| m.is_empty()) && s.match_expressions.as_ref().is_none_or(|e| e.is_empty())
        });
        let namespaces = if all {
            Namespaces::All
        } else if listed.is_empty() && term.namespace_selector.is_none() {
            Namespaces::Listed([owner_namespace.to_string()].into())
        } else {
            Namespaces::Listed(listed)
        };
        let selector = term.label_selector.clone().and_then(|s| Selector::try_from(s).ok());
        Self { namespaces, selector, topology_key: term.topology_key.clone(), weight }
    }

    /// Whether `pod` is one of the pods this term is about.
    pub fn matches(&self, pod: &Pod) -> bool {
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let ns_ok = match &self.namespaces {
            Namespaces::All => true,
            Namespaces::Listed(set) => set.contains(ns),
        };
        let empty = Default::default();
        ns_ok && self.selector.as_ref().is_some_and(|s| s.matches(pod.metadata.labels.as_ref().unwrap_or(&empty)))
    }
}

/// The four term lists of a pod's affinity.
#[derive(Debug, Clone, Default)]
pub struct PodTerms {
    pub required_affinity: Vec<Term>,
    pub required_anti_affinity: Vec<Term>,
    pub preferred_affinity: Vec<Term>,
    pub preferred_anti_affinity: Vec<Term>,
}

/// The terms of a pod without pod (anti-)affinity.
pub static NO_TERMS: PodTerms = PodTerms {
    required_affinity: Vec::new(),
    required_anti_affinity: Vec::new(),
    preferred_affinity: Vec::new(),
    preferred_anti_affinity: Vec::new(),
};

impl PodTerms {
    pub fn of(pod: &Pod) -> Self {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let Some(aff) = pod.spec.as_ref().and_then(|s| s.affinity.as_ref()) else { return Self::default() };
        let required = |terms: Option<&Vec<PodAffinityTerm>>| terms.into_iter().flatten().map(|t| Term::new(t, ns, 1)).collect();
        let preferred = |terms: Option<&Vec<k8s_openapi::api::core::v1::WeightedPodAffinityTerm>>| {
            terms.into_iter().flatten().map(|w| Term::new(&w.pod_affinity_term, ns, i64::from(w.weight))).collect()
        };
        let a = aff.pod_affinity.as_ref();
        let anti = aff.pod_anti_affinity.as_ref();
        Self {
            required_affinity: required(a.and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref())),
            required_anti_affinity: required(anti.and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref())),
            preferred_affinity: preferred(a.and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_ref())),
            preferred_anti_affinity: preferred(anti.and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_ref())),
        }
    }
}

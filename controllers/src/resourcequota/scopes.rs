//! Quota scopes: which pods a scoped quota tracks. Plain `scopes` act as `Exists` requirements; a
//! `scopeSelector` adds operators. Every requirement must match. Only pods can match a scope, so a
//! scoped quota's object counts of other kinds stay zero (as upstream's evaluators report).

use k8s_openapi::api::core::v1::{Affinity, Pod, PodAffinityTerm, ResourceQuotaSpec, WeightedPodAffinityTerm};

/// One scope requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub scope: String,
    pub operator: String,
    pub values: Vec<String>,
}

/// The quota's scope requirements: its `scopes` as `Exists`, then its `scopeSelector`.
pub fn of(spec: &ResourceQuotaSpec) -> Vec<Requirement> {
    let plain = spec.scopes.iter().flatten().map(|s| Requirement { scope: s.clone(), operator: "Exists".into(), values: Vec::new() });
    let selected = spec.scope_selector.iter().flat_map(|s| s.match_expressions.iter().flatten()).map(|e| Requirement {
        scope: e.scope_name.clone(),
        operator: e.operator.clone(),
        values: e.values.clone().unwrap_or_default(),
    });
    plain.chain(selected).collect()
}

fn is_terminating(pod: &Pod) -> bool {
    pod.spec.as_ref().and_then(|s| s.active_deadline_seconds).is_some_and(|d| d >= 0)
}

/// BestEffort QoS: no container (init containers and pod-level resources included) requests or
/// limits CPU or memory.
pub fn is_best_effort(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else { return true };
    let sets_compute = |r: Option<&k8s_openapi::api::core::v1::ResourceRequirements>| {
        r.is_some_and(|r| [&r.requests, &r.limits].into_iter().flatten().any(|l| l.keys().any(|k| k == "cpu" || k == "memory")))
    };
    let containers = spec.containers.iter().chain(spec.init_containers.iter().flatten());
    !containers.into_iter().any(|c| sets_compute(c.resources.as_ref())) && !sets_compute(spec.resources.as_ref())
}

/// A pod (anti-)affinity term that looks at namespaces other than the pod's own.
fn has_cross_namespace_affinity(affinity: Option<&Affinity>) -> bool {
    let Some(affinity) = affinity else { return false };
    let crosses = |t: &PodAffinityTerm| t.namespaces.as_ref().is_some_and(|n| !n.is_empty()) || t.namespace_selector.is_some();
    let weighted = |ts: &Option<Vec<WeightedPodAffinityTerm>>| ts.iter().flatten().any(|w| crosses(&w.pod_affinity_term));
    let required = |ts: &Option<Vec<PodAffinityTerm>>| ts.iter().flatten().any(crosses);
    let affine = affinity.pod_affinity.as_ref().is_some_and(|a| required(&a.required_during_scheduling_ignored_during_execution) || weighted(&a.preferred_during_scheduling_ignored_during_execution));
    let anti = affinity.pod_anti_affinity.as_ref().is_some_and(|a| required(&a.required_during_scheduling_ignored_during_execution) || weighted(&a.preferred_during_scheduling_ignored_during_execution));
    affine || anti
}

/// True if `pod` satisfies `requirement`. A `DoesNotExist` on a yes/no scope asks for the opposite.
fn matches_one(pod: &Pod, requirement: &Requirement) -> bool {
    let holds = match requirement.scope.as_str() {
        "Terminating" => is_terminating(pod),
        "NotTerminating" => !is_terminating(pod),
        "BestEffort" => is_best_effort(pod),
        "NotBestEffort" => !is_best_effort(pod),
        "CrossNamespacePodAffinity" => has_cross_namespace_affinity(pod.spec.as_ref().and_then(|s| s.affinity.as_ref())),
        "PriorityClass" => {
            let class = pod.spec.as_ref().and_then(|s| s.priority_class_name.as_deref()).unwrap_or("");
            return match requirement.operator.as_str() {
                "Exists" => !class.is_empty(),
                "In" => requirement.values.iter().any(|v| v == class),
                "NotIn" => !requirement.values.iter().any(|v| v == class),
                // Upstream matches the class as a label that is always present, even when empty.
                _ => false,
            };
        }
        _ => false,
    };
    if requirement.operator == "DoesNotExist" { !holds } else { holds }
}

/// True if `pod` satisfies every requirement (an unscoped quota tracks every pod).
pub fn pod_matches(pod: &Pod, requirements: &[Requirement]) -> bool {
    requirements.iter().all(|r| matches_one(pod, r))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Container, PodAffinity, PodSpec, ResourceRequirements, ScopeSelector, ScopedResourceSelectorRequirement};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    use super::*;

    fn pod(deadline: Option<i64>, cpu: Option<&str>, class: Option<&str>) -> Pod {
        let resources = cpu.map(|c| ResourceRequirements { requests: Some([("cpu".to_string(), Quantity(c.into()))].into()), ..Default::default() });
        Pod {
            spec: Some(PodSpec {
                active_deadline_seconds: deadline,
                priority_class_name: class.map(str::to_string),
                containers: vec![Container { resources, ..Default::default() }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn req(scope: &str, operator: &str, values: &[&str]) -> Requirement {
        Requirement { scope: scope.into(), operator: operator.into(), values: values.iter().map(|v| v.to_string()).collect() }
    }

    #[test]
    fn scope_matching() {
        let plain = pod(None, None, None);
        let deadline = pod(Some(30), Some("100m"), None);
        let gold = pod(None, Some("1"), Some("gold"));
        let cases = [
            ("unscoped matches all", &plain, vec![], true),
            ("terminating", &deadline, vec![req("Terminating", "Exists", &[])], true),
            ("not terminating", &plain, vec![req("NotTerminating", "Exists", &[])], true),
            ("terminating rejects plain", &plain, vec![req("Terminating", "Exists", &[])], false),
            ("best effort", &plain, vec![req("BestEffort", "Exists", &[])], true),
            ("requests make it not best effort", &deadline, vec![req("BestEffort", "Exists", &[])], false),
            ("not best effort", &deadline, vec![req("NotBestEffort", "Exists", &[])], true),
            ("class in", &gold, vec![req("PriorityClass", "In", &["gold", "silver"])], true),
            ("class not in", &gold, vec![req("PriorityClass", "NotIn", &["gold"])], false),
            ("class not in, no class", &plain, vec![req("PriorityClass", "NotIn", &["gold"])], true),
            ("class exists", &gold, vec![req("PriorityClass", "Exists", &[])], true),
            ("class exists, none set", &plain, vec![req("PriorityClass", "Exists", &[])], false),
            ("all must hold", &gold, vec![req("PriorityClass", "In", &["gold"]), req("Terminating", "Exists", &[])], false),
            ("does not exist negates", &plain, vec![req("Terminating", "DoesNotExist", &[])], true),
        ];
        for (name, p, requirements, want) in cases {
            assert_eq!(pod_matches(p, &requirements), want, "{name}");
        }
    }

    #[test]
    fn cross_namespace_affinity() {
        let mut p = pod(None, None, None);
        let term = PodAffinityTerm { namespaces: Some(vec!["other".into()]), topology_key: "zone".into(), ..Default::default() };
        let affinity = Affinity { pod_affinity: Some(PodAffinity { required_during_scheduling_ignored_during_execution: Some(vec![term]), ..Default::default() }), ..Default::default() };
        let scope = [req("CrossNamespacePodAffinity", "Exists", &[])];
        assert!(!pod_matches(&p, &scope));
        if let Some(spec) = p.spec.as_mut() {
            spec.affinity = Some(affinity);
        }
        assert!(pod_matches(&p, &scope));
    }

    #[test]
    fn requirements_from_spec() {
        let spec = ResourceQuotaSpec {
            scopes: Some(vec!["BestEffort".into()]),
            scope_selector: Some(ScopeSelector {
                match_expressions: Some(vec![ScopedResourceSelectorRequirement { scope_name: "PriorityClass".into(), operator: "In".into(), values: Some(vec!["gold".into()]) }]),
            }),
            ..Default::default()
        };
        assert_eq!(of(&spec), vec![req("BestEffort", "Exists", &[]), req("PriorityClass", "In", &["gold"])]);
    }
}

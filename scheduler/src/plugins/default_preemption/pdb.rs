//! PodDisruptionBudgets as preemption weighs them (upstream's `filterPodsWithPDBViolation`): going
//! through the potential victims in order, each budget selecting a pod gives up one of its allowed
//! disruptions; a pod that takes a budget below zero would violate it. Victims that would violate a
//! budget are reprieved first, and nodes needing fewer violations are preferred.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::core::{Selector, SelectorExt};

use crate::framework::PodInfo;

/// One budget, compiled for matching.
#[derive(Debug, Clone)]
pub struct Budget {
    namespace: String,
    /// `None` for a missing, empty or invalid selector: such a budget selects nothing, as upstream.
    selector: Option<Selector>,
    allowed: i32,
    /// Pods the API server already counted as disrupted (being evicted): not counted again.
    disrupted: BTreeSet<String>,
}

impl Budget {
    pub fn new(pdb: &PodDisruptionBudget) -> Self {
        let selector = pdb
            .spec
            .as_ref()
            .and_then(|s| s.selector.clone())
            .and_then(|s| Selector::try_from(s).ok())
            .filter(|s| !s.selects_all());
        let status = pdb.status.as_ref();
        Self {
            namespace: pdb.metadata.namespace.clone().unwrap_or_default(),
            selector,
            allowed: status.map_or(0, |s| s.disruptions_allowed),
            disrupted: status.and_then(|s| s.disrupted_pods.as_ref()).map(|d| d.keys().cloned().collect()).unwrap_or_default(),
        }
    }

    fn selects(&self, pod: &PodInfo) -> bool {
        let meta = &pod.pod.metadata;
        let Some(labels) = meta.labels.as_ref().filter(|l| !l.is_empty()) else { return false };
        meta.namespace.as_deref() == Some(self.namespace.as_str())
            && self.selector.as_ref().is_some_and(|s| s.matches(labels))
            && !meta.name.as_ref().is_some_and(|n| self.disrupted.contains(n))
    }
}

/// Compiles every budget once per preemption attempt.
pub fn compile(pdbs: &[Arc<PodDisruptionBudget>]) -> Vec<Budget> {
    pdbs.iter().map(|p| Budget::new(p)).collect()
}

/// Splits `pods` (kept in order) into those that would violate a budget and those that would not.
pub fn split_by_violation(pods: Vec<PodInfo>, budgets: &[Budget]) -> (Vec<PodInfo>, Vec<PodInfo>) {
    let mut allowed: Vec<i32> = budgets.iter().map(|b| b.allowed).collect();
    let (mut violating, mut fine) = (Vec::new(), Vec::new());
    for p in pods {
        let mut violated = false;
        for (b, left) in budgets.iter().zip(allowed.iter_mut()) {
            if b.selects(&p) {
                *left -= 1;
                violated |= *left < 0;
            }
        }
        if violated { violating.push(p) } else { fine.push(p) }
    }
    (violating, fine)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::pod;
    use k8s_openapi::api::policy::v1::{PodDisruptionBudgetSpec, PodDisruptionBudgetStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};

    fn budget(app: Option<&str>, allowed: i32, disrupted: &[&str]) -> Budget {
        Budget::new(&PodDisruptionBudget {
            metadata: ObjectMeta { name: Some("b".into()), namespace: Some("default".into()), ..Default::default() },
            spec: Some(PodDisruptionBudgetSpec {
                selector: Some(LabelSelector {
                    match_labels: app.map(|a| [("app".to_string(), a.to_string())].into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            status: Some(PodDisruptionBudgetStatus {
                disruptions_allowed: allowed,
                disrupted_pods: Some(disrupted.iter().map(|d| (d.to_string(), Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH))).collect()),
                ..Default::default()
            }),
        })
    }

    fn labelled(name: &str, app: &str) -> PodInfo {
        let mut p = pod(name);
        p.metadata.labels = Some([("app".to_string(), app.to_string())].into());
        PodInfo::new(Arc::new(p))
    }

    fn names(v: &[PodInfo]) -> Vec<String> {
        v.iter().map(PodInfo::key).collect()
    }

    #[test]
    fn violations() {
        let pods = || vec![labelled("w1", "web"), labelled("w2", "web"), labelled("d1", "db"), PodInfo::new(Arc::new(pod("bare")))];
        let cases = [
            ("no budgets", vec![], vec![]),
            ("one disruption allowed: the second web pod violates", vec![budget(Some("web"), 1, &[])], vec!["default/w2"]),
            ("none allowed: every selected pod violates", vec![budget(Some("web"), 0, &[])], vec!["default/w1", "default/w2"]),
            ("already disrupted pods do not count", vec![budget(Some("web"), 0, &["w1"])], vec!["default/w2"]),
            ("an empty selector selects nothing", vec![budget(None, 0, &[])], vec![]),
            ("budgets add up per pod", vec![budget(Some("web"), 5, &[]), budget(Some("db"), 0, &[])], vec!["default/d1"]),
        ];
        for (name, budgets, want) in cases {
            let (violating, fine) = split_by_violation(pods(), &budgets);
            assert_eq!(names(&violating), want, "case {name}");
            assert_eq!(violating.len() + fine.len(), 4, "case {name}: nothing lost");
        }
    }
}

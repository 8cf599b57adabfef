//! `podFailurePolicy` (how one failed pod affects the job) and `successPolicy` (when an Indexed
//! job has succeeded enough), matched like upstream.

use k8s_openapi::api::batch::v1::{PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement, SuccessPolicy};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

use super::conditions::{SUCCESS_CRITERIA_MET, Verdict};
use super::indexes::Indexes;

/// What the pod failure policy makes of one failed pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// No rule matched, or `Count`: the failure counts toward the backoff limit.
    Count,
    /// `Ignore`: not counted; the pod is simply replaced.
    Ignore,
    /// `FailIndex`: counted, and (with per-index backoff) fails the index.
    FailIndex,
    /// `FailJob`: the job fails at once, with this message.
    FailJob(String),
}

impl Judgement {
    pub fn counts(&self) -> bool {
        !matches!(self, Judgement::Ignore)
    }

    /// The job's failure verdict, for `FailJob`.
    pub fn fail_job(self) -> Option<Verdict> {
        match self {
            Judgement::FailJob(message) => Some(Verdict::failure("PodFailurePolicy", &message)),
            _ => None,
        }
    }
}

/// Applies the first matching rule to a failed pod.
pub fn judge(policy: Option<&PodFailurePolicy>, pod: &Pod) -> Judgement {
    let Some(policy) = policy else { return Judgement::Count };
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    for (index, rule) in policy.rules.iter().enumerate() {
        let matched = if let Some(requirement) = &rule.on_exit_codes {
            matching_container(pod, requirement).map(|(container, code)| {
                format!("Container {container} for pod {ns}/{name} failed with exit code {code} matching {} rule at index {index}", rule.action)
            })
        } else {
            rule.on_pod_conditions.iter().flatten().find_map(|pattern| {
                let wanted = pattern.status.as_deref().unwrap_or("True");
                let conditions = pod.status.as_ref()?.conditions.as_ref()?;
                conditions.iter().any(|c| c.type_ == pattern.type_ && c.status == wanted).then(|| {
                    format!("Pod {ns}/{name} has condition {} matching {} rule at index {index}", pattern.type_, rule.action)
                })
            })
        };
        let Some(message) = matched else { continue };
        return match rule.action.as_str() {
            "FailJob" => Judgement::FailJob(message),
            "Ignore" => Judgement::Ignore,
            "FailIndex" => Judgement::FailIndex,
            _ => Judgement::Count,
        };
    }
    Judgement::Count
}

/// The first terminated container (regular, then init) whose non-zero exit code satisfies the
/// requirement: its name and exit code.
fn matching_container(pod: &Pod, requirement: &PodFailurePolicyOnExitCodesRequirement) -> Option<(String, i32)> {
    let status = pod.status.as_ref()?;
    let containers = status.container_statuses.iter().flatten().chain(status.init_container_statuses.iter().flatten());
    containers.filter(|c| requirement.container_name.as_ref().is_none_or(|n| *n == c.name)).find_map(|c: &ContainerStatus| {
        let code = c.state.as_ref()?.terminated.as_ref()?.exit_code;
        let listed = requirement.values.contains(&code);
        let hit = code != 0 && if requirement.operator == "NotIn" { !listed } else { requirement.operator == "In" && listed };
        hit.then(|| (c.name.clone(), code))
    })
}

/// The SuccessCriteriaMet verdict once a success rule holds for the completed indexes.
pub fn success(policy: Option<&SuccessPolicy>, completions: u32, done: &Indexes) -> Option<Verdict> {
    let policy = policy?;
    let index = policy.rules.iter().position(|rule| {
        let count = rule.succeeded_count.map(|c| usize::try_from(c).unwrap_or(0));
        match (&rule.succeeded_indexes, count) {
            (Some(text), count) => {
                let wanted = Indexes::parse(text, completions);
                let hits = wanted.iter().filter(|i| done.contains(*i)).count();
                count.map_or(hits == wanted.len() && !wanted.is_empty(), |c| hits >= c)
            }
            (None, Some(c)) => done.len() >= c,
            (None, None) => false,
        }
    })?;
    Some(Verdict { type_: SUCCESS_CRITERIA_MET, reason: "SuccessPolicy".into(), message: format!("Matched rules at index {index}") })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::batch::v1::{PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule, SuccessPolicyRule};
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStateTerminated, PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn exited(container: &str, code: i32) -> Pod {
        Pod {
            metadata: ObjectMeta { name: Some("p".into()), namespace: Some("ns".into()), ..Default::default() },
            spec: None,
            status: Some(PodStatus {
                phase: Some("Failed".into()),
                container_statuses: Some(vec![ContainerStatus {
                    name: container.into(),
                    state: Some(ContainerState { terminated: Some(ContainerStateTerminated { exit_code: code, ..Default::default() }), ..Default::default() }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    fn codes(action: &str, container: Option<&str>, operator: &str, values: &[i32]) -> PodFailurePolicyRule {
        PodFailurePolicyRule {
            action: action.into(),
            on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement { container_name: container.map(Into::into), operator: operator.into(), values: values.to_vec() }),
            on_pod_conditions: None,
        }
    }

    #[test]
    fn failure_policy_matching() {
        let disruption = PodFailurePolicyRule {
            action: "Ignore".into(),
            on_exit_codes: None,
            on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern { type_: "DisruptionTarget".into(), status: None }]),
        };
        let policy = PodFailurePolicy { rules: vec![codes("FailJob", Some("main"), "In", &[42]), codes("Count", None, "NotIn", &[1, 2]), disruption] };
        let mut evicted = exited("main", 1);
        if let Some(s) = evicted.status.as_mut() {
            s.conditions = Some(vec![PodCondition { type_: "DisruptionTarget".into(), status: "True".into(), ..Default::default() }]);
        }
        let cases = [
            ("exit code in list fails the job", exited("main", 42), "FailJob"),
            ("other container does not match FailJob", exited("side", 42), "Count"),
            ("NotIn matches other codes", exited("main", 7), "Count"),
            ("listed code falls through to conditions", evicted, "Ignore"),
            ("nothing matches", exited("main", 1), "Count"),
            ("exit 0 never matches NotIn", exited("main", 0), "Count"),
        ];
        for (name, pod, want) in cases {
            let got = match judge(Some(&policy), &pod) {
                Judgement::FailJob(_) => "FailJob",
                Judgement::Ignore => "Ignore",
                Judgement::FailIndex => "FailIndex",
                Judgement::Count => "Count",
            };
            assert_eq!(got, want, "{name}");
        }
        let verdict = judge(Some(&policy), &exited("main", 42)).fail_job();
        assert_eq!(
            verdict.map(|v| (v.reason, v.message)),
            Some(("PodFailurePolicy".to_string(), "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 0".to_string()))
        );
        assert_eq!(judge(None, &exited("main", 42)), Judgement::Count, "no policy");
        assert!(!Judgement::Ignore.counts() && Judgement::FailIndex.counts());
    }

    #[test]
    fn success_policy_matching() {
        let rule = |indexes: Option<&str>, count: Option<i32>| SuccessPolicyRule { succeeded_indexes: indexes.map(Into::into), succeeded_count: count };
        let done = Indexes::parse("0,2-3", 10);
        let cases = [
            ("all listed indexes done", vec![rule(Some("0,2"), None)], Some("Matched rules at index 0")),
            ("a listed index missing", vec![rule(Some("0-1"), None)], None),
            ("count within indexes", vec![rule(Some("0-5"), Some(3))], Some("Matched rules at index 0")),
            ("count within indexes short", vec![rule(Some("0-5"), Some(4))], None),
            ("plain count", vec![rule(None, Some(2))], Some("Matched rules at index 0")),
            ("second rule matches", vec![rule(None, Some(9)), rule(None, Some(3))], Some("Matched rules at index 1")),
        ];
        for (name, rules, want) in cases {
            let got = success(Some(&SuccessPolicy { rules }), 10, &done);
            assert_eq!(got.as_ref().map(|v| v.message.as_str()), want, "{name}");
            assert!(got.is_none_or(|v| v.reason == "SuccessPolicy" && v.type_ == SUCCESS_CRITERIA_MET), "{name}");
        }
        assert_eq!(success(None, 10, &done), None);
    }
}

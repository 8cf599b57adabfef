//! The status a budget reports, its DisruptionAllowed condition, and whether it needs writing.

use std::collections::BTreeMap;

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

pub const DISRUPTION_ALLOWED: &str = "DisruptionAllowed";
/// Reasons of the DisruptionAllowed condition, as upstream's policy API names them.
pub const SUFFICIENT_PODS: &str = "SufficientPods";
pub const INSUFFICIENT_PODS: &str = "InsufficientPods";
pub const SYNC_FAILED: &str = "SyncFailed";

/// The counts one sync arrived at.
#[derive(Debug, Clone, PartialEq)]
pub struct Counts {
    pub current_healthy: i32,
    pub desired_healthy: i32,
    pub expected_pods: i32,
    pub disruptions_allowed: i32,
    pub disrupted_pods: BTreeMap<String, Time>,
}

/// Sets condition `wanted` in `conditions`, keeping the transition time when the status is unchanged.
fn set_condition(conditions: &mut Vec<Condition>, mut wanted: Condition, now: Timestamp) {
    match conditions.iter_mut().find(|c| c.type_ == wanted.type_) {
        Some(existing) => {
            wanted.last_transition_time = if existing.status == wanted.status { existing.last_transition_time.clone() } else { Time(now) };
            *existing = wanted;
        }
        None => {
            wanted.last_transition_time = Time(now);
            conditions.push(wanted);
        }
    }
}

fn condition_for(allowed: i32, observed_generation: Option<i64>) -> Condition {
    let (status, reason) = if allowed > 0 { ("True", SUFFICIENT_PODS) } else { ("False", INSUFFICIENT_PODS) };
    Condition {
        type_: DISRUPTION_ALLOWED.into(),
        status: status.into(),
        reason: reason.into(),
        message: String::new(),
        observed_generation,
        last_transition_time: Time(Timestamp::UNIX_EPOCH),
    }
}

/// True if the stored condition already says what `allowed` means for this generation.
fn condition_current(budget: &PodDisruptionBudget, allowed: i32) -> bool {
    let conditions = budget.status.as_ref().and_then(|s| s.conditions.as_ref());
    let Some(c) = conditions.into_iter().flatten().find(|c| c.type_ == DISRUPTION_ALLOWED) else {
        return false;
    };
    c.observed_generation == budget.metadata.generation && c.status == if allowed > 0 { "True" } else { "False" }
}

/// The status to write after a successful sync, or None if the stored one already says it.
pub fn next(budget: &PodDisruptionBudget, counts: Counts, now: Timestamp) -> Option<PodDisruptionBudgetStatus> {
    let old = budget.status.clone().unwrap_or_default();
    let generation = budget.metadata.generation;
    let same = old.current_healthy == counts.current_healthy
        && old.desired_healthy == counts.desired_healthy
        && old.expected_pods == counts.expected_pods
        && old.disruptions_allowed == counts.disruptions_allowed
        && old.disrupted_pods.clone().unwrap_or_default() == counts.disrupted_pods
        && old.observed_generation == generation
        && condition_current(budget, counts.disruptions_allowed);
    if same {
        return None;
    }
    let mut conditions = old.conditions.unwrap_or_default();
    set_condition(&mut conditions, condition_for(counts.disruptions_allowed, generation), now);
    Some(PodDisruptionBudgetStatus {
        current_healthy: counts.current_healthy,
        desired_healthy: counts.desired_healthy,
        expected_pods: counts.expected_pods,
        disruptions_allowed: counts.disruptions_allowed,
        disrupted_pods: (!counts.disrupted_pods.is_empty()).then_some(counts.disrupted_pods),
        observed_generation: generation,
        conditions: Some(conditions),
    })
}

/// The status after a failed sync: no disruptions allowed, and why, in the condition (upstream's
/// fail-safe; the other fields keep their last values).
pub fn failed(budget: &PodDisruptionBudget, message: String, now: Timestamp) -> PodDisruptionBudgetStatus {
    let mut status = budget.status.clone().unwrap_or_default();
    status.disruptions_allowed = 0;
    let mut conditions = status.conditions.take().unwrap_or_default();
    let wanted = Condition {
        type_: DISRUPTION_ALLOWED.into(),
        status: "False".into(),
        reason: SYNC_FAILED.into(),
        message,
        observed_generation: status.observed_generation,
        last_transition_time: Time(now),
    };
    set_condition(&mut conditions, wanted, now);
    status.conditions = Some(conditions);
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(generation: i64, status: Option<PodDisruptionBudgetStatus>) -> PodDisruptionBudget {
        let mut b = PodDisruptionBudget { status, ..Default::default() };
        b.metadata.generation = Some(generation);
        b
    }

    fn counts(healthy: i32, allowed: i32) -> Counts {
        Counts { current_healthy: healthy, desired_healthy: 2, expected_pods: 3, disruptions_allowed: allowed, disrupted_pods: BTreeMap::new() }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn first_status_and_condition() {
        let status = next(&budget(4, None), counts(3, 1), at(10));
        let status = status.unwrap_or_default();
        assert_eq!((status.current_healthy, status.desired_healthy, status.expected_pods, status.disruptions_allowed), (3, 2, 3, 1));
        assert_eq!(status.observed_generation, Some(4));
        let c = status.conditions.unwrap_or_default();
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].type_.as_str(), c[0].status.as_str(), c[0].reason.as_str()), (DISRUPTION_ALLOWED, "True", SUFFICIENT_PODS));
        assert_eq!((c[0].observed_generation, c[0].last_transition_time.0), (Some(4), at(10)));
    }

    #[test]
    fn unchanged_is_not_written() {
        let written = next(&budget(4, None), counts(3, 1), at(10));
        assert!(next(&budget(4, written.clone()), counts(3, 1), at(20)).is_none(), "same counts, same generation");
        assert!(next(&budget(5, written.clone()), counts(3, 1), at(20)).is_some(), "new generation");
        let fewer = next(&budget(4, written), counts(2, 0), at(20)).unwrap_or_default();
        let c = fewer.conditions.unwrap_or_default();
        assert_eq!((c[0].status.as_str(), c[0].reason.as_str(), c[0].last_transition_time.0), ("False", INSUFFICIENT_PODS, at(20)), "transition");
    }

    #[test]
    fn transition_time_kept_when_status_stays() {
        let written = next(&budget(4, None), counts(3, 1), at(10));
        let more = next(&budget(5, written), counts(4, 2), at(30)).unwrap_or_default();
        let c = more.conditions.unwrap_or_default();
        assert_eq!((c[0].last_transition_time.0, c[0].observed_generation), (at(10), Some(5)));
    }

    #[test]
    fn failure_allows_nothing() {
        let written = next(&budget(4, None), counts(3, 1), at(10));
        let status = failed(&budget(4, written), "found no controllers for pod \"x\"".into(), at(50));
        assert_eq!((status.disruptions_allowed, status.current_healthy), (0, 3));
        let c = status.conditions.unwrap_or_default();
        assert_eq!((c[0].status.as_str(), c[0].reason.as_str(), c[0].last_transition_time.0), ("False", SYNC_FAILED, at(50)));
        assert!(c[0].message.contains("no controllers"));
    }
}

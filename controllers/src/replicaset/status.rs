//! The status a replica set reports for the pods it controls.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::pods;

/// Condition type set while pods cannot be created or deleted.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// Counts `owned` pods (active or terminating) into a status; `failure` is the reason and message of
/// the last create/delete failure, which sets the ReplicaFailure condition.
pub fn compute(rs: &ReplicaSet, owned: &[Arc<Pod>], failure: Option<(&str, String)>, now: Timestamp) -> ReplicaSetStatus {
    let spec = rs.spec.as_ref();
    let min_ready = spec.and_then(|s| s.min_ready_seconds).unwrap_or(0);
    let template_labels = spec.and_then(|s| s.template.as_ref()).and_then(|t| t.metadata.as_ref()).and_then(|m| m.labels.as_ref());
    let active: Vec<&Arc<Pod>> = owned.iter().filter(|p| pods::is_active(p)).collect();
    let count = |pred: &dyn Fn(&Pod) -> bool| i32::try_from(active.iter().filter(|p| pred(p)).count()).unwrap_or(i32::MAX);
    let terminating = owned.iter().filter(|p| p.metadata.deletion_timestamp.is_some()).count();

    let previous = rs.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    let had_failure = previous.iter().any(|c| c.type_ == REPLICA_FAILURE);
    // Like upstream, a standing ReplicaFailure condition is kept as first reported while failures
    // go on: the apiserver's message names a fresh random pod each time, and rewriting it would
    // turn every failed sync into a status write that triggers the next sync at once.
    let mut conditions: Vec<ReplicaSetCondition> =
        previous.into_iter().filter(|c| c.type_ != REPLICA_FAILURE || failure.is_some()).collect();
    if let (Some((reason, message)), false) = (failure, had_failure) {
        conditions.push(ReplicaSetCondition {
            type_: REPLICA_FAILURE.to_string(),
            status: "True".to_string(),
            reason: Some(reason.to_string()),
            message: Some(message),
            last_transition_time: Some(Time(now)),
        });
    }

    ReplicaSetStatus {
        replicas: count(&|_| true),
        fully_labeled_replicas: Some(count(&|p| pods::fully_labeled(p, template_labels))),
        ready_replicas: Some(count(&pods::is_ready)),
        available_replicas: Some(count(&|p| pods::is_available(p, min_ready, now))),
        terminating_replicas: Some(i32::try_from(terminating).unwrap_or(i32::MAX)),
        observed_generation: rs.metadata.generation,
        conditions: (!conditions.is_empty()).then_some(conditions),
    }
}

/// True if the two statuses differ in anything but condition timestamps of an unchanged failure.
pub fn differs(old: Option<&ReplicaSetStatus>, new: &ReplicaSetStatus) -> bool {
    let Some(old) = old else { return true };
    let strip = |s: &ReplicaSetStatus| {
        let mut s = s.clone();
        for c in s.conditions.iter_mut().flatten() {
            c.last_transition_time = None;
        }
        s
    };
    strip(old) != strip(new)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::ReplicaSetSpec;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};

    use super::*;

    fn pod(ready: bool, deleting: bool) -> Arc<Pod> {
        let mut p = Pod::default();
        p.metadata.deletion_timestamp = deleting.then_some(Time(Timestamp::UNIX_EPOCH));
        p.status = Some(PodStatus {
            phase: Some("Running".into()),
            conditions: ready.then(|| {
                vec![PodCondition { type_: "Ready".into(), status: "True".into(), ..Default::default() }]
            }),
            ..Default::default()
        });
        Arc::new(p)
    }

    #[test]
    fn counts_pods() {
        let mut rs = ReplicaSet { spec: Some(ReplicaSetSpec::default()), ..Default::default() };
        rs.metadata.generation = Some(4);
        let status = compute(&rs, &[pod(true, false), pod(false, false), pod(true, true)], None, Timestamp::UNIX_EPOCH);
        assert_eq!(status.replicas, 2);
        assert_eq!(status.ready_replicas, Some(1));
        assert_eq!(status.available_replicas, Some(1));
        assert_eq!(status.fully_labeled_replicas, Some(2));
        assert_eq!(status.terminating_replicas, Some(1));
        assert_eq!(status.observed_generation, Some(4));
        assert!(status.conditions.is_none());
    }

    #[test]
    fn failure_sets_condition_and_clears() {
        let rs = ReplicaSet::default();
        let failed = compute(&rs, &[], Some(("FailedCreate", "quota".into())), Timestamp::UNIX_EPOCH);
        assert_eq!(failed.conditions.as_ref().map(Vec::len), Some(1));
        let rs = ReplicaSet { status: Some(failed.clone()), ..Default::default() };
        let again = compute(&rs, &[], Some(("FailedCreate", "pods \"web-other\" is forbidden".into())), Timestamp::from_second(60).unwrap_or_default());
        assert_eq!(again.conditions, failed.conditions, "a standing failure keeps its first message and time");
        let healed = compute(&rs, &[], None, Timestamp::UNIX_EPOCH);
        assert!(healed.conditions.is_none());
    }

    #[test]
    fn differs_ignores_only_timestamps() {
        let a = ReplicaSetStatus { replicas: 1, ..Default::default() };
        assert!(differs(None, &a));
        assert!(!differs(Some(&a), &a.clone()));
        assert!(differs(Some(&a), &ReplicaSetStatus { replicas: 2, ..Default::default() }));
    }
}

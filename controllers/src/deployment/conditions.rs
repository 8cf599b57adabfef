//! Deployment status: replica counts summed over its replica sets, and the Available and
//! Progressing conditions that `kubectl rollout status` reads.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";
pub const MIN_AVAILABLE: &str = "MinimumReplicasAvailable";
pub const MIN_UNAVAILABLE: &str = "MinimumReplicasUnavailable";
pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// `progressDeadlineSeconds` when the deployment leaves it unset (the apiserver defaults it to 600;
/// i32::MAX means "no deadline").
const DEFAULT_DEADLINE: i32 = 600;

pub fn condition(status: &str, type_: &str, reason: &str, message: String, now: Timestamp) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

pub fn get<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

/// Sets a condition; one with the same status and reason is left untouched, and a change of reason
/// alone keeps the transition time.
pub fn set(status: &mut DeploymentStatus, mut new: DeploymentCondition) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    if let Some(current) = conditions.iter().find(|c| c.type_ == new.type_) {
        if current.status == new.status && current.reason == new.reason {
            return;
        }
        if current.status == new.status {
            new.last_transition_time = current.last_transition_time.clone();
        }
    }
    conditions.retain(|c| c.type_ != new.type_);
    conditions.push(new);
}

fn remove(status: &mut DeploymentStatus, type_: &str) {
    if let Some(conditions) = status.conditions.as_mut() {
        conditions.retain(|c| c.type_ != type_);
    }
}

/// The deployment has a progress deadline (unset means upstream's default; i32::MAX means none).
pub fn has_progress_deadline(d: &Deployment) -> bool {
    deadline(d).is_some()
}

fn deadline(d: &Deployment) -> Option<i32> {
    let seconds = d.spec.as_ref().and_then(|s| s.progress_deadline_seconds).unwrap_or(DEFAULT_DEADLINE);
    (seconds != i32::MAX).then_some(seconds)
}

/// The Progressing condition to record when the deployment has just been paused or resumed, so a
/// paused rollout never times out and a resumed one gets its full deadline again. A reported
/// timeout is never overwritten.
pub fn pause_transition(d: &Deployment, now: Timestamp) -> Option<DeploymentCondition> {
    deadline(d)?;
    let paused = d.spec.as_ref().and_then(|s| s.paused) == Some(true);
    let status = d.status.clone().unwrap_or_default();
    let reason = get(&status, PROGRESSING).and_then(|c| c.reason.clone());
    match reason.as_deref() {
        Some(TIMED_OUT) => None,
        Some(PAUSED) if !paused => Some(condition("Unknown", PROGRESSING, RESUMED, "Deployment is resumed".into(), now)),
        Some(PAUSED) => None,
        _ if paused => Some(condition("Unknown", PROGRESSING, PAUSED, "Deployment is paused".into(), now)),
        _ => None,
    }
}

/// Carries a replica set's ReplicaFailure condition (the new replica set's first, else any old
/// one's) over to the deployment, or clears it when no replica set reports one.
pub fn apply_replica_failure(status: &mut DeploymentStatus, all: &[ReplicaSet], new: Option<&ReplicaSet>) {
    let failure_of = |rs: &ReplicaSet| -> Option<ReplicaSetCondition> {
        rs.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == REPLICA_FAILURE).cloned()
    };
    let found = new.and_then(failure_of).or_else(|| all.iter().find_map(failure_of));
    match found {
        Some(c) => set(
            status,
            DeploymentCondition {
                type_: REPLICA_FAILURE.to_string(),
                status: c.status,
                reason: c.reason,
                message: c.message,
                last_update_time: c.last_transition_time.clone(),
                last_transition_time: c.last_transition_time,
            },
        ),
        None => remove(status, REPLICA_FAILURE),
    }
}

/// Replica counts over `all` replica sets plus the Available condition; other conditions carry over
/// from the deployment's current status.
pub fn calculate(d: &Deployment, all: &[ReplicaSet], new: Option<&ReplicaSet>, max_unavailable: i32, now: Timestamp) -> DeploymentStatus {
    let status_of = |rs: &ReplicaSet| rs.status.clone().unwrap_or_default();
    let sum = |f: &dyn Fn(&ReplicaSet) -> i32| all.iter().map(f).sum::<i32>();
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let available = sum(&|rs| status_of(rs).available_replicas.unwrap_or(0));
    let total_spec = sum(&|rs| rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0));
    let previous = d.status.clone().unwrap_or_default();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(sum(&|rs| status_of(rs).replicas)),
        updated_replicas: Some(new.map(|rs| status_of(rs).replicas).unwrap_or(0)),
        ready_replicas: Some(sum(&|rs| status_of(rs).ready_replicas.unwrap_or(0))),
        available_replicas: Some(available),
        unavailable_replicas: Some((total_spec - available).max(0)),
        terminating_replicas: Some(sum(&|rs| status_of(rs).terminating_replicas.unwrap_or(0))),
        collision_count: previous.collision_count,
        conditions: previous.conditions,
    };
    if available >= desired - max_unavailable {
        set(&mut status, condition("True", AVAILABLE, MIN_AVAILABLE, "Deployment has minimum availability.".into(), now));
    } else {
        set(&mut status, condition("False", AVAILABLE, MIN_UNAVAILABLE, "Deployment does not have minimum availability.".into(), now));
    }
    status
}

/// Every desired replica is updated, present and available, for the latest generation.
pub fn complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    status.updated_replicas == Some(desired)
        && status.replicas == Some(desired)
        && status.available_replicas == Some(desired)
        && status.observed_generation >= d.metadata.generation
}

/// Something moved since the last status: more updated, ready or available pods, or fewer old ones.
fn progressing(old: &DeploymentStatus, new: &DeploymentStatus) -> bool {
    let n = |v: Option<i32>| v.unwrap_or(0);
    let old_pods = |s: &DeploymentStatus| n(s.replicas) - n(s.updated_replicas);
    n(new.updated_replicas) > n(old.updated_replicas)
        || old_pods(new) < old_pods(old)
        || n(new.ready_replicas) > n(old.ready_replicas)
        || n(new.available_replicas) > n(old.available_replicas)
}

/// Applies the Progressing condition rules to `new` (computed by [`calculate`]); returns how long
/// until the progress deadline passes, if the rollout is still under way.
pub fn update_progress(d: &Deployment, new: &mut DeploymentStatus, new_rs: Option<&str>, now: Timestamp) -> Option<SignedDuration> {
    let Some(deadline) = deadline(d) else {
        remove(new, PROGRESSING);
        return None;
    };
    let old = d.status.clone().unwrap_or_default();
    let current = get(&old, PROGRESSING).cloned();
    let was_complete = new.replicas == new.updated_replicas && current.as_ref().and_then(|c| c.reason.as_deref()) == Some(NEW_RS_AVAILABLE);
    if was_complete {
        return None;
    }
    let subject = match new_rs {
        Some(rs) => format!("ReplicaSet {rs:?}"),
        None => format!("Deployment {:?}", d.metadata.name.as_deref().unwrap_or_default()),
    };
    if complete(d, new) {
        set(new, condition("True", PROGRESSING, NEW_RS_AVAILABLE, format!("{subject} has successfully progressed."), now));
        return None;
    }
    if progressing(&old, new) {
        let mut cond = condition("True", PROGRESSING, RS_UPDATED, format!("{subject} is progressing."), now);
        if let Some(current) = current.as_ref().filter(|c| c.status == "True") {
            cond.last_transition_time = current.last_transition_time.clone();
        }
        remove(new, PROGRESSING);
        set(new, cond);
        return Some(SignedDuration::from_secs(i64::from(deadline)));
    }
    let current = current?;
    if current.reason.as_deref() == Some(TIMED_OUT) {
        return None;
    }
    let since = current.last_update_time.as_ref().map(|t| t.0).unwrap_or(now);
    let end = since.checked_add(SignedDuration::from_secs(i64::from(deadline))).unwrap_or(since);
    let left = now.duration_until(end);
    if left <= SignedDuration::ZERO {
        set(new, condition("False", PROGRESSING, TIMED_OUT, format!("{subject} has timed out progressing."), now));
        return None;
    }
    Some(left)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{DeploymentSpec, ReplicaSetStatus};

    use super::*;

    fn deployment(replicas: i32) -> Deployment {
        let mut d = Deployment { spec: Some(DeploymentSpec { replicas: Some(replicas), ..Default::default() }), ..Default::default() };
        d.metadata.name = Some("web".into());
        d.metadata.generation = Some(1);
        d
    }

    fn rs(spec: i32, replicas: i32, available: i32) -> ReplicaSet {
        ReplicaSet {
            spec: Some(k8s_openapi::api::apps::v1::ReplicaSetSpec { replicas: Some(spec), ..Default::default() }),
            status: Some(ReplicaSetStatus {
                replicas,
                ready_replicas: Some(available),
                available_replicas: Some(available),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn now() -> Timestamp {
        Timestamp::from_second(10_000).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn counts_and_availability() {
        let d = deployment(3);
        let new = rs(3, 3, 3);
        let status = calculate(&d, std::slice::from_ref(&new), Some(&new), 0, now());
        assert_eq!((status.replicas, status.updated_replicas, status.available_replicas, status.unavailable_replicas), (Some(3), Some(3), Some(3), Some(0)));
        assert_eq!(get(&status, AVAILABLE).and_then(|c| c.reason.as_deref()), Some(MIN_AVAILABLE));
        let pending = rs(3, 3, 0);
        let status = calculate(&d, std::slice::from_ref(&pending), Some(&pending), 0, now());
        assert_eq!(status.unavailable_replicas, Some(3));
        assert_eq!(get(&status, AVAILABLE).map(|c| c.status.as_str()), Some("False"));
    }

    #[test]
    fn progress_reasons() {
        let d = deployment(3);
        let done = rs(3, 3, 3);
        let mut status = calculate(&d, std::slice::from_ref(&done), Some(&done), 0, now());
        assert_eq!(update_progress(&d, &mut status, Some("web-abc"), now()), None);
        let cond = get(&status, PROGRESSING).cloned();
        assert_eq!(cond.as_ref().and_then(|c| c.reason.as_deref()), Some(NEW_RS_AVAILABLE));
        assert_eq!(cond.and_then(|c| c.message), Some("ReplicaSet \"web-abc\" has successfully progressed.".to_string()));

        let half = rs(3, 3, 1);
        let mut status = calculate(&d, std::slice::from_ref(&half), Some(&half), 0, now());
        assert!(update_progress(&d, &mut status, Some("web-abc"), now()).is_some());
        assert_eq!(get(&status, PROGRESSING).and_then(|c| c.reason.clone()).as_deref(), Some(RS_UPDATED));
    }

    #[test]
    fn deadline_exceeded() {
        let mut d = deployment(3);
        let mut old = DeploymentStatus { replicas: Some(3), updated_replicas: Some(3), ..Default::default() };
        set(&mut old, condition("True", PROGRESSING, RS_UPDATED, "x".into(), Timestamp::UNIX_EPOCH));
        d.status = Some(old);
        let stuck = rs(3, 3, 0);
        let mut status = calculate(&d, std::slice::from_ref(&stuck), Some(&stuck), 0, now());
        assert_eq!(update_progress(&d, &mut status, Some("web-abc"), now()), None);
        assert_eq!(get(&status, PROGRESSING).map(|c| c.status.as_str()), Some("False"));
        assert_eq!(get(&status, PROGRESSING).and_then(|c| c.reason.as_deref()), Some(TIMED_OUT));
    }

    #[test]
    fn pause_and_resume_conditions() {
        let with = |paused: bool, reason: Option<&str>, deadline: Option<i32>| {
            let mut d = deployment(3);
            if let Some(spec) = d.spec.as_mut() {
                spec.paused = Some(paused);
                spec.progress_deadline_seconds = deadline;
            }
            let mut status = DeploymentStatus::default();
            if let Some(reason) = reason {
                set(&mut status, condition("True", PROGRESSING, reason, "x".into(), Timestamp::UNIX_EPOCH));
            }
            d.status = Some(status);
            d
        };
        let cases = [
            ("pausing a progressing rollout", with(true, Some(RS_UPDATED), None), Some(PAUSED)),
            ("pausing a fresh deployment", with(true, None, None), Some(PAUSED)),
            ("already paused", with(true, Some(PAUSED), None), None),
            ("resuming", with(false, Some(PAUSED), None), Some(RESUMED)),
            ("running, never paused", with(false, Some(RS_UPDATED), None), None),
            ("timeout is kept while paused", with(true, Some(TIMED_OUT), None), None),
            ("no deadline: no condition", with(true, None, Some(i32::MAX)), None),
        ];
        for (name, d, want) in cases {
            let got = pause_transition(&d, now());
            assert_eq!(got.as_ref().and_then(|c| c.reason.as_deref()), want, "{name}");
            if let Some(c) = got {
                assert_eq!(c.status, "Unknown", "{name}");
            }
        }
    }

    #[test]
    fn replica_failure_propagation() {
        let failing = |message: &str| {
            let mut r = rs(3, 0, 0);
            if let Some(status) = r.status.as_mut() {
                status.conditions = Some(vec![ReplicaSetCondition {
                    type_: REPLICA_FAILURE.into(),
                    status: "True".into(),
                    reason: Some("FailedCreate".into()),
                    message: Some(message.into()),
                    last_transition_time: Some(Time(now())),
                }]);
            }
            r
        };
        let (old_failing, new_failing, healthy) = (failing("old"), failing("new"), rs(3, 3, 3));
        let cases = [
            ("new replica set's failure wins", vec![old_failing.clone(), new_failing.clone()], Some(&new_failing), Some("new")),
            ("old replica set's failure when new is fine", vec![old_failing.clone(), healthy.clone()], Some(&healthy), Some("old")),
            ("no failure clears the condition", vec![healthy.clone()], Some(&healthy), None),
        ];
        for (name, all, new, want) in cases {
            let mut status = DeploymentStatus::default();
            if want.is_none() {
                set(&mut status, condition("True", REPLICA_FAILURE, "FailedCreate", "stale".into(), now()));
            }
            apply_replica_failure(&mut status, &all, new);
            assert_eq!(get(&status, REPLICA_FAILURE).and_then(|c| c.message.as_deref()), want, "{name}");
        }
    }

    #[test]
    fn set_keeps_transition_time() {
        let mut status = DeploymentStatus::default();
        set(&mut status, condition("True", PROGRESSING, NEW_RS_CREATED, "a".into(), Timestamp::UNIX_EPOCH));
        set(&mut status, condition("True", PROGRESSING, RS_UPDATED, "b".into(), now()));
        let c = get(&status, PROGRESSING).cloned().unwrap_or_else(|| condition("", "", "", String::new(), now()));
        assert_eq!(c.last_transition_time, Some(Time(Timestamp::UNIX_EPOCH)));
        assert_eq!(c.reason.as_deref(), Some(RS_UPDATED));
    }
}

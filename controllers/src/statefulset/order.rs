//! Pod management order: which pod to create or delete next, given what exists.
//!
//! OrderedReady (the default) is monotonic: members are created one at a time in ordinal order,
//! each only once every lower ordinal is Running, Ready and available; surplus members are deleted
//! one at a time from the highest ordinal, only while the rest are healthy. Parallel creates and
//! deletes everything at once. Finished (Succeeded/Failed) members are deleted so they can be made
//! anew. Once scaling is settled, the update strategy may replace one outdated member.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use super::identity;
use super::update::{self, Strategy};

/// What planning needs to know about one existing member pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub ordinal: i32,
    pub name: String,
    /// The ControllerRevision it was made from.
    pub revision: String,
    /// Has a deletion timestamp.
    pub terminating: bool,
    /// Phase Succeeded or Failed: it will never run again.
    pub finished: bool,
    /// Phase Running with the Ready condition True.
    pub ready: bool,
    /// Ready for at least minReadySeconds.
    pub available: bool,
}

impl Member {
    /// The member view of `pod` at `ordinal`.
    pub fn from_pod(pod: &Pod, ordinal: i32, min_ready_seconds: i32, now: Timestamp) -> Self {
        let status = pod.status.as_ref();
        let phase = status.and_then(|s| s.phase.as_deref());
        let ready_since = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready" && c.status == "True"))
            .map(|c| c.last_transition_time.as_ref().map(|t| t.0));
        let ready = phase == Some("Running") && ready_since.is_some();
        let available = ready
            && (min_ready_seconds <= 0
                || ready_since.flatten().is_some_and(|since| now.as_second() - since.as_second() >= i64::from(min_ready_seconds)));
        Member {
            ordinal,
            name: pod.metadata.name.clone().unwrap_or_default(),
            revision: identity::revision_of(pod).to_string(),
            terminating: pod.metadata.deletion_timestamp.is_some(),
            finished: matches!(phase, Some("Succeeded" | "Failed")),
            ready,
            available,
        }
    }

    /// Running, Ready, available and staying.
    pub fn healthy(&self) -> bool {
        self.ready && self.available && !self.terminating
    }
}

/// One wanted ordinal and the member holding it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub ordinal: i32,
    pub pod: Option<Member>,
}

/// One write to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create the pod (and its claims) for this ordinal.
    Create(i32),
    /// Delete this member pod (by name).
    Delete(String),
}

/// Splits members into the wanted ordinals `[start, start + replicas)` (in ordinal order, holes
/// left empty) and the condemned rest (highest ordinal first).
pub fn partition(members: Vec<Member>, start: i32, replicas: i32) -> (Vec<Slot>, Vec<Member>) {
    let end = start.saturating_add(replicas.max(0));
    let mut slots: Vec<Slot> = (start..end).map(|ordinal| Slot { ordinal, pod: None }).collect();
    let mut condemned = Vec::new();
    for member in members {
        match usize::try_from(member.ordinal - start).ok().and_then(|i| slots.get_mut(i)) {
            Some(slot) if member.ordinal < end => slot.pod = Some(member),
            _ => condemned.push(member),
        }
    }
    condemned.sort_by_key(|m| std::cmp::Reverse(m.ordinal));
    (slots, condemned)
}

/// The writes for this sync, in order. `monotonic` is OrderedReady; `update_revision` is the
/// revision every member at or above the partition should be at.
pub fn plan(slots: &[Slot], condemned: &[Member], monotonic: bool, strategy: &Strategy, update_revision: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut blocked = false;
    for slot in slots {
        match &slot.pod {
            None => {
                steps.push(Step::Create(slot.ordinal));
                if monotonic {
                    return steps;
                }
            }
            // A finished member is deleted; its replacement comes once it is gone.
            Some(m) if m.finished => {
                if !m.terminating {
                    steps.push(Step::Delete(m.name.clone()));
                }
                blocked = true;
                if monotonic {
                    return steps;
                }
            }
            // Wait for every lower ordinal to be healthy before going on.
            Some(m) if monotonic && !m.healthy() => return steps,
            Some(_) => {}
        }
    }
    // Scale down from the highest ordinal. In monotonic mode every wanted member is healthy here;
    // a surplus member that is itself unhealthy may go only if it is the first unhealthy one.
    let first_unhealthy = condemned.iter().rev().find(|m| !m.healthy()).map(|m| m.ordinal);
    for m in condemned {
        if m.terminating {
            if monotonic {
                return steps;
            }
            continue;
        }
        if monotonic && !m.healthy() && first_unhealthy != Some(m.ordinal) {
            return steps;
        }
        steps.push(Step::Delete(m.name.clone()));
        if monotonic {
            return steps;
        }
    }
    // A finished member being replaced must not also be picked by the update.
    if blocked {
        return steps;
    }
    steps.extend(update::next_replacement(slots, strategy, update_revision).map(Step::Delete));
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A member at `ordinal` with revision `rev` in state `state`: h(ealthy), p(ending), t(erminating),
    /// f(inished), u(nready but running: not available).
    fn m(ordinal: i32, rev: &str, state: char) -> Member {
        Member {
            ordinal,
            name: format!("web-{ordinal}"),
            revision: rev.to_string(),
            terminating: state == 't',
            finished: state == 'f',
            ready: matches!(state, 'h' | 't'),
            available: matches!(state, 'h' | 't'),
        }
    }

    fn slots(members: &[Option<Member>]) -> Vec<Slot> {
        members.iter().enumerate().map(|(i, pod)| Slot { ordinal: i32::try_from(i).unwrap_or(0), pod: pod.clone() }).collect()
    }

    fn del(ordinal: i32) -> Step {
        Step::Delete(format!("web-{ordinal}"))
    }

    const ROLLING: Strategy = Strategy::RollingUpdate { partition: 0 };

    #[test]
    fn ordered_ready_creates_one_at_a_time_in_order() {
        let cases = [
            ("empty set: create 0 only", vec![None, None, None], vec![Step::Create(0)]),
            ("0 pending: wait", vec![Some(m(0, "r1", 'p')), None, None], vec![]),
            ("0 ready but not yet available: wait", vec![Some(m(0, "r1", 'u')), None, None], vec![]),
            ("0 healthy: create 1", vec![Some(m(0, "r1", 'h')), None, None], vec![Step::Create(1)]),
            ("hole below: fill it first", vec![Some(m(0, "r1", 'h')), None, Some(m(2, "r1", 'h'))], vec![Step::Create(1)]),
            ("0 terminating: wait", vec![Some(m(0, "r1", 't')), None], vec![]),
            ("0 failed: delete it, nothing else", vec![Some(m(0, "r1", 'f')), None], vec![del(0)]),
            ("all healthy: nothing", vec![Some(m(0, "r1", 'h')), Some(m(1, "r1", 'h'))], vec![]),
        ];
        for (name, members, want) in cases {
            assert_eq!(plan(&slots(&members), &[], true, &ROLLING, "r1"), want, "{name}");
        }
    }

    #[test]
    fn parallel_creates_and_replaces_all_at_once() {
        let cases = [
            ("empty set: create all", vec![None, None, None], vec![Step::Create(0), Step::Create(1), Step::Create(2)]),
            ("pending member does not block", vec![Some(m(0, "r1", 'p')), None], vec![Step::Create(1)]),
            ("failed member deleted, others created", vec![Some(m(0, "r1", 'f')), None], vec![del(0), Step::Create(1)]),
        ];
        for (name, members, want) in cases {
            assert_eq!(plan(&slots(&members), &[], false, &ROLLING, "r1"), want, "{name}");
        }
    }

    #[test]
    fn scale_down_order() {
        let healthy = slots(&[Some(m(0, "r1", 'h'))]);
        type Case<'a> = (&'a str, &'a [Slot], Vec<Member>, bool, Vec<Step>);
        let cases: [Case<'_>; 8] = [
            ("ordered: highest first, one at a time", &healthy, vec![m(2, "r1", 'h'), m(1, "r1", 'h')], true, vec![del(2)]),
            ("ordered: wait while the highest terminates", &healthy, vec![m(2, "r1", 't'), m(1, "r1", 'h')], true, vec![]),
            ("ordered: unhealthy highest goes first", &healthy, vec![m(2, "r1", 'p'), m(1, "r1", 'h')], true, vec![del(2)]),
            ("ordered: healthy highest goes though a lower surplus is unhealthy", &healthy, vec![m(2, "r1", 'h'), m(1, "r1", 'p')], true, vec![del(2)]),
            ("ordered: unhealthy highest waits for the first unhealthy", &healthy, vec![m(2, "r1", 'p'), m(1, "r1", 'p')], true, vec![]),
            ("ordered: nothing while a wanted member is unhealthy", &slots(&[Some(m(0, "r1", 'p'))]), vec![m(1, "r1", 'h')], true, vec![]),
            ("parallel: all at once", &healthy, vec![m(2, "r1", 'h'), m(1, "r1", 'p')], false, vec![del(2), del(1)]),
            ("parallel: skip terminating", &healthy, vec![m(2, "r1", 't'), m(1, "r1", 'h')], false, vec![del(1)]),
        ];
        for (name, s, condemned, monotonic, want) in cases {
            assert_eq!(plan(s, &condemned, monotonic, &ROLLING, "r1"), want, "{name}");
        }
    }

    #[test]
    fn scaling_precedes_updates() {
        let s = slots(&[Some(m(0, "old", 'h'))]);
        assert_eq!(plan(&s, &[m(1, "old", 'h')], true, &ROLLING, "new"), vec![del(1)]);
        assert_eq!(plan(&s, &[], true, &ROLLING, "new"), vec![del(0)], "then the update");
    }

    #[test]
    fn partition_splits_wanted_and_condemned() {
        let members = vec![m(3, "r", 'h'), m(0, "r", 'h'), m(5, "r", 'h'), m(1, "r", 'h')];
        let (s, condemned) = partition(members, 1, 2);
        let held: Vec<(i32, Option<i32>)> = s.iter().map(|s| (s.ordinal, s.pod.as_ref().map(|p| p.ordinal))).collect();
        assert_eq!(held, [(1, Some(1)), (2, None)]);
        let gone: Vec<i32> = condemned.iter().map(|m| m.ordinal).collect();
        assert_eq!(gone, [5, 3, 0], "outside the range on either side, highest first");
    }

    #[test]
    fn member_from_pod_states() {
        use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let now = Timestamp::from_second(1000).unwrap_or(Timestamp::UNIX_EPOCH);
        let pod = |phase: &str, ready_at: Option<i64>| Pod {
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: ready_at.map(|at| {
                    vec![PodCondition { type_: "Ready".into(), status: "True".into(), last_transition_time: Timestamp::from_second(at).ok().map(Time), ..Default::default() }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let cases = [
            ("pending", pod("Pending", None), 0, (false, false, false)),
            ("running ready", pod("Running", Some(999)), 0, (true, true, false)),
            ("ready too recently", pod("Running", Some(995)), 10, (true, false, false)),
            ("ready long enough", pod("Running", Some(900)), 10, (true, true, false)),
            ("failed", pod("Failed", None), 0, (false, false, true)),
            ("succeeded", pod("Succeeded", Some(1)), 0, (false, false, true)),
        ];
        for (name, p, min_ready, want) in cases {
            let member = Member::from_pod(&p, 0, min_ready, now);
            assert_eq!((member.ready, member.available, member.finished), want, "{name}");
        }
    }
}

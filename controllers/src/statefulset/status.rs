//! The status a set reports: counts of its members by state and revision, the current and update
//! revisions, and the collision count.

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};

use super::order::Member;
use super::update::Strategy;

/// The revisions in force for one sync.
pub struct Revisions<'a> {
    pub current: &'a str,
    pub update: &'a str,
    pub collision_count: i32,
}

/// Counts `members` (every pod of the set, wanted or condemned) into a status. A rolling update
/// whose every wanted member is updated and ready is complete: the update revision becomes current.
pub fn compute(set: &StatefulSet, members: &[Member], revisions: &Revisions<'_>) -> StatefulSetStatus {
    let spec = set.spec.clone().unwrap_or_default();
    let count = |pred: &dyn Fn(&Member) -> bool| i32::try_from(members.iter().filter(|m| pred(m)).count()).unwrap_or(i32::MAX);
    let replicas = count(&|_| true);
    let ready = count(&|m| m.ready);
    let mut current = count(&|m| !m.terminating && m.revision == revisions.current);
    let updated = count(&|m| !m.terminating && m.revision == revisions.update);
    let mut current_revision = revisions.current.to_string();
    let wanted = spec.replicas.unwrap_or(1);
    if matches!(Strategy::of(&spec), Strategy::RollingUpdate { .. }) && updated == wanted && ready == wanted && replicas == wanted {
        current = updated;
        current_revision = revisions.update.to_string();
    }
    StatefulSetStatus {
        observed_generation: set.metadata.generation,
        replicas,
        ready_replicas: Some(ready),
        available_replicas: Some(count(&|m| m.available)),
        current_replicas: Some(current),
        updated_replicas: Some(updated),
        current_revision: Some(current_revision),
        update_revision: Some(revisions.update.to_string()),
        collision_count: Some(revisions.collision_count),
        conditions: set.status.as_ref().and_then(|s| s.conditions.clone()),
    }
}

/// True if writing `new` would change the stored status.
pub fn differs(old: Option<&StatefulSetStatus>, new: &StatefulSetStatus) -> bool {
    old != Some(new)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{StatefulSetSpec, StatefulSetUpdateStrategy};

    use super::*;

    fn m(ordinal: i32, revision: &str, ready: bool, available: bool, terminating: bool) -> Member {
        Member { ordinal, name: format!("web-{ordinal}"), revision: revision.into(), terminating, finished: false, ready, available }
    }

    fn set(replicas: i32, on_delete: bool) -> StatefulSet {
        let mut s = StatefulSet {
            spec: Some(StatefulSetSpec {
                replicas: Some(replicas),
                update_strategy: on_delete.then(|| StatefulSetUpdateStrategy { type_: Some("OnDelete".into()), rolling_update: None }),
                ..Default::default()
            }),
            ..Default::default()
        };
        s.metadata.generation = Some(7);
        s
    }

    const REVS: Revisions<'static> = Revisions { current: "old", update: "new", collision_count: 0 };

    #[test]
    fn counts_members() {
        let members = [m(0, "old", true, true, false), m(1, "new", true, false, false), m(2, "new", false, false, true)];
        let status = compute(&set(3, false), &members, &REVS);
        assert_eq!(status.observed_generation, Some(7));
        assert_eq!(status.replicas, 3);
        assert_eq!((status.ready_replicas, status.available_replicas), (Some(2), Some(1)));
        assert_eq!((status.current_replicas, status.updated_replicas), (Some(1), Some(1)), "terminating members count for neither");
        assert_eq!((status.current_revision.as_deref(), status.update_revision.as_deref()), (Some("old"), Some("new")));
        assert_eq!(status.collision_count, Some(0));
    }

    #[test]
    fn rolling_update_completion() {
        let all_new = [m(0, "new", true, true, false), m(1, "new", true, true, false)];
        let cases = [
            ("all updated and ready completes", set(2, false), all_new.to_vec(), Some("new"), Some(2)),
            ("one still old", set(2, false), vec![m(0, "old", true, true, false), m(1, "new", true, true, false)], Some("old"), Some(1)),
            ("one not ready", set(2, false), vec![m(0, "new", true, true, false), m(1, "new", false, false, false)], Some("old"), Some(0)),
            ("scaling up is not complete", set(3, false), all_new.to_vec(), Some("old"), Some(0)),
            ("on delete never completes here", set(2, true), all_new.to_vec(), Some("old"), Some(0)),
        ];
        for (name, s, members, revision, current) in cases {
            let status = compute(&s, &members, &REVS);
            assert_eq!((status.current_revision.as_deref(), status.current_replicas), (revision, current), "{name}");
        }
    }

    #[test]
    fn differs_detects_changes() {
        let a = compute(&set(1, false), &[], &REVS);
        assert!(differs(None, &a));
        assert!(!differs(Some(&a), &a.clone()));
        assert!(differs(Some(&a), &StatefulSetStatus { replicas: 1, ..a.clone() }));
    }
}

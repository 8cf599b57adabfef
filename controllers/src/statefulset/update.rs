//! Update strategies: which revision a new pod is made at, and which outdated member a rolling
//! update replaces next.
//!
//! RollingUpdate replaces members whose revision differs from the update revision, from the
//! highest ordinal down to the partition, one at a time, waiting for each replacement to be
//! healthy (maxUnavailable is treated as 1). OnDelete replaces nothing: members a user deletes come
//! back at the update revision.

use k8s_openapi::api::apps::v1::StatefulSetSpec;

use super::order::Slot;

/// The set's update strategy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// Members at index `partition` (counted from the start ordinal) and above follow the update
    /// revision; those below stay at the current revision.
    RollingUpdate { partition: i32 },
    OnDelete,
}

impl Strategy {
    /// The strategy of `spec` (RollingUpdate with partition 0 unless said otherwise).
    pub fn of(spec: &StatefulSetSpec) -> Self {
        let strategy = spec.update_strategy.as_ref();
        match strategy.and_then(|s| s.type_.as_deref()) {
            Some("OnDelete") => Strategy::OnDelete,
            _ => {
                let partition = strategy.and_then(|s| s.rolling_update.as_ref()).and_then(|r| r.partition).unwrap_or(0);
                Strategy::RollingUpdate { partition: partition.max(0) }
            }
        }
    }
}

/// Which revision a new pod at `index` (its ordinal minus the start ordinal) is made at: below the
/// partition of a rolling update the current one, otherwise the update one.
pub fn revision_for_new_pod<'a>(strategy: &Strategy, index: i32, current: &'a str, update: &'a str) -> &'a str {
    match strategy {
        Strategy::RollingUpdate { partition } if index < *partition => current,
        _ => update,
    }
}

/// The member a rolling update deletes next, if any: the highest-ordinal outdated member at or
/// above the partition, provided every member above it is healthy.
pub fn next_replacement(slots: &[Slot], strategy: &Strategy, update_revision: &str) -> Option<String> {
    let Strategy::RollingUpdate { partition } = strategy else { return None };
    let from = usize::try_from(*partition).unwrap_or(0);
    for slot in slots.iter().skip(from).rev() {
        let member = slot.pod.as_ref()?;
        if member.revision != update_revision && !member.terminating {
            return Some(member.name.clone());
        }
        if !member.healthy() {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{RollingUpdateStatefulSetStrategy, StatefulSetUpdateStrategy};

    use super::*;
    use crate::statefulset::order::Member;

    fn slot(ordinal: i32, revision: &str, healthy: bool, terminating: bool) -> Slot {
        let member = Member {
            ordinal,
            name: format!("web-{ordinal}"),
            revision: revision.into(),
            terminating,
            finished: false,
            ready: healthy,
            available: healthy,
        };
        Slot { ordinal, pod: Some(member) }
    }

    #[test]
    fn strategy_from_spec() {
        let spec = |type_: Option<&str>, partition: Option<i32>| StatefulSetSpec {
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: type_.map(str::to_string),
                rolling_update: Some(RollingUpdateStatefulSetStrategy { partition, max_unavailable: None }),
            }),
            ..Default::default()
        };
        let cases = [
            ("default", StatefulSetSpec::default(), Strategy::RollingUpdate { partition: 0 }),
            ("rolling with partition", spec(Some("RollingUpdate"), Some(2)), Strategy::RollingUpdate { partition: 2 }),
            ("on delete", spec(Some("OnDelete"), None), Strategy::OnDelete),
        ];
        for (name, s, want) in cases {
            assert_eq!(Strategy::of(&s), want, "{name}");
        }
    }

    #[test]
    fn new_pod_revision() {
        let cases = [
            ("below partition keeps current", Strategy::RollingUpdate { partition: 2 }, 1, "cur"),
            ("at partition gets update", Strategy::RollingUpdate { partition: 2 }, 2, "upd"),
            ("no partition", Strategy::RollingUpdate { partition: 0 }, 0, "upd"),
            ("on delete gets update", Strategy::OnDelete, 0, "upd"),
        ];
        for (name, strategy, index, want) in cases {
            assert_eq!(revision_for_new_pod(&strategy, index, "cur", "upd"), want, "{name}");
        }
    }

    #[test]
    fn rolling_update_order() {
        let rolling = |partition| Strategy::RollingUpdate { partition };
        let cases = [
            ("highest outdated first", vec![slot(0, "old", true, false), slot(1, "old", true, false), slot(2, "old", true, false)], rolling(0), Some("web-2")),
            ("next one down once the highest is updated", vec![slot(0, "old", true, false), slot(1, "old", true, false), slot(2, "new", true, false)], rolling(0), Some("web-1")),
            ("wait for the replacement to be healthy", vec![slot(0, "old", true, false), slot(1, "old", true, false), slot(2, "new", false, false)], rolling(0), None),
            ("wait while the outdated one terminates", vec![slot(0, "old", true, false), slot(1, "old", false, true), slot(2, "new", true, false)], rolling(0), None),
            ("partition stops the update", vec![slot(0, "old", true, false), slot(1, "old", true, false), slot(2, "new", true, false)], rolling(2), None),
            ("partition 1 updates down to 1", vec![slot(0, "old", true, false), slot(1, "old", true, false), slot(2, "new", true, false)], rolling(1), Some("web-1")),
            ("partition above replicas", vec![slot(0, "old", true, false)], rolling(5), None),
            ("all updated", vec![slot(0, "new", true, false), slot(1, "new", true, false)], rolling(0), None),
            ("on delete never replaces", vec![slot(0, "old", true, false)], Strategy::OnDelete, None),
        ];
        for (name, slots, strategy, want) in cases {
            assert_eq!(next_replacement(&slots, &strategy, "new").as_deref(), want, "{name}");
        }
        let with_hole = vec![slot(0, "old", true, false), Slot { ordinal: 1, pod: None }];
        assert_eq!(next_replacement(&with_hole, &rolling(0), "new"), None, "a missing member blocks");
    }
}

//! Which taints a node should carry for its conditions, and the edits that get it there.
//!
//! The controller owns two families of taints: `NoSchedule` taints mirroring conditions (upstream's
//! TaintNodesByCondition) and the two `NoExecute` taints that drive eviction. Every other taint on the
//! node belongs to someone else and is kept as it is.

use k8s_openapi::api::core::v1::{Node, NodeCondition, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
pub const MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
pub const DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
pub const PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
pub const NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";

pub const NO_SCHEDULE: &str = "NoSchedule";
pub const NO_EXECUTE: &str = "NoExecute";

/// (condition type, condition status, taint key): a condition in that status earns the taint.
const CONDITION_TAINTS: &[(&str, &str, &str)] = &[
    ("Ready", "False", NOT_READY),
    ("Ready", "Unknown", UNREACHABLE),
    ("MemoryPressure", "True", MEMORY_PRESSURE),
    ("DiskPressure", "True", DISK_PRESSURE),
    ("NetworkUnavailable", "True", NETWORK_UNAVAILABLE),
    ("PIDPressure", "True", PID_PRESSURE),
];

/// The status of the node's condition of this type, if it has one.
pub fn condition<'a>(node: &'a Node, type_: &str) -> Option<&'a NodeCondition> {
    node.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

/// The status of the node's Ready condition (`True`, `False`, `Unknown`), if it has one.
pub fn ready_status(node: &Node) -> Option<&str> {
    condition(node, "Ready").map(|c| c.status.as_str())
}

fn taints_of(node: &Node) -> &[Taint] {
    node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or_default()
}

/// The node carries a taint with this key and effect.
pub fn has(node: &Node, key: &str, effect: &str) -> bool {
    taints_of(node).iter().any(|t| t.key == key && t.effect == effect)
}

/// The node's `NoExecute` taints (whoever set them): what its pods must tolerate to stay.
pub fn no_execute(node: &Node) -> Vec<Taint> {
    taints_of(node).iter().filter(|t| t.effect == NO_EXECUTE).cloned().collect()
}

/// The keys of the `NoSchedule` taints the node's conditions and `spec.unschedulable` call for.
pub fn wanted_no_schedule(node: &Node) -> Vec<&'static str> {
    let mut keys: Vec<&'static str> = CONDITION_TAINTS
        .iter()
        .filter(|(type_, status, _)| condition(node, type_).is_some_and(|c| c.status == *status))
        .map(|(_, _, key)| *key)
        .collect();
    if node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false) {
        keys.push(UNSCHEDULABLE);
    }
    keys
}

/// A `NoSchedule` taint this controller manages (so may add or remove).
fn is_managed_no_schedule(taint: &Taint) -> bool {
    taint.effect == NO_SCHEDULE && (taint.key == UNSCHEDULABLE || CONDITION_TAINTS.iter().any(|(_, _, key)| *key == taint.key))
}

fn taint(key: &str, effect: &str, now: Timestamp) -> Taint {
    Taint { key: key.to_string(), effect: effect.to_string(), value: None, time_added: Some(Time(now)) }
}

/// The node's taints with the managed `NoSchedule` set replaced by `wanted`, or `None` when they
/// already match. Taints that stay keep their `timeAdded`; new ones are stamped `now`.
pub fn with_no_schedule(node: &Node, wanted: &[&str], now: Timestamp) -> Option<Vec<Taint>> {
    let current = taints_of(node);
    let stale = current.iter().any(|t| is_managed_no_schedule(t) && !wanted.contains(&t.key.as_str()));
    let missing: Vec<&str> = wanted.iter().copied().filter(|key| !has(node, key, NO_SCHEDULE)).collect();
    if !stale && missing.is_empty() {
        return None;
    }
    let mut next: Vec<Taint> = current
        .iter()
        .filter(|t| !is_managed_no_schedule(t) || wanted.contains(&t.key.as_str()))
        .cloned()
        .collect();
    next.extend(missing.into_iter().map(|key| taint(key, NO_SCHEDULE, now)));
    Some(next)
}

/// The node's taints with exactly `wanted` (one of [`NOT_READY`], [`UNREACHABLE`], or neither) as
/// the eviction `NoExecute` taint — so a swap from one to the other is a single write — or `None`
/// when they already match.
pub fn with_eviction_taint(node: &Node, wanted: Option<&str>, now: Timestamp) -> Option<Vec<Taint>> {
    let current = taints_of(node);
    let is_eviction = |t: &Taint| t.effect == NO_EXECUTE && (t.key == NOT_READY || t.key == UNREACHABLE);
    let stale = current.iter().any(|t| is_eviction(t) && Some(t.key.as_str()) != wanted);
    let missing = wanted.filter(|key| !has(node, key, NO_EXECUTE));
    if !stale && missing.is_none() {
        return None;
    }
    let mut next: Vec<Taint> = current.iter().filter(|t| !is_eviction(t) || Some(t.key.as_str()) == wanted).cloned().collect();
    next.extend(missing.map(|key| taint(key, NO_EXECUTE, now)));
    Some(next)
}

/// The node's taints with the eviction taint its Ready status calls for (none when Ready), or
/// `None` when they already match or the node has no Ready condition to judge by.
pub fn with_eviction_taint_for_readiness(node: &Node, now: Timestamp) -> Option<Vec<Taint>> {
    let ready = ready_status(node)?;
    with_eviction_taint(node, eviction_taint_for(Some(ready)), now)
}

/// The eviction taint a node with this Ready status should get, if any.
pub fn eviction_taint_for(ready: Option<&str>) -> Option<&'static str> {
    match ready {
        Some("False") => Some(NOT_READY),
        Some("Unknown") => Some(UNREACHABLE),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeSpec, NodeStatus};

    pub fn node(conditions: &[(&str, &str)], taints: &[(&str, &str)], unschedulable: bool) -> Node {
        Node {
            spec: Some(NodeSpec {
                taints: Some(taints.iter().map(|(k, e)| taint(k, e, Timestamp::UNIX_EPOCH)).collect()),
                unschedulable: Some(unschedulable),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                conditions: Some(
                    conditions
                        .iter()
                        .map(|(t, s)| NodeCondition { type_: t.to_string(), status: s.to_string(), ..Default::default() })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn keys(taints: &[Taint]) -> Vec<String> {
        let mut keys: Vec<String> = taints.iter().map(|t| format!("{}:{}", t.key, t.effect)).collect();
        keys.sort();
        keys
    }

    #[test]
    fn no_schedule_taints_follow_conditions() {
        let cases: [(&str, Node, Vec<&str>); 7] = [
            ("ready node", node(&[("Ready", "True"), ("MemoryPressure", "False")], &[], false), vec![]),
            ("not ready", node(&[("Ready", "False")], &[], false), vec![NOT_READY]),
            ("unknown", node(&[("Ready", "Unknown")], &[], false), vec![UNREACHABLE]),
            ("no conditions at all", node(&[], &[], false), vec![]),
            ("cordoned", node(&[("Ready", "True")], &[], true), vec![UNSCHEDULABLE]),
            (
                "pressures",
                node(&[("Ready", "True"), ("MemoryPressure", "True"), ("DiskPressure", "True"), ("PIDPressure", "True")], &[], false),
                vec![MEMORY_PRESSURE, DISK_PRESSURE, PID_PRESSURE],
            ),
            ("network", node(&[("Ready", "True"), ("NetworkUnavailable", "True")], &[], false), vec![NETWORK_UNAVAILABLE]),
        ];
        for (name, node, want) in cases {
            assert_eq!(wanted_no_schedule(&node), want, "{name}");
        }
    }

    #[test]
    fn no_schedule_edits() {
        let now = Timestamp::UNIX_EPOCH;
        // (name, node, expected taints after the edit, or None for "no write")
        let cases: [(&str, Node, Option<Vec<&str>>); 5] = [
            ("admission taint removed once ready", node(&[("Ready", "True")], &[(NOT_READY, NO_SCHEDULE)], false), Some(vec![])),
            ("already right", node(&[("Ready", "False")], &[(NOT_READY, NO_SCHEDULE)], false), None),
            (
                "swap not-ready for unreachable",
                node(&[("Ready", "Unknown")], &[(NOT_READY, NO_SCHEDULE)], false),
                Some(vec!["node.kubernetes.io/unreachable:NoSchedule"]),
            ),
            (
                "foreign and NoExecute taints kept",
                node(&[("Ready", "True")], &[("example.com/gpu", NO_SCHEDULE), (NOT_READY, NO_EXECUTE), (NOT_READY, NO_SCHEDULE)], false),
                Some(vec!["example.com/gpu:NoSchedule", "node.kubernetes.io/not-ready:NoExecute"]),
            ),
            ("uncordoned", node(&[("Ready", "True")], &[(UNSCHEDULABLE, NO_SCHEDULE)], false), Some(vec![])),
        ];
        for (name, node, want) in cases {
            let got = with_no_schedule(&node, &wanted_no_schedule(&node), now).map(|t| keys(&t));
            let want = want.map(|v| v.into_iter().map(String::from).collect::<Vec<_>>());
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn eviction_taint_edits() {
        let now = Timestamp::UNIX_EPOCH;
        // (name, node, the eviction taint wanted, expected taints after the edit or None for "no write")
        type Case = (&'static str, Node, Option<&'static str>, Option<Vec<&'static str>>);
        let cases: [Case; 5] = [
            ("taint a not-ready node", node(&[], &[], false), Some(NOT_READY), Some(vec!["node.kubernetes.io/not-ready:NoExecute"])),
            (
                "swap in one write",
                node(&[], &[(NOT_READY, NO_EXECUTE), ("x", NO_SCHEDULE)], false),
                Some(UNREACHABLE),
                Some(vec!["node.kubernetes.io/unreachable:NoExecute", "x:NoSchedule"]),
            ),
            ("ready again", node(&[], &[(UNREACHABLE, NO_EXECUTE), (UNREACHABLE, NO_SCHEDULE)], false), None, Some(vec!["node.kubernetes.io/unreachable:NoSchedule"])),
            ("already tainted", node(&[], &[(UNREACHABLE, NO_EXECUTE)], false), Some(UNREACHABLE), None),
            ("nothing to remove", node(&[], &[("other", NO_EXECUTE)], false), None, None),
        ];
        for (name, node, wanted, want) in cases {
            let got = with_eviction_taint(&node, wanted, now).map(|t| keys(&t));
            let want = want.map(|v| v.into_iter().map(String::from).collect::<Vec<_>>());
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn kept_taints_keep_their_time() {
        let later = Timestamp::from_second(1000).unwrap_or(Timestamp::UNIX_EPOCH);
        let n = node(&[("Ready", "Unknown")], &[(UNREACHABLE, NO_EXECUTE)], false);
        let next = with_no_schedule(&n, &[UNREACHABLE], later).unwrap_or_default();
        let kept = next.iter().find(|t| t.effect == NO_EXECUTE).and_then(|t| t.time_added.clone());
        let added = next.iter().find(|t| t.effect == NO_SCHEDULE).and_then(|t| t.time_added.clone());
        assert_eq!(kept, Some(Time(Timestamp::UNIX_EPOCH)));
        assert_eq!(added, Some(Time(later)));
    }
}

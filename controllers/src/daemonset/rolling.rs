//! RollingUpdate: which out-of-date daemon pods to delete now (their nodes then get a pod of the
//! new revision), keeping at most `maxUnavailable` nodes without an available daemon pod.
//!
//! Only the delete-then-create flavour (`maxSurge: 0`) is implemented; a surge is treated as 0.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::DaemonSetSpec;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use super::pods;

/// True if the set rolls its pods itself (the default) rather than waiting for them to be deleted.
pub fn is_rolling(spec: &DaemonSetSpec) -> bool {
    spec.update_strategy.as_ref().and_then(|s| s.type_.as_deref()).is_none_or(|t| t != "OnDelete")
}

/// `maxUnavailable` as a node count: a percentage of `desired`, rounded up. At least 1, since
/// without a surge nothing could move otherwise (upstream does the same).
pub fn max_unavailable(spec: &DaemonSetSpec, desired: i32) -> usize {
    let value = spec.update_strategy.as_ref().and_then(|s| s.rolling_update.as_ref()).and_then(|r| r.max_unavailable.clone());
    let count = match value {
        None => 1,
        Some(IntOrString::Int(n)) => i64::from(n),
        Some(IntOrString::String(s)) => match s.strip_suffix('%').and_then(|p| p.trim().parse::<i64>().ok()) {
            Some(percent) => (i64::from(desired) * percent + 99) / 100,
            // The apiserver validates the field; an unreadable value falls back to the default.
            None => 1,
        },
    };
    usize::try_from(count).unwrap_or(0).max(1)
}

/// What the round is measured against.
pub struct Round<'a> {
    /// Daemon pods by node (see `plan::by_node`).
    pub by_node: &'a BTreeMap<String, Vec<Arc<Pod>>>,
    /// Nodes that should run the daemon.
    pub should_run: &'a [&'a str],
    pub hash: &'a str,
    pub generation: Option<i64>,
    pub min_ready: i32,
    pub now: Timestamp,
    pub max_unavailable: usize,
}

/// The old pods to delete this round. A node counts as unavailable if its daemon pod is missing,
/// not yet available, or being replaced (an old and a new pod, or several of either); old pods
/// that are unavailable anyway are always replaced, available ones only while fewer than
/// `max_unavailable` nodes are unavailable. Nodes are visited by name so rounds are repeatable.
pub fn pods_to_replace(round: &Round<'_>) -> Vec<Arc<Pod>> {
    let Round { by_node, hash, generation, min_ready, now, max_unavailable, .. } = *round;
    let mut unavailable = round.should_run.iter().filter(|n| by_node.get(**n).is_none_or(Vec::is_empty)).count();
    let mut doomed = Vec::new();
    let mut candidates = Vec::new();
    for (node, on_node) in by_node {
        if node.is_empty() {
            continue;
        }
        let live: Vec<&Arc<Pod>> = on_node.iter().filter(|p| !pods::is_deleting(p)).collect();
        let (new, old): (Vec<&Arc<Pod>>, Vec<&Arc<Pod>>) = live.into_iter().partition(|p| pods::is_updated(p, hash, generation));
        match (new.as_slice(), old.as_slice()) {
            ([new], []) => {
                if !pods::is_available(new, min_ready, now) {
                    unavailable += 1;
                }
            }
            ([], [old]) => {
                if pods::is_available(old, min_ready, now) {
                    candidates.push((*old).clone());
                } else {
                    doomed.push((*old).clone());
                }
            }
            // Nothing live, or several pods: the per-node plan settles it first.
            _ => unavailable += 1,
        }
    }
    let room = max_unavailable.saturating_sub(unavailable).min(candidates.len());
    doomed.extend(candidates.into_iter().take(room));
    doomed
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{DaemonSetUpdateStrategy, RollingUpdateDaemonSet};
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    use super::*;

    fn spec(strategy: Option<&str>, max: Option<IntOrString>) -> DaemonSetSpec {
        DaemonSetSpec {
            update_strategy: Some(DaemonSetUpdateStrategy {
                type_: strategy.map(str::to_string),
                rolling_update: Some(RollingUpdateDaemonSet { max_unavailable: max, max_surge: None }),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn max_unavailable_cases() {
        let cases = [
            ("default", None, 10, 1),
            ("int", Some(IntOrString::Int(3)), 10, 3),
            ("zero means one", Some(IntOrString::Int(0)), 10, 1),
            ("percent rounds up", Some(IntOrString::String("25%".into())), 10, 3),
            ("percent of nothing", Some(IntOrString::String("50%".into())), 0, 1),
            ("garbage", Some(IntOrString::String("lots".into())), 10, 1),
        ];
        for (name, max, desired, want) in cases {
            assert_eq!(max_unavailable(&spec(None, max), desired), want, "{name}");
        }
        assert!(is_rolling(&DaemonSetSpec::default()), "default strategy rolls");
        assert!(!is_rolling(&spec(Some("OnDelete"), None)));
        assert!(is_rolling(&spec(Some("RollingUpdate"), None)));
    }

    /// A pod on its node: `hash` is its revision; `ready` whether it is available.
    fn pod(name: &str, hash: &str, ready: bool, deleting: bool) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some([(pods::REVISION_HASH_LABEL.to_string(), hash.to_string())].into()),
                deletion_timestamp: deleting.then_some(Time(Timestamp::UNIX_EPOCH)),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition { type_: "Ready".into(), status: if ready { "True" } else { "False" }.into(), ..Default::default() }]),
                ..Default::default()
            }),
        })
    }

    #[test]
    fn batches() {
        let nodes = |pods: Vec<Vec<Arc<Pod>>>| -> BTreeMap<String, Vec<Arc<Pod>>> { pods.into_iter().enumerate().map(|(i, p)| (format!("n{i}"), p)).collect() };
        /// (name, nodes, maxUnavailable, pods deleted)
        type Case = (&'static str, BTreeMap<String, Vec<Arc<Pod>>>, usize, Vec<&'static str>);
        let cases: Vec<Case> = vec![
            ("all old, one at a time", nodes(vec![vec![pod("a", "old", true, false)], vec![pod("b", "old", true, false)], vec![pod("c", "old", true, false)]]), 1, vec!["a"]),
            ("all old, two at a time", nodes(vec![vec![pod("a", "old", true, false)], vec![pod("b", "old", true, false)], vec![pod("c", "old", true, false)]]), 2, vec!["a", "b"]),
            ("a new pod not ready yet blocks", nodes(vec![vec![pod("a", "new", false, false)], vec![pod("b", "old", true, false)]]), 1, vec![]),
            ("a terminating old pod blocks", nodes(vec![vec![pod("a", "old", true, true)], vec![pod("b", "old", true, false)]]), 1, vec![]),
            ("new ready pod frees the budget", nodes(vec![vec![pod("a", "new", true, false)], vec![pod("b", "old", true, false)]]), 1, vec!["b"]),
            ("unavailable old pods go regardless", nodes(vec![vec![pod("a", "new", false, false)], vec![pod("b", "old", false, false)], vec![pod("c", "old", true, false)]]), 1, vec!["b"]),
            ("up to date: nothing", nodes(vec![vec![pod("a", "new", true, false)], vec![pod("b", "new", true, false)]]), 1, vec![]),
            ("a node that should run but has no pod blocks", nodes(vec![vec![], vec![pod("b", "old", true, false)]]), 1, vec![]),
            ("a node with two pods counts as unavailable", nodes(vec![vec![pod("a", "new", true, false), pod("x", "old", true, false)], vec![pod("b", "old", true, false)]]), 1, vec![]),
        ];
        for (name, by_node, max, want) in cases {
            let round = Round { by_node: &by_node, should_run: &["n0"], hash: "new", generation: None, min_ready: 0, now: Timestamp::UNIX_EPOCH, max_unavailable: max };
            let got = pods_to_replace(&round);
            let got: Vec<&str> = got.iter().filter_map(|p| p.metadata.name.as_deref()).collect();
            assert_eq!(got, want, "{name}");
        }
    }
}

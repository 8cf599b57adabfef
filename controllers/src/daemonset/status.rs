//! The status a DaemonSet reports: how many nodes should run its pod, do, are ready, available
//! and up to date, and how many run it but should not.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::DaemonSetStatus;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use super::eligibility::Eligibility;
use super::pods;

/// What the counts are measured against.
pub struct Inputs<'a> {
    /// Every node and whether it should run the daemon.
    pub nodes: &'a [(String, Eligibility)],
    /// The daemon pods by node (see `plan::by_node`).
    pub by_node: &'a BTreeMap<String, Vec<Arc<Pod>>>,
    pub hash: &'a str,
    pub generation: Option<i64>,
    pub min_ready_seconds: i32,
    pub now: Timestamp,
    pub observed_generation: Option<i64>,
    pub collision_count: i32,
    /// Conditions are kept as they are; this controller sets none.
    pub conditions: Option<Vec<k8s_openapi::api::apps::v1::DaemonSetCondition>>,
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Counts, like upstream, the oldest daemon pod of each node that should run one, and nodes
/// that have a daemon pod but should not.
pub fn compute(inputs: &Inputs<'_>) -> DaemonSetStatus {
    let (mut desired, mut scheduled, mut misscheduled, mut ready, mut available, mut updated) = (0, 0, 0, 0, 0, 0);
    for (node, eligibility) in inputs.nodes {
        let on_node = inputs.by_node.get(node).filter(|p| !p.is_empty());
        if !eligibility.should_run {
            misscheduled += usize::from(on_node.is_some());
            continue;
        }
        desired += 1;
        let Some(on_node) = on_node else { continue };
        scheduled += 1;
        let mut sorted: Vec<&Arc<Pod>> = on_node.iter().collect();
        sorted.sort_by(|a, b| pods::oldest_first(a, b));
        let Some(pod) = sorted.first() else { continue };
        if pods::is_ready(pod) {
            ready += 1;
            available += usize::from(pods::is_available(pod, inputs.min_ready_seconds, inputs.now));
        }
        updated += usize::from(pods::is_updated(pod, inputs.hash, inputs.generation));
    }
    DaemonSetStatus {
        collision_count: (inputs.collision_count > 0).then_some(inputs.collision_count),
        conditions: inputs.conditions.clone(),
        current_number_scheduled: count(scheduled),
        desired_number_scheduled: count(desired),
        number_available: Some(count(available)),
        number_misscheduled: count(misscheduled),
        number_ready: count(ready),
        number_unavailable: Some(count(desired.saturating_sub(available))),
        observed_generation: inputs.observed_generation,
        updated_number_scheduled: Some(count(updated)),
    }
}

/// True if writing `new` would change what `old` says (absent counts read as 0).
pub fn differs(old: Option<&DaemonSetStatus>, new: &DaemonSetStatus) -> bool {
    let normal = |s: &DaemonSetStatus| DaemonSetStatus {
        collision_count: s.collision_count.filter(|c| *c != 0),
        number_available: Some(s.number_available.unwrap_or(0)),
        number_unavailable: Some(s.number_unavailable.unwrap_or(0)),
        updated_number_scheduled: Some(s.updated_number_scheduled.unwrap_or(0)),
        ..s.clone()
    };
    old.is_none_or(|old| normal(old) != normal(new))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn pod(hash: &str, ready: bool) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta { labels: Some([(pods::REVISION_HASH_LABEL.to_string(), hash.to_string())].into()), ..Default::default() },
            spec: None,
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition { type_: "Ready".into(), status: if ready { "True" } else { "False" }.into(), ..Default::default() }]),
                ..Default::default()
            }),
        })
    }

    #[test]
    fn counts() {
        let run = Eligibility { should_run: true, should_continue_running: true };
        let out = Eligibility::default();
        let nodes: Vec<(String, Eligibility)> = [("n1", run), ("n2", run), ("n3", run), ("n4", out), ("n5", out)].into_iter().map(|(n, e)| (n.to_string(), e)).collect();
        let by_node: BTreeMap<String, Vec<Arc<Pod>>> = [
            ("n1", vec![pod("new", true)]),
            ("n2", vec![pod("old", false)]),
            // n3 has none; n4 has one it should not; n5 has none and should not.
            ("n4", vec![pod("new", true)]),
            ("gone-node", vec![pod("new", true)]),
        ]
        .into_iter()
        .map(|(n, p)| (n.to_string(), p))
        .collect();
        let inputs = Inputs {
            nodes: &nodes,
            by_node: &by_node,
            hash: "new",
            generation: None,
            min_ready_seconds: 0,
            now: Timestamp::UNIX_EPOCH,
            observed_generation: Some(4),
            collision_count: 0,
            conditions: None,
        };
        let s = compute(&inputs);
        let cases = [
            ("desired", s.desired_number_scheduled, 3),
            ("current", s.current_number_scheduled, 2),
            ("misscheduled", s.number_misscheduled, 1),
            ("ready", s.number_ready, 1),
            ("available", s.number_available.unwrap_or(-1), 1),
            ("unavailable", s.number_unavailable.unwrap_or(-1), 2),
            ("updated", s.updated_number_scheduled.unwrap_or(-1), 1),
        ];
        for (name, got, want) in cases {
            assert_eq!(got, want, "{name}");
        }
        assert_eq!(s.observed_generation, Some(4));
        assert!(!differs(Some(&s), &s));
        assert!(differs(None, &s));
        assert!(differs(Some(&DaemonSetStatus { number_ready: 7, ..s.clone() }), &s));
        assert!(!differs(Some(&DaemonSetStatus { collision_count: Some(0), ..s.clone() }), &s), "zero collisions read as none");
    }
}

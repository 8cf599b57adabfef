//! Which surplus pods go first when a replica set scales down, after upstream's ordering: the pods
//! that cost least to lose (not yet scheduled, not yet running, not ready, crowded onto a node,
//! restarting, young) are deleted first.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use super::pods;

/// The facts the ordering looks at, one per pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rank {
    pub scheduled: bool,
    /// Pending 0, Unknown 1, Running 2.
    pub phase: u8,
    pub ready: bool,
    /// Active pods of the same replica set on the same node, this one included.
    pub colocated: usize,
    pub ready_since: Option<Timestamp>,
    pub restarts: i32,
    pub created: Option<Timestamp>,
}

impl Rank {
    fn of(pod: &Pod, colocated: usize) -> Self {
        let status = pod.status.as_ref();
        let phase = match status.and_then(|s| s.phase.as_deref()) {
            Some("Pending") | None => 0,
            Some("Running") => 2,
            _ => 1,
        };
        let restarts =
            status.and_then(|s| s.container_statuses.as_ref()).into_iter().flatten().map(|c| c.restart_count).max().unwrap_or(0);
        Self {
            scheduled: pod.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some_and(|n| !n.is_empty()),
            phase,
            ready: pods::is_ready(pod),
            colocated,
            ready_since: pods::ready_since(pod).flatten(),
            restarts,
            created: pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
        }
    }
}

/// `Less` when `a` should be deleted before `b`.
pub fn deletion_order(a: &Rank, b: &Rank) -> Ordering {
    a.scheduled
        .cmp(&b.scheduled)
        .then(a.phase.cmp(&b.phase))
        .then(a.ready.cmp(&b.ready))
        .then(b.colocated.cmp(&a.colocated))
        // Both ready: the one ready for less time goes first (a later timestamp sorts first).
        .then_with(|| if a.ready && b.ready { b.ready_since.cmp(&a.ready_since) } else { Ordering::Equal })
        .then(b.restarts.cmp(&a.restarts))
        .then(b.created.cmp(&a.created))
}

/// The `count` pods to delete out of `candidates`.
pub fn pods_to_delete(candidates: &[Arc<Pod>], count: usize) -> Vec<Arc<Pod>> {
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    for pod in candidates {
        if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            *per_node.entry(node).or_default() += 1;
        }
    }
    let mut ranked: Vec<(Rank, &Arc<Pod>)> = candidates
        .iter()
        .map(|pod| {
            let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
            let colocated = node.and_then(|n| per_node.get(n)).copied().unwrap_or(0);
            (Rank::of(pod, colocated), pod)
        })
        .collect();
    ranked.sort_by(|(a, _), (b, _)| deletion_order(a, b));
    ranked.into_iter().take(count).map(|(_, pod)| pod.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> Option<Timestamp> {
        Timestamp::from_second(s).ok()
    }

    fn base() -> Rank {
        Rank { scheduled: true, phase: 2, ready: true, colocated: 1, ready_since: ts(100), restarts: 0, created: ts(50) }
    }

    #[test]
    fn first_to_delete() {
        let cases = [
            ("unscheduled before scheduled", Rank { scheduled: false, ..base() }, base()),
            ("pending before running", Rank { phase: 0, ..base() }, base()),
            ("unknown before running", Rank { phase: 1, ..base() }, base()),
            ("not ready before ready", Rank { ready: false, ready_since: None, ..base() }, base()),
            ("crowded node first", Rank { colocated: 3, ..base() }, base()),
            ("ready more recently first", Rank { ready_since: ts(200), ..base() }, base()),
            ("more restarts first", Rank { restarts: 5, ..base() }, base()),
            ("newer first", Rank { created: ts(60), ..base() }, base()),
        ];
        for (name, first, second) in cases {
            assert_eq!(deletion_order(&first, &second), Ordering::Less, "{name}");
            assert_eq!(deletion_order(&second, &first), Ordering::Greater, "{name} (reversed)");
        }
    }

    #[test]
    fn picks_the_requested_number() {
        let mut young = Pod::default();
        young.metadata.name = Some("young".into());
        young.metadata.creation_timestamp = ts(10).map(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time);
        let mut old = Pod::default();
        old.metadata.name = Some("old".into());
        old.metadata.creation_timestamp = ts(1).map(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time);
        let picked = pods_to_delete(&[Arc::new(old), Arc::new(young)], 1);
        assert_eq!(picked.len(), 1);
        assert_eq!(picked[0].metadata.name.as_deref(), Some("young"));
    }
}

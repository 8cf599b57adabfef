//! What one node needs: a daemon pod created, surplus or misplaced pods deleted, failed pods
//! replaced. Pure: the sync applies it (with back-off for failed pods).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use super::eligibility::Eligibility;
use super::pods;

/// The writes one node needs.
#[derive(Debug, Default, PartialEq)]
pub struct NodePlan {
    /// The node should run a daemon pod and has none (not even a terminating one).
    pub create: bool,
    /// Pods to delete: extra ones (all but the oldest), finished ones, or all if the node may not
    /// keep them.
    pub delete: Vec<Arc<Pod>>,
    /// Failed pods: deleted (and so replaced) unless the node is backing off.
    pub failed: Vec<Arc<Pod>>,
}

/// Plans one node given whether it should run the daemon and the daemon pods meant for it
/// (terminating ones included: while one is going, nothing is created in its place).
pub fn for_node(eligibility: Eligibility, on_node: &[Arc<Pod>]) -> NodePlan {
    let mut plan = NodePlan::default();
    if eligibility.should_run && on_node.is_empty() {
        plan.create = true;
    } else if eligibility.should_continue_running {
        let mut running: Vec<&Arc<Pod>> = Vec::new();
        for pod in on_node.iter().filter(|p| !pods::is_deleting(p)) {
            match pods::phase(pod) {
                "Failed" => plan.failed.push(pod.clone()),
                "Succeeded" => plan.delete.push(pod.clone()),
                _ => running.push(pod),
            }
        }
        running.sort_by(|a, b| pods::oldest_first(a, b));
        plan.delete.extend(running.into_iter().skip(1).cloned());
    } else {
        plan.delete.extend(on_node.iter().filter(|p| !pods::is_deleting(p)).cloned());
    }
    plan
}

/// Daemon pods by the node they are meant for; pods meant for no node are under the empty name.
/// Pods both terminating and finished are left out: they hold nothing on the node any more.
pub fn by_node(daemon_pods: &[Arc<Pod>]) -> BTreeMap<String, Vec<Arc<Pod>>> {
    let mut map: BTreeMap<String, Vec<Arc<Pod>>> = BTreeMap::new();
    for pod in daemon_pods {
        if pods::is_deleting(pod) && matches!(pods::phase(pod), "Failed" | "Succeeded") {
            continue;
        }
        map.entry(pods::target_node(pod).unwrap_or_default()).or_default().push(pod.clone());
    }
    map
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn pod(name: &str, created: i64, phase: &str, deleting: bool) -> Arc<Pod> {
        let at = |s| Time(Timestamp::from_second(s).unwrap_or(Timestamp::UNIX_EPOCH));
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(at(created)),
                deletion_timestamp: deleting.then(|| at(created + 100)),
                ..Default::default()
            },
            spec: Some(PodSpec { node_name: Some("n1".into()), ..Default::default() }),
            status: Some(PodStatus { phase: Some(phase.into()), ..Default::default() }),
        })
    }

    fn names(pods: &[Arc<Pod>]) -> Vec<&str> {
        pods.iter().filter_map(|p| p.metadata.name.as_deref()).collect()
    }

    #[test]
    fn node_plans() {
        let run = Eligibility { should_run: true, should_continue_running: true };
        let keep = Eligibility { should_run: false, should_continue_running: true };
        let out = Eligibility::default();
        /// (name, eligibility, pods, create, delete, failed)
        type Case = (&'static str, Eligibility, Vec<Arc<Pod>>, bool, Vec<&'static str>, Vec<&'static str>);
        let cases: Vec<Case> = vec![
            ("missing pod is created", run, vec![], true, vec![], vec![]),
            ("one running pod is left alone", run, vec![pod("a", 1, "Running", false)], false, vec![], vec![]),
            ("extra pods: oldest stays", run, vec![pod("b", 2, "Running", false), pod("a", 1, "Pending", false), pod("c", 3, "Running", false)], false, vec!["b", "c"], vec![]),
            ("terminating pod blocks a new one", run, vec![pod("a", 1, "Running", true)], false, vec![], vec![]),
            ("failed pod is replaced", run, vec![pod("a", 1, "Failed", false)], false, vec![], vec!["a"]),
            ("succeeded pod is deleted", run, vec![pod("a", 1, "Succeeded", false)], false, vec!["a"], vec![]),
            ("no longer eligible: all go", out, vec![pod("a", 1, "Running", false), pod("b", 2, "Running", true)], false, vec!["a"], vec![]),
            ("ineligible and empty: nothing", out, vec![], false, vec![], vec![]),
            ("NoSchedule taint: kept, not created", keep, vec![pod("a", 1, "Running", false)], false, vec![], vec![]),
            ("NoSchedule taint, empty: not created", keep, vec![], false, vec![], vec![]),
        ];
        for (name, eligibility, pods, create, delete, failed) in cases {
            let plan = for_node(eligibility, &pods);
            assert_eq!(plan.create, create, "{name}: create");
            assert_eq!(names(&plan.delete), delete, "{name}: delete");
            assert_eq!(names(&plan.failed), failed, "{name}: failed");
        }
    }

    #[test]
    fn by_node_drops_finished_terminating_pods() {
        let mut unpinned = (*pod("x", 1, "Pending", false)).clone();
        unpinned.spec = None;
        let map = by_node(&[pod("a", 1, "Running", false), pod("b", 1, "Failed", true), Arc::new(unpinned)]);
        assert_eq!(map.get("n1").map(|p| names(p)), Some(vec!["a"]));
        assert_eq!(map.get("").map(|p| names(p)), Some(vec!["x"]));
    }
}

//! DefaultPreemption as a PostFilter that reports what preemption would find, worded like upstream, but
//! evicts nothing yet. A node is a candidate only if its filter failure was `Unschedulable` (not
//! unresolvable), it runs pods of lower priority, and the pod fits once they are all gone.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::framework::node_info::pod_priority;
use crate::framework::registry::{Handle, Result};
use crate::framework::{
    Code, CycleState, FilterRunner, FitError, NodeToStatus, Plugin, PostFilterPlugin, Snapshot, Status,
};

pub const NAME: &str = "DefaultPreemption";
pub const MSG_PREFIX: &str = "preemption: ";
pub const ERR_REASON_NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
pub const ERR_REASON_NO_VICTIMS: &str = "No preemption victims found for incoming pod";
pub const ERR_REASON_POLICY_NEVER: &str = "not eligible due to preemptionPolicy=Never.";
/// Said when evicting lower-priority pods would make room; rudder does not evict yet.
pub const ERR_REASON_NOT_IMPLEMENTED: &str = "preemption of lower-priority pods is not supported by this scheduler yet";

pub struct DefaultPreemption;

pub fn new(_: &Handle) -> Result<Arc<dyn Plugin>> {
    Ok(Arc::new(DefaultPreemption))
}

impl Plugin for DefaultPreemption {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_post_filter(&self) -> Option<&dyn PostFilterPlugin> {
        Some(self)
    }
}

impl PostFilterPlugin for DefaultPreemption {
    fn post_filter(
        &self,
        state: &CycleState,
        pod: &Pod,
        snapshot: &Snapshot,
        statuses: &NodeToStatus,
        filters: &dyn FilterRunner,
    ) -> Status {
        if pod.spec.as_ref().and_then(|s| s.preemption_policy.as_deref()) == Some("Never") {
            return Status::unschedulable(format!("{MSG_PREFIX}{ERR_REASON_POLICY_NEVER}"));
        }
        let priority = pod_priority(pod);
        let mut dry_run = NodeToStatus::new(Status::unresolvable(ERR_REASON_NOT_HELPFUL));
        let mut candidates = 0;
        for node in snapshot.nodes() {
            if statuses.get(node.name()).code() != Code::Unschedulable {
                continue;
            }
            let victims: Vec<String> =
                node.pods().iter().filter(|p| pod_priority(&p.pod) < priority).map(|p| p.key()).collect();
            if victims.is_empty() {
                dry_run.set(node.name(), Status::unresolvable(ERR_REASON_NO_VICTIMS));
                continue;
            }
            let mut without = node.clone();
            for v in &victims {
                without.remove_pod(v);
            }
            let s = filters.run_filters(state, pod, &without);
            if s.is_success() {
                candidates += 1;
            } else {
                dry_run.set(node.name(), s);
            }
        }
        if candidates > 0 {
            return Status::unschedulable(format!("{MSG_PREFIX}{ERR_REASON_NOT_IMPLEMENTED}"));
        }
        let fit = FitError { num_all_nodes: snapshot.len(), pre_filter_msg: None, node_to_status: dry_run, post_filter_msg: None };
        Status::unschedulable(format!("{MSG_PREFIX}{}", fit.message()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::{FilterPlugin, NodeInfo};
    use crate::plugins::node_resources_fit::NodeResourcesFit;
    use crate::testing::{node, node_info, pod_with_cpu};

    struct FitOnly;
    impl FilterRunner for FitOnly {
        fn run_filters(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> Status {
            NodeResourcesFit::default().filter(state, pod, node)
        }
    }

    fn prioritized(mut p: Pod, priority: i32) -> Pod {
        if let Some(s) = p.spec.as_mut() {
            s.priority = Some(priority);
        }
        p
    }

    fn run(p: &Pod, nodes: Vec<NodeInfo>) -> String {
        let snapshot = Snapshot::new(nodes);
        let state = CycleState::new();
        let mut statuses = NodeToStatus::default();
        for n in snapshot.nodes() {
            statuses.set(n.name(), FitOnly.run_filters(&state, p, n));
        }
        DefaultPreemption.post_filter(&state, p, &snapshot, &statuses, &FitOnly).message()
    }

    #[test]
    fn messages() {
        let busy = |name: &str, prio: i32| node_info(node(name, "2", "4Gi"), vec![prioritized(pod_with_cpu(&format!("{name}-x"), "2"), prio)]);
        let mut never = pod_with_cpu("p", "1");
        if let Some(s) = never.spec.as_mut() {
            s.preemption_policy = Some("Never".into());
        }
        let cases = [
            (
                "equal priorities leave no victims",
                pod_with_cpu("p", "1"),
                vec![busy("a", 0), busy("b", 0), busy("c", 0)],
                "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.",
            ),
            (
                "too big for any node is not helped",
                pod_with_cpu("p", "100"),
                vec![busy("a", 0), busy("b", 0), busy("c", 0)],
                "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
            ),
            (
                "lower-priority victims would make room",
                prioritized(pod_with_cpu("p", "1"), 10),
                vec![busy("a", 0), busy("b", 100)],
                "preemption: preemption of lower-priority pods is not supported by this scheduler yet",
            ),
            ("policy Never", never, vec![busy("a", 0)], "preemption: not eligible due to preemptionPolicy=Never."),
        ];
        for (name, p, nodes, want) in cases {
            assert_eq!(run(&p, nodes), want, "case {name}");
        }
    }
}

//! NodeUnschedulable: cordoned nodes (`spec.unschedulable`) take only pods tolerating the
//! `node.kubernetes.io/unschedulable:NoSchedule` taint.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Taint};

use super::helper::pod_tolerates;
use crate::framework::registry::{Handle, Result};
use crate::framework::{CycleState, FilterPlugin, NodeInfo, Plugin, Status};

pub const NAME: &str = "NodeUnschedulable";
/// Filter reason for a cordoned node.
pub const ERR_REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";
/// The taint a pod tolerates to land on a cordoned node anyway.
pub const TAINT_NODE_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

pub struct NodeUnschedulable;

pub fn new(_: &Handle) -> Result<Arc<dyn Plugin>> {
    Ok(Arc::new(NodeUnschedulable))
}

impl Plugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl FilterPlugin for NodeUnschedulable {
    fn filter(&self, _: &CycleState, pod: &Pod, node: &NodeInfo) -> Status {
        let cordoned = node.node().spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false);
        let taint = Taint { key: TAINT_NODE_UNSCHEDULABLE.into(), effect: "NoSchedule".into(), ..Default::default() };
        if cordoned && !pod_tolerates(pod, &taint) {
            return Status::unresolvable(ERR_REASON_UNSCHEDULABLE);
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, node_info, pod};
    use k8s_openapi::api::core::v1::Toleration;

    #[test]
    fn filter() {
        let mut cordoned = node("n", "1", "1Gi");
        if let Some(s) = cordoned.spec.as_mut() {
            s.unschedulable = Some(true);
        }
        let mut tolerant = pod("p");
        if let Some(s) = tolerant.spec.as_mut() {
            s.tolerations = Some(vec![Toleration {
                key: Some(TAINT_NODE_UNSCHEDULABLE.into()),
                operator: Some("Exists".into()),
                effect: Some("NoSchedule".into()),
                ..Default::default()
            }]);
        }
        let cases = [
            ("schedulable node", node("n", "1", "1Gi"), pod("p"), Status::success()),
            ("cordoned node", cordoned.clone(), pod("p"), Status::unresolvable(ERR_REASON_UNSCHEDULABLE)),
            ("cordoned node, tolerated", cordoned, tolerant, Status::success()),
        ];
        for (name, n, p, want) in cases {
            assert_eq!(NodeUnschedulable.filter(&CycleState::new(), &p, &node_info(n, vec![])), want, "case {name}");
        }
    }
}

//! NodeReady: keeps pods off nodes whose Ready condition is not True. Upstream gets this from the
//! `node.kubernetes.io/not-ready` / `unreachable` taints the node lifecycle controller adds; this filter
//! holds even before (or without) those taints, and lets through pods that tolerate them, as
//! DaemonSet pods do.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Taint};

use super::helper::pod_tolerates;
use crate::framework::registry::{Handle, Result};
use crate::framework::{CycleState, FilterPlugin, NodeInfo, Plugin, Status};

pub const NAME: &str = "NodeReady";
/// Filter reason for a node that is not Ready (the wording of upstream's former CheckNodeCondition).
pub const ERR_REASON_NOT_READY: &str = "node(s) were not ready";
pub const TAINT_NODE_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_NODE_UNREACHABLE: &str = "node.kubernetes.io/unreachable";

pub struct NodeReady;

pub fn new(_: &Handle) -> Result<Arc<dyn Plugin>> {
    Ok(Arc::new(NodeReady))
}

impl Plugin for NodeReady {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

/// The Ready condition's status: "True", "False", or "Unknown" when missing.
pub fn ready_status(node: &Node) -> &str {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .map_or("Unknown", |c| c.status.as_str())
}

impl FilterPlugin for NodeReady {
    fn filter(&self, _: &CycleState, pod: &Pod, node: &NodeInfo) -> Status {
        let key = match ready_status(node.node()) {
            "True" => return Status::success(),
            "False" => TAINT_NODE_NOT_READY,
            _ => TAINT_NODE_UNREACHABLE,
        };
        let taint = Taint { key: key.into(), effect: "NoSchedule".into(), ..Default::default() };
        if pod_tolerates(pod, &taint) { Status::success() } else { Status::unresolvable(ERR_REASON_NOT_READY) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, node_info, pod};
    use k8s_openapi::api::core::v1::Toleration;

    fn with_ready(status: Option<&str>) -> Node {
        let mut n = node("n", "1", "1Gi");
        if let Some(s) = n.status.as_mut() {
            match status {
                Some(v) => s.conditions.iter_mut().flatten().for_each(|c| c.status = v.into()),
                None => s.conditions = None,
            }
        }
        n
    }

    #[test]
    fn filter() {
        let mut tolerant = pod("p");
        if let Some(s) = tolerant.spec.as_mut() {
            s.tolerations = Some(vec![Toleration {
                key: Some(TAINT_NODE_NOT_READY.into()),
                operator: Some("Exists".into()),
                ..Default::default()
            }]);
        }
        let cases = [
            ("ready", with_ready(Some("True")), pod("p"), Status::success()),
            ("not ready", with_ready(Some("False")), pod("p"), Status::unresolvable(ERR_REASON_NOT_READY)),
            ("unknown", with_ready(Some("Unknown")), pod("p"), Status::unresolvable(ERR_REASON_NOT_READY)),
            ("no condition yet", with_ready(None), pod("p"), Status::unresolvable(ERR_REASON_NOT_READY)),
            ("not ready but tolerated", with_ready(Some("False")), tolerant.clone(), Status::success()),
            ("unknown needs the unreachable toleration", with_ready(Some("Unknown")), tolerant, Status::unresolvable(ERR_REASON_NOT_READY)),
        ];
        for (name, n, p, want) in cases {
            assert_eq!(NodeReady.filter(&CycleState::new(), &p, &node_info(n, vec![])), want, "case {name}");
        }
    }
}

//! NodeName: a pod that names its node (`spec.nodeName`) fits only that node.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::framework::registry::{Handle, Result};
use crate::framework::{CycleState, FilterPlugin, NodeInfo, Plugin, Status};

pub const NAME: &str = "NodeName";
/// Filter reason when the pod asks for another node.
pub const ERR_REASON: &str = "node(s) didn't match the requested node name";

pub struct NodeName;

pub fn new(_: &Handle) -> Result<Arc<dyn Plugin>> {
    Ok(Arc::new(NodeName))
}

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl FilterPlugin for NodeName {
    fn filter(&self, _: &CycleState, pod: &Pod, node: &NodeInfo) -> Status {
        match pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty()) {
            Some(wanted) if wanted != node.name() => Status::unresolvable(ERR_REASON),
            _ => Status::success(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, node_info, pod};

    #[test]
    fn filter() {
        let named = |n: &str| {
            let mut p = pod("p");
            if let Some(s) = p.spec.as_mut() {
                s.node_name = Some(n.into());
            }
            p
        };
        let cases = [
            ("no node name", pod("p"), Status::success()),
            ("same node", named("a"), Status::success()),
            ("other node", named("b"), Status::unresolvable(ERR_REASON)),
        ];
        for (name, p, want) in cases {
            assert_eq!(NodeName.filter(&CycleState::new(), &p, &node_info(node("a", "1", "1Gi"), vec![])), want, "case {name}");
        }
    }
}

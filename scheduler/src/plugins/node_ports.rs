//! NodePorts: a pod asking for host ports fits only nodes where no pod already holds one of them. Two
//! ports clash when protocol and port match and their host IPs overlap (equal, or either is 0.0.0.0).

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::framework::registry::{Handle, Result};
use crate::framework::{CycleState, FilterPlugin, NodeInfo, Plugin, PreFilterPlugin, Snapshot, Status};

pub const NAME: &str = "NodePorts";
/// Filter reason when a wanted host port is taken.
pub const ERR_REASON: &str = "node(s) didn't have free ports for the requested pod ports";
/// CycleState key for the pod's host ports computed at PreFilter.
const PRE_FILTER_STATE_KEY: &str = "PreFilterNodePorts";
const ANY_IP: &str = "0.0.0.0";

/// One host port: (host IP, protocol, port).
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostPort {
    ip: String,
    protocol: String,
    port: i32,
}

impl HostPort {
    fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == ANY_IP || other.ip == ANY_IP)
    }
}

/// The host ports of the pod's containers (and restartable init containers, which keep running).
fn host_ports(pod: &Pod) -> Vec<HostPort> {
    let Some(spec) = pod.spec.as_ref() else { return Vec::new() };
    let sidecars = spec.init_containers.iter().flatten().filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port.filter(|hp| *hp > 0)?;
            Some(HostPort {
                ip: p.host_ip.clone().filter(|ip| !ip.is_empty()).unwrap_or_else(|| ANY_IP.to_string()),
                protocol: p.protocol.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "TCP".to_string()),
                port,
            })
        })
        .collect()
}

pub struct NodePorts;

pub fn new(_: &Handle) -> Result<Arc<dyn Plugin>> {
    Ok(Arc::new(NodePorts))
}

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl PreFilterPlugin for NodePorts {
    /// Pods without host ports skip the filter.
    fn pre_filter(&self, state: &mut CycleState, pod: &Pod, _: &Snapshot) -> Status {
        let wanted = host_ports(pod);
        if wanted.is_empty() {
            return Status::skip();
        }
        state.write(PRE_FILTER_STATE_KEY, wanted);
        Status::success()
    }
}

impl FilterPlugin for NodePorts {
    fn filter(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> Status {
        let wanted = state.read_or(PRE_FILTER_STATE_KEY, || host_ports(pod));
        let taken = node.pods().iter().flat_map(|p| host_ports(&p.pod));
        let clash = taken.into_iter().any(|used| wanted.iter().any(|w| w.conflicts(&used)));
        if clash { Status::unschedulable(ERR_REASON) } else { Status::success() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, node_info, pod};
    use k8s_openapi::api::core::v1::ContainerPort;

    fn with_port(name: &str, ip: &str, protocol: &str, port: i32) -> Pod {
        let mut p = pod(name);
        if let Some(c) = p.spec.as_mut().and_then(|s| s.containers.first_mut()) {
            c.ports = Some(vec![ContainerPort {
                container_port: 80,
                host_port: Some(port),
                host_ip: Some(ip.to_string()).filter(|s| !s.is_empty()),
                protocol: Some(protocol.to_string()),
                ..Default::default()
            }]);
        }
        p
    }

    fn run(p: &Pod, existing: Vec<Pod>) -> Status {
        let mut state = CycleState::new();
        let pre = NodePorts.pre_filter(&mut state, p, &Snapshot::default());
        if pre.is_skip() {
            return pre;
        }
        NodePorts.filter(&state, p, &node_info(node("n", "4", "4Gi"), existing))
    }

    #[test]
    fn filter() {
        let cases = [
            ("no host ports skips", pod("p"), vec![with_port("a", "", "TCP", 80)], Status::skip()),
            ("free port", with_port("p", "", "TCP", 8080), vec![with_port("a", "", "TCP", 80)], Status::success()),
            ("same port, any ip", with_port("p", "", "TCP", 80), vec![with_port("a", "", "TCP", 80)], Status::unschedulable(ERR_REASON)),
            ("other protocol", with_port("p", "", "UDP", 80), vec![with_port("a", "", "TCP", 80)], Status::success()),
            (
                "different specific ips",
                with_port("p", "127.0.0.1", "TCP", 80),
                vec![with_port("a", "127.0.0.2", "TCP", 80)],
                Status::success(),
            ),
            (
                "specific ip against 0.0.0.0",
                with_port("p", "127.0.0.1", "TCP", 80),
                vec![with_port("a", "0.0.0.0", "TCP", 80)],
                Status::unschedulable(ERR_REASON),
            ),
        ];
        for (name, p, existing, want) in cases {
            assert_eq!(run(&p, existing), want, "case {name}");
        }
    }
}

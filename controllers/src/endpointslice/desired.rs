//! The endpoints a service should have, grouped by the port list they share: pods whose named
//! target ports resolve to different numbers land in different slices.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};

use super::pods;

/// The well-known label holding a node's zone.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// A port list in a comparable form: (name, port, protocol, appProtocol) per service port.
pub type PortsKey = Vec<(String, i32, String, Option<String>)>;

/// The key of a slice's port list, as the slice carries it.
pub fn ports_key(ports: &[EndpointPort]) -> PortsKey {
    ports
        .iter()
        .map(|p| (p.name.clone().unwrap_or_default(), p.port.unwrap_or(0), p.protocol.clone().unwrap_or_else(|| "TCP".into()), p.app_protocol.clone()))
        .collect()
}

/// The slice form of a port list.
pub fn endpoint_ports(key: &PortsKey) -> Vec<EndpointPort> {
    key.iter()
        .map(|(name, port, protocol, app)| EndpointPort { name: Some(name.clone()), port: Some(*port), protocol: Some(protocol.clone()), app_protocol: app.clone() })
        .collect()
}

/// The port list one pod serves for the service; ports the pod cannot resolve are left out.
pub fn pod_ports(service: &Service, pod: &Pod) -> PortsKey {
    let ports = service.spec.as_ref().and_then(|s| s.ports.as_ref());
    ports
        .into_iter()
        .flatten()
        .filter_map(|sp| {
            let port = pods::target_port(pod, sp)?;
            Some((sp.name.clone().unwrap_or_default(), port, sp.protocol.clone().unwrap_or_else(|| "TCP".into()), sp.app_protocol.clone()))
        })
        .collect()
}

/// The slice endpoint for a pod: ready = serving and not terminating (or the service publishes
/// not-ready addresses), serving = pod Ready, terminating = being deleted.
pub fn endpoint(service: &Service, pod: &Pod, ip: String, zone: Option<String>) -> Endpoint {
    let serving = pods::is_ready(pod);
    let terminating = pods::is_terminating(pod);
    let publish_not_ready = service.spec.as_ref().and_then(|s| s.publish_not_ready_addresses).unwrap_or(false);
    let ready = publish_not_ready || (serving && !terminating);
    Endpoint {
        addresses: vec![ip],
        conditions: Some(EndpointConditions { ready: Some(ready), serving: Some(serving), terminating: Some(terminating) }),
        hostname: pods::hostname_for(pod, service),
        node_name: pods::node_name(pod),
        target_ref: Some(pods::target_ref(pod)),
        zone,
        ..Default::default()
    }
}

/// Every endpoint the service should have, by port list, in pod-name order.
pub fn endpoints_by_ports<'a>(
    service: &Service,
    pods: impl IntoIterator<Item = &'a Pod>,
    node: impl Fn(&str) -> Option<std::sync::Arc<Node>>,
) -> BTreeMap<PortsKey, Vec<Endpoint>> {
    let mut selected: Vec<&Pod> = pods.into_iter().filter(|p| pods::selects(service, p) && pods::should_be_endpoint(p, true)).collect();
    selected.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut groups: BTreeMap<PortsKey, Vec<Endpoint>> = BTreeMap::new();
    for pod in selected {
        let Some(ip) = pods::ipv4(pod) else { continue };
        let zone = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .and_then(&node)
            .and_then(|n| n.metadata.labels.as_ref().and_then(|l| l.get(ZONE_LABEL)).cloned());
        groups.entry(pod_ports(service, pod)).or_default().push(endpoint(service, pod, ip, zone));
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::super::pods::fixtures::*;
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn conditions(e: &Endpoint) -> (bool, bool, bool) {
        let c = e.conditions.clone().unwrap_or_default();
        (c.ready.unwrap_or(false), c.serving.unwrap_or(false), c.terminating.unwrap_or(false))
    }

    #[test]
    fn endpoint_conditions() {
        let svc = service("web", vec![]);
        let mut publishing = svc.clone();
        if let Some(s) = publishing.spec.as_mut() {
            s.publish_not_ready_addresses = Some(true);
        }
        let mut terminating = pod("t", "10.0.0.3", true);
        terminating.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        let cases = [
            ("ready pod", &svc, pod("a", "10.0.0.1", true), (true, true, false)),
            ("unready pod", &svc, pod("b", "10.0.0.2", false), (false, false, false)),
            ("terminating ready pod", &svc, terminating.clone(), (false, true, true)),
            ("publishNotReadyAddresses", &publishing, pod("b", "10.0.0.2", false), (true, false, false)),
            ("publishNotReadyAddresses, terminating", &publishing, terminating, (true, true, true)),
        ];
        for (name, svc, pod, want) in cases {
            let ep = endpoint(svc, &pod, "10.0.0.9".into(), None);
            assert_eq!(conditions(&ep), want, "{name}");
            assert_eq!(ep.node_name.as_deref(), Some("node-1"), "{name}");
            assert_eq!(ep.target_ref.and_then(|r| r.name), pod.metadata.name, "{name}");
        }
    }

    #[test]
    fn grouping_by_resolved_ports() {
        let svc = service("web", vec![port("http", 80, IntOrString::String("http".into()))]);
        let a = pod("a", "10.0.0.1", true);
        let mut b = pod("b", "10.0.0.2", true);
        if let Some(s) = b.spec.as_mut() {
            s.containers[0].ports.as_mut().into_iter().flatten().for_each(|p| p.container_port = 9090);
        }
        let no_ip = pod("c", "", true);
        let groups = endpoints_by_ports(&svc, [&a, &b, &no_ip], |_| None);
        assert_eq!(groups.len(), 2, "two port numbers, two groups");
        let ports: Vec<i32> = groups.keys().map(|k| k[0].1).collect();
        assert_eq!(ports, vec![8080, 9090]);
        assert_eq!(groups.values().map(Vec::len).sum::<usize>(), 2, "the pod without an IP is left out");
        let key = groups.keys().next().cloned().unwrap_or_default();
        assert_eq!(ports_key(&endpoint_ports(&key)), key, "port lists round-trip");
    }
}

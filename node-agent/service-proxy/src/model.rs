//! What the proxy serves, read off Services and EndpointSlices: one entry per service port, with
//! the endpoints behind it. Anything it cannot serve (headless, ExternalName, IPv6) is left out.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label tying a slice to its service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Upstream's default ClientIP affinity timeout (3 hours).
pub const DEFAULT_AFFINITY_SECONDS: i32 = 10800;

/// `namespace/name:port-name/protocol`: names one service port, as upstream's proxy does.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortKey {
    pub namespace: String,
    pub name: String,
    pub port_name: String,
    pub protocol: Protocol,
}

impl fmt::Display for PortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}/{}", self.namespace, self.name, self.port_name, self.protocol)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    fn parse(s: Option<&str>) -> Option<Self> {
        match s.unwrap_or("TCP") {
            "TCP" => Some(Self::Tcp),
            "UDP" => Some(Self::Udp),
            "SCTP" => Some(Self::Sctp),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    /// The nft keyword.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Sctp => "sctp",
        })
    }
}

/// One backend address:port and its EndpointSlice conditions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub node_name: Option<String>,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
}

/// One port of one service, as the proxy serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub key: PortKey,
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    pub node_port: Option<u16>,
    /// ClientIP affinity timeout in seconds.
    pub affinity_seconds: Option<u32>,
    pub internal_local: bool,
    pub external_local: bool,
    /// Sorted, without duplicates.
    pub endpoints: Vec<Endpoint>,
}

impl ServicePort {
    /// The endpoints traffic may go to: ready ones, or — when none is ready — those still serving
    /// while terminating (so connections drain during a rollout). `node` limits to one node.
    pub fn usable(&self, node: Option<&str>) -> Vec<&Endpoint> {
        let candidates: Vec<&Endpoint> = self.endpoints.iter().filter(|e| node.is_none() || e.node_name.as_deref() == node).collect();
        let ready: Vec<&Endpoint> = candidates.iter().copied().filter(|e| e.ready).collect();
        if !ready.is_empty() {
            return ready;
        }
        candidates.into_iter().filter(|e| e.serving && e.terminating).collect()
    }
}

fn port_u16(p: i32) -> Option<u16> {
    u16::try_from(p).ok().filter(|p| *p != 0)
}

/// Every service port the proxy serves, from the current Services and EndpointSlices.
pub fn service_ports<'a>(services: impl IntoIterator<Item = &'a Service>, slices: impl IntoIterator<Item = &'a EndpointSlice>) -> Vec<ServicePort> {
    // Slices by (namespace, service name).
    let mut by_service: BTreeMap<(&str, &str), Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in slices {
        let service = slice.metadata.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL));
        if let (Some(ns), Some(service), "IPv4") = (slice.metadata.namespace.as_deref(), service, slice.address_type.as_str()) {
            by_service.entry((ns, service.as_str())).or_default().push(slice);
        }
    }
    let mut out = Vec::new();
    for service in services {
        let (Some(ns), Some(name), Some(spec)) = (service.metadata.namespace.as_deref(), service.metadata.name.as_deref(), service.spec.as_ref()) else {
            continue;
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let Some(cluster_ip) = spec.cluster_ip.as_deref().and_then(|ip| ip.parse::<Ipv4Addr>().ok()) else { continue };
        let affinity_seconds = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            let configured = spec.session_affinity_config.as_ref().and_then(|c| c.client_ip.as_ref()).and_then(|c| c.timeout_seconds);
            u32::try_from(configured.unwrap_or(DEFAULT_AFFINITY_SECONDS)).unwrap_or(10800)
        });
        let external = matches!(spec.type_.as_deref(), Some("NodePort" | "LoadBalancer"));
        let slices = by_service.get(&(ns, name)).map(Vec::as_slice).unwrap_or_default();
        for sp in spec.ports.iter().flatten() {
            let (Some(protocol), Some(port)) = (Protocol::parse(sp.protocol.as_deref()), port_u16(sp.port)) else { continue };
            let port_name = sp.name.clone().unwrap_or_default();
            let mut endpoints = BTreeSet::new();
            for slice in slices {
                let matching = slice.ports.iter().flatten().find(|p| {
                    p.name.clone().unwrap_or_default() == port_name && Protocol::parse(p.protocol.as_deref()) == Some(protocol)
                });
                let Some(target) = matching.and_then(|p| p.port).and_then(port_u16) else { continue };
                for e in &slice.endpoints {
                    let c = e.conditions.clone().unwrap_or_default();
                    // Unset conditions mean "unknown", which consumers treat as ready (and serving).
                    let ready = c.ready.unwrap_or(true);
                    for ip in e.addresses.iter().filter_map(|a| a.parse::<Ipv4Addr>().ok()) {
                        endpoints.insert(Endpoint {
                            ip,
                            port: target,
                            node_name: e.node_name.clone(),
                            ready,
                            serving: c.serving.unwrap_or(ready),
                            terminating: c.terminating.unwrap_or(false),
                        });
                    }
                }
            }
            out.push(ServicePort {
                key: PortKey { namespace: ns.to_string(), name: name.to_string(), port_name, protocol },
                cluster_ip,
                port,
                node_port: if external { sp.node_port.and_then(port_u16) } else { None },
                affinity_seconds,
                internal_local: spec.internal_traffic_policy.as_deref() == Some("Local"),
                external_local: external && spec.external_traffic_policy.as_deref() == Some("Local"),
                endpoints: endpoints.into_iter().collect(),
            });
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    pub fn ep(ip: [u8; 4], node: &str, ready: bool, serving: bool, terminating: bool) -> Endpoint {
        Endpoint { ip: Ipv4Addr::from(ip), port: 8080, node_name: Some(node.into()), ready, serving, terminating }
    }

    pub fn service_port(name: &str, endpoints: Vec<Endpoint>) -> ServicePort {
        ServicePort {
            key: PortKey { namespace: "default".into(), name: name.into(), port_name: "http".into(), protocol: Protocol::Tcp },
            cluster_ip: Ipv4Addr::new(10, 96, 0, 10),
            port: 80,
            node_port: None,
            affinity_seconds: None,
            internal_local: false,
            external_local: false,
            endpoints,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use k8s_openapi::api::core::v1::{ServicePort as ApiPort, ServiceSpec};
    use k8s_openapi::api::discovery::v1::{Endpoint as ApiEndpoint, EndpointConditions, EndpointPort};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[test]
    fn usable_endpoints() {
        let ready_a = ep([10, 0, 0, 1], "a", true, true, false);
        let ready_b = ep([10, 0, 0, 2], "b", true, true, false);
        let draining = ep([10, 0, 0, 3], "a", false, true, true);
        let unready = ep([10, 0, 0, 4], "a", false, false, false);
        let cases = [
            ("ready ones", vec![ready_a.clone(), ready_b.clone(), draining.clone()], None, vec![1, 2]),
            ("local only", vec![ready_a.clone(), ready_b.clone()], Some("b"), vec![2]),
            ("fall back to serving terminating", vec![draining.clone(), unready.clone()], None, vec![3]),
            ("nothing usable", vec![unready.clone()], None, vec![]),
            ("local falls back too", vec![draining, ready_b], Some("a"), vec![3]),
        ];
        for (name, endpoints, node, want) in cases {
            let sp = service_port("web", endpoints);
            let got: Vec<u8> = sp.usable(node).iter().map(|e| e.ip.octets()[3]).collect();
            assert_eq!(got, want, "{name}");
        }
    }

    fn service(type_: &str, cluster_ip: &str) -> Service {
        Service {
            metadata: ObjectMeta { name: Some("web".into()), namespace: Some("default".into()), ..Default::default() },
            spec: Some(ServiceSpec {
                type_: Some(type_.into()),
                cluster_ip: Some(cluster_ip.into()),
                ports: Some(vec![ApiPort { name: Some("http".into()), port: 80, node_port: Some(30080), ..Default::default() }]),
                session_affinity: Some("ClientIP".into()),
                external_traffic_policy: Some("Local".into()),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn slice(port_name: &str, ready: Option<bool>) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta {
                name: Some("web-x".into()),
                namespace: Some("default".into()),
                labels: Some([(SERVICE_NAME_LABEL.to_string(), "web".to_string())].into()),
                ..Default::default()
            },
            address_type: "IPv4".into(),
            endpoints: vec![ApiEndpoint {
                addresses: vec!["10.244.1.5".into()],
                conditions: Some(EndpointConditions { ready, ..Default::default() }),
                node_name: Some("n1".into()),
                ..Default::default()
            }],
            ports: Some(vec![EndpointPort { name: Some(port_name.into()), port: Some(8080), ..Default::default() }]),
        }
    }

    #[test]
    fn from_api_objects() {
        let cases = [
            ("NodePort with a matching slice", service("NodePort", "10.96.0.10"), slice("http", Some(true)), 1, Some(30080), 1, true),
            ("ClusterIP: no node port, no external policy", service("ClusterIP", "10.96.0.10"), slice("http", Some(true)), 1, None, 1, false),
            ("headless is not proxied", service("ClusterIP", "None"), slice("http", Some(true)), 0, None, 0, false),
            ("ExternalName is not proxied", service("ExternalName", "10.96.0.10"), slice("http", Some(true)), 0, None, 0, false),
            ("slice port of another name", service("ClusterIP", "10.96.0.10"), slice("grpc", Some(true)), 1, None, 0, false),
        ];
        for (name, svc, slice, ports, node_port, endpoints, external_local) in cases {
            let got = service_ports([&svc], [&slice]);
            assert_eq!(got.len(), ports, "{name}");
            if let Some(sp) = got.first() {
                assert_eq!(sp.node_port, node_port, "{name}");
                assert_eq!(sp.endpoints.len(), endpoints, "{name}");
                assert_eq!(sp.external_local, external_local, "{name}");
                assert_eq!(sp.affinity_seconds, Some(10800), "{name}: default affinity timeout");
                assert_eq!(sp.key.to_string(), "default/web:http/tcp", "{name}");
            }
        }
        let unknown = service_ports([&service("ClusterIP", "10.96.0.10")], [&slice("http", None)]);
        assert!(unknown[0].endpoints[0].ready, "unset ready counts as ready");
    }
}

//! Which pods back a service, and on which port: the facts both the EndpointSlice and the legacy
//! Endpoints controllers read off a pod.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The pod's Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.into_iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True")
}

/// The pod is being deleted.
pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// A pod is an endpoint once it has an IP, until it finishes; a terminating pod only when asked
/// for (slices report it with `terminating: true`, legacy Endpoints drop it).
pub fn should_be_endpoint(pod: &Pod, include_terminating: bool) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return false;
    }
    if is_terminating(pod) && !include_terminating {
        return false;
    }
    ipv4(pod).is_some()
}

/// The pod's IPv4 address (rudder's services are single-stack IPv4).
pub fn ipv4(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    let listed = status.pod_ips.iter().flatten().map(|ip| ip.ip.as_str());
    listed.chain(status.pod_ip.as_deref()).find(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok()).map(str::to_string)
}

/// True if the service's selector picks the pod: same namespace and every selector label present.
/// A service without a selector selects nothing (its endpoints are managed by someone else).
pub fn selects(service: &Service, pod: &Pod) -> bool {
    let Some(selector) = service.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return false;
    };
    if service.metadata.namespace != pod.metadata.namespace {
        return false;
    }
    let empty = BTreeMap::new();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The services this controller fills: those with a selector, except ExternalName ones.
pub fn is_managed(service: &Service) -> bool {
    let spec = service.spec.as_ref();
    spec.is_some_and(|s| s.selector.is_some() && s.type_.as_deref() != Some("ExternalName"))
}

/// The container port a service port reaches on this pod: a number as is, a name looked up among
/// the pod's container ports of the same protocol. None if the pod has no such named port.
pub fn target_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    let protocol = port.protocol.as_deref().unwrap_or("TCP");
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            let spec = pod.spec.as_ref()?;
            // Restartable init containers (sidecars) serve traffic too.
            let sidecars = spec.init_containers.iter().flatten().filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers.iter().chain(sidecars).flat_map(|c| c.ports.iter().flatten()).find_map(|p| {
                (p.name.as_deref() == Some(name.as_str()) && p.protocol.as_deref().unwrap_or("TCP") == protocol).then_some(p.container_port)
            })
        }
    }
}

/// The reference an endpoint keeps to the pod behind it.
pub fn target_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

/// The node the pod is bound to, if any.
pub fn node_name(pod: &Pod) -> Option<String> {
    pod.spec.as_ref().and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty())
}

/// Upstream sets an endpoint's hostname when the pod asks for one under this service's subdomain.
pub fn hostname_for(pod: &Pod, service: &Service) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let hostname = spec.hostname.as_deref().filter(|h| !h.is_empty())?;
    let same_subdomain = spec.subdomain.as_deref() == service.metadata.name.as_deref();
    (same_subdomain && pod.metadata.namespace == service.metadata.namespace).then(|| hostname.to_string())
}

#[cfg(test)]
pub(crate) mod fixtures {
    use k8s_openapi::api::core::v1::{Container, ContainerPort, Pod, PodCondition, PodIP, PodSpec, PodStatus, Service, ServicePort, ServiceSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    pub fn pod(name: &str, ip: &str, ready: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{name}")),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some("node-1".into()),
                containers: vec![Container {
                    name: "c".into(),
                    ports: Some(vec![ContainerPort { name: Some("http".into()), container_port: 8080, ..Default::default() }]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                pod_ip: (!ip.is_empty()).then(|| ip.to_string()),
                pod_ips: (!ip.is_empty()).then(|| vec![PodIP { ip: ip.into() }]),
                conditions: Some(vec![PodCondition { type_: "Ready".into(), status: if ready { "True" } else { "False" }.into(), ..Default::default() }]),
                ..Default::default()
            }),
        }
    }

    pub fn service(name: &str, ports: Vec<ServicePort>) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{name}")),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                selector: Some([("app".to_string(), "web".to_string())].into()),
                ports: Some(ports),
                ..Default::default()
            }),
            status: None,
        }
    }

    pub fn port(name: &str, port: i32, target: IntOrString) -> ServicePort {
        ServicePort { name: Some(name.into()), port, target_port: Some(target), protocol: Some("TCP".into()), ..Default::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    #[test]
    fn endpoint_membership() {
        let mut terminating = pod("t", "10.0.0.3", true);
        terminating.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        let mut finished = pod("f", "10.0.0.4", false);
        if let Some(s) = finished.status.as_mut() {
            s.phase = Some("Succeeded".into());
        }
        let cases = [
            ("running with an IP", pod("a", "10.0.0.1", true), false, true),
            ("unready still counts", pod("b", "10.0.0.2", false), false, true),
            ("no IP yet", pod("n", "", true), true, false),
            ("terminating, excluded", terminating.clone(), false, false),
            ("terminating, included", terminating, true, true),
            ("finished", finished, true, false),
        ];
        for (name, pod, include_terminating, want) in cases {
            assert_eq!(should_be_endpoint(&pod, include_terminating), want, "{name}");
        }
    }

    #[test]
    fn target_ports() {
        let p = pod("a", "10.0.0.1", true);
        let cases = [
            ("number", port("x", 80, IntOrString::Int(9000)), Some(9000)),
            ("named", port("x", 80, IntOrString::String("http".into())), Some(8080)),
            ("unknown name", port("x", 80, IntOrString::String("grpc".into())), None),
            ("unset means the service port", ServicePort { port: 81, ..Default::default() }, Some(81)),
            (
                "name with another protocol",
                ServicePort { protocol: Some("UDP".into()), ..port("x", 80, IntOrString::String("http".into())) },
                None,
            ),
        ];
        for (name, sp, want) in cases {
            assert_eq!(target_port(&p, &sp), want, "{name}");
        }
    }

    #[test]
    fn selection() {
        let svc = service("web", vec![]);
        let mut other_ns = pod("a", "10.0.0.1", true);
        other_ns.metadata.namespace = Some("other".into());
        let mut unlabelled = pod("b", "10.0.0.1", true);
        unlabelled.metadata.labels = None;
        let mut selectorless = svc.clone();
        if let Some(s) = selectorless.spec.as_mut() {
            s.selector = None;
        }
        assert!(selects(&svc, &pod("a", "10.0.0.1", true)));
        assert!(!selects(&svc, &other_ns), "other namespace");
        assert!(!selects(&svc, &unlabelled), "missing label");
        assert!(!selects(&selectorless, &pod("a", "10.0.0.1", true)), "selectorless");
        assert!(!is_managed(&selectorless));
        assert!(is_managed(&svc));
    }
}

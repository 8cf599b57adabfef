//! The legacy Endpoints object of a service, as pure data: addresses grouped into subsets by the
//! ports they serve, ready ones apart from not-ready ones.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::endpointslice::pods;

/// Tells the EndpointSlice mirroring controller to leave this object alone: its slices already
/// come from the EndpointSlice controller.
pub const SKIP_MIRROR_LABEL: &str = "endpointslice.kubernetes.io/skip-mirror";
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

type PortsKey = Vec<(String, i32, String, Option<String>)>;

fn address(service: &Service, pod: &Pod, ip: String) -> EndpointAddress {
    EndpointAddress {
        ip,
        hostname: pods::hostname_for(pod, service),
        node_name: pods::node_name(pod),
        target_ref: Some(pods::target_ref(pod)),
    }
}

/// The subsets of the service's Endpoints, in a stable order (by ports, addresses by IP).
pub fn subsets<'a>(service: &Service, all_pods: impl IntoIterator<Item = &'a Pod>) -> Vec<EndpointSubset> {
    let spec = service.spec.clone().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    let service_ports = spec.ports.unwrap_or_default();
    let headless = spec.cluster_ip.as_deref() == Some("None");
    let mut groups: BTreeMap<PortsKey, (Vec<EndpointAddress>, Vec<EndpointAddress>)> = BTreeMap::new();
    for pod in all_pods {
        if !pods::selects(service, pod) || !pods::should_be_endpoint(pod, publish_not_ready) {
            continue;
        }
        let Some(ip) = pods::ipv4(pod) else { continue };
        let mut ports: PortsKey = service_ports
            .iter()
            .filter_map(|sp| {
                let port = pods::target_port(pod, sp)?;
                Some((sp.name.clone().unwrap_or_default(), port, sp.protocol.clone().unwrap_or_else(|| "TCP".into()), sp.app_protocol.clone()))
            })
            .collect();
        // A pod serving none of the ports is no endpoint, except for a headless service without ports.
        if ports.is_empty() && !(service_ports.is_empty() && headless) {
            continue;
        }
        ports.sort();
        let group = groups.entry(ports).or_default();
        if publish_not_ready || pods::is_ready(pod) {
            group.0.push(address(service, pod, ip));
        } else {
            group.1.push(address(service, pod, ip));
        }
    }
    groups
        .into_iter()
        .map(|(ports, (mut ready, mut not_ready))| {
            ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            not_ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: (!ports.is_empty()).then(|| {
                    ports.into_iter().map(|(name, port, protocol, app_protocol)| EndpointPort { name: Some(name), port, protocol: Some(protocol), app_protocol }).collect()
                }),
            }
        })
        .collect()
}

/// The labels of the service's Endpoints.
pub fn labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    labels.remove(HEADLESS_LABEL);
    if service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None") {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    }
    labels.insert(SKIP_MIRROR_LABEL.into(), "true".into());
    labels
}

/// The Endpoints object to write, keeping `existing`'s identity and other metadata; None when
/// `existing` already says all of it.
pub fn desired(service: &Service, existing: Option<&Endpoints>, subsets: Vec<EndpointSubset>) -> Option<Endpoints> {
    let labels = labels(service);
    if let Some(current) = existing {
        let same_subsets = current.subsets.clone().unwrap_or_default() == subsets;
        if same_subsets && current.metadata.labels.as_ref() == Some(&labels) {
            return None;
        }
    }
    let mut metadata = existing.map(|e| e.metadata.clone()).unwrap_or_else(|| ObjectMeta {
        name: service.metadata.name.clone(),
        namespace: service.metadata.namespace.clone(),
        ..Default::default()
    });
    metadata.labels = Some(labels);
    Some(Endpoints { metadata, subsets: Some(subsets) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpointslice::pods::fixtures::{pod, port, service};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn ips(list: &Option<Vec<EndpointAddress>>) -> Vec<String> {
        list.iter().flatten().map(|a| a.ip.clone()).collect()
    }

    #[test]
    fn subsets_by_readiness_and_ports() {
        let svc = service("web", vec![port("http", 80, IntOrString::String("http".into()))]);
        let mut terminating = pod("t", "10.0.0.5", true);
        terminating.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        let mut other_port = pod("o", "10.0.0.6", true);
        if let Some(s) = other_port.spec.as_mut() {
            s.containers[0].ports.as_mut().into_iter().flatten().for_each(|p| p.container_port = 9090);
        }
        let pods = [pod("b", "10.0.0.2", true), pod("a", "10.0.0.1", true), pod("u", "10.0.0.3", false), terminating, other_port];
        let got = subsets(&svc, pods.iter());
        assert_eq!(got.len(), 2, "two port numbers, two subsets");
        assert_eq!(ips(&got[0].addresses), vec!["10.0.0.1", "10.0.0.2"], "ready, sorted; terminating left out");
        assert_eq!(ips(&got[0].not_ready_addresses), vec!["10.0.0.3"]);
        assert_eq!(got[0].ports.as_ref().map(|p| p[0].port), Some(8080));
        assert_eq!(ips(&got[1].addresses), vec!["10.0.0.6"]);

        let mut publishing = svc.clone();
        if let Some(s) = publishing.spec.as_mut() {
            s.publish_not_ready_addresses = Some(true);
        }
        let got = subsets(&publishing, pods.iter());
        assert_eq!(ips(&got[0].addresses), vec!["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.5"], "publishNotReadyAddresses");
    }

    #[test]
    fn headless_without_ports() {
        let mut svc = service("web", vec![]);
        let cases = [("headless", Some("None".to_string()), 1), ("cluster IP, no ports", Some("10.96.0.9".to_string()), 0)];
        for (name, ip, want) in cases {
            if let Some(s) = svc.spec.as_mut() {
                s.cluster_ip = ip;
            }
            assert_eq!(subsets(&svc, [pod("a", "10.0.0.1", true)].iter()).len(), want, "{name}");
        }
    }

    #[test]
    fn writes_only_changes() {
        let svc = service("web", vec![port("http", 80, IntOrString::Int(80))]);
        let subs = subsets(&svc, [pod("a", "10.0.0.1", true)].iter());
        let first = desired(&svc, None, subs.clone());
        assert!(first.as_ref().is_some_and(|e| e.metadata.name.as_deref() == Some("web")), "created under the service's name");
        assert_eq!(first.as_ref().and_then(|e| e.metadata.labels.as_ref()?.get(SKIP_MIRROR_LABEL).cloned()).as_deref(), Some("true"));
        assert!(desired(&svc, first.as_ref(), subs).is_none(), "unchanged");
        assert!(desired(&svc, first.as_ref(), vec![]).is_some(), "pods gone");
    }
}

//! What the slices mirroring one Endpoints object should hold: its subsets' addresses grouped by
//! port list, ready ones from `addresses` and not-ready ones from `notReadyAddresses`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointSubset, Endpoints, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions};

use super::MANAGED_BY;
use crate::endpoints::subsets::SKIP_MIRROR_LABEL;
use crate::endpointslice::desired::PortsKey;
use crate::endpointslice::{MANAGED_BY_LABEL, SERVICE_NAME_LABEL};

/// Upstream's default `--mirroring-max-endpoints-per-subset`: addresses beyond it are not mirrored.
pub const MAX_ENDPOINTS_PER_SUBSET: usize = 1000;

/// Endpoints used as a leader-election lock (old components did that) are not service endpoints.
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";

/// True if `endpoints` should be mirrored: it is not marked skip-mirror, is no leader-election lock,
/// and its Service exists without a selector (a selector Service gets slices from its pods instead).
pub fn should_mirror(endpoints: &Endpoints, service: Option<&Service>) -> bool {
    let labels = endpoints.metadata.labels.as_ref();
    let skip = labels.and_then(|l| l.get(SKIP_MIRROR_LABEL)).is_some_and(|v| v == "true");
    let lock = endpoints.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(LEADER_ANNOTATION));
    let selectorless = service.is_some_and(|s| s.spec.as_ref().and_then(|spec| spec.selector.as_ref()).is_none_or(BTreeMap::is_empty));
    !skip && !lock && selectorless
}

/// The Endpoints' labels, then the two that say whose slices these are.
pub fn slice_labels(endpoints: &Endpoints, name: &str) -> BTreeMap<String, String> {
    let mut labels = endpoints.metadata.labels.clone().unwrap_or_default();
    labels.insert(SERVICE_NAME_LABEL.into(), name.into());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    labels
}

/// The endpoints to mirror, keyed by port list. Subsets with the same ports share slices; an address
/// listed twice under one port list is mirrored once (ready wins); addresses that are not IPv4 (this
/// cluster's only family) are skipped, as are those past the per-subset limit.
pub fn endpoints_by_ports(endpoints: &Endpoints) -> BTreeMap<PortsKey, Vec<Endpoint>> {
    let mut out: BTreeMap<PortsKey, Vec<Endpoint>> = BTreeMap::new();
    for subset in endpoints.subsets.iter().flatten() {
        let wanted = out.entry(ports(subset)).or_default();
        let ready = subset.addresses.iter().flatten().map(|a| (a, true));
        let not_ready = subset.not_ready_addresses.iter().flatten().map(|a| (a, false));
        for (address, is_ready) in ready.chain(not_ready).take(MAX_ENDPOINTS_PER_SUBSET) {
            let Some(endpoint) = endpoint(address, is_ready) else { continue };
            if !wanted.iter().any(|e| e.addresses == endpoint.addresses) {
                wanted.push(endpoint);
            }
        }
    }
    out.retain(|_, endpoints| !endpoints.is_empty());
    out
}

fn ports(subset: &EndpointSubset) -> PortsKey {
    let mut key: PortsKey = subset
        .ports
        .iter()
        .flatten()
        .map(|p| (p.name.clone().unwrap_or_default(), p.port, p.protocol.clone().unwrap_or_else(|| "TCP".into()), p.app_protocol.clone()))
        .collect();
    key.sort();
    key
}

fn endpoint(address: &EndpointAddress, ready: bool) -> Option<Endpoint> {
    // Re-printed, so an irregular spelling (leading zeros are refused by the parser) never lands in a slice.
    let ip: Ipv4Addr = address.ip.parse().ok()?;
    Some(Endpoint {
        addresses: vec![ip.to_string()],
        conditions: Some(EndpointConditions { ready: Some(ready), ..Default::default() }),
        hostname: address.hostname.clone().filter(|h| !h.is_empty()),
        node_name: address.node_name.clone(),
        target_ref: address.target_ref.clone(),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{EndpointPort, ServiceSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn address(ip: &str) -> EndpointAddress {
        EndpointAddress { ip: ip.into(), ..Default::default() }
    }

    fn port(name: &str, port: i32) -> EndpointPort {
        EndpointPort { name: Some(name.into()), port, protocol: Some("TCP".into()), ..Default::default() }
    }

    fn subset(ready: &[&str], not_ready: &[&str], ports: Vec<EndpointPort>) -> EndpointSubset {
        EndpointSubset {
            addresses: Some(ready.iter().map(|ip| address(ip)).collect()),
            not_ready_addresses: Some(not_ready.iter().map(|ip| address(ip)).collect()),
            ports: Some(ports),
        }
    }

    fn endpoints(labels: &[(&str, &str)], subsets: Vec<EndpointSubset>) -> Endpoints {
        Endpoints {
            metadata: ObjectMeta {
                name: Some("custom".into()),
                namespace: Some("ns".into()),
                labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
                ..Default::default()
            },
            subsets: Some(subsets),
        }
    }

    fn service(selector: Option<&[(&str, &str)]>) -> Service {
        let selector = selector.map(|s| s.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        Service { spec: Some(ServiceSpec { selector, ..Default::default() }), ..Default::default() }
    }

    #[test]
    fn mirrors_only_selectorless_services_endpoints() {
        let plain = endpoints(&[], vec![]);
        let skipped = endpoints(&[(SKIP_MIRROR_LABEL, "true")], vec![]);
        let not_skipped = endpoints(&[(SKIP_MIRROR_LABEL, "false")], vec![]);
        let mut lock = endpoints(&[], vec![]);
        lock.metadata.annotations = Some([(LEADER_ANNOTATION.to_string(), "{}".to_string())].into());
        let cases = [
            ("selectorless service", &plain, Some(service(None)), true),
            ("empty selector counts as none", &plain, Some(service(Some(&[]))), true),
            ("service with a selector", &plain, Some(service(Some(&[("app", "web")]))), false),
            ("no service", &plain, None, false),
            ("skip-mirror true", &skipped, Some(service(None)), false),
            ("skip-mirror false", &not_skipped, Some(service(None)), true),
            ("leader-election lock", &lock, Some(service(None)), false),
        ];
        for (name, e, svc, want) in cases {
            assert_eq!(should_mirror(e, svc.as_ref()), want, "{name}");
        }
    }

    #[test]
    fn groups_addresses_by_port_list() {
        let e = endpoints(
            &[("team", "a")],
            vec![
                subset(&["10.1.2.3", "10.1.2.4"], &["10.1.2.5"], vec![port("http", 80), port("metrics", 9090)]),
                // Same ports in another order: the same slices; a repeated address is mirrored once, ready.
                subset(&["10.1.2.6"], &["10.1.2.3"], vec![port("metrics", 9090), port("http", 80)]),
                subset(&["10.9.9.9", "fd00::1", "not-an-ip"], &[], vec![port("dns", 53)]),
                subset(&[], &[], vec![port("empty", 1)]),
            ],
        );
        let got = endpoints_by_ports(&e);
        assert_eq!(got.len(), 2, "the subset without addresses gets no slice: {:?}", got.keys());
        let web: Vec<(String, bool)> = got
            .values()
            .find(|list| list.len() > 1)
            .into_iter()
            .flatten()
            .map(|ep| (ep.addresses[0].clone(), ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(false)))
            .collect();
        let want: Vec<(String, bool)> = [("10.1.2.3", true), ("10.1.2.4", true), ("10.1.2.5", false), ("10.1.2.6", true)].iter().map(|(ip, r)| (ip.to_string(), *r)).collect();
        assert_eq!(web, want);
        let dns: Vec<&str> = got.values().find(|list| list.len() == 1).into_iter().flatten().map(|ep| ep.addresses[0].as_str()).collect();
        assert_eq!(dns, ["10.9.9.9"], "IPv6 and malformed addresses are skipped");
        let labels = slice_labels(&e, "custom");
        assert_eq!(labels.get("team").map(String::as_str), Some("a"));
        assert_eq!(labels.get(MANAGED_BY_LABEL).map(String::as_str), Some(MANAGED_BY));
        assert_eq!(labels.get(SERVICE_NAME_LABEL).map(String::as_str), Some("custom"));
    }

    #[test]
    fn caps_each_subset() {
        let ips: Vec<String> = (0..MAX_ENDPOINTS_PER_SUBSET + 5).map(|i| format!("10.0.{}.{}", i / 250, i % 250)).collect();
        let refs: Vec<&str> = ips.iter().map(String::as_str).collect();
        let got = endpoints_by_ports(&endpoints(&[], vec![subset(&refs, &[], vec![port("http", 80)])]));
        assert_eq!(got.values().map(Vec::len).sum::<usize>(), MAX_ENDPOINTS_PER_SUBSET);
    }
}

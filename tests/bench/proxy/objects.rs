//! The benchmark's workload: selectorless ClusterIP Services, each with one EndpointSlice of ready
//! endpoints, and the addresses they use. Addresses are a pure function of the indexes, so the
//! watcher side knows what to look for without asking the apiserver.

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The namespace every benchmark object lives in.
pub const NAMESPACE: &str = "proxy-bench";
/// The port every Service exposes and every endpoint serves.
pub const PORT: i32 = 80;
/// Service i's cluster IP is in 10.99.0.0/16 (the throwaway apiserver's service range), from
/// 10.99.1.1 on: 10.99.0.1 belongs to `default/kubernetes`.
const SERVICE_NET: [u8; 2] = [10, 99];
/// Initial endpoints are 10.244.0.1 – 10.244.199.250; replacement endpoints start at 10.244.200.1.
const POD_NET: [u8; 2] = [10, 244];
const REPLACEMENT_FIRST_OCTET: u32 = 200;
/// Host octets used per /24 (1..=250), so no address ends in 0 or 255.
const PER_OCTET: u32 = 250;

/// The largest Service count addresses can be made for (cluster IPs 10.99.1.1 – 10.99.255.250).
pub const MAX_SERVICES: u32 = 255 * PER_OCTET;
/// The largest services × endpoints product (initial endpoints stay below 10.244.200.0).
pub const MAX_ENDPOINTS: u32 = REPLACEMENT_FIRST_OCTET * PER_OCTET;
/// How many replacement addresses exist (10.244.200.1 – 10.244.255.250).
pub const MAX_REPLACEMENTS: u32 = (256 - REPLACEMENT_FIRST_OCTET) * PER_OCTET;

fn nth_address(net: [u8; 2], first_octet: u32, n: u32) -> Ipv4Addr {
    let third = first_octet + n / PER_OCTET;
    let fourth = n % PER_OCTET + 1;
    Ipv4Addr::new(net[0], net[1], u8::try_from(third).unwrap_or(u8::MAX), u8::try_from(fourth).unwrap_or(u8::MAX))
}

pub fn service_name(i: u32) -> String {
    format!("svc-{i:05}")
}

pub fn slice_name(i: u32) -> String {
    format!("svc-{i:05}-bench")
}

/// Service i's cluster IP.
pub fn cluster_ip(i: u32) -> Ipv4Addr {
    nth_address(SERVICE_NET, 1, i)
}

/// Endpoint j of service i (with `per_service` endpoints each) before any change.
pub fn endpoint_ip(i: u32, j: u32, per_service: u32) -> Ipv4Addr {
    nth_address(POD_NET, 0, i * per_service + j)
}

/// The n-th replacement address: unique over the whole run, never an initial endpoint.
pub fn replacement_ip(n: u32) -> Ipv4Addr {
    nth_address(POD_NET, REPLACEMENT_FIRST_OCTET, n)
}

/// Checks the sizes fit the address plan.
pub fn check_sizes(services: u32, per_service: u32, changes: u32) -> Result<(), String> {
    if services == 0 || per_service == 0 {
        return Err("--services and --endpoints must be at least 1".into());
    }
    if services > MAX_SERVICES {
        return Err(format!("--services {services} is above the address plan's {MAX_SERVICES}"));
    }
    if services.saturating_mul(per_service) > MAX_ENDPOINTS {
        return Err(format!("--services × --endpoints must be at most {MAX_ENDPOINTS}"));
    }
    if changes.saturating_mul(2) > MAX_REPLACEMENTS {
        return Err(format!("--changes must be at most {}", MAX_REPLACEMENTS / 2));
    }
    Ok(())
}

/// Service i: selectorless ClusterIP with an explicit cluster IP, one TCP port.
pub fn service(i: u32) -> Result<Service, serde_json::Error> {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": service_name(i), "namespace": NAMESPACE },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": cluster_ip(i).to_string(),
            "ports": [{ "name": "http", "port": PORT, "targetPort": PORT, "protocol": "TCP" }],
        },
    }))
}

/// Service i's EndpointSlice with the given ready endpoint addresses.
pub fn endpoint_slice(i: u32, addresses: &[Ipv4Addr]) -> Result<EndpointSlice, serde_json::Error> {
    let endpoints: Vec<_> =
        addresses.iter().map(|ip| serde_json::json!({ "addresses": [ip.to_string()], "conditions": { "ready": true } })).collect();
    serde_json::from_value(serde_json::json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": slice_name(i),
            "namespace": NAMESPACE,
            "labels": {
                "kubernetes.io/service-name": service_name(i),
                // Not the endpointslice controller's value, so no controller would touch it.
                "endpointslice.kubernetes.io/managed-by": "rudder-proxy-bench",
            },
        },
        "addressType": "IPv4",
        "ports": [{ "name": "http", "port": PORT, "protocol": "TCP" }],
        "endpoints": endpoints,
    }))
}

/// The initial endpoint addresses of service i.
pub fn initial_endpoints(i: u32, per_service: u32) -> Vec<Ipv4Addr> {
    (0..per_service).map(|j| endpoint_ip(i, j, per_service)).collect()
}

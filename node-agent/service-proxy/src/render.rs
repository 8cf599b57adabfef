//! Service ports → nftables chains, sets and map elements. Pure: the same input always renders the
//! same rules, so a diff against the last render is the whole update.
//!
//! Per service port `H` (a hash of its key):
//! - `svc-H`, reached from `service-ips` by cluster IP: marks non-pod sources for masquerade, then
//!   goes to `cluster-H` (or `local-H` under internalTrafficPolicy Local);
//! - `ext-H`, reached from `service-nodeports`: marks for masquerade and goes to `cluster-H`, or
//!   under externalTrafficPolicy Local keeps the client address and goes to `local-H`;
//! - `cluster-H` / `local-H`: ClientIP affinity lookups, then a random pick among endpoints
//!   (`local-H` drops when this node has none);
//! - `ep-E` per endpoint: hairpin masquerade, affinity update, DNAT.

use std::fmt::Write as _;

use crate::config::Config;
use crate::model::{Endpoint, ServicePort};
use crate::ruleset::{self, MARK_FOR_MASQ, NO_ENDPOINT_NODEPORTS, NO_ENDPOINT_SERVICES, REJECT_CHAIN, Ruleset, SERVICE_IPS, SERVICE_NODEPORTS};

/// The mark bit that asks `masquerading` to SNAT a packet (upstream's 0x4000).
const MASQ_MARK: &str = "0x4000";

/// The nft set literal of the NodePort addresses.
fn nodeport_addresses(config: &Config) -> String {
    let list: Vec<String> = config.nodeport_addresses.iter().map(ToString::to_string).collect();
    format!("{{ {} }}", list.join(", "))
}

/// With `route_localnet` on (which NodePorts on loopback addresses need) the kernel would also accept
/// packets for 127.0.0.0/8 from other hosts; like kube-proxy, drop those unless this table DNATed them.
const LOCALNET_GUARD: &str = "ip daddr 127.0.0.0/8 ip saddr != 127.0.0.0/8 ct state new,invalid ct status & dnat == 0 drop";

/// The fixed part of the table: maps, hooks and helper chains, in `table { … }` body syntax.
pub fn base(config: &Config) -> String {
    let np = nodeport_addresses(config);
    let mut input = vec!["ct state new jump service-endpoints-check".to_string()];
    if config.nodeport_addresses.iter().any(|cidr| cidr.network.is_loopback()) {
        input.insert(0, LOCALNET_GUARD.to_string());
    }
    let mut s = String::new();
    let _ = writeln!(s, "\tmap {SERVICE_IPS} {{ type ipv4_addr . inet_proto . inet_service : verdict; }}");
    let _ = writeln!(s, "\tmap {SERVICE_NODEPORTS} {{ type inet_proto . inet_service : verdict; }}");
    let _ = writeln!(s, "\tmap {NO_ENDPOINT_SERVICES} {{ type ipv4_addr . inet_proto . inet_service : verdict; }}");
    let _ = writeln!(s, "\tmap {NO_ENDPOINT_NODEPORTS} {{ type inet_proto . inet_service : verdict; }}");
    let chains: [(&str, &str, Vec<String>); 10] = [
        ("nat-prerouting", "type nat hook prerouting priority -100; policy accept;", vec!["jump services".into()]),
        ("nat-output", "type nat hook output priority -100; policy accept;", vec!["jump services".into()]),
        ("nat-postrouting", "type nat hook postrouting priority 100; policy accept;", vec!["jump masquerading".into()]),
        // Before DNAT, so a service without endpoints is still addressed by its cluster IP here.
        ("filter-input", "type filter hook input priority -110; policy accept;", input),
        ("filter-forward", "type filter hook forward priority -110; policy accept;", vec!["ct state new jump service-endpoints-check".into()]),
        ("filter-output", "type filter hook output priority -110; policy accept;", vec!["ct state new jump service-endpoints-check".into()]),
        (
            "service-endpoints-check",
            "",
            vec![
                format!("ip daddr . meta l4proto . th dport vmap @{NO_ENDPOINT_SERVICES}"),
                format!("ip daddr {np} meta l4proto . th dport vmap @{NO_ENDPOINT_NODEPORTS}"),
            ],
        ),
        (
            "services",
            "",
            vec![format!("ip daddr . meta l4proto . th dport vmap @{SERVICE_IPS}"), format!("ip daddr {np} meta l4proto . th dport vmap @{SERVICE_NODEPORTS}")],
        ),
        (
            "masquerading",
            "",
            vec![format!("meta mark & {MASQ_MARK} == 0 return"), format!("meta mark set meta mark ^ {MASQ_MARK}"), "masquerade fully-random".into()],
        ),
        (MARK_FOR_MASQ, "", vec![format!("meta mark set meta mark | {MASQ_MARK}")]),
    ];
    for (name, hook, rules) in chains {
        let _ = writeln!(s, "\tchain {name} {{");
        if !hook.is_empty() {
            let _ = writeln!(s, "\t\t{hook}");
        }
        for rule in rules {
            let _ = writeln!(s, "\t\t{rule}");
        }
        let _ = writeln!(s, "\t}}");
    }
    let _ = writeln!(s, "\tchain {REJECT_CHAIN} {{\n\t\treject\n\t}}");
    s
}

/// Every service port's chains, sets and map elements.
pub fn services(config: &Config, ports: &[ServicePort]) -> Ruleset {
    let mut rs = Ruleset::default();
    for sp in ports {
        service(config, sp, &mut rs);
    }
    rs
}

fn endpoint_id(sp: &ServicePort, e: &Endpoint) -> String {
    ruleset::name_hash(&format!("{}|{}:{}", sp.key, e.ip, e.port))
}

/// The set remembering clients of one endpoint; the timeout is part of the name, so a changed
/// timeout is a new set rather than an edit nft cannot make.
fn affinity_set(sp: &ServicePort, e: &Endpoint, seconds: u32) -> String {
    format!("aff-{}-{seconds}", endpoint_id(sp, e))
}

fn service(config: &Config, sp: &ServicePort, rs: &mut Ruleset) {
    let h = ruleset::name_hash(&sp.key.to_string());
    let proto = sp.key.protocol;
    let cluster = sp.usable(None);
    let clusterip_key = format!("{} . {proto} . {}", sp.cluster_ip, sp.port);
    let nodeport_key = sp.node_port.map(|np| format!("{proto} . {np}"));
    if cluster.is_empty() {
        // Upstream rejects connections to a service with no endpoints rather than letting them hang.
        rs.element(NO_ENDPOINT_SERVICES, clusterip_key, format!("goto {REJECT_CHAIN}"));
        if let Some(key) = nodeport_key {
            rs.element(NO_ENDPOINT_NODEPORTS, key, format!("goto {REJECT_CHAIN}"));
        }
        return;
    }
    for e in &cluster {
        endpoint_chain(sp, e, rs);
    }
    let cluster_chain = format!("cluster-{h}");
    rs.chain(cluster_chain.clone(), balance(sp, &cluster));
    let local_chain = format!("local-{h}");
    if sp.internal_local || sp.external_local {
        let local = sp.usable(Some(&config.node_name));
        for e in &local {
            endpoint_chain(sp, e, rs);
        }
        let rules = if local.is_empty() { vec!["drop".to_string()] } else { balance(sp, &local) };
        rs.chain(local_chain.clone(), rules);
    }

    let mut svc = Vec::new();
    if let Some(cidr) = config.cluster_cidr {
        svc.push(format!("ip saddr != {cidr} jump {MARK_FOR_MASQ}"));
    }
    svc.push(format!("goto {}", if sp.internal_local { &local_chain } else { &cluster_chain }));
    rs.chain(format!("svc-{h}"), svc);
    rs.element(SERVICE_IPS, clusterip_key, format!("goto svc-{h}"));

    if let Some(key) = nodeport_key {
        let ext = if sp.external_local {
            let mut rules = Vec::new();
            // Pods and the node itself may use the cluster-wide endpoints; outside clients keep
            // their source address and only reach endpoints on this node.
            if let Some(cidr) = config.cluster_cidr {
                rules.push(format!("ip saddr {cidr} goto {cluster_chain}"));
            }
            rules.push(format!("fib saddr type local jump {MARK_FOR_MASQ}"));
            rules.push(format!("fib saddr type local goto {cluster_chain}"));
            rules.push(format!("goto {local_chain}"));
            rules
        } else {
            vec![format!("jump {MARK_FOR_MASQ}"), format!("goto {cluster_chain}")]
        };
        rs.chain(format!("ext-{h}"), ext);
        rs.element(SERVICE_NODEPORTS, key, format!("goto ext-{h}"));
    }
}

/// Affinity lookups, then one random endpoint.
fn balance(sp: &ServicePort, endpoints: &[&Endpoint]) -> Vec<String> {
    let mut rules = Vec::new();
    if let Some(seconds) = sp.affinity_seconds {
        for e in endpoints {
            rules.push(format!("ip saddr @{} goto ep-{}", affinity_set(sp, e, seconds), endpoint_id(sp, e)));
        }
    }
    match endpoints {
        [only] => rules.push(format!("goto ep-{}", endpoint_id(sp, only))),
        _ => {
            let arms: Vec<String> = endpoints.iter().enumerate().map(|(i, e)| format!("{i} : goto ep-{}", endpoint_id(sp, e))).collect();
            rules.push(format!("numgen random mod {} vmap {{ {} }}", endpoints.len(), arms.join(", ")));
        }
    }
    rules
}

fn endpoint_chain(sp: &ServicePort, e: &Endpoint, rs: &mut Ruleset) {
    let id = endpoint_id(sp, e);
    let mut rules = vec![format!("ip saddr {} jump {MARK_FOR_MASQ}", e.ip)];
    if let Some(seconds) = sp.affinity_seconds {
        let set = affinity_set(sp, e, seconds);
        rules.push(format!("update @{set} {{ ip saddr }}"));
        rs.sets.insert(set, format!("type ipv4_addr; flags dynamic,timeout; timeout {seconds}s;"));
    }
    rules.push(format!("meta l4proto {} dnat to {}:{}", sp.key.protocol, e.ip, e.port));
    rs.chain(format!("ep-{id}"), rules);
}

#[cfg(test)]
mod tests;

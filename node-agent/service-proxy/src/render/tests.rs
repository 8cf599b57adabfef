use std::net::Ipv4Addr;

use super::*;
use crate::model::fixtures::{ep, service_port};

fn config() -> Config {
    Config::new("n1", Ipv4Addr::new(127, 0, 1, 1), "10.244.0.0/16", &[]).unwrap_or_else(|e| panic!("{e}"))
}

/// Every rule of every chain whose name starts with `prefix`.
fn rules<'a>(rs: &'a Ruleset, prefix: &str) -> Vec<&'a str> {
    rs.chains.iter().filter(|(n, _)| n.starts_with(prefix)).flat_map(|(_, r)| r.iter().map(String::as_str)).collect()
}

fn verdict<'a>(rs: &'a Ruleset, map: &'static str, key: &str) -> Option<&'a str> {
    rs.elements.get(&(map, key.to_string())).map(String::as_str)
}

#[test]
fn service_rendering() {
    let a = ep([10, 244, 1, 5], "n1", true, true, false);
    let b = ep([10, 244, 2, 6], "n2", true, true, false);
    let draining = ep([10, 244, 1, 7], "n1", false, true, true);
    let unready = ep([10, 244, 1, 8], "n1", false, false, false);
    let np = |mut sp: ServicePort| {
        sp.node_port = Some(30080);
        sp
    };

    struct Case {
        name: &'static str,
        sp: ServicePort,
        check: fn(&Ruleset),
    }
    let cases = [
        Case {
            name: "cluster IP over two endpoints",
            sp: service_port("web", vec![a.clone(), b.clone()]),
            check: |rs| {
                assert!(verdict(rs, SERVICE_IPS, "10.96.0.10 . tcp . 80").is_some_and(|v| v.starts_with("goto svc-")));
                assert!(rules(rs, "cluster-").iter().any(|r| r.starts_with("numgen random mod 2 vmap { 0 : goto ep-")));
                assert_eq!(rules(rs, "svc-")[0], "ip saddr != 10.244.0.0/16 jump mark-for-masq", "non-pod sources masqueraded");
                let dnat: Vec<&str> = rules(rs, "ep-").into_iter().filter(|r| r.contains("dnat")).collect();
                assert_eq!(dnat.len(), 2);
                assert!(dnat.contains(&"meta l4proto tcp dnat to 10.244.1.5:8080"));
                assert!(rules(rs, "ep-").contains(&"ip saddr 10.244.1.5 jump mark-for-masq"), "hairpin");
                assert!(rs.sets.is_empty(), "no affinity sets");
            },
        },
        Case {
            name: "single endpoint: no numgen",
            sp: service_port("web", vec![a.clone(), unready.clone()]),
            check: |rs| {
                assert_eq!(rules(rs, "cluster-").len(), 1);
                assert!(rules(rs, "cluster-")[0].starts_with("goto ep-"));
                assert_eq!(rs.chains.keys().filter(|n| n.starts_with("ep-")).count(), 1, "unready endpoint gets no chain");
            },
        },
        Case {
            name: "no ready endpoint: serving terminating ones still used",
            sp: service_port("web", vec![draining.clone(), unready.clone()]),
            check: |rs| assert!(rules(rs, "ep-").contains(&"meta l4proto tcp dnat to 10.244.1.7:8080")),
        },
        Case {
            name: "no usable endpoint: rejected, nothing else",
            sp: np(service_port("web", vec![unready.clone()])),
            check: |rs| {
                assert_eq!(verdict(rs, NO_ENDPOINT_SERVICES, "10.96.0.10 . tcp . 80"), Some("goto reject-chain"));
                assert_eq!(verdict(rs, NO_ENDPOINT_NODEPORTS, "tcp . 30080"), Some("goto reject-chain"));
                assert!(rs.chains.is_empty());
                assert!(verdict(rs, SERVICE_IPS, "10.96.0.10 . tcp . 80").is_none());
            },
        },
        Case {
            name: "NodePort, cluster policy: masquerade then all endpoints",
            sp: np(service_port("web", vec![a.clone(), b.clone()])),
            check: |rs| {
                assert!(verdict(rs, SERVICE_NODEPORTS, "tcp . 30080").is_some_and(|v| v.starts_with("goto ext-")));
                let ext = rules(rs, "ext-");
                assert_eq!(ext[0], "jump mark-for-masq");
                assert!(ext[1].starts_with("goto cluster-"));
            },
        },
        Case {
            name: "NodePort, externalTrafficPolicy Local: outside clients only to local endpoints",
            sp: {
                let mut sp = np(service_port("web", vec![a.clone(), b.clone()]));
                sp.external_local = true;
                sp
            },
            check: |rs| {
                let ext = rules(rs, "ext-");
                assert!(ext[0].starts_with("ip saddr 10.244.0.0/16 goto cluster-"), "pods use every endpoint");
                assert!(ext.last().is_some_and(|r| r.starts_with("goto local-")));
                assert!(!ext.contains(&"jump mark-for-masq"), "client address kept");
                let local = rules(rs, "local-");
                assert_eq!(local.len(), 1, "one local endpoint: {local:?}");
                let target = local[0].trim_start_matches("goto ");
                assert!(rs.chains.get(target).is_some_and(|r| r.iter().any(|r| r.contains("10.244.1.5"))), "the endpoint on n1");
            },
        },
        Case {
            name: "internalTrafficPolicy Local without a local endpoint drops",
            sp: {
                let mut sp = service_port("web", vec![b.clone()]);
                sp.internal_local = true;
                sp
            },
            check: |rs| {
                assert_eq!(rules(rs, "local-"), vec!["drop"]);
                assert!(rules(rs, "svc-").last().is_some_and(|r| r.starts_with("goto local-")));
            },
        },
        Case {
            name: "ClientIP affinity: a set per endpoint, looked up first, updated on use",
            sp: {
                let mut sp = service_port("web", vec![a.clone(), b.clone()]);
                sp.affinity_seconds = Some(60);
                sp
            },
            check: |rs| {
                assert_eq!(rs.sets.len(), 2);
                assert!(rs.sets.values().all(|d| d == "type ipv4_addr; flags dynamic,timeout; timeout 60s;"));
                let cluster = rules(rs, "cluster-");
                assert!(cluster[0].starts_with("ip saddr @aff-") && cluster[0].contains(" goto ep-"));
                assert!(cluster[2].starts_with("numgen"), "lookups before the random pick");
                assert!(rules(rs, "ep-").iter().any(|r| r.starts_with("update @aff-") && r.ends_with("{ ip saddr }")));
            },
        },
    ];
    for case in cases {
        let rs = services(&config(), std::slice::from_ref(&case.sp));
        let result = std::panic::catch_unwind(|| (case.check)(&rs));
        assert!(result.is_ok(), "case {:?} failed; rendered: {rs:#?}", case.name);
    }
}

#[test]
fn deterministic_and_independent() {
    let a = service_port("a", vec![ep([10, 244, 1, 5], "n1", true, true, false)]);
    let mut b = service_port("b", vec![ep([10, 244, 1, 6], "n1", true, true, false)]);
    b.cluster_ip = Ipv4Addr::new(10, 96, 0, 11);
    let both = services(&config(), &[a.clone(), b.clone()]);
    assert_eq!(both, services(&config(), &[a.clone(), b.clone()]), "same input, same output");
    let only_a = services(&config(), std::slice::from_ref(&a));
    assert!(only_a.chains.iter().all(|(n, r)| both.chains.get(n) == Some(r)), "a service's chains do not depend on others");
}

#[test]
fn base_table() {
    let base = base(&config());
    assert!(base.contains("ip daddr { 127.0.1.1 } meta l4proto . th dport vmap @service-nodeports"), "NodePorts on the node IP");
    assert!(base.contains("type nat hook prerouting priority -100"));
    assert!(base.contains("masquerade fully-random"));
}

#[test]
fn localnet_guard_only_with_loopback_nodeports() {
    let guard = "ip daddr 127.0.0.0/8 ip saddr != 127.0.0.0/8";
    assert!(base(&config()).contains(guard), "NodePorts on 127.0.1.1: remote packets for loopback dropped");
    let routable = Config::new("n1", Ipv4Addr::new(192, 0, 2, 7), "10.244.0.0/16", &[]).unwrap_or_else(|e| panic!("{e}"));
    assert!(!base(&routable).contains(guard), "no loopback NodePorts, no guard");
}

//! Unit tests of the service-proxy benchmark's pure helpers (no cluster, no namespace).

#![allow(dead_code)]

#[path = "monitor.rs"]
mod monitor;
#[path = "objects.rs"]
mod objects;
#[path = "report.rs"]
mod report;
#[path = "../table.rs"]
mod table;

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::Duration;

#[test]
fn ipv4s_in_finds_addresses_in_nft_monitor_lines() {
    let cases: &[(&str, &str, &[&str])] = &[
        ("rudder dnat rule", "add rule ip rudder-proxy ep-x meta l4proto tcp dnat to 10.244.0.1:80", &["10.244.0.1"]),
        (
            "kube-proxy endpoint chain name",
            "add chain ip kube-proxy endpoint-ABC-proxy-bench/svc-00001/tcp/http__10.244.200.1/80",
            &["10.244.200.1"],
        ),
        ("map element", "add element ip kube-proxy service-ips { 10.99.1.1 . tcp . 80 : goto service-X }", &["10.99.1.1"]),
        ("two addresses", "ip saddr 10.244.0.1 ip daddr 10.99.1.2 counter", &["10.244.0.1", "10.99.1.2"]),
        ("cidr", "ip saddr != 10.244.0.0/16 jump mark", &["10.244.0.0"]),
        ("no address", "# new generation 6 by process 16394 (nft)", &[]),
        ("version-like numbers are not addresses", "table ip x { comment 1.0.6 }", &[]),
    ];
    for (name, line, want) in cases {
        let got: Vec<String> = monitor::ipv4s_in(line).map(|ip| ip.to_string()).collect();
        assert_eq!(got, *want, "case {name}");
    }
}

#[test]
fn ipv4s_in_does_not_match_a_prefix_of_a_longer_address() {
    let want: Ipv4Addr = "10.244.200.1".parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
    assert!(!monitor::ipv4s_in("dnat to 10.244.200.13:80").any(|ip| ip == want));
}

#[test]
fn addresses_are_unique_and_do_not_overlap() {
    let (services, per_service, changes) = (1000, 10, 40);
    assert!(objects::check_sizes(services, per_service, changes).is_ok());
    let mut seen = HashSet::new();
    for i in 0..services {
        assert!(seen.insert(objects::cluster_ip(i)), "cluster IP of service {i} repeats");
        for j in 0..per_service {
            assert!(seen.insert(objects::endpoint_ip(i, j, per_service)), "endpoint {i}/{j} repeats");
        }
    }
    for n in 0..changes {
        assert!(seen.insert(objects::replacement_ip(n)), "replacement {n} collides");
    }
    let all_usable = seen.iter().all(|ip| ip.octets()[3] != 0 && ip.octets()[3] != 255);
    assert!(all_usable, "an address ends in 0 or 255");
    assert_eq!(objects::cluster_ip(0), Ipv4Addr::new(10, 99, 1, 1));
    assert_eq!(objects::endpoint_ip(999, 9, 10), Ipv4Addr::new(10, 244, 39, 250));
    assert_eq!(objects::replacement_ip(0), Ipv4Addr::new(10, 244, 200, 1));
}

#[test]
fn check_sizes_rejects_what_the_address_plan_cannot_hold() {
    let cases = [
        ("zero services", 0, 10, 20, false),
        ("zero endpoints", 10, 0, 20, false),
        ("too many endpoints", 10_000, 10, 20, false),
        ("too many changes", 1000, 10, 100_000, false),
        ("the issue's size", 1000, 10, 20, true),
    ];
    for (name, services, per_service, changes, ok) in cases {
        assert_eq!(objects::check_sizes(services, per_service, changes).is_ok(), ok, "case {name}");
    }
}

#[test]
fn objects_serialize_as_the_apiserver_expects() {
    let svc = objects::service(3).ok().and_then(|s| s.spec).unwrap_or_default();
    assert_eq!(svc.cluster_ip.as_deref(), Some("10.99.1.4"));
    assert_eq!(svc.selector, None, "selectorless, so no controller writes its endpoints");
    let slice = objects::endpoint_slice(3, &objects::initial_endpoints(3, 10)).ok();
    let slice = slice.unwrap_or_else(|| panic!("slice did not build"));
    assert_eq!(slice.endpoints.len(), 10);
    let labels = slice.metadata.labels.unwrap_or_default();
    assert_eq!(labels.get("kubernetes.io/service-name").map(String::as_str), Some("svc-00003"));
    assert!(slice.endpoints.iter().all(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true)));
}

fn run(proxy: &str, full_s: f64, changes: &[f64], tried: usize) -> report::RunResult {
    report::RunResult {
        proxy: proxy.into(),
        full_sync: Some(Duration::from_secs_f64(full_s)),
        change_ms: changes.to_vec(),
        changes_tried: tried,
        ..Default::default()
    }
}

#[test]
fn table_shows_kube_proxy_time_over_rudder_time() {
    let runs = [run("rudder-service-proxy", 2.0, &[10.0, 20.0], 2), run("kube-proxy", 6.0, &[40.0, 80.0], 2)];
    let table = report::table(&runs);
    let rudder_row = table.lines().nth(1).unwrap_or_default();
    assert!(rudder_row.contains("3.00x"), "full-sync ratio missing: {table}");
    assert!(rudder_row.contains("4.00x"), "change ratio missing: {table}");
}

#[test]
fn target_line_verdicts() {
    let cases = [
        ("fast", run("rudder-service-proxy", 1.0, &[5.0, 50.0], 2), "MET (50.0 ms)"),
        ("slow", run("rudder-service-proxy", 1.0, &[5.0, 150.0], 2), "NOT MET (150.0 ms)"),
        ("lost change", run("rudder-service-proxy", 1.0, &[5.0], 2), "NOT MET (1 of 2 changes never seen"),
    ];
    for (name, r, want) in cases {
        let line = report::target_line(Some(&r), 100.0, 1000);
        assert!(line.contains(want), "case {name}: {line}");
    }
    assert!(report::target_line(None, 100.0, 1000).contains("not measured"));
}

#[test]
fn signed_ms_is_negative_when_the_event_came_first() {
    let t0 = std::time::Instant::now();
    let t1 = t0 + Duration::from_millis(3);
    assert!((monitor::signed_ms(t0, t1) - 3.0).abs() < 1e-9);
    assert!((monitor::signed_ms(t1, t0) + 3.0).abs() < 1e-9);
}

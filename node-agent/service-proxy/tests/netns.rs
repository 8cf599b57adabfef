//! Applies rendered rulesets with the real `nft` inside a throwaway network namespace, and times
//! rule syncs at 1000 services × 10 endpoints. Needs root: run with
//! `cargo test -p rudder-service-proxy --test netns -- --ignored --nocapture`.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::Instant;

use rudder_service_proxy::config::Config;
use rudder_service_proxy::model::{Endpoint, PortKey, Protocol, ServicePort};
use rudder_service_proxy::incremental::Rendered;
use rudder_service_proxy::{render, transaction};

/// A network namespace removed on drop.
struct Netns(String);

impl Netns {
    fn new() -> Self {
        let name = format!("rudder-proxy-test-{}", std::process::id());
        assert!(Command::new("ip").args(["netns", "add", &name]).status().is_ok_and(|s| s.success()), "ip netns add");
        Self(name)
    }

    fn nft(&self, script: &str) -> Result<(), String> {
        use std::io::Write as _;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.0, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        child.stdin.take().ok_or("no stdin")?.write_all(script.as_bytes()).map_err(|e| e.to_string())?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
    }

    fn list(&self, what: &[&str]) -> String {
        let out = Command::new("ip").args(["netns", "exec", &self.0, "nft", "list"]).args(what).output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "delete", &self.0]).status();
    }
}

fn service(i: u32, endpoints: u32) -> ServicePort {
    let ip = |base: u32| Ipv4Addr::from(base + i);
    ServicePort {
        key: PortKey { namespace: "bench".into(), name: format!("svc-{i}"), port_name: "http".into(), protocol: Protocol::Tcp },
        cluster_ip: ip(u32::from(Ipv4Addr::new(10, 96, 16, 0))),
        port: 80,
        node_port: i.is_multiple_of(10).then(|| 30000 + u16::try_from(i).unwrap_or(0)),
        affinity_seconds: i.is_multiple_of(7).then_some(300),
        internal_local: false,
        external_local: i.is_multiple_of(20),
        endpoints: (0..endpoints)
            .map(|e| Endpoint {
                ip: Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 244, 0, 0)) + i * 16 + e + 2),
                port: 8080,
                node_name: Some(format!("n{}", e % 3)),
                ready: true,
                serving: true,
                terminating: false,
            })
            .collect(),
    }
}

fn config() -> Config {
    Config::new("n1", Ipv4Addr::new(127, 0, 1, 1), "10.244.0.0/16", &[]).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
#[ignore = "needs root and nft; creates a network namespace"]
fn applies_and_updates_in_a_namespace() {
    let ns = Netns::new();
    let config = config();
    let base = render::base(&config);
    // Someone else's table must survive every sync.
    ns.nft("table ip other {\n chain c {\n type filter hook input priority 0;\n }\n}\n").unwrap_or_else(|e| panic!("{e}"));

    let mut ports: Vec<ServicePort> = (0..3).map(|i| service(i, 2)).collect();
    ports[2].endpoints.clear();
    let first = render::services(&config, &ports);
    ns.nft(&transaction::full(&base, &first)).unwrap_or_else(|e| panic!("full sync: {e}"));
    let listed = ns.list(&["table", "ip", "rudder-proxy"]);
    assert!(listed.contains("dnat to 10.244.0.2:8080"), "{listed}");
    assert!(listed.contains("numgen random mod 2"), "{listed}");
    assert!(listed.contains("10.96.16.2 . tcp . 80 : goto reject-chain"), "no-endpoint service rejected: {listed}");
    assert!(listed.contains("flags dynamic,timeout"), "affinity set: {listed}");

    // A restart replaces the table in one go (same content, no error on existing objects).
    ns.nft(&transaction::full(&base, &first)).unwrap_or_else(|e| panic!("second full sync: {e}"));

    // Incremental: an endpoint goes, a service goes.
    ports[1].endpoints.truncate(1);
    ports.remove(0);
    let second = render::services(&config, &ports);
    ns.nft(&transaction::diff(&first, &second)).unwrap_or_else(|e| panic!("incremental sync: {e}"));
    let listed = ns.list(&["table", "ip", "rudder-proxy"]);
    assert!(!listed.contains("10.244.0.2:8080"), "removed service's rules are gone: {listed}");
    assert!(!listed.contains("aff-"), "its affinity sets too: {listed}");
    assert!(listed.contains("dnat to 10.244.0.18:8080") && !listed.contains("10.244.0.19:8080"), "{listed}");
    let other = ns.list(&["table", "ip", "other"]);
    assert!(other.contains("chain c"), "other tables untouched: {other}");

    // Everything gone: only the base remains.
    ns.nft(&transaction::diff(&second, &render::services(&config, &[]))).unwrap_or_else(|e| panic!("emptying: {e}"));
    let listed = ns.list(&["table", "ip", "rudder-proxy"]);
    assert!(!listed.contains("dnat"), "{listed}");
}

#[test]
#[ignore = "needs root and nft; creates a network namespace"]
fn sync_latency_at_1000_services() {
    let ns = Netns::new();
    let config = config();
    let base = render::base(&config);
    let mut ports: Vec<ServicePort> = (0..1000).map(|i| service(i, 10)).collect();

    let t = Instant::now();
    let (mut rendered, _) = Rendered::default().next(&config, ports.clone());
    let full_rules = rendered.whole();
    let script = transaction::full(&base, &full_rules);
    let render_time = t.elapsed();
    ns.nft(&script).unwrap_or_else(|e| panic!("full sync: {e}"));
    println!("full sync: {} chains, {} lines; render {render_time:?}, total {:?}", full_rules.chains.len(), script.lines().count(), t.elapsed());

    let mut worst = std::time::Duration::ZERO;
    for round in 0..5u32 {
        // One endpoint of one service turns unready.
        ports[usize::try_from(round * 97).unwrap_or(0)].endpoints[3].ready = false;
        let input = ports.clone();
        let t = Instant::now();
        let (next, change) = rendered.next(&config, input);
        let script = transaction::diff(&change.old, &change.new);
        let render_time = t.elapsed();
        ns.nft(&script).unwrap_or_else(|e| panic!("incremental sync: {e}"));
        let elapsed = t.elapsed();
        worst = worst.max(elapsed);
        println!("single endpoint change: {} commands; render+diff {render_time:?}, with nft apply {elapsed:?}", script.lines().count());
        rendered = next;
    }
    assert!(worst.as_millis() < 100, "a single endpoint change took {worst:?}");
}

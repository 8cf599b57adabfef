use super::*;
use crate::config::decode;

const HEADER: &str = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n";

fn run(yaml: &str) -> Result<Vec<Profile>, Vec<String>> {
    decode(yaml, "test").map_err(|e| vec![e.to_string()]).and_then(|c| validate(&c))
}

#[test]
fn accepts() {
    let cases = [
        ("empty configuration gives the default profile", HEADER.to_string(), vec!["default-scheduler"]),
        (
            "two profiles",
            format!("{HEADER}profiles:\n- schedulerName: default-scheduler\n- schedulerName: packer\n"),
            vec!["default-scheduler", "packer"],
        ),
        (
            "leader election block",
            format!("{HEADER}leaderElection:\n  leaderElect: true\n  leaseDuration: 15s\n  renewDeadline: 10s\n  retryPeriod: 2s\n  resourceName: kube-scheduler\n  resourceNamespace: kube-system\n"),
            vec!["default-scheduler"],
        ),
    ];
    for (name, yaml, want) in cases {
        match run(&yaml) {
            Ok(ps) => assert_eq!(ps.iter().map(|p| p.scheduler_name.as_str()).collect::<Vec<_>>(), want, "case {name}"),
            Err(e) => panic!("case {name}: {e:?}"),
        }
    }
}

#[test]
fn rejects() {
    let cases = [
        ("wrong apiVersion", "apiVersion: v1\nkind: KubeSchedulerConfiguration\n".to_string(), "apiVersion: unsupported value \"v1\""),
        ("wrong kind", "apiVersion: kubescheduler.config.k8s.io/v1\nkind: Foo\n".to_string(), "kind: unsupported value \"Foo\""),
        ("global percentage", format!("{HEADER}percentageOfNodesToScore: -1\n"), "percentageOfNodesToScore: invalid value -1"),
        (
            "duplicate scheduler names",
            format!("{HEADER}profiles:\n- schedulerName: a\n- schedulerName: a\n"),
            "profiles[1].schedulerName: duplicate value \"a\"",
        ),
        ("bad scheduler name", format!("{HEADER}profiles:\n- schedulerName: Big_Name\n"), "profiles[0].schedulerName: invalid value"),
        (
            "renew deadline not below lease duration",
            format!("{HEADER}leaderElection:\n  leaseDuration: 10s\n  renewDeadline: 10s\n"),
            "leaderElection.renewDeadline",
        ),
        ("bad duration", format!("{HEADER}leaderElection:\n  retryPeriod: soon\n"), "leaderElection.retryPeriod: invalid value \"soon\""),
        ("other lock kind", format!("{HEADER}leaderElection:\n  resourceLock: endpoints\n"), "leaderElection.resourceLock"),
        ("extenders", format!("{HEADER}extenders:\n- urlPrefix: http://x\n"), "extenders: unsupported"),
        ("zero initial backoff", format!("{HEADER}podInitialBackoffSeconds: 0\n"), "podInitialBackoffSeconds: invalid value 0: must be greater than 0"),
        (
            "initial backoff above the default cap",
            format!("{HEADER}podInitialBackoffSeconds: 20\n"),
            "podMaxBackoffSeconds: invalid value 10: must be greater than or equal to podInitialBackoffSeconds (20)",
        ),
        ("qps without burst", format!("{HEADER}clientConnection:\n  qps: 50\n"), "clientConnection.burst: required"),
        ("infinite qps", format!("{HEADER}clientConnection:\n  qps: -.inf\n  burst: 1\n"), "clientConnection.qps: invalid value -inf"),
        ("negative burst", format!("{HEADER}clientConnection:\n  qps: 50\n  burst: -1\n"), "clientConnection.burst: invalid value -1"),
        ("client connection typo", format!("{HEADER}clientConnection:\n  qpss: 50\n"), "unknown field `qpss`"),
        ("top-level typo", format!("{HEADER}profile: []\n"), "unknown field `profile`"),
        (
            "a profile without a queue order",
            format!("{HEADER}profiles:\n- schedulerName: a\n- schedulerName: b\n  plugins:\n    queueSort:\n      disabled:\n      - name: '*'\n"),
            "profiles[1].plugins.queueSort: invalid value: no queue sort plugin is enabled",
        ),
    ];
    for (name, yaml, want) in cases {
        match run(&yaml) {
            Ok(p) => panic!("case {name}: accepted {p:?}"),
            Err(errs) => assert!(errs.iter().any(|e| e.contains(want)), "case {name}: {errs:?}"),
        }
    }
}

#[test]
fn pod_backoff_defaults_and_overrides() {
    let secs = std::time::Duration::from_secs;
    let cases = [
        ("defaults", HEADER.to_string(), (secs(1), secs(10))),
        ("both set", format!("{HEADER}podInitialBackoffSeconds: 2\npodMaxBackoffSeconds: 30\n"), (secs(2), secs(30))),
        ("cap only", format!("{HEADER}podMaxBackoffSeconds: 1\n"), (secs(1), secs(1))),
    ];
    for (name, yaml, want) in cases {
        let cfg = decode(&yaml, "test").unwrap_or_else(|e| panic!("case {name}: {e}"));
        assert!(validate(&cfg).is_ok(), "case {name}");
        assert_eq!(cfg.pod_backoff(), want, "case {name}");
    }
}

#[test]
fn client_connection_overrides_the_flags_it_sets() {
    let flags = component_base::CommonFlags {
        kubeconfig: Some("/flag.kubeconfig".into()),
        health_bind_address: "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
        log_format: "text".into(),
        kube_api_qps: 10.0,
        kube_api_burst: 20,
    };
    let cases = [
        ("nothing set keeps the flags", "clientConnection: {}\n", ("/flag.kubeconfig", 10.0, 20)),
        ("qps and burst", "clientConnection:\n  qps: 5000\n  burst: 6000\n", ("/flag.kubeconfig", 5000.0, 6000)),
        ("negative qps lifts the limit", "clientConnection:\n  qps: -1\n", ("/flag.kubeconfig", 0.0, 20)),
        ("kubeconfig", "clientConnection:\n  kubeconfig: /cfg.kubeconfig\n", ("/cfg.kubeconfig", 10.0, 20)),
    ];
    for (name, block, (kubeconfig, qps, burst)) in cases {
        let cfg = decode(&format!("{HEADER}{block}"), "test").unwrap_or_else(|e| panic!("case {name}: {e}"));
        assert!(validate(&cfg).is_ok(), "case {name}");
        let cc = cfg.client_connection.unwrap_or_default();
        let out = cc.apply(&flags);
        assert_eq!(out.kubeconfig.as_deref(), Some(std::path::Path::new(kubeconfig)), "case {name}");
        assert_eq!((out.kube_api_qps, out.kube_api_burst), (qps, burst), "case {name}");
    }
}

#[test]
fn dns_subdomains() {
    let cases = [("plain", "default-scheduler", true), ("dotted", "a.b", true), ("upper", "A", false), ("empty", "", false), ("dash end", "a-", false)];
    for (name, s, want) in cases {
        assert_eq!(is_dns_subdomain(s), want, "case {name}");
    }
}

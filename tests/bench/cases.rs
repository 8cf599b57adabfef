//! The benchmark's workloads (named like upstream scheduler_perf's) and the objects they create.

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::json;

/// Every node carries this label, so a case's nodes can be deleted with one selector.
pub const NODE_LABEL: &str = "bench.rudder.dev/node";
/// The label the measured pods share; anti-affinity and spread select on it.
pub const APP_LABEL: &str = "app";
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";
/// Zones the nodes are spread over, round-robin.
pub const ZONES: [&str; 3] = ["zone-a", "zone-b", "zone-c"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Plain pods with small requests.
    Basic,
    /// Required pod anti-affinity on the hostname against the other pods of the case: one per node.
    AntiAffinity,
    /// A zone topologySpreadConstraint, maxSkew 1, DoNotSchedule.
    Spread,
}

#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub name: &'static str,
    pub kind: Kind,
    pub nodes: usize,
    pub pods: usize,
}

pub const CASES: [Case; 4] = [
    Case { name: "basic-1000n-3000p", kind: Kind::Basic, nodes: 1000, pods: 3000 },
    Case { name: "basic-5000n-10000p", kind: Kind::Basic, nodes: 5000, pods: 10000 },
    Case { name: "anti-affinity-5000n-2000p", kind: Kind::AntiAffinity, nodes: 5000, pods: 2000 },
    Case { name: "spread-5000n-5000p", kind: Kind::Spread, nodes: 5000, pods: 5000 },
];

impl Case {
    /// The case with every count divided by `divisor` (at least one of each).
    pub fn scaled(self, divisor: usize) -> Self {
        let d = divisor.max(1);
        Self { nodes: (self.nodes / d).max(1), pods: (self.pods / d).max(1), ..self }
    }

    /// The value of [`APP_LABEL`] on this case's pods.
    pub fn app(&self) -> &'static str {
        match self.kind {
            Kind::Basic => "bench-basic",
            Kind::AntiAffinity => "bench-anti-affinity",
            Kind::Spread => "bench-spread",
        }
    }
}

/// Resolves a comma-separated list of case names (empty = all cases, in the table's order).
pub fn select(names: &str) -> anyhow::Result<Vec<Case>> {
    let wanted: Vec<&str> = names.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
    if wanted.is_empty() {
        return Ok(CASES.to_vec());
    }
    let mut out = Vec::new();
    for name in wanted {
        let Some(case) = CASES.iter().find(|c| c.name == name) else {
            let known: Vec<&str> = CASES.iter().map(|c| c.name).collect();
            bail!("--cases: unknown case {name:?} (known: {})", known.join(", "));
        };
        out.push(*case);
    }
    Ok(out)
}

pub fn node_name(i: usize) -> String {
    format!("bench-node-{i}")
}

/// A Ready node with status, as a node agent would register it (no agent runs behind it).
pub fn node(i: usize, now: &str) -> anyhow::Result<Node> {
    let name = node_name(i);
    let zone = ZONES[i % ZONES.len()];
    let resources = json!({"cpu": "32", "memory": "256Gi", "pods": "110"});
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {HOSTNAME_LABEL: name, ZONE_LABEL: zone, NODE_LABEL: "true"},
        },
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "benchmark node without an agent",
                "lastHeartbeatTime": now, "lastTransitionTime": now,
            }],
        },
    }))
    .context("failed to build a node object")
}

/// A measured pod of `case` (or the warm-up pod when `app` differs from the case's).
pub fn pod(kind: Kind, app: &str, name: &str) -> anyhow::Result<Pod> {
    let mut spec = json!({
        "automountServiceAccountToken": false,
        "terminationGracePeriodSeconds": 0,
        "containers": [{
            "name": "pause",
            "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
        }],
    });
    let selector = json!({"matchLabels": {APP_LABEL: app}});
    match kind {
        Kind::Basic => {}
        Kind::AntiAffinity => {
            spec["affinity"] = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": selector, "topologyKey": HOSTNAME_LABEL},
            ]}});
        }
        Kind::Spread => {
            spec["topologySpreadConstraints"] = json!([{
                "maxSkew": 1, "topologyKey": ZONE_LABEL, "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": selector,
            }]);
        }
    }
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {APP_LABEL: app}},
        "spec": spec,
    }))
    .context("failed to build a pod object")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_resolves_names_and_rejects_unknown() {
        let cases = [
            ("", 4, true),
            ("basic-1000n-3000p", 1, true),
            ("basic-1000n-3000p, spread-5000n-5000p", 2, true),
            ("nope", 0, false),
        ];
        for (input, len, ok) in cases {
            let got = select(input);
            assert_eq!(got.is_ok(), ok, "{input:?}");
            if let Ok(got) = got {
                assert_eq!(got.len(), len, "{input:?}");
            }
        }
    }

    #[test]
    fn quick_divides_counts() {
        let c = CASES[1].scaled(10);
        assert_eq!((c.nodes, c.pods), (500, 1000));
    }

    #[test]
    fn pods_carry_their_constraint() {
        let anti = pod(Kind::AntiAffinity, "x", "p").ok().and_then(|p| p.spec);
        assert!(anti.and_then(|s| s.affinity).and_then(|a| a.pod_anti_affinity).is_some());
        let spread = pod(Kind::Spread, "x", "p").ok().and_then(|p| p.spec);
        assert_eq!(spread.and_then(|s| s.topology_spread_constraints).map(|t| t.len()), Some(1));
        let node = node(4, "2026-01-01T00:00:00Z").ok().and_then(|n| n.status).and_then(|s| s.allocatable);
        assert_eq!(node.and_then(|a| a.get("pods").cloned()).map(|q| q.0), Some("110".to_string()));
    }
}

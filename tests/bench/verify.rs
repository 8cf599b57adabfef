//! Checking a run's final placements: every pod bound, and the case's constraint held.

use std::collections::{BTreeMap, HashMap};

use super::cases::{Kind, ZONES, node_name};

/// Failure messages for `placements` (pod → node, "" = unbound) of a case of `kind` with `expected`
/// pods over `nodes` nodes; empty when all is well.
pub fn check(kind: Kind, placements: &HashMap<String, String>, expected: usize, nodes: usize) -> Vec<String> {
    let mut failures = Vec::new();
    let unbound = placements.values().filter(|n| n.is_empty()).count();
    if placements.len() != expected || unbound > 0 {
        failures.push(format!("{} of {expected} pods exist, {unbound} of them unbound", placements.len()));
    }
    let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
    for node in placements.values().filter(|n| !n.is_empty()) {
        *per_node.entry(node.as_str()).or_default() += 1;
    }
    match kind {
        Kind::Basic => {}
        Kind::AntiAffinity => {
            let shared: Vec<String> =
                per_node.iter().filter(|(_, c)| **c > 1).map(|(n, c)| format!("{n}={c}")).collect();
            if !shared.is_empty() {
                let shown = shared.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
                failures.push(format!("anti-affinity violated on {} nodes ({shown}…)", shared.len()));
            }
        }
        Kind::Spread => {
            // Node names map to zones by index; build the lookup once instead of per pod.
            let zone_by_node: HashMap<String, &str> =
                (0..nodes).map(|i| (node_name(i), ZONES[i % ZONES.len()])).collect();
            let mut per_zone: BTreeMap<&str, usize> =
                ZONES.iter().take(nodes.min(ZONES.len())).map(|z| (*z, 0)).collect();
            for (node, count) in &per_node {
                match zone_by_node.get(*node).copied() {
                    Some(z) => *per_zone.entry(z).or_default() += count,
                    None => failures.push(format!("pods on unknown node {node}")),
                }
            }
            let max = per_zone.values().max().copied().unwrap_or(0);
            let min = per_zone.values().min().copied().unwrap_or(0);
            if max - min > 1 {
                failures.push(format!("zone skew {} > maxSkew 1 ({per_zone:?})", max - min));
            }
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(p, n)| (p.to_string(), n.to_string())).collect()
    }

    #[test]
    fn checks_by_kind() {
        // Nodes 0,1,2 are zone-a,b,c.
        let cases = [
            ("all bound", Kind::Basic, placed(&[("a", "bench-node-0"), ("b", "bench-node-0")]), 2, 0),
            ("one unbound", Kind::Basic, placed(&[("a", "bench-node-0"), ("b", "")]), 2, 1),
            ("missing pod", Kind::Basic, placed(&[("a", "bench-node-0")]), 2, 1),
            ("anti ok", Kind::AntiAffinity, placed(&[("a", "bench-node-0"), ("b", "bench-node-1")]), 2, 0),
            ("anti shared", Kind::AntiAffinity, placed(&[("a", "bench-node-1"), ("b", "bench-node-1")]), 2, 1),
            ("spread ok", Kind::Spread, placed(&[("a", "bench-node-0"), ("b", "bench-node-1")]), 2, 0),
            ("spread skew 2", Kind::Spread, placed(&[("a", "bench-node-0"), ("b", "bench-node-3")]), 2, 1),
        ];
        for (name, kind, p, expected, want) in cases {
            let got = check(kind, &p, expected, 6);
            assert_eq!(got.len(), want, "{name}: {got:?}");
        }
    }
}

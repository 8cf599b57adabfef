//! Pods created together and scheduled one after the other: each cycle's snapshot holds the pods assumed
//! before it, so a DoNotSchedule constraint keeps the batch spread (the benchmark's "zone skew 17" bug).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, TopologySpreadConstraint};

use super::*;
use crate::cache::SchedulerCache;
use crate::framework::Framework;
use crate::plugins::node_resources_fit::NodeResourcesFit;

/// Schedules `count` copies of `template` in turn, assuming each; returns how many went to each value of
/// `key` (nodes without it count under "").
fn place_batch(nodes: &[Node], template: &Pod, count: usize, key: &str) -> BTreeMap<String, usize> {
    let framework = Framework::new(vec![
        (Arc::new(PodTopologySpread::default()) as Arc<dyn Plugin>, 2),
        (Arc::new(NodeResourcesFit::default()) as Arc<dyn Plugin>, 1),
    ]);
    let cache = SchedulerCache::new();
    cache.resync_nodes(&nodes.iter().cloned().map(Arc::new).collect::<Vec<_>>());
    cache.resync_pods(&[]);
    let mut per_domain = BTreeMap::new();
    for i in 0..count {
        let mut p = template.clone();
        p.metadata.name = Some(format!("web-{i}"));
        let snapshot = cache.snapshot();
        let chosen = framework.schedule(&p, &snapshot);
        let Ok(chosen) = chosen else { panic!("pod {i} did not schedule: {chosen:?}") };
        let domain = snapshot.get(&chosen).and_then(|n| n.node().metadata.labels.as_ref()?.get(key).cloned()).unwrap_or_default();
        *per_domain.entry(domain).or_default() += 1;
        cache.assume(Arc::new(p), &chosen);
    }
    per_domain
}

fn skew(per_domain: &BTreeMap<String, usize>) -> usize {
    let max = per_domain.values().max().copied().unwrap_or(0);
    let min = per_domain.values().min().copied().unwrap_or(0);
    max - min
}

fn hard(key: &str) -> Vec<TopologySpreadConstraint> {
    vec![tsc(key, 1, DO_NOT_SCHEDULE, "web")]
}

#[test]
fn a_batch_spreads_evenly_over_uneven_zones() {
    // Zone a has four nodes, b two, c one: without the constraint the scores would favour a.
    let zones = [("n1", "a"), ("n2", "a"), ("n3", "a"), ("n4", "a"), ("n5", "b"), ("n6", "b"), ("n7", "c")];
    let nodes: Vec<Node> = zones.iter().map(|(n, z)| zone_node(n, Some(z))).collect();
    let template = with_constraints(app("web", "web"), hard(LABEL_ZONE));
    let placed = place_batch(&nodes, &template, 30, LABEL_ZONE);
    assert_eq!(placed.values().sum::<usize>(), 30);
    assert_eq!(placed.len(), 3, "every zone used: {placed:?}");
    assert!(skew(&placed) <= 1, "zone skew within maxSkew 1: {placed:?}");
}

#[test]
fn six_pods_on_three_hosts_go_two_per_host() {
    let nodes = vec![zone_node("n1", None), zone_node("n2", None), zone_node("n3", None)];
    let template = with_constraints(app("web", "web"), hard(LABEL_HOSTNAME));
    let placed = place_batch(&nodes, &template, 6, LABEL_HOSTNAME);
    assert_eq!(placed.values().copied().collect::<Vec<_>>(), vec![2, 2, 2], "{placed:?}");
}

#[test]
fn soft_constraints_also_spread_a_batch() {
    let zones = [("n1", "a"), ("n2", "a"), ("n3", "a"), ("n4", "b")];
    let nodes: Vec<Node> = zones.iter().map(|(n, z)| zone_node(n, Some(z))).collect();
    let template = with_constraints(app("web", "web"), vec![tsc(LABEL_ZONE, 1, SCHEDULE_ANYWAY, "web")]);
    let placed = place_batch(&nodes, &template, 20, LABEL_ZONE);
    assert!(skew(&placed) <= 2, "scores keep the zones close: {placed:?}");
}

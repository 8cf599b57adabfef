use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod, Taint, TopologySpreadConstraint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::*;
use crate::framework::{Code, CycleState, NodeInfo, NodeScore, NormalizeScorePlugin, Snapshot, Status};
use crate::testing::{node, node_info, owned_by, pod};

mod batch;
mod filter_cases;

fn scores(p: &Pod, nodes: &[NodeInfo]) -> Vec<i64> {
    let mut state = CycleState::new();
    let refs: Vec<&NodeInfo> = nodes.iter().collect();
    assert!(PodTopologySpread::default().pre_score(&mut state, p, &refs, &Snapshot::new(nodes.to_vec())).is_success());
    let mut out: Vec<NodeScore> = nodes
        .iter()
        .map(|n| NodeScore { name: n.name(), score: PodTopologySpread::default().score(&state, p, n).unwrap_or(-1) })
        .collect();
    PodTopologySpread::default().normalize_score(&state, p, &mut out);
    out.into_iter().map(|s| s.score).collect()
}

/// A node labelled with its hostname and, when given, a zone.
fn zone_node(name: &str, zone: Option<&str>) -> Node {
    let mut n = node(name, "8", "16Gi");
    if let (Some(z), Some(labels)) = (zone, n.metadata.labels.as_mut()) {
        labels.insert(LABEL_ZONE.into(), z.into());
    }
    n
}

fn tainted(mut n: Node) -> Node {
    if let Some(spec) = n.spec.as_mut() {
        spec.taints = Some(vec![Taint { key: "dedicated".into(), effect: "NoSchedule".into(), ..Default::default() }]);
    }
    n
}

/// A pod in `default` with these labels.
fn labelled(name: &str, labels: &[(&str, &str)]) -> Pod {
    let mut p = pod(name);
    p.metadata.labels = Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>());
    p
}

fn app(name: &str, app: &str) -> Pod {
    labelled(name, &[("app", app)])
}

/// A constraint selecting `app=<selects>`.
fn tsc(key: &str, max_skew: i32, when: &str, selects: &str) -> TopologySpreadConstraint {
    TopologySpreadConstraint {
        max_skew,
        topology_key: key.into(),
        when_unsatisfiable: when.into(),
        label_selector: Some(LabelSelector {
            match_labels: Some([("app".to_string(), selects.to_string())].into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn zone_tsc(max_skew: i32, selects: &str) -> TopologySpreadConstraint {
    tsc(LABEL_ZONE, max_skew, DO_NOT_SCHEDULE, selects)
}

fn with_constraints(mut p: Pod, constraints: Vec<TopologySpreadConstraint>) -> Pod {
    if let Some(s) = p.spec.as_mut() {
        s.topology_spread_constraints = Some(constraints);
    }
    p
}

/// Nodes with the existing pods placed on them by node name.
fn snapshot(nodes: &[Node], existing: &[(&str, Pod)]) -> Snapshot {
    let infos = nodes
        .iter()
        .map(|n| {
            let name = n.metadata.name.clone().unwrap_or_default();
            let pods = existing.iter().filter(|(on, _)| *on == name).map(|(_, p)| p.clone()).collect();
            node_info(n.clone(), pods)
        })
        .collect();
    Snapshot::new(infos)
}

/// PreFilter then Filter on every node: the codes in node order, or PreFilter's status when it does not
/// succeed.
fn filter_codes(p: &Pod, snapshot: &Snapshot) -> Result<Vec<Code>, Status> {
    let plugin = PodTopologySpread::default();
    let mut state = CycleState::new();
    let pre = plugin.pre_filter(&mut state, p, snapshot);
    if !pre.is_success() {
        return Err(pre);
    }
    Ok(snapshot.nodes().iter().map(|n| plugin.filter(&state, p, n).code()).collect())
}

/// PreFilter over `all`, then PreScore/Score/NormalizeScore over the `feasible` nodes (by name): the raw
/// and the normalized scores.
fn own_scores(p: &Pod, all: &Snapshot, feasible: &[&str]) -> (Vec<i64>, Vec<i64>) {
    let plugin = PodTopologySpread::default();
    let mut state = CycleState::new();
    let _ = plugin.pre_filter(&mut state, p, all);
    let nodes: Vec<&NodeInfo> = feasible.iter().filter_map(|n| all.get(n)).collect();
    assert!(plugin.pre_score(&mut state, p, &nodes, all).is_success(), "pre-score runs");
    let mut out: Vec<NodeScore> =
        nodes.iter().map(|n| NodeScore { name: n.name(), score: plugin.score(&state, p, n).unwrap_or(-1) }).collect();
    let raw = out.iter().map(|s| s.score).collect();
    assert!(plugin.normalize_score(&state, p, &mut out).is_success());
    (raw, out.into_iter().map(|s| s.score).collect())
}

#[test]
fn prefers_nodes_with_fewer_siblings() {
    let me = owned_by(pod("new"), "rs1");
    let nodes = vec![
        node_info(node("a", "4", "4Gi"), vec![owned_by(pod("s1"), "rs1"), owned_by(pod("s2"), "rs1")]),
        node_info(node("b", "4", "4Gi"), vec![owned_by(pod("s3"), "rs1")]),
        node_info(node("c", "4", "4Gi"), vec![owned_by(pod("x"), "other"), pod("y")]),
    ];
    let s = scores(&me, &nodes);
    assert!(s[2] > s[1] && s[1] > s[0], "emptiest node first, got {s:?}");
    assert_eq!(s[2], 100);
}

#[test]
fn all_equal_scores_max() {
    let me = owned_by(pod("new"), "rs1");
    let nodes = vec![node_info(node("a", "4", "4Gi"), vec![]), node_info(node("b", "4", "4Gi"), vec![])];
    assert_eq!(scores(&me, &nodes), vec![100, 100]);
}

#[test]
fn skips_unowned_pods() {
    let ni = node_info(node("a", "4", "4Gi"), vec![]);
    assert!(PodTopologySpread::default().pre_score(&mut CycleState::new(), &pod("lonely"), &[&ni], &Snapshot::new(vec![ni.clone()])).is_skip());
}

#[test]
fn pods_without_hard_constraints_skip_the_filter() {
    let s = snapshot(&[zone_node("n1", Some("a"))], &[]);
    let soft = with_constraints(app("p", "web"), vec![tsc(LABEL_ZONE, 1, SCHEDULE_ANYWAY, "web")]);
    let cases = [("no constraints", app("p", "web")), ("only ScheduleAnyway", soft)];
    for (name, p) in cases {
        assert_eq!(filter_codes(&p, &s).map_err(|st| st.code()), Err(Code::Skip), "case {name}");
    }
}

#[test]
fn own_soft_constraints_score_by_matching_pods_in_the_domain() {
    let nodes = [zone_node("n1", Some("a")), zone_node("n2", Some("a")), zone_node("n3", Some("b")), zone_node("n4", None)];
    let existing = [("n1", app("e1", "web")), ("n2", app("e2", "web")), ("n2", app("e3", "web")), ("n3", app("x", "db"))];
    let s = snapshot(&nodes, &existing);
    let p = with_constraints(app("p", "web"), vec![tsc(LABEL_ZONE, 1, SCHEDULE_ANYWAY, "web")]);

    let (raw, got) = own_scores(&p, &s, &["n1", "n3", "n4"]);
    assert_eq!(got[1], 100, "empty zone b scores best: {got:?}");
    assert!(got[0] < got[1], "crowded zone a, including pods on the infeasible n2, scores less: {got:?}");
    assert_eq!(got[2], 0, "a node without the zone label scores 0: {got:?}");

    // Counted over the whole cluster: n2's pods make zone a worse than when only n1's count.
    let one_in_a = snapshot(&nodes, &existing[..1]);
    let (fewer, _) = own_scores(&p, &one_in_a, &["n1", "n3", "n4"]);
    assert!(fewer[0] < raw[0], "zone a with one pod is less crowded than with three: {fewer:?} vs {raw:?}");
    // Two feasible domains: weight ln(4), three pods in zone a.
    assert_eq!(raw[0], (3.0 * 4_f64.ln()).round() as i64);
}

#[test]
fn own_constraints_replace_the_system_defaults() {
    // The pod has a controller, so the defaults would apply; its DoNotSchedule constraint replaces them
    // and leaves nothing to score.
    let p = with_constraints(owned_by(app("p", "web"), "rs1"), vec![zone_tsc(1, "web")]);
    let ni = node_info(zone_node("n1", Some("a")), vec![]);
    assert!(PodTopologySpread::default().pre_score(&mut CycleState::new(), &p, &[&ni], &Snapshot::new(vec![ni.clone()])).is_skip());
}

use super::*;
use crate::framework::{NodeInfo, PluginSpec};
use crate::plugins::{DEFAULT_PLUGINS, default_binder, in_tree_registry};
use crate::testing::{node, node_info, owned_by, pod, pod_with_cpu};
use rand::SeedableRng;

/// The default profile without the API-bound binder.
fn default_framework() -> Framework {
    let specs: Vec<PluginSpec> = DEFAULT_PLUGINS.iter().copied().filter(|s| s.name != default_binder::NAME).collect();
    match Framework::from_registry(&in_tree_registry(), &specs, &Handle::default()) {
        Ok(f) => f,
        Err(e) => panic!("default profile must build: {e}"),
    }
}

fn three_nodes(pods_on_a: Vec<Pod>) -> Snapshot {
    Snapshot::new(vec![
        node_info(node("a", "4", "8Gi"), pods_on_a),
        node_info(node("b", "4", "8Gi"), vec![]),
        node_info(node("c", "4", "8Gi"), vec![]),
    ])
}

#[test]
fn failure_messages() {
    let f = default_framework();
    let mut tainted = node("c", "4", "8Gi");
    if let Some(s) = tainted.spec.as_mut() {
        s.taints = Some(vec![k8s_openapi::api::core::v1::Taint {
            key: "k".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        }]);
    }
    let mixed = Snapshot::new(vec![
        node_info(node("a", "4", "8Gi"), vec![pod_with_cpu("x", "3")]),
        node_info(node("b", "1", "8Gi"), vec![]),
        node_info(tainted, vec![]),
    ]);
    let cases = [
        (
            "cpu 100 fits nowhere and preemption cannot help",
            pod_with_cpu("p", "100"),
            three_nodes(vec![]),
            Failure::Unschedulable(
                "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.".into(),
            ),
        ),
        (
            "one node short, one too small, one tainted",
            pod_with_cpu("p", "2"),
            mixed,
            Failure::Unschedulable(
                "0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling.".into(),
            ),
        ),
        ("no nodes", pod("p"), Snapshot::default(), Failure::Unschedulable(NO_NODES_AVAILABLE.into())),
    ];
    for (name, p, snapshot, want) in cases {
        assert_eq!(f.schedule(&p, &snapshot), Err(want), "case {name}");
    }
}

#[test]
fn picks_a_feasible_node() {
    let f = default_framework();
    // Only b has room.
    let snapshot = Snapshot::new(vec![
        node_info(node("a", "1", "8Gi"), vec![pod_with_cpu("x", "1")]),
        node_info(node("b", "4", "8Gi"), vec![]),
    ]);
    assert_eq!(f.schedule(&pod_with_cpu("p", "2"), &snapshot), Ok("b".to_string()));
}

#[test]
fn spreads_replicas_away_from_their_siblings() {
    let f = default_framework();
    let siblings = vec![owned_by(pod("s1"), "rs"), owned_by(pod("s2"), "rs")];
    let snapshot = Snapshot::new(vec![
        node_info(node("a", "4", "8Gi"), siblings),
        node_info(node("b", "4", "8Gi"), vec![owned_by(pod("s3"), "rs")]),
        node_info(node("c", "4", "8Gi"), vec![]),
    ]);
    for _ in 0..10 {
        assert_eq!(f.schedule(&owned_by(pod("new"), "rs"), &snapshot), Ok("c".to_string()));
    }
}

struct Failing;
impl Plugin for Failing {
    fn name(&self) -> &'static str {
        "Failing"
    }
    fn as_filter(&self) -> Option<&dyn crate::framework::FilterPlugin> {
        Some(self)
    }
}
impl crate::framework::FilterPlugin for Failing {
    fn filter(&self, _: &CycleState, _: &Pod, _: &NodeInfo) -> Status {
        Status::error("boom")
    }
}

#[test]
fn plugin_errors_are_errors_not_rejections() {
    let f = Framework::new(vec![(Arc::new(Failing), 0)]);
    let got = f.schedule(&pod("p"), &three_nodes(vec![]));
    assert_eq!(got, Err(Failure::Error("running Filter plugin \"Failing\" on node \"a\": boom".into())));
}

#[test]
fn host_selection() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    fn s<'a>(pairs: &[(&'a str, i64)]) -> Vec<NodeScore<'a>> {
        pairs.iter().map(|&(name, score)| NodeScore { name, score }).collect()
    }
    assert_eq!(select_host(&s(&[("a", 1), ("b", 5), ("c", 3)]), &mut rng), Some("b".into()), "highest wins");
    assert_eq!(select_host(&[], &mut rng), None, "nothing to pick");
    let ties = s(&[("a", 5), ("b", 5), ("c", 1)]);
    let picks: BTreeSet<String> = (0..50).filter_map(|_| select_host(&ties, &mut rng)).collect();
    assert_eq!(picks, ["a".to_string(), "b".to_string()].into(), "ties are shared");
}

fn tainted(name: &str) -> k8s_openapi::api::core::v1::Node {
    let mut n = node(name, "4", "8Gi");
    if let Some(s) = n.spec.as_mut() {
        s.taints = Some(vec![k8s_openapi::api::core::v1::Taint { key: "k".into(), effect: "NoSchedule".into(), ..Default::default() }]);
    }
    n
}

#[test]
fn explanation_records_rejections_and_scores() {
    let f = default_framework();
    let snapshot = Snapshot::new(vec![
        node_info(node("a", "4", "8Gi"), vec![pod_with_cpu("x", "3")]),
        node_info(node("b", "4", "8Gi"), vec![]),
        node_info(tainted("c"), vec![]),
    ]);
    let (result, ex) = f.schedule_explained(&pod_with_cpu("p", "500m"), &snapshot);
    assert_eq!(result, Ok("b".to_string()), "emptiest untainted node");
    assert_eq!((ex.total_nodes, ex.evaluated_nodes, ex.feasible_nodes), (3, 3, 2));
    assert_eq!(ex.selected_node.as_deref(), Some("b"));
    assert_eq!(ex.rejections.iter().map(|r| (r.node.as_str(), r.plugin.as_str())).collect::<Vec<_>>(), vec![("c", "TaintToleration")]);
    assert_eq!(ex.candidates.iter().map(|c| c.node.as_str()).collect::<Vec<_>>(), vec!["b", "a"], "best first");
    for c in &ex.candidates {
        assert_eq!(c.total, c.scores.iter().map(|s| s.weighted).sum::<i64>(), "total of {}", c.node);
        assert!(c.scores.iter().all(|s| s.weighted == s.score * s.weight));
    }
}

#[test]
fn pod_annotation_changes_the_cycle() {
    let f = default_framework();
    let snapshot = Snapshot::new(vec![node_info(tainted("c"), vec![])]);
    let mut p = pod("p");
    assert!(matches!(f.schedule(&p, &snapshot), Err(Failure::Unschedulable(_))), "tainted node rejects the plain pod");
    p.metadata.annotations = Some([(super::pod_overrides::ANNOTATION.to_string(), r#"{"disabled":["TaintToleration"]}"#.to_string())].into());
    let (result, ex) = f.schedule_explained(&p, &snapshot);
    assert_eq!(result, Ok("c".to_string()), "TaintToleration off for this pod");
    assert_eq!(ex.pod_plugin_overrides.as_deref(), Some("disabled TaintToleration"));
    p.metadata.annotations = Some([(super::pod_overrides::ANNOTATION.to_string(), "nonsense".to_string())].into());
    match f.schedule(&p, &snapshot) {
        Err(Failure::Unschedulable(m)) => assert!(m.starts_with("invalid annotation scheduling.rudder.dev/plugins"), "{m}"),
        other => panic!("bad annotation must fail the cycle, got {other:?}"),
    }
}

#[test]
fn feasible_nodes_to_find() {
    let with = |pct: Option<u32>| Framework::from_enabled(String::new(), Vec::new(), pct);
    let cases = [
        ("small clusters: all", None, 50, 50),
        ("adaptive 50 - n/125 percent", None, 1000, 420),
        ("adaptive floor of 100 nodes", None, 150, 100),
        ("explicit percentage", Some(10), 5000, 500),
        ("100 percent: all", Some(100), 5000, 5000),
        ("adaptive never below 5 percent", Some(0), 10000, 500),
    ];
    for (name, pct, all, want) in cases {
        assert_eq!(with(pct).num_feasible_nodes_to_find(all), want, "case {name}");
    }
}

#[test]
fn a_stopped_search_resumes_where_the_last_one_ended() {
    let f = Framework::from_enabled(String::new(), Vec::new(), Some(1));
    let snapshot = Snapshot::new((0..150).map(|i| node_info(node(&format!("n{i}"), "4", "8Gi"), vec![])).collect());
    let (_, first) = f.schedule_explained(&pod("p"), &snapshot);
    assert_eq!(first.evaluated_nodes, 100, "floor of 100 nodes");
    assert_eq!(f.next_start.load(Ordering::Relaxed), 100, "the next search starts after n99");
    let (_, second) = f.schedule_explained(&pod("p"), &snapshot);
    assert_eq!(second.evaluated_nodes, 100);
    assert_eq!(f.next_start.load(Ordering::Relaxed), 50, "n100..n149 then n0..n49: wrapped around");
    assert_eq!(second.candidates.len(), EXPLAINED_CANDIDATES, "only the best candidates are kept");
    // With no scorer every total is 0, so the kept ones are the first names of those evaluated.
    let kept: Vec<&str> = second.candidates.iter().map(|c| c.node.as_str()).collect();
    assert_eq!(kept, ["n0", "n1", "n10", "n100", "n101", "n102", "n103", "n104", "n105", "n106"]);
}

fn with_priority(mut p: Pod, priority: i32) -> Pod {
    if let Some(s) = p.spec.as_mut() {
        s.priority = Some(priority);
    }
    p
}

#[test]
fn nominated_pods_keep_their_room() {
    let f = default_framework();
    // Node a has 2 cpu free, b has 1; a 2-cpu pod of priority 100 is nominated to a.
    let snapshot = Snapshot::new(vec![
        node_info(node("a", "4", "8Gi"), vec![pod_with_cpu("x", "2")]),
        node_info(node("b", "4", "8Gi"), vec![pod_with_cpu("y", "3")]),
    ]);
    let mut nominated = NominatedPods::new();
    nominated.add("a", Arc::new(with_priority(pod_with_cpu("n", "2"), 100)));
    let nominated = Arc::new(nominated);
    let mut nominated_to_b = with_priority(pod_with_cpu("n", "1"), 100);
    nominated_to_b.status = Some(k8s_openapi::api::core::v1::PodStatus { nominated_node_name: Some("b".into()), ..Default::default() });
    let cases = [
        ("a lower-priority pod cannot take the nominated room", with_priority(pod_with_cpu("p", "2"), 10), None),
        ("an equal-priority pod cannot either", with_priority(pod_with_cpu("p", "2"), 100), None),
        ("a higher-priority pod may", with_priority(pod_with_cpu("p", "2"), 1000), Some("a")),
        ("a small pod still fits beside it on b", with_priority(pod_with_cpu("p", "1"), 10), Some("b")),
        ("the nominated pod itself is not in its own way", with_priority(pod_with_cpu("n", "2"), 100), Some("a")),
        // Scoring alone would pick a (more room left); the nomination wins.
        ("its nominated node is tried first", nominated_to_b, Some("b")),
    ];
    for (name, p, want) in cases {
        let (got, _) = f.schedule_with_nominated(&p, &snapshot, nominated.clone());
        assert_eq!(got.ok().as_deref(), want, "case {name}");
    }
}

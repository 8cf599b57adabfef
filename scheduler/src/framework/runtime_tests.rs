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
    let s = |pairs: &[(&str, i64)]| pairs.iter().map(|(n, v)| NodeScore { name: n.to_string(), score: *v }).collect::<Vec<_>>();
    assert_eq!(select_host(&s(&[("a", 1), ("b", 5), ("c", 3)]), &mut rng), Some("b".into()), "highest wins");
    assert_eq!(select_host(&[], &mut rng), None, "nothing to pick");
    let ties = s(&[("a", 5), ("b", 5), ("c", 1)]);
    let picks: BTreeSet<String> = (0..50).filter_map(|_| select_host(&ties, &mut rng)).collect();
    assert_eq!(picks, ["a".to_string(), "b".to_string()].into(), "ties are shared");
}

use super::*;
use crate::testing::{node, node_info, pod};
use k8s_openapi::api::core::v1::{Affinity, PodAffinity, PodAffinityTerm, PodAntiAffinity, WeightedPodAffinityTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

fn labelled(name: &str, app: &str) -> Pod {
    let mut p = pod(name);
    p.metadata.labels = Some([("app".to_string(), app.to_string())].into());
    p
}

fn term(app: &str) -> PodAffinityTerm {
    PodAffinityTerm {
        label_selector: Some(LabelSelector { match_labels: Some([("app".to_string(), app.to_string())].into()), ..Default::default() }),
        topology_key: "kubernetes.io/hostname".into(),
        ..Default::default()
    }
}

fn with_affinity(mut p: Pod, affinity: Affinity) -> Pod {
    if let Some(s) = p.spec.as_mut() {
        s.affinity = Some(affinity);
    }
    p
}

fn anti(app: &str) -> Affinity {
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            required_during_scheduling_ignored_during_execution: Some(vec![term(app)]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn affinity(app: &str) -> Affinity {
    Affinity {
        pod_affinity: Some(PodAffinity { required_during_scheduling_ignored_during_execution: Some(vec![term(app)]), ..Default::default() }),
        ..Default::default()
    }
}

/// Nodes a (with `on_a`) and b (with `on_b`).
fn two_nodes(on_a: Vec<Pod>, on_b: Vec<Pod>) -> Snapshot {
    Snapshot::new(vec![node_info(node("a", "4", "4Gi"), on_a), node_info(node("b", "4", "4Gi"), on_b)])
}

/// The filter's verdict for nodes a and b, or the PreFilter status when it does not succeed.
fn verdicts(p: &Pod, snapshot: &Snapshot) -> Result<(Status, Status), Status> {
    let mut state = CycleState::new();
    let pre = InterPodAffinity.pre_filter(&mut state, p, snapshot);
    if !pre.is_success() {
        return Err(pre);
    }
    let run = |n: &str| snapshot.get(n).map(|ni| InterPodAffinity.filter(&state, p, ni)).unwrap_or_else(Status::success);
    Ok((run("a"), run("b")))
}

#[test]
fn filter() {
    let ok = Status::success();
    let cases = [
        ("nothing to check skips", labelled("p", "web"), two_nodes(vec![labelled("x", "web")], vec![]), Err(Status::skip())),
        (
            "anti-affinity keeps away from matching pods",
            with_affinity(labelled("p", "web"), anti("web")),
            two_nodes(vec![labelled("x", "web")], vec![labelled("y", "db")]),
            Ok((Status::unschedulable(ERR_REASON_ANTI_AFFINITY), ok.clone())),
        ),
        (
            "an existing pod's anti-affinity keeps the incoming pod away",
            labelled("p", "db"),
            two_nodes(vec![with_affinity(labelled("x", "web"), anti("db"))], vec![]),
            Ok((Status::unschedulable(ERR_REASON_EXISTING_ANTI_AFFINITY), ok.clone())),
        ),
        (
            "mutual anti-affinity reports the pod's own rule first, like upstream",
            with_affinity(labelled("p", "web"), anti("web")),
            two_nodes(vec![with_affinity(labelled("x", "web"), anti("web"))], vec![]),
            Ok((Status::unschedulable(ERR_REASON_ANTI_AFFINITY), ok.clone())),
        ),
        (
            "affinity needs a matching pod in the domain",
            with_affinity(labelled("p", "web"), affinity("cache")),
            two_nodes(vec![], vec![labelled("c", "cache")]),
            Ok((Status::unresolvable(ERR_REASON_AFFINITY), ok.clone())),
        ),
        (
            "the first pod of a self-selecting group goes anywhere",
            with_affinity(labelled("p", "web"), affinity("web")),
            two_nodes(vec![], vec![]),
            Ok((ok.clone(), ok.clone())),
        ),
        (
            "other namespaces do not count",
            with_affinity(labelled("p", "web"), anti("web")),
            two_nodes(
                vec![{
                    let mut x = labelled("x", "web");
                    x.metadata.namespace = Some("other".into());
                    x
                }],
                vec![],
            ),
            Ok((ok.clone(), ok.clone())),
        ),
    ];
    for (name, p, snapshot, want) in cases {
        assert_eq!(verdicts(&p, &snapshot), want, "case {name}");
    }
}

#[test]
fn preferred_affinity_scores_the_domain_with_matching_pods() {
    let p = with_affinity(
        labelled("p", "web"),
        Affinity {
            pod_affinity: Some(PodAffinity {
                preferred_during_scheduling_ignored_during_execution: Some(vec![WeightedPodAffinityTerm {
                    weight: 10,
                    pod_affinity_term: term("cache"),
                }]),
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    let snapshot = two_nodes(vec![], vec![labelled("c", "cache")]);
    let mut state = CycleState::new();
    let _ = InterPodAffinity.pre_filter(&mut state, &p, &snapshot);
    let nodes: Vec<&NodeInfo> = snapshot.nodes().iter().collect();
    assert!(InterPodAffinity.pre_score(&mut state, &p, &nodes, &snapshot).is_success());
    let mut scores: Vec<NodeScore> = nodes
        .iter()
        .map(|n| NodeScore { name: n.name(), score: InterPodAffinity.score(&state, &p, n).unwrap_or(-1) })
        .collect();
    assert!(InterPodAffinity.normalize_score(&state, &p, &mut scores).is_success());
    assert_eq!(scores.iter().map(|s| s.score).collect::<Vec<_>>(), vec![0, 100]);
    assert!(InterPodAffinity.pre_score(&mut CycleState::new(), &p, &nodes, &snapshot).is_skip(), "no PreFilter state: skip");
}

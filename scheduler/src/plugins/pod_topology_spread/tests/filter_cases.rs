//! Filter verdicts for the pod's own DoNotSchedule constraints, one named case per rule.

use k8s_openapi::api::core::v1::{Node, Pod, TopologySpreadConstraint};
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;

const OK: Code = Code::Success;
const SKEW: Code = Code::Unschedulable;
const NO_LABEL: Code = Code::UnschedulableAndUnresolvable;

struct Case {
    name: &'static str,
    pod: Pod,
    nodes: Vec<Node>,
    existing: Vec<(&'static str, Pod)>,
    /// One code per node, in node order.
    want: Vec<Code>,
}

/// n1 and n2 in zone a, n3 in zone b.
fn two_zones() -> Vec<Node> {
    vec![zone_node("n1", Some("a")), zone_node("n2", Some("a")), zone_node("n3", Some("b"))]
}

fn web(constraints: Vec<TopologySpreadConstraint>) -> Pod {
    with_constraints(app("p", "web"), constraints)
}

fn in_namespace(mut p: Pod, ns: &str) -> Pod {
    p.metadata.namespace = Some(ns.into());
    p
}

fn terminating(mut p: Pod) -> Pod {
    p.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
    p
}

fn with_node_selector(mut p: Pod, key: &str, value: &str) -> Pod {
    if let Some(s) = p.spec.as_mut() {
        s.node_selector = Some([(key.to_string(), value.to_string())].into());
    }
    p
}

fn policies(mut c: TopologySpreadConstraint, affinity: Option<&str>, taints: Option<&str>) -> TopologySpreadConstraint {
    c.node_affinity_policy = affinity.map(str::to_string);
    c.node_taints_policy = taints.map(str::to_string);
    c
}

fn min_domains(mut c: TopologySpreadConstraint, n: i32) -> TopologySpreadConstraint {
    c.min_domains = Some(n);
    c
}

fn cases() -> Vec<Case> {
    let mut match_label_keys = zone_tsc(1, "web");
    match_label_keys.match_label_keys = Some(vec!["version".into()]);
    let mut no_selector = zone_tsc(1, "web");
    no_selector.label_selector = None;
    let mut only_match_label_keys = no_selector.clone();
    only_match_label_keys.match_label_keys = Some(vec!["version".into()]);
    vec![
        Case {
            name: "balanced zones accept every node",
            pod: web(vec![zone_tsc(1, "web")]),
            nodes: two_zones(),
            existing: vec![("n1", app("e1", "web")), ("n3", app("e2", "web"))],
            want: vec![OK, OK, OK],
        },
        Case {
            name: "the crowded zone fails on skew",
            pod: web(vec![zone_tsc(1, "web")]),
            nodes: two_zones(),
            existing: vec![("n1", app("e1", "web")), ("n2", app("e2", "web")), ("n3", app("e3", "web"))],
            want: vec![SKEW, SKEW, OK],
        },
        Case {
            name: "an empty zone is the global minimum",
            pod: web(vec![zone_tsc(1, "web")]),
            nodes: two_zones(),
            existing: vec![("n1", app("e1", "web"))],
            want: vec![SKEW, SKEW, OK],
        },
        Case {
            name: "a larger maxSkew tolerates the difference",
            pod: web(vec![zone_tsc(2, "web")]),
            nodes: two_zones(),
            existing: vec![("n1", app("e1", "web"))],
            want: vec![OK, OK, OK],
        },
        Case {
            name: "a pod its selector does not match adds nothing itself",
            pod: web(vec![zone_tsc(1, "db")]),
            nodes: two_zones(),
            existing: vec![("n1", app("e1", "db"))],
            want: vec![OK, OK, OK],
        },
        Case {
            name: "pods of other namespaces, other apps and terminating pods are not counted",
            pod: web(vec![zone_tsc(1, "web")]),
            nodes: two_zones(),
            existing: vec![
                ("n1", in_namespace(app("e1", "web"), "other")),
                ("n1", app("e2", "db")),
                ("n2", terminating(app("e3", "web"))),
            ],
            want: vec![OK, OK, OK],
        },
        Case {
            name: "a node without the topology key is unresolvable",
            pod: web(vec![zone_tsc(1, "web")]),
            nodes: vec![zone_node("n1", Some("a")), zone_node("n4", None)],
            existing: vec![],
            want: vec![OK, NO_LABEL],
        },
        Case {
            name: "every constraint's key is required",
            pod: web(vec![zone_tsc(1, "web"), tsc(LABEL_HOSTNAME, 1, DO_NOT_SCHEDULE, "web")]),
            nodes: vec![zone_node("n1", Some("a")), zone_node("n4", None)],
            existing: vec![],
            want: vec![OK, NO_LABEL],
        },
        Case {
            name: "fewer domains than minDomains make the global minimum 0",
            pod: web(vec![min_domains(zone_tsc(1, "web"), 3)]),
            nodes: two_zones(),
            existing: vec![("n1", app("e1", "web")), ("n3", app("e2", "web"))],
            want: vec![SKEW, SKEW, SKEW],
        },
        Case {
            name: "enough domains for minDomains use the real minimum",
            pod: web(vec![min_domains(zone_tsc(1, "web"), 2)]),
            nodes: two_zones(),
            existing: vec![("n1", app("e1", "web")), ("n3", app("e2", "web"))],
            want: vec![OK, OK, OK],
        },
        Case {
            name: "nodeAffinityPolicy Honor leaves out zones the pod cannot go to",
            pod: with_node_selector(web(vec![zone_tsc(1, "web")]), LABEL_ZONE, "a"),
            nodes: two_zones(),
            existing: vec![("n1", app("e1", "web"))],
            want: vec![OK, OK, OK],
        },
        Case {
            name: "nodeAffinityPolicy Ignore counts every zone",
            pod: with_node_selector(web(vec![policies(zone_tsc(1, "web"), Some("Ignore"), None)]), LABEL_ZONE, "a"),
            nodes: two_zones(),
            existing: vec![("n1", app("e1", "web"))],
            want: vec![SKEW, SKEW, OK],
        },
        Case {
            name: "nodeTaintsPolicy Ignore (default) counts tainted nodes",
            pod: web(vec![zone_tsc(1, "web")]),
            nodes: vec![zone_node("n1", Some("a")), tainted(zone_node("n3", Some("b")))],
            existing: vec![("n1", app("e1", "web"))],
            want: vec![SKEW, OK],
        },
        Case {
            name: "nodeTaintsPolicy Honor leaves out untolerated tainted nodes",
            pod: web(vec![policies(zone_tsc(1, "web"), None, Some("Honor"))]),
            nodes: vec![zone_node("n1", Some("a")), tainted(zone_node("n3", Some("b")))],
            existing: vec![("n1", app("e1", "web"))],
            want: vec![OK, OK],
        },
        Case {
            name: "matchLabelKeys narrow the selector to the pod's own label value",
            pod: with_constraints(labelled("p", &[("app", "web"), ("version", "v2")]), vec![match_label_keys]),
            nodes: two_zones(),
            existing: vec![("n1", labelled("e1", &[("app", "web"), ("version", "v1")]))],
            want: vec![OK, OK, OK],
        },
        Case {
            name: "a constraint without a selector counts no pod",
            pod: web(vec![no_selector]),
            nodes: two_zones(),
            existing: vec![("n1", app("e1", "web")), ("n1", app("e2", "web"))],
            want: vec![OK, OK, OK],
        },
        Case {
            name: "matchLabelKeys alone make a selector of the pod's labels",
            pod: with_constraints(labelled("p", &[("app", "web"), ("version", "v2")]), vec![only_match_label_keys]),
            nodes: two_zones(),
            existing: vec![("n1", labelled("e1", &[("version", "v2")])), ("n3", labelled("e2", &[("version", "v1")]))],
            want: vec![SKEW, SKEW, OK],
        },
        Case {
            name: "hostname spreading",
            pod: web(vec![tsc(LABEL_HOSTNAME, 1, DO_NOT_SCHEDULE, "web")]),
            nodes: two_zones(),
            existing: vec![("n1", app("e1", "web")), ("n2", app("e2", "web"))],
            want: vec![SKEW, SKEW, OK],
        },
    ]
}

#[test]
fn filter_verdicts() {
    for c in cases() {
        let s = snapshot(&c.nodes, &c.existing);
        assert_eq!(filter_codes(&c.pod, &s), Ok(c.want), "case {}", c.name);
    }
}

#[test]
fn filter_reasons_are_upstreams() {
    let s = snapshot(&[zone_node("n1", Some("a")), zone_node("n3", Some("b")), zone_node("n4", None)], &[("n1", app("e1", "web"))]);
    let p = web(vec![zone_tsc(1, "web")]);
    let plugin = PodTopologySpread::default();
    let mut state = CycleState::new();
    assert!(plugin.pre_filter(&mut state, &p, &s).is_success());
    let reason = |n: &str| s.get(n).map(|ni| plugin.filter(&state, &p, ni).message()).unwrap_or_default();
    assert_eq!(reason("n1"), "node(s) didn't match pod topology spread constraints");
    assert_eq!(reason("n4"), "node(s) didn't match pod topology spread constraints (missing required label)");
}

#[test]
fn a_bad_selector_is_an_error() {
    let mut c = zone_tsc(1, "web");
    c.label_selector = Some(LabelSelector {
        match_expressions: Some(vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement {
            key: "app".into(),
            operator: "Bogus".into(),
            values: None,
        }]),
        ..Default::default()
    });
    let got = filter_codes(&web(vec![c]), &snapshot(&two_zones(), &[])).map_err(|s| s.code());
    assert_eq!(got, Err(Code::Error));
}

//! Preemption, as upstream's conformance test does it: every node advertises two units of a fake
//! extended resource, low-priority pods take all of it, then a high-priority pod asking for two units
//! makes the scheduler evict one of them. The victim is marked `DisruptionTarget` (reason
//! `PreemptionByScheduler`), gets a `Preempted` event naming the preemptor, and the preemptor runs on the
//! victim's node. The victims carry a finalizer so their condition can be read before they are gone.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use rudder_e2e::{Cluster, TestNamespace, wait};

use crate::common::{ROLLOUT_TIMEOUT, describe, is_running_and_ready, setup};

const RESOURCE: &str = "scheduling.k8s.io/foo";
const FINALIZER: &str = "e2e.rudder.dev/hold-victim";
const LOW_SELECTOR: &str = "preemption=low";

/// Nodes new pods can land on: not cordoned, no NoSchedule/NoExecute taint.
async fn schedulable_nodes(cluster: &Cluster) -> anyhow::Result<Vec<Node>> {
    let nodes = Api::<Node>::all(cluster.client.clone()).list(&ListParams::default()).await?.items;
    Ok(nodes
        .into_iter()
        .filter(|n| {
            let spec = n.spec.clone().unwrap_or_default();
            !spec.unschedulable.unwrap_or(false)
                && spec.taints.unwrap_or_default().iter().all(|t| t.effect != "NoSchedule" && t.effect != "NoExecute")
        })
        .collect())
}

/// Sets (`Some`) or removes (`None`) the fake resource in a node's capacity and allocatable.
async fn set_node_resource(cluster: &Cluster, node: &str, amount: Option<&str>) -> anyhow::Result<()> {
    let patch = serde_json::json!({ "status": { "capacity": { RESOURCE: amount }, "allocatable": { RESOURCE: amount } } });
    Api::<Node>::all(cluster.client.clone()).patch_status(node, &PatchParams::default(), &Patch::Merge(patch)).await?;
    Ok(())
}

fn pod_manifest(name: &str, class: &str, labels: serde_json::Value, node_selector: Option<BTreeMap<String, String>>) -> anyhow::Result<Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": { "name": name, "labels": labels },
        "spec": {
            "priorityClassName": class,
            "nodeSelector": node_selector,
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "main",
                "image": "nginx",
                "resources": { "requests": { RESOURCE: "2" }, "limits": { RESOURCE: "2" } }
            }]
        }
    }))?)
}

fn disruption_target(pod: &Pod) -> Option<(String, String, String)> {
    let c = pod.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "DisruptionTarget")?;
    Some((c.status.clone(), c.reason.clone().unwrap_or_default(), c.message.clone().unwrap_or_default()))
}

fn node_of(pod: &Pod) -> String {
    pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default()
}

#[tokio::test]
async fn high_priority_pod_preempts_a_low_priority_one() -> anyhow::Result<()> {
    let (cluster, ns) = setup("preempt").await?;
    let nodes = schedulable_nodes(&cluster).await?;
    anyhow::ensure!(!nodes.is_empty(), "the cluster has no schedulable nodes");
    let classes = [(format!("{}-low", ns.name), 1), (format!("{}-high", ns.name), 1000)];
    let outcome = run(&cluster, &ns, &nodes, &classes).await;

    // Cleanup whatever happened: let the held victims go, take the fake resource off the nodes, drop the
    // priority classes (cluster-scoped, so the namespace's deletion would not).
    let pods = ns.api::<Pod>();
    for p in pods.list(&ListParams::default().labels(LOW_SELECTOR)).await.map(|l| l.items).unwrap_or_default() {
        let name = p.metadata.name.unwrap_or_default();
        let _ = pods.patch(&name, &PatchParams::default(), &Patch::Merge(serde_json::json!({ "metadata": { "finalizers": null } }))).await;
    }
    for n in &nodes {
        let _ = set_node_resource(&cluster, n.metadata.name.as_deref().unwrap_or_default(), None).await;
    }
    let api = Api::<PriorityClass>::all(cluster.client.clone());
    for (name, _) in &classes {
        let _ = api.delete(name, &DeleteParams::default()).await;
    }
    outcome
}

async fn run(cluster: &Cluster, ns: &TestNamespace, nodes: &[Node], classes: &[(String, i32); 2]) -> anyhow::Result<()> {
    let [(low, low_value), (high, high_value)] = classes;
    let api = Api::<PriorityClass>::all(cluster.client.clone());
    for (name, value) in [(low, low_value), (high, high_value)] {
        let pc: PriorityClass = serde_json::from_value(serde_json::json!({ "metadata": { "name": name }, "value": value }))?;
        api.create(&PostParams::default(), &pc).await?;
    }
    let pods = ns.api::<Pod>();

    // Fill every node's fake resource with one low-priority pod.
    for (i, n) in nodes.iter().enumerate() {
        let name = n.metadata.name.clone().unwrap_or_default();
        set_node_resource(cluster, &name, Some("2")).await?;
        let hostname = n.metadata.labels.as_ref().and_then(|l| l.get("kubernetes.io/hostname")).cloned().unwrap_or(name);
        let selector = BTreeMap::from([("kubernetes.io/hostname".to_string(), hostname)]);
        let mut p = pod_manifest(&format!("low-{i}"), low, serde_json::json!({ "preemption": "low" }), Some(selector))?;
        p.metadata.finalizers = Some(vec![FINALIZER.into()]);
        pods.create(&PostParams::default(), &p).await?;
    }
    wait::until(&format!("{} low-priority pods running", nodes.len()), ROLLOUT_TIMEOUT, || async {
        let low = pods.list(&ListParams::default().labels(LOW_SELECTOR)).await?.items;
        let running = low.iter().filter(|p| is_running_and_ready(p)).count();
        Ok(if running == nodes.len() { Ok(()) } else { Err(describe(&low)) })
    })
    .await?;

    let preemptor = pods.create(&PostParams::default(), &pod_manifest("high", high, serde_json::json!({ "preemption": "high" }), None)?).await?;
    let preemptor_uid = preemptor.metadata.uid.clone().unwrap_or_default();

    // Exactly one low pod is chosen: terminating, with the scheduler's condition.
    let victim = wait::until("one low-priority pod to be preempted", ROLLOUT_TIMEOUT, || async {
        let low = pods.list(&ListParams::default().labels(LOW_SELECTOR)).await?.items;
        let terminating: Vec<&Pod> = low.iter().filter(|p| p.metadata.deletion_timestamp.is_some()).collect();
        Ok(match terminating.as_slice() {
            [one] if disruption_target(one).is_some() => Ok((*one).clone()),
            _ => Err(format!("terminating: {}", terminating.iter().filter_map(|p| p.metadata.name.clone()).collect::<Vec<_>>().join(","))),
        })
    })
    .await?;
    let victim_name = victim.metadata.name.clone().unwrap_or_default();
    let victim_node = node_of(&victim);
    assert_eq!(
        disruption_target(&victim),
        Some(("True".into(), "PreemptionByScheduler".into(), "default-scheduler: preempting to accommodate a higher priority pod".into())),
        "the victim's DisruptionTarget condition"
    );

    let events = ns.api::<Event>();
    let want_note = format!("Preempted by pod {preemptor_uid} on node {victim_node}");
    wait::until(&format!("a Preempted event on {victim_name}"), ROLLOUT_TIMEOUT, || async {
        let selector = format!("involvedObject.name={victim_name},reason=Preempted");
        let found = events.list(&ListParams::default().fields(&selector)).await?.items;
        let notes: Vec<String> = found.iter().filter_map(|e| e.message.clone()).collect();
        Ok(if notes.contains(&want_note) { Ok(()) } else { Err(format!("events: {notes:?}")) })
    })
    .await?;

    // Let the victim go; the preemptor then runs where the room was made.
    pods.patch(&victim_name, &PatchParams::default(), &Patch::Merge(serde_json::json!({ "metadata": { "finalizers": null } }))).await?;
    let running = wait::until("the high-priority pod to run", ROLLOUT_TIMEOUT, || async {
        let p = pods.get("high").await?;
        Ok(if is_running_and_ready(&p) { Ok(p) } else { Err(describe(std::slice::from_ref(&p))) })
    })
    .await?;
    assert_eq!(node_of(&running), victim_node, "the preemptor runs on the victim's node");

    // The other low pods were left alone.
    let low = pods.list(&ListParams::default().labels(LOW_SELECTOR)).await?.items;
    let untouched = low.iter().filter(|p| p.metadata.deletion_timestamp.is_none() && is_running_and_ready(p)).count();
    assert_eq!(untouched, nodes.len() - 1, "only one victim: {}", describe(&low));
    Ok(())
}

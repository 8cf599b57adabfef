//! A DaemonSet runs exactly one pod on every node of the cluster, reports that in its status, and
//! rolls every pod when its template changes.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use rudder_e2e::{TestNamespace, wait};

use crate::common::{ROLLOUT_TIMEOUT, describe, is_running_and_ready, live_pods, setup, wait_running_pods};

const SELECTOR: &str = "app=daemon-nginx";

/// Waits until the set's status, for its current generation, has `nodes` pods desired, scheduled,
/// ready, available and up to date, and none misscheduled.
async fn wait_daemonset_ready(ns: &TestNamespace, name: &str, nodes: i32) -> anyhow::Result<DaemonSet> {
    let api = ns.api::<DaemonSet>();
    wait::until(&format!("daemonset {name} to be ready on {nodes} nodes"), ROLLOUT_TIMEOUT, || {
        let api = api.clone();
        async move {
            let ds = api.get(name).await?;
            let s = ds.status.clone().unwrap_or_default();
            let seen = (
                s.desired_number_scheduled,
                s.current_number_scheduled,
                s.number_ready,
                s.number_available.unwrap_or(0),
                s.updated_number_scheduled.unwrap_or(0),
                s.number_misscheduled,
            );
            let current = s.observed_generation == ds.metadata.generation;
            Ok(if seen == (nodes, nodes, nodes, nodes, nodes, 0) && current {
                Ok(ds)
            } else {
                Err(format!("desired/current/ready/available/updated/misscheduled = {seen:?}, observed generation current: {current}"))
            })
        }
    })
    .await
}

fn node_of(pod: &Pod) -> String {
    pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default()
}

fn names(pods: &[Pod]) -> BTreeSet<String> {
    pods.iter().filter_map(|p| p.metadata.name.clone()).collect()
}

#[tokio::test]
async fn daemonset_runs_one_pod_per_node_and_rolls_them() -> anyhow::Result<()> {
    let (cluster, ns) = setup("ds").await?;
    let nodes: BTreeSet<String> =
        Api::<Node>::all(cluster.client.clone()).list(&ListParams::default()).await?.items.into_iter().filter_map(|n| n.metadata.name).collect();
    anyhow::ensure!(!nodes.is_empty(), "the cluster has no nodes");
    let count = i32::try_from(nodes.len())?;

    let ds: DaemonSet = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "nginx" },
        "spec": {
            "selector": { "matchLabels": { "app": "daemon-nginx" } },
            "template": {
                "metadata": { "labels": { "app": "daemon-nginx" } },
                "spec": { "containers": [{ "name": "nginx", "image": "nginx" }] }
            }
        }
    }))?;
    ns.api::<DaemonSet>().create(&PostParams::default(), &ds).await?;

    let ds = wait_daemonset_ready(&ns, "nginx", count).await?;
    let status = ds.status.clone().unwrap_or_default();
    assert_eq!(status.number_ready, status.desired_number_scheduled);
    assert_eq!(status.desired_number_scheduled, count, "one pod per node");
    let pods = wait_running_pods(&ns, SELECTOR, nodes.len()).await?;
    let on: BTreeSet<String> = pods.iter().map(node_of).collect();
    assert_eq!(on, nodes, "exactly one running pod on each node: {}", describe(&pods));
    for pod in &pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        assert!(name.starts_with("nginx-"), "named after the set: {name}");
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        assert!(labels.contains_key("controller-revision-hash"), "{name} carries its revision: {labels:?}");
        let owner = pod.metadata.owner_references.iter().flatten().find(|o| o.controller == Some(true));
        assert_eq!(owner.map(|o| (o.kind.as_str(), o.name.as_str())), Some(("DaemonSet", "nginx")), "{name} is controlled by the set");
    }

    // A new image (the same one, spelled out) is a new template: every pod is replaced.
    let patch = serde_json::json!({
        "spec": { "template": { "spec": { "containers": [{ "name": "nginx", "image": "docker.io/library/nginx:latest" }] } } }
    });
    ns.api::<DaemonSet>().patch("nginx", &PatchParams::default(), &Patch::Strategic(&patch)).await?;
    wait_daemonset_ready(&ns, "nginx", count).await?;
    let before = names(&pods);
    let rolled = wait::until("every daemon pod to be replaced by one with the new image", ROLLOUT_TIMEOUT, || async {
        let pods = live_pods(&ns, SELECTOR).await?;
        let renewed = pods.iter().all(|p| {
            let image = p.spec.as_ref().and_then(|s| s.containers.first()).and_then(|c| c.image.as_deref());
            is_running_and_ready(p) && image == Some("docker.io/library/nginx:latest") && !before.contains(p.metadata.name.as_deref().unwrap_or_default())
        });
        Ok(if renewed && pods.len() == nodes.len() { Ok(pods) } else { Err(describe(&pods)) })
    })
    .await?;
    let on: BTreeSet<String> = rolled.iter().map(node_of).collect();
    assert_eq!(on, nodes, "still one pod on each node after the roll: {}", describe(&rolled));
    Ok(())
}

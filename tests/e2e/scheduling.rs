//! Scheduling beyond the walkthrough, against the real apiserver: required pod anti-affinity, the per-pod
//! plugin annotation, and the scheduler's explanations.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{ListParams, PostParams};
use rudder_e2e::{TestNamespace, http, wait};

use crate::common::{live_pods, setup, wait_running_pods};

const ANNOTATION: &str = "scheduling.rudder.dev/plugins";

fn pod(name: &str, annotation: Option<&str>) -> anyhow::Result<Pod> {
    let mut pod = serde_json::json!({
        "metadata": { "name": name, "labels": { "app": name } },
        "spec": { "containers": [{ "name": "main", "image": "nginx" }] }
    });
    if let Some(value) = annotation {
        pod["metadata"]["annotations"] = serde_json::json!({ ANNOTATION: value });
    }
    Ok(serde_json::from_value(pod)?)
}

async fn failed_scheduling(ns: &TestNamespace, pod: &str) -> anyhow::Result<String> {
    wait::until(&format!("a FailedScheduling event for {pod}"), Duration::from_secs(60), || async {
        let lp = ListParams::default().fields(&format!("involvedObject.name={pod}"));
        let events = ns.api::<Event>().list(&lp).await?.items;
        Ok(events
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("FailedScheduling"))
            .and_then(|e| e.message)
            .ok_or_else(|| "none yet".to_owned()))
    })
    .await
}

#[tokio::test]
async fn required_anti_affinity_puts_one_replica_per_node() -> anyhow::Result<()> {
    let (cluster, ns) = setup("antiaffinity").await?;
    let nodes = kube::Api::<k8s_openapi::api::core::v1::Node>::all(cluster.client.clone()).list(&ListParams::default()).await?.items.len();
    let deployment: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "solo" },
        "spec": {
            "replicas": nodes,
            "selector": { "matchLabels": { "app": "solo" } },
            "template": {
                "metadata": { "labels": { "app": "solo" } },
                "spec": {
                    "containers": [{ "name": "nginx", "image": "nginx" }],
                    "affinity": { "podAntiAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": [{
                        "labelSelector": { "matchLabels": { "app": "solo" } },
                        "topologyKey": "kubernetes.io/hostname"
                    }] } }
                }
            }
        }
    }))?;
    ns.api::<k8s_openapi::api::apps::v1::Deployment>().create(&PostParams::default(), &deployment).await?;
    let pods = wait_running_pods(&ns, "app=solo", nodes).await?;
    let mut placed: Vec<String> = pods.iter().filter_map(|p| p.spec.as_ref()?.node_name.clone()).collect();
    placed.sort();
    placed.dedup();
    assert_eq!(placed.len(), nodes, "one replica per node");

    // One more replica fits nowhere.
    ns.kubectl(&["scale", "deployment", "solo", &format!("--replicas={}", nodes + 1)]).await?;
    let pending = wait::until("the extra replica", Duration::from_secs(30), || async {
        let pods = live_pods(&ns, "app=solo").await?;
        Ok(pods
            .into_iter()
            .find(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none())
            .and_then(|p| p.metadata.name)
            .ok_or_else(|| "not created yet".to_owned()))
    })
    .await?;
    let message = failed_scheduling(&ns, &pending).await?;
    let expected = format!("0/{nodes} nodes are available: {nodes} node(s) didn't match pod anti-affinity rules.");
    assert!(message.starts_with(&expected), "{message:?} starts with {expected:?}");
    Ok(())
}

#[tokio::test]
async fn plugin_annotation_is_honoured_and_a_bad_one_is_reported() -> anyhow::Result<()> {
    let (_cluster, ns) = setup("annotation").await?;
    let pods = ns.api::<Pod>();
    pods.create(&PostParams::default(), &pod("tuned", Some(r#"{"disabled":["NodeResourcesBalancedAllocation"],"weights":{"NodeResourcesFit":5}}"#))?).await?;
    pods.create(&PostParams::default(), &pod("typo", Some(r#"{"disabled":["NoSuchPlugin"]}"#))?).await?;

    let running = wait_running_pods(&ns, "app=tuned", 1).await?;
    let node = running[0].spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
    let message = failed_scheduling(&ns, "typo").await?;
    assert!(message.contains(ANNOTATION) && message.contains("NoSuchPlugin"), "the event names the problem: {message}");
    assert!(pods.get("typo").await?.spec.and_then(|s| s.node_name).is_none());

    // The explanation of the tuned pod: chosen node, its scores, and the override in force.
    let response = http::get("127.0.0.1", 10261, &format!("/explain/{}/tuned", ns.name)).await?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or_default();
    assert!(head.lines().next().is_some_and(|l| l.contains(" 200 ")), "{response}");
    let explanation: serde_json::Value = serde_json::from_str(body)?;
    assert_eq!(explanation["selectedNode"], serde_json::json!(node), "{explanation}");
    // Candidates come best first; the scheduler picks at random among equal totals.
    let candidates = explanation["candidates"].as_array().cloned().unwrap_or_default();
    let top = candidates.iter().find(|c| c["node"] == serde_json::json!(node)).cloned().unwrap_or_default();
    assert_eq!(top["total"], candidates[0]["total"], "the selected node has the best total: {explanation}");
    let plugins: Vec<&str> = top["scores"].as_array().into_iter().flatten().filter_map(|s| s["plugin"].as_str()).collect();
    assert!(!plugins.contains(&"NodeResourcesBalancedAllocation"), "disabled for this pod: {plugins:?}");
    let fit = top["scores"].as_array().into_iter().flatten().find(|s| s["plugin"] == "NodeResourcesFit");
    assert_eq!(fit.map(|s| s["weight"].clone()), Some(serde_json::json!(5)), "{explanation}");
    Ok(())
}

#[tokio::test]
async fn a_gated_pod_waits_untried_until_its_gates_are_removed() -> anyhow::Result<()> {
    let (_cluster, ns) = setup("gates").await?;
    let mut gated = pod("gated", None)?;
    if let Some(spec) = gated.spec.as_mut() {
        spec.scheduling_gates = Some(vec![k8s_openapi::api::core::v1::PodSchedulingGate { name: "example.com/hold".into() }]);
    }
    ns.api::<Pod>().create(&PostParams::default(), &gated).await?;
    // The SchedulingGates PreEnqueue plugin keeps it out of the queue: no attempt, so no event, no node,
    // and the apiserver's SchedulingGated condition stays.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let now = ns.api::<Pod>().get("gated").await?;
    assert_eq!(now.spec.as_ref().and_then(|s| s.node_name.as_deref()), None, "a gated pod is not bound");
    let scheduled = now.status.as_ref().and_then(|s| s.conditions.as_ref()).and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled").cloned());
    assert_eq!(scheduled.and_then(|c| c.reason).as_deref(), Some("SchedulingGated"));
    let lp = ListParams::default().fields("involvedObject.name=gated");
    let attempts = ns.api::<Event>().list(&lp).await?.items.into_iter().filter(|e| e.reason.as_deref() == Some("FailedScheduling")).count();
    assert_eq!(attempts, 0, "the scheduler never tried the gated pod");

    ns.kubectl(&["patch", "pod", "gated", "--type=json", "-p", r#"[{"op":"remove","path":"/spec/schedulingGates"}]"#]).await?;
    let running = wait_running_pods(&ns, "app=gated", 1).await?;
    assert!(running[0].spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some(), "bound once the gate is gone");
    Ok(())
}

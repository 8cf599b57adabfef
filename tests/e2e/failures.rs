//! Bad input gets upstream's status and events, and disturbs nothing else.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::Api;
use kube::api::{ListParams, PostParams};
use rudder_e2e::{TestNamespace, wait};

use crate::common::{is_running_and_ready, setup};

fn pod(name: &str, image: &str, cpu_request: Option<&str>) -> anyhow::Result<Pod> {
    let mut container = serde_json::json!({ "name": "main", "image": image });
    if let Some(cpu) = cpu_request {
        container["resources"] = serde_json::json!({ "requests": { "cpu": cpu } });
    }
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": { "name": name, "labels": { "test": name } },
        "spec": { "containers": [container] }
    }))?)
}

async fn events_for(ns: &TestNamespace, pod: &str) -> anyhow::Result<Vec<Event>> {
    let lp = ListParams::default().fields(&format!("involvedObject.name={pod}"));
    Ok(ns.api::<Event>().list(&lp).await?.items)
}

fn waiting_reason(pod: &Pod) -> Option<String> {
    pod.status.as_ref()?.container_statuses.as_ref()?.first()?.state.as_ref()?.waiting.as_ref()?.reason.clone()
}

#[tokio::test]
async fn missing_image_backs_off_and_disturbs_nothing_else() -> anyhow::Result<()> {
    let (_cluster, ns) = setup("imagepull").await?;
    let pods = ns.api::<Pod>();
    pods.create(&PostParams::default(), &pod("healthy", "nginx", None)?).await?;
    pods.create(&PostParams::default(), &pod("broken", "docker.io/library/no-such-image-rudder:v1", None)?).await?;

    wait::until("the broken pod to reach ImagePullBackOff", Duration::from_secs(120), || {
        let pods = pods.clone();
        async move {
            let reason = waiting_reason(&pods.get("broken").await?);
            Ok(if reason.as_deref() == Some("ImagePullBackOff") { Ok(()) } else { Err(format!("waiting reason {reason:?}")) })
        }
    })
    .await?;
    let broken = pods.get("broken").await?;
    assert_eq!(broken.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Pending"));

    let events = events_for(&ns, "broken").await?;
    let failed: Vec<&str> = events.iter().filter(|e| e.reason.as_deref() == Some("Failed")).filter_map(|e| e.message.as_deref()).collect();
    assert!(
        failed.iter().any(|m| m.contains("Failed to pull image \"docker.io/library/no-such-image-rudder:v1\"")),
        "a Failed event names the image: {failed:?}"
    );
    assert!(failed.iter().any(|m| m.contains("ErrImagePull")), "a Failed event says ErrImagePull: {failed:?}");
    assert!(events.iter().any(|e| e.reason.as_deref() == Some("BackOff")), "a BackOff event");

    let healthy = wait::until("the healthy pod to run", Duration::from_secs(120), || {
        let pods = pods.clone();
        async move {
            let p = pods.get("healthy").await?;
            Ok(if is_running_and_ready(&p) { Ok(p) } else { Err(format!("{:?}", p.status.and_then(|s| s.phase))) })
        }
    })
    .await?;
    assert_eq!(healthy.status.and_then(|s| s.container_statuses).and_then(|c| c.first().map(|c| c.restart_count)), Some(0));
    Ok(())
}

#[tokio::test]
async fn pod_too_big_for_any_node_stays_pending_with_failed_scheduling() -> anyhow::Result<()> {
    let (cluster, ns) = setup("unschedulable").await?;
    let nodes = Api::<Node>::all(cluster.client.clone()).list(&ListParams::default()).await?.items.len();
    let pods = ns.api::<Pod>();
    pods.create(&PostParams::default(), &pod("huge", "nginx", Some("1000"))?).await?;

    let expected = format!("0/{nodes} nodes are available: {nodes} Insufficient cpu.");
    let message = wait::until("a FailedScheduling event", Duration::from_secs(60), || async {
        let events = events_for(&ns, "huge").await?;
        Ok(match events.iter().find(|e| e.reason.as_deref() == Some("FailedScheduling")) {
            Some(e) => Ok(e.message.clone().unwrap_or_default()),
            None => Err(format!("{} events, none FailedScheduling", events.len())),
        })
    })
    .await?;
    assert!(message.starts_with(&expected), "message {message:?} starts with {expected:?}");

    // The event and the status patch are separate writes: wait for the condition as well.
    let pod = wait::until("PodScheduled=False/Unschedulable", Duration::from_secs(30), || async {
        let pod = pods.get("huge").await?;
        let conditions = pod.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
        let scheduled = conditions.into_iter().find(|c| c.type_ == "PodScheduled");
        Ok(match scheduled {
            Some(c) if c.status == "False" && c.reason.as_deref() == Some("Unschedulable") => Ok(pod),
            other => Err(format!("{other:?}")),
        })
    })
    .await?;
    assert_eq!(pod.status.and_then(|s| s.phase).as_deref(), Some("Pending"));
    assert!(pod.spec.and_then(|s| s.node_name).is_none(), "never bound");
    Ok(())
}

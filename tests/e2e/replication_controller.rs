//! A ReplicationController runs its pods like a ReplicaSet: scaled up and down, status counted, pods
//! owned through a controller reference to the RC.

use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::api::PostParams;
use rudder_e2e::{TestNamespace, wait};

use crate::common::{ROLLOUT_TIMEOUT, setup, wait_running_pods};

/// Waits until the RC's status reports `replicas` replicas, all ready and available, for its
/// current generation.
async fn wait_rc_ready(ns: &TestNamespace, name: &str, replicas: i32) -> anyhow::Result<ReplicationController> {
    let api = ns.api::<ReplicationController>();
    wait::until(&format!("replication controller {name} to have {replicas} ready replicas"), ROLLOUT_TIMEOUT, || {
        let api = api.clone();
        async move {
            let rc = api.get(name).await?;
            let s = rc.status.clone().unwrap_or_default();
            let seen = (s.replicas, s.ready_replicas.unwrap_or(0), s.available_replicas.unwrap_or(0));
            let current = s.observed_generation == rc.metadata.generation;
            Ok(if seen == (replicas, replicas, replicas) && current {
                Ok(rc)
            } else {
                Err(format!("replicas/ready/available = {seen:?}, observed generation current: {current}"))
            })
        }
    })
    .await
}

/// Every pod is controlled by the RC, with the reference upstream's controller writes.
fn assert_owned_by(pods: &[Pod], rc: &ReplicationController) {
    for pod in pods {
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let owners = pod.metadata.owner_references.clone().unwrap_or_default();
        assert_eq!(owners.len(), 1, "{name}: {owners:?}");
        let owner = &owners[0];
        assert_eq!((owner.api_version.as_str(), owner.kind.as_str()), ("v1", "ReplicationController"), "{name}");
        assert_eq!(Some(&owner.name), rc.metadata.name.as_ref(), "{name}");
        assert_eq!(Some(&owner.uid), rc.metadata.uid.as_ref(), "{name}");
        assert_eq!((owner.controller, owner.block_owner_deletion), (Some(true), Some(true)), "{name}");
        assert!(name.starts_with("web-rc-"), "pods are named after the RC: {name}");
    }
}

#[tokio::test]
async fn replication_controller_runs_scales_and_owns_its_pods() -> anyhow::Result<()> {
    let (_cluster, ns) = setup("rc").await?;
    let rc: ReplicationController = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "web-rc" },
        "spec": {
            "replicas": 3,
            // No selector: the apiserver defaults it to the template's labels.
            "template": {
                "metadata": { "labels": { "app": "web-rc" } },
                "spec": { "containers": [{ "name": "nginx", "image": "nginx", "ports": [{ "containerPort": 80 }] }] }
            }
        }
    }))?;
    let created = ns.api::<ReplicationController>().create(&PostParams::default(), &rc).await?;
    let selector = created.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
    assert_eq!(selector.get("app").map(String::as_str), Some("web-rc"), "defaulted selector: {selector:?}");

    let rc = wait_rc_ready(&ns, "web-rc", 3).await?;
    let pods = wait_running_pods(&ns, "app=web-rc", 3).await?;
    assert_owned_by(&pods, &rc);
    let status = rc.status.clone().unwrap_or_default();
    assert_eq!(status.fully_labeled_replicas, Some(3));
    assert!(status.conditions.unwrap_or_default().iter().all(|c| c.type_ != "ReplicaFailure"), "no failure condition");

    ns.kubectl(&["scale", "replicationcontroller", "web-rc", "--replicas=1"]).await?;
    let rc = wait_rc_ready(&ns, "web-rc", 1).await?;
    let pods = wait_running_pods(&ns, "app=web-rc", 1).await?;
    assert_owned_by(&pods, &rc);
    let rows = rudder_e2e::kubectl::table(&ns.kubectl(&["get", "replicationcontroller", "web-rc"]).await?);
    assert_eq!(rows[1][..4], ["web-rc", "1", "1", "1"], "{rows:?}");

    // A deleted pod is replaced.
    let gone = pods[0].metadata.name.clone().unwrap_or_default();
    ns.kubectl(&["delete", "pod", &gone, "--wait=false"]).await?;
    let pods = wait::until("a replacement pod", ROLLOUT_TIMEOUT, || async {
        let pods = wait_running_pods(&ns, "app=web-rc", 1).await?;
        Ok(if pods.iter().any(|p| p.metadata.name.as_deref() == Some(gone.as_str())) { Err(format!("{gone} still there")) } else { Ok(pods) })
    })
    .await?;
    assert_owned_by(&pods, &rc);
    Ok(())
}

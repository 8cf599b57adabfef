//! Storage object in-use protection: a deleted claim waits for the pods that mount it, a deleted volume
//! for its binding, then both go (the protection controllers remove the apiserver's finalizers).

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use rudder_e2e::wait;

use crate::common::setup;

#[tokio::test]
async fn deleted_claims_and_volumes_go_once_nothing_uses_them() -> anyhow::Result<()> {
    let (cluster, ns) = setup("pvcprot").await?;
    let claims = ns.api::<PersistentVolumeClaim>();
    for name in ["unused", "mounted"] {
        let claim: PersistentVolumeClaim = serde_json::from_value(serde_json::json!({
            "metadata": { "name": name },
            "spec": { "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "1Mi" } } }
        }))?;
        claims.create(&PostParams::default(), &claim).await?;
    }
    // Placed on a node directly: a scheduled pod that mounts the claim keeps it (it never starts here,
    // as nothing provisions the claim, which does not matter for protection).
    let node = Api::<Node>::all(cluster.client.clone()).list(&ListParams::default()).await?.items.into_iter().next().and_then(|n| n.metadata.name);
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "user" },
        "spec": { "nodeName": node, "containers": [{ "name": "main", "image": "busybox", "command": ["sleep", "3600"],
            "volumeMounts": [{ "name": "data", "mountPath": "/data" }] }],
            "volumes": [{ "name": "data", "persistentVolumeClaim": { "claimName": "mounted" } }] }
    }))?;
    ns.api::<Pod>().create(&PostParams::default(), &pod).await?;

    for name in ["unused", "mounted"] {
        claims.delete(name, &DeleteParams::default()).await?;
    }
    wait::until("the unused claim to go", Duration::from_secs(30), || async {
        Ok(if claims.get_opt("unused").await?.is_none() { Ok(()) } else { Err("still there".to_owned()) })
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let kept = claims.get_opt("mounted").await?;
    assert!(kept.is_some_and(|c| c.metadata.deletion_timestamp.is_some()), "the mounted claim waits, terminating, for its pod");

    ns.api::<Pod>().delete("user", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await?;
    wait::until("the mounted claim to go after its pod", Duration::from_secs(60), || async {
        Ok(if claims.get_opt("mounted").await?.is_none() { Ok(()) } else { Err("still there".to_owned()) })
    })
    .await?;

    // An unbound volume is not in use: deleting it removes it.
    let volumes = Api::<PersistentVolume>::all(cluster.client.clone());
    let name = format!("{}-pv", ns.name);
    let volume: PersistentVolume = serde_json::from_value(serde_json::json!({
        "metadata": { "name": name },
        "spec": { "capacity": { "storage": "1Mi" }, "accessModes": ["ReadWriteOnce"], "hostPath": { "path": "/tmp/rudder-e2e-pv" } }
    }))?;
    volumes.create(&PostParams::default(), &volume).await?;
    volumes.delete(&name, &DeleteParams::default()).await?;
    wait::until("the unbound volume to go", Duration::from_secs(30), || async {
        Ok(if volumes.get_opt(&name).await?.is_none() { Ok(()) } else { Err("still there".to_owned()) })
    })
    .await
}

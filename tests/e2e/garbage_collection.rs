//! Cascading deletion through ownerReferences: background (the walkthrough), foreground and orphan.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use rudder_e2e::wait;

use crate::common::{setup, wait_deployment_ready};

#[tokio::test]
async fn orphan_deletion_keeps_dependents_and_foreground_deletes_them_first() -> anyhow::Result<()> {
    let (_cluster, ns) = setup("gc").await?;
    let rs_api = ns.api::<ReplicaSet>();
    let pod_api = ns.api::<Pod>();

    // Orphan: the ReplicaSet and pods stay, without an owner.
    ns.kubectl(&["create", "deployment", "kept", "--image=nginx", "--replicas=1"]).await?;
    wait_deployment_ready(&ns, "kept", 1).await?;
    ns.kubectl(&["delete", "deployment", "kept", "--cascade=orphan"]).await?;
    let orphaned = wait::until("the ReplicaSet to be orphaned", Duration::from_secs(60), || async {
        let list = rs_api.list(&ListParams::default().labels("app=kept")).await?.items;
        Ok(match list.as_slice() {
            [rs] if rs.metadata.owner_references.as_ref().is_none_or(|o| o.is_empty()) => Ok(rs.clone()),
            other => Err(format!("{} replicasets, owners {:?}", other.len(), other.iter().map(|r| &r.metadata.owner_references).collect::<Vec<_>>())),
        })
    })
    .await?;
    assert!(orphaned.metadata.deletion_timestamp.is_none());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pods = pod_api.list(&ListParams::default().labels("app=kept")).await?.items;
    assert_eq!(pods.len(), 1, "the orphaned ReplicaSet's pod survives");
    assert!(pods[0].metadata.deletion_timestamp.is_none());

    // Foreground: the Deployment stays (with the foregroundDeletion finalizer) until its dependents are gone.
    ns.kubectl(&["create", "deployment", "fg", "--image=nginx", "--replicas=2"]).await?;
    wait_deployment_ready(&ns, "fg", 2).await?;
    ns.kubectl(&["delete", "deployment", "fg", "--cascade=foreground", "--wait=false"]).await?;
    let deployments = ns.api::<Deployment>();
    let deleting = deployments.get("fg").await?;
    assert!(deleting.metadata.finalizers.unwrap_or_default().iter().any(|f| f == "foregroundDeletion"));
    // The first time the Deployment is seen gone, its dependents must already be gone.
    let (rs, pods) = wait::until("the foreground deletion to finish", Duration::from_secs(120), || async {
        // Owner first: dependents listed after seeing it gone must already be gone.
        let owner_present = deployments.get_opt("fg").await?.is_some();
        let rs = rs_api.list(&ListParams::default().labels("app=fg")).await?.items.len();
        let pods = pod_api.list(&ListParams::default().labels("app=fg")).await?.items.len();
        Ok(if owner_present { Err(format!("deployment still there, {rs} replicasets, {pods} pods")) } else { Ok((rs, pods)) })
    })
    .await?;
    assert_eq!((rs, pods), (0, 0), "the owner went only after its dependents");
    Ok(())
}

/// A cluster-scoped object naming a namespaced owner is an invalid reference, not a dangling one: upstream
/// leaves the object alone (OwnerRefInvalidNamespace). One with a missing cluster-scoped owner is collected,
/// which shows the collector has looked at both.
#[tokio::test]
async fn cluster_scoped_object_with_a_namespaced_owner_is_not_collected() -> anyhow::Result<()> {
    let (cluster, ns) = setup("gc-scope").await?;
    let roles: Api<ClusterRole> = Api::all(cluster.client.clone());
    let role = |name: &str, owner_kind: &str| -> anyhow::Result<ClusterRole> {
        Ok(serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": name,
                "ownerReferences": [{ "apiVersion": "v1", "kind": owner_kind, "name": "gone", "uid": "6f9d7c1e-0000-4000-8000-000000000001" }],
            },
        }))?)
    };
    let (invalid, dangling) = (format!("{}-namespaced-owner", ns.name), format!("{}-missing-owner", ns.name));
    roles.create(&PostParams::default(), &role(&invalid, "ConfigMap")?).await?;
    roles.create(&PostParams::default(), &role(&dangling, "Namespace")?).await?;

    wait::until("the ClusterRole with a missing owner to be collected", Duration::from_secs(60), || async {
        Ok(match roles.get_opt(&dangling).await? {
            None => Ok(()),
            Some(_) => Err("still there".to_string()),
        })
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let kept = roles.get_opt(&invalid).await?;
    roles.delete(&invalid, &DeleteParams::default()).await.ok();
    let kept = kept.ok_or_else(|| anyhow::anyhow!("the ClusterRole naming a namespaced owner was collected"))?;
    assert!(kept.metadata.deletion_timestamp.is_none(), "not being deleted either");
    Ok(())
}

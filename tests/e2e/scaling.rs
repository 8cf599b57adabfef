//! Scaling a deployment up and down.

use rudder_e2e::kubectl::table;

use crate::common::{setup, wait_deployment_ready, wait_running_pods};

#[tokio::test]
async fn scale_to_five_and_back_to_one() -> anyhow::Result<()> {
    let (_cluster, ns) = setup("scale").await?;
    ns.kubectl(&["create", "deployment", "web", "--image=nginx", "--replicas=2"]).await?;
    wait_deployment_ready(&ns, "web", 2).await?;

    ns.kubectl(&["scale", "deployment", "web", "--replicas=5"]).await?;
    wait_deployment_ready(&ns, "web", 5).await?;
    let pods = wait_running_pods(&ns, "app=web", 5).await?;
    assert_eq!(pods.len(), 5);
    let rows = table(&ns.kubectl(&["get", "deployment", "web"]).await?);
    assert_eq!(rows[1][..4], ["web", "5/5", "5", "5"], "{rows:?}");

    ns.kubectl(&["scale", "deployment", "web", "--replicas=1"]).await?;
    wait_deployment_ready(&ns, "web", 1).await?;
    let pods = wait_running_pods(&ns, "app=web", 1).await?;
    assert_eq!(pods.len(), 1);
    let rows = table(&ns.kubectl(&["get", "replicaset"]).await?);
    assert_eq!(rows.len(), 2, "scaling never makes a second ReplicaSet: {rows:?}");
    assert_eq!(rows[1][1..4], ["1", "1", "1"], "{rows:?}");
    Ok(())
}

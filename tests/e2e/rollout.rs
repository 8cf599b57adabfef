//! `kubectl rollout` against rudder's Deployment controller: status, history, undo, pause, resume, restart.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::ListParams;
use rudder_e2e::TestNamespace;

use crate::common::{setup, wait_deployment_ready};

async fn revision(ns: &TestNamespace, name: &str) -> anyhow::Result<String> {
    let d = ns.api::<Deployment>().get(name).await?;
    Ok(d.metadata.annotations.unwrap_or_default().remove("deployment.kubernetes.io/revision").unwrap_or_default())
}

async fn replica_sets(ns: &TestNamespace) -> anyhow::Result<usize> {
    Ok(ns.api::<ReplicaSet>().list(&ListParams::default()).await?.items.len())
}

#[tokio::test]
async fn rollout_status_history_undo_pause_resume_restart() -> anyhow::Result<()> {
    let (_cluster, ns) = setup("rollout").await?;
    ns.kubectl(&["create", "deployment", "web", "--image=nginx", "--replicas=2"]).await?;
    let status = ns.kubectl(&["rollout", "status", "deployment/web", "--timeout=180s"]).await?;
    assert!(status.contains("successfully rolled out"), "{status}");

    // A template change is a new revision with its own ReplicaSet.
    ns.kubectl(&["set", "env", "deployment/web", "STAGE=two"]).await?;
    ns.kubectl(&["annotate", "deployment/web", "kubernetes.io/change-cause=stage two"]).await?;
    let status = ns.kubectl(&["rollout", "status", "deployment/web", "--timeout=180s"]).await?;
    assert!(status.contains("successfully rolled out"), "{status}");
    assert_eq!(revision(&ns, "web").await?, "2");
    assert_eq!(replica_sets(&ns).await?, 2);
    let history = ns.kubectl(&["rollout", "history", "deployment/web"]).await?;
    assert!(history.lines().any(|l| l.starts_with('1')), "{history}");
    assert!(history.lines().any(|l| l.starts_with('2') && l.contains("stage two")), "{history}");

    // Undo brings back revision 1's template as revision 3, reusing its ReplicaSet.
    ns.kubectl(&["rollout", "undo", "deployment/web"]).await?;
    ns.kubectl(&["rollout", "status", "deployment/web", "--timeout=180s"]).await?;
    assert_eq!(revision(&ns, "web").await?, "3");
    assert_eq!(replica_sets(&ns).await?, 2, "undo reuses the old ReplicaSet");
    let env = ns.kubectl(&["get", "deployment/web", "-o", "jsonpath={.spec.template.spec.containers[0].env}"]).await?;
    assert!(!env.contains("STAGE"), "revision 1's template is back: {env}");

    // Paused: a template change makes no new ReplicaSet until resumed.
    ns.kubectl(&["rollout", "pause", "deployment/web"]).await?;
    ns.kubectl(&["set", "env", "deployment/web", "STAGE=four"]).await?;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(replica_sets(&ns).await?, 2, "no rollout while paused");
    let conditions = ns.kubectl(&["get", "deployment/web", "-o", "jsonpath={.status.conditions[?(@.type==\"Progressing\")].reason}"]).await?;
    assert_eq!(conditions, "DeploymentPaused");
    ns.kubectl(&["rollout", "resume", "deployment/web"]).await?;
    ns.kubectl(&["rollout", "status", "deployment/web", "--timeout=180s"]).await?;
    assert_eq!(replica_sets(&ns).await?, 3);

    // Restart rolls the pods through a new ReplicaSet.
    ns.kubectl(&["rollout", "restart", "deployment/web"]).await?;
    ns.kubectl(&["rollout", "status", "deployment/web", "--timeout=180s"]).await?;
    assert_eq!(replica_sets(&ns).await?, 4);
    wait_deployment_ready(&ns, "web", 2).await?;
    Ok(())
}

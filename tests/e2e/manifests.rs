//! The in-cluster manifests and the Helm chart are what the real apiserver accepts.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::Context;
use rudder_e2e::Cluster;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn helm(cluster: &Cluster) -> PathBuf {
    cluster.kubectl.parent().and_then(|d| d.parent()).map(|d| d.join("helm/helm")).unwrap_or_else(|| "helm".into())
}

#[tokio::test]
async fn manifests_and_chart_pass_server_side_dry_run() -> anyhow::Result<()> {
    let cluster = Cluster::connect().await?;
    let manifests = repo().join("manifests");
    let out = cluster.kubectl(None, &["apply", "--dry-run=server", "-f", &manifests.to_string_lossy()]).await?;
    for object in ["deployment.apps/rudder-scheduler", "deployment.apps/rudder-controllers", "clusterrole.rbac.authorization.k8s.io/rudder:controllers"] {
        assert!(out.contains(object), "manifests/ has {object}: {out}");
    }

    let rendered = Command::new(helm(&cluster))
        .args(["template", "rudder"])
        .arg(repo().join("charts/rudder"))
        .args(["--namespace", "rudder-system", "--set", "controllers.enabled=true"])
        .stderr(Stdio::null())
        .output()
        .context("running helm template")?;
    assert!(rendered.status.success(), "helm template failed");
    let rendered = String::from_utf8(rendered.stdout)?;
    let out = cluster.kubectl_output(None, &["apply", "--dry-run=server", "-f", "-"], Some(&rendered)).await?;
    assert!(out.success, "{}", out.stderr);
    assert!(out.stdout.contains("deployment.apps/rudder-scheduler created (server dry run)"), "{}", out.stdout);
    assert!(out.stdout.contains("clusterrole.rbac.authorization.k8s.io/rudder:controllers"), "{}", out.stdout);
    Ok(())
}

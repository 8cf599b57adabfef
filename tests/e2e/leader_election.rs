//! rudder-controllers runs behind a Lease like kube-controller-manager: the cluster's instance holds
//! `kube-system/rudder-controller-manager` and keeps renewing it, reports leadership and per-queue work
//! on `/metrics`, and a second instance stands by (not ready, doing nothing) without disturbing it.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::PostParams;
use rudder_e2e::{http, wait};

use crate::common::{setup, wait_running_pods};

const LEASE_NAMESPACE: &str = "kube-system";
const LEASE_NAME: &str = "rudder-controller-manager";
/// The local cluster's rudder-controllers health and metrics port (hack/README.md).
const METRICS_PORT: u16 = 10257;

fn rudder_home() -> PathBuf {
    std::env::var("RUDDER_HOME").map(PathBuf::from).unwrap_or_else(|_| "/var/lib/rudder".into())
}

/// The value of one sample line (`name{labels} value`) in a Prometheus text page.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

async fn metrics(port: u16) -> anyhow::Result<String> {
    http::get("127.0.0.1", port, "/metrics").await
}

async fn holder(api: &Api<Lease>) -> anyhow::Result<(String, Option<String>)> {
    let lease = api.get(LEASE_NAME).await.with_context(|| format!("reading lease {LEASE_NAMESPACE}/{LEASE_NAME}"))?;
    let spec = lease.spec.unwrap_or_default();
    Ok((spec.holder_identity.unwrap_or_default(), spec.renew_time.map(|t| t.0.to_string())))
}

#[tokio::test]
async fn controllers_hold_and_renew_their_lease_and_report_it() -> anyhow::Result<()> {
    let (cluster, ns) = setup("leader").await?;
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), LEASE_NAMESPACE);
    let lease = leases.get(LEASE_NAME).await?;
    let spec = lease.spec.clone().unwrap_or_default();
    let (first_holder, first_renew) = holder(&leases).await?;
    assert!(first_holder.contains('_'), "held by a host_uuid identity: {spec:?}");
    assert_eq!(spec.lease_duration_seconds, Some(15), "upstream's default lease duration");

    // Renewed every retry period (2 s), by the same holder.
    wait::until("the lease to be renewed", Duration::from_secs(10), || async {
        let (h, r) = holder(&leases).await?;
        Ok(if h == first_holder && r != first_renew { Ok(()) } else { Err(format!("holder {h}, renew time {r:?}")) })
    })
    .await?;

    let page = metrics(METRICS_PORT).await?;
    let leading = format!(r#"leader_election_master_status{{name="{LEASE_NAME}"}}"#);
    assert_eq!(sample(&page, &leading), Some(1.0), "the leader says so on /metrics:\n{page}");

    // The leader acts: a replica set gets its pod, and the replicaset queue counts the syncs.
    let adds = r#"workqueue_adds_total{name="replicaset"}"#;
    let before = sample(&page, adds).unwrap_or(0.0);
    let rs: ReplicaSet = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "led" },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": "led" } },
            "template": {
                "metadata": { "labels": { "app": "led" } },
                "spec": { "containers": [{ "name": "nginx", "image": "nginx" }] }
            }
        }
    }))?;
    ns.api::<ReplicaSet>().create(&PostParams::default(), &rs).await?;
    wait_running_pods(&ns, "app=led", 1).await?;
    let after = sample(&metrics(METRICS_PORT).await?, adds).unwrap_or(0.0);
    assert!(after > before, "{adds} grew with the replica set's syncs: {before} -> {after}");
    let durations = sample(&metrics(METRICS_PORT).await?, r#"workqueue_work_duration_seconds_count{name="replicaset"}"#);
    assert!(durations.is_some_and(|n| n >= 1.0), "sync durations are observed: {durations:?}");
    Ok(())
}

/// The binary the local cluster runs (the launcher records it), else the release build.
fn controllers_binary() -> PathBuf {
    std::fs::read_to_string(rudder_home().join("run/rudder-controllers.exe"))
        .map(|p| PathBuf::from(p.trim()))
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/rudder-controllers"))
}

#[tokio::test]
async fn a_second_controllers_process_stands_by() -> anyhow::Result<()> {
    let (cluster, _ns) = setup("standby").await?;
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), LEASE_NAMESPACE);
    let (leader, _) = holder(&leases).await?;
    let port = 10297;
    let mut standby = tokio::process::Command::new(controllers_binary())
        .arg("--kubeconfig")
        .arg(rudder_home().join("controllers.kubeconfig"))
        .args(["--health-bind-address", &format!("127.0.0.1:{port}"), "--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting a second rudder-controllers")?;

    let page = wait::until("the standby's /metrics", Duration::from_secs(20), || async {
        Ok(metrics(port).await.map_err(|e| e.to_string()))
    })
    .await?;
    // Give it several retry periods to (wrongly) take over or start work.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let page_later = metrics(port).await?;
    let ready = http::get("127.0.0.1", port, "/readyz").await?;
    let (still, _) = holder(&leases).await?;
    let pid = standby.id().map(|p| p.to_string()).unwrap_or_default();
    let _ = tokio::process::Command::new("kill").args(["-TERM", &pid]).status().await;
    let exit = tokio::time::timeout(Duration::from_secs(10), standby.wait()).await;

    let status_line = format!(r#"leader_election_master_status{{name="{LEASE_NAME}"}}"#);
    assert_eq!(sample(&page, &status_line), Some(0.0), "a standby reports 0:\n{page}");
    assert_eq!(sample(&page_later, &status_line), Some(0.0), "and keeps standing by:\n{page_later}");
    assert!(sample(&page_later, r#"workqueue_adds_total{name="replicaset"}"#).is_none(), "a standby syncs nothing:\n{page_later}");
    assert!(ready.starts_with("HTTP/1.1 503") || ready.starts_with("HTTP/1.0 503"), "a standby is not ready: {ready}");
    assert_eq!(still, leader, "the leader keeps its lease");
    let exit = exit.context("the standby did not stop within 10s of SIGTERM")??;
    assert!(exit.success(), "a standby stops cleanly on SIGTERM: {exit}");
    Ok(())
}

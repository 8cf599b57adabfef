//! Fixtures shared by the end-to-end tests.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use rudder_e2e::{Cluster, TestNamespace, wait};

/// Long enough for a cold image pull through the local registry on a busy 2-core machine.
pub const ROLLOUT_TIMEOUT: Duration = Duration::from_secs(180);

pub async fn setup(prefix: &str) -> anyhow::Result<(Cluster, TestNamespace)> {
    let cluster = Cluster::connect().await?;
    let ns = TestNamespace::create(&cluster, prefix).await?;
    Ok((cluster, ns))
}

/// Waits until the deployment reports `replicas` ready, available and updated replicas.
pub async fn wait_deployment_ready(ns: &TestNamespace, name: &str, replicas: i32) -> anyhow::Result<Deployment> {
    let api = ns.api::<Deployment>();
    wait::until(&format!("deployment {name} to have {replicas} ready replicas"), ROLLOUT_TIMEOUT, || {
        let api = api.clone();
        async move {
            let d = api.get(name).await?;
            let s = d.status.clone().unwrap_or_default();
            let seen = (s.replicas.unwrap_or(0), s.ready_replicas.unwrap_or(0), s.available_replicas.unwrap_or(0), s.updated_replicas.unwrap_or(0));
            Ok(if seen == (replicas, replicas, replicas, replicas) { Ok(d) } else { Err(format!("replicas/ready/available/updated = {seen:?}")) })
        }
    })
    .await
}

/// The pods of the namespace that are not being deleted.
pub async fn live_pods(ns: &TestNamespace, selector: &str) -> anyhow::Result<Vec<Pod>> {
    let pods = ns.api::<Pod>().list(&ListParams::default().labels(selector)).await?;
    Ok(pods.items.into_iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect())
}

pub fn is_running_and_ready(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Waits until exactly `count` live pods match `selector` and all are Running and Ready.
pub async fn wait_running_pods(ns: &TestNamespace, selector: &str, count: usize) -> anyhow::Result<Vec<Pod>> {
    wait::until(&format!("{count} running pods matching {selector}"), ROLLOUT_TIMEOUT, || async {
        let pods = live_pods(ns, selector).await?;
        let ready = pods.iter().filter(|p| is_running_and_ready(p)).count();
        Ok(if pods.len() == count && ready == count {
            Ok(pods)
        } else {
            Err(format!("{} pods, {ready} running and ready: {}", pods.len(), describe(&pods)))
        })
    })
    .await
}

/// One line per pod: name, phase, node and container waiting reasons, for failure messages.
pub fn describe(pods: &[Pod]) -> String {
    pods.iter()
        .map(|p| {
            let status = p.status.clone().unwrap_or_default();
            let waiting: Vec<String> = status
                .container_statuses
                .unwrap_or_default()
                .into_iter()
                .filter_map(|c| c.state.and_then(|s| s.waiting).and_then(|w| w.reason))
                .collect();
            format!(
                "{}[{} on {} {}]",
                p.metadata.name.clone().unwrap_or_default(),
                status.phase.unwrap_or_default(),
                p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_else(|| "-".into()),
                waiting.join(",")
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

//! A ResourceQuota: the controller reports what the namespace uses, frees quota when objects go,
//! and the apiserver's admission plugin refuses a pod that would exceed it.

use k8s_openapi::api::core::v1::{ConfigMap, Pod, ResourceQuota};
use kube::api::{DeleteParams, PostParams};
use rudder_e2e::{TestNamespace, wait};

use crate::common::setup;

/// Long enough for a recalculation on a busy machine; upstream's conformance test allows 30 s.
const QUOTA_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Waits until the quota's `status.used` holds `want`, compared by value.
async fn wait_used(ns: &TestNamespace, name: &str, want: &[(&str, &str)]) -> anyhow::Result<ResourceQuota> {
    let api = ns.api::<ResourceQuota>();
    wait::until(&format!("quota {name} to report used {want:?}"), QUOTA_TIMEOUT, || {
        let api = api.clone();
        async move {
            let quota = api.get(name).await?;
            let used = quota.status.as_ref().and_then(|s| s.used.clone()).unwrap_or_default();
            let same = |resource: &str, value: &str| used.get(resource).map(|q| normalise(&q.0)) == Some(normalise(value));
            Ok(if want.iter().all(|(r, v)| same(r, v)) { Ok(quota) } else { Err(format!("used = {used:?}")) })
        }
    })
    .await
}

/// Quantity text in thousandths, so `1Gi` and `1073741824` compare equal (only the notations this
/// test uses).
fn normalise(text: &str) -> Option<i64> {
    let (number, multiplier): (&str, i64) = match text {
        t if t.ends_with("Gi") => (&t[..t.len() - 2], 1 << 30),
        t if t.ends_with("Mi") => (&t[..t.len() - 2], 1 << 20),
        t if t.ends_with("Ki") => (&t[..t.len() - 2], 1 << 10),
        t if t.ends_with('m') => return t[..t.len() - 1].parse().ok(),
        t => (t, 1),
    };
    number.parse::<i64>().ok().map(|n| n * multiplier * 1000)
}

#[test]
fn normalising() {
    assert_eq!(normalise("1Gi"), normalise("1073741824"));
    assert_eq!(normalise("300m"), Some(300));
    assert_eq!(normalise("64Mi"), Some(64 * 1024 * 1024 * 1000));
    assert_eq!(normalise("bogus"), None);
}

fn pod(name: &str, cpu: &str) -> anyhow::Result<Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": { "name": name },
        "spec": { "containers": [{ "name": "nginx", "image": "nginx", "resources": {
            "requests": { "cpu": cpu, "memory": "64Mi" }, "limits": { "cpu": cpu, "memory": "64Mi" } } }] }
    }))?)
}

#[tokio::test]
async fn quota_tracks_usage_and_refuses_a_pod_above_it() -> anyhow::Result<()> {
    let (_cluster, ns) = setup("quota").await?;
    let quota: ResourceQuota = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "compute" },
        "spec": { "hard": { "pods": "2", "configmaps": "5", "requests.cpu": "500m", "requests.memory": "1Gi", "limits.memory": "1Gi" } }
    }))?;
    ns.api::<ResourceQuota>().create(&PostParams::default(), &quota).await?;
    // kube-root-ca.crt is the namespace's one configmap to begin with.
    let quota = wait_used(&ns, "compute", &[("pods", "0"), ("configmaps", "1"), ("requests.cpu", "0"), ("requests.memory", "0")]).await?;
    let hard = quota.status.as_ref().and_then(|s| s.hard.clone()).unwrap_or_default();
    assert_eq!(hard.get("requests.cpu").map(|q| q.0.as_str()), Some("500m"), "status.hard mirrors spec.hard");

    let config_map: ConfigMap = serde_json::from_value(serde_json::json!({ "metadata": { "name": "settings" }, "data": { "a": "b" } }))?;
    ns.api::<ConfigMap>().create(&PostParams::default(), &config_map).await?;
    ns.api::<Pod>().create(&PostParams::default(), &pod("first", "300m")?).await?;
    wait_used(&ns, "compute", &[("pods", "1"), ("configmaps", "2"), ("requests.cpu", "300m"), ("requests.memory", "64Mi"), ("limits.memory", "64Mi")]).await?;

    // 300m + 300m is above the 500m of requests.cpu: admission refuses it from the status.
    match ns.api::<Pod>().create(&PostParams::default(), &pod("second", "300m")?).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 403, "{}", status.message);
            assert!(status.message.contains("exceeded quota"), "{}", status.message);
        }
        other => anyhow::bail!("second pod was not refused: {other:?}"),
    }

    // Deleting frees the quota again (the controller recalculates; admission never subtracts).
    ns.api::<ConfigMap>().delete("settings", &DeleteParams::default()).await?;
    ns.api::<Pod>().delete("first", &DeleteParams::default().grace_period(0)).await?;
    wait_used(&ns, "compute", &[("pods", "0"), ("configmaps", "1"), ("requests.cpu", "0")]).await?;
    create_once_admitted(&ns, &pod("second", "300m")?).await?;
    wait_used(&ns, "compute", &[("pods", "1"), ("requests.cpu", "300m")]).await?;
    Ok(())
}

/// Creates `pod`, retrying while quota admission refuses it. The apiserver's admission reads quotas
/// from its own informer, which may still hold the usage from before the recalculation the test just
/// saw with a GET. A refusal is only retried while the stored status says there is room, so a
/// controller that wrote the old usage back still fails the test.
async fn create_once_admitted(ns: &TestNamespace, pod: &Pod) -> anyhow::Result<Pod> {
    let deadline = tokio::time::Instant::now() + QUOTA_TIMEOUT;
    loop {
        let status = match ns.api::<Pod>().create(&PostParams::default(), pod).await {
            Ok(created) => return Ok(created),
            Err(kube::Error::Api(status)) if status.code == 403 && status.message.contains("exceeded quota") => status,
            Err(e) => return Err(e.into()),
        };
        let used = ns.api::<ResourceQuota>().get("compute").await?.status.and_then(|s| s.used).unwrap_or_default();
        let cpu = used.get("requests.cpu").and_then(|q| normalise(&q.0));
        anyhow::ensure!(cpu == Some(0), "the stored usage went back to {used:?}: {}", status.message);
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "admission still refuses after {QUOTA_TIMEOUT:?}: {}", status.message);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

//! A PodDisruptionBudget over a Deployment: the disruption controller reports how many pods may be
//! disrupted, and the apiserver's eviction API lets exactly that many go until replacements are ready.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{EvictParams, PostParams};
use rudder_e2e::{TestNamespace, wait};

use crate::common::{ROLLOUT_TIMEOUT, setup, wait_deployment_ready, wait_running_pods};

/// Waits until the budget's status, for its current generation, reads `(currentHealthy,
/// desiredHealthy, expectedPods, disruptionsAllowed)` = `want`.
async fn wait_budget(ns: &TestNamespace, name: &str, want: (i32, i32, i32, i32)) -> anyhow::Result<PodDisruptionBudget> {
    let api = ns.api::<PodDisruptionBudget>();
    wait::until(&format!("budget {name} to report {want:?}"), ROLLOUT_TIMEOUT, || {
        let api = api.clone();
        async move {
            let budget = api.get(name).await?;
            let s = budget.status.clone().unwrap_or_default();
            let seen = (s.current_healthy, s.desired_healthy, s.expected_pods, s.disruptions_allowed);
            let current = s.observed_generation == budget.metadata.generation;
            Ok(if seen == want && current { Ok(budget) } else { Err(format!("healthy/desired/expected/allowed = {seen:?}, generation current: {current}")) })
        }
    })
    .await
}

fn condition(budget: &PodDisruptionBudget) -> Option<(String, String)> {
    let conditions = budget.status.as_ref()?.conditions.as_ref()?;
    conditions.iter().find(|c| c.type_ == "DisruptionAllowed").map(|c| (c.status.clone(), c.reason.clone()))
}

/// Three nginx replicas that turn ready only five seconds after starting, so that a replacement for
/// an evicted pod cannot become ready — and free the budget again — before the test's next eviction.
fn slow_to_ready_web() -> anyhow::Result<Deployment> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": { "name": "web" },
        "spec": {
            "replicas": 3,
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{
                    "name": "nginx", "image": "nginx",
                    "readinessProbe": { "tcpSocket": { "port": 80 }, "initialDelaySeconds": 5, "periodSeconds": 1 }
                }] }
            }
        }
    }))?)
}

#[tokio::test]
async fn budget_allows_one_eviction_until_the_replacement_is_ready() -> anyhow::Result<()> {
    let (_cluster, ns) = setup("pdb").await?;
    ns.api::<Deployment>().create(&PostParams::default(), &slow_to_ready_web()?).await?;
    wait_deployment_ready(&ns, "web", 3).await?;
    let budget: PodDisruptionBudget = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "web" },
        "spec": { "minAvailable": 2, "selector": { "matchLabels": { "app": "web" } } }
    }))?;
    ns.api::<PodDisruptionBudget>().create(&PostParams::default(), &budget).await?;

    let budget = wait_budget(&ns, "web", (3, 2, 3, 1)).await?;
    assert_eq!(condition(&budget), Some(("True".into(), "SufficientPods".into())));

    let pods = wait_running_pods(&ns, "app=web", 3).await?;
    let names: Vec<String> = pods.iter().filter_map(|p| p.metadata.name.clone()).collect();
    let api = ns.api::<Pod>();
    api.evict(&names[0], &EvictParams::default()).await?;
    // The eviction used the only allowed disruption; the next one must be refused with 429.
    match api.evict(&names[1], &EvictParams::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 429, "second eviction refused: {}", status.message),
        other => anyhow::bail!("second eviction was not refused: {other:?}"),
    }
    let budget = ns.api::<PodDisruptionBudget>().get("web").await?;
    assert_eq!(budget.status.as_ref().map(|s| s.disruptions_allowed), Some(0));

    // Once the Deployment's replacement is ready the budget allows one disruption again.
    wait_running_pods(&ns, "app=web", 3).await?;
    let budget = wait_budget(&ns, "web", (3, 2, 3, 1)).await?;
    assert_eq!(condition(&budget), Some(("True".into(), "SufficientPods".into())));
    api.evict(&names[1], &EvictParams::default()).await?;
    Ok(())
}

#[tokio::test]
async fn percentage_budget_counts_the_deployments_scale() -> anyhow::Result<()> {
    let (_cluster, ns) = setup("pdb-pct").await?;
    ns.kubectl(&["create", "deployment", "web", "--image=nginx", "--replicas=3"]).await?;
    wait_deployment_ready(&ns, "web", 3).await?;
    // 34% of 3 rounds up to 2 unavailable, so 1 must stay healthy and 2 may go.
    let budget: PodDisruptionBudget = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "web" },
        "spec": { "maxUnavailable": "34%", "selector": { "matchLabels": { "app": "web" } } }
    }))?;
    ns.api::<PodDisruptionBudget>().create(&PostParams::default(), &budget).await?;
    wait_budget(&ns, "web", (3, 1, 3, 2)).await?;

    // The expected count follows the Deployment's scale: 34% of 5 rounds up to 2 unavailable.
    ns.kubectl(&["scale", "deployment", "web", "--replicas=5"]).await?;
    wait_deployment_ready(&ns, "web", 5).await?;
    let budget = wait_budget(&ns, "web", (5, 3, 5, 2)).await?;
    assert_eq!(condition(&budget), Some(("True".into(), "SufficientPods".into())));
    Ok(())
}

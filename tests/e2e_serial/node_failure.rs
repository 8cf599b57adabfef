//! FLOW.md's failure story: a node's agent stops reporting; its pods are judged lost, evicted and
//! replaced on other nodes with no one intervening; when the agent comes back it cleans up after them.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::PostParams;
use rudder_e2e::wait;

use crate::common::{live_pods, setup, wait_deployment_ready, wait_running_pods};

/// Node monitor grace period (50 s upstream default) + toleration (5 s here) + rescheduling.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(180);

fn launcher(args: &[&str]) -> anyhow::Result<()> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../hack/local-cluster.sh");
    let status = Command::new(&script).args(args).status().with_context(|| format!("running {}", script.display()))?;
    if !status.success() {
        bail!("{} {} failed: {status}", script.display(), args.join(" "));
    }
    Ok(())
}

fn containers_of_pod(node: &str, uid: &str) -> anyhow::Result<String> {
    let home = std::env::var("RUDDER_HOME").unwrap_or_else(|_| "/var/lib/rudder".into());
    let socket = format!("{home}/nodes/{node}/containerd/containerd.sock");
    let filter = format!("labels.\"io.kubernetes.pod.uid\"=={uid}");
    let out = Command::new("ctr").args(["-a", &socket, "-n", "k8s.io", "containers", "ls", "-q", &filter]).output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn node_of(pod: &Pod) -> String {
    pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default()
}

#[tokio::test]
async fn pods_of_a_lost_node_are_replaced_elsewhere_and_cleaned_up_when_it_returns() -> anyhow::Result<()> {
    let (cluster, ns) = setup("nodefailure").await?;
    // Short tolerations so the test does not wait out DefaultTolerationSeconds' 300 s.
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "survivor" },
        "spec": {
            "replicas": 3,
            "selector": { "matchLabels": { "app": "survivor" } },
            "template": {
                "metadata": { "labels": { "app": "survivor" } },
                "spec": {
                    "containers": [{ "name": "nginx", "image": "nginx" }],
                    "tolerations": [
                        { "key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5 },
                        { "key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5 }
                    ]
                }
            }
        }
    }))?;
    ns.api::<Deployment>().create(&PostParams::default(), &deployment).await?;
    let before = wait_running_pods(&ns, "app=survivor", 3).await?;

    let victim = node_of(&before[0]);
    let index = victim.rsplit('-').next().unwrap_or_default().to_owned();
    let lost: Vec<(String, String)> = before
        .iter()
        .filter(|p| node_of(p) == victim)
        .map(|p| (p.metadata.name.clone().unwrap_or_default(), p.metadata.uid.clone().unwrap_or_default()))
        .collect();

    launcher(&["stop-node", &index])?;
    let outcome = async {
        // Replacements run elsewhere and the deployment is whole again, without anyone's help.
        let pods = wait::until("replacements on other nodes", FAILOVER_TIMEOUT, || async {
            let pods = live_pods(&ns, "app=survivor").await?;
            let elsewhere = pods.iter().filter(|p| node_of(p) != victim && crate::common::is_running_and_ready(p)).count();
            Ok(if elsewhere == 3 { Ok(pods) } else { Err(crate::common::describe(&pods)) })
        })
        .await?;
        assert!(pods.iter().all(|p| lost.iter().all(|(name, _)| p.metadata.name.as_ref() != Some(name))));
        wait_deployment_ready(&ns, "survivor", 3).await?;

        let node = Api::<Node>::all(cluster.client.clone()).get(&victim).await?;
        let ready = node.status.and_then(|s| s.conditions).unwrap_or_default().into_iter().find(|c| c.type_ == "Ready");
        assert_eq!(ready.map(|c| c.status).as_deref(), Some("Unknown"), "the silent node is Ready=Unknown");
        let taints = node.spec.and_then(|s| s.taints).unwrap_or_default();
        assert!(taints.iter().any(|t| t.key == "node.kubernetes.io/unreachable" && t.effect == "NoExecute"), "{taints:?}");
        anyhow::Ok(())
    }
    .await;
    // Bring the node back whatever happened, so later tests have their cluster.
    launcher(&["start-node", &index])?;
    outcome?;

    // Back again: the evicted pods are finalized and their containers are gone from the runtime.
    let pods = ns.api::<Pod>();
    wait::until("the lost pods to be cleaned up", FAILOVER_TIMEOUT, || async {
        let mut left = Vec::new();
        for (name, uid) in &lost {
            if pods.get_opt(name).await?.is_some() {
                left.push(format!("{name} still in the API"));
            }
            let containers = containers_of_pod(&victim, uid)?;
            if !containers.is_empty() {
                left.push(format!("{name} has containers {containers}"));
            }
        }
        Ok(if left.is_empty() { Ok(()) } else { Err(left.join("; ")) })
    })
    .await?;
    let nodes = Api::<Node>::all(cluster.client.clone());
    wait::until("the node to be Ready again", Duration::from_secs(60), || async {
        let node = nodes.get(&victim).await?;
        let taints: BTreeSet<String> = node.spec.and_then(|s| s.taints).unwrap_or_default().into_iter().map(|t| t.key).collect();
        Ok(if taints.is_empty() { Ok(()) } else { Err(format!("taints {taints:?}")) })
    })
    .await
}

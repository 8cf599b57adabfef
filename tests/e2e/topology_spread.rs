//! PodTopologySpread against the real apiserver: pods created together with a DoNotSchedule constraint
//! on `kubernetes.io/hostname` end up evenly spread, two per node.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{ListParams, PostParams};

use crate::common::{describe, setup, wait_running_pods};

const PODS_PER_NODE: usize = 2;

fn spread_pod(name: &str) -> anyhow::Result<Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": { "name": name, "labels": { "app": "spread" } },
        "spec": {
            "containers": [{
                "name": "nginx",
                "image": "nginx",
                "resources": { "requests": { "cpu": "10m", "memory": "16Mi" } }
            }],
            "topologySpreadConstraints": [{
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": { "matchLabels": { "app": "spread" } }
            }]
        }
    }))?)
}

#[tokio::test]
async fn do_not_schedule_constraint_spreads_pods_evenly_over_nodes() -> anyhow::Result<()> {
    let (cluster, ns) = setup("spread").await?;
    let nodes = kube::Api::<Node>::all(cluster.client.clone()).list(&ListParams::default()).await?.items;
    let hostnames = nodes.iter().filter(|n| n.metadata.labels.as_ref().is_some_and(|l| l.contains_key("kubernetes.io/hostname")));
    let node_count = hostnames.count();
    assert!(node_count > 0, "the cluster has nodes labelled kubernetes.io/hostname");
    let total = node_count * PODS_PER_NODE;

    // Created at once, so the scheduler places them as one batch against its assumed state.
    let api = ns.api::<Pod>();
    let creations = (0..total).map(|i| {
        let api = api.clone();
        async move { api.create(&PostParams::default(), &spread_pod(&format!("spread-{i}"))?).await.map_err(anyhow::Error::from) }
    });
    for created in futures::future::join_all(creations).await {
        created?;
    }

    let pods = wait_running_pods(&ns, "app=spread", total).await?;
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for p in &pods {
        let node = p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
        *per_node.entry(node).or_default() += 1;
    }
    assert_eq!(per_node.len(), node_count, "every node got pods: {per_node:?}; {}", describe(&pods));
    assert!(per_node.values().all(|n| *n == PODS_PER_NODE), "{PODS_PER_NODE} pods per node: {per_node:?}");
    Ok(())
}

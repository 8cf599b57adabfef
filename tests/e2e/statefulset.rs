//! A StatefulSet runs members with stable names and hostnames, created in ordinal order and removed
//! from the highest ordinal down, and reports its revisions and counts in its status.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::PostParams;
use rudder_e2e::{TestNamespace, wait};

use crate::common::{ROLLOUT_TIMEOUT, live_pods, setup, wait_running_pods};

/// Waits until the set's status reports `replicas` replicas, all ready, available, current and
/// updated, for its current generation.
async fn wait_set_ready(ns: &TestNamespace, name: &str, replicas: i32) -> anyhow::Result<StatefulSet> {
    let api = ns.api::<StatefulSet>();
    wait::until(&format!("statefulset {name} to have {replicas} ready replicas"), ROLLOUT_TIMEOUT, || {
        let api = api.clone();
        async move {
            let set = api.get(name).await?;
            let s = set.status.clone().unwrap_or_default();
            let seen = (
                s.replicas,
                s.ready_replicas.unwrap_or(0),
                s.available_replicas.unwrap_or(0),
                s.current_replicas.unwrap_or(0),
                s.updated_replicas.unwrap_or(0),
            );
            let current = s.observed_generation == set.metadata.generation;
            Ok(if seen == (replicas, replicas, replicas, replicas, replicas) && current {
                Ok(set)
            } else {
                Err(format!("replicas/ready/available/current/updated = {seen:?}, observed generation current: {current}"))
            })
        }
    })
    .await
}

fn names(pods: &[Pod]) -> Vec<String> {
    let mut names: Vec<String> = pods.iter().filter_map(|p| p.metadata.name.clone()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn statefulset_orders_members_and_scales_down_from_the_top() -> anyhow::Result<()> {
    let (_cluster, ns) = setup("sts").await?;
    let service: Service = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "nginx" },
        "spec": { "clusterIP": "None", "selector": { "app": "web-sts" }, "ports": [{ "port": 80, "name": "web" }] }
    }))?;
    ns.api::<Service>().create(&PostParams::default(), &service).await?;
    let set: StatefulSet = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "web" },
        "spec": {
            "serviceName": "nginx",
            "replicas": 3,
            "selector": { "matchLabels": { "app": "web-sts" } },
            "template": {
                "metadata": { "labels": { "app": "web-sts" } },
                "spec": { "containers": [{ "name": "nginx", "image": "nginx", "ports": [{ "containerPort": 80, "name": "web" }] }] }
            }
        }
    }))?;
    ns.api::<StatefulSet>().create(&PostParams::default(), &set).await?;

    let set = wait_set_ready(&ns, "web", 3).await?;
    let pods = wait_running_pods(&ns, "app=web-sts", 3).await?;
    assert_eq!(names(&pods), ["web-0", "web-1", "web-2"]);
    let status = set.status.clone().unwrap_or_default();
    let update_revision = status.update_revision.clone().unwrap_or_default();
    assert!(update_revision.starts_with("web-"), "revision named after the set: {update_revision}");
    assert_eq!(status.current_revision.as_deref(), Some(update_revision.as_str()), "nothing to roll");
    assert_eq!(status.collision_count, Some(0));

    // Created in ordinal order: each member only after the one below it.
    let created = |i: usize| {
        let name = format!("web-{i}");
        pods.iter().find(|p| p.metadata.name.as_deref() == Some(name.as_str())).and_then(|p| p.metadata.creation_timestamp.clone()).map(|t| t.0)
    };
    for i in 1..3 {
        assert!(created(i - 1).is_some() && created(i - 1) <= created(i), "web-{} created after web-{i}: {:?} > {:?}", i - 1, created(i - 1), created(i));
    }
    for pod in &pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get("statefulset.kubernetes.io/pod-name"), Some(&name));
        assert_eq!(labels.get("apps.kubernetes.io/pod-index").map(String::as_str), name.strip_prefix("web-"));
        assert_eq!(labels.get("controller-revision-hash"), Some(&update_revision), "{name}");
        let spec = pod.spec.clone().unwrap_or_default();
        assert_eq!((spec.hostname.as_deref(), spec.subdomain.as_deref()), (Some(name.as_str()), Some("nginx")));
        let owner = pod.metadata.owner_references.clone().unwrap_or_default();
        assert_eq!(owner.len(), 1, "{name}: {owner:?}");
        assert_eq!((owner[0].kind.as_str(), owner[0].name.as_str(), owner[0].controller), ("StatefulSet", "web", Some(true)));
    }
    let hostname = ns.kubectl(&["exec", "web-1", "--", "hostname"]).await?;
    assert_eq!(hostname.trim(), "web-1");

    // Scale down: web-2 goes first, then web-1; web-0 stays throughout.
    ns.kubectl(&["scale", "statefulset", "web", "--replicas=1"]).await?;
    let web0_uid = pods.iter().find(|p| p.metadata.name.as_deref() == Some("web-0")).and_then(|p| p.metadata.uid.clone());
    // Every distinct set of live members seen on the way down.
    let seen_order = std::cell::RefCell::new(Vec::<Vec<String>>::new());
    wait::until("web-2 and then web-1 to go", ROLLOUT_TIMEOUT, || async {
        let live = names(&live_pods(&ns, "app=web-sts").await?);
        let mut order = seen_order.borrow_mut();
        if order.last() != Some(&live) {
            order.push(live.clone());
        }
        Ok(if live == ["web-0"] { Ok(()) } else { Err(format!("live pods {live:?}")) })
    })
    .await?;
    let seen_order = seen_order.into_inner();
    let has = |live: &[String], name: &str| live.iter().any(|n| n == name);
    assert!(!seen_order.iter().any(|live| has(live, "web-2") && !has(live, "web-1")), "web-1 went before web-2: {seen_order:?}");
    let set = wait_set_ready(&ns, "web", 1).await?;
    let pods = wait_running_pods(&ns, "app=web-sts", 1).await?;
    assert_eq!(pods[0].metadata.uid, web0_uid, "web-0 was kept");
    let status = set.status.unwrap_or_default();
    assert_eq!((status.replicas, status.ready_replicas, status.current_replicas), (1, Some(1), Some(1)));
    let rows = rudder_e2e::kubectl::table(&ns.kubectl(&["get", "statefulset", "web"]).await?);
    assert_eq!(rows[1][..2], ["web", "1/1"], "{rows:?}");
    Ok(())
}

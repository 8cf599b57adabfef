//! The seed walkthrough (FLOW.md), step by step, with stock kubectl, checking the output users see.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use rudder_e2e::kubectl::table;
use rudder_e2e::{http, wait};

use crate::common::{ROLLOUT_TIMEOUT, live_pods, setup, wait_deployment_ready, wait_running_pods};

const APP: &str = "app=k8s-nginx";

fn is_pod_suffix(s: &str) -> bool {
    s.len() == 5 && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

#[tokio::test]
async fn walkthrough_create_get_exec_delete() -> anyhow::Result<()> {
    let (_cluster, ns) = setup("walkthrough").await?;

    // kubectl create deployment k8s-nginx --image=nginx -r 3
    let created = ns.kubectl(&["create", "deployment", "k8s-nginx", "--image=nginx", "-r", "3"]).await?;
    assert!(created.contains("deployment.apps/k8s-nginx created"), "{created}");
    wait_deployment_ready(&ns, "k8s-nginx", 3).await?;

    // kubectl get deployment  →  k8s-nginx  3/3  3  3  AGE
    let rows = table(&ns.kubectl(&["get", "deployment"]).await?);
    assert_eq!(rows[0], ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    assert_eq!(rows[1][..4], ["k8s-nginx", "3/3", "3", "3"], "{rows:?}");

    // kubectl get replicaset  →  k8s-nginx-<pod-template-hash>  3  3  3  AGE
    let rows = table(&ns.kubectl(&["get", "replicaset"]).await?);
    assert_eq!(rows[0], ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]);
    assert_eq!(rows.len(), 2, "exactly one ReplicaSet: {rows:?}");
    let rs_name = rows[1][0].clone();
    let hash = rs_name.strip_prefix("k8s-nginx-").unwrap_or_default().to_owned();
    assert!(!hash.is_empty() && hash.chars().all(|c| c.is_ascii_alphanumeric()), "RS name {rs_name}");
    assert_eq!(rows[1][1..4], ["3", "3", "3"], "{rows:?}");
    let rs = ns.api::<ReplicaSet>().get(&rs_name).await?;
    let labels = rs.metadata.labels.unwrap_or_default();
    assert_eq!(labels.get("pod-template-hash"), Some(&hash), "pod-template-hash label matches the name");

    // kubectl get pod -o wide  →  k8s-nginx-<hash>-<5 chars>  1/1  Running  0  AGE  IP  NODE  <none>  <none>
    let rows = table(&ns.kubectl(&["get", "pod", "-o", "wide"]).await?);
    assert_eq!(rows[0], ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE", "READINESS", "GATES"]);
    assert_eq!(rows.len(), 4, "three pods: {rows:?}");
    let mut nodes = BTreeSet::new();
    for row in &rows[1..] {
        let suffix = row[0].strip_prefix(&format!("{rs_name}-")).unwrap_or_default();
        assert!(is_pod_suffix(suffix), "pod name {} is <rs>-<5 chars>", row[0]);
        assert_eq!(row[1..4], ["1/1", "Running", "0"], "{row:?}");
        assert!(row[5].starts_with("10.244."), "pod IP from the node's pod CIDR: {row:?}");
        nodes.insert(row[6].clone());
    }
    assert!(nodes.len() >= 2, "replicas spread over at least 2 nodes: {nodes:?}");

    // Each pod serves the nginx page on its IP, from the host.
    let pods = live_pods(&ns, APP).await?;
    for pod in &pods {
        let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap_or_default();
        let page = http::get(&ip, 80, "/").await?;
        assert!(page.starts_with("HTTP/1.1 200"), "GET http://{ip}/: {page}");
        assert!(page.contains("Welcome to nginx!"), "GET http://{ip}/: {page}");
    }

    // kubectl exec -it <pod> -- bash  →  a shell inside the container
    let pod_name = rows[1][0].clone();
    let out = ns.kubectl(&["exec", &pod_name, "--", "bash", "-c", "echo inside $(hostname); cat /etc/hostname"]).await?;
    assert!(out.contains(&format!("inside {pod_name}")), "exec output: {out}");
    let tty = _cluster.kubectl_with_tty(&ns.name, &["exec", "-it", &pod_name, "--", "bash"], "tty; echo marker-$((6*7)); exit\n").await?;
    assert!(tty.stdout.contains("/dev/pts/"), "an interactive shell has a terminal: {tty:?}");
    assert!(tty.stdout.contains("marker-42"), "the shell ran our input: {tty:?}");

    // kubectl delete pod <pod>  →  a replacement appears, still 3 replicas
    ns.kubectl(&["delete", "pod", &pod_name]).await?;
    let pods = wait_running_pods(&ns, APP, 3).await?;
    assert!(pods.iter().all(|p| p.metadata.name.as_deref() != Some(pod_name.as_str())), "the deleted pod is gone");
    let rows = table(&ns.kubectl(&["get", "deployment"]).await?);
    assert_eq!(rows[1][..4], ["k8s-nginx", "3/3", "3", "3"], "{rows:?}");

    // kubectl delete deployment k8s-nginx  →  the ReplicaSet and all its pods go too
    ns.kubectl(&["delete", "deployment", "k8s-nginx"]).await?;
    let rs_api = ns.api::<ReplicaSet>();
    let pod_api = ns.api::<Pod>();
    wait::until("the ReplicaSet and pods to be deleted", ROLLOUT_TIMEOUT, || {
        let (rs_api, pod_api) = (rs_api.clone(), pod_api.clone());
        async move {
            let rs = rs_api.list(&ListParams::default()).await?.items.len();
            let pods = pod_api.list(&ListParams::default()).await?.items.len();
            Ok(if rs == 0 && pods == 0 { Ok(()) } else { Err(format!("{rs} replicasets, {pods} pods")) })
        }
    })
    .await
}

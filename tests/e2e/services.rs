//! Services: EndpointSlices and Endpoints follow the pods, and the service proxy's nftables rules carry
//! traffic for the ClusterIP to every ready endpoint.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{ListParams, PostParams};
use rudder_e2e::{TestNamespace, http, wait};

use crate::common::{live_pods, setup, wait_deployment_ready, wait_running_pods};

/// Ready endpoint addresses over all of the service's slices.
async fn ready_endpoints(ns: &TestNamespace, service: &str) -> anyhow::Result<Vec<String>> {
    let lp = ListParams::default().labels(&format!("kubernetes.io/service-name={service}"));
    let slices = ns.api::<EndpointSlice>().list(&lp).await?.items;
    let mut ips: Vec<String> = slices
        .into_iter()
        .flat_map(|s| s.endpoints)
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
        .flat_map(|e| e.addresses)
        .collect();
    ips.sort();
    Ok(ips)
}

/// Runs `count` HTTP GETs of `/?<tag>-<i>` against ip:80 from inside `client`, with bash's /dev/tcp.
async fn get_from_pod(ns: &TestNamespace, client: &str, ip: &str, tag: &str, count: usize) -> anyhow::Result<String> {
    let script = format!(
        "for i in $(seq 1 {count}); do exec 3<>/dev/tcp/{ip}/80 && printf 'GET /?{tag}-$i HTTP/1.0\\r\\n\\r\\n' >&3 && head -1 <&3; exec 3<&-; done"
    );
    ns.kubectl(&["exec", client, "--", "bash", "-c", &script]).await
}

/// How many requests tagged `tag` each pod's access log shows.
async fn hits(ns: &TestNamespace, pods: &[Pod], tag: &str) -> anyhow::Result<BTreeMap<String, usize>> {
    let mut out = BTreeMap::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let logs = ns.kubectl(&["logs", &name]).await?;
        out.insert(name, logs.lines().filter(|l| l.contains(&format!("GET /?{tag}-"))).count());
    }
    Ok(out)
}

fn proxy_rules() -> String {
    Command::new("nft")
        .args(["list", "table", "ip", "rudder-proxy"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn cluster_ip_reaches_every_ready_endpoint_and_follows_scaling() -> anyhow::Result<()> {
    let (_cluster, ns) = setup("services").await?;
    ns.kubectl(&["create", "deployment", "k8s-nginx", "--image=nginx", "-r", "3"]).await?;
    let out = ns.kubectl(&["expose", "deployment", "k8s-nginx", "--port=80"]).await?;
    assert!(out.contains("service/k8s-nginx exposed"), "{out}");
    let client: Pod = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "client" },
        "spec": { "containers": [{ "name": "main", "image": "nginx" }] }
    }))?;
    ns.api::<Pod>().create(&PostParams::default(), &client).await?;
    wait_deployment_ready(&ns, "k8s-nginx", 3).await?;
    let pods = wait_running_pods(&ns, "app=k8s-nginx", 3).await?;
    wait_running_pods(&ns, "", 4).await?;

    let mut pod_ips: Vec<String> = pods.iter().filter_map(|p| p.status.as_ref()?.pod_ip.clone()).collect();
    pod_ips.sort();
    wait::until("an EndpointSlice with the 3 pod IPs", Duration::from_secs(30), || async {
        let ips = ready_endpoints(&ns, "k8s-nginx").await?;
        Ok(if ips == pod_ips { Ok(()) } else { Err(format!("{ips:?}")) })
    })
    .await?;
    let legacy = ns.api::<Endpoints>().get("k8s-nginx").await?;
    let addresses = legacy.subsets.unwrap_or_default().into_iter().flat_map(|s| s.addresses.unwrap_or_default()).count();
    assert_eq!(addresses, 3, "the legacy Endpoints object lists the 3 pods");

    let cluster_ip = ns.api::<Service>().get("k8s-nginx").await?.spec.and_then(|s| s.cluster_ip).unwrap_or_default();
    let answers = get_from_pod(&ns, "client", &cluster_ip, "spread", 30).await?;
    assert_eq!(answers.lines().filter(|l| l.starts_with("HTTP/1.1 200")).count(), 30, "{answers}");
    let spread = hits(&ns, &pods, "spread").await?;
    assert!(spread.values().all(|n| *n > 0), "every ready endpoint answers: {spread:?}");
    assert_eq!(spread.values().sum::<usize>(), 30);

    // Scale to 1: the slice and the rules follow, so every request reaches the survivor.
    ns.kubectl(&["scale", "deployment", "k8s-nginx", "--replicas=1"]).await?;
    let survivor = wait_running_pods(&ns, "app=k8s-nginx", 1).await?;
    let survivor_ip = survivor[0].status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap_or_default();
    wait::until("the slice to hold only the survivor", Duration::from_secs(30), || async {
        let ips = ready_endpoints(&ns, "k8s-nginx").await?;
        Ok(if ips == [survivor_ip.clone()] { Ok(()) } else { Err(format!("{ips:?}")) })
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let answers = get_from_pod(&ns, "client", &cluster_ip, "after", 10).await?;
    assert_eq!(answers.lines().filter(|l| l.starts_with("HTTP/1.1 200")).count(), 10, "{answers}");
    let after = hits(&ns, &live_pods(&ns, "app=k8s-nginx").await?, "after").await?;
    assert_eq!(after.values().sum::<usize>(), 10, "all to the survivor: {after:?}");

    // Deleting the service takes its rules away.
    assert!(proxy_rules().contains(&cluster_ip), "the ClusterIP is in the proxy's table");
    ns.kubectl(&["delete", "service", "k8s-nginx"]).await?;
    wait::until("the ClusterIP to leave the proxy's table", Duration::from_secs(10), || async {
        Ok(if proxy_rules().contains(&cluster_ip) { Err("still there".to_owned()) } else { Ok(()) })
    })
    .await
}

#[tokio::test]
async fn node_port_answers_on_every_node_address() -> anyhow::Result<()> {
    let (cluster, ns) = setup("nodeport").await?;
    ns.kubectl(&["create", "deployment", "web", "--image=nginx"]).await?;
    ns.kubectl(&["expose", "deployment", "web", "--port=80", "--type=NodePort"]).await?;
    wait_deployment_ready(&ns, "web", 1).await?;
    let node_port = ns
        .api::<Service>()
        .get("web")
        .await?
        .spec
        .and_then(|s| s.ports)
        .and_then(|p| p.first().and_then(|p| p.node_port))
        .ok_or_else(|| anyhow::anyhow!("no nodePort allocated"))?;
    let nodes = Api::<Node>::all(cluster.client.clone()).list(&ListParams::default()).await?;
    let addresses: Vec<String> = nodes
        .items
        .iter()
        .filter_map(|n| n.status.as_ref()?.addresses.as_ref()?.iter().find(|a| a.type_ == "InternalIP").map(|a| a.address.clone()))
        .collect();
    assert!(addresses.len() >= 2, "a NodePort test needs several nodes: {addresses:?}");
    let port = u16::try_from(node_port)?;
    for address in &addresses {
        let page = wait::until(&format!("the NodePort on {address}:{port}"), Duration::from_secs(10), || async {
            let page = http::get(address, port, "/").await?;
            Ok(if page.contains("Welcome to nginx!") { Ok(page) } else { Err(page) })
        })
        .await?;
        assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    }
    Ok(())
}

#[tokio::test]
async fn hand_written_endpoints_of_a_selectorless_service_are_mirrored_and_served() -> anyhow::Result<()> {
    let (_cluster, ns) = setup("mirror").await?;
    for name in ["backend", "client"] {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": { "name": name },
            "spec": { "containers": [{ "name": "main", "image": "nginx" }] }
        }))?;
        ns.api::<Pod>().create(&PostParams::default(), &pod).await?;
    }
    let pods = wait_running_pods(&ns, "", 2).await?;
    let backend_ip = pods
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some("backend"))
        .and_then(|p| p.status.as_ref()?.pod_ip.clone())
        .ok_or_else(|| anyhow::anyhow!("the backend pod has no IP"))?;

    let service: Service = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "external" },
        "spec": { "ports": [{ "name": "http", "port": 80, "protocol": "TCP" }] }
    }))?;
    ns.api::<Service>().create(&PostParams::default(), &service).await?;
    let endpoints = |ip: &str| -> anyhow::Result<Endpoints> {
        Ok(serde_json::from_value(serde_json::json!({
            "metadata": { "name": "external", "labels": { "team": "storage" } },
            "subsets": [{ "addresses": [{ "ip": ip }], "ports": [{ "name": "http", "port": 80 }] }]
        }))?)
    };
    // First an address nobody answers on, then the backend: the mirror must follow the update.
    ns.api::<Endpoints>().create(&PostParams::default(), &endpoints("10.1.2.3")?).await?;
    wait::until("a mirrored slice with 10.1.2.3", Duration::from_secs(30), || async {
        let ips = ready_endpoints(&ns, "external").await?;
        Ok(if ips == ["10.1.2.3"] { Ok(()) } else { Err(format!("{ips:?}")) })
    })
    .await?;
    let slices = ns.api::<EndpointSlice>().list(&ListParams::default().labels("kubernetes.io/service-name=external")).await?.items;
    let labels = slices[0].metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("endpointslice.kubernetes.io/managed-by").map(String::as_str), Some("endpointslicemirroring-controller.k8s.io"));
    assert_eq!(labels.get("team").map(String::as_str), Some("storage"), "the Endpoints' labels are copied");

    let mut current = ns.api::<Endpoints>().get("external").await?;
    current.subsets = endpoints(&backend_ip)?.subsets;
    ns.api::<Endpoints>().replace("external", &PostParams::default(), &current).await?;
    wait::until("the mirrored slice to follow the update", Duration::from_secs(30), || async {
        let ips = ready_endpoints(&ns, "external").await?;
        Ok(if ips == [backend_ip.clone()] { Ok(()) } else { Err(format!("{ips:?}")) })
    })
    .await?;
    let cluster_ip = ns.api::<Service>().get("external").await?.spec.and_then(|s| s.cluster_ip).unwrap_or_default();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let answers = get_from_pod(&ns, "client", &cluster_ip, "mirror", 5).await?;
    assert_eq!(answers.lines().filter(|l| l.starts_with("HTTP/1.1 200")).count(), 5, "the ClusterIP reaches the backend: {answers}");

    ns.kubectl(&["delete", "endpoints", "external"]).await?;
    wait::until("the mirrored slices to go with the Endpoints", Duration::from_secs(30), || async {
        let left = ns.api::<EndpointSlice>().list(&ListParams::default().labels("kubernetes.io/service-name=external")).await?.items.len();
        Ok(if left == 0 { Ok(()) } else { Err(format!("{left} slices left")) })
    })
    .await
}

//! Cluster DNS: the node agent writes ClusterFirst resolv.conf (cluster DNS, search path, ndots:5), stock
//! CoreDNS answers Service names through the kube-dns Service, and the `kubernetes` Service reaches the
//! apiserver from inside a pod.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::PostParams;
use rudder_e2e::{TestNamespace, wait};

use crate::common::{setup, wait_deployment_ready, wait_running_pods};

const CLUSTER_DNS: &str = "10.96.0.10";
const SERVICE_ACCOUNT_CA: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";

async fn exec(ns: &TestNamespace, pod: &str, script: &str) -> anyhow::Result<String> {
    ns.kubectl(&["exec", pod, "--", "bash", "-c", script]).await
}

async fn cluster_ip(ns: &TestNamespace, service: &str) -> anyhow::Result<String> {
    Ok(ns.api::<Service>().get(service).await?.spec.and_then(|s| s.cluster_ip).unwrap_or_default())
}

#[tokio::test]
async fn pods_reach_services_by_name() -> anyhow::Result<()> {
    let (cluster, ns) = setup("dns").await?;
    ns.kubectl(&["create", "deployment", "k8s-nginx", "--image=nginx", "-r", "2"]).await?;
    ns.kubectl(&["expose", "deployment", "k8s-nginx", "--port=80"]).await?;
    let client: Pod = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "client", "labels": { "role": "client" } },
        "spec": { "containers": [{ "name": "main", "image": "nginx" }] }
    }))?;
    ns.api::<Pod>().create(&PostParams::default(), &client).await?;
    wait_deployment_ready(&ns, "k8s-nginx", 2).await?;
    wait_running_pods(&ns, "role=client", 1).await?;

    let resolv = exec(&ns, "client", "cat /etc/resolv.conf").await?;
    assert!(resolv.lines().any(|l| l == format!("nameserver {CLUSTER_DNS}")), "{resolv}");
    let search = format!("search {0}.svc.cluster.local svc.cluster.local cluster.local", ns.name);
    assert!(resolv.lines().any(|l| l.starts_with(&search)), "expected `{search}` in:\n{resolv}");
    assert!(resolv.lines().any(|l| l.starts_with("options") && l.contains("ndots:5")), "{resolv}");

    // The name resolves to the ClusterIP, by full name and by short name through the search path.
    let ip = cluster_ip(&ns, "k8s-nginx").await?;
    let fqdn = format!("k8s-nginx.{}.svc.cluster.local", ns.name);
    for name in [fqdn.as_str(), "k8s-nginx"] {
        let out = wait::until(&format!("{name} to resolve"), Duration::from_secs(30), || async {
            let out = exec(&ns, "client", &format!("getent hosts {name} || true")).await?;
            Ok(if out.split_whitespace().next() == Some(ip.as_str()) { Ok(out) } else { Err(out) })
        })
        .await?;
        assert!(out.contains(&fqdn), "the answer names the service's full name: {out}");
    }

    // The seed's request, verbatim.
    let page = exec(&ns, "client", "wget -qO- k8s-nginx").await?;
    assert!(page.contains("<title>Welcome to nginx!</title>"), "{page}");

    // A name that does not exist fails to resolve rather than hanging or answering.
    let missing = exec(&ns, "client", "getent hosts no-such-service; echo exit=$?").await?;
    assert!(missing.trim_end().ends_with("exit=2"), "{missing}");

    // The `kubernetes` Service: its endpoint is the apiserver's advertised address, and a pod reaches the
    // apiserver through it by name, verifying the serving certificate with its service account's CA.
    let slice = Api::<EndpointSlice>::namespaced(cluster.client.clone(), "default").get("kubernetes").await?;
    let addresses: Vec<String> = slice.endpoints.into_iter().flat_map(|e| e.addresses).collect();
    assert_eq!(addresses, ["10.243.0.1"], "the apiserver advertises the host address");
    let version = exec(&ns, "client", &format!("wget -qO- --ca-certificate={SERVICE_ACCOUNT_CA} https://kubernetes.default.svc/version")).await?;
    assert!(version.contains("\"gitVersion\": \"v1.35"), "{version}");
    Ok(())
}

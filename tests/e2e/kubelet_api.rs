//! Container logs through the apiserver, and the node agent's kubelet API refusing callers it should.

use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::PostParams;
use rudder_e2e::{http, wait};

use crate::common::{is_running_and_ready, setup};

fn pki(file: &str) -> String {
    let home = std::env::var("RUDDER_HOME").unwrap_or_else(|_| "/var/lib/rudder".into());
    format!("{home}/pki/{file}")
}

/// curl against the kubelet API; returns the HTTP status (000 when TLS refused us) and body.
fn curl(url: &str, client_cert: Option<&str>) -> anyhow::Result<(String, String)> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "10", "--cacert", &pki("ca.crt"), "-w", "\n%{http_code}"]);
    if let Some(name) = client_cert {
        cmd.args(["--cert", &pki(&format!("{name}.crt")), "--key", &pki(&format!("{name}.key"))]);
    }
    let out = cmd.arg(url).output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
    Ok((code.trim().to_owned(), body.to_owned()))
}

#[tokio::test]
async fn logs_flow_through_the_apiserver_and_the_kubelet_api_checks_callers() -> anyhow::Result<()> {
    let (cluster, ns) = setup("kubeletapi").await?;
    let pods = ns.api::<Pod>();
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "web" },
        "spec": { "containers": [{ "name": "nginx", "image": "nginx" }] }
    }))?;
    pods.create(&PostParams::default(), &pod).await?;
    let pod = wait::until("the pod to run", Duration::from_secs(180), || async {
        let p = pods.get("web").await?;
        Ok(if is_running_and_ready(&p) { Ok(p) } else { Err(format!("{:?}", p.status.and_then(|s| s.phase))) })
    })
    .await?;
    let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap_or_default();
    http::get(&ip, 80, "/e2e-marker").await?;

    // kubectl logs: apiserver → node agent's containerLogs → the CRI log file.
    let logs = wait::until("the access log line", Duration::from_secs(30), || async {
        let out = ns.kubectl(&["logs", "web"]).await?;
        Ok(if out.contains("GET /e2e-marker") { Ok(out) } else { Err(out) })
    })
    .await?;
    assert!(logs.lines().any(|l| l.contains("GET /e2e-marker HTTP/1.0")), "{logs}");

    // The kubelet API, called directly on the pod's node.
    let node_name = pod.spec.and_then(|s| s.node_name).unwrap_or_default();
    let node = Api::<Node>::all(cluster.client.clone()).get(&node_name).await?;
    let status = node.status.unwrap_or_default();
    let address = status.addresses.unwrap_or_default().into_iter().find(|a| a.type_ == "InternalIP").map(|a| a.address).unwrap_or_default();
    let port = status.daemon_endpoints.and_then(|d| d.kubelet_endpoint).map(|e| e.port).unwrap_or(10250);
    let url = format!("https://{address}:{port}/containerLogs/{}/web/nginx", ns.name);

    let (code, _) = curl(&url, None)?;
    assert!(code == "401" || code == "000", "no client certificate: refused, got HTTP {code}");
    let (code, body) = curl(&url, Some("scheduler"))?;
    assert_eq!(code, "403", "the scheduler may not read logs through the kubelet API: {body}");
    let (code, body) = curl(&url, Some("admin"))?;
    assert_eq!(code, "200", "{body}");
    assert!(body.contains("GET /e2e-marker"), "{body}");
    Ok(())
}

#[tokio::test]
async fn logs_show_output_left_without_a_final_newline() -> anyhow::Result<()> {
    let (_cluster, ns) = setup("logtail").await?;
    // The runtime writes the unterminated last line as a partial entry and nothing ever completes it.
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "printer" },
        "spec": { "restartPolicy": "Never", "containers": [{
            "name": "main", "image": "busybox", "command": ["sh", "-c", "echo first; printf 'second without newline'"]
        }]}
    }))?;
    ns.api::<Pod>().create(&PostParams::default(), &pod).await?;
    let pods = ns.api::<Pod>();
    wait::until("the pod to succeed", Duration::from_secs(120), || async {
        let phase = pods.get("printer").await?.status.and_then(|s| s.phase).unwrap_or_default();
        Ok(if phase == "Succeeded" { Ok(()) } else { Err(phase) })
    })
    .await?;
    let logs = ns.kubectl(&["logs", "printer"]).await?;
    assert_eq!(logs, "first\nsecond without newline", "kubectl logs shows everything the container wrote");
    Ok(())
}

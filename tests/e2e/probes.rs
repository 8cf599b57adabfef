//! Container probes: readiness gates a pod's Ready condition and its place among a Service's ready
//! endpoints (so an unready pod gets no traffic); a failing liveness probe restarts the container.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ListParams, PostParams};
use rudder_e2e::{TestNamespace, wait};

use crate::common::{ROLLOUT_TIMEOUT, is_running_and_ready, live_pods, setup};

fn ready_file_pod(name: &str) -> anyhow::Result<Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": { "name": name, "labels": { "app": "gated" } },
        "spec": { "containers": [{
            "name": "web", "image": "nginx",
            "readinessProbe": { "exec": { "command": ["cat", "/tmp/ready"] }, "periodSeconds": 1 }
        }] }
    }))?)
}

async fn endpoint_states(ns: &TestNamespace) -> anyhow::Result<Vec<(String, bool)>> {
    let slices = ns.api::<EndpointSlice>().list(&ListParams::default().labels("kubernetes.io/service-name=gated")).await?;
    let mut out: Vec<(String, bool)> = slices
        .items
        .into_iter()
        .flat_map(|s| s.endpoints)
        .filter_map(|e| Some((e.target_ref?.name?, e.conditions.and_then(|c| c.ready).unwrap_or(false))))
        .collect();
    out.sort();
    Ok(out)
}

#[tokio::test]
async fn readiness_gates_endpoints_and_traffic() -> anyhow::Result<()> {
    let (_cluster, ns) = setup("readiness").await?;
    for name in ["one", "two"] {
        ns.api::<Pod>().create(&PostParams::default(), &ready_file_pod(name)?).await?;
    }
    ns.kubectl(&["expose", "pod", "one", "--name=gated", "--port=80", "--selector=app=gated"]).await?;
    wait::until("both pods running, neither ready", ROLLOUT_TIMEOUT, || async {
        let pods = live_pods(&ns, "app=gated").await?;
        let running = pods.iter().filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")).count();
        let ready = pods.iter().filter(|p| is_running_and_ready(p)).count();
        Ok(if running == 2 && ready == 0 { Ok(()) } else { Err(format!("{running} running, {ready} ready")) })
    })
    .await?;
    // Upstream's started/ready split: started, but not ready until the probe succeeds.
    let one = ns.api::<Pod>().get("one").await?;
    let status = one.status.and_then(|s| s.container_statuses).unwrap_or_default();
    assert_eq!(status.first().map(|c| (c.started, c.ready)), Some((Some(true), false)), "{status:?}");

    ns.kubectl(&["exec", "one", "--", "touch", "/tmp/ready"]).await?;
    wait::until("only pod one a ready endpoint", Duration::from_secs(20), || async {
        let states = endpoint_states(&ns).await?;
        let wanted = vec![("one".to_string(), true), ("two".to_string(), false)];
        Ok(if states == wanted { Ok(()) } else { Err(format!("{states:?}")) })
    })
    .await?;

    // Traffic to the ClusterIP reaches only the ready pod.
    let ip = ns.api::<Service>().get("gated").await?.spec.and_then(|s| s.cluster_ip).unwrap_or_default();
    let script = format!("for i in $(seq 1 12); do exec 3<>/dev/tcp/{ip}/80 && printf 'GET /?probe-$i HTTP/1.0\\r\\n\\r\\n' >&3 && head -1 <&3; exec 3<&-; done");
    let answers = ns.kubectl(&["exec", "two", "--", "bash", "-c", &script]).await?;
    assert_eq!(answers.lines().filter(|l| l.starts_with("HTTP/1.1 200")).count(), 12, "{answers}");
    let logs_two = ns.kubectl(&["logs", "two"]).await?;
    assert_eq!(logs_two.matches("GET /?probe-").count(), 0, "the unready pod got traffic:\n{logs_two}");
    let logs_one = ns.kubectl(&["logs", "one"]).await?;
    assert_eq!(logs_one.matches("GET /?probe-").count(), 12, "{logs_one}");

    // Unready again: the endpoint follows.
    ns.kubectl(&["exec", "one", "--", "rm", "/tmp/ready"]).await?;
    wait::until("pod one unready again", Duration::from_secs(20), || async {
        let states = endpoint_states(&ns).await?;
        Ok(if states.iter().all(|(_, ready)| !ready) && states.len() == 2 { Ok(()) } else { Err(format!("{states:?}")) })
    })
    .await
}

#[tokio::test]
async fn failing_liveness_probe_restarts_the_container() -> anyhow::Result<()> {
    let (_cluster, ns) = setup("liveness").await?;
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "sick" },
        "spec": { "terminationGracePeriodSeconds": 2, "containers": [{
            "name": "web", "image": "nginx",
            "livenessProbe": { "httpGet": { "path": "/no-such-page", "port": 80 }, "periodSeconds": 1, "failureThreshold": 2 }
        }] }
    }))?;
    ns.api::<Pod>().create(&PostParams::default(), &pod).await?;
    wait::until("a restart", ROLLOUT_TIMEOUT, || async {
        let pod = ns.api::<Pod>().get("sick").await?;
        let restarts = pod.status.and_then(|s| s.container_statuses).and_then(|c| c.first().map(|c| c.restart_count)).unwrap_or(0);
        Ok(if restarts >= 1 { Ok(()) } else { Err(format!("restartCount {restarts}")) })
    })
    .await?;
    let events = ns.api::<Event>().list(&ListParams::default().fields("involvedObject.name=sick")).await?;
    let messages: Vec<String> = events.items.iter().map(|e| format!("{}: {}", e.reason.clone().unwrap_or_default(), e.message.clone().unwrap_or_default())).collect();
    assert!(messages.iter().any(|m| m.starts_with("Unhealthy: Liveness probe failed: HTTP probe failed with statuscode: 404")), "{messages:#?}");
    assert!(messages.iter().any(|m| m == "Killing: Container web failed liveness probe, will be restarted"), "{messages:#?}");
    Ok(())
}

const AGNHOST: &str = "registry.k8s.io/e2e-test-images/agnhost:2.59";

/// agnhost's grpc-health-checking server answers grpc.health.v1.Health/Check with SERVING on port 5000.
fn grpc_pod(name: &str, probe_port: i32) -> anyhow::Result<Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": { "name": name, "labels": { "app": "grpc" } },
        "spec": { "terminationGracePeriodSeconds": 2, "containers": [{
            "name": "server", "image": AGNHOST, "args": ["grpc-health-checking"],
            "livenessProbe": { "grpc": { "port": probe_port }, "periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 2 },
            "readinessProbe": { "grpc": { "port": 5000 }, "periodSeconds": 1 }
        }] }
    }))?)
}

fn restarts(pod: &Pod) -> i32 {
    pod.status.as_ref().and_then(|s| s.container_statuses.as_ref()).and_then(|c| c.first().map(|c| c.restart_count)).unwrap_or(0)
}

#[tokio::test]
async fn grpc_probes_check_the_health_service() -> anyhow::Result<()> {
    let (_cluster, ns) = setup("grpcprobe").await?;
    ns.api::<Pod>().create(&PostParams::default(), &grpc_pod("healthy", 5000)?).await?;
    ns.api::<Pod>().create(&PostParams::default(), &grpc_pod("nothing-there", 2333)?).await?;

    // SERVING: ready through the gRPC readiness probe, and the liveness probe never kills it.
    wait::until("pod healthy ready", ROLLOUT_TIMEOUT, || async {
        let pod = ns.api::<Pod>().get("healthy").await?;
        Ok(if is_running_and_ready(&pod) { Ok(()) } else { Err(format!("{:?}", pod.status.and_then(|s| s.phase))) })
    })
    .await?;

    // Nothing listening on the probed port: restarted, with upstream's message.
    wait::until("a restart of pod nothing-there", ROLLOUT_TIMEOUT, || async {
        let pod = ns.api::<Pod>().get("nothing-there").await?;
        let n = restarts(&pod);
        Ok(if n >= 1 { Ok(()) } else { Err(format!("restartCount {n}")) })
    })
    .await?;
    let events = ns.api::<Event>().list(&ListParams::default().fields("involvedObject.name=nothing-there")).await?;
    let messages: Vec<String> = events.items.iter().map(|e| format!("{}: {}", e.reason.clone().unwrap_or_default(), e.message.clone().unwrap_or_default())).collect();
    assert!(
        messages.iter().any(|m| m.starts_with("Unhealthy: Liveness probe failed: timeout: failed to connect service") && m.contains(":2333\" within 1s")),
        "{messages:#?}"
    );

    // By now the healthy pod has been probed many times; it is still on its first instance.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let healthy = ns.api::<Pod>().get("healthy").await?;
    assert_eq!(restarts(&healthy), 0, "a SERVING gRPC liveness probe restarted the container");
    assert!(is_running_and_ready(&healthy));
    let events = ns.api::<Event>().list(&ListParams::default().fields("involvedObject.name=healthy")).await?;
    let unhealthy: Vec<_> = events.items.iter().filter(|e| e.reason.as_deref() == Some("Unhealthy")).filter_map(|e| e.message.clone()).collect();
    assert!(unhealthy.is_empty(), "{unhealthy:#?}");
    Ok(())
}

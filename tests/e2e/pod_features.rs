//! What the node agent does for a pod beyond running its containers, as upstream's kubelet does: the
//! managed /etc/hosts, memory-backed emptyDirs, termination messages, lifecycle hooks and
//! activeDeadlineSeconds.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams, PostParams};
use rudder_e2e::{TestNamespace, wait};

use crate::common::{ROLLOUT_TIMEOUT, setup, wait_running_pods};

async fn create(ns: &TestNamespace, pod: serde_json::Value) -> anyhow::Result<()> {
    let pod: Pod = serde_json::from_value(pod)?;
    ns.api::<Pod>().create(&PostParams::default(), &pod).await?;
    Ok(())
}

/// Waits for `name` to reach a terminal phase and returns the pod.
async fn finished(ns: &TestNamespace, name: &str) -> anyhow::Result<Pod> {
    wait::until(&format!("pod {name} to finish"), ROLLOUT_TIMEOUT, || async {
        let pod = ns.api::<Pod>().get(name).await?;
        let phase = pod.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
        Ok(if phase == "Succeeded" || phase == "Failed" { Ok(pod) } else { Err(phase) })
    })
    .await
}

fn terminated_message(pod: &Pod) -> Option<String> {
    pod.status.as_ref()?.container_statuses.as_ref()?.first()?.state.as_ref()?.terminated.as_ref()?.message.clone()
}

#[tokio::test]
async fn etc_hosts_and_memory_volumes() -> anyhow::Result<()> {
    let (_cluster, ns) = setup("podfs").await?;
    create(&ns, serde_json::json!({
        "metadata": { "name": "web", "labels": { "app": "podfs" } },
        "spec": {
            "hostname": "front", "subdomain": "shop",
            "hostAliases": [{ "ip": "192.0.2.10", "hostnames": ["db.example"] }],
            "volumes": [{ "name": "scratch", "emptyDir": { "medium": "Memory" } }],
            "containers": [{ "name": "web", "image": "nginx", "volumeMounts": [{ "name": "scratch", "mountPath": "/scratch" }] }]
        }
    }))
    .await?;
    let pods = wait_running_pods(&ns, "app=podfs", 1).await?;
    let ip = pods[0].status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap_or_default();
    let hosts = ns.kubectl(&["exec", "web", "--", "cat", "/etc/hosts"]).await?;
    assert!(hosts.starts_with("# Kubernetes-managed hosts file."), "{hosts}");
    assert!(hosts.contains(&format!("{ip}\tfront.shop.{}.svc.cluster.local\tfront", ns.name)), "{hosts}");
    assert!(hosts.contains("192.0.2.10\tdb.example"), "{hosts}");
    let fs = ns.kubectl(&["exec", "web", "--", "stat", "-f", "-c", "%T", "/scratch"]).await?;
    assert_eq!(fs.trim(), "tmpfs", "a Memory emptyDir is a tmpfs");
    Ok(())
}

#[tokio::test]
async fn termination_messages() -> anyhow::Result<()> {
    let (_cluster, ns) = setup("termmsg").await?;
    create(&ns, serde_json::json!({
        "metadata": { "name": "from-file" },
        "spec": { "restartPolicy": "Never", "containers": [{
            "name": "main", "image": "nginx", "command": ["bash", "-c", "echo -n DONE > /dev/termination-log"]
        }] }
    }))
    .await?;
    create(&ns, serde_json::json!({
        "metadata": { "name": "from-logs" },
        "spec": { "restartPolicy": "Never", "containers": [{
            "name": "main", "image": "nginx", "command": ["bash", "-c", "echo something broke; exit 3"],
            "terminationMessagePolicy": "FallbackToLogsOnError"
        }] }
    }))
    .await?;
    let from_file = finished(&ns, "from-file").await?;
    assert_eq!(terminated_message(&from_file).as_deref(), Some("DONE"));
    let from_logs = finished(&ns, "from-logs").await?;
    assert_eq!(terminated_message(&from_logs).as_deref(), Some("something broke\n"));
    Ok(())
}

#[tokio::test]
async fn post_start_hook_and_active_deadline() -> anyhow::Result<()> {
    let (_cluster, ns) = setup("hooks").await?;
    create(&ns, serde_json::json!({
        "metadata": { "name": "hooked", "labels": { "app": "hooked" } },
        "spec": { "containers": [{
            "name": "web", "image": "nginx",
            "lifecycle": { "postStart": { "exec": { "command": ["bash", "-c", "echo started > /tmp/hook"] } } }
        }] }
    }))
    .await?;
    wait_running_pods(&ns, "app=hooked", 1).await?;
    let out = ns.kubectl(&["exec", "hooked", "--", "cat", "/tmp/hook"]).await?;
    assert_eq!(out.trim(), "started", "the postStart hook ran in the container");

    // A deadline set on a running pod ends it: Failed with upstream's reason.
    let patch = serde_json::json!({ "spec": { "activeDeadlineSeconds": 5 } });
    ns.api::<Pod>().patch("hooked", &PatchParams::default(), &Patch::Strategic(patch)).await?;
    let pod = finished(&ns, "hooked").await?;
    let status = pod.status.unwrap_or_default();
    assert_eq!((status.phase.as_deref(), status.reason.as_deref()), (Some("Failed"), Some("DeadlineExceeded")));
    Ok(())
}

/// fsGroup: a non-root user reads a 0440 secret file and writes to an emptyDir because both are
/// group-owned by the fsGroup, which the container's processes hold as a supplementary group.
#[tokio::test]
async fn fs_group_owns_volumes() -> anyhow::Result<()> {
    let (_cluster, ns) = setup("fsgroup").await?;
    ns.kubectl(&["create", "secret", "generic", "creds", "--from-literal=data-1=value-1"]).await?;
    create(&ns, serde_json::json!({
        "metadata": { "name": "reader", "labels": { "app": "fsgroup" } },
        "spec": {
            "securityContext": { "runAsUser": 1000, "fsGroup": 1001 },
            "volumes": [
                { "name": "creds", "secret": { "secretName": "creds", "defaultMode": 0o440 } },
                { "name": "scratch", "emptyDir": {} }
            ],
            "containers": [{
                "name": "main", "image": "busybox", "command": ["sleep", "3600"],
                "volumeMounts": [{ "name": "creds", "mountPath": "/etc/creds" }, { "name": "scratch", "mountPath": "/scratch" }]
            }]
        }
    }))
    .await?;
    wait_running_pods(&ns, "app=fsgroup", 1).await?;
    let groups = ns.kubectl(&["exec", "reader", "--", "id", "-G"]).await?;
    assert!(groups.split_whitespace().any(|g| g == "1001"), "fsGroup is a supplementary group: {groups}");
    let content = ns.kubectl(&["exec", "reader", "--", "cat", "/etc/creds/data-1"]).await?;
    assert_eq!(content, "value-1", "the non-root user reads the 0440 secret file");
    let stat = ns.kubectl(&["exec", "reader", "--", "stat", "-L", "-c", "%A %g", "/etc/creds/data-1"]).await?;
    assert_eq!(stat.trim(), "-r--r----- 1001");
    let scratch = ns.kubectl(&["exec", "reader", "--", "stat", "-c", "%A %g", "/scratch"]).await?;
    assert_eq!(scratch.trim(), "drwxrwsrwx 1001", "emptyDir: group-owned with setgid");
    ns.kubectl(&["exec", "reader", "--", "touch", "/scratch/new"]).await?;
    let new = ns.kubectl(&["exec", "reader", "--", "stat", "-c", "%g", "/scratch/new"]).await?;
    assert_eq!(new.trim(), "1001", "new files inherit the group through setgid");
    Ok(())
}

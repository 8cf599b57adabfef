//! Creates (or updates) the Node and patches its status: capacity, addresses, daemon endpoints, node info,
//! images and the Ready / pressure conditions, every `--node-status-update-frequency`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    ContainerImage, DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus, NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Api;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use tokio_util::sync::CancellationToken;

use super::images;
use super::machine::{Capacity, SystemInfo};
use super::{Error, Result};
use crate::runtime::{Runtime, RuntimeVersion};

pub const KUBELET_VERSION: &str = "v1.35.4";

/// Everything the Node object is built from.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub name: String,
    pub ip: String,
    pub kubelet_port: u16,
    pub pod_cidr: String,
    pub labels: BTreeMap<String, String>,
    pub capacity: Capacity,
    pub max_pods: u32,
    pub system: SystemInfo,
}

fn cpu(milli: i64) -> Quantity {
    Quantity(if milli % 1000 == 0 { (milli / 1000).to_string() } else { format!("{milli}m") })
}

fn bytes(b: i64) -> Quantity {
    Quantity(if b % 1024 == 0 { format!("{}Ki", b / 1024) } else { b.to_string() })
}

/// The Node's metadata and spec.
pub fn desired_node(cfg: &NodeConfig) -> Node {
    let mut labels = cfg.labels.clone();
    labels.insert("kubernetes.io/hostname".into(), cfg.name.clone());
    labels.insert("kubernetes.io/os".into(), "linux".into());
    labels.insert("kubernetes.io/arch".into(), "amd64".into());
    labels.insert("beta.kubernetes.io/os".into(), "linux".into());
    labels.insert("beta.kubernetes.io/arch".into(), "amd64".into());
    Node {
        metadata: ObjectMeta { name: Some(cfg.name.clone()), labels: Some(labels), ..Default::default() },
        spec: Some(NodeSpec { pod_cidr: Some(cfg.pod_cidr.clone()), pod_cidrs: Some(vec![cfg.pod_cidr.clone()]), ..Default::default() }),
        status: None,
    }
}

fn node_condition(type_: &str, ok_status: bool, reason: &str, message: &str, old: &[NodeCondition], now: Timestamp) -> NodeCondition {
    let status = if ok_status { "True" } else { "False" }.to_string();
    let now = Time(Timestamp::from_second(now.as_second()).unwrap_or(now));
    let transition = old.iter().find(|c| c.type_ == type_ && c.status == status).and_then(|c| c.last_transition_time.clone());
    NodeCondition {
        type_: type_.to_string(),
        status,
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_heartbeat_time: Some(now.clone()),
        last_transition_time: Some(transition.unwrap_or(now)),
    }
}

/// The Node's status; `runtime` is `None` when the runtime does not answer (the node is then not ready).
pub fn node_status(cfg: &NodeConfig, runtime: Option<&RuntimeVersion>, old: &[NodeCondition], now: Timestamp) -> NodeStatus {
    let resources = BTreeMap::from([
        ("cpu".to_string(), cpu(cfg.capacity.cpu_milli)),
        ("memory".to_string(), bytes(cfg.capacity.memory_bytes)),
        ("ephemeral-storage".to_string(), bytes(cfg.capacity.ephemeral_storage_bytes)),
        ("pods".to_string(), Quantity(cfg.max_pods.to_string())),
    ]);
    let ready = runtime.is_some();
    let (ready_reason, ready_message) =
        if ready { ("KubeletReady", "kubelet is posting ready status") } else { ("KubeletNotReady", "container runtime is down") };
    NodeStatus {
        capacity: Some(resources.clone()),
        allocatable: Some(resources),
        addresses: Some(vec![
            NodeAddress { type_: "InternalIP".into(), address: cfg.ip.clone() },
            NodeAddress { type_: "Hostname".into(), address: cfg.name.clone() },
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints { kubelet_endpoint: Some(DaemonEndpoint { port: i32::from(cfg.kubelet_port) }) }),
        node_info: Some(NodeSystemInfo {
            architecture: "amd64".into(),
            operating_system: "linux".into(),
            boot_id: cfg.system.boot_id.clone(),
            machine_id: cfg.system.machine_id.clone(),
            system_uuid: cfg.system.system_uuid.clone(),
            kernel_version: cfg.system.kernel_version.clone(),
            os_image: cfg.system.os_image.clone(),
            kubelet_version: KUBELET_VERSION.into(),
            kube_proxy_version: String::new(),
            container_runtime_version: runtime.map(|v| format!("{}://{}", v.runtime_name, v.runtime_version)).unwrap_or_default(),
            swap: None,
        }),
        conditions: Some(vec![
            node_condition("MemoryPressure", false, "KubeletHasSufficientMemory", "kubelet has sufficient memory available", old, now),
            node_condition("DiskPressure", false, "KubeletHasNoDiskPressure", "kubelet has no disk pressure", old, now),
            node_condition("PIDPressure", false, "KubeletHasSufficientPID", "kubelet has sufficient PID available", old, now),
            node_condition("Ready", ready, ready_reason, ready_message, old, now),
        ]),
        ..Default::default()
    }
}

/// Creates the Node, or brings an existing one's labels and pod CIDR in line. Returns the Node's UID.
pub async fn register(client: &kube::Client, cfg: &NodeConfig) -> Result<String> {
    let api: Api<Node> = Api::all(client.clone());
    let desired = desired_node(cfg);
    let err = |action| move |source| Error::Node { action, node: cfg.name.clone(), source };
    let node = match api.create(&PostParams::default(), &desired).await {
        Ok(node) => node,
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let existing = api.get(&cfg.name).await.map_err(err("get"))?;
            let mut patch = serde_json::json!({ "metadata": { "labels": desired.metadata.labels } });
            // The pod CIDR can only be set once; leave a different one alone.
            if existing.spec.as_ref().and_then(|s| s.pod_cidr.as_ref()).is_none() {
                patch["spec"] = serde_json::json!({ "podCIDR": cfg.pod_cidr, "podCIDRs": [cfg.pod_cidr] });
            }
            api.patch(&cfg.name, &PatchParams::default(), &Patch::Strategic(patch)).await.map_err(err("update"))?
        }
        Err(e) => return Err(err("create")(e)),
    };
    Ok(node.metadata.uid.unwrap_or_default())
}

/// Patches the Node's status once.
pub async fn update_status<R: Runtime>(client: &kube::Client, cfg: &NodeConfig, runtime: &R) -> Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    let version = match runtime.version().await {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(error = %e, "container runtime is down; reporting the node not ready");
            None
        }
    };
    let old = api
        .get(&cfg.name)
        .await
        .map_err(|source| Error::Node { action: "get", node: cfg.name.clone(), source })?
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default();
    let mut status = node_status(cfg, version.as_ref(), &old, Timestamp::now());
    status.images = current_images(runtime, version.is_some()).await;
    let patch = serde_json::json!({ "status": status });
    api.patch_status(&cfg.name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .map_err(|source| Error::Node { action: "update status of", node: cfg.name.clone(), source })?;
    Ok(())
}

/// The images to report, or `None` to leave the Node's list as it is: the field is then absent from the
/// patch, and a runtime that fails to answer once does not make the node look empty to the scheduler.
async fn current_images<R: Runtime>(runtime: &R, runtime_up: bool) -> Option<Vec<ContainerImage>> {
    if !runtime_up {
        // Already reported as the runtime being down; one warning per update is enough.
        return None;
    }
    match runtime.list_images().await {
        Ok(list) => Some(images::node_images(list)),
        Err(e) => {
            tracing::warn!(error = %e, "failed to list images; keeping the node's previous image list");
            None
        }
    }
}

/// Patches the Node's status every `every` until `shutdown`.
pub async fn run_status_loop<R: Runtime>(client: kube::Client, cfg: NodeConfig, runtime: Arc<R>, every: Duration, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if let Err(e) = update_status(&client, &cfg, runtime.as_ref()).await {
                    tracing::warn!(error = %e, "node status update failed");
                }
            }
            () = shutdown.cancelled() => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> NodeConfig {
        NodeConfig {
            name: "rudder-node-1".into(),
            ip: "127.0.1.1".into(),
            kubelet_port: 10250,
            pod_cidr: "10.244.1.0/24".into(),
            labels: BTreeMap::from([("tier".to_string(), "a".to_string())]),
            capacity: Capacity { cpu_milli: 2000, memory_bytes: 4 << 30, ephemeral_storage_bytes: 10 << 30 },
            max_pods: 110,
            system: SystemInfo::default(),
        }
    }

    #[test]
    fn node_labels_and_spec() {
        let node = desired_node(&cfg());
        let labels = node.metadata.labels.unwrap_or_default();
        assert_eq!(labels.get("kubernetes.io/hostname").map(String::as_str), Some("rudder-node-1"));
        assert_eq!(labels.get("tier").map(String::as_str), Some("a"));
        assert_eq!(node.spec.and_then(|s| s.pod_cidr).as_deref(), Some("10.244.1.0/24"));
    }

    #[test]
    fn status_reports_capacity_and_readiness() {
        let now = Timestamp::from_second(1_700_000_000).unwrap_or(Timestamp::UNIX_EPOCH);
        let v = RuntimeVersion { runtime_name: "containerd".into(), runtime_version: "1.6.20".into() };
        let s = node_status(&cfg(), Some(&v), &[], now);
        let cap = s.capacity.clone().unwrap_or_default();
        assert_eq!(cap.get("cpu").map(|q| q.0.as_str()), Some("2"));
        assert_eq!(cap.get("memory").map(|q| q.0.as_str()), Some("4194304Ki"));
        assert_eq!(s.node_info.as_ref().map(|i| i.container_runtime_version.as_str()), Some("containerd://1.6.20"));
        let ready = s.conditions.clone().unwrap_or_default().into_iter().find(|c| c.type_ == "Ready").unwrap_or_default();
        assert_eq!((ready.status.as_str(), ready.reason.as_deref()), ("True", Some("KubeletReady")));

        // The runtime going away flips Ready, with a new transition time; heartbeats keep the old one.
        let later = Timestamp::from_second(1_700_000_100).unwrap_or(Timestamp::UNIX_EPOCH);
        let old = s.conditions.unwrap_or_default();
        let down = node_status(&cfg(), None, &old, later);
        let ready = down.conditions.unwrap_or_default().into_iter().find(|c| c.type_ == "Ready").unwrap_or_default();
        assert_eq!(ready.status, "False");
        assert_eq!(ready.last_transition_time.map(|t| t.0.as_second()), Some(1_700_000_100));
        let up = node_status(&cfg(), Some(&v), &old, later);
        let ready = up.conditions.unwrap_or_default().into_iter().find(|c| c.type_ == "Ready").unwrap_or_default();
        assert_eq!(ready.last_transition_time.map(|t| t.0.as_second()), Some(1_700_000_000));
    }

    #[tokio::test]
    async fn images_in_the_status() {
        use crate::runtime::simulated::SimulatedRuntime;

        let rt = SimulatedRuntime::new();
        rt.add_image("docker.io/library/nginx:latest", 70 << 20);
        rt.add_image("registry.k8s.io/pause:3.10", 1 << 20);
        let names = |images: Option<Vec<ContainerImage>>| {
            images.map(|list| list.into_iter().flat_map(|i| i.names.unwrap_or_default()).collect::<Vec<_>>())
        };
        // (case, runtime up, image listing failure, names reported)
        type Case = (&'static str, bool, Option<&'static str>, Option<Vec<&'static str>>);
        let cases: [Case; 3] = [
            ("listed, largest first", true, None, Some(vec!["docker.io/library/nginx:latest", "registry.k8s.io/pause:3.10"])),
            ("listing fails: left out", true, Some("unavailable"), None),
            ("runtime down: left out", false, None, None),
        ];
        for (name, up, failure, want) in cases {
            rt.fail_list_images(failure);
            let want = want.map(|w| w.into_iter().map(String::from).collect::<Vec<_>>());
            assert_eq!(names(current_images(&rt, up).await), want, "case {name}");
        }
    }

    #[test]
    fn images_left_out_are_absent_from_the_patch() {
        // An absent field keeps the server's list under a strategic merge patch; `[]` would clear it.
        let status = node_status(&cfg(), None, &[], Timestamp::UNIX_EPOCH);
        let patch = serde_json::json!({ "status": status });
        assert_eq!(patch["status"].get("images"), None);
    }
}

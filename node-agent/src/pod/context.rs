//! What every pod worker shares: the runtime, the API, volumes, events, metrics and node settings.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{ObjectRef, Store};

use super::dns::ResolvConf;
use super::fields::NodeFacts;
use crate::events::PodEvents;
use crate::metrics::Metrics;
use crate::objects::Objects;
use crate::volumes::Volumes;

/// Node settings the pod lifecycle needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub node_name: String,
    pub node_ip: String,
    pub root_dir: PathBuf,
    pub cluster_dns: Vec<IpAddr>,
    pub cluster_domain: String,
    pub host_resolv: ResolvConf,
    pub cpu_milli: i64,
    pub memory_bytes: i64,
}

/// Shared by all pod workers.
pub struct Context<R> {
    pub runtime: Arc<R>,
    pub client: kube::Client,
    pub objects: Objects,
    pub volumes: Volumes,
    pub events: PodEvents,
    pub metrics: Metrics,
    pub store: Store<Pod>,
    pub settings: Settings,
    /// `containerd`, from the runtime's Version; the scheme of container ids.
    pub runtime_name: String,
}

impl<R> Context<R> {
    /// The pod with this name and UID from the watch cache.
    pub fn pod(&self, namespace: &str, name: &str, uid: &str) -> Option<Arc<Pod>> {
        self.store.get(&ObjectRef::new(name).within(namespace)).filter(|p| p.metadata.uid.as_deref() == Some(uid))
    }

    pub fn node_facts(&self, pod_ips: Vec<String>) -> NodeFacts {
        NodeFacts { host_ip: self.settings.node_ip.clone(), pod_ips, cpu_milli: self.settings.cpu_milli, memory_bytes: self.settings.memory_bytes }
    }
}

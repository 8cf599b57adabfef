//! The periodic health pass over every node: marks silent nodes Unknown, queues or swaps the
//! eviction taints, marks pods on unreachable nodes not ready, and watches for cluster-wide
//! disruption. A second loop releases queued nodes for tainting at the eviction rate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::Resource as _;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::runtime::reflector::{ObjectRef, Store};

use super::config::NodeLifecycleConfig;
use super::health::{self, Probe};
use super::taints::{self, NO_EXECUTE, NOT_READY, UNREACHABLE};
use super::writes;
use super::zone::{self, TaintQueue, ZoneState};
use crate::events::Events;

/// Where node agents keep their leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// Nodes with this label do not count towards disruption (upstream's exclusion label).
const EXCLUDE_DISRUPTION: &str = "node.kubernetes.io/exclude-disruption";

/// How often the taint queue is offered to the rate limiter (upstream's eviction period).
const TAINT_PERIOD: Duration = Duration::from_millis(100);

/// What the health pass keeps between runs.
pub struct Monitor {
    config: NodeLifecycleConfig,
    node_api: Api<Node>,
    client: kube::Client,
    nodes: Store<Node>,
    leases: Store<Lease>,
    pods: Store<Pod>,
    events: Events,
    probes: HashMap<String, Probe>,
    known: HashMap<String, Option<String>>,
    zone: ZoneState,
    queue: Arc<Mutex<TaintQueue>>,
}

fn node_reference(name: &str, uid: Option<String>) -> ObjectReference {
    ObjectReference { api_version: Some("v1".into()), kind: Some("Node".into()), name: Some(name.to_string()), uid, ..Default::default() }
}

impl Monitor {
    pub fn new(client: kube::Client, config: NodeLifecycleConfig, nodes: Store<Node>, leases: Store<Lease>, pods: Store<Pod>, events: Events) -> Self {
        let queue = Arc::new(Mutex::new(TaintQueue::new(config.eviction_rate_qps, Instant::now())));
        Self {
            node_api: Api::all(client.clone()),
            client,
            config,
            nodes,
            leases,
            pods,
            events,
            probes: HashMap::new(),
            known: HashMap::new(),
            zone: ZoneState::Initial,
            queue,
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, TaintQueue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs the health pass every `node_monitor_period` and the tainting loop beside it, until
    /// `shutdown` resolves.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()> + Send) {
        let tainter = tainter(self.node_api.clone(), self.nodes.clone(), self.queue.clone());
        let passes = async {
            let _ = self.nodes.wait_until_ready().await;
            let _ = self.leases.wait_until_ready().await;
            let _ = self.pods.wait_until_ready().await;
            let mut tick = tokio::time::interval(self.config.node_monitor_period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                self.pass().await;
            }
        };
        tokio::select! {
            () = shutdown => {}
            () = passes => {}
            () = tainter => {}
        }
    }

    /// One look at every node.
    async fn pass(&mut self) {
        let now = Timestamp::now();
        let nodes = self.nodes.state();
        self.track_membership(&nodes).await;
        let mut pods_by_node: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
        for pod in self.pods.state() {
            if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) {
                pods_by_node.entry(node).or_default().push(pod);
            }
        }
        let (mut ready, mut not_ready) = (0, 0);
        for node in &nodes {
            let Some(name) = node.metadata.name.clone() else { continue };
            let observed = taints::ready_status(node).map(str::to_string);
            let current = self.update_health(node, now).await;
            let status = taints::ready_status(&current);
            let excluded = current.metadata.labels.as_ref().is_some_and(|l| l.contains_key(EXCLUDE_DISRUPTION));
            if !excluded {
                if status == Some("True") { ready += 1 } else { not_ready += 1 }
            }
            if status.is_some() {
                self.process_eviction_taint(&name, &current, now).await;
            }
            if observed.as_deref() == Some("True") && status != Some("True") {
                let note = format!("Node {name} status is now: NodeNotReady");
                self.events.normal(&node_reference(&name, current.metadata.uid.clone()), None, "NodeNotReady", "StatusChange", note).await;
            }
            if status == Some("Unknown") {
                self.mark_pods_not_ready(&name, pods_by_node.get(&name).map(Vec::as_slice).unwrap_or_default(), now).await;
            }
        }
        self.handle_disruption(ready, not_ready, &nodes, now).await;
    }

    /// Reports nodes seen for the first time and nodes gone, and forgets what was kept for the latter.
    async fn track_membership(&mut self, nodes: &[Arc<Node>]) {
        let present: HashMap<String, Option<String>> =
            nodes.iter().filter_map(|n| Some((n.metadata.name.clone()?, n.metadata.uid.clone()))).collect();
        for (name, uid) in &present {
            if !self.known.contains_key(name) {
                tracing::info!(node = %name, "observed a new node");
                let note = format!("Node {name} event: Registered Node {name} in Controller");
                self.events.normal(&node_reference(name, uid.clone()), None, "RegisteredNode", "Register", note).await;
            }
        }
        let gone: Vec<(String, Option<String>)> = self.known.iter().filter(|(n, _)| !present.contains_key(*n)).map(|(n, u)| (n.clone(), u.clone())).collect();
        for (name, uid) in gone {
            tracing::info!(node = %name, "observed a node deletion");
            let note = format!("Node {name} event: Removing Node {name} from Controller");
            self.events.normal(&node_reference(&name, uid), None, "RemovingNode", "Remove", note).await;
            self.probes.remove(&name);
            self.queue().remove(&name);
        }
        self.known = present;
    }

    /// Updates the node's probe; a node silent past its grace period gets its agent's conditions
    /// set Unknown. Returns the node as it now stands.
    async fn update_health(&mut self, node: &Arc<Node>, now: Timestamp) -> Arc<Node> {
        let Some(name) = node.metadata.name.as_deref() else { return node.clone() };
        let lease = self.leases.get(&ObjectRef::new(name).within(LEASE_NAMESPACE));
        let renewed = lease.as_ref().and_then(|l| l.spec.as_ref()?.renew_time.as_ref()).map(|t| t.0);
        let probe = health::observe(self.probes.get(name), node, renewed, now);
        let grace = health::grace_period(node, self.config.node_monitor_grace_period, self.config.node_startup_grace_period);
        let stale = health::is_stale(&probe, grace, now);
        self.probes.insert(name.to_string(), probe);
        if !stale {
            return node.clone();
        }
        let Some(conditions) = health::unknown_conditions(node, now) else { return node.clone() };
        tracing::info!(node = name, grace = ?grace, "node stopped posting status and renewing its lease; setting its conditions Unknown");
        match writes::set_node_conditions(&self.node_api, node, &conditions).await {
            Ok(Some(updated)) => Arc::new(updated),
            Ok(None) => node.clone(),
            Err(error) => {
                tracing::warn!(node = name, %error, "could not mark node Unknown; retrying next pass");
                node.clone()
            }
        }
    }

    /// Not-ready and unreachable nodes wait in the queue for their eviction taint; one that
    /// already has the other eviction taint is swapped at once; a ready node loses both.
    async fn process_eviction_taint(&mut self, name: &str, node: &Node, now: Timestamp) {
        let wanted = taints::eviction_taint_for(taints::ready_status(node));
        let swap_or_clear = match wanted {
            Some(key) => {
                let opposite = if key == NOT_READY { UNREACHABLE } else { NOT_READY };
                if !taints::has(node, opposite, NO_EXECUTE) && !taints::has(node, key, NO_EXECUTE) {
                    self.queue().add(name);
                }
                taints::has(node, opposite, NO_EXECUTE)
            }
            None => {
                self.queue().remove(name);
                taints::has(node, NOT_READY, NO_EXECUTE) || taints::has(node, UNREACHABLE, NO_EXECUTE)
            }
        };
        if !swap_or_clear {
            return;
        }
        match writes::edit_taints(&self.node_api, name, |fresh| taints::with_eviction_taint_for_readiness(fresh, now)).await {
            Ok(true) => tracing::info!(node = name, taint = ?wanted, "set eviction taint"),
            Ok(false) => {}
            Err(error) => tracing::warn!(node = name, %error, "could not update eviction taint; retrying next pass"),
        }
    }

    /// Upstream's MarkPodsNotReady for a node nobody hears from: its pods cannot be serving.
    async fn mark_pods_not_ready(&self, node: &str, pods: &[Arc<Pod>], now: Timestamp) {
        for pod in pods {
            let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
            match writes::mark_pod_not_ready(&Api::namespaced(self.client.clone(), namespace), pod, now).await {
                Ok(true) => {
                    tracing::info!(node, pod = pod.metadata.name.as_deref().unwrap_or_default(), "marked pod not ready");
                    self.events.warning(&pod.object_ref(&()), None, "NodeNotReady", "MarkNotReady", "Node is not ready".to_string()).await;
                }
                Ok(false) => {}
                Err(error) => tracing::warn!(node, %error, "could not mark pod not ready; retrying next pass"),
            }
        }
    }

    /// Follows the cluster's disruption state: no eviction tainting while every node is down,
    /// slower or none while many are, and a fresh grace period for all when it recovers.
    async fn handle_disruption(&mut self, ready: usize, not_ready: usize, nodes: &[Arc<Node>], now: Timestamp) {
        let next = zone::state(ready, not_ready, self.config.unhealthy_zone_threshold);
        if next == self.zone || next == ZoneState::Initial {
            return;
        }
        let c = &self.config;
        let rate = zone::rate(next, ready + not_ready, c.eviction_rate_qps, c.secondary_eviction_rate_qps, c.large_cluster_size_threshold);
        match (self.zone, next) {
            (_, ZoneState::FullDisruption) => {
                tracing::warn!("no node is ready; entering full disruption mode: no node is tainted for eviction");
                for name in nodes.iter().filter_map(|n| n.metadata.name.as_deref()) {
                    self.queue().remove(name);
                    if let Err(error) = writes::edit_taints(&self.node_api, name, |fresh| taints::with_eviction_taint(fresh, None, now)).await {
                        tracing::warn!(node = name, %error, "could not remove eviction taint");
                    }
                }
                self.queue().set_rate(0.0, Instant::now());
            }
            (ZoneState::FullDisruption, _) => {
                tracing::info!(state = ?next, "some nodes are ready again; leaving full disruption mode");
                self.probes = std::mem::take(&mut self.probes).into_iter().map(|(n, p)| (n, p.refreshed(now))).collect();
                self.queue().set_rate(rate, Instant::now());
            }
            (_, _) => {
                tracing::info!(state = ?next, rate, "cluster disruption state changed");
                self.queue().set_rate(rate, Instant::now());
            }
        }
        self.zone = next;
    }
}

/// Releases queued nodes at the eviction rate and gives each the eviction taint its Ready status
/// calls for (a node that recovered meanwhile gets none).
async fn tainter(nodes_api: Api<Node>, nodes: Store<Node>, queue: Arc<Mutex<TaintQueue>>) {
    let mut tick = tokio::time::interval(TAINT_PERIOD);
    loop {
        tick.tick().await;
        loop {
            let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next(Instant::now());
            let Some(name) = next else { break };
            let Some(node) = nodes.get(&ObjectRef::new(&name)) else { continue };
            if taints::eviction_taint_for(taints::ready_status(&node)).is_none() {
                continue;
            }
            match writes::edit_taints(&nodes_api, &name, |fresh| taints::with_eviction_taint_for_readiness(fresh, Timestamp::now())).await {
                Ok(true) => tracing::info!(node = %name, ready = taints::ready_status(&node), "tainted node NoExecute for eviction"),
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(node = %name, %error, "could not taint node for eviction; requeued");
                    queue.lock().unwrap_or_else(|p| p.into_inner()).add(&name);
                }
            }
        }
    }
}

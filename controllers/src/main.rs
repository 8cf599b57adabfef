//! rudder-controllers: the kube-controller-manager replacement.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Namespace, Node, Pod, ReplicationController, Service, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::watcher;
use rudder_controllers::informer::Informer;
use rudder_controllers::selection::{self, DAEMONSET, DEPLOYMENT, ENDPOINTS, ENDPOINTSLICE, GARBAGE_COLLECTOR, NAMESPACE, NODE_LIFECYCLE, REPLICASET, REPLICATIONCONTROLLER, ROOT_CA_PUBLISHER, SERVICEACCOUNT, STATEFULSET};
use rudder_controllers::{daemonset, deployment, endpoints, endpointslice, garbage_collector, namespace, node_lifecycle, replicaset, replicationcontroller, root_ca_publisher, serviceaccount, statefulset};
use tokio::sync::watch;

/// How long controllers get to finish in-flight syncs after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Parser, Debug)]
#[command(name = "rudder-controllers", about = "Runs rudder's Kubernetes controllers against a kube-apiserver")]
struct Flags {
    /// Controllers to run: `*` for all, a name to enable one, `-name` to disable one (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "*")]
    controllers: Vec<String>,

    /// PEM CA bundle published as `ca.crt` in each namespace's `kube-root-ca.crt` ConfigMap.
    /// Without it the root CA publisher does not run.
    #[arg(long)]
    root_ca_file: Option<PathBuf>,

    /// Deployments synced concurrently.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    concurrent_deployment_syncs: u16,

    /// Replica sets synced concurrently.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    concurrent_replicaset_syncs: u16,

    /// Replication controllers synced concurrently.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    concurrent_rc_syncs: u16,

    /// Stateful sets synced concurrently.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    concurrent_statefulset_syncs: u16,

    /// Daemon sets synced concurrently.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    concurrent_daemonset_syncs: u16,

    /// Garbage collector workers.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..))]
    concurrent_gc_syncs: u16,

    /// Services whose EndpointSlices are synced concurrently.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    concurrent_service_endpoint_syncs: u16,

    /// Services whose legacy Endpoints are synced concurrently.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    concurrent_endpoint_syncs: u16,

    /// Namespaces emptied concurrently.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    concurrent_namespace_syncs: u16,

    #[command(flatten)]
    node_lifecycle: node_lifecycle::NodeLifecycleFlags,

    #[command(flatten)]
    common: component_base::CommonFlags,
}

/// Reads and checks `--root-ca-file`.
fn read_root_ca(path: &PathBuf) -> anyhow::Result<String> {
    let pem = std::fs::read_to_string(path).with_context(|| format!("invalid --root-ca-file: cannot read {}", path.display()))?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        bail!("invalid --root-ca-file: {} holds no PEM certificate", path.display());
    }
    Ok(pem)
}

/// A future that resolves once shutdown has been signalled.
fn stopped(rx: &watch::Receiver<bool>) -> impl Future<Output = ()> + Send + Sync + 'static {
    let mut rx = rx.clone();
    async move {
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    component_base::logging::init(&flags.common.log_format);
    let mut enabled = selection::enabled(&flags.controllers)?;
    let node_lifecycle_config = flags.node_lifecycle.clone().into_config()?;
    let root_ca = match &flags.root_ca_file {
        Some(path) => Some(read_root_ca(path)?),
        None => {
            if enabled.remove(ROOT_CA_PUBLISHER) {
                tracing::warn!("no --root-ca-file given; the root CA publisher is disabled");
            }
            None
        }
    };
    tracing::info!(controllers = ?enabled, "starting");

    let client = component_base::client::build(flags.common.kubeconfig.as_deref(), "rudder-controllers").await?;
    let readiness = component_base::Readiness::default();
    let registry = prometheus_client::registry::Registry::default();
    let health = component_base::HealthServer::bind(flags.common.health_bind_address, readiness.clone(), registry)
        .await
        .with_context(|| format!("invalid --health-bind-address {}", flags.common.health_bind_address))?;
    tracing::info!(address = %health.local_addr()?, "serving health and metrics");

    let (stop_tx, stop_rx) = watch::channel(false);
    let health_task = tokio::spawn(health.serve(stopped(&stop_rx)));

    let on = |name| enabled.contains(name);
    let cfg = watcher::Config::default;
    let apps = on(DEPLOYMENT) || on(REPLICASET);
    let service_endpoints = on(ENDPOINTSLICE) || on(ENDPOINTS);
    let pods = (apps || on(REPLICATIONCONTROLLER) || on(STATEFULSET) || on(DAEMONSET) || on(NODE_LIFECYCLE) || service_endpoints).then(|| Informer::<Pod>::spawn(Api::all(client.clone()), cfg()));
    let nodes = (on(NODE_LIFECYCLE) || on(ENDPOINTSLICE) || on(DAEMONSET)).then(|| Informer::<Node>::spawn(Api::all(client.clone()), cfg()));
    let services = service_endpoints.then(|| Informer::<Service>::spawn(Api::all(client.clone()), cfg()));
    let slices = on(ENDPOINTSLICE).then(|| Informer::<EndpointSlice>::spawn(Api::all(client.clone()), cfg()));
    let legacy_endpoints = on(ENDPOINTS).then(|| Informer::<Endpoints>::spawn(Api::all(client.clone()), cfg()));
    let leases = on(NODE_LIFECYCLE).then(|| Informer::<Lease>::spawn(Api::namespaced(client.clone(), node_lifecycle::LEASE_NAMESPACE), cfg()));
    let replica_sets = apps.then(|| Informer::<ReplicaSet>::spawn(Api::all(client.clone()), cfg()));
    let replication_controllers = on(REPLICATIONCONTROLLER).then(|| Informer::<ReplicationController>::spawn(Api::all(client.clone()), cfg()));
    let stateful_sets = on(STATEFULSET).then(|| Informer::<StatefulSet>::spawn(Api::all(client.clone()), cfg()));
    let controller_revisions = (on(STATEFULSET) || on(DAEMONSET)).then(|| Informer::<ControllerRevision>::spawn(Api::all(client.clone()), cfg()));
    let daemon_sets = on(DAEMONSET).then(|| Informer::<DaemonSet>::spawn(Api::all(client.clone()), cfg()));
    let deployments = on(DEPLOYMENT).then(|| Informer::<Deployment>::spawn(Api::all(client.clone()), cfg()));
    let namespaces = (on(SERVICEACCOUNT) || on(ROOT_CA_PUBLISHER) || on(NAMESPACE)).then(|| Informer::<Namespace>::spawn(Api::all(client.clone()), cfg()));
    let accounts = on(SERVICEACCOUNT)
        .then(|| Informer::<ServiceAccount>::spawn(Api::all(client.clone()), cfg().fields(&format!("metadata.name={}", serviceaccount::DEFAULT_ACCOUNT))));
    let config_maps = on(ROOT_CA_PUBLISHER)
        .then(|| Informer::<ConfigMap>::spawn(Api::all(client.clone()), cfg().fields(&format!("metadata.name={}", root_ca_publisher::CONFIG_MAP))));

    let mut tasks = tokio::task::JoinSet::new();
    if let (Some(d), Some(rs), Some(p)) = (&deployments, &replica_sets, &pods) {
        tasks.spawn(deployment::run(client.clone(), d, rs, p, flags.concurrent_deployment_syncs, stopped(&stop_rx)));
    }
    if let (true, Some(rs), Some(p)) = (on(REPLICASET), &replica_sets, &pods) {
        tasks.spawn(replicaset::run(client.clone(), rs, p, flags.concurrent_replicaset_syncs, stopped(&stop_rx)));
    }
    if let (Some(rc), Some(p)) = (&replication_controllers, &pods) {
        tasks.spawn(replicationcontroller::run(client.clone(), rc, p, flags.concurrent_rc_syncs, stopped(&stop_rx)));
    }
    if let (Some(ss), Some(p), Some(cr)) = (&stateful_sets, &pods, &controller_revisions) {
        tasks.spawn(statefulset::run(client.clone(), ss, p, cr, flags.concurrent_statefulset_syncs, stopped(&stop_rx)));
    }
    if let (Some(ds), Some(p), Some(n), Some(cr)) = (&daemon_sets, &pods, &nodes, &controller_revisions) {
        tasks.spawn(daemonset::run(client.clone(), ds, p, n, cr, flags.concurrent_daemonset_syncs, stopped(&stop_rx)));
    }
    if let (Some(ns), Some(sa)) = (&namespaces, &accounts) {
        tasks.spawn(serviceaccount::run(client.clone(), ns, sa, stopped(&stop_rx)));
    }
    if let (Some(ns), Some(cm), Some(ca)) = (&namespaces, &config_maps, root_ca) {
        tasks.spawn(root_ca_publisher::run(client.clone(), ca, ns, cm, stopped(&stop_rx)));
    }
    if let (true, Some(ns)) = (on(NAMESPACE), &namespaces) {
        tasks.spawn(namespace::run(client.clone(), ns, flags.concurrent_namespace_syncs, stopped(&stop_rx)));
    }
    if let (Some(n), Some(l), Some(p)) = (&nodes, &leases, &pods) {
        tasks.spawn(node_lifecycle::run(client.clone(), node_lifecycle_config, n, l, p, stopped(&stop_rx)));
    }
    if let (Some(svc), Some(p), Some(sl), Some(n)) = (&services, &pods, &slices, &nodes) {
        tasks.spawn(endpointslice::run(client.clone(), svc, p, sl, n, flags.concurrent_service_endpoint_syncs, stopped(&stop_rx)));
    }
    if let (Some(svc), Some(p), Some(ep)) = (&services, &pods, &legacy_endpoints) {
        tasks.spawn(endpoints::run(client.clone(), svc, p, ep, flags.concurrent_endpoint_syncs, stopped(&stop_rx)));
    }
    let (gc_ready_tx, gc_ready_rx) = tokio::sync::oneshot::channel();
    if on(GARBAGE_COLLECTOR) {
        tasks.spawn(garbage_collector::run(client.clone(), usize::from(flags.concurrent_gc_syncs), gc_ready_tx, stopped(&stop_rx)));
    } else {
        let _ = gc_ready_tx.send(());
    }

    // Ready once every cache has listed once and the garbage collector's graph is complete.
    let stores_ready = {
        let waits: Vec<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>> = vec![
            Box::pin(wait_ready(pods.as_ref().map(Informer::store))),
            Box::pin(wait_ready(replica_sets.as_ref().map(Informer::store))),
            Box::pin(wait_ready(replication_controllers.as_ref().map(Informer::store))),
            Box::pin(wait_ready(stateful_sets.as_ref().map(Informer::store))),
            Box::pin(wait_ready(controller_revisions.as_ref().map(Informer::store))),
            Box::pin(wait_ready(daemon_sets.as_ref().map(Informer::store))),
            Box::pin(wait_ready(deployments.as_ref().map(Informer::store))),
            Box::pin(wait_ready(namespaces.as_ref().map(Informer::store))),
            Box::pin(wait_ready(accounts.as_ref().map(Informer::store))),
            Box::pin(wait_ready(config_maps.as_ref().map(Informer::store))),
            Box::pin(wait_ready(nodes.as_ref().map(Informer::store))),
            Box::pin(wait_ready(leases.as_ref().map(Informer::store))),
            Box::pin(wait_ready(services.as_ref().map(Informer::store))),
            Box::pin(wait_ready(slices.as_ref().map(Informer::store))),
            Box::pin(wait_ready(legacy_endpoints.as_ref().map(Informer::store))),
            Box::pin(async move {
                let _ = gc_ready_rx.await;
            }),
        ];
        futures::future::join_all(waits)
    };
    let readiness_task = {
        let readiness = readiness.clone();
        tokio::spawn(async move {
            stores_ready.await;
            readiness.set_ready(true);
            tracing::info!("caches synced; ready");
        })
    };

    component_base::shutdown::signal_received().await;
    readiness.set_ready(false);
    readiness_task.abort();
    let _ = stop_tx.send(true);
    if tokio::time::timeout(SHUTDOWN_GRACE, async { while tasks.join_next().await.is_some() {} }).await.is_err() {
        tracing::warn!("controllers did not stop in time; exiting anyway");
    }
    let _ = health_task.await;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_ready<K>(store: Option<kube::runtime::reflector::Store<K>>)
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    if let Some(store) = store {
        let _ = store.wait_until_ready().await;
    }
}

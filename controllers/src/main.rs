//! rudder-controllers: the kube-controller-manager replacement.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use component_base::leader_election::LeaderElector;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod, ReplicationController, Service, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::watcher;
use rudder_controllers::informer::Informer;
use rudder_controllers::leader_election::LeaderElectionFlags;
use rudder_controllers::metrics;
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

    /// Endpoints objects mirrored to EndpointSlices concurrently.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    mirroring_concurrent_service_endpoint_syncs: u16,

    /// Namespaces emptied concurrently.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    concurrent_namespace_syncs: u16,

    /// Resource quotas synced concurrently.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    concurrent_resource_quota_syncs: u16,

    /// How often every resource quota's usage is recalculated in full.
    #[arg(long, default_value = "5m0s", value_parser = node_lifecycle::parse_duration)]
    resource_quota_sync_period: Duration,

    /// Jobs synced concurrently.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    concurrent_job_syncs: u16,

    /// Cron jobs synced concurrently.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    concurrent_cron_job_syncs: u16,

    #[command(flatten)]
    node_lifecycle: node_lifecycle::NodeLifecycleFlags,

    #[command(flatten)]
    leader_election: LeaderElectionFlags,

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
    let lease = flags.leader_election.clone().into_config()?;
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

    let client = component_base::client::build(&flags.common, "rudder-controllers").await?;
    let readiness = component_base::Readiness::default();
    let mut registry = prometheus_client::registry::Registry::default();
    let leader_status = metrics::register(&mut registry, &flags.leader_election.leader_elect_resource_name);
    let health = component_base::HealthServer::bind(flags.common.health_bind_address, readiness.clone(), registry)
        .await
        .with_context(|| format!("invalid --health-bind-address {}", flags.common.health_bind_address))?;
    tracing::info!(address = %health.local_addr()?, "serving health and metrics");

    let (stop_tx, stop_rx) = watch::channel(false);
    let health_task = tokio::spawn(health.serve(stopped(&stop_rx)));

    // Like kube-controller-manager, nothing is watched or reconciled before the lease is held: a
    // standby serves health (not ready) and waits.
    let elector = lease.map(|cfg| Arc::new(LeaderElector::new(client.clone(), cfg)));
    match &elector {
        Some(elector) => {
            tracing::info!(lease = %elector.lease(), identity = %elector.identity(), "attempting to acquire leader lease");
            tokio::select! {
                () = elector.acquire() => leader_status.set_leading(true),
                () = component_base::shutdown::signal_received() => {
                    // An acquire cut short may just have written the lease: hand it back.
                    elector.release().await;
                    let _ = stop_tx.send(true);
                    let _ = health_task.await;
                    tracing::info!("stopped while standing by");
                    return Ok(());
                }
            }
        }
        None => tracing::info!("leader election disabled"),
    }

    let on = |name| enabled.contains(name);
    let cfg = watcher::Config::default;
    let apps = on(DEPLOYMENT) || on(REPLICASET);
    let service_endpoints = on(ENDPOINTSLICE) || on(ENDPOINTS);
    let pods = (apps || on(REPLICATIONCONTROLLER) || on(STATEFULSET) || on(DAEMONSET) || on(NODE_LIFECYCLE) || service_endpoints || on(selection::DISRUPTION) || on(selection::JOB) || on(selection::RESOURCEQUOTA) || on(selection::PVC_PROTECTION)).then(|| Informer::<Pod>::spawn(Api::all(client.clone()), cfg()));
    let nodes = (on(NODE_LIFECYCLE) || on(ENDPOINTSLICE) || on(DAEMONSET)).then(|| Informer::<Node>::spawn(Api::all(client.clone()), cfg()));
    let claims = on(selection::PVC_PROTECTION).then(|| Informer::<PersistentVolumeClaim>::spawn(Api::all(client.clone()), cfg()));
    let volumes = on(selection::PV_PROTECTION).then(|| Informer::<PersistentVolume>::spawn(Api::all(client.clone()), cfg()));
    let mirroring = on(selection::ENDPOINTSLICE_MIRRORING);
    let services = (service_endpoints || mirroring).then(|| Informer::<Service>::spawn(Api::all(client.clone()), cfg()));
    let slices = (on(ENDPOINTSLICE) || mirroring).then(|| Informer::<EndpointSlice>::spawn(Api::all(client.clone()), cfg()));
    let legacy_endpoints = (on(ENDPOINTS) || mirroring).then(|| Informer::<Endpoints>::spawn(Api::all(client.clone()), cfg()));
    let leases = on(NODE_LIFECYCLE).then(|| Informer::<Lease>::spawn(Api::namespaced(client.clone(), node_lifecycle::LEASE_NAMESPACE), cfg()));
    let replica_sets = (apps || on(selection::DISRUPTION)).then(|| Informer::<ReplicaSet>::spawn(Api::all(client.clone()), cfg()));
    let replication_controllers = (on(REPLICATIONCONTROLLER) || on(selection::DISRUPTION)).then(|| Informer::<ReplicationController>::spawn(Api::all(client.clone()), cfg()));
    let stateful_sets = (on(STATEFULSET) || on(selection::DISRUPTION)).then(|| Informer::<StatefulSet>::spawn(Api::all(client.clone()), cfg()));
    let controller_revisions = (on(STATEFULSET) || on(DAEMONSET)).then(|| Informer::<ControllerRevision>::spawn(Api::all(client.clone()), cfg()));
    let daemon_sets = on(DAEMONSET).then(|| Informer::<DaemonSet>::spawn(Api::all(client.clone()), cfg()));
    let deployments = (on(DEPLOYMENT) || on(selection::DISRUPTION)).then(|| Informer::<Deployment>::spawn(Api::all(client.clone()), cfg()));
    let jobs = (on(selection::JOB) || on(selection::CRONJOB)).then(|| Informer::<k8s_openapi::api::batch::v1::Job>::spawn(Api::all(client.clone()), cfg()));
    let cron_jobs = on(selection::CRONJOB).then(|| Informer::<k8s_openapi::api::batch::v1::CronJob>::spawn(Api::all(client.clone()), cfg()));
    let quotas = on(selection::RESOURCEQUOTA).then(|| Informer::<k8s_openapi::api::core::v1::ResourceQuota>::spawn(Api::all(client.clone()), cfg()));
    let budgets = on(selection::DISRUPTION).then(|| Informer::<k8s_openapi::api::policy::v1::PodDisruptionBudget>::spawn(Api::all(client.clone()), cfg()));
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
    if let (true, Some(svc), Some(p), Some(sl), Some(n)) = (on(ENDPOINTSLICE), &services, &pods, &slices, &nodes) {
        tasks.spawn(endpointslice::run(client.clone(), svc, p, sl, n, flags.concurrent_service_endpoint_syncs, stopped(&stop_rx)));
    }
    if let (true, Some(svc), Some(p), Some(ep)) = (on(ENDPOINTS), &services, &pods, &legacy_endpoints) {
        tasks.spawn(endpoints::run(client.clone(), svc, p, ep, flags.concurrent_endpoint_syncs, stopped(&stop_rx)));
    }
    if let (Some(c), Some(p)) = (&claims, &pods) {
        tasks.spawn(rudder_controllers::volume_protection::run_claims(client.clone(), c, p, stopped(&stop_rx)));
    }
    if let Some(v) = &volumes {
        tasks.spawn(rudder_controllers::volume_protection::run_volumes(client.clone(), v, stopped(&stop_rx)));
    }
    if let (true, Some(ep), Some(svc), Some(sl)) = (mirroring, &legacy_endpoints, &services, &slices) {
        let mirror = rudder_controllers::endpointslice_mirroring::run(client.clone(), ep, svc, sl, flags.mirroring_concurrent_service_endpoint_syncs, stopped(&stop_rx));
        tasks.spawn(mirror);
    }
    if let (Some(b), Some(p), Some(rs), Some(d), Some(rc), Some(ss)) = (&budgets, &pods, &replica_sets, &deployments, &replication_controllers, &stateful_sets) {
        let informers = rudder_controllers::disruption::Informers { budgets: b, pods: p, replica_sets: rs, deployments: d, replication_controllers: rc, stateful_sets: ss };
        tasks.spawn(rudder_controllers::disruption::run(client.clone(), informers, stopped(&stop_rx)));
    }
    if let (Some(q), Some(p)) = (&quotas, &pods) {
        let config = rudder_controllers::resourcequota::Config { concurrency: flags.concurrent_resource_quota_syncs, resync: flags.resource_quota_sync_period };
        tasks.spawn(rudder_controllers::resourcequota::run(client.clone(), q, p, config, stopped(&stop_rx)));
    }
    if let (Some(j), Some(p)) = (&jobs, &pods) {
        tasks.spawn(rudder_controllers::job::run(client.clone(), j, p, flags.concurrent_job_syncs, stopped(&stop_rx)));
    }
    if let (Some(c), Some(j)) = (&cron_jobs, &jobs) {
        tasks.spawn(rudder_controllers::cronjob::run(client.clone(), c, j, flags.concurrent_cron_job_syncs, stopped(&stop_rx)));
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
            Box::pin(wait_ready(claims.as_ref().map(Informer::store))),
            Box::pin(wait_ready(volumes.as_ref().map(Informer::store))),
            Box::pin(wait_ready(budgets.as_ref().map(Informer::store))),
            Box::pin(wait_ready(quotas.as_ref().map(Informer::store))),
            Box::pin(wait_ready(jobs.as_ref().map(Informer::store))),
            Box::pin(wait_ready(cron_jobs.as_ref().map(Informer::store))),
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

    let lease_lost = async {
        match &elector {
            Some(elector) => elector.hold().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = component_base::shutdown::signal_received() => {}
        () = lease_lost => {
            // Exit at once, like upstream: another instance may take over as soon as the lease runs
            // out, so no controller may keep writing through a graceful stop. A restart re-joins.
            leader_status.set_leading(false);
            bail!("leaderelection lost");
        }
    }
    readiness.set_ready(false);
    readiness_task.abort();
    let _ = stop_tx.send(true);
    if tokio::time::timeout(SHUTDOWN_GRACE, async { while tasks.join_next().await.is_some() {} }).await.is_err() {
        tracing::warn!("controllers did not stop in time; exiting anyway");
    }
    // Only now that no controller writes any more: a standby or the restarted process takes over at
    // once instead of waiting out the lease (upstream's ReleaseOnCancel).
    if let Some(elector) = &elector {
        elector.release().await;
        leader_status.set_leading(false);
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

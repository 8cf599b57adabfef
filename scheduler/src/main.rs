//! `rudder-scheduler`: assigns pending pods to nodes, like kube-scheduler with its default profile.

use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Parser;
use component_base::{CommonFlags, HealthServer, Readiness};
use kube::runtime::events::Reporter;
use kube::runtime::reflector;
use tokio::task::JoinSet;

use rudder_scheduler::cache::SchedulerCache;
use rudder_scheduler::eligibility::DEFAULT_SCHEDULER_NAME;
use rudder_scheduler::events::PodEvents;
use rudder_scheduler::framework::{Framework, Handle};
use rudder_scheduler::informers::{self, EventHandlers};
use rudder_scheduler::metrics::Metrics;
use rudder_scheduler::plugins::{DEFAULT_PLUGINS, in_tree_registry};
use rudder_scheduler::queue::{FLUSH_INTERVAL, SchedulingQueue};
use rudder_scheduler::scheduler::Scheduler;

#[derive(Parser, Debug)]
#[command(name = "rudder-scheduler", about = "Assigns pending pods to nodes (kube-scheduler replacement).")]
struct Flags {
    /// Only pods whose `spec.schedulerName` equals this are scheduled; also the events' reporting
    /// controller.
    #[arg(long, default_value = DEFAULT_SCHEDULER_NAME)]
    scheduler_name: String,

    #[command(flatten)]
    common: CommonFlags,
}

fn validate(flags: &Flags) -> anyhow::Result<()> {
    let name = &flags.scheduler_name;
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if !valid {
        bail!("--scheduler-name {name:?} is invalid: it must be a non-empty lowercase DNS subdomain");
    }
    Ok(())
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    component_base::logging::init(&flags.common.log_format);
    validate(&flags)?;
    let name = flags.scheduler_name.clone();

    let client = component_base::client::build(flags.common.kubeconfig.as_deref(), "rudder-scheduler").await?;
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::register(&mut registry, &name);
    let readiness = Readiness::default();
    let health = HealthServer::bind(flags.common.health_bind_address, readiness.clone(), registry)
        .await
        .with_context(|| format!("failed to bind --health-bind-address {}", flags.common.health_bind_address))?;
    tracing::info!(address = %health.local_addr()?, scheduler = %name, "serving /healthz, /readyz and /metrics");

    let framework = Framework::from_registry(&in_tree_registry(), DEFAULT_PLUGINS, &Handle { client: Some(client.clone()) })?;
    let queue = Arc::new(SchedulingQueue::new());
    let cache = Arc::new(SchedulerCache::new());
    let (node_store, node_writer) = reflector::store();
    let (pod_store, pod_writer) = reflector::store();
    let handlers = Arc::new(EventHandlers::new(name.clone(), queue.clone(), cache.clone()));
    let reporter = Reporter { controller: name.clone(), instance: Some(format!("{name}-{}", hostname())) };
    let scheduler = Arc::new(Scheduler {
        scheduler_name: name.clone(),
        framework: Arc::new(framework),
        queue: queue.clone(),
        cache,
        nodes: node_store.clone(),
        pods: pod_store.clone(),
        client: client.clone(),
        events: PodEvents::new(client.clone(), reporter),
        metrics: metrics.clone(),
    });

    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let health_task = tokio::spawn(health.serve(async move {
        let _ = stop_rx.changed().await;
    }));

    let mut tasks = JoinSet::new();
    let h = handlers.clone();
    tasks.spawn(informers::drive(informers::pod_stream(client.clone(), pod_writer), "pod", move |ev| h.on_pod(ev)));
    let h = handlers.clone();
    tasks.spawn(informers::drive(informers::node_stream(client.clone(), node_writer), "node", move |ev| h.on_node(ev)));
    let q = queue.clone();
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(FLUSH_INTERVAL);
        loop {
            tick.tick().await;
            q.flush();
            metrics.set_pending(q.lengths());
        }
    });
    let ready = readiness.clone();
    tasks.spawn(async move {
        // Scheduling on a partial view would overcommit nodes: wait for both caches first.
        if node_store.wait_until_ready().await.is_err() || pod_store.wait_until_ready().await.is_err() {
            tracing::error!("informer stopped before its cache synced");
            return;
        }
        ready.set_ready(true);
        tracing::info!("caches synced; scheduling");
        scheduler.run().await;
    });

    let outcome = tokio::select! {
        _ = component_base::shutdown::signal_received() => Ok(()),
        done = tasks.join_next() => Err(anyhow::anyhow!("a scheduler task stopped unexpectedly: {done:?}")),
    };
    readiness.set_ready(false);
    tasks.shutdown().await;
    let _ = stop_tx.send(true);
    health_task.await.context("health server task failed")?.context("health server failed")?;
    tracing::info!("stopped");
    outcome
}

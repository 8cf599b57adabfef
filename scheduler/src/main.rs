//! `rudder-scheduler`: assigns pending pods to nodes, like kube-scheduler: one process serves every
//! profile of its `KubeSchedulerConfiguration` (or the default profile), behind a leader-election lease.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use component_base::leader_election::{self, LeaderElector};
use component_base::{CommonFlags, HealthServer, Readiness};
use kube::runtime::events::Reporter;
use kube::runtime::reflector;
use tokio::task::JoinSet;

use rudder_scheduler::cache::SchedulerCache;
use rudder_scheduler::config::{self, Profile, duration, validate::is_dns_subdomain};
use rudder_scheduler::eligibility::DEFAULT_SCHEDULER_NAME;
use rudder_scheduler::events::PodEvents;
use rudder_scheduler::explain::{ExplainServer, ExplanationStore};
use rudder_scheduler::framework::{Framework, Handle};
use rudder_scheduler::informers::{self, EventHandlers};
use rudder_scheduler::metrics::Metrics;
use rudder_scheduler::queue::state::{DEFAULT_INITIAL_BACKOFF, DEFAULT_MAX_BACKOFF};
use rudder_scheduler::queue::{FLUSH_INTERVAL, QueueState, SchedulingQueue};
use rudder_scheduler::scheduler::{ProfileRuntime, ProfilesPreEnqueue, Scheduler};

#[derive(Parser, Debug)]
#[command(name = "rudder-scheduler", about = "Assigns pending pods to nodes (kube-scheduler replacement).")]
struct Flags {
    /// A `KubeSchedulerConfiguration` (kubescheduler.config.k8s.io/v1) file: profiles, plugins, plugin
    /// args, percentageOfNodesToScore, leaderElection. Without it, one default profile named by
    /// `--scheduler-name`.
    #[arg(long)]
    config: Option<PathBuf>,

    /// Without `--config`: only pods whose `spec.schedulerName` equals this are scheduled; also the
    /// events' reporting controller. Ignored when `--config` is given (its profiles name themselves).
    #[arg(long, default_value = DEFAULT_SCHEDULER_NAME)]
    scheduler_name: String,

    /// Take part in leader election and schedule only while holding the lease.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    leader_elect: bool,

    /// The Lease's name.
    #[arg(long, default_value = "kube-scheduler")]
    leader_elect_resource_name: String,

    /// The Lease's namespace.
    #[arg(long, default_value = "kube-system")]
    leader_elect_resource_namespace: String,

    /// How long standbys wait, after the last renewal they saw, before taking over.
    #[arg(long, default_value = "15s")]
    leader_elect_lease_duration: String,

    /// How long the leader keeps trying to renew before giving up (and exiting).
    #[arg(long, default_value = "10s")]
    leader_elect_renew_deadline: String,

    /// How often to try to acquire or renew.
    #[arg(long, default_value = "2s")]
    leader_elect_retry_period: String,

    /// Address serving `GET /explain/{namespace}/{pod}` (JSON; plain HTTP, keep it on loopback). Empty
    /// disables it.
    #[arg(long, default_value = "127.0.0.1:10261")]
    explain_bind_address: String,

    /// Publish a `SchedulingExplained` event (top candidates' scores, rejected nodes) for each pod bound.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    explain_events: bool,

    #[command(flatten)]
    common: CommonFlags,
}

/// Everything start-up validated.
struct Settings {
    profiles: Vec<Profile>,
    /// The queue's backoff after a failed attempt: initial, cap.
    pod_backoff: (Duration, Duration),
    lease: Option<leader_election::Config>,
    explain_address: Option<SocketAddr>,
    /// The flags with the configuration's `clientConnection` applied.
    client: component_base::CommonFlags,
}

fn positive_duration(flag: &str, value: &str) -> anyhow::Result<Duration> {
    duration::parse(value)
        .filter(|d| !d.is_zero())
        .with_context(|| format!("--{flag} {value:?} is invalid: it must be a positive duration such as \"15s\""))
}

fn settings(flags: &Flags) -> anyhow::Result<Settings> {
    let (profiles, le, pod_backoff, client) = match &flags.config {
        Some(path) => {
            let (cfg, profiles) = config::load(path)?;
            let backoff = cfg.pod_backoff();
            let client = cfg.client_connection.unwrap_or_default().apply(&flags.common);
            (profiles, cfg.leader_election, backoff, client)
        }
        None => {
            let name = &flags.scheduler_name;
            if !is_dns_subdomain(name) {
                bail!("--scheduler-name {name:?} is invalid: it must be a non-empty lowercase DNS subdomain");
            }
            (vec![Profile::default_named(name)], None, (DEFAULT_INITIAL_BACKOFF, DEFAULT_MAX_BACKOFF), flags.common.clone())
        }
    };
    // The configuration's leaderElection block wins over the flags for the fields it sets.
    let le = le.unwrap_or_default();
    let elect = le.leader_elect.unwrap_or(flags.leader_elect);
    let lease_duration = positive_duration(
        "leader-elect-lease-duration",
        le.lease_duration.as_deref().unwrap_or(&flags.leader_elect_lease_duration),
    )?;
    let renew_deadline = positive_duration(
        "leader-elect-renew-deadline",
        le.renew_deadline.as_deref().unwrap_or(&flags.leader_elect_renew_deadline),
    )?;
    let retry_period =
        positive_duration("leader-elect-retry-period", le.retry_period.as_deref().unwrap_or(&flags.leader_elect_retry_period))?;
    let name = le.resource_name.unwrap_or_else(|| flags.leader_elect_resource_name.clone());
    let namespace = le.resource_namespace.unwrap_or_else(|| flags.leader_elect_resource_namespace.clone());
    let identity = leader_election::unique_identity();
    let lease_config = leader_election::Config::new(&namespace, &name, identity, lease_duration, renew_deadline, retry_period)?;
    let lease = elect.then_some(lease_config);
    let explain_address = match flags.explain_bind_address.as_str() {
        "" => None,
        a => Some(a.parse().with_context(|| format!("--explain-bind-address {a:?} is invalid: it must be host:port"))?),
    };
    Ok(Settings { profiles, pod_backoff, lease, explain_address, client })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    component_base::logging::init(&flags.common.log_format);
    let settings = settings(&flags)?;
    let names: Vec<String> = settings.profiles.iter().map(|p| p.scheduler_name.clone()).collect();
    let first = names.first().cloned().unwrap_or_else(|| DEFAULT_SCHEDULER_NAME.into());

    let client = component_base::client::build(&settings.client, "rudder-scheduler").await?;
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::register(&mut registry, &first);
    let readiness = Readiness::default();
    let health = HealthServer::bind(flags.common.health_bind_address, readiness.clone(), registry)
        .await
        .with_context(|| format!("failed to bind --health-bind-address {}", flags.common.health_bind_address))?;
    tracing::info!(address = %health.local_addr()?, profiles = ?names, "serving /healthz, /readyz and /metrics");
    let explanations = Arc::new(ExplanationStore::default());
    let explain_server = match settings.explain_address {
        Some(addr) => {
            let s = ExplainServer::bind(addr, explanations.clone())
                .await
                .with_context(|| format!("failed to bind --explain-bind-address {addr}"))?;
            tracing::info!(address = %s.local_addr()?, "serving /explain/{{namespace}}/{{pod}}");
            Some(s)
        }
        None => None,
    };

    let handle = Handle { client: Some(client.clone()), ..Default::default() };
    let mut profiles = BTreeMap::new();
    for p in &settings.profiles {
        let framework = p.build(&handle).with_context(|| format!("failed to build profile {:?}", p.scheduler_name))?;
        let reporter = Reporter { controller: p.scheduler_name.clone(), instance: Some(format!("{}-{}", p.scheduler_name, leader_election::hostname())) };
        profiles.insert(p.scheduler_name.clone(), ProfileRuntime { framework: Arc::new(framework), events: PodEvents::new(client.clone(), reporter) });
    }
    let frameworks: BTreeMap<String, Arc<Framework>> = profiles.iter().map(|(n, p)| (n.clone(), p.framework.clone())).collect();
    // Validation made every profile's QueueSort plugin the same; the first one orders the shared queue.
    let sort = frameworks.values().next().and_then(|f| f.queue_sort()).context("no profile has a QueueSort plugin")?;
    let (initial_backoff, max_backoff) = settings.pod_backoff;
    let queue = Arc::new(SchedulingQueue::with_state(QueueState::with_plugins(
        initial_backoff,
        max_backoff,
        Arc::new(sort),
        Arc::new(ProfilesPreEnqueue(frameworks)),
    )));
    let cache = Arc::new(SchedulerCache::new());
    let (node_store, node_writer) = reflector::store();
    let (pod_store, pod_writer) = reflector::store();
    let handlers = Arc::new(EventHandlers::for_profiles(names, queue.clone(), cache.clone(), pod_store.clone(), node_store.clone()));
    let scheduler = Arc::new(Scheduler {
        profiles,
        queue: queue.clone(),
        cache: cache.clone(),
        pods: pod_store.clone(),
        client: client.clone(),
        metrics: metrics.clone(),
        explanations,
        explain_events: flags.explain_events,
        waiting_pods: handle.waiting_pods.clone(),
    });
    let elector = settings.lease.map(|cfg| Arc::new(LeaderElector::new(client.clone(), cfg)));

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.changed().await;
    };
    let health_task = tokio::spawn(health.serve(stopped(stop_rx.clone())));
    let explain_task = explain_server.map(|s| tokio::spawn(s.serve(stopped(stop_rx.clone()))));

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
    let leader = elector.clone();
    let cache_for_sync = cache.clone();
    tasks.spawn(async move {
        // Scheduling on a partial view would overcommit nodes: wait for both caches first (the stores, then
        // the scheduler's cache, which the handlers fill from them after each list).
        if node_store.wait_until_ready().await.is_err() || pod_store.wait_until_ready().await.is_err() {
            tracing::error!("informer stopped before its cache synced");
            return;
        }
        cache_for_sync.wait_until_synced().await;
        ready.set_ready(true);
        tracing::info!("caches synced");
        let Some(leader) = leader else {
            tracing::info!("leader election disabled; scheduling");
            scheduler.run().await;
            return;
        };
        leader.acquire().await;
        tracing::info!(identity = %leader.identity(), "leading; scheduling");
        tokio::select! {
            _ = scheduler.run() => {}
            _ = leader.hold() => tracing::error!("leaderelection lost"),
        }
    });

    let outcome = tokio::select! {
        _ = component_base::shutdown::signal_received() => Ok(()),
        done = tasks.join_next() => Err(anyhow::anyhow!("a scheduler task stopped unexpectedly: {done:?}")),
    };
    readiness.set_ready(false);
    tasks.shutdown().await;
    if let Some(e) = &elector {
        e.release().await;
    }
    let _ = stop_tx.send(true);
    health_task.await.context("health server task failed")?.context("health server failed")?;
    if let Some(t) = explain_task {
        t.await.context("explain server task failed")?.context("explain server failed")?;
    }
    tracing::info!("stopped");
    outcome
}

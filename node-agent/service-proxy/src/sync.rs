//! Keeping the table in step with the cluster: every change to a Service or EndpointSlice wakes
//! the sync loop, which re-renders from the caches and sends the kernel only the difference from
//! what it last applied. The first sync, a sync after a failure, and an hourly one replace the
//! whole table instead.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::sync::Notify;

use crate::config::Config;
use crate::nft::{self, Nft};
use crate::incremental::Rendered;
use crate::{model, render, transaction};

/// How often the whole table is rewritten even without failures (repairs outside edits).
const FULL_SYNC_INTERVAL: Duration = Duration::from_secs(3600);
/// Waits after a failed sync, doubling up to the cap.
const RETRY_MIN: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Sync timings and failures.
#[derive(Clone)]
pub struct Metrics {
    pub sync_duration: Histogram,
    pub sync_failures: Counter,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            sync_duration: Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            sync_failures: Counter::default(),
        };
        registry.register("proxy_sync_rules_duration_seconds", "Time to render and apply the nftables rules", m.sync_duration.clone());
        registry.register("proxy_sync_rules_failures", "Rule syncs nft rejected or that could not run", m.sync_failures.clone());
        m
    }
}

/// What one sync did.
#[derive(Debug)]
pub struct Outcome {
    pub full: bool,
    pub commands: usize,
    pub service_ports: usize,
}

/// Renders and applies; remembers what the kernel holds.
pub struct Syncer {
    config: Config,
    nft: Nft,
    base: String,
    /// What the kernel holds; None when unknown (before the first sync, after a failure).
    applied: Option<Rendered>,
    last_full: Option<Instant>,
}

impl Syncer {
    pub fn new(config: Config, nft: Nft) -> Self {
        let base = render::base(&config);
        Self { config, nft, base, applied: None, last_full: None }
    }

    /// Brings the table to the state of `services` and `slices`.
    pub async fn sync(&mut self, services: &[Arc<Service>], slices: &[Arc<EndpointSlice>]) -> Result<Outcome, nft::Error> {
        let ports = model::service_ports(services.iter().map(Arc::as_ref), slices.iter().map(Arc::as_ref));
        let service_ports = ports.len();
        let due = self.last_full.is_none_or(|t| t.elapsed() >= FULL_SYNC_INTERVAL);
        // Until the script is applied the kernel's state is unknown: a failure leaves `applied`
        // empty, so the next sync rewrites the whole table.
        let (script, full, rendered) = match self.applied.take() {
            Some(applied) if !due => {
                let (rendered, change) = applied.next(&self.config, ports);
                (transaction::diff(&change.old, &change.new), false, rendered)
            }
            _ => {
                let (rendered, _) = Rendered::default().next(&self.config, ports);
                (transaction::full(&self.base, &rendered.whole()), true, rendered)
            }
        };
        let commands = script.lines().count();
        if commands > 0 {
            self.nft.apply(&script).await?;
        }
        self.applied = Some(rendered);
        if full {
            self.last_full = Some(Instant::now());
        }
        Ok(Outcome { full, commands, service_ports })
    }
}

/// Watches `api` into a store, waking `wake` on every change.
fn watch<K>(api: Api<K>, wake: Arc<Notify>) -> (Store<K>, impl Stream<Item = ()> + Send)
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let kind = K::kind(&()).to_string();
    let events = reflector::reflector(writer, watcher(api, watcher::Config::default()).default_backoff()).map(move |event| match event {
        Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
        Ok(_) => wake.notify_one(),
        Err(error) => tracing::warn!(%kind, %error, "watch failed; retrying"),
    });
    (store, events)
}

/// Runs until `shutdown` resolves. Rules stay in place on exit, so traffic keeps flowing across
/// restarts; the next start replaces them.
pub async fn run(
    client: kube::Client,
    mut syncer: Syncer,
    metrics: Metrics,
    readiness: component_base::Readiness,
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    let wake = Arc::new(Notify::new());
    let (services, service_events) = watch(Api::<Service>::all(client.clone()), wake.clone());
    let (slices, slice_events) = watch(Api::<EndpointSlice>::all(client), wake.clone());
    let watches = tokio::spawn(futures::stream::select(service_events, slice_events).for_each(|()| async {}));
    let mut shutdown = std::pin::pin!(shutdown);

    tokio::select! {
        _ = async { tokio::join!(services.wait_until_ready(), slices.wait_until_ready()) } => {}
        () = &mut shutdown => { watches.abort(); return; }
    }
    let mut retry = RETRY_MIN;
    loop {
        let started = Instant::now();
        match syncer.sync(&services.state(), &slices.state()).await {
            Ok(outcome) => {
                let elapsed = started.elapsed();
                metrics.sync_duration.observe(elapsed.as_secs_f64());
                if outcome.commands > 0 {
                    tracing::info!(full = outcome.full, commands = outcome.commands, service_ports = outcome.service_ports, ?elapsed, "synced rules");
                }
                readiness.set_ready(true);
                retry = RETRY_MIN;
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(FULL_SYNC_INTERVAL) => {}
                    () = &mut shutdown => break,
                }
            }
            Err(error) => {
                metrics.sync_failures.inc();
                tracing::warn!(%error, ?retry, "rule sync failed; retrying with a full sync");
                tokio::select! {
                    () = tokio::time::sleep(retry) => {}
                    () = &mut shutdown => break,
                }
                retry = (retry * 2).min(RETRY_MAX);
            }
        }
    }
    watches.abort();
}

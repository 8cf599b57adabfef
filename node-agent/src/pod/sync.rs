//! Watches the pods bound to this node (the Node authorizer requires the `spec.nodeName` field selector),
//! keeps them in a reflector store, and hands each pod UID to its own worker. On the first complete list it
//! adopts what the runtime already runs and removes what belongs to pods no longer bound here.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::reflector::store::Writer;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::context::Context;
use super::lifecycle;
use super::runtime_config;
use super::worker::Worker;
use crate::runtime::Runtime;

/// How often the runtime is relisted to notice container state changes between syncs (upstream's PLEG).
const RELIST_PERIOD: Duration = Duration::from_secs(1);

struct Handle {
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

/// The set of pod workers.
pub struct PodSync<R> {
    ctx: Arc<Context<R>>,
    workers: HashMap<String, Handle>,
    shutdown: CancellationToken,
    /// The last relist: state by sandbox or container id, with its pod UID.
    relisted: HashMap<String, (String, String)>,
}

impl<R: Runtime> PodSync<R> {
    pub fn new(ctx: Arc<Context<R>>, shutdown: CancellationToken) -> Self {
        Self { ctx, workers: HashMap::new(), shutdown, relisted: HashMap::new() }
    }

    /// Wakes the pod's worker, starting one if the pod is in the store and has none.
    fn dispatch(&mut self, pod: &Arc<Pod>) {
        let Some(uid) = pod.metadata.uid.clone() else { return };
        if let Some(h) = self.workers.get(&uid)
            && !h.task.is_finished()
        {
            h.wake.notify_one();
            return;
        }
        let m = &pod.metadata;
        if self.ctx.pod(m.namespace.as_deref().unwrap_or_default(), m.name.as_deref().unwrap_or_default(), &uid).is_none() {
            return;
        }
        let wake = Arc::new(Notify::new());
        let worker = Worker::new(self.ctx.clone(), pod.clone());
        let task = tokio::spawn(worker.run(wake.clone(), self.shutdown.child_token()));
        self.workers.insert(uid, Handle { wake, task });
    }

    /// Wakes every worker and starts missing ones.
    fn resync(&mut self) {
        self.workers.retain(|_, h| !h.task.is_finished());
        for pod in self.ctx.store.state() {
            self.dispatch(&pod);
        }
        for h in self.workers.values() {
            h.wake.notify_one();
        }
        self.ctx.metrics.pod_workers.set(i64::try_from(self.workers.len()).unwrap_or(i64::MAX));
    }

    /// Relists the runtime and wakes the workers of pods whose sandboxes or containers changed state.
    async fn relist(&mut self) {
        let entries = match self.ctx.runtime.relist().await {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(error = %e, "runtime relist failed");
                return;
            }
        };
        let current: HashMap<String, (String, String)> = entries.into_iter().map(|e| (e.id, (e.pod_uid, e.state))).collect();
        let mut changed: HashSet<&str> = HashSet::new();
        for (id, (uid, state)) in &current {
            if self.relisted.get(id).is_none_or(|(_, old)| old != state) {
                changed.insert(uid);
            }
        }
        for (id, (uid, _)) in &self.relisted {
            if !current.contains_key(id) {
                changed.insert(uid);
            }
        }
        for uid in changed {
            if let Some(h) = self.workers.get(uid) {
                h.wake.notify_one();
            }
        }
        self.relisted = current;
    }

    /// Removes from the runtime and disk every pod the store does not know.
    async fn remove_orphans(&self) {
        let rt = self.ctx.runtime.as_ref();
        let (sandboxes, containers) = match (rt.list_sandboxes(None).await, rt.list_containers(None).await) {
            (Ok(s), Ok(c)) => (s, c),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "failed to list the runtime for orphaned pods; will retry at the next resync");
                return;
            }
        };
        let known: HashSet<String> = self.ctx.store.state().iter().filter_map(|p| p.metadata.uid.clone()).collect();
        let adopted: HashSet<&str> = sandboxes.iter().map(|s| s.pod_uid.as_str()).filter(|u| known.contains(*u)).collect();
        if !adopted.is_empty() {
            tracing::info!(pods = adopted.len(), "adopting pods found in the runtime");
        }
        for uid in lifecycle::orphans(&sandboxes, &containers, &known) {
            let observed = lifecycle::Observed {
                sandboxes: sandboxes.iter().filter(|s| s.pod_uid == uid).cloned().collect(),
                containers: containers.iter().filter(|c| c.pod_uid == uid).cloned().collect(),
                sandbox: None,
            };
            tracing::info!(uid = %uid, "removing pod no longer bound to this node");
            if let Err(e) = lifecycle::kill_pod(rt, &observed, 2, true).await {
                tracing::warn!(uid = %uid, error = %e, "failed to remove orphaned pod");
            }
            if let Some(s) = observed.sandboxes.first() {
                let logs = runtime_config::log_dir(&self.ctx.settings.root_dir, &s.pod_namespace, &s.pod_name, &uid);
                let _ = tokio::fs::remove_dir_all(logs).await;
            }
        }
        for uid in self.ctx.volumes.known_pod_dirs() {
            if !known.contains(&uid) {
                let _ = self.ctx.volumes.teardown(&uid).await;
            }
        }
    }

    /// Runs until `shutdown`: watch events and resyncs drive the workers. `synced` fires after the first
    /// complete list has been adopted.
    pub async fn run(mut self, writer: Writer<Pod>, sync_frequency: Duration, synced: impl FnOnce()) {
        let api: Api<Pod> = Api::all(self.ctx.client.clone());
        let config = watcher::Config::default().fields(&format!("spec.nodeName={}", self.ctx.settings.node_name));
        let stream = reflector(writer, watcher(api, config)).default_backoff();
        let mut stream = std::pin::pin!(stream);
        let mut ticker = tokio::time::interval(sync_frequency);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut relist = tokio::time::interval(RELIST_PERIOD);
        relist.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut synced = Some(synced);
        loop {
            tokio::select! {
                event = stream.next() => match event {
                    Some(Ok(watcher::Event::Apply(pod) | watcher::Event::Delete(pod))) if synced.is_none() => self.dispatch(&Arc::new(pod)),
                    Some(Ok(watcher::Event::InitDone)) => {
                        if let Some(done) = synced.take() {
                            self.remove_orphans().await;
                            done();
                            tracing::info!(pods = self.ctx.store.state().len(), "initial pod list synced");
                        }
                        self.resync();
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => tracing::warn!(error = %e, "pod watch failed; retrying"),
                    None => break,
                },
                _ = ticker.tick() => if synced.is_none() { self.resync() },
                _ = relist.tick() => if synced.is_none() { self.relist().await },
                () = self.shutdown.cancelled() => break,
            }
        }
        // Workers stop with the token; containers keep running, like upstream's kubelet.
        for (_, h) in self.workers.drain() {
            let _ = tokio::time::timeout(Duration::from_secs(5), h.task).await;
        }
    }
}

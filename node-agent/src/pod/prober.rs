//! The probes of one pod, run by its worker: a tokio task per running container instance and probe kind,
//! started when the worker sees the instance running and cancelled when it stops, is replaced, or the
//! pod goes. Tasks write the reported results into a map the worker reads when it builds the status, and
//! wake the worker whenever a reported result changes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, ObjectReference, Pod};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::plan::{instances_by_name, nanos_to_timestamp};
use super::probe::run::{self, Action};
use super::probe::{self, Kind, Outcome, Results, Settings, Tracker};
use crate::events::{self, PodEvents, reference};
use crate::metrics::Metrics;
use crate::runtime::{ContainerInfo, ContainerState, Runtime};

type Shared = Arc<Mutex<Results>>;

fn lock(results: &Shared) -> MutexGuard<'_, Results> {
    // A panicked probe task poisons the lock; the map itself is still consistent.
    results.lock().unwrap_or_else(|e| e.into_inner())
}

/// The probe tasks and results of one pod.
pub struct Prober<R> {
    runtime: Arc<R>,
    events: PodEvents,
    metrics: Metrics,
    results: Shared,
    changed: Arc<Notify>,
    /// Running (or finished) tasks by container id and probe kind.
    tasks: HashMap<(String, Kind), CancellationToken>,
}

impl<R: Runtime> Prober<R> {
    pub fn new(runtime: Arc<R>, events: PodEvents, metrics: Metrics) -> Self {
        Self { runtime, events, metrics, results: Arc::default(), changed: Arc::new(Notify::new()), tasks: HashMap::new() }
    }

    /// Notified whenever a reported result changes.
    pub fn changed(&self) -> Arc<Notify> {
        self.changed.clone()
    }

    /// The reported results of the probed instances, by container id.
    pub fn results(&self) -> Results {
        lock(&self.results).clone()
    }

    /// Probes the running latest instance of each app container that has probes, and stops probing
    /// everything else. `pod_host` is where probes without a host go (the pod IP).
    pub fn sync(&mut self, pod: &Pod, containers: &[ContainerInfo], pod_host: &str) {
        let specs = pod.spec.as_ref().map(|s| s.containers.as_slice()).unwrap_or_default();
        let instances = instances_by_name(containers);
        let mut wanted: HashSet<(String, Kind)> = HashSet::new();
        for spec in specs {
            let Some((latest, _)) = instances.get(spec.name.as_str()) else { continue };
            if latest.state != ContainerState::Running {
                continue;
            }
            // Wakes this instance's liveness and readiness probes the moment its startup probe succeeds,
            // rather than a period later (upstream triggers readiness at once too).
            let started = Arc::new(Notify::new());
            let adopted = probe::adopted(pod.status.as_ref(), spec, &latest.id);
            for kind in Kind::ALL {
                let Some(p) = kind.of(spec) else { continue };
                let key = (latest.id.clone(), kind);
                if !self.tasks.contains_key(&key) {
                    if let Some(v) = adopted.get(kind) {
                        lock(&self.results).entry(latest.id.clone()).or_default().set(kind, Some(v));
                    }
                    let token = CancellationToken::new();
                    let task = Task {
                        runtime: self.runtime.clone(),
                        events: self.events.clone(),
                        metrics: self.metrics.clone(),
                        results: self.results.clone(),
                        changed: self.changed.clone(),
                        token: token.clone(),
                        container_id: latest.id.clone(),
                        kind,
                        settings: Settings::new(kind, p),
                        initial: adopted.get(kind).or(kind.initial()),
                        started: started.clone(),
                        action: run::action(p, spec, pod_host),
                        started_at: nanos_to_timestamp(latest.started_at),
                        has_startup_probe: spec.startup_probe.is_some(),
                        reference: reference(pod, Some((&spec.name, false))),
                        container: spec.name.clone(),
                    };
                    tokio::spawn(task.run());
                    self.tasks.insert(key.clone(), token);
                }
                wanted.insert(key);
            }
        }
        self.tasks.retain(|key, token| {
            let keep = wanted.contains(key);
            if !keep {
                token.cancel();
            }
            keep
        });
        lock(&self.results).retain(|id, _| wanted.iter().any(|(i, _)| i == id));
    }

    /// How many probe tasks this pod has (running, or finished for an instance still running).
    pub fn tasks(&self) -> usize {
        self.tasks.len()
    }

    /// Stops every probe and forgets every result.
    pub fn stop(&mut self) {
        for (_, token) in self.tasks.drain() {
            token.cancel();
        }
        lock(&self.results).clear();
    }
}

impl<R> Drop for Prober<R> {
    fn drop(&mut self) {
        for token in self.tasks.values() {
            token.cancel();
        }
    }
}

/// The probe of one kind on one container instance.
struct Task<R> {
    runtime: Arc<R>,
    events: PodEvents,
    metrics: Metrics,
    results: Shared,
    changed: Arc<Notify>,
    token: CancellationToken,
    container_id: String,
    container: String,
    kind: Kind,
    settings: Settings,
    /// The reported result to start from.
    initial: Option<probe::Verdict>,
    started: Arc<Notify>,
    action: Result<Action, run::Error>,
    started_at: Option<Timestamp>,
    has_startup_probe: bool,
    reference: ObjectReference,
}

impl<R: Runtime> Task<R> {
    async fn run(self) {
        // initialDelaySeconds counts from the container's start, not from when the agent noticed it.
        let since_start = self.started_at.and_then(|t| Duration::try_from(Timestamp::now().duration_since(t)).ok()).unwrap_or_default();
        let delay = self.settings.initial_delay.saturating_sub(since_start);
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = self.token.cancelled() => return,
        }
        let mut tracker = Tracker::new(self.kind, &self.settings).reporting(self.initial);
        let mut ticker = tokio::time::interval(self.settings.period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut gated = false;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = self.started.notified(), if gated => {}
                () = self.token.cancelled() => return,
            }
            let startup = lock(&self.results).get(&self.container_id).and_then(|r| r.startup);
            gated = !probe::may_probe(self.kind, self.has_startup_probe, startup);
            if gated && self.kind == Kind::Startup {
                // Started already (an adopted instance): nothing left to do.
                return;
            }
            if gated {
                continue;
            }
            let outcome = tokio::select! {
                o = self.probe_once() => o,
                () = self.token.cancelled() => return,
            };
            self.metrics.probe_results.get_or_create(&vec![("probe_type".into(), self.kind.as_str().into()), ("result".into(), outcome.as_str().into())]).inc();
            match &outcome {
                Outcome::Failure(output) => {
                    self.events.warning(&self.reference, events::UNHEALTHY, format!("{} probe failed: {output}", self.kind)).await;
                }
                Outcome::Error(e) => {
                    self.events.warning(&self.reference, events::UNHEALTHY, format!("{} probe errored: {e}", self.kind)).await;
                }
                Outcome::Success(_) => {}
            }
            if self.token.is_cancelled() {
                return;
            }
            if let Some(verdict) = tracker.observe(&outcome) {
                tracing::debug!(container = %self.container, id = %self.container_id, probe = self.kind.as_str(), result = ?verdict, "probe result changed");
                lock(&self.results).entry(self.container_id.clone()).or_default().set(self.kind, Some(verdict));
                self.changed.notify_one();
                if self.kind == Kind::Startup && verdict == probe::Verdict::Success {
                    self.started.notify_waiters();
                }
            }
            if tracker.finished() {
                return;
            }
        }
    }

    async fn probe_once(&self) -> Outcome {
        match &self.action {
            Ok(action) => run::run(self.runtime.as_ref(), &self.container_id, action, self.settings.timeout).await,
            Err(e) => Outcome::Error(e.to_string()),
        }
    }
}

/// The grace period for killing an instance of `container` after its `kind` probe failed: the probe's
/// own, else the pod's; never under 2 s, like upstream.
pub fn kill_grace_seconds(pod: &Pod, container: &Container, kind: Kind) -> i64 {
    let probe = kind.of(container).and_then(|p| p.termination_grace_period_seconds);
    let pod_grace = pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds);
    probe.or(pod_grace).unwrap_or(30).max(2)
}

#[cfg(test)]
#[path = "prober_tests.rs"]
mod tests;

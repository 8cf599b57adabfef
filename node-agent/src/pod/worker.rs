//! One worker per pod UID: syncs serially whenever the pod changes, a resync ticks, or a back-off ends.
//! Each sync reads the desired pod from the watch cache and the observed pod from the runtime, runs the
//! plan, and writes the status if it changed. A deleted pod is killed, cleaned up and finalized.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, PodStatus};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::context::Context;
use super::lifecycle::{self, Observed};
use super::plan::{self, SandboxAction, Waiting};
use super::prober::Prober;
use super::state::{Observation, PodState};
use super::{deadline, dns, runtime_config, status, termination};
use crate::events::{self, reference};
use crate::runtime::{self, ContainerState, Runtime, SandboxState};
use crate::volumes::Prepared;

/// Failures of one sync; the worker logs them and retries.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to reach the container runtime: {0}")]
    Runtime(#[from] runtime::Error),
    #[error("failed to write pod status: {0}")]
    Status(#[source] kube::Error),
    #[error("failed to finalize the pod: {0}")]
    Delete(#[source] kube::Error),
    #[error("failed to clean up volumes: {0}")]
    Volumes(#[from] crate::volumes::Error),
}

/// What the worker does after a sync.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Wait for a change, a resync or this moment.
    At(Option<Timestamp>),
    /// The pod is gone for good: the worker ends.
    Done,
}

const RETRY: Duration = Duration::from_secs(10);
/// Configmaps and secrets of running pods are re-read this often.
const VOLUME_REFRESH: Duration = Duration::from_secs(60);

/// The per-pod state a worker keeps between syncs.
pub struct Worker<R> {
    pub(super) ctx: Arc<Context<R>>,
    pub(super) uid: String,
    pub(super) namespace: String,
    pub(super) name: String,
    pub(super) last_pod: Arc<Pod>,
    pub(super) crash_backoff: Backoff,
    pub(super) pull_backoff: Backoff,
    /// The last failure of each container that has no running instance (ErrImagePull, CreateContainerError…).
    pub(super) failures: BTreeMap<String, Waiting>,
    state: PodState,
    observed_once: bool,
    last_status: Option<PodStatus>,
    pub(super) prepared: Option<Prepared>,
    pub(super) volumes_at: Option<Instant>,
    first_seen: Instant,
    start_recorded: bool,
    pub(super) prober: Prober<R>,
    /// Why this agent ended the pod (DeadlineExceeded), for the status it writes from then on.
    terminal_reason: Option<(String, String)>,
}

impl<R: Runtime> Worker<R> {
    pub fn new(ctx: Arc<Context<R>>, pod: Arc<Pod>) -> Self {
        let m = &pod.metadata;
        Self {
            uid: m.uid.clone().unwrap_or_default(),
            namespace: m.namespace.clone().unwrap_or_default(),
            name: m.name.clone().unwrap_or_default(),
            last_pod: pod,
            crash_backoff: Backoff::default(),
            pull_backoff: Backoff::default(),
            failures: BTreeMap::new(),
            state: PodState::Pending,
            observed_once: false,
            last_status: None,
            prepared: None,
            volumes_at: None,
            first_seen: Instant::now(),
            start_recorded: false,
            prober: Prober::new(ctx.runtime.clone(), ctx.events.clone(), ctx.metrics.clone()),
            terminal_reason: None,
            ctx,
        }
    }

    /// Syncs until the pod is gone or `shutdown` fires (containers keep running then, like upstream).
    pub async fn run(mut self, wake: Arc<Notify>, shutdown: CancellationToken) {
        // Probe results changing (readiness above all) must reach the status promptly.
        let probes_changed = self.prober.changed();
        loop {
            self.ctx.metrics.pod_syncs.inc();
            let wait = match self.sync().await {
                Ok(Next::Done) => break,
                Ok(Next::At(at)) => at.map(|t| Duration::try_from(t.duration_since(Timestamp::now())).unwrap_or(Duration::ZERO)),
                Err(e) => {
                    self.ctx.metrics.pod_sync_errors.inc();
                    tracing::warn!(pod = %format!("{}/{}", self.namespace, self.name), error = %e, "pod sync failed");
                    Some(RETRY)
                }
            };
            let sleep = tokio::time::sleep(wait.unwrap_or(Duration::from_secs(3600)));
            tokio::select! {
                () = wake.notified() => {}
                () = probes_changed.notified() => {}
                () = sleep => {}
                () = shutdown.cancelled() => break,
            }
        }
    }

    fn move_to(&mut self, to: PodState) {
        if !self.observed_once {
            // The first sync adopts whatever the runtime shows (e.g. after an agent restart).
            self.observed_once = true;
            self.state = to;
            return;
        }
        match self.state.transition(to) {
            Ok(next) if next != self.state => {
                tracing::debug!(pod = %format!("{}/{}", self.namespace, self.name), from = %self.state, to = %next, "pod state");
                self.state = next;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(pod = %format!("{}/{}", self.namespace, self.name), error = %e, "unexpected pod state change");
                self.state = to;
            }
        }
    }

    pub(super) fn grace_seconds(&self, pod: Option<&Pod>) -> i64 {
        let pod = pod.unwrap_or(&self.last_pod);
        let grace = pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds))
            .unwrap_or(30);
        // Upstream never kills with less than 2 s, so even a forced delete gets a SIGTERM first.
        grace.max(2)
    }

    /// One sync of the pod.
    pub async fn sync(&mut self) -> Result<Next, Error> {
        let pod = self.ctx.pod(&self.namespace, &self.name, &self.uid);
        if let Some(p) = &pod {
            self.last_pod = p.clone();
        }
        match pod {
            Some(p) if p.metadata.deletion_timestamp.is_none() => self.sync_running(&p).await,
            other => self.terminate(other.as_deref()).await,
        }
    }

    async fn sync_running(&mut self, pod: &Pod) -> Result<Next, Error> {
        let rt = self.ctx.runtime.clone();
        let now = Timestamp::now();
        let observed = lifecycle::observe(rt.as_ref(), &self.uid).await?;
        let current_phase = pod.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
        if current_phase == "Succeeded" || current_phase == "Failed" {
            // Terminal pods never run again; make sure nothing does.
            self.prober.stop();
            if observed.containers.iter().any(|c| c.state == ContainerState::Running) || observed.sandboxes.iter().any(|s| s.state == SandboxState::Ready) {
                lifecycle::kill_pod(rt.as_ref(), &observed, self.grace_seconds(Some(pod)), false).await?;
            }
            let observed = lifecycle::observe(rt.as_ref(), &self.uid).await?;
            self.write_status(pod, &observed, &BTreeMap::new(), Some(current_phase == "Succeeded"), now).await?;
            return Ok(Next::At(None));
        }

        if deadline::deadline(pod).is_some_and(|at| at <= now) {
            return self.fail_past_deadline(pod, &observed, now).await;
        }
        let observed = self.apply_probes(pod, observed).await?;
        let p = plan::plan(&plan::Input {
            pod,
            sandboxes: &observed.sandboxes,
            containers: &observed.containers,
            crash_backoff: &self.crash_backoff,
            pull_backoff: &self.pull_backoff,
            now,
        });
        for id in &p.remove_containers {
            let _ = rt.remove_container(id).await;
        }
        for id in &p.remove_sandboxes {
            let _ = rt.remove_sandbox(id).await;
        }
        if p.finished.is_some() {
            lifecycle::kill_pod(rt.as_ref(), &observed, self.grace_seconds(Some(pod)), false).await?;
        }

        for (name, w) in &p.waiting {
            let init = pod.spec.as_ref().and_then(|s| s.init_containers.as_ref()).is_some_and(|l| l.iter().any(|c| &c.name == name));
            let r = reference(pod, Some((name, init)));
            let note = match w.reason.as_str() {
                "CrashLoopBackOff" => format!("Back-off restarting failed container {name} in pod {}_{}({})", self.name, self.namespace, self.uid),
                _ => w.message.clone(),
            };
            self.ctx.events.warning(&r, events::BACK_OFF, note).await;
        }
        let mut requeue = p.requeue_at;
        let sandbox = match &p.sandbox {
            SandboxAction::Keep(id) => {
                self.refresh_volumes(pod, &observed).await;
                observed.sandbox.clone().filter(|s| &s.id == id)
            }
            SandboxAction::Create { attempt } => self.create_sandbox(pod, *attempt, &observed, &p).await?,
            SandboxAction::Stop => None,
        };
        match &sandbox {
            Some(sandbox) => {
                let config = runtime_config::sandbox_config(pod, sandbox.attempt, &self.ctx.settings.root_dir, self.dns(pod));
                for start in &p.start {
                    self.start_container(pod, start, sandbox, &config, now).await;
                }
            }
            None if matches!(p.sandbox, SandboxAction::Create { .. }) => requeue = Some(now + RETRY),
            None => {}
        }
        if !self.failures.is_empty() {
            let retry = now + RETRY;
            requeue = Some(requeue.map_or(retry, |r| r.min(retry)));
        }
        if let Some(at) = deadline::deadline(pod) {
            requeue = Some(requeue.map_or(at, |r| r.min(at)));
        }

        let observed = lifecycle::observe(rt.as_ref(), &self.uid).await?;
        // Instances started just now get their probes at once.
        self.prober.sync(pod, &observed.containers, &self.probe_host(&observed));
        let mut waiting = self.failures.clone();
        waiting.extend(p.waiting.clone());
        self.write_status(pod, &observed, &waiting, p.finished, now).await?;
        Ok(Next::At(requeue))
    }

    /// Kills a pod whose activeDeadlineSeconds ran out and fails it with upstream's reason.
    async fn fail_past_deadline(&mut self, pod: &Pod, observed: &Observed, now: Timestamp) -> Result<Next, Error> {
        let rt = self.ctx.runtime.clone();
        self.prober.stop();
        self.ctx.events.warning(&reference(pod, None), deadline::REASON, deadline::MESSAGE.to_string()).await;
        lifecycle::kill_pod(rt.as_ref(), observed, self.grace_seconds(Some(pod)), false).await?;
        let observed = lifecycle::observe(rt.as_ref(), &self.uid).await?;
        self.terminal_reason = Some((deadline::REASON.to_string(), deadline::MESSAGE.to_string()));
        self.write_status(pod, &observed, &BTreeMap::new(), Some(false), now).await?;
        Ok(Next::At(None))
    }

    pub(super) fn dns(&self, pod: &Pod) -> k8s_cri::v1::DnsConfig {
        let s = &self.ctx.settings;
        dns::dns_config(pod, &s.cluster_dns, &s.cluster_domain, &s.host_resolv)
    }

    async fn refresh_volumes(&mut self, pod: &Pod, observed: &Observed) {
        let now = Timestamp::now();
        let token_due = self.prepared.as_ref().and_then(|p| p.token_refresh_at).is_some_and(|t| t <= now);
        let stale = self.volumes_at.is_none_or(|at| at.elapsed() >= VOLUME_REFRESH);
        if !(token_due || stale) {
            return;
        }
        let ips = observed.sandbox.as_ref().map(|s| s.ips.clone()).unwrap_or_default();
        match self.ctx.volumes.setup(pod, &self.ctx.node_facts(ips), now).await {
            Ok(prepared) => {
                self.prepared = Some(prepared);
                self.volumes_at = Some(Instant::now());
            }
            Err(e) => tracing::warn!(pod = %format!("{}/{}", self.namespace, self.name), error = %e, "failed to refresh volumes"),
        }
    }

    /// Writes the status if it differs from what the API (or this worker, last time) has.
    async fn write_status(
        &mut self,
        pod: &Pod,
        observed: &Observed,
        waiting: &BTreeMap<String, Waiting>,
        finished: Option<bool>,
        now: Timestamp,
    ) -> Result<(), Error> {
        let containers = termination::with_messages(pod, &observed.containers, &self.ctx.volumes.pod_dir(&self.uid), &self.ctx.settings.root_dir);
        let mut new = status::build(&status::Input {
            pod,
            sandbox: observed.sandbox.as_ref(),
            containers: &containers,
            waiting,
            finished,
            probes: &self.prober.results(),
            host_ip: &self.ctx.settings.node_ip,
            runtime_name: &self.ctx.runtime_name,
            now,
        });
        if let Some((reason, message)) = &self.terminal_reason {
            new.reason = Some(reason.clone());
            new.message = Some(message.clone());
        }
        let spec = pod.spec.clone().unwrap_or_default();
        let statuses = new.container_statuses.clone().unwrap_or_default();
        let all_running = !statuses.is_empty() && statuses.iter().all(|s| s.state.as_ref().is_some_and(|st| st.running.is_some()));
        if all_running && !self.start_recorded {
            self.start_recorded = true;
            self.ctx.metrics.pod_start_duration.observe(self.first_seen.elapsed().as_secs_f64());
        }
        let initialized = new.conditions.iter().flatten().any(|c| c.type_ == "Initialized" && c.status == "True");
        let app_started = spec.containers.iter().all(|c| observed.containers.iter().any(|i| i.name == c.name));
        self.move_to(PodState::observe(&Observation {
            finished: match new.phase.as_deref() {
                Some("Succeeded") => Some(true),
                Some("Failed") => Some(false),
                _ => None,
            },
            sandbox_ready: observed.sandbox.as_ref().is_some_and(|s| s.state == SandboxState::Ready),
            anything_created: !observed.is_empty(),
            initialized,
            app_started,
            ..Default::default()
        }));

        if pod.status.as_ref() == Some(&new) || self.last_status.as_ref() == Some(&new) {
            return Ok(());
        }
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
        // The UID in the patch makes it fail rather than touch a new pod of the same name.
        let body = serde_json::json!({ "metadata": { "uid": self.uid }, "status": new });
        match api.patch_status(&self.name, &PatchParams::default(), &Patch::Strategic(body)).await {
            Ok(_) => {
                self.last_status = Some(new);
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
            Err(e) => Err(Error::Status(e)),
        }
    }

    /// Kills the pod within its grace period, removes it from the runtime and disk, then deletes the API
    /// object for good (grace 0, pinned to the UID).
    async fn terminate(&mut self, pod: Option<&Pod>) -> Result<Next, Error> {
        self.move_to(PodState::Terminating);
        self.prober.stop();
        let rt = self.ctx.runtime.clone();
        let observed = lifecycle::observe(rt.as_ref(), &self.uid).await?;
        let shown = pod.unwrap_or(&self.last_pod);
        let init_names: Vec<String> =
            shown.spec.as_ref().and_then(|s| s.init_containers.as_ref()).map(|l| l.iter().map(|c| c.name.clone()).collect()).unwrap_or_default();
        for c in observed.containers.iter().filter(|c| c.state == ContainerState::Running) {
            let r = reference(shown, Some((&c.name, init_names.contains(&c.name))));
            self.ctx.events.normal(&r, events::KILLING, format!("Stopping container {}", c.name)).await;
        }
        let mut grace = self.grace_seconds(pod);
        if let Some(p) = pod {
            let host = observed.sandbox.as_ref().and_then(|s| s.ips.first().cloned()).unwrap_or_else(|| self.ctx.settings.node_ip.clone());
            grace = self.pre_stop(p, &observed, &host, grace).await;
        }
        lifecycle::kill_pod(rt.as_ref(), &observed, grace, true).await?;
        self.ctx.volumes.teardown(&self.uid).await?;
        let logs = runtime_config::log_dir(&self.ctx.settings.root_dir, &self.namespace, &self.name, &self.uid);
        let _ = tokio::fs::remove_dir_all(logs).await;
        self.move_to(PodState::Terminated);

        if pod.is_some() {
            let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions { uid: Some(self.uid.clone()), resource_version: None }),
                ..Default::default()
            };
            match api.delete(&self.name, &params).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                Err(e) => return Err(Error::Delete(e)),
            }
        }
        tracing::info!(pod = %format!("{}/{}", self.namespace, self.name), uid = %self.uid, "pod terminated and removed");
        Ok(Next::Done)
    }
}

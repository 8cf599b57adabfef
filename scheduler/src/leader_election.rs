//! Leader election over a `coordination.k8s.io/v1` Lease, like client-go's leaderelection: one instance
//! holds the lease and schedules; the others watch it and take over once it has not been renewed for a
//! full lease duration *as they observed it* (local clocks, so skew between hosts does not matter). The
//! holder gives up (and the process exits) when it cannot renew within the renew deadline, which is
//! shorter than the lease duration, so two instances never schedule at once.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};

/// Failures talking to the API about the lease.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading, creating or updating the Lease failed.
    #[error("failed to {action} lease {namespace}/{name}: {source}")]
    Api {
        action: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where the lease lives and how it is timed (upstream's defaults: 15s, 10s, 2s).
#[derive(Debug, Clone)]
pub struct Config {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

/// What to do with the lease as last read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// No lease yet: create it holding it.
    Create,
    /// We hold it: renew.
    Renew,
    /// Free, released or expired: take it over.
    TakeOver,
    /// Someone else holds a live lease: wait.
    Wait,
}

/// Decides from the lease spec and how long ago we first saw its current record unchanged.
pub fn decide(spec: Option<&LeaseSpec>, identity: &str, unchanged_for: Duration) -> Action {
    let Some(spec) = spec else { return Action::Create };
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder == identity {
        return Action::Renew;
    }
    let duration = Duration::from_secs(u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0));
    if holder.is_empty() || unchanged_for >= duration {
        Action::TakeOver
    } else {
        Action::Wait
    }
}

/// The part of a lease record whose change means the holder is alive: holder and renew time.
type Fingerprint = Option<(Option<String>, Option<MicroTime>)>;

fn fingerprint(spec: Option<&LeaseSpec>) -> Fingerprint {
    spec.map(|s| (s.holder_identity.clone(), s.renew_time.clone()))
}

pub struct LeaderElector {
    api: Api<Lease>,
    cfg: Config,
    /// The record last read and when we first saw it.
    observed: std::sync::Mutex<Option<(Fingerprint, Instant)>>,
}

impl LeaderElector {
    pub fn new(client: kube::Client, cfg: Config) -> Self {
        Self { api: Api::namespaced(client, &cfg.namespace), cfg, observed: std::sync::Mutex::new(None) }
    }

    pub fn identity(&self) -> &str {
        &self.cfg.identity
    }

    fn err(&self, action: &'static str) -> impl FnOnce(kube::Error) -> Error + '_ {
        move |source| Error::Api { action, namespace: self.cfg.namespace.clone(), name: self.cfg.name.clone(), source }
    }

    fn spec_now(&self, transitions: i32, acquire: Option<MicroTime>) -> LeaseSpec {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        LeaseSpec {
            holder_identity: Some(self.cfg.identity.clone()),
            lease_duration_seconds: Some(i32::try_from(self.cfg.lease_duration.as_secs()).unwrap_or(i32::MAX)),
            acquire_time: Some(acquire.unwrap_or_else(|| now.clone())),
            renew_time: Some(now),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// One attempt to acquire or renew; `Ok(true)` when we hold the lease afterwards.
    pub async fn try_acquire_or_renew(&self) -> Result<bool> {
        let current = self.api.get_opt(&self.cfg.name).await.map_err(self.err("get"))?;
        let spec = current.as_ref().and_then(|l| l.spec.as_ref());
        let fp = fingerprint(spec);
        let unchanged_for = {
            let mut obs = self.observed.lock().unwrap_or_else(|p| p.into_inner());
            match obs.as_ref() {
                Some((seen, at)) if *seen == fp => at.elapsed(),
                _ => {
                    *obs = Some((fp, Instant::now()));
                    Duration::ZERO
                }
            }
        };
        let action = decide(spec, &self.cfg.identity, unchanged_for);
        let transitions = spec.and_then(|s| s.lease_transitions).unwrap_or(0);
        let result = match (action, current) {
            (Action::Wait, _) => return Ok(false),
            (Action::Create, _) | (_, None) => {
                let lease = Lease {
                    metadata: ObjectMeta { name: Some(self.cfg.name.clone()), ..Default::default() },
                    spec: Some(self.spec_now(0, None)),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            (Action::Renew, Some(mut lease)) => {
                let acquired = lease.spec.as_ref().and_then(|s| s.acquire_time.clone());
                lease.spec = Some(self.spec_now(transitions, acquired));
                self.api.replace(&self.cfg.name, &PostParams::default(), &lease).await
            }
            (Action::TakeOver, Some(mut lease)) => {
                lease.spec = Some(self.spec_now(transitions.saturating_add(1), None));
                self.api.replace(&self.cfg.name, &PostParams::default(), &lease).await
            }
        };
        match result {
            Ok(_) => Ok(true),
            // Someone else wrote it first (resourceVersion conflict or a racing create): not ours.
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(self.err("update")(e)),
        }
    }

    /// Waits until this instance holds the lease.
    pub async fn acquire(&self) {
        let mut waiting_logged = false;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    tracing::info!(lease = %format!("{}/{}", self.cfg.namespace, self.cfg.name), identity = %self.cfg.identity, "successfully acquired lease");
                    return;
                }
                Ok(false) if !waiting_logged => {
                    tracing::info!(lease = %format!("{}/{}", self.cfg.namespace, self.cfg.name), "lease held by another instance; standing by");
                    waiting_logged = true;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "error acquiring lease"),
            }
            tokio::time::sleep(self.cfg.retry_period).await;
        }
    }

    /// Renews every retry period; returns when renewal has failed for longer than the renew deadline
    /// (leadership is lost).
    pub async fn hold(&self) {
        let mut last_renewed = Instant::now();
        loop {
            tokio::time::sleep(self.cfg.retry_period).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => last_renewed = Instant::now(),
                Ok(false) => {
                    tracing::error!("lease taken by another instance");
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "failed to renew lease"),
            }
            if last_renewed.elapsed() > self.cfg.renew_deadline {
                tracing::error!(deadline = ?self.cfg.renew_deadline, "failed to renew lease within the renew deadline");
                return;
            }
        }
    }

    /// Gives the lease up (holder cleared, 1s duration) so a standby takes over at once.
    pub async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.cfg.name).await else { return };
        if lease.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) != Some(self.cfg.identity.as_str()) {
            return;
        }
        if let Some(s) = lease.spec.as_mut() {
            s.holder_identity = None;
            s.lease_duration_seconds = Some(1);
            s.renew_time = Some(MicroTime(k8s_openapi::jiff::Timestamp::now()));
        }
        match self.api.replace(&self.cfg.name, &PostParams::default(), &lease).await {
            Ok(_) => tracing::info!("released lease"),
            Err(e) => tracing::warn!(error = %e, "failed to release lease"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(holder: &str, secs: i32) -> LeaseSpec {
        LeaseSpec { holder_identity: Some(holder.into()).filter(|h: &String| !h.is_empty()), lease_duration_seconds: Some(secs), ..Default::default() }
    }

    #[test]
    fn decisions() {
        let cases = [
            ("no lease", None, Duration::ZERO, Action::Create),
            ("ours", Some(held_by("me", 15)), Duration::from_secs(100), Action::Renew),
            ("other, fresh", Some(held_by("other", 15)), Duration::from_secs(3), Action::Wait),
            ("other, unrenewed for a full duration", Some(held_by("other", 15)), Duration::from_secs(15), Action::TakeOver),
            ("released", Some(held_by("", 1)), Duration::ZERO, Action::TakeOver),
        ];
        for (name, spec, unchanged, want) in cases {
            assert_eq!(decide(spec.as_ref(), "me", unchanged), want, "case {name}");
        }
    }
}

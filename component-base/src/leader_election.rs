//! Leader election over a `coordination.k8s.io/v1` Lease, like client-go's leaderelection: one instance
//! holds the lease and does the work; the others watch it and take over once it has not been renewed for
//! a full lease duration *as they observed it* (local clocks, so skew between hosts does not matter). The
//! holder gives up (and the process exits) when it cannot renew within the renew deadline, which is
//! shorter than the lease duration, so two instances never work at once. On a clean shutdown the holder
//! releases the lease (upstream's `ReleaseOnCancel`) so a restarted or standby instance takes over at once
//! instead of waiting out the lease.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};

/// Upstream's `--leader-elect-lease-duration` default.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// Upstream's `--leader-elect-renew-deadline` default.
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// Upstream's `--leader-elect-retry-period` default.
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);

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

/// An invalid leader-election setting; the message names the upstream flag.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A duration flag is zero.
    #[error("invalid --{flag}: it must be a positive duration such as \"15s\"")]
    NotPositive { flag: &'static str },
    /// The timings are not ordered retry period < renew deadline < lease duration.
    #[error("invalid --{flag} {value:?}: it must be less than --{limit_flag} {limit:?}")]
    NotLess { flag: &'static str, value: Duration, limit_flag: &'static str, limit: Duration },
    /// The Lease's name or namespace is not a valid object name.
    #[error("invalid --{flag} {value:?}: it must be a lowercase RFC 1123 {kind}")]
    BadName { flag: &'static str, value: String, kind: &'static str },
}

/// Where the lease lives and how it is timed (upstream's defaults: 15s, 10s, 2s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Config {
    /// A checked configuration: positive timings with retry period < renew deadline < lease duration
    /// (otherwise a leader could lose the lease before it notices), valid name and namespace.
    pub fn new(
        namespace: &str,
        name: &str,
        identity: String,
        lease_duration: Duration,
        renew_deadline: Duration,
        retry_period: Duration,
    ) -> Result<Self, ConfigError> {
        for (flag, value) in [
            ("leader-elect-lease-duration", lease_duration),
            ("leader-elect-renew-deadline", renew_deadline),
            ("leader-elect-retry-period", retry_period),
        ] {
            if value.is_zero() {
                return Err(ConfigError::NotPositive { flag });
            }
        }
        if renew_deadline >= lease_duration {
            return Err(ConfigError::NotLess {
                flag: "leader-elect-renew-deadline",
                value: renew_deadline,
                limit_flag: "leader-elect-lease-duration",
                limit: lease_duration,
            });
        }
        if retry_period >= renew_deadline {
            return Err(ConfigError::NotLess {
                flag: "leader-elect-retry-period",
                value: retry_period,
                limit_flag: "leader-elect-renew-deadline",
                limit: renew_deadline,
            });
        }
        if !is_dns_label(namespace) {
            return Err(ConfigError::BadName { flag: "leader-elect-resource-namespace", value: namespace.into(), kind: "label" });
        }
        if !is_dns_subdomain(name) {
            return Err(ConfigError::BadName { flag: "leader-elect-resource-name", value: name.into(), kind: "subdomain" });
        }
        Ok(Self { namespace: namespace.into(), name: name.into(), identity, lease_duration, renew_deadline, retry_period })
    }
}

fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// The machine's host name (`$HOSTNAME`, then the kernel's), `localhost` when neither is known.
pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// `<hostname>_<random UUID>` like upstream: unique per process, so two instances on one host (or a
/// restarted one) never mistake the other's lease for their own.
pub fn unique_identity() -> String {
    let r = rand::random::<u128>();
    let hex = format!("{r:032x}");
    format!("{}_{}-{}-{}-{}-{}", hostname(), &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
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
    if holder.is_empty() || unchanged_for >= recorded_duration(spec) {
        Action::TakeOver
    } else {
        Action::Wait
    }
}

/// The lease duration the holder wrote (none or negative: zero, i.e. expired).
fn recorded_duration(spec: &LeaseSpec) -> Duration {
    Duration::from_secs(spec.lease_duration_seconds.and_then(|d| u64::try_from(d).ok()).unwrap_or(0))
}

/// How long a standby sleeps before its next attempt: the retry period, or less when the observed lease
/// runs out sooner, so a takeover is not delayed by up to a further retry period.
pub fn next_attempt_in(retry_period: Duration, lease_duration: Duration, unchanged_for: Duration) -> Duration {
    lease_duration.saturating_sub(unchanged_for).min(retry_period)
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

    /// `namespace/name` of the lease, for logs.
    pub fn lease(&self) -> String {
        format!("{}/{}", self.cfg.namespace, self.cfg.name)
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
        self.attempt().await.map(|(held, _)| held)
    }

    /// [`Self::try_acquire_or_renew`], plus how long to wait before the next attempt when not held.
    async fn attempt(&self) -> Result<(bool, Duration)> {
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
        let held_for = spec.map(recorded_duration).unwrap_or_default();
        let result = match (action, current) {
            (Action::Wait, _) => return Ok((false, next_attempt_in(self.cfg.retry_period, held_for, unchanged_for))),
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
            Ok(_) => Ok((true, self.cfg.retry_period)),
            // Someone else wrote it first (resourceVersion conflict or a racing create): not ours.
            Err(kube::Error::Api(s)) if s.code == 409 => Ok((false, self.cfg.retry_period)),
            Err(e) => Err(self.err("update")(e)),
        }
    }

    /// Waits until this instance holds the lease.
    pub async fn acquire(&self) {
        let mut waiting_logged = false;
        loop {
            let mut wait = self.cfg.retry_period;
            match self.attempt().await {
                Ok((true, _)) => {
                    tracing::info!(lease = %self.lease(), identity = %self.cfg.identity, "successfully acquired lease");
                    return;
                }
                Ok((false, next)) => {
                    if !waiting_logged {
                        tracing::info!(lease = %self.lease(), "lease held by another instance; standing by");
                        waiting_logged = true;
                    }
                    wait = next;
                }
                Err(e) => tracing::warn!(error = %e, "error acquiring lease"),
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Renews every retry period; returns when renewal has failed for longer than the renew deadline
    /// (leadership is lost). A renewal that hangs counts as failed once the deadline passes.
    pub async fn hold(&self) {
        let mut last_renewed = Instant::now();
        loop {
            tokio::time::sleep(self.cfg.retry_period).await;
            let left = self.cfg.renew_deadline.saturating_sub(last_renewed.elapsed());
            match tokio::time::timeout(left, self.try_acquire_or_renew()).await {
                Ok(Ok(true)) => last_renewed = Instant::now(),
                Ok(Ok(false)) => {
                    tracing::error!(lease = %self.lease(), "lease taken by another instance");
                    return;
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "failed to renew lease"),
                Err(_) => tracing::warn!(lease = %self.lease(), "renewing the lease timed out"),
            }
            if last_renewed.elapsed() > self.cfg.renew_deadline {
                tracing::error!(deadline = ?self.cfg.renew_deadline, "failed to renew lease within the renew deadline");
                return;
            }
        }
    }

    /// Gives the lease up (holder cleared, 1s duration) so a standby takes over at once. Call it only
    /// after the work it guarded has stopped.
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
            Ok(_) => tracing::info!(lease = %self.lease(), "released lease"),
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
            ("no lease", None, "me", Duration::ZERO, Action::Create),
            ("ours", Some(held_by("me", 15)), "me", Duration::from_secs(100), Action::Renew),
            ("other, fresh", Some(held_by("other", 15)), "me", Duration::from_secs(3), Action::Wait),
            ("other, just under a full duration", Some(held_by("other", 15)), "me", Duration::from_millis(14_999), Action::Wait),
            ("other, unrenewed for a full duration", Some(held_by("other", 15)), "me", Duration::from_secs(15), Action::TakeOver),
            ("released", Some(held_by("", 1)), "me", Duration::ZERO, Action::TakeOver),
            ("no duration recorded", Some(held_by("other", 0)), "me", Duration::ZERO, Action::TakeOver),
            ("same host, other process", Some(held_by("host_b", 15)), "host_a", Duration::from_secs(1), Action::Wait),
        ];
        for (name, spec, identity, unchanged, want) in cases {
            assert_eq!(decide(spec.as_ref(), identity, unchanged), want, "case {name}");
        }
    }

    #[test]
    fn standbys_retry_no_later_than_expiry() {
        let cases = [
            ("fresh lease: the retry period", s(15), s(0), s(2)),
            ("expires before the next retry: at expiry", s(15), Duration::from_millis(14_500), Duration::from_millis(500)),
            ("already expired: at once", s(15), s(16), Duration::ZERO),
            ("released (1s): within the second", s(1), s(0), s(1)),
        ];
        for (case, duration, unchanged, want) in cases {
            assert_eq!(next_attempt_in(s(2), duration, unchanged), want, "case {case}");
        }
    }

    #[test]
    fn fingerprint_changes_on_renewal_only() {
        let mut a = held_by("other", 15);
        let same = a.clone();
        assert_eq!(fingerprint(Some(&a)), fingerprint(Some(&same)), "an unchanged record keeps its fingerprint");
        a.renew_time = Some(MicroTime(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        assert_ne!(fingerprint(Some(&a)), fingerprint(Some(&same)), "a renewal changes it");
    }

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn config_validation() {
        // (case, namespace, name, lease duration, renew deadline, retry period, flag named by the error)
        type Case<'a> = (&'a str, &'a str, &'a str, Duration, Duration, Duration, Option<&'a str>);
        let cases: [Case; 9] = [
            ("upstream defaults", "kube-system", "rudder-controller-manager", s(15), s(10), s(2), None),
            ("zero lease", "kube-system", "x", s(0), s(10), s(2), Some("--leader-elect-lease-duration")),
            ("zero renew", "kube-system", "x", s(15), s(0), s(2), Some("--leader-elect-renew-deadline")),
            ("zero retry", "kube-system", "x", s(15), s(10), s(0), Some("--leader-elect-retry-period")),
            ("renew equals lease", "kube-system", "x", s(10), s(10), s(2), Some("--leader-elect-renew-deadline")),
            ("retry above renew", "kube-system", "x", s(15), s(10), s(11), Some("--leader-elect-retry-period")),
            ("upper-case name", "kube-system", "KCM", s(15), s(10), s(2), Some("--leader-elect-resource-name")),
            ("dotted namespace", "kube.system", "x", s(15), s(10), s(2), Some("--leader-elect-resource-namespace")),
            ("empty name", "kube-system", "", s(15), s(10), s(2), Some("--leader-elect-resource-name")),
        ];
        for (case, ns, name, lease, renew, retry, want) in cases {
            let got = Config::new(ns, name, "me".into(), lease, renew, retry);
            match (got, want) {
                (Ok(cfg), None) => assert_eq!((cfg.namespace.as_str(), cfg.name.as_str()), (ns, name), "case {case}"),
                (Err(e), Some(flag)) => assert!(e.to_string().starts_with(&format!("invalid {flag}")), "case {case}: {e}"),
                (got, want) => panic!("case {case}: got {got:?}, want error naming {want:?}"),
            }
        }
    }

    #[test]
    fn identities_are_host_and_unique_suffix() {
        let (a, b) = (unique_identity(), unique_identity());
        assert_ne!(a, b, "two processes on one host get different identities");
        let host = hostname();
        let suffix = a.strip_prefix(&format!("{host}_")).unwrap_or_default();
        assert_eq!(suffix.len(), 36, "a UUID-shaped suffix: {a}");
        assert_eq!(suffix.matches('-').count(), 4, "a UUID-shaped suffix: {a}");
    }
}

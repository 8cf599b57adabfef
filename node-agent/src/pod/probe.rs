//! Container probes as upstream's kubelet understands them: the policy only (defaults, initial results,
//! consecutive-result thresholds, startup gating, and what the results mean for a container), as pure
//! functions. [`run`] carries out one probe; the per-pod [`super::prober`] schedules them.

pub mod grpc;
pub mod http;
pub mod run;

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, PodStatus, Probe};

/// The three probes a container may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Startup,
    Liveness,
    Readiness,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Startup, Kind::Liveness, Kind::Readiness];

    /// The probe of this kind in the container spec.
    pub fn of(self, container: &Container) -> Option<&Probe> {
        match self {
            Kind::Startup => container.startup_probe.as_ref(),
            Kind::Liveness => container.liveness_probe.as_ref(),
            Kind::Readiness => container.readiness_probe.as_ref(),
        }
    }

    /// The result before the first conclusive probe: a container is not ready until proven so, alive
    /// until proven dead, and neither started nor failed at startup.
    pub fn initial(self) -> Option<Verdict> {
        match self {
            Kind::Startup => None,
            Kind::Liveness => Some(Verdict::Success),
            Kind::Readiness => Some(Verdict::Failure),
        }
    }

    /// Lower-case, for metrics labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Startup => "startup",
            Kind::Liveness => "liveness",
            Kind::Readiness => "readiness",
        }
    }
}

impl fmt::Display for Kind {
    /// Capitalised, as in upstream's event notes ("Readiness probe failed: …").
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Startup => "Startup",
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
        })
    }
}

/// A probe result that counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Success,
    Failure,
}

/// What one probe run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success(String),
    /// The container answered badly (or not at all); the text says how.
    Failure(String),
    /// The probe could not be carried out (bad port name, runtime error); upstream throws such results
    /// away, so they count neither way.
    Error(String),
}

impl Outcome {
    pub fn verdict(&self) -> Option<Verdict> {
        match self {
            Outcome::Success(_) => Some(Verdict::Success),
            Outcome::Failure(_) => Some(Verdict::Failure),
            Outcome::Error(_) => None,
        }
    }

    /// A label for the probe metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Success(_) => "successful",
            Outcome::Failure(_) => "failed",
            Outcome::Error(_) => "unknown",
        }
    }
}

/// The timing and thresholds of one probe, with upstream's defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
    /// Overrides the pod's grace period when this probe's failure kills the container.
    pub termination_grace_seconds: Option<i64>,
}

fn seconds(value: Option<i32>, default: u64, min: u64) -> Duration {
    Duration::from_secs(value.and_then(|v| u64::try_from(v).ok()).unwrap_or(default).max(min))
}

fn count(value: Option<i32>, default: u32) -> u32 {
    value.and_then(|v| u32::try_from(v).ok()).filter(|v| *v > 0).unwrap_or(default)
}

impl Settings {
    /// The settings of `probe`; values the API server would have rejected fall back to the defaults.
    pub fn new(kind: Kind, probe: &Probe) -> Self {
        Self {
            initial_delay: seconds(probe.initial_delay_seconds, 0, 0),
            period: seconds(probe.period_seconds, 10, 1),
            timeout: seconds(probe.timeout_seconds, 1, 1),
            // Liveness and startup probes must use 1 (API validation); enforce it anyway.
            success_threshold: if kind == Kind::Readiness { count(probe.success_threshold, 1) } else { 1 },
            failure_threshold: count(probe.failure_threshold, 3),
            termination_grace_seconds: probe.termination_grace_period_seconds.filter(|s| *s >= 0),
        }
    }
}

/// Turns a stream of probe outcomes into the reported result: the result changes only after
/// `successThreshold` consecutive successes or `failureThreshold` consecutive failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracker {
    kind: Kind,
    success_threshold: u32,
    failure_threshold: u32,
    last: Option<Verdict>,
    run: u32,
    reported: Option<Verdict>,
}

impl Tracker {
    pub fn new(kind: Kind, settings: &Settings) -> Self {
        Self {
            kind,
            success_threshold: settings.success_threshold,
            failure_threshold: settings.failure_threshold,
            last: None,
            run: 0,
            reported: kind.initial(),
        }
    }

    /// Starts from `reported` instead of the kind's initial result (an instance adopted after a restart
    /// of the agent).
    #[must_use]
    pub fn reporting(mut self, reported: Option<Verdict>) -> Self {
        self.reported = reported;
        self
    }

    /// The result reported now.
    pub fn reported(&self) -> Option<Verdict> {
        self.reported
    }

    /// Counts one outcome; returns the new reported result when it changed.
    pub fn observe(&mut self, outcome: &Outcome) -> Option<Verdict> {
        let verdict = outcome.verdict()?;
        if self.last == Some(verdict) {
            self.run = self.run.saturating_add(1);
        } else {
            self.last = Some(verdict);
            self.run = 1;
        }
        let threshold = match verdict {
            Verdict::Success => self.success_threshold,
            Verdict::Failure => self.failure_threshold,
        };
        if self.run < threshold || self.reported == Some(verdict) {
            return None;
        }
        self.reported = Some(verdict);
        Some(verdict)
    }

    /// Whether probing this container instance is over: a startup probe stops once it succeeded, and a
    /// failed liveness or startup probe waits for the instance to be killed (upstream's "on hold").
    pub fn finished(&self) -> bool {
        matches!((self.kind, self.reported), (Kind::Startup, Some(_)) | (Kind::Liveness, Some(Verdict::Failure)))
    }
}

/// Whether a probe of `kind` may run now: liveness and readiness wait until the startup probe (if any)
/// has succeeded; the startup probe runs until then.
pub fn may_probe(kind: Kind, has_startup_probe: bool, startup: Option<Verdict>) -> bool {
    let started = !has_startup_probe || startup == Some(Verdict::Success);
    match kind {
        Kind::Startup => !started,
        Kind::Liveness | Kind::Readiness => started,
    }
}

/// The reported results of one container instance; `None` means no conclusive result yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InstanceResults {
    pub startup: Option<Verdict>,
    pub liveness: Option<Verdict>,
    pub readiness: Option<Verdict>,
}

impl InstanceResults {
    pub fn get(&self, kind: Kind) -> Option<Verdict> {
        match kind {
            Kind::Startup => self.startup,
            Kind::Liveness => self.liveness,
            Kind::Readiness => self.readiness,
        }
    }

    pub fn set(&mut self, kind: Kind, verdict: Option<Verdict>) {
        match kind {
            Kind::Startup => self.startup = verdict,
            Kind::Liveness => self.liveness = verdict,
            Kind::Readiness => self.readiness = verdict,
        }
    }
}

/// Reported results by container id.
pub type Results = HashMap<String, InstanceResults>;

/// The results to start from for instance `id` of `container`: what the API status already says about
/// that very instance (the agent restarted under it), so a ready container does not flap to unready
/// until its probes run again. A new instance has no status yet and starts from the initial results.
pub fn adopted(status: Option<&PodStatus>, container: &Container, id: &str) -> InstanceResults {
    let same_instance = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|l| l.iter().find(|c| c.name == container.name))
        .filter(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
        .filter(|c| c.container_id.as_deref().and_then(|i| i.rsplit("://").next()) == Some(id));
    let Some(cs) = same_instance else { return InstanceResults::default() };
    let started = cs.started == Some(true);
    let mut r = InstanceResults::default();
    if container.startup_probe.is_some() && started {
        r.startup = Some(Verdict::Success);
    }
    if container.readiness_probe.is_some() && started && cs.ready {
        r.readiness = Some(Verdict::Success);
    }
    r
}

/// What the probe results mean for one container instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effects {
    /// `status.containerStatuses[].started`.
    pub started: bool,
    /// `status.containerStatuses[].ready`.
    pub ready: bool,
    /// The probe whose failure condemns the instance to be killed (and restarted per restartPolicy).
    pub kill: Option<Kind>,
}

/// The effects of `results` on an instance of `container`; a container without probes is started and
/// ready as soon as it runs.
pub fn effects(container: &Container, running: bool, results: Option<&InstanceResults>) -> Effects {
    // None: the container has no such probe; Some(None): no result (startup before it concluded).
    let result = |kind: Kind| kind.of(container).map(|_| results.and_then(|r| r.get(kind)).or(kind.initial()));
    let startup = result(Kind::Startup);
    let started = running && startup.is_none_or(|r| r == Some(Verdict::Success));
    let ready = started && result(Kind::Readiness).is_none_or(|r| r == Some(Verdict::Success));
    let kill = if !running {
        None
    } else if startup == Some(Some(Verdict::Failure)) {
        Some(Kind::Startup)
    } else if started && result(Kind::Liveness) == Some(Some(Verdict::Failure)) {
        Some(Kind::Liveness)
    } else {
        None
    };
    Effects { started, ready, kill }
}

#[cfg(test)]
#[path = "probe_tests.rs"]
mod tests;

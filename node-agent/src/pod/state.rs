//! The pod lifecycle as an explicit state machine. A worker derives the state from what it observes at
//! each sync ([`PodState::observe`]) and moves only along [`TRANSITIONS`]; anything else is a bug worth a
//! log line, not a crash.

use std::fmt;

/// Where a pod is in its life on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PodState {
    /// Seen, nothing created yet.
    Pending,
    /// The sandbox, images or containers are being set up (kubectl shows ContainerCreating, or the waiting
    /// reason: ErrImagePull, ImagePullBackOff, …).
    ContainerCreating,
    /// Init containers run one after the other.
    Initializing,
    /// The sandbox is up and the app containers were started (some may be in CrashLoopBackOff).
    Running,
    /// Every container exited and none will restart; all succeeded.
    Succeeded,
    /// Every container exited and none will restart; some failed.
    Failed,
    /// Deleted in the API: containers are being stopped within the grace period.
    Terminating,
    /// Containers, sandbox and volumes are gone; the API object may be finalized.
    Terminated,
}

use PodState::*;

/// Every allowed move. Staying in the same state is always allowed.
pub const TRANSITIONS: &[(PodState, PodState)] = &[
    (Pending, ContainerCreating),
    // One sync may create the sandbox and start containers at once.
    (Pending, Initializing),
    (Pending, Running),
    (Pending, Succeeded),
    (Pending, Terminating),
    (Pending, Failed),
    (ContainerCreating, Initializing),
    (ContainerCreating, Running),
    (ContainerCreating, Succeeded),
    (ContainerCreating, Failed),
    (ContainerCreating, Terminating),
    (Initializing, ContainerCreating),
    (Initializing, Running),
    (Initializing, Failed),
    (Initializing, Terminating),
    // A lost sandbox is recreated: back to creating.
    (Running, ContainerCreating),
    (Running, Succeeded),
    (Running, Failed),
    (Running, Terminating),
    (Succeeded, Terminating),
    (Failed, Terminating),
    (Succeeded, Terminated),
    (Failed, Terminated),
    (Terminating, Terminated),
];

/// A move the machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("failed to move pod from {from} to {to}: not an allowed transition")]
pub struct InvalidTransition {
    pub from: PodState,
    pub to: PodState,
}

impl PodState {
    /// Whether the pod may go from `self` to `to`.
    pub fn can_move_to(self, to: PodState) -> bool {
        self == to || TRANSITIONS.contains(&(self, to))
    }

    /// Moves to `to` if allowed.
    pub fn transition(self, to: PodState) -> Result<PodState, InvalidTransition> {
        if self.can_move_to(to) { Ok(to) } else { Err(InvalidTransition { from: self, to }) }
    }

    /// The state an observation corresponds to.
    pub fn observe(o: &Observation) -> PodState {
        if o.removed {
            Terminated
        } else if o.deleting {
            Terminating
        } else if let Some(succeeded) = o.finished {
            if succeeded { Succeeded } else { Failed }
        } else if !o.sandbox_ready {
            if o.anything_created { ContainerCreating } else { Pending }
        } else if !o.initialized {
            Initializing
        } else if o.app_started {
            Running
        } else {
            ContainerCreating
        }
    }

    /// Whether nothing will run any more for this pod.
    pub fn is_terminal(self) -> bool {
        matches!(self, Succeeded | Failed | Terminated)
    }
}

/// The facts a state is derived from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Observation {
    /// The runtime holds nothing of the pod any more after a deletion.
    pub removed: bool,
    /// The pod has a deletion timestamp (or is gone from the API).
    pub deleting: bool,
    /// `Some(all succeeded)` once every container has exited for good.
    pub finished: Option<bool>,
    pub sandbox_ready: bool,
    /// A sandbox or container exists, or creating one was attempted.
    pub anything_created: bool,
    /// Every init container succeeded.
    pub initialized: bool,
    /// Every app container was started at least once.
    pub app_started: bool,
}

impl fmt::Display for PodState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_and_forbidden_moves() {
        struct Case {
            name: &'static str,
            from: PodState,
            to: PodState,
            ok: bool,
        }
        for case in [
            Case { name: "creating to running", from: ContainerCreating, to: Running, ok: true },
            Case { name: "running to terminating", from: Running, to: Terminating, ok: true },
            Case { name: "terminating never comes back", from: Terminating, to: Running, ok: false },
            Case { name: "terminated is final", from: Terminated, to: Pending, ok: false },
            Case { name: "succeeded never restarts", from: Succeeded, to: Running, ok: false },
            Case { name: "lost sandbox is recreated", from: Running, to: ContainerCreating, ok: true },
            Case { name: "staying put", from: Running, to: Running, ok: true },
        ] {
            assert_eq!(case.from.transition(case.to).is_ok(), case.ok, "{}", case.name);
        }
    }

    #[test]
    fn observation_to_state() {
        let base = Observation { sandbox_ready: true, anything_created: true, initialized: true, app_started: true, ..Default::default() };
        struct Case {
            name: &'static str,
            o: Observation,
            want: PodState,
        }
        for case in [
            Case { name: "all up", o: base, want: Running },
            Case { name: "nothing yet", o: Observation::default(), want: Pending },
            Case { name: "sandbox coming", o: Observation { sandbox_ready: false, ..base }, want: ContainerCreating },
            Case { name: "init running", o: Observation { initialized: false, ..base }, want: Initializing },
            Case { name: "deleted", o: Observation { deleting: true, ..base }, want: Terminating },
            Case { name: "cleaned up", o: Observation { deleting: true, removed: true, ..base }, want: Terminated },
            Case { name: "done well", o: Observation { finished: Some(true), ..base }, want: Succeeded },
            Case { name: "done badly", o: Observation { finished: Some(false), ..base }, want: Failed },
        ] {
            assert_eq!(PodState::observe(&case.o), case.want, "{}", case.name);
        }
    }
}

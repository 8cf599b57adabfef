//! What to do next for one pod: a pure function of the pod spec, what the runtime holds and the back-off
//! state, in the spirit of upstream's computePodActions. The worker carries the plan out.

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, Pod};

use super::backoff::{self, Backoff};
use crate::runtime::{ContainerInfo, ContainerState, SandboxInfo, SandboxState};

/// Why a container is not running, as shown in its `state.waiting`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
}

/// What to do with the pod's sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxAction {
    /// The ready sandbox with this id stays.
    Keep(String),
    /// Create a sandbox for this attempt (after stopping what runs in the old one).
    Create { attempt: u32 },
    /// Nothing will run any more: stop the sandbox.
    Stop,
}

/// One container instance to create and start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub name: String,
    pub init: bool,
    /// The restart count of the new instance.
    pub attempt: u32,
    /// When the instance it replaces exited (a restart counts towards the crash back-off).
    pub restart_after: Option<Timestamp>,
    /// The instance it replaces ran long enough that the crash back-off starts over.
    pub reset_backoff: bool,
}

/// The actions of one sync, in the order the worker runs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub sandbox: SandboxAction,
    /// Running container ids to stop (their sandbox is being replaced, or the pod finished).
    pub kill: Vec<String>,
    pub start: Vec<Start>,
    /// Containers that wait on a back-off, by name.
    pub waiting: BTreeMap<String, Waiting>,
    /// Exited instances older than the previous one of each container, and dead sandboxes.
    pub remove_containers: Vec<String>,
    pub remove_sandboxes: Vec<String>,
    /// `Some(all succeeded)` once every container exited for good.
    pub finished: Option<bool>,
    /// When to look again even if nothing changes (end of a back-off).
    pub requeue_at: Option<Timestamp>,
}

/// The latest and the previous instance of each container, by name.
pub fn instances_by_name(containers: &[ContainerInfo]) -> HashMap<&str, (&ContainerInfo, Option<&ContainerInfo>)> {
    let mut sorted: Vec<&ContainerInfo> = containers.iter().collect();
    sorted.sort_by_key(|c| (c.attempt, c.created_at));
    let mut out: HashMap<&str, (&ContainerInfo, Option<&ContainerInfo>)> = HashMap::new();
    for c in sorted {
        let previous = out.get(c.name.as_str()).map(|(latest, _)| *latest);
        out.insert(c.name.as_str(), (c, previous));
    }
    out
}

/// The newest sandbox of the pod.
pub fn latest_sandbox(sandboxes: &[SandboxInfo]) -> Option<&SandboxInfo> {
    sandboxes.iter().max_by_key(|s| (s.attempt, s.created_at))
}

fn restart_policy(pod: &Pod) -> &str {
    pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()).unwrap_or("Always")
}

fn should_restart(policy: &str, exit_code: i32) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

/// Whether an instance that ran `nanos` earned a fresh back-off.
fn ran_long(nanos: i64) -> bool {
    u64::try_from(nanos).is_ok_and(|n| std::time::Duration::from_nanos(n) >= backoff::RESET_AFTER_RUNNING)
}

pub fn nanos_to_timestamp(nanos: i64) -> Option<Timestamp> {
    (nanos > 0).then(|| Timestamp::from_nanosecond(i128::from(nanos)).ok()).flatten()
}

/// Inputs of [`plan`].
pub struct Input<'a> {
    pub pod: &'a Pod,
    pub sandboxes: &'a [SandboxInfo],
    pub containers: &'a [ContainerInfo],
    pub crash_backoff: &'a Backoff,
    pub pull_backoff: &'a Backoff,
    pub now: Timestamp,
}

struct Builder<'a> {
    input: &'a Input<'a>,
    plan: Plan,
}

impl Builder<'_> {
    fn wait_until(&mut self, at: Timestamp) {
        self.plan.requeue_at = Some(self.plan.requeue_at.map_or(at, |r| r.min(at)));
    }

    /// Decides whether `container` gets a new instance now; returns false when it waits.
    fn start_or_wait(&mut self, container: &Container, init: bool, latest: Option<&ContainerInfo>) -> bool {
        let pod = self.input.pod;
        let image = container.image.clone().unwrap_or_default();
        if let Some((until, _)) = self.input.pull_backoff.in_backoff(&image, self.input.now) {
            let message = format!("Back-off pulling image \"{image}\"");
            self.plan.waiting.insert(container.name.clone(), Waiting { reason: "ImagePullBackOff".into(), message });
            self.wait_until(until);
            return false;
        }
        let restart_after = latest.and_then(|l| nanos_to_timestamp(l.finished_at));
        let ran_for = latest.map_or(0, |l| l.finished_at.saturating_sub(l.started_at));
        let reset_backoff = ran_long(ran_for);
        if let Some(finished) = restart_after.filter(|_| !reset_backoff)
            && let Some((until, delay)) = self.input.crash_backoff.in_backoff_since(&container.name, finished, self.input.now)
        {
            let meta = &pod.metadata;
            let message = format!(
                "back-off {} restarting failed container={} pod={}_{}({})",
                backoff::format_delay(delay),
                container.name,
                meta.name.as_deref().unwrap_or_default(),
                meta.namespace.as_deref().unwrap_or_default(),
                meta.uid.as_deref().unwrap_or_default(),
            );
            self.plan.waiting.insert(container.name.clone(), Waiting { reason: "CrashLoopBackOff".into(), message });
            self.wait_until(until);
            return false;
        }
        let attempt = latest.map_or(0, |l| l.attempt + 1);
        self.plan.start.push(Start { name: container.name.clone(), init, attempt, restart_after, reset_backoff });
        true
    }
}

/// Computes the next actions for a pod that is not being deleted.
pub fn plan(input: &Input<'_>) -> Plan {
    let pod = input.pod;
    let policy = restart_policy(pod);
    let spec = pod.spec.clone().unwrap_or_default();
    let init_containers = spec.init_containers.unwrap_or_default();
    let instances = instances_by_name(input.containers);
    let latest_sb = latest_sandbox(input.sandboxes);
    let mut b = Builder {
        input,
        plan: Plan {
            sandbox: SandboxAction::Stop,
            kill: Vec::new(),
            start: Vec::new(),
            waiting: BTreeMap::new(),
            remove_containers: Vec::new(),
            remove_sandboxes: Vec::new(),
            finished: None,
            requeue_at: None,
        },
    };

    // Garbage: keep the latest two instances of each container (for lastState and `logs --previous`).
    let mut by_name: HashMap<&str, Vec<&ContainerInfo>> = HashMap::new();
    for c in input.containers {
        by_name.entry(c.name.as_str()).or_default().push(c);
    }
    for list in by_name.values_mut() {
        list.sort_by_key(|c| std::cmp::Reverse((c.attempt, c.created_at)));
        b.plan.remove_containers.extend(list.iter().skip(2).filter(|c| c.state == ContainerState::Exited).map(|c| c.id.clone()));
    }
    for s in input.sandboxes {
        let kept = latest_sb.is_some_and(|l| l.id == s.id);
        let has_containers = input.containers.iter().any(|c| c.sandbox_id == s.id && !b.plan.remove_containers.contains(&c.id));
        if !kept && s.state == SandboxState::NotReady && !has_containers {
            b.plan.remove_sandboxes.push(s.id.clone());
        }
    }

    // Whether every app container exited for good (none will restart).
    let app_done: Vec<Option<bool>> = spec
        .containers
        .iter()
        .map(|c| match instances.get(c.name.as_str()) {
            Some((l, _)) if l.state == ContainerState::Exited && !should_restart(policy, l.exit_code) => Some(l.exit_code == 0),
            _ => None,
        })
        .collect();
    if !spec.containers.is_empty() && app_done.iter().all(Option::is_some) {
        b.plan.finished = Some(app_done.iter().all(|d| *d == Some(true)));
    }
    // A failed init container that may not restart fails the pod.
    let init_failed = policy == "Never"
        && init_containers.iter().any(|c| {
            instances.get(c.name.as_str()).is_some_and(|(l, _)| l.state == ContainerState::Exited && l.exit_code != 0)
        });
    if init_failed {
        b.plan.finished = Some(false);
    }
    if b.plan.finished.is_some() {
        b.plan.kill = input.containers.iter().filter(|c| c.state == ContainerState::Running).map(|c| c.id.clone()).collect();
        return b.plan;
    }

    let sandbox = match latest_sb {
        Some(s) if s.state == SandboxState::Ready => s,
        _ => {
            let ever_started = !input.containers.is_empty();
            if policy == "Never" && ever_started {
                // The sandbox died under a pod that must not restart: what ran is final.
                b.plan.finished = Some(false);
                return b.plan;
            }
            b.plan.sandbox = SandboxAction::Create { attempt: latest_sb.map_or(0, |s| s.attempt + 1) };
            b.plan.kill = input.containers.iter().filter(|c| c.state == ContainerState::Running).map(|c| c.id.clone()).collect();
            // A fresh sandbox starts the pod over: init containers first.
            match init_containers.first() {
                Some(first) => {
                    let latest = instances.get(first.name.as_str()).map(|(l, _)| *l);
                    b.start_or_wait(first, true, latest);
                }
                None => {
                    for c in &spec.containers {
                        let latest = instances.get(c.name.as_str()).map(|(l, _)| *l);
                        b.start_or_wait(c, false, latest);
                    }
                }
            }
            return b.plan;
        }
    };
    b.plan.sandbox = SandboxAction::Keep(sandbox.id.clone());

    // Init containers run one at a time, in order, each to success.
    for c in &init_containers {
        let latest = instances.get(c.name.as_str()).map(|(l, _)| *l).filter(|l| l.sandbox_id == sandbox.id);
        match latest {
            Some(l) if l.state == ContainerState::Exited && l.exit_code == 0 => continue,
            Some(l) if matches!(l.state, ContainerState::Running | ContainerState::Created) => return b.plan,
            Some(l) if l.state == ContainerState::Exited => {
                b.start_or_wait(c, true, Some(l));
                return b.plan;
            }
            _ => {
                let any = instances.get(c.name.as_str()).map(|(l, _)| *l);
                b.start_or_wait(c, true, any);
                return b.plan;
            }
        }
    }

    for c in &spec.containers {
        match instances.get(c.name.as_str()).map(|(l, _)| *l) {
            None => {
                b.start_or_wait(c, false, None);
            }
            Some(l) if l.state == ContainerState::Exited || l.sandbox_id != sandbox.id => {
                if l.state == ContainerState::Exited && !should_restart(policy, l.exit_code) {
                    continue;
                }
                b.start_or_wait(c, false, Some(l));
            }
            Some(_) => {}
        }
    }
    b.plan
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;

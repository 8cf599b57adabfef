//! The pod status the agent reports, built from what the runtime holds: phase, conditions, IPs and one
//! status per container, worded like upstream's kubelet. A pure function, so the worker can compare the
//! result with what the API already has and write only changes.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    Container, ContainerState as ApiState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::plan::{Waiting, instances_by_name, nanos_to_timestamp};
use super::probe;
use crate::runtime::{ContainerInfo, ContainerState, SandboxInfo, SandboxState};

/// Inputs of [`build`].
pub struct Input<'a> {
    pub pod: &'a Pod,
    /// The newest sandbox, with its IPs.
    pub sandbox: Option<&'a SandboxInfo>,
    pub containers: &'a [ContainerInfo],
    /// Why containers without a running instance wait (back-offs, pull or create failures), by name.
    pub waiting: &'a BTreeMap<String, Waiting>,
    pub finished: Option<bool>,
    /// Reported probe results by container id; containers without probes need none.
    pub probes: &'a probe::Results,
    pub host_ip: &'a str,
    /// `containerd`, for container ids like `containerd://<id>`.
    pub runtime_name: &'a str,
    pub now: Timestamp,
}

fn time(ts: Timestamp) -> Time {
    // The API keeps whole seconds; rounding here keeps "unchanged" comparisons exact.
    Time(Timestamp::from_second(ts.as_second()).unwrap_or(ts))
}

fn nanos_time(nanos: i64) -> Option<Time> {
    nanos_to_timestamp(nanos).map(time)
}

fn terminated(c: &ContainerInfo, runtime_name: &str) -> ContainerStateTerminated {
    let reason = if !c.reason.is_empty() {
        c.reason.clone()
    } else if c.exit_code == 0 {
        "Completed".to_string()
    } else {
        "Error".to_string()
    };
    ContainerStateTerminated {
        exit_code: c.exit_code,
        reason: Some(reason),
        message: (!c.message.is_empty()).then(|| c.message.clone()),
        started_at: nanos_time(c.started_at),
        finished_at: nanos_time(c.finished_at),
        container_id: Some(format!("{runtime_name}://{}", c.id)),
        signal: None,
    }
}

fn waiting_state(w: Option<&Waiting>) -> ApiState {
    let (reason, message) = match w {
        Some(w) => (w.reason.clone(), (!w.message.is_empty()).then(|| w.message.clone())),
        None => ("ContainerCreating".to_string(), None),
    };
    ApiState { waiting: Some(ContainerStateWaiting { reason: Some(reason), message }), ..Default::default() }
}

/// One container's status from its latest and previous instances. Init containers are never probed.
fn container_status(
    spec: &Container,
    latest: Option<(&ContainerInfo, Option<&ContainerInfo>)>,
    probed: bool,
    input: &Input<'_>,
) -> ContainerStatus {
    let image = spec.image.clone().unwrap_or_default();
    let waiting = input.waiting.get(&spec.name);
    let Some((latest, previous)) = latest else {
        return ContainerStatus {
            name: spec.name.clone(),
            image,
            image_id: String::new(),
            ready: false,
            started: Some(false),
            restart_count: 0,
            state: Some(waiting_state(waiting)),
            ..Default::default()
        };
    };
    let rt = input.runtime_name;
    let last_terminated = |c: Option<&ContainerInfo>| {
        c.filter(|c| c.state == ContainerState::Exited).map(|c| ApiState { terminated: Some(terminated(c, rt)), ..Default::default() })
    };
    let (state, last_state, running) = match latest.state {
        ContainerState::Running => (
            ApiState { running: Some(ContainerStateRunning { started_at: nanos_time(latest.started_at) }), ..Default::default() },
            last_terminated(previous),
            true,
        ),
        // Exited and about to restart (or waiting on a back-off): waiting, with the exit as lastState.
        ContainerState::Exited if waiting.is_some() => (waiting_state(waiting), last_terminated(Some(latest)), false),
        ContainerState::Exited => (ApiState { terminated: Some(terminated(latest, rt)), ..Default::default() }, last_terminated(previous), false),
        ContainerState::Created | ContainerState::Unknown => (waiting_state(waiting), last_terminated(previous), false),
    };
    // Without probes a running container is started and ready at once.
    let effects = if probed {
        probe::effects(spec, running, input.probes.get(&latest.id))
    } else {
        probe::Effects { started: running, ready: running, kill: None }
    };
    ContainerStatus {
        name: spec.name.clone(),
        image: if latest.image.is_empty() { image } else { latest.image.clone() },
        image_id: latest.image_ref.clone(),
        container_id: Some(format!("{rt}://{}", latest.id)),
        ready: effects.ready,
        started: Some(effects.started),
        restart_count: i32::try_from(latest.attempt).unwrap_or(i32::MAX),
        state: Some(state),
        last_state,
        ..Default::default()
    }
}

fn condition(type_: &str, ok: bool, reason: Option<String>, message: Option<String>, generation: Option<i64>) -> PodCondition {
    PodCondition {
        type_: type_.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        reason: if ok { None } else { reason },
        message: if ok { None } else { message },
        observed_generation: generation,
        ..Default::default()
    }
}

/// Upstream's Initialized condition: true once every init container completed — or once any app
/// container has started (init containers restarting later do not un-initialize a pod), and with reason
/// PodCompleted for a pod that succeeded. A pod that failed during init stays not initialized.
fn initialized_condition(phase: &str, incomplete_init: &[&str], statuses: &[ContainerStatus], generation: Option<i64>) -> PodCondition {
    let started = statuses.iter().any(|s| s.last_state.as_ref().is_some_and(|l| l.terminated.is_some()) || s.state.as_ref().is_some_and(|st| st.running.is_some() || st.terminated.is_some()));
    let mut c = condition(
        "Initialized",
        phase == "Succeeded" || started || incomplete_init.is_empty(),
        Some("ContainersNotInitialized".to_string()),
        Some(format!("containers with incomplete status: [{}]", incomplete_init.join(" "))),
        generation,
    );
    if phase == "Succeeded" {
        c.reason = Some("PodCompleted".to_string());
    }
    c
}

/// The full status the pod should have, starting from `current` (which keeps what others own).
pub fn build(input: &Input<'_>) -> PodStatus {
    let pod = input.pod;
    let current = pod.status.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let generation = pod.metadata.generation;
    let instances = instances_by_name(input.containers);
    let init_specs = spec.init_containers.unwrap_or_default();

    let is_succeeded = |s: &ContainerStatus| s.state.as_ref().and_then(|st| st.terminated.as_ref()).is_some_and(|t| t.exit_code == 0);
    let mut init_statuses: Vec<ContainerStatus> =
        init_specs.iter().map(|c| container_status(c, instances.get(c.name.as_str()).copied(), false, input)).collect();
    // An init container that completed is ready, as upstream reports it.
    for s in &mut init_statuses {
        s.ready = is_succeeded(s);
    }
    let mut statuses: Vec<ContainerStatus> =
        spec.containers.iter().map(|c| container_status(c, instances.get(c.name.as_str()).copied(), true, input)).collect();

    if !init_specs.is_empty() {
        // In a pod with init containers, a container not created yet waits with PodInitializing (upstream's
        // default waiting reason there), init containers behind a failing one included.
        for s in init_statuses.iter_mut().chain(statuses.iter_mut()) {
            if let Some(w) = s.state.as_mut().and_then(|st| st.waiting.as_mut()).filter(|w| w.reason.as_deref() == Some("ContainerCreating")) {
                w.reason = Some("PodInitializing".to_string());
            }
        }
    }

    let incomplete_init: Vec<&str> = init_statuses.iter().filter(|s| !is_succeeded(s)).map(|s| s.name.as_str()).collect();
    let initialized = incomplete_init.is_empty();

    let previous_phase = current.phase.clone().unwrap_or_default();
    let phase = if previous_phase == "Succeeded" || previous_phase == "Failed" {
        previous_phase
    } else if let Some(ok) = input.finished {
        if ok { "Succeeded" } else { "Failed" }.to_string()
    } else if !initialized {
        "Pending".to_string()
    } else {
        let never_ran = statuses.iter().any(|s| s.last_state.is_none() && s.state.as_ref().is_some_and(|st| st.waiting.is_some()));
        let any_running = statuses.iter().any(|s| s.state.as_ref().is_some_and(|st| st.running.is_some()));
        if never_ran { "Pending" } else if any_running || !statuses.is_empty() { "Running" } else { "Pending" }.to_string()
    };
    let terminal = phase == "Succeeded" || phase == "Failed";

    let sandbox_ready = input.sandbox.is_some_and(|s| s.state == SandboxState::Ready && !s.ips.is_empty());
    let unready: Vec<&str> = statuses.iter().filter(|s| !s.ready).map(|s| s.name.as_str()).collect();
    let (ready_reason, ready_message) = if terminal {
        (if phase == "Failed" { "PodFailed" } else { "PodCompleted" }.to_string(), None)
    } else {
        ("ContainersNotReady".to_string(), Some(format!("containers with unready status: [{}]", unready.join(" "))))
    };
    let containers_ready = unready.is_empty() && !terminal;
    let mine = [
        condition("PodReadyToStartContainers", sandbox_ready, None, None, generation),
        initialized_condition(&phase, &incomplete_init, &statuses, generation),
        condition("Ready", containers_ready, Some(ready_reason.clone()), ready_message.clone(), generation),
        condition("ContainersReady", containers_ready, Some(ready_reason), ready_message, generation),
    ];
    let old_conditions = current.conditions.clone().unwrap_or_default();
    let mut conditions: Vec<PodCondition> =
        old_conditions.iter().filter(|c| !mine.iter().any(|m| m.type_ == c.type_)).cloned().collect();
    for mut c in mine {
        let old = old_conditions.iter().find(|o| o.type_ == c.type_);
        c.last_transition_time = match old {
            Some(o) if o.status == c.status => o.last_transition_time.clone(),
            _ => Some(time(input.now)),
        };
        c.last_probe_time = old.and_then(|o| o.last_probe_time.clone());
        conditions.push(c);
    }

    let mut status = current;
    let ips = input.sandbox.map(|s| s.ips.clone()).filter(|ips| !ips.is_empty());
    if let Some(ips) = ips {
        status.pod_ip = ips.first().cloned();
        status.pod_ips = Some(ips.into_iter().map(|ip| PodIP { ip }).collect());
    }
    status.host_ip = Some(input.host_ip.to_string());
    status.host_ips = Some(vec![HostIP { ip: input.host_ip.to_string() }]);
    status.start_time = status.start_time.or_else(|| Some(time(input.now)));
    status.phase = Some(phase);
    status.conditions = Some(conditions);
    status.init_container_statuses = (!init_statuses.is_empty()).then_some(init_statuses);
    status.container_statuses = Some(statuses);
    status.observed_generation = generation;
    status
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;

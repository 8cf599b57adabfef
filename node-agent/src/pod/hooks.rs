//! Container lifecycle hooks: `postStart` runs right after a container starts (a failure kills the
//! instance, which then restarts per restartPolicy), `preStop` runs before a container is stopped, within
//! its grace period. Handlers are exec, httpGet and sleep, carried out like probes; tcpSocket is accepted
//! by the API but, as upstream, never run.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod, Probe};

use super::lifecycle::Observed;
use super::probe::Outcome;
use super::probe::run::{self, Action};
use super::worker::Worker;
use crate::events::reference;
use crate::runtime::{ContainerState, Runtime};

/// How long a postStart hook may take before it counts as failed (upstream waits without limit, which
/// would stall the pod's worker for good).
pub const POST_START_TIMEOUT: Duration = Duration::from_secs(120);

/// Which hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    PostStart,
    PreStop,
}

impl Hook {
    fn handler(self, container: &Container) -> Option<&LifecycleHandler> {
        let lifecycle = container.lifecycle.as_ref()?;
        match self {
            Hook::PostStart => lifecycle.post_start.as_ref(),
            Hook::PreStop => lifecycle.pre_stop.as_ref(),
        }
    }

    /// The event reason of a failure, upstream's.
    pub fn failed_reason(self) -> &'static str {
        match self {
            Hook::PostStart => "FailedPostStartHook",
            Hook::PreStop => "FailedPreStopHook",
        }
    }
}

/// What a hook does, resolved against the container and the pod's address.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Run(Action),
    Sleep(Duration),
}

fn step(handler: &LifecycleHandler, container: &Container, pod_host: &str) -> Result<Option<Step>, String> {
    if let Some(sleep) = &handler.sleep {
        return Ok(Some(Step::Sleep(Duration::from_secs(u64::try_from(sleep.seconds).unwrap_or(0)))));
    }
    if handler.exec.is_none() && handler.http_get.is_none() {
        return Ok(None);
    }
    // The same handler shapes as a probe's: reuse the probe's resolution of ports and hosts.
    let as_probe = Probe { exec: handler.exec.clone(), http_get: handler.http_get.clone(), ..Default::default() };
    run::action(&as_probe, container, pod_host).map(|a| Some(Step::Run(a))).map_err(|e| e.to_string())
}

/// Runs `hook` of `container` (instance `container_id`) within `timeout`; `Err` carries the message of
/// the failure event. A container without that hook succeeds at once.
pub async fn run<R: Runtime>(runtime: &R, hook: Hook, container: &Container, container_id: &str, pod_host: &str, timeout: Duration) -> Result<(), String> {
    let Some(handler) = hook.handler(container) else { return Ok(()) };
    let started = Instant::now();
    let outcome = match step(handler, container, pod_host) {
        Ok(None) => return Ok(()),
        Ok(Some(Step::Sleep(d))) => {
            tokio::time::sleep(d.min(timeout)).await;
            return Ok(());
        }
        Ok(Some(Step::Run(action))) => run::run(runtime, container_id, &action, timeout).await,
        Err(e) => Outcome::Error(e),
    };
    let kind = if handler.exec.is_some() { "Exec" } else { "HTTP" };
    match outcome {
        Outcome::Success(_) => Ok(()),
        Outcome::Failure(text) | Outcome::Error(text) => {
            tracing::debug!(container = %container.name, ?hook, elapsed = ?started.elapsed(), "lifecycle hook failed");
            Err(format!("{kind} lifecycle hook for Container \"{}\" failed - error: {text}", container.name))
        }
    }
}

impl<R: Runtime> Worker<R> {
    /// Runs the postStart hook of a just-started instance; on failure reports it and stops the instance
    /// so that it restarts per restartPolicy. Returns whether the hook succeeded.
    pub(super) async fn post_start(&self, pod: &Pod, container: &Container, id: &str, pod_host: &str, grace_seconds: i64) -> bool {
        let rt = self.ctx.runtime.clone();
        let Err(message) = run(rt.as_ref(), Hook::PostStart, container, id, pod_host, POST_START_TIMEOUT).await else { return true };
        let r = reference(pod, Some((&container.name, false)));
        self.ctx.events.warning(&r, Hook::PostStart.failed_reason(), message).await;
        if let Err(e) = rt.stop_container(id, grace_seconds).await {
            tracing::warn!(container = %container.name, error = %e, "failed to stop a container whose postStart hook failed");
        }
        false
    }

    /// Runs the preStop hooks of the pod's running containers at once, within `grace_seconds`; returns
    /// the seconds of grace left for stopping them.
    pub(super) async fn pre_stop(&self, pod: &Pod, observed: &Observed, pod_host: &str, grace_seconds: i64) -> i64 {
        let started = Instant::now();
        let rt = self.ctx.runtime.clone();
        let specs = pod.spec.as_ref().map(|s| s.containers.as_slice()).unwrap_or_default();
        let budget = Duration::from_secs(u64::try_from(grace_seconds).unwrap_or(0));
        let runs = observed.containers.iter().filter(|c| c.state == ContainerState::Running).filter_map(|instance| {
            let spec = specs.iter().find(|s| s.name == instance.name && Hook::PreStop.handler(s).is_some())?;
            let rt = rt.clone();
            Some(async move { (spec, run(rt.as_ref(), Hook::PreStop, spec, &instance.id, pod_host, budget).await) })
        });
        for (spec, result) in futures::future::join_all(runs).await {
            if let Err(message) = result {
                self.ctx.events.warning(&reference(pod, Some((&spec.name, false))), Hook::PreStop.failed_reason(), message).await;
            }
        }
        let spent = i64::try_from(started.elapsed().as_secs()).unwrap_or(i64::MAX);
        // Upstream never stops with less than 2 s, so a container still gets its SIGTERM.
        grace_seconds.saturating_sub(spent).max(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::ExecOutput;
    use crate::runtime::simulated::SimulatedRuntime;

    fn container(lifecycle: serde_json::Value) -> Container {
        serde_json::from_value(serde_json::json!({ "name": "app", "image": "nginx", "lifecycle": lifecycle }))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn steps() {
        let exec = container(serde_json::json!({ "postStart": { "exec": { "command": ["touch", "/ok"] } } }));
        let handler = Hook::PostStart.handler(&exec).unwrap_or_else(|| panic!("postStart"));
        assert_eq!(step(handler, &exec, "10.244.1.5"), Ok(Some(Step::Run(Action::Exec(vec!["touch".into(), "/ok".into()])))));
        assert!(Hook::PreStop.handler(&exec).is_none(), "only the hook that is set");

        let sleep = container(serde_json::json!({ "preStop": { "sleep": { "seconds": 3 } } }));
        let handler = Hook::PreStop.handler(&sleep).unwrap_or_else(|| panic!("preStop"));
        assert_eq!(step(handler, &sleep, "10.244.1.5"), Ok(Some(Step::Sleep(Duration::from_secs(3)))));

        let tcp = container(serde_json::json!({ "preStop": { "tcpSocket": { "port": 80 } } }));
        let handler = Hook::PreStop.handler(&tcp).unwrap_or_else(|| panic!("preStop"));
        assert_eq!(step(handler, &tcp, "10.244.1.5"), Ok(None), "tcpSocket hooks are never run");

        let bad = container(serde_json::json!({ "postStart": { "httpGet": { "port": "web" } } }));
        let handler = Hook::PostStart.handler(&bad).unwrap_or_else(|| panic!("postStart"));
        assert!(step(handler, &bad, "10.244.1.5").is_err(), "an unknown port name");
    }

    #[tokio::test]
    async fn exec_hooks_through_the_runtime() {
        let runtime = SimulatedRuntime::new();
        let sandbox = runtime.run_sandbox(&Default::default()).await.unwrap_or_else(|e| panic!("{e}"));
        let config = crate::runtime::ContainerConfig {
            metadata: Some(k8s_cri::v1::ContainerMetadata { name: "app".into(), attempt: 0 }),
            ..Default::default()
        };
        let id = runtime.create_container(&sandbox, &config, &Default::default()).await.unwrap_or_else(|e| panic!("{e}"));
        runtime.start_container(&id).await.unwrap_or_else(|e| panic!("{e}"));
        let c = container(serde_json::json!({ "postStart": { "exec": { "command": ["false"] } } }));
        assert_eq!(run(&runtime, Hook::PostStart, &c, &id, "10.244.1.5", Duration::from_secs(1)).await, Ok(()), "exit 0");
        runtime.exec_returns("app", ExecOutput { exit_code: 1, stdout: b"no luck".to_vec(), stderr: Vec::new() });
        let err = run(&runtime, Hook::PostStart, &c, &id, "10.244.1.5", Duration::from_secs(1)).await;
        assert_eq!(err, Err("Exec lifecycle hook for Container \"app\" failed - error: no luck".to_string()));
        let none = container(serde_json::json!({}));
        assert_eq!(run(&runtime, Hook::PreStop, &none, &id, "10.244.1.5", Duration::from_secs(1)).await, Ok(()));
    }
}

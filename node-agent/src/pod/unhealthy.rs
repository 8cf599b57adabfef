//! What the worker does with probe results before it plans: keep the prober in step with the running
//! instances, and kill the instances whose liveness or startup probe failed so the plan restarts them
//! per restartPolicy (with the crash back-off), like upstream's kubelet.

use k8s_openapi::api::core::v1::Pod;

use super::lifecycle::{self, Observed};
use super::plan::instances_by_name;
use super::probe;
use super::prober::kill_grace_seconds;
use super::worker::{Error, Worker};
use crate::events::{self, reference};
use crate::runtime::{self, ContainerState, Runtime};

impl<R: Runtime> Worker<R> {
    /// Where probes without a host go: the pod IP, else the node's (host-network pods).
    pub(super) fn probe_host(&self, observed: &Observed) -> String {
        observed.sandbox.as_ref().and_then(|s| s.ips.first().cloned()).unwrap_or_else(|| self.ctx.settings.node_ip.clone())
    }

    /// Syncs the prober with `observed` and kills the instances condemned by a probe; returns what the
    /// runtime holds afterwards.
    pub(super) async fn apply_probes(&mut self, pod: &Pod, observed: Observed) -> Result<Observed, Error> {
        self.prober.sync(pod, &observed.containers, &self.probe_host(&observed));
        let results = self.prober.results();
        if results.is_empty() {
            return Ok(observed);
        }
        let rt = self.ctx.runtime.clone();
        let restarts = pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) != Some("Never");
        let specs = pod.spec.as_ref().map(|s| s.containers.as_slice()).unwrap_or_default();
        let instances = instances_by_name(&observed.containers);
        let mut killed = false;
        for spec in specs {
            let Some((latest, _)) = instances.get(spec.name.as_str()) else { continue };
            let running = latest.state == ContainerState::Running;
            let Some(kind) = probe::effects(spec, running, results.get(&latest.id)).kill else { continue };
            let mut note = format!("Container {} failed {} probe", spec.name, kind.as_str());
            if restarts {
                note.push_str(", will be restarted");
            }
            tracing::info!(pod = %format!("{}/{}", self.namespace, self.name), container = %spec.name, probe = kind.as_str(), "killing unhealthy container");
            self.ctx.events.normal(&reference(pod, Some((&spec.name, false))), events::KILLING, note).await;
            match rt.stop_container(&latest.id, kill_grace_seconds(pod, spec, kind)).await {
                Ok(()) | Err(runtime::Error::NotFound(_)) => killed = true,
                Err(e) => return Err(e.into()),
            }
        }
        if !killed {
            return Ok(observed);
        }
        let observed = lifecycle::observe(rt.as_ref(), &self.uid).await?;
        // The killed instances are no longer running: their probes stop and their results go.
        self.prober.sync(pod, &observed.containers, &self.probe_host(&observed));
        Ok(observed)
    }
}

#[cfg(test)]
#[path = "unhealthy_tests.rs"]
mod tests;

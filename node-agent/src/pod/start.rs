//! Creating a pod's sandbox and starting its containers, with the events and waiting reasons upstream's
//! kubelet reports along the way.

use std::time::Instant;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, Pod};

use super::env;
use super::lifecycle::{self, ImageOutcome, Observed};
use super::plan::{Plan, Start, Waiting};
use super::runtime_config::{self, ContainerParams};
use super::termination;
use super::worker::{Error, Worker};
use crate::events::{self, reference};
use crate::runtime::{PodSandboxConfig, Runtime, SandboxInfo, SandboxState};
use crate::volumes::{self, etc_hosts};

/// The pull policy the API server would default: Always for `:latest` or untagged images.
fn pull_policy(c: &Container) -> String {
    if let Some(p) = &c.image_pull_policy {
        return p.clone();
    }
    let image = c.image.as_deref().unwrap_or_default();
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || (last.contains(':') && !last.ends_with(":latest")) { "IfNotPresent" } else { "Always" }.to_string()
}

impl<R: Runtime> Worker<R> {
    /// Replaces the pod's sandbox; `None` when it could not be created (retried later).
    pub(super) async fn create_sandbox(&mut self, pod: &Pod, attempt: u32, observed: &Observed, plan: &Plan) -> Result<Option<SandboxInfo>, Error> {
        let rt = self.ctx.runtime.clone();
        let pod_ref = reference(pod, None);
        if attempt > 0 {
            self.ctx.events.normal(&pod_ref, events::SANDBOX_CHANGED, "Pod sandbox changed, it will be killed and re-created.".into()).await;
        }
        for id in &plan.kill {
            let _ = rt.stop_container(id, 2).await;
        }
        for s in observed.sandboxes.iter().filter(|s| s.state == SandboxState::Ready) {
            let _ = rt.stop_sandbox(&s.id).await;
        }
        match self.ctx.volumes.setup(pod, &self.ctx.node_facts(Vec::new()), Timestamp::now()).await {
            Ok(prepared) => {
                self.prepared = Some(prepared);
                self.volumes_at = Some(Instant::now());
            }
            Err(e) => {
                self.ctx.events.warning(&pod_ref, events::FAILED_MOUNT, format!("MountVolume.SetUp failed: {e}")).await;
                return Ok(None);
            }
        }
        let config = runtime_config::sandbox_config(pod, attempt, &self.ctx.settings.root_dir, self.dns(pod));
        let _ = tokio::fs::create_dir_all(&config.log_directory).await;
        let id = match rt.run_sandbox(&config).await {
            Ok(id) => id,
            Err(e) => {
                self.ctx.events.warning(&pod_ref, events::FAILED_CREATE_SANDBOX, format!("Failed to create pod sandbox: {e}")).await;
                return Ok(None);
            }
        };
        Ok(Some(rt.sandbox_status(&id).await?))
    }

    /// The managed `/etc/hosts` for `container`, written with the sandbox's IPs, unless the pod or the
    /// container keeps its own.
    fn etc_hosts_mount(&self, pod: &Pod, container: &Container, pod_ips: &[String]) -> std::io::Result<Option<k8s_cri::v1::Mount>> {
        if !(etc_hosts::managed_for_pod(pod) && etc_hosts::managed_for_container(container)) {
            return Ok(None);
        }
        let content = etc_hosts::render(pod, pod_ips, &self.ctx.settings.cluster_domain);
        let file = etc_hosts::write(&self.ctx.volumes.pod_dir(&self.uid), &content)?;
        Ok(Some(etc_hosts::mount(&file)))
    }

    /// The mounts the agent adds to every instance: the managed `/etc/hosts` and the termination message file.
    fn agent_mounts(&self, pod: &Pod, container: &Container, attempt: u32, pod_ips: &[String]) -> std::io::Result<Vec<k8s_cri::v1::Mount>> {
        let hosts = self.etc_hosts_mount(pod, container, pod_ips)?;
        let message = termination::prepare(&self.ctx.volumes.pod_dir(&self.uid), container, attempt)?;
        Ok(hosts.into_iter().chain(message).collect())
    }

    /// Pulls, creates and starts one container; failures become its waiting reason.
    pub(super) async fn start_container(&mut self, pod: &Pod, start: &Start, sandbox: &SandboxInfo, sandbox_config: &PodSandboxConfig, now: Timestamp) {
        let spec = pod.spec.clone().unwrap_or_default();
        let list = if start.init { spec.init_containers.clone().unwrap_or_default() } else { spec.containers.clone() };
        let Some(container) = list.into_iter().find(|c| c.name == start.name) else { return };
        let rt = self.ctx.runtime.clone();
        let r = reference(pod, Some((&container.name, start.init)));
        let image = container.image.clone().unwrap_or_default();

        let events_for_pull = self.ctx.events.clone();
        let (pull_ref, pull_image) = (r.clone(), image.clone());
        let announce = move || {
            tokio::spawn(async move { events_for_pull.normal(&pull_ref, events::PULLING, format!("Pulling image \"{pull_image}\"")).await });
        };
        match lifecycle::ensure_image(rt.as_ref(), &image, &pull_policy(&container), sandbox_config, &mut self.pull_backoff, now, announce).await {
            Ok(ImageOutcome::Present) => {
                self.ctx.events.normal(&r, events::PULLED, format!("Container image \"{image}\" already present on machine")).await;
            }
            Ok(ImageOutcome::Pulled(secs)) => {
                self.ctx.events.normal(&r, events::PULLED, format!("Successfully pulled image \"{image}\" in {secs:.3}s")).await;
            }
            Err(w) => {
                self.ctx.events.warning(&r, events::FAILED, w.message.clone()).await;
                self.ctx.events.warning(&r, events::FAILED, format!("Error: {}", w.reason)).await;
                self.failures.insert(container.name.clone(), w);
                return;
            }
        }

        let fail = |reason: &str, message: String| Waiting { reason: reason.to_string(), message };
        let facts = self.ctx.node_facts(sandbox.ips.clone());
        let services = self.services(pod).await;
        let env = match env::container_env(&container, pod, &self.ctx.objects, &facts, &services).await {
            Ok(env) => env,
            Err(e) => {
                self.ctx.events.warning(&r, events::FAILED, format!("Error: {e}")).await;
                self.failures.insert(container.name.clone(), fail("CreateContainerConfigError", e.to_string()));
                return;
            }
        };
        if self.prepared.is_none() {
            match self.ctx.volumes.setup(pod, &facts, now).await {
                Ok(p) => self.prepared = Some(p),
                Err(e) => {
                    self.ctx.events.warning(&r, events::FAILED_MOUNT, format!("MountVolume.SetUp failed: {e}")).await;
                    self.failures.insert(container.name.clone(), fail("ContainerCreating", String::new()));
                    return;
                }
            }
        }
        let mounts = match volumes::mounts(&container, self.prepared.as_ref().unwrap_or(&Default::default()), &env) {
            Ok(mut m) => match self.agent_mounts(pod, &container, start.attempt, &sandbox.ips) {
                Ok(own) => {
                    m.extend(own);
                    m
                }
                Err(e) => {
                    self.ctx.events.warning(&r, events::FAILED_MOUNT, format!("failed to prepare /etc/hosts or the termination message file: {e}")).await;
                    self.failures.insert(container.name.clone(), fail("ContainerCreating", String::new()));
                    return;
                }
            },
            Err(e) => {
                self.ctx.events.warning(&r, events::FAILED, format!("Error: {e}")).await;
                self.failures.insert(container.name.clone(), fail("CreateContainerConfigError", e.to_string()));
                return;
            }
        };
        let config = runtime_config::container_config(pod, ContainerParams {
            container: &container,
            init: start.init,
            attempt: start.attempt,
            env,
            mounts,
            node_memory_bytes: self.ctx.settings.memory_bytes,
        });
        let _ = tokio::fs::create_dir_all(std::path::Path::new(&sandbox_config.log_directory).join(&container.name)).await;
        let id = match rt.create_container(&sandbox.id, &config, sandbox_config).await {
            Ok(id) => id,
            Err(e) => {
                self.ctx.events.warning(&r, events::FAILED, format!("Error: {e}")).await;
                self.failures.insert(container.name.clone(), fail("CreateContainerError", e.to_string()));
                return;
            }
        };
        if let Some(finished) = start.restart_after {
            if start.reset_backoff {
                self.crash_backoff.reset(&container.name);
            }
            self.crash_backoff.next(&container.name, finished);
        }
        self.ctx.events.normal(&r, events::CREATED, format!("Created container: {}", container.name)).await;
        if let Err(e) = rt.start_container(&id).await {
            self.ctx.events.warning(&r, events::FAILED, format!("Error: {e}")).await;
            self.failures.insert(container.name.clone(), fail("RunContainerError", e.to_string()));
            return;
        }
        self.ctx.events.normal(&r, events::STARTED, format!("Started container {}", container.name)).await;
        self.failures.remove(&container.name);
        let host = sandbox.ips.first().cloned().unwrap_or_else(|| self.ctx.settings.node_ip.clone());
        self.post_start(pod, &container, &id, &host, self.grace_seconds(Some(pod))).await;
    }

    /// The Services whose variables go into the pod's environment: the namespace's (unless
    /// enableServiceLinks is false) and always the API server's `kubernetes` Service.
    async fn services(&self, pod: &Pod) -> Vec<k8s_openapi::api::core::v1::Service> {
        let mut out = Vec::new();
        if pod.spec.as_ref().and_then(|s| s.enable_service_links) != Some(false) {
            out.extend(self.ctx.objects.services(&self.namespace).await.unwrap_or_default());
        }
        if (self.namespace != "default" || out.is_empty())
            && let Ok(list) = self.ctx.objects.services("default").await
        {
            out.retain(|s| s.metadata.name.as_deref() != Some("kubernetes"));
            out.extend(list.into_iter().filter(|s| s.metadata.name.as_deref() == Some("kubernetes")));
        }
        out
    }
}

//! The runtime side of a pod's life, kept apart from the API so it can be tested against the simulated
//! runtime: observing a pod, pulling its images, and killing it in the right order.

use std::collections::BTreeMap;
use std::time::Instant;

use jiff::Timestamp;

use super::backoff::Backoff;
use super::plan::{Waiting, latest_sandbox};
use crate::runtime::{self, ContainerInfo, ContainerState, PodSandboxConfig, Runtime, SandboxInfo, SandboxState};

/// What the runtime holds of one pod.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub sandboxes: Vec<SandboxInfo>,
    pub containers: Vec<ContainerInfo>,
    /// The newest sandbox with its IPs.
    pub sandbox: Option<SandboxInfo>,
}

impl Observed {
    pub fn is_empty(&self) -> bool {
        self.sandboxes.is_empty() && self.containers.is_empty()
    }
}

/// Lists a pod's sandboxes and containers, and the newest sandbox's IPs.
pub async fn observe<R: Runtime>(runtime: &R, uid: &str) -> runtime::Result<Observed> {
    let sandboxes = runtime.list_sandboxes(Some(uid)).await?;
    let containers = runtime.list_containers(Some(uid)).await?;
    let sandbox = match latest_sandbox(&sandboxes) {
        Some(s) if s.state == SandboxState::Ready => match runtime.sandbox_status(&s.id).await {
            Ok(full) => Some(full),
            Err(runtime::Error::NotFound(_)) => None,
            Err(e) => return Err(e),
        },
        other => other.cloned(),
    };
    Ok(Observed { sandboxes, containers, sandbox })
}

/// How an image came to be available.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageOutcome {
    /// Present already; nothing pulled.
    Present,
    /// Pulled now, in this many seconds.
    Pulled(f64),
}

/// Makes `image` available per `policy` (Always / IfNotPresent / Never). A failed pull starts or extends
/// the image's back-off and yields the ErrImagePull waiting state with upstream's wording.
pub async fn ensure_image<R: Runtime>(
    runtime: &R,
    image: &str,
    policy: &str,
    sandbox: &PodSandboxConfig,
    pull_backoff: &mut Backoff,
    now: Timestamp,
    before_pull: impl FnOnce(),
) -> Result<ImageOutcome, Waiting> {
    let present = runtime.image_status(image).await.map_err(|e| Waiting { reason: "ErrImagePull".into(), message: e.to_string() })?;
    if present.is_some() && policy != "Always" {
        return Ok(ImageOutcome::Present);
    }
    if present.is_none() && policy == "Never" {
        return Err(Waiting {
            reason: "ErrImageNeverPull".into(),
            message: format!("Container image \"{image}\" is not present with pull policy of Never"),
        });
    }
    before_pull();
    let started = Instant::now();
    match runtime.pull_image(image, sandbox).await {
        Ok(_) => {
            pull_backoff.reset(image);
            Ok(ImageOutcome::Pulled(started.elapsed().as_secs_f64()))
        }
        Err(e) => {
            pull_backoff.next(image, now);
            let detail = match e {
                runtime::Error::Call { message, .. } => message,
                other => other.to_string(),
            };
            Err(Waiting { reason: "ErrImagePull".into(), message: format!("Failed to pull image \"{image}\": {detail}") })
        }
    }
}

/// Kills a pod: stops every running container within the grace period (all at once, like upstream),
/// then stops the sandboxes; with `remove`, also removes the containers and sandboxes.
pub async fn kill_pod<R: Runtime>(runtime: &R, observed: &Observed, grace_seconds: i64, remove: bool) -> runtime::Result<()> {
    let running: Vec<&ContainerInfo> =
        observed.containers.iter().filter(|c| matches!(c.state, ContainerState::Running | ContainerState::Created | ContainerState::Unknown)).collect();
    let stops = running.iter().map(|c| runtime.stop_container(&c.id, grace_seconds));
    for result in futures::future::join_all(stops).await {
        ignore_not_found(result)?;
    }
    for s in &observed.sandboxes {
        ignore_not_found(runtime.stop_sandbox(&s.id).await)?;
    }
    if remove {
        for c in &observed.containers {
            ignore_not_found(runtime.remove_container(&c.id).await)?;
        }
        for s in &observed.sandboxes {
            ignore_not_found(runtime.remove_sandbox(&s.id).await)?;
        }
    }
    Ok(())
}

fn ignore_not_found(r: runtime::Result<()>) -> runtime::Result<()> {
    match r {
        Err(runtime::Error::NotFound(_)) => Ok(()),
        other => other,
    }
}

/// Pod UIDs the runtime holds that are not in `known`: what a restarted agent must clean up.
pub fn orphans(sandboxes: &[SandboxInfo], containers: &[ContainerInfo], known: &std::collections::HashSet<String>) -> Vec<String> {
    let mut out: BTreeMap<String, ()> = BTreeMap::new();
    for uid in sandboxes.iter().map(|s| &s.pod_uid).chain(containers.iter().map(|c| &c.pod_uid)) {
        if !uid.is_empty() && !known.contains(uid) {
            out.insert(uid.clone(), ());
        }
    }
    out.into_keys().collect()
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;

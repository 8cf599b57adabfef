//! An in-memory [`Runtime`]: sandboxes and containers are records, images are names, processes never run.
//! Tests script it (failing pulls, containers that exit on start) and read back the calls it received.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use super::labels;
use super::{
    ContainerConfig, ContainerInfo, ContainerState, Error, ExecOutput, ImageInfo, PodSandboxConfig, RelistEntry, Result,
    Runtime, RuntimeVersion, SandboxInfo, SandboxState, Streams,
};

#[derive(Default)]
struct State {
    next_id: u64,
    next_ip: u8,
    sandboxes: HashMap<String, SandboxInfo>,
    containers: HashMap<String, ContainerInfo>,
    /// Present images by name, with their size in bytes.
    images: HashMap<String, u64>,
    pull_failures: HashMap<String, String>,
    list_images_failure: Option<String>,
    exit_on_start: HashMap<String, i32>,
    exec_results: HashMap<String, ExecOutput>,
    calls: Vec<String>,
}

/// The simulated runtime. All methods are cheap and never block.
#[derive(Default)]
pub struct SimulatedRuntime {
    state: Mutex<State>,
}

fn now_nanos() -> i64 {
    i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap_or(i64::MAX)
}

impl SimulatedRuntime {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread poisons the lock; the data is still usable for the others.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `image` present with this size, as if pulled earlier (pulls made by the agent have size 0).
    pub fn add_image(&self, image: &str, size_bytes: u64) {
        self.lock().images.insert(image.to_string(), size_bytes);
    }

    /// Makes image listing fail with `message` (`None`: succeed again).
    pub fn fail_list_images(&self, message: Option<&str>) {
        self.lock().list_images_failure = message.map(str::to_string);
    }

    /// Makes pulls of `image` fail with `message`.
    pub fn fail_pulls(&self, image: &str, message: &str) {
        self.lock().pull_failures.insert(image.to_string(), message.to_string());
    }

    /// Lets pulls of `image` succeed again.
    pub fn allow_pulls(&self, image: &str) {
        self.lock().pull_failures.remove(image);
    }

    /// Containers named `name` exit with `code` as soon as they start.
    pub fn exit_on_start(&self, name: &str, code: i32) {
        self.lock().exit_on_start.insert(name.to_string(), code);
    }

    /// Commands run in containers named `name` return `output` (by default they exit 0, silently).
    pub fn exec_returns(&self, name: &str, output: ExecOutput) {
        self.lock().exec_results.insert(name.to_string(), output);
    }

    /// Makes a running container exit now.
    pub fn exit_container(&self, id: &str, code: i32) {
        if let Some(c) = self.lock().containers.get_mut(id) {
            c.state = ContainerState::Exited;
            c.exit_code = code;
            c.finished_at = now_nanos();
            c.reason = if code == 0 { "Completed" } else { "Error" }.to_string();
        }
    }

    /// Every call received so far, as `operation name-or-id` strings, in order.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    fn record(&self, call: String) -> MutexGuard<'_, State> {
        let mut state = self.lock();
        state.calls.push(call);
        state
    }
}

fn new_id(state: &mut State, prefix: &str) -> String {
    state.next_id += 1;
    format!("{prefix}{:08}", state.next_id)
}

impl Runtime for SimulatedRuntime {
    async fn version(&self) -> Result<RuntimeVersion> {
        Ok(RuntimeVersion { runtime_name: "simulated".into(), runtime_version: "0.1.0".into() })
    }

    async fn run_sandbox(&self, config: &PodSandboxConfig) -> Result<String> {
        let metadata = config.metadata.clone().unwrap_or_default();
        let mut state = self.record(format!("run_sandbox {}", metadata.name));
        let id = new_id(&mut state, "sb");
        state.next_ip = state.next_ip.wrapping_add(1);
        let ip = format!("10.88.0.{}", state.next_ip);
        state.sandboxes.insert(id.clone(), SandboxInfo {
            id: id.clone(),
            pod_uid: metadata.uid,
            pod_name: metadata.name,
            pod_namespace: metadata.namespace,
            attempt: metadata.attempt,
            state: SandboxState::Ready,
            created_at: now_nanos(),
            ips: vec![ip],
        });
        Ok(id)
    }

    async fn stop_sandbox(&self, id: &str) -> Result<()> {
        let mut state = self.record(format!("stop_sandbox {id}"));
        for c in state.containers.values_mut().filter(|c| c.sandbox_id == id && c.state == ContainerState::Running) {
            c.state = ContainerState::Exited;
            c.exit_code = 137;
            c.finished_at = now_nanos();
        }
        if let Some(s) = state.sandboxes.get_mut(id) {
            s.state = SandboxState::NotReady;
        }
        Ok(())
    }

    async fn remove_sandbox(&self, id: &str) -> Result<()> {
        let mut state = self.record(format!("remove_sandbox {id}"));
        state.containers.retain(|_, c| c.sandbox_id != id);
        state.sandboxes.remove(id);
        Ok(())
    }

    async fn sandbox_status(&self, id: &str) -> Result<SandboxInfo> {
        self.lock().sandboxes.get(id).cloned().ok_or_else(|| Error::NotFound(format!("sandbox {id}")))
    }

    async fn list_sandboxes(&self, pod_uid: Option<&str>) -> Result<Vec<SandboxInfo>> {
        let state = self.lock();
        let mut out: Vec<SandboxInfo> = state.sandboxes.values().filter(|s| pod_uid.is_none_or(|u| s.pod_uid == u)).cloned().collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        for s in &mut out {
            s.ips.clear();
        }
        Ok(out)
    }

    async fn image_status(&self, image: &str) -> Result<Option<String>> {
        Ok(self.lock().images.contains_key(image).then(|| format!("sha256:{image}")))
    }

    async fn pull_image(&self, image: &str, _sandbox: &PodSandboxConfig) -> Result<String> {
        let mut state = self.record(format!("pull_image {image}"));
        if let Some(message) = state.pull_failures.get(image) {
            return Err(Error::Call { operation: "pull image", message: message.clone() });
        }
        state.images.entry(image.to_string()).or_insert(0);
        Ok(format!("sha256:{image}"))
    }

    async fn list_images(&self) -> Result<Vec<ImageInfo>> {
        let state = self.lock();
        if let Some(message) = &state.list_images_failure {
            return Err(Error::Call { operation: "list images", message: message.clone() });
        }
        let mut out: Vec<ImageInfo> = state
            .images
            .iter()
            .map(|(name, size)| ImageInfo {
                id: format!("sha256:{name}"),
                repo_tags: vec![name.clone()],
                repo_digests: Vec::new(),
                size_bytes: *size,
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    async fn create_container(&self, sandbox_id: &str, config: &ContainerConfig, _sandbox: &PodSandboxConfig) -> Result<String> {
        let metadata = config.metadata.clone().unwrap_or_default();
        let mut state = self.record(format!("create_container {}", metadata.name));
        let Some(sandbox) = state.sandboxes.get(sandbox_id).cloned() else {
            return Err(Error::NotFound(format!("sandbox {sandbox_id}")));
        };
        let id = new_id(&mut state, "c");
        let image = config.image.clone().map(|i| i.image).unwrap_or_default();
        state.containers.insert(id.clone(), ContainerInfo {
            id: id.clone(),
            sandbox_id: sandbox_id.to_string(),
            pod_uid: sandbox.pod_uid,
            name: config.labels.get(labels::CONTAINER_NAME).cloned().unwrap_or(metadata.name),
            attempt: metadata.attempt,
            image_ref: format!("sha256:{image}"),
            image,
            state: ContainerState::Created,
            created_at: now_nanos(),
            started_at: 0,
            finished_at: 0,
            exit_code: 0,
            reason: String::new(),
            message: String::new(),
            labels: config.labels.clone(),
            annotations: config.annotations.clone(),
        });
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        let mut state = self.record(format!("start_container {id}"));
        let exit = state.containers.get(id).and_then(|c| state.exit_on_start.get(&c.name).copied());
        let c = state.containers.get_mut(id).ok_or_else(|| Error::NotFound(format!("container {id}")))?;
        c.started_at = now_nanos();
        c.state = ContainerState::Running;
        if let Some(code) = exit {
            c.state = ContainerState::Exited;
            c.exit_code = code;
            c.finished_at = c.started_at;
            c.reason = if code == 0 { "Completed" } else { "Error" }.to_string();
        }
        Ok(())
    }

    async fn stop_container(&self, id: &str, timeout_seconds: i64) -> Result<()> {
        let mut state = self.record(format!("stop_container {id} {timeout_seconds}"));
        let c = state.containers.get_mut(id).ok_or_else(|| Error::NotFound(format!("container {id}")))?;
        if c.state == ContainerState::Running {
            c.state = ContainerState::Exited;
            c.exit_code = 137;
            c.finished_at = now_nanos();
        }
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        self.record(format!("remove_container {id}")).containers.remove(id);
        Ok(())
    }

    async fn list_containers(&self, pod_uid: Option<&str>) -> Result<Vec<ContainerInfo>> {
        let state = self.lock();
        let mut out: Vec<ContainerInfo> = state.containers.values().filter(|c| pod_uid.is_none_or(|u| c.pod_uid == u)).cloned().collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    async fn relist(&self) -> Result<Vec<RelistEntry>> {
        let state = self.lock();
        let mut out: Vec<RelistEntry> = state
            .sandboxes
            .values()
            .map(|s| RelistEntry { id: s.id.clone(), pod_uid: s.pod_uid.clone(), state: format!("sandbox:{:?}", s.state) })
            .collect();
        out.extend(state.containers.values().map(|c| RelistEntry { id: c.id.clone(), pod_uid: c.pod_uid.clone(), state: format!("container:{:?}", c.state) }));
        Ok(out)
    }

    async fn exec_sync(&self, id: &str, _command: &[String], _timeout_seconds: i64) -> Result<ExecOutput> {
        let state = self.lock();
        match state.containers.get(id) {
            Some(c) if c.state == ContainerState::Running => {
                Ok(state.exec_results.get(&c.name).cloned().unwrap_or(ExecOutput { exit_code: 0, stdout: Vec::new(), stderr: Vec::new() }))
            }
            _ => Err(Error::NotFound(format!("running container {id}"))),
        }
    }

    async fn exec_url(&self, id: &str, _command: &[String], _streams: Streams) -> Result<String> {
        Ok(format!("http://127.0.0.1:1/exec/{id}"))
    }

    async fn attach_url(&self, id: &str, _streams: Streams) -> Result<String> {
        Ok(format!("http://127.0.0.1:1/attach/{id}"))
    }

    async fn port_forward_url(&self, sandbox_id: &str) -> Result<String> {
        Ok(format!("http://127.0.0.1:1/portforward/{sandbox_id}"))
    }
}

//! The container runtime as the pod lifecycle sees it: a narrow trait over CRI v1. The real implementation
//! speaks gRPC to containerd ([`cri`]); [`simulated`] keeps everything in memory for tests and scale runs.
//!
//! Configs are the CRI messages themselves (the runtime is CRI-shaped either way); what comes back is
//! reduced to [`SandboxInfo`] and [`ContainerInfo`], which carry the labels the agent rediscovers its pods by.

pub mod cri;
pub mod labels;
pub mod simulated;

use std::collections::HashMap;
use std::future::Future;

pub use k8s_cri::v1::{ContainerConfig, PodSandboxConfig};

/// Failures of runtime calls.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The runtime endpoint could not be reached.
    #[error("failed to connect to the container runtime at {endpoint}: {message}")]
    Connect { endpoint: String, message: String },
    /// A CRI call returned an error status.
    #[error("failed to {operation}: {message}")]
    Call { operation: &'static str, message: String },
    /// The object does not exist in the runtime.
    #[error("failed to find {0} in the container runtime")]
    NotFound(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Name and version of the runtime, for `nodeInfo.containerRuntimeVersion`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeVersion {
    pub runtime_name: String,
    pub runtime_version: String,
}

/// The state of a sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxState {
    Ready,
    NotReady,
}

/// A pod sandbox as found in the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxInfo {
    pub id: String,
    pub pod_uid: String,
    pub pod_name: String,
    pub pod_namespace: String,
    pub attempt: u32,
    pub state: SandboxState,
    /// Nanoseconds since the epoch.
    pub created_at: i64,
    /// Pod IPs (primary first); filled by [`Runtime::sandbox_status`] only.
    pub ips: Vec<String>,
}

/// The state of one container instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Exited,
    Unknown,
}

/// One container instance (one restart attempt) as found in the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    pub sandbox_id: String,
    pub pod_uid: String,
    /// The container's name in the pod spec.
    pub name: String,
    /// The restart attempt this instance was created for (== its restartCount).
    pub attempt: u32,
    pub image: String,
    pub image_ref: String,
    pub state: ContainerState,
    /// Nanoseconds since the epoch; 0 when unknown.
    pub created_at: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub exit_code: i32,
    pub reason: String,
    pub message: String,
    pub labels: HashMap<String, String>,
    pub annotations: HashMap<String, String>,
}

/// An image the runtime holds, as CRI `ListImages` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub size_bytes: u64,
}

/// One sandbox or container in a [`Runtime::relist`] snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelistEntry {
    pub id: String,
    pub pod_uid: String,
    /// `sandbox:ready`, `container:running`, … — only compared for changes.
    pub state: String,
}

/// The outcome of a command run synchronously in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// The streams of an exec or attach session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Streams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// What the pod lifecycle needs from a container runtime.
pub trait Runtime: Send + Sync + 'static {
    fn version(&self) -> impl Future<Output = Result<RuntimeVersion>> + Send;

    /// Runs a sandbox and returns its id.
    fn run_sandbox(&self, config: &PodSandboxConfig) -> impl Future<Output = Result<String>> + Send;
    fn stop_sandbox(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    fn remove_sandbox(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    /// The sandbox with its IPs.
    fn sandbox_status(&self, id: &str) -> impl Future<Output = Result<SandboxInfo>> + Send;
    /// Sandboxes created by a node agent, optionally only those of one pod UID.
    fn list_sandboxes(&self, pod_uid: Option<&str>) -> impl Future<Output = Result<Vec<SandboxInfo>>> + Send;

    /// The image id when the image is present locally.
    fn image_status(&self, image: &str) -> impl Future<Output = Result<Option<String>>> + Send;
    /// Pulls an image and returns its reference.
    fn pull_image(&self, image: &str, sandbox: &PodSandboxConfig) -> impl Future<Output = Result<String>> + Send;
    /// Every image the runtime holds, in no particular order.
    fn list_images(&self) -> impl Future<Output = Result<Vec<ImageInfo>>> + Send;

    /// Creates a container in a sandbox and returns its id.
    fn create_container(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
        sandbox: &PodSandboxConfig,
    ) -> impl Future<Output = Result<String>> + Send;
    fn start_container(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    /// Stops a container, killing it after `timeout_seconds`.
    fn stop_container(&self, id: &str, timeout_seconds: i64) -> impl Future<Output = Result<()>> + Send;
    fn remove_container(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    /// Container instances with their full status, optionally only those of one pod UID.
    fn list_containers(&self, pod_uid: Option<&str>) -> impl Future<Output = Result<Vec<ContainerInfo>>> + Send;
    /// A cheap snapshot of every sandbox's and container's state (one list call each, no status calls),
    /// polled to notice containers exiting between syncs.
    fn relist(&self) -> impl Future<Output = Result<Vec<RelistEntry>>> + Send;

    fn exec_sync(&self, id: &str, command: &[String], timeout_seconds: i64) -> impl Future<Output = Result<ExecOutput>> + Send;
    /// The URL of the runtime's streaming server for an exec session.
    fn exec_url(&self, id: &str, command: &[String], streams: Streams) -> impl Future<Output = Result<String>> + Send;
    fn attach_url(&self, id: &str, streams: Streams) -> impl Future<Output = Result<String>> + Send;
    fn port_forward_url(&self, sandbox_id: &str) -> impl Future<Output = Result<String>> + Send;
}

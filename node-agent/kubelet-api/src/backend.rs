//! What the kubelet API needs from the rest of the node agent. The node agent implements [`Backend`] over
//! its container runtime; tests implement it in memory.

use std::future::Future;
use std::path::PathBuf;

/// A container of a pod, as named in kubelet API paths (`/exec/{namespace}/{pod}/{uid?}/{container}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRef {
    pub namespace: String,
    pub pod: String,
    /// Present when the caller pinned the pod UID in the path.
    pub uid: Option<String>,
    pub container: String,
}

/// The streams and command of an exec or attach request (from its query string).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamOptions {
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// Why the backend could not serve a request.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The pod or container is not on this node (or not running).
    #[error("{0}")]
    NotFound(String),
    /// The runtime failed.
    #[error("container runtime error: {0}")]
    Runtime(String),
}

/// The node agent's side of the kubelet API. Streaming calls return the URL of the runtime's streaming
/// server (CRI `Exec`/`Attach`/`PortForward`); the API server relays the upgraded connection there, the way
/// upstream's kubelet does, instead of speaking the stream protocol itself.
pub trait Backend: Send + Sync + 'static {
    fn exec(&self, container: &ContainerRef, options: &StreamOptions) -> impl Future<Output = Result<url::Url, BackendError>> + Send;
    fn attach(&self, container: &ContainerRef, options: &StreamOptions) -> impl Future<Output = Result<url::Url, BackendError>> + Send;
    fn port_forward(&self, namespace: &str, pod: &str, uid: Option<&str>) -> impl Future<Output = Result<url::Url, BackendError>> + Send;
    /// The CRI-format log file of the container's current (or, with `previous`, last terminated) instance.
    fn log_file(&self, container: &ContainerRef, previous: bool) -> impl Future<Output = Result<PathBuf, BackendError>> + Send;

    /// Whether the container's current instance is still running; `kubectl logs -f` ends once it is not
    /// (and its log is drained). The default says "running", so a follow lasts until the client leaves or
    /// the backend stops finding the container.
    fn is_running(&self, container: &ContainerRef) -> impl Future<Output = Result<bool, BackendError>> + Send {
        let _ = container;
        std::future::ready(Ok(true))
    }
}

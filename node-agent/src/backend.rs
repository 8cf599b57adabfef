//! The kubelet API's view of this agent: streaming URLs from the runtime and container log files.

use std::path::PathBuf;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{ObjectRef, Store};
use kubelet_api::{Backend, BackendError, ContainerRef, StreamOptions};

use crate::pod::plan::{instances_by_name, latest_sandbox};
use crate::pod::runtime_config;
use crate::runtime::{ContainerInfo, ContainerState, Runtime, SandboxState, Streams};

/// [`Backend`] over the runtime and the pod watch cache.
pub struct AgentBackend<R> {
    runtime: Arc<R>,
    store: Store<Pod>,
    root_dir: PathBuf,
}

fn runtime_error(e: crate::runtime::Error) -> BackendError {
    match e {
        crate::runtime::Error::NotFound(what) => BackendError::NotFound(what),
        other => BackendError::Runtime(other.to_string()),
    }
}

fn parse_url(url: &str) -> Result<url::Url, BackendError> {
    url::Url::parse(url).map_err(|e| BackendError::Runtime(format!("runtime returned a bad streaming URL {url:?}: {e}")))
}

impl<R: Runtime> AgentBackend<R> {
    pub fn new(runtime: Arc<R>, store: Store<Pod>, root_dir: PathBuf) -> Self {
        Self { runtime, store, root_dir }
    }

    fn pod(&self, namespace: &str, name: &str, uid: Option<&str>) -> Result<Arc<Pod>, BackendError> {
        self.store
            .get(&ObjectRef::new(name).within(namespace))
            .filter(|p| uid.is_none_or(|u| p.metadata.uid.as_deref() == Some(u)))
            .ok_or_else(|| BackendError::NotFound(format!("pod {namespace}/{name} not found on this node")))
    }

    /// The latest and previous instances of a container.
    async fn instances(&self, c: &ContainerRef) -> Result<(Arc<Pod>, ContainerInfo, Option<ContainerInfo>), BackendError> {
        let pod = self.pod(&c.namespace, &c.pod, c.uid.as_deref())?;
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let all = self.runtime.list_containers(Some(&uid)).await.map_err(runtime_error)?;
        let by_name = instances_by_name(&all);
        let (latest, previous) = by_name
            .get(c.container.as_str())
            .map(|(l, p)| ((*l).clone(), p.cloned()))
            .ok_or_else(|| BackendError::NotFound(format!("container {} of pod {}/{} not found", c.container, c.namespace, c.pod)))?;
        Ok((pod, latest, previous))
    }

    async fn running(&self, c: &ContainerRef) -> Result<String, BackendError> {
        let (_, latest, _) = self.instances(c).await?;
        if latest.state != ContainerState::Running {
            return Err(BackendError::NotFound(format!("container {} of pod {}/{} is not running", c.container, c.namespace, c.pod)));
        }
        Ok(latest.id)
    }
}

fn streams(o: &StreamOptions) -> Streams {
    Streams { stdin: o.stdin, stdout: o.stdout, stderr: o.stderr, tty: o.tty }
}

impl<R: Runtime> Backend for AgentBackend<R> {
    async fn exec(&self, container: &ContainerRef, options: &StreamOptions) -> Result<url::Url, BackendError> {
        let id = self.running(container).await?;
        let url = self.runtime.exec_url(&id, &options.command, streams(options)).await.map_err(runtime_error)?;
        parse_url(&url)
    }

    async fn attach(&self, container: &ContainerRef, options: &StreamOptions) -> Result<url::Url, BackendError> {
        let id = self.running(container).await?;
        let url = self.runtime.attach_url(&id, streams(options)).await.map_err(runtime_error)?;
        parse_url(&url)
    }

    async fn port_forward(&self, namespace: &str, pod: &str, uid: Option<&str>) -> Result<url::Url, BackendError> {
        let p = self.pod(namespace, pod, uid)?;
        let uid = p.metadata.uid.clone().unwrap_or_default();
        let sandboxes = self.runtime.list_sandboxes(Some(&uid)).await.map_err(runtime_error)?;
        let sandbox = latest_sandbox(&sandboxes)
            .filter(|s| s.state == SandboxState::Ready)
            .ok_or_else(|| BackendError::NotFound(format!("pod {namespace}/{pod} has no running sandbox")))?;
        let url = self.runtime.port_forward_url(&sandbox.id).await.map_err(runtime_error)?;
        parse_url(&url)
    }

    async fn log_file(&self, container: &ContainerRef, previous: bool) -> Result<PathBuf, BackendError> {
        let (pod, latest, prev) = self.instances(container).await?;
        let instance = if previous {
            prev.ok_or_else(|| BackendError::NotFound(format!("previous terminated container \"{}\" in pod \"{}\" not found", container.container, container.pod)))?
        } else {
            latest
        };
        let m = &pod.metadata;
        let dir = runtime_config::log_dir(
            &self.root_dir,
            m.namespace.as_deref().unwrap_or_default(),
            m.name.as_deref().unwrap_or_default(),
            m.uid.as_deref().unwrap_or_default(),
        );
        Ok(dir.join(runtime_config::log_path(&instance.name, instance.attempt)))
    }
}

//! [`Runtime`] over CRI v1 gRPC on a unix socket (containerd's CRI plugin).

use std::path::PathBuf;

use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::{Channel, Endpoint, Uri};

use super::labels;
use super::{
    ContainerConfig, ContainerInfo, ContainerState, Error, ExecOutput, ImageInfo, PodSandboxConfig, RelistEntry, Result,
    Runtime, RuntimeVersion, SandboxInfo, SandboxState, Streams,
};

/// A CRI client over one unix socket. Cloning shares the connection.
#[derive(Clone)]
pub struct CriRuntime {
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

impl CriRuntime {
    /// Prepares a lazily connected channel to `socket`; the first call connects (and reconnects later
    /// if the runtime restarts).
    pub fn new(socket: PathBuf) -> Result<Self> {
        // The authority is ignored: every connection goes to the socket.
        let endpoint = Endpoint::try_from("http://localhost").map_err(|e| Error::Connect {
            endpoint: socket.display().to_string(),
            message: e.to_string(),
        })?;
        let channel = endpoint.connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(socket).await?)) }
        }));
        // containerd's limit is 16 MiB; list responses of a busy node can pass tonic's 4 MiB default.
        let runtime = RuntimeServiceClient::new(channel.clone()).max_decoding_message_size(16 << 20);
        let images = ImageServiceClient::new(channel).max_decoding_message_size(16 << 20);
        Ok(Self { runtime, images })
    }
}

fn call_error(operation: &'static str) -> impl FnOnce(tonic::Status) -> Error {
    move |status| {
        if status.code() == tonic::Code::NotFound {
            Error::NotFound(status.message().to_string())
        } else {
            Error::Call { operation, message: status.message().to_string() }
        }
    }
}

fn uid_selector(pod_uid: Option<&str>) -> std::collections::HashMap<String, String> {
    pod_uid.map(|uid| [(labels::POD_UID.to_string(), uid.to_string())].into()).unwrap_or_default()
}

fn sandbox_state(state: i32) -> SandboxState {
    if state == cri::PodSandboxState::SandboxReady as i32 { SandboxState::Ready } else { SandboxState::NotReady }
}

fn container_state(state: i32) -> ContainerState {
    match cri::ContainerState::try_from(state) {
        Ok(cri::ContainerState::ContainerCreated) => ContainerState::Created,
        Ok(cri::ContainerState::ContainerRunning) => ContainerState::Running,
        Ok(cri::ContainerState::ContainerExited) => ContainerState::Exited,
        _ => ContainerState::Unknown,
    }
}

fn image_spec(image: &str) -> cri::ImageSpec {
    cri::ImageSpec { image: image.to_string(), user_specified_image: image.to_string(), ..Default::default() }
}

impl Runtime for CriRuntime {
    async fn version(&self) -> Result<RuntimeVersion> {
        let response = self.runtime.clone().version(cri::VersionRequest::default()).await.map_err(call_error("get runtime version"))?;
        let v = response.into_inner();
        Ok(RuntimeVersion { runtime_name: v.runtime_name, runtime_version: v.runtime_version })
    }

    async fn run_sandbox(&self, config: &PodSandboxConfig) -> Result<String> {
        let request = cri::RunPodSandboxRequest { config: Some(config.clone()), runtime_handler: String::new() };
        let response = self.runtime.clone().run_pod_sandbox(request).await.map_err(call_error("run pod sandbox"))?;
        Ok(response.into_inner().pod_sandbox_id)
    }

    async fn stop_sandbox(&self, id: &str) -> Result<()> {
        let request = cri::StopPodSandboxRequest { pod_sandbox_id: id.to_string() };
        self.runtime.clone().stop_pod_sandbox(request).await.map_err(call_error("stop pod sandbox"))?;
        Ok(())
    }

    async fn remove_sandbox(&self, id: &str) -> Result<()> {
        let request = cri::RemovePodSandboxRequest { pod_sandbox_id: id.to_string() };
        self.runtime.clone().remove_pod_sandbox(request).await.map_err(call_error("remove pod sandbox"))?;
        Ok(())
    }

    async fn sandbox_status(&self, id: &str) -> Result<SandboxInfo> {
        let request = cri::PodSandboxStatusRequest { pod_sandbox_id: id.to_string(), verbose: false };
        let response = self.runtime.clone().pod_sandbox_status(request).await.map_err(call_error("get pod sandbox status"))?;
        let status = response.into_inner().status.ok_or_else(|| Error::NotFound(format!("sandbox {id}")))?;
        let metadata = status.metadata.unwrap_or_default();
        let mut ips = Vec::new();
        if let Some(network) = status.network {
            if !network.ip.is_empty() {
                ips.push(network.ip);
            }
            ips.extend(network.additional_ips.into_iter().map(|ip| ip.ip).filter(|ip| !ip.is_empty()));
        }
        Ok(SandboxInfo {
            id: status.id,
            pod_uid: metadata.uid,
            pod_name: metadata.name,
            pod_namespace: metadata.namespace,
            attempt: metadata.attempt,
            state: sandbox_state(status.state),
            created_at: status.created_at,
            ips,
        })
    }

    async fn list_sandboxes(&self, pod_uid: Option<&str>) -> Result<Vec<SandboxInfo>> {
        let filter = cri::PodSandboxFilter { label_selector: uid_selector(pod_uid), ..Default::default() };
        let request = cri::ListPodSandboxRequest { filter: Some(filter) };
        let response = self.runtime.clone().list_pod_sandbox(request).await.map_err(call_error("list pod sandboxes"))?;
        Ok(response
            .into_inner()
            .items
            .into_iter()
            .filter(|s| s.labels.contains_key(labels::POD_UID))
            .map(|s| {
                let metadata = s.metadata.unwrap_or_default();
                SandboxInfo {
                    id: s.id,
                    pod_uid: metadata.uid,
                    pod_name: metadata.name,
                    pod_namespace: metadata.namespace,
                    attempt: metadata.attempt,
                    state: sandbox_state(s.state),
                    created_at: s.created_at,
                    ips: Vec::new(),
                }
            })
            .collect())
    }

    async fn image_status(&self, image: &str) -> Result<Option<String>> {
        let request = cri::ImageStatusRequest { image: Some(image_spec(image)), verbose: false };
        let response = self.images.clone().image_status(request).await.map_err(call_error("get image status"))?;
        Ok(response.into_inner().image.map(|i| i.id))
    }

    async fn pull_image(&self, image: &str, sandbox: &PodSandboxConfig) -> Result<String> {
        let request = cri::PullImageRequest { image: Some(image_spec(image)), auth: None, sandbox_config: Some(sandbox.clone()) };
        let response = self.images.clone().pull_image(request).await.map_err(call_error("pull image"))?;
        Ok(response.into_inner().image_ref)
    }

    async fn list_images(&self) -> Result<Vec<ImageInfo>> {
        let request = cri::ListImagesRequest { filter: None };
        let response = self.images.clone().list_images(request).await.map_err(call_error("list images"))?;
        Ok(response
            .into_inner()
            .images
            .into_iter()
            .map(|i| ImageInfo { id: i.id, repo_tags: i.repo_tags, repo_digests: i.repo_digests, size_bytes: i.size })
            .collect())
    }

    async fn create_container(&self, sandbox_id: &str, config: &ContainerConfig, sandbox: &PodSandboxConfig) -> Result<String> {
        let request = cri::CreateContainerRequest {
            pod_sandbox_id: sandbox_id.to_string(),
            config: Some(config.clone()),
            sandbox_config: Some(sandbox.clone()),
        };
        let response = self.runtime.clone().create_container(request).await.map_err(call_error("create container"))?;
        Ok(response.into_inner().container_id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        let request = cri::StartContainerRequest { container_id: id.to_string() };
        self.runtime.clone().start_container(request).await.map_err(call_error("start container"))?;
        Ok(())
    }

    async fn stop_container(&self, id: &str, timeout_seconds: i64) -> Result<()> {
        let request = cri::StopContainerRequest { container_id: id.to_string(), timeout: timeout_seconds };
        self.runtime.clone().stop_container(request).await.map_err(call_error("stop container"))?;
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        let request = cri::RemoveContainerRequest { container_id: id.to_string() };
        self.runtime.clone().remove_container(request).await.map_err(call_error("remove container"))?;
        Ok(())
    }

    async fn list_containers(&self, pod_uid: Option<&str>) -> Result<Vec<ContainerInfo>> {
        let filter = cri::ContainerFilter { label_selector: uid_selector(pod_uid), ..Default::default() };
        let request = cri::ListContainersRequest { filter: Some(filter) };
        let response = self.runtime.clone().list_containers(request).await.map_err(call_error("list containers"))?;
        let mut out = Vec::new();
        for c in response.into_inner().containers {
            if !c.labels.contains_key(labels::POD_UID) {
                continue;
            }
            let request = cri::ContainerStatusRequest { container_id: c.id.clone(), verbose: false };
            let status = match self.runtime.clone().container_status(request).await {
                Ok(r) => r.into_inner().status,
                // Removed between the list and the status call.
                Err(s) if s.code() == tonic::Code::NotFound => continue,
                Err(s) => return Err(call_error("get container status")(s)),
            };
            let Some(status) = status else { continue };
            let metadata = status.metadata.unwrap_or_default();
            out.push(ContainerInfo {
                id: status.id,
                sandbox_id: c.pod_sandbox_id,
                pod_uid: c.labels.get(labels::POD_UID).cloned().unwrap_or_default(),
                name: c.labels.get(labels::CONTAINER_NAME).cloned().unwrap_or(metadata.name),
                attempt: metadata.attempt,
                image: status.image.map(|i| i.user_specified_image).filter(|i| !i.is_empty()).unwrap_or_else(|| c.image.map(|i| i.image).unwrap_or_default()),
                image_ref: status.image_ref,
                state: container_state(status.state),
                created_at: status.created_at,
                started_at: status.started_at,
                finished_at: status.finished_at,
                exit_code: status.exit_code,
                reason: status.reason,
                message: status.message,
                labels: status.labels,
                annotations: status.annotations,
            });
        }
        Ok(out)
    }

    async fn relist(&self) -> Result<Vec<RelistEntry>> {
        let request = cri::ListPodSandboxRequest { filter: None };
        let sandboxes = self.runtime.clone().list_pod_sandbox(request).await.map_err(call_error("list pod sandboxes"))?;
        let request = cri::ListContainersRequest { filter: None };
        let containers = self.runtime.clone().list_containers(request).await.map_err(call_error("list containers"))?;
        let uid = |labels: &std::collections::HashMap<String, String>| labels.get(labels::POD_UID).cloned();
        let mut out: Vec<RelistEntry> = sandboxes
            .into_inner()
            .items
            .into_iter()
            .filter_map(|s| Some(RelistEntry { pod_uid: uid(&s.labels)?, id: s.id, state: format!("sandbox:{}", s.state) }))
            .collect();
        out.extend(
            containers
                .into_inner()
                .containers
                .into_iter()
                .filter_map(|c| Some(RelistEntry { pod_uid: uid(&c.labels)?, id: c.id, state: format!("container:{}", c.state) })),
        );
        Ok(out)
    }

    async fn exec_sync(&self, id: &str, command: &[String], timeout_seconds: i64) -> Result<ExecOutput> {
        let request = cri::ExecSyncRequest { container_id: id.to_string(), cmd: command.to_vec(), timeout: timeout_seconds };
        let r = self.runtime.clone().exec_sync(request).await.map_err(call_error("exec in container"))?.into_inner();
        Ok(ExecOutput { exit_code: r.exit_code, stdout: r.stdout, stderr: r.stderr })
    }

    async fn exec_url(&self, id: &str, command: &[String], streams: Streams) -> Result<String> {
        let request = cri::ExecRequest {
            container_id: id.to_string(),
            cmd: command.to_vec(),
            tty: streams.tty,
            stdin: streams.stdin,
            stdout: streams.stdout,
            // With a TTY, stderr is merged into stdout; the runtime rejects both set.
            stderr: streams.stderr && !streams.tty,
        };
        let r = self.runtime.clone().exec(request).await.map_err(call_error("prepare exec"))?;
        Ok(r.into_inner().url)
    }

    async fn attach_url(&self, id: &str, streams: Streams) -> Result<String> {
        let request = cri::AttachRequest {
            container_id: id.to_string(),
            stdin: streams.stdin,
            tty: streams.tty,
            stdout: streams.stdout,
            stderr: streams.stderr && !streams.tty,
        };
        let r = self.runtime.clone().attach(request).await.map_err(call_error("prepare attach"))?;
        Ok(r.into_inner().url)
    }

    async fn port_forward_url(&self, sandbox_id: &str) -> Result<String> {
        let request = cri::PortForwardRequest { pod_sandbox_id: sandbox_id.to_string(), port: Vec::new() };
        let r = self.runtime.clone().port_forward(request).await.map_err(call_error("prepare port-forward"))?;
        Ok(r.into_inner().url)
    }
}

//! Carrying out one probe: what the probe's handler asks for ([`Action`], with ports and host resolved
//! against the container and the pod), and running it within the probe's timeout.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::net::TcpStream;

use super::Outcome;
use super::{grpc, http};
use crate::runtime::{self, Runtime};

/// Upstream keeps at most this much of a probe's output.
const MAX_OUTPUT: usize = 10 * 1024;

/// What a probe does, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Run this command in the container; exit code 0 is success.
    Exec(Vec<String>),
    /// Connect to this host and port.
    Tcp { host: String, port: u16 },
    Http(http::Request),
    /// Ask this gRPC server's health service.
    Grpc(grpc::Request),
}

/// Failures to resolve a probe into an [`Action`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("failed to find a handler in the probe: none of exec, httpGet, tcpSocket or grpc is set")]
    NoHandler,
    #[error("failed to find port {0:?} in the container's ports")]
    UnknownPort(String),
    #[error("failed to use port {0}: out of range")]
    InvalidPort(i32),
}

/// A port number, a container port name, or a number written as a string (upstream accepts that too).
fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, Error> {
    let number = match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => {
            let named = container.ports.iter().flatten().find(|p| p.name.as_deref() == Some(name.as_str())).map(|p| p.container_port);
            match named.or_else(|| name.parse().ok()) {
                Some(n) => n,
                None => return Err(Error::UnknownPort(name.clone())),
            }
        }
    };
    u16::try_from(number).ok().filter(|p| *p > 0).ok_or(Error::InvalidPort(number))
}

/// The action of `probe`; `pod_host` is the pod's IP (the host's for host-network pods), used when the
/// probe names no host.
pub fn action(probe: &Probe, container: &Container, pod_host: &str) -> Result<Action, Error> {
    if let Some(exec) = &probe.exec {
        return Ok(Action::Exec(exec.command.clone().unwrap_or_default()));
    }
    if let Some(h) = &probe.http_get {
        let mut path = h.path.clone().unwrap_or_default();
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        return Ok(Action::Http(http::Request {
            https: h.scheme.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("https")),
            host: h.host.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| pod_host.to_string()),
            port: resolve_port(&h.port, container)?,
            path,
            headers: h.http_headers.iter().flatten().map(|h| (h.name.clone(), h.value.clone())).collect(),
        }));
    }
    if let Some(t) = &probe.tcp_socket {
        let host = t.host.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| pod_host.to_string());
        return Ok(Action::Tcp { host, port: resolve_port(&t.port, container)? });
    }
    if let Some(g) = &probe.grpc {
        // Upstream always probes the pod's IP: a grpc probe has no host field.
        let port = u16::try_from(g.port).ok().filter(|p| *p > 0).ok_or(Error::InvalidPort(g.port))?;
        return Ok(Action::Grpc(grpc::Request { host: pod_host.to_string(), port, service: g.service.clone().unwrap_or_default() }));
    }
    Err(Error::NoHandler)
}

/// `host:port`, with brackets around IPv6 addresses.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// Runs `action` against container instance `container_id` within `timeout`.
pub async fn run<R: Runtime>(runtime: &R, container_id: &str, action: &Action, timeout: Duration) -> Outcome {
    match action {
        Action::Exec(command) => exec(runtime, container_id, command, timeout).await,
        Action::Tcp { host, port } => tcp(host, *port, timeout).await,
        Action::Http(request) => http::get(request, timeout).await,
        Action::Grpc(request) => grpc::check(request, timeout).await,
    }
}

/// Succeeds when a TCP connection opens within `timeout`.
pub async fn tcp(host: &str, port: u16, timeout: Duration) -> Outcome {
    let address = host_port(host, port);
    match tokio::time::timeout(timeout, TcpStream::connect((host, port))).await {
        Ok(Ok(_)) => Outcome::Success(String::new()),
        Ok(Err(e)) => Outcome::Failure(format!("dial tcp {address}: {e}")),
        Err(_) => Outcome::Failure(format!("dial tcp {address}: i/o timeout")),
    }
}

fn output_text(stdout: &[u8], stderr: &[u8]) -> String {
    let mut bytes: Vec<u8> = stdout.iter().chain(stderr).copied().take(MAX_OUTPUT).collect();
    while bytes.last().is_some_and(|b| b.is_ascii_whitespace()) {
        bytes.pop();
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Runs `command` in the container; exit code 0 is success, its output the probe's output.
pub async fn exec<R: Runtime>(runtime: &R, container_id: &str, command: &[String], timeout: Duration) -> Outcome {
    let seconds = i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX).max(1);
    // The runtime enforces the timeout; ours is a backstop in case it does not answer at all.
    let backstop = timeout + Duration::from_secs(2);
    match tokio::time::timeout(backstop, runtime.exec_sync(container_id, command, seconds)).await {
        Ok(Ok(out)) if out.exit_code == 0 => Outcome::Success(output_text(&out.stdout, &out.stderr)),
        Ok(Ok(out)) => {
            let text = output_text(&out.stdout, &out.stderr);
            Outcome::Failure(if text.is_empty() { format!("command {command:?} exited with {}", out.exit_code) } else { text })
        }
        Ok(Err(runtime::Error::Call { message, .. })) if message.contains("timeout") || message.contains("deadline") => {
            Outcome::Failure(format!("command {command:?} timed out"))
        }
        Ok(Err(e)) => Outcome::Error(e.to_string()),
        Err(_) => Outcome::Failure(format!("command {command:?} timed out")),
    }
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;

//! gRPC probes: one `grpc.health.v1.Health/Check` call over plaintext HTTP/2 on a fresh connection,
//! success when the server answers SERVING. As upstream (which mimics the grpc_health_probe tool), every
//! problem — no connection, an error status, any other serving status — is a probe failure, never an
//! error, and the whole probe (connecting included) shares the one timeout.

use std::time::Duration;

use tokio::time::Instant;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::Outcome;
use super::run::host_port;

/// Sent like upstream's prober does, so servers can tell probes apart.
const USER_AGENT: &str = "kube-probe/1.35";

/// How long to wait before dialling again after a refused connection: upstream's client blocks until
/// the connection is up or the timeout passes, so a server that comes up within the timeout passes.
const REDIAL_DELAY: Duration = Duration::from_millis(100);

/// A resolved grpc probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub host: String,
    pub port: u16,
    /// The service to ask about; empty asks about the server as a whole.
    pub service: String,
}

/// Upstream's rendering of a Go duration for whole seconds and milliseconds ("1s", "1.5s", "500ms").
fn go_duration(d: Duration) -> String {
    if d.as_secs() == 0 {
        return format!("{}ms", d.as_millis());
    }
    if d.subsec_millis() == 0 {
        return format!("{}s", d.as_secs());
    }
    format!("{}s", d.as_secs_f64())
}

/// Checks the health of `request.service` within `timeout`.
pub async fn check(request: &Request, timeout: Duration) -> Outcome {
    let address = host_port(&request.host, request.port);
    let deadline = Instant::now() + timeout;
    let endpoint = match Endpoint::from_shared(format!("http://{address}")).and_then(|e| e.user_agent(USER_AGENT)) {
        Ok(e) => e,
        Err(e) => return Outcome::Failure(format!("error: failed to connect service at {address:?}: {e}")),
    };
    let channel = match tokio::time::timeout_at(deadline, connect(&endpoint)).await {
        Ok(Ok(channel)) => channel,
        Ok(Err(e)) => return Outcome::Failure(format!("error: failed to connect service at {address:?}: {e}")),
        Err(_) => {
            return Outcome::Failure(format!(
                "timeout: failed to connect service {address:?} within {}: context deadline exceeded",
                go_duration(timeout)
            ));
        }
    };
    let mut client = HealthClient::new(channel);
    let call = client.check(HealthCheckRequest { service: request.service.clone() });
    let status = match tokio::time::timeout_at(deadline, call).await {
        Ok(Ok(response)) => response.into_inner().status,
        Ok(Err(status)) => return Outcome::Failure(rpc_failure(&status, timeout)),
        Err(_) => return Outcome::Failure(format!("timeout: health rpc did not complete within {}", go_duration(timeout))),
    };
    match ServingStatus::try_from(status) {
        Ok(ServingStatus::Serving) => Outcome::Success("service healthy".into()),
        Ok(other) => Outcome::Failure(format!("service unhealthy (responded with {:?})", other.as_str_name())),
        Err(_) => Outcome::Failure(format!("service unhealthy (responded with \"{status}\")")),
    }
}

/// Dials until a connection is up; only refusals and resets are worth another try, and the caller's
/// deadline ends the attempts.
async fn connect(endpoint: &Endpoint) -> Result<Channel, tonic::transport::Error> {
    loop {
        match endpoint.connect().await {
            Ok(channel) => return Ok(channel),
            Err(e) if retryable(&e) => tokio::time::sleep(REDIAL_DELAY).await,
            Err(e) => return Err(e),
        }
    }
}

/// Whether a connect error is transient (nothing listening yet) rather than a bad address.
fn retryable(error: &tonic::transport::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
            );
        }
        source = e.source();
    }
    // Transport errors without an I/O cause (a failed HTTP/2 handshake) may pass once the server is up.
    true
}

/// Upstream's wording for an RPC that ended with an error status.
fn rpc_failure(status: &tonic::Status, timeout: Duration) -> String {
    match status.code() {
        Code::Unimplemented => format!(
            "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): {}",
            status.message()
        ),
        Code::DeadlineExceeded => format!("timeout: health rpc did not complete within {}", go_duration(timeout)),
        code => format!("error: health rpc probe failed: rpc error: code = {code:?} desc = {}", status.message()),
    }
}

#[cfg(test)]
#[path = "grpc_tests.rs"]
mod tests;

//! HTTP(S) GET probes: one request on a fresh connection, success for 200 <= status < 400. Like upstream,
//! HTTPS certificates are not verified (a probe checks health, not identity). Redirects are not
//! followed: a 3xx answer is already a success.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::header::{ACCEPT, HOST, HeaderName, HeaderValue, USER_AGENT};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::Outcome;
use super::run::host_port;

/// Sent like upstream's prober does, so applications can tell probes apart.
const USER_AGENT_VALUE: &str = "kube-probe/1.35";

/// A resolved httpGet probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
    /// `httpHeaders`, in order; a `Host` header replaces the default one.
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn url(&self) -> String {
        format!("{}://{}{}", if self.https { "https" } else { "http" }, host_port(&self.host, self.port), self.path)
    }

    fn build(&self) -> Result<hyper::Request<Empty<Bytes>>, String> {
        let mut builder = hyper::Request::get(self.path.as_str())
            .header(HOST, host_port(&self.host, self.port))
            .header(USER_AGENT, USER_AGENT_VALUE)
            .header(ACCEPT, "*/*");
        let headers = builder.headers_mut().ok_or("invalid request")?;
        let mut replaced: Vec<HeaderName> = Vec::new();
        for (name, value) in &self.headers {
            let name = HeaderName::try_from(name.as_str()).map_err(|e| format!("invalid header name {name:?}: {e}"))?;
            let value = HeaderValue::try_from(value.as_str()).map_err(|e| format!("invalid value of header {name}: {e}"))?;
            // Headers given in the probe replace the defaults; repeated ones are all sent.
            if !replaced.contains(&name) {
                headers.remove(&name);
                replaced.push(name.clone());
            }
            headers.append(name, value);
        }
        builder.body(Empty::new()).map_err(|e| format!("invalid request: {e}"))
    }
}

/// GETs `request` within `timeout`.
pub async fn get(request: &Request, timeout: Duration) -> Outcome {
    let url = request.url();
    let req = match request.build() {
        Ok(r) => r,
        Err(e) => return Outcome::Error(format!("failed to build the request for {url}: {e}")),
    };
    match tokio::time::timeout(timeout, send(request, req)).await {
        Ok(Ok(status)) if (200..400).contains(&status) => Outcome::Success(String::new()),
        Ok(Ok(status)) => Outcome::Failure(format!("HTTP probe failed with statuscode: {status}")),
        Ok(Err(e)) => Outcome::Failure(format!("Get \"{url}\": {e}")),
        Err(_) => Outcome::Failure(format!("Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)")),
    }
}

async fn send(request: &Request, req: hyper::Request<Empty<Bytes>>) -> Result<u16, String> {
    let address = host_port(&request.host, request.port);
    let tcp = TcpStream::connect((request.host.as_str(), request.port)).await.map_err(|e| format!("dial tcp {address}: {e}"))?;
    if request.https {
        let name = ServerName::try_from(request.host.clone()).map_err(|e| format!("invalid server name {:?}: {e}", request.host))?;
        let tls = tokio_rustls::TlsConnector::from(tls_config()?).connect(name, tcp).await.map_err(|e| format!("tls handshake: {e}"))?;
        exchange(tls, req).await
    } else {
        exchange(tcp, req).await
    }
}

async fn exchange<S>(io: S, req: hyper::Request<Empty<Bytes>>) -> Result<u16, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(|e| e.to_string())?;
    let driver = tokio::spawn(connection);
    let result = sender.send_request(req).await.map(|r| r.status().as_u16()).map_err(|e| e.to_string());
    // One request per connection: dropping the response and aborting the driver closes it.
    driver.abort();
    result
}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls config: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Accepts any server certificate, but still checks the handshake signatures so the TLS session itself
/// is sound.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

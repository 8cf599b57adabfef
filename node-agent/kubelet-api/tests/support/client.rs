//! A TLS client for the kubelet API, with or without a client certificate.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::TlsConnector;

use super::pki::Identity;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Connects over TLS (trusting `ca_pem`) and speaks HTTP/1.1 with upgrades.
pub async fn connect(
    address: SocketAddr,
    ca_pem: &str,
    identity: Option<&Identity>,
) -> Result<SendRequest<Empty<Bytes>>, BoxError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca_pem.as_bytes())?)?;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match identity {
        Some(identity) => {
            let chain = vec![CertificateDer::from_pem_slice(
                identity.cert_pem.as_bytes(),
            )?];
            let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())?;
            builder.with_client_auth_cert(chain, key)?
        }
        None => builder.with_no_client_auth(),
    };
    let tcp = tokio::net::TcpStream::connect(address).await?;
    let server_name = ServerName::IpAddress(address.ip().into());
    let tls = TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(async move {
        let _ = connection.with_upgrades().await;
    });
    Ok(sender)
}

pub fn request(method: &str, uri: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(http::header::HOST, "127.0.0.1")
}

pub async fn send(
    sender: &mut SendRequest<Empty<Bytes>>,
    request: Request<Empty<Bytes>>,
) -> Result<Response<Incoming>, BoxError> {
    sender.ready().await?;
    Ok(sender.send_request(request).await?)
}

/// Sends a GET and reads the whole answer.
pub async fn get(
    sender: &mut SendRequest<Empty<Bytes>>,
    uri: &str,
) -> Result<(StatusCode, String), BoxError> {
    let response = send(sender, request("GET", uri).body(Empty::new())?).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

//! The TLS listener that serves the kubelet API: accept, handshake, identify the client certificate,
//! then serve HTTP/1.1 (with upgrades, for the streaming endpoints) on the connection.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::authn::{self, UserInfo};
use crate::backend::Backend;
use crate::handler::{self, Auth, Context};
use crate::tls;

/// A client that does not finish its TLS handshake in this time is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed accept (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Where and how the kubelet API listens.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub bind_address: SocketAddr,
    pub tls_cert_file: PathBuf,
    pub tls_private_key_file: PathBuf,
    pub client_ca_file: PathBuf,
    pub node_name: String,
}

/// Why the kubelet API server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration field is unusable.
    #[error("invalid kubelet API configuration: {field}: {reason}")]
    InvalidConfig {
        field: &'static str,
        reason: &'static str,
    },
    /// The certificates or key could not be loaded.
    #[error("failed to set up TLS for the kubelet API")]
    Tls(#[from] tls::Error),
    /// Binding the listening socket failed.
    #[error("failed to listen on {address}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A bound kubelet API server, not yet serving.
pub struct Server<B> {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    context: Arc<Context<B>>,
}

impl<B: Backend> Server<B> {
    /// Validates the configuration, loads the certificates and binds the socket.
    pub async fn bind(config: ServerConfig, backend: Arc<B>, auth: Auth) -> Result<Self, Error> {
        if config.node_name.is_empty() {
            return Err(Error::InvalidConfig {
                field: "node_name",
                reason: "must not be empty",
            });
        }
        let tls = tls::server_config(
            &config.tls_cert_file,
            &config.tls_private_key_file,
            &config.client_ca_file,
        )?;
        let listener = TcpListener::bind(config.bind_address)
            .await
            .map_err(|source| Error::Bind {
                address: config.bind_address,
                source,
            })?;
        let context = Arc::new(Context {
            backend,
            node_name: config.node_name,
            auth,
        });
        Ok(Self {
            listener,
            acceptor: TlsAcceptor::from(tls),
            context,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Accepts connections until `shutdown` resolves. Connections already open (a running exec, a
    /// followed log) are left to finish on their own.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        tracing::info!(address = ?self.local_addr(), node = %self.context.node_name, "serving the kubelet API");
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => return Ok(()),
                accepted = self.listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let acceptor = self.acceptor.clone();
                    let context = self.context.clone();
                    tokio::spawn(
                        async move { serve_connection(acceptor, context, stream, peer).await },
                    );
                }
                Err(error) => {
                    tracing::warn!(%error, "failed to accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
}

async fn serve_connection<B: Backend>(
    acceptor: TlsAcceptor,
    context: Arc<Context<B>>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
) {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let certificate_user = certificate_user(tls.get_ref().1.peer_certificates());
    let service = service_fn(move |request| {
        let context = context.clone();
        let user = certificate_user.clone();
        async move { Ok::<_, std::convert::Infallible>(handler::handle(context, user, request).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(tls), service)
        .with_upgrades();
    if let Err(error) = connection.await {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}

/// The user named by the (already verified) leaf certificate of the client, if it sent one.
fn certificate_user(chain: Option<&[rustls_pki_types::CertificateDer<'_>]>) -> Option<UserInfo> {
    let leaf = chain?.first()?;
    match authn::user_from_certificate(leaf) {
        Ok(user) => user,
        Err(error) => {
            tracing::warn!(%error, "ignoring an unreadable client certificate");
            None
        }
    }
}

/// Serves the kubelet API until `shutdown` resolves: client certificates and bearer tokens (TokenReview)
/// for authentication, SubjectAccessReview for authorization, both through `client`.
pub async fn serve<B: Backend>(
    config: ServerConfig,
    backend: Arc<B>,
    client: kube::Client,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    Server::bind(config, backend, Auth::webhook(client))
        .await?
        .run(shutdown)
        .await
}

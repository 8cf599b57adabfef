//! Builds the API client from `--kubeconfig` or the in-cluster environment.
//!
//! The client speaks HTTP/2 when the apiserver offers it (it does), multiplexing every request and watch
//! over one TLS connection the way Go clients do. kube-rs's default connector speaks HTTP/1.1 only, which
//! under a burst (a scheduler binding hundreds of pods) opens a TLS connection per request in flight.
//! Nothing here upgrades connections (exec/attach/port-forward), which HTTP/2 could not carry.

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use kube::client::ConfigExt;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tower::ServiceBuilder;

use crate::CommonFlags;
use crate::rate_limit::RateLimit;

/// Failures building an API client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kubeconfig file could not be read or parsed.
    #[error("failed to read kubeconfig {path}: {source}")]
    ReadKubeconfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// No usable configuration was found.
    #[error("failed to infer API client configuration: {0}")]
    Infer(#[source] kube::config::InferConfigError),
    /// The configuration was found but a client could not be built from it.
    #[error("failed to build API client: {0}")]
    Build(#[source] kube::Error),
    /// `--kube-api-qps` / `--kube-api-burst` cannot be used.
    #[error(transparent)]
    RateLimit(#[from] crate::rate_limit::Invalid),
}

/// A client over an HTTP/2-capable connector, with kube's own layers (base URI, extra headers such as
/// the user agent, authentication).
fn http2_client(config: kube::Config, limit: RateLimit) -> Result<kube::Client, kube::Error> {
    let tls = config.rustls_client_config()?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(config.connect_timeout);
    // As Go does: without it Nagle holds a request's DATA frame back until the HEADERS frame is acked,
    // and the server's delayed ACK turns every small request on a quiet connection into a 40 ms wait.
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().enable_http2().wrap_connector(http);
    // Pings find a dead connection (an apiserver restart) like Go's ReadIdleTimeout, rather than every
    // request and watch on it hanging.
    let hyper_client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .http2_keep_alive_interval(Some(std::time::Duration::from_secs(30)))
        .http2_keep_alive_timeout(std::time::Duration::from_secs(15))
        .http2_keep_alive_while_idle(true)
        .build(https);
    let service = ServiceBuilder::new()
        .option_layer(limit.layer())
        .layer(config.base_uri_layer())
        .layer(config.extra_headers_layer()?)
        .option_layer(config.auth_layer()?)
        .map_err(tower::BoxError::from)
        .service(hyper_client);
    Ok(kube::Client::new(service, config.default_namespace))
}

/// Builds a client for a component from its common flags: the kubeconfig (or inferred configuration,
/// in-cluster first) and the client-side rate limit.
pub async fn build(flags: &CommonFlags, user_agent: &str) -> Result<kube::Client, Error> {
    let limit = flags.rate_limit()?;
    let kubeconfig = flags.kubeconfig.as_deref();
    let mut config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).map_err(|source| Error::ReadKubeconfig {
                path: path.display().to_string(),
                source,
            })?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|source| Error::ReadKubeconfig { path: path.display().to_string(), source })?
        }
        None => kube::Config::infer().await.map_err(Error::Infer)?,
    };
    if let Ok(agent) = user_agent.parse() {
        config.headers.push((http::header::USER_AGENT, agent));
    }
    http2_client(config, limit).map_err(Error::Build)
}

//! Builds the API client from `--kubeconfig` or the in-cluster environment.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};

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
}

/// Builds a client from an explicit kubeconfig path, or infers one (in-cluster first).
pub async fn build(kubeconfig: Option<&Path>, user_agent: &str) -> Result<kube::Client, Error> {
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
    kube::Client::try_from(config).map_err(Error::Build)
}

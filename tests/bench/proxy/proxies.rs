//! The two service proxies under test, each started inside the benchmark's network namespace as a
//! crate::process child (`ip netns exec` execs the proxy, so the recorded PID is the proxy's own).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::monitor::in_netns;
use crate::process::{Running, spawn};

/// How long a proxy gets to exit after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// Which proxy a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proxy {
    Rudder,
    Kube,
}

impl Proxy {
    pub fn name(self) -> &'static str {
        match self {
            Proxy::Rudder => "rudder-service-proxy",
            Proxy::Kube => "kube-proxy",
        }
    }

    /// The nftables table the proxy owns (deleted before its run, so it starts from nothing).
    pub fn table(self) -> &'static str {
        match self {
            Proxy::Rudder => "rudder-proxy",
            Proxy::Kube => "kube-proxy",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "rudder" | "rudder-service-proxy" => Some(Proxy::Rudder),
            "kube" | "kube-proxy" => Some(Proxy::Kube),
            _ => None,
        }
    }
}

/// Where the binaries are and what the node inside the namespace looks like.
pub struct Launcher {
    pub netns: String,
    pub kubeconfig: PathBuf,
    pub rudder_bin: PathBuf,
    pub kube_bin: PathBuf,
    pub node_name: String,
    pub node_ip: String,
    pub cluster_cidr: String,
    pub work_dir: PathBuf,
}

impl Launcher {
    pub fn args(&self, which: Proxy) -> (PathBuf, Vec<String>) {
        let kubeconfig = self.kubeconfig.display().to_string();
        match which {
            Proxy::Rudder => (
                self.rudder_bin.clone(),
                vec![
                    format!("--kubeconfig={kubeconfig}"),
                    format!("--node-name={}", self.node_name),
                    format!("--node-ip={}", self.node_ip),
                    format!("--cluster-cidr={}", self.cluster_cidr),
                    format!("--health-bind-address={}:10256", self.node_ip),
                ],
            ),
            Proxy::Kube => (
                self.kube_bin.clone(),
                vec![
                    "--proxy-mode=nftables".into(),
                    format!("--kubeconfig={kubeconfig}"),
                    format!("--hostname-override={}", self.node_name),
                    format!("--cluster-cidr={}", self.cluster_cidr),
                    format!("--healthz-bind-address={}:10256", self.node_ip),
                    format!("--metrics-bind-address={}:10249", self.node_ip),
                    // Leave the host-wide conntrack sysctls alone: this is a benchmark in a namespace.
                    "--conntrack-max-per-core=0".into(),
                    "--conntrack-tcp-timeout-established=0".into(),
                    "--conntrack-tcp-timeout-close-wait=0".into(),
                    "--v=2".into(),
                ],
            ),
        }
    }

    pub async fn start(&self, which: Proxy) -> anyhow::Result<Running> {
        let (bin, args) = self.args(which);
        let program = bin.to_str().with_context(|| format!("{} is not UTF-8", bin.display()))?;
        let mut cmd = in_netns(&self.netns, program);
        cmd.args(&args);
        spawn(&self.work_dir, which.name(), cmd, &bin).await
    }
}

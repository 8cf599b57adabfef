//! Flags every component accepts, flattened into each binary's own clap parser.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::rate_limit::{self, RateLimit};

/// Flags shared by all rudder components.
#[derive(clap::Args, Debug, Clone)]
pub struct CommonFlags {
    /// Path to a kubeconfig. Without it the in-cluster service account, then `$KUBECONFIG` and
    /// `~/.kube/config`, are tried in that order.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Address serving `/healthz`, `/readyz` and `/metrics` (plain HTTP, like upstream's insecure
    /// health port; put it on loopback).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub health_bind_address: SocketAddr,

    /// Log format: `text` for people, `json` for machines.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,

    /// Client-side limit on requests per second to the apiserver (client-go's token bucket). 0, the
    /// default, sets no limit and leaves fairness to the apiserver's priority and fairness.
    #[arg(long, default_value_t = 0.0)]
    pub kube_api_qps: f64,

    /// Requests that may go at once above `--kube-api-qps` (the bucket's size); needed with a qps.
    #[arg(long, default_value_t = 0)]
    pub kube_api_burst: u32,
}

impl CommonFlags {
    /// The checked `--kube-api-qps` / `--kube-api-burst` pair.
    pub fn rate_limit(&self) -> Result<RateLimit, rate_limit::Invalid> {
        RateLimit::new(self.kube_api_qps, self.kube_api_burst)
    }
}

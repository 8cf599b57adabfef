//! Flags every component accepts, flattened into each binary's own clap parser.

use std::net::SocketAddr;
use std::path::PathBuf;

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
}

//! rudder-service-proxy: the kube-proxy replacement, one per node.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use prometheus_client::registry::Registry;
use rudder_service_proxy::config::Config;
use rudder_service_proxy::nft::Nft;
use rudder_service_proxy::sync::{self, Metrics, Syncer};

#[derive(Parser, Debug)]
#[command(name = "rudder-service-proxy", about = "Programs Services into nftables (table ip rudder-proxy) on one node")]
struct Flags {
    /// This node's name: endpoints with this nodeName are local (traffic policy Local).
    #[arg(long)]
    node_name: String,

    /// This node's IP: NodePorts are served on it unless --nodeport-addresses says otherwise.
    #[arg(long)]
    node_ip: Ipv4Addr,

    /// The pod network: traffic from elsewhere to a cluster IP is masqueraded. Empty disables that.
    #[arg(long, default_value = "10.244.0.0/16")]
    cluster_cidr: String,

    /// Addresses (CIDRs, comma separated) NodePorts are served on; default: --node-ip. A NodePort on a
    /// loopback address also needs the sysctl `net.ipv4.conf.all.route_localnet=1`, which this proxy
    /// leaves to whoever runs it; it does drop packets for loopback addresses from other hosts then.
    #[arg(long, value_delimiter = ',')]
    nodeport_addresses: Vec<String>,

    /// The nft program.
    #[arg(long, default_value = "nft")]
    nft_path: PathBuf,

    #[command(flatten)]
    common: component_base::CommonFlags,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    component_base::logging::init(&flags.common.log_format);
    let config = Config::new(&flags.node_name, flags.node_ip, &flags.cluster_cidr, &flags.nodeport_addresses)?;
    tracing::info!(node = %config.node_name, ?config.cluster_cidr, nodeport_addresses = ?config.nodeport_addresses, "starting");

    let client = component_base::client::build(&flags.common, "rudder-service-proxy").await?;
    let mut registry = Registry::with_prefix("rudder");
    let metrics = Metrics::register(&mut registry);
    let readiness = component_base::Readiness::default();
    let health = component_base::HealthServer::bind(flags.common.health_bind_address, readiness.clone(), registry)
        .await
        .with_context(|| format!("invalid --health-bind-address {}", flags.common.health_bind_address))?;
    tracing::info!(address = %health.local_addr()?, "serving health and metrics");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let health_task = tokio::spawn(health.serve(stopped()));

    let syncer = Syncer::new(config, Nft { program: flags.nft_path });
    let proxy = tokio::spawn(sync::run(client, syncer, metrics, readiness.clone(), stopped()));

    component_base::shutdown::signal_received().await;
    readiness.set_ready(false);
    let _ = stop_tx.send(true);
    let _ = proxy.await;
    let _ = health_task.await;
    tracing::info!("stopped");
    Ok(())
}

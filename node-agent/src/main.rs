//! rudder-node-agent: the kubelet replacement. Registers the Node, renews its Lease, and runs the pods
//! bound to it through containerd's CRI.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use kube::runtime::reflector;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use rudder_node_agent::backend::AgentBackend;
use rudder_node_agent::config::Flags;
use rudder_node_agent::events::PodEvents;
use rudder_node_agent::metrics::Metrics;
use rudder_node_agent::node::lease::NodeLease;
use rudder_node_agent::node::machine;
use rudder_node_agent::node::registration::{self, NodeConfig};
use rudder_node_agent::objects::Objects;
use rudder_node_agent::pod::context::{Context, Settings};
use rudder_node_agent::pod::dns::ResolvConf;
use rudder_node_agent::pod::sync::PodSync;
use rudder_node_agent::runtime::Runtime;
use rudder_node_agent::runtime::cri::CriRuntime;
use rudder_node_agent::volumes::Volumes;

#[derive(Parser, Debug)]
#[command(name = "rudder-node-agent", version, about = "rudder's node agent (kubelet replacement)")]
struct Cli {
    #[command(flatten)]
    common: component_base::CommonFlags,
    #[command(flatten)]
    flags: Flags,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    component_base::logging::init(&cli.common.log_format);
    let cfg = cli.flags.validate()?;
    std::fs::create_dir_all(&cfg.root_dir).with_context(|| format!("failed to create --root-dir {}", cfg.root_dir.display()))?;

    let mut registry = Registry::with_prefix("rudder");
    let metrics = Metrics::register(&mut registry);
    let readiness = component_base::Readiness::default();
    let health = component_base::HealthServer::bind(cli.common.health_bind_address, readiness.clone(), registry)
        .await
        .with_context(|| format!("failed to bind --health-bind-address {}", cli.common.health_bind_address))?;

    let shutdown = CancellationToken::new();
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            component_base::shutdown::signal_received().await;
            shutdown.cancel();
        });
    }
    let health_task = tokio::spawn(health.serve(shutdown.clone().cancelled_owned()));

    let client = component_base::client::build(&cli.common, &format!("rudder-node-agent/{}", cfg.node_name)).await?;
    let runtime = Arc::new(CriRuntime::new(cfg.runtime_socket.clone())?);
    let runtime_name = match runtime.version().await {
        Ok(v) => {
            tracing::info!(runtime = %v.runtime_name, version = %v.runtime_version, "connected to the container runtime");
            v.runtime_name
        }
        Err(e) => {
            tracing::warn!(error = %e, "container runtime not answering yet; the node reports NotReady until it does");
            "containerd".to_string()
        }
    };

    let machine_capacity = machine::capacity(&cfg.root_dir);
    let capacity = machine::Capacity {
        cpu_milli: cfg.capacity_cpu_milli.unwrap_or(machine_capacity.cpu_milli),
        memory_bytes: cfg.capacity_memory_bytes.unwrap_or(machine_capacity.memory_bytes),
        ephemeral_storage_bytes: machine_capacity.ephemeral_storage_bytes,
    };
    let node_cfg = NodeConfig {
        name: cfg.node_name.clone(),
        ip: cfg.node_ip.to_string(),
        kubelet_port: cfg.kubelet_port,
        pod_cidr: cfg.pod_cidr.clone(),
        labels: cfg.node_labels.clone(),
        capacity: capacity.clone(),
        max_pods: cfg.max_pods,
        system: machine::system_info(),
    };

    // Registration retries until the API server lets us in (it may still be starting).
    let node_uid = loop {
        match registration::register(&client, &node_cfg).await {
            Ok(uid) => break uid,
            Err(e) => tracing::warn!(error = %e, "node registration failed; retrying"),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
            () = shutdown.cancelled() => return Ok(()),
        }
    };
    tracing::info!(node = %cfg.node_name, "node registered");
    let status_task = tokio::spawn(registration::run_status_loop(
        client.clone(),
        node_cfg,
        runtime.clone(),
        cfg.node_status_update_frequency,
        shutdown.clone(),
    ));
    let lease = NodeLease::new(client.clone(), &cfg.node_name, &node_uid, cfg.node_lease_duration_seconds);
    let lease_task = tokio::spawn(lease.run(shutdown.clone()));

    let (store, writer) = reflector::store();
    let objects = Objects::new(client.clone());
    let ctx = Arc::new(Context {
        runtime: runtime.clone(),
        client: client.clone(),
        objects: objects.clone(),
        volumes: Volumes::new(cfg.root_dir.clone(), objects),
        events: PodEvents::new(client.clone(), &cfg.node_name),
        metrics,
        store: store.clone(),
        settings: Settings {
            node_name: cfg.node_name.clone(),
            node_ip: cfg.node_ip.to_string(),
            root_dir: cfg.root_dir.clone(),
            cluster_dns: cfg.cluster_dns.clone(),
            cluster_domain: cfg.cluster_domain.clone(),
            host_resolv: ResolvConf::host(),
            cpu_milli: capacity.cpu_milli,
            memory_bytes: capacity.memory_bytes,
        },
        runtime_name,
    });

    // The kubelet API (logs, exec, attach, port-forward) on --node-ip:--kubelet-port.
    let backend = Arc::new(AgentBackend::new(runtime.clone(), store, cfg.root_dir.clone()));
    let api_config = kubelet_api::ServerConfig {
        bind_address: std::net::SocketAddr::new(cfg.node_ip, cfg.kubelet_port),
        tls_cert_file: cfg.tls_cert_file.clone(),
        tls_private_key_file: cfg.tls_private_key_file.clone(),
        client_ca_file: cfg.client_ca_file.clone(),
        node_name: cfg.node_name.clone(),
    };
    let kubelet_api_task = {
        let (client, shutdown) = (client.clone(), shutdown.clone());
        tokio::spawn(async move {
            let result = kubelet_api::serve(api_config, backend, client, shutdown.clone().cancelled_owned()).await;
            if result.is_err() {
                shutdown.cancel();
            }
            result
        })
    };

    let ready = readiness.clone();
    let pods = PodSync::new(ctx, shutdown.clone());
    pods.run(writer, cfg.sync_frequency, move || ready.set_ready(true)).await;

    shutdown.cancel();
    readiness.set_ready(false);
    let (_, _, api_result) = tokio::join!(status_task, lease_task, kubelet_api_task);
    if let Ok(Err(e)) = api_result {
        return Err(anyhow::Error::new(e).context("kubelet API server failed"));
    }
    if let Ok(Err(e)) = health_task.await {
        tracing::warn!(error = %e, "health server failed");
    }
    tracing::info!("node agent stopped; containers keep running");
    Ok(())
}

//! The service-proxy benchmark (issue #5): rule-sync latency of rudder-service-proxy against stock
//! kube-proxy (nftables mode) at 1000 Services × 10 endpoints. Run it with `hack/bench.sh proxy`
//! (tests/bench/proxy/run.sh), which starts the throwaway control plane and network namespace this needs.
//!
//! For each proxy in turn, inside the namespace: `nft monitor` is started and calibrated, the proxy is
//! started, and the full sync is timed from its start to the last cluster IP or endpoint address
//! appearing in a ruleset event; then single endpoint changes (one address of one EndpointSlice
//! replaced by a new one) are timed from the write returning to the new address appearing.

// The helper modules' unit tests run in the bench_proxy_unit test target; here (no harness) they are inert.
#![cfg_attr(test, allow(unused_imports, dead_code))]

#[path = "../bench/cli.rs"]
mod cli;
#[path = "../bench/proxy/monitor.rs"]
mod monitor;
#[path = "../bench/proxy/objects.rs"]
mod objects;
#[path = "../bench/proxy/proxies.rs"]
mod proxies;
#[path = "../bench/process.rs"]
mod process;
#[path = "../bench/proxy/report.rs"]
mod report;
#[path = "../bench/table.rs"]
mod table;

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};

use monitor::Monitor;
use proxies::{Launcher, Proxy};
use report::RunResult;

#[derive(Parser, Debug)]
#[command(about = "Service proxy rule-sync benchmark (use hack/bench.sh proxy)")]
struct Args {
    /// Admin kubeconfig of the throwaway apiserver (never the shared cluster's).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The network namespace the proxies run in (made by the runner script).
    #[arg(long, default_value = "rudder-bench")]
    netns: String,
    #[arg(long, default_value = "rudder-bench-node")]
    node_name: String,
    /// The node's address inside the namespace.
    #[arg(long, default_value = "10.250.0.2")]
    node_ip: Ipv4Addr,
    #[arg(long, default_value = "10.244.0.0/16")]
    cluster_cidr: String,
    #[arg(long, default_value = "target/release/rudder-service-proxy")]
    rudder_proxy: PathBuf,
    #[arg(long, default_value = "/var/cache/rudder/bin/kube-proxy-v1.35.4")]
    kube_proxy: PathBuf,
    /// Comma-separated, in run order: rudder, kube.
    #[arg(long, default_value = "rudder,kube")]
    proxies: String,
    #[arg(long, default_value_t = 1000)]
    services: u32,
    /// Ready endpoints per Service.
    #[arg(long, default_value_t = 10)]
    endpoints: u32,
    /// Single endpoint changes timed per proxy.
    #[arg(long, default_value_t = 20)]
    changes: u32,
    /// Pause between changes. kube-proxy's nftables mode syncs at most once a second (minSyncPeriod
    /// 1s by default), so changes closer than that would measure its rate limit, not its sync.
    #[arg(long, default_value_t = 1500)]
    change_interval_ms: u64,
    /// Seconds a proxy may take to program everything before its run is marked FAIL.
    #[arg(long, default_value_t = 300)]
    full_sync_timeout: u64,
    /// Seconds one change may take to show up before it counts as never seen.
    #[arg(long, default_value_t = 10)]
    change_timeout: u64,
    /// Requests in flight while creating the objects.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// The target for one endpoint change, in milliseconds.
    #[arg(long, default_value_t = 100.0)]
    target_ms: f64,
    #[command(flatten)]
    common: cli::Common,
}

#[tokio::main]
async fn main() {
    cli::exit_with(run().await);
}

fn log(msg: impl std::fmt::Display) {
    eprintln!("[{}] {msg}", jiff::Timestamp::now().strftime("%H:%M:%S"));
}

/// Ok(true) when every run completed.
async fn run() -> anyhow::Result<bool> {
    if cli::started_without_arguments("service proxy", "hack/bench.sh proxy") {
        return Ok(true);
    }
    let args = Args::parse();
    objects::check_sizes(args.services, args.endpoints, args.changes).map_err(anyhow::Error::msg)?;
    let selected = cli::parse_list("--proxies", "proxy", &args.proxies, Proxy::parse)?;
    if selected.contains(&Proxy::Rudder) && !args.rudder_proxy.is_file() {
        bail!("--rudder-proxy: {} does not exist", args.rudder_proxy.display());
    }
    if args.common.check_args {
        return Ok(true);
    }

    let started = jiff::Timestamp::now();
    let (kubeconfig_path, client) = cli::client(args.kubeconfig.as_deref()).await?;

    let t = Instant::now();
    create_objects(&client, &args).await?;
    log(format!("created {} Services with {} endpoints each in {:.1}s", args.services, args.endpoints, t.elapsed().as_secs_f64()));

    let launcher = Launcher {
        netns: args.netns.clone(),
        kubeconfig: kubeconfig_path,
        rudder_bin: args.rudder_proxy.clone(),
        kube_bin: args.kube_proxy.clone(),
        node_name: args.node_name.clone(),
        node_ip: args.node_ip.to_string(),
        cluster_cidr: args.cluster_cidr.clone(),
        work_dir: args.common.work_dir.clone(),
    };
    let mut runs = Vec::new();
    for (index, &which) in selected.iter().enumerate() {
        let mut result = RunResult { proxy: which.name().to_string(), ..Default::default() };
        if which == Proxy::Kube && !args.kube_proxy.is_file() {
            result.failures.push(format!("not run: {} does not exist", args.kube_proxy.display()));
        } else {
            log(format!("measuring {}", which.name()));
            let first_replacement = u32::try_from(index).unwrap_or(0) * args.changes;
            if let Err(e) = measure(&client, &args, &launcher, which, first_replacement, &mut result).await {
                result.failures.push(format!("{e:#}"));
            }
        }
        runs.push(result);
    }

    let rudder = runs.iter().find(|r| r.proxy == Proxy::Rudder.name());
    let mut text = format!(
        "service proxy benchmark {} — {} Services × {} endpoints, {} changes per proxy {} ms apart, load average at end: {}\n",
        started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        args.services,
        args.endpoints,
        args.changes,
        args.change_interval_ms,
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
    text.push_str(
        "full sync: proxy start → every cluster IP and endpoint address in its rules; change: EndpointSlice write returned → \
         new address in its rules. Times are raw (nft monitor's delay not subtracted; see its column: an upper bound from \
         starting a probe nft, and the delay after that nft exited, negative when the event was read first)\n",
    );
    text.push_str(&report::table(&runs));
    text.push_str(&report::target_line(rudder, args.target_ms, args.services));
    text.push('\n');
    println!("{text}");
    let file = cli::write_report(&args.common.out_dir, "service-proxy", started, &text)?;
    log(format!("written to {}", file.display()));
    Ok(runs.iter().all(|r| r.failures.is_empty()))
}

/// The namespace, the Node the proxies run as (kube-proxy reads its addresses), and the Services
/// with their EndpointSlices.
async fn create_objects(client: &Client, args: &Args) -> anyhow::Result<()> {
    let ns: Namespace = serde_json::from_value(serde_json::json!({ "metadata": { "name": objects::NAMESPACE } }))?;
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.context("failed to create the namespace")?;
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(serde_json::json!({
        "metadata": { "name": args.node_name, "labels": { "kubernetes.io/hostname": args.node_name } },
    }))?;
    nodes.create(&PostParams::default(), &node).await.context("failed to create the node")?;
    let status = serde_json::json!({ "status": { "addresses": [
        { "type": "InternalIP", "address": args.node_ip.to_string() },
        { "type": "Hostname", "address": args.node_name },
    ]}});
    nodes
        .patch_status(&args.node_name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .context("failed to set the node's addresses")?;

    let services: Api<Service> = Api::namespaced(client.clone(), objects::NAMESPACE);
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), objects::NAMESPACE);
    futures::stream::iter(0..args.services)
        .map(|i| {
            let (services, slices) = (services.clone(), slices.clone());
            async move {
                let pp = PostParams::default();
                services
                    .create(&pp, &objects::service(i)?)
                    .await
                    .with_context(|| format!("failed to create {}", objects::service_name(i)))?;
                let slice = objects::endpoint_slice(i, &objects::initial_endpoints(i, args.endpoints))?;
                slices.create(&pp, &slice).await.with_context(|| format!("failed to create {}", objects::slice_name(i)))?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .try_collect::<()>()
        .await
}

/// Every address the rules must hold once the proxy has synced: the cluster IPs and the endpoint
/// addresses as they are now (an earlier run changed some).
async fn required_addresses(client: &Client, services: u32) -> anyhow::Result<HashSet<Ipv4Addr>> {
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), objects::NAMESPACE);
    let list = slices.list(&ListParams::default()).await.context("failed to list the EndpointSlices")?;
    let mut want: HashSet<Ipv4Addr> = (0..services).map(objects::cluster_ip).collect();
    for slice in list {
        for endpoint in slice.endpoints {
            want.extend(endpoint.addresses.iter().filter_map(|a| a.parse::<Ipv4Addr>().ok()));
        }
    }
    Ok(want)
}

/// Removes `proxy`'s tables from the namespace (only there: every nft call goes through `ip netns exec`).
async fn delete_tables(netns: &str, proxy: Proxy) {
    for family in ["ip", "ip6"] {
        let _ = monitor::nft(netns, &["delete", "table", family, proxy.table()]).await;
    }
}

async fn measure(
    client: &Client,
    args: &Args,
    launcher: &Launcher,
    which: Proxy,
    first_replacement: u32,
    result: &mut RunResult,
) -> anyhow::Result<()> {
    delete_tables(&args.netns, which).await;
    let logs = args.common.work_dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("failed to create {}", logs.display()))?;
    let mut monitor = Monitor::start(&args.netns, &logs.join(format!("nft-monitor-{}.log", which.name()))).await?;
    let calibration = monitor::calibrate(&args.netns, &mut monitor, 10).await?;
    result.monitor_upper_ms = calibration.upper_ms;
    result.monitor_after_exit_ms = calibration.after_exit_ms;
    let mut pending = required_addresses(client, args.services).await?;
    let total = pending.len();
    monitor.drain();

    let mut proxy = launcher.start(which).await?;
    let outcome =
        full_sync_and_changes(client, args, which, first_replacement, &mut monitor, &mut proxy, &mut pending, total, result).await;
    proxy.stop(Some(proxies::STOP_GRACE)).await;
    monitor.stop().await;
    delete_tables(&args.netns, which).await;
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn full_sync_and_changes(
    client: &Client,
    args: &Args,
    which: Proxy,
    first_replacement: u32,
    monitor: &mut Monitor,
    proxy: &mut process::Running,
    pending: &mut HashSet<Ipv4Addr>,
    total: usize,
    result: &mut RunResult,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.full_sync_timeout);
    let mut last_progress = started;
    while !pending.is_empty() {
        let step = deadline.min(Instant::now() + Duration::from_secs(1));
        match monitor.next(step).await {
            Some(event) => {
                for ip in monitor::ipv4s_in(&event.line) {
                    pending.remove(&ip);
                }
                if pending.is_empty() {
                    result.full_sync = Some(event.at.saturating_duration_since(started));
                }
            }
            None => {
                if let Some(why) = proxy.exited().or_else(|| monitor.exited()) {
                    bail!("full sync: {why} with {} of {total} addresses still missing", pending.len());
                }
                if Instant::now() >= deadline {
                    bail!("full sync: {} of {total} addresses still missing after {}s", pending.len(), args.full_sync_timeout);
                }
                if last_progress.elapsed() >= Duration::from_secs(10) {
                    log(format!("  {}: {} of {total} addresses seen so far", which.name(), total - pending.len()));
                    last_progress = Instant::now();
                }
            }
        }
    }
    let full = result.full_sync.unwrap_or_default();
    log(format!("  full sync: {:.2}s", full.as_secs_f64()));
    // The monitor might drop events under a flood; the table itself must agree.
    let listed = monitor::nft(&args.netns, &["list", "table", "ip", which.table()]).await?;
    let present: HashSet<Ipv4Addr> = listed.lines().flat_map(monitor::ipv4s_in).collect();
    let want = required_addresses(client, args.services).await?;
    let missing = want.difference(&present).count();
    if missing > 0 {
        result
            .failures
            .push(format!("after the full sync, {missing} of {total} addresses are not in `nft list table ip {}`", which.table()));
    }

    // Let the proxy settle (kube-proxy's post-start syncs) before timing single changes.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), objects::NAMESPACE);
    for n in 0..args.changes {
        // Spread over the services with a stride coprime to any count in use.
        let i = ((u64::from(n) * 7919) % u64::from(args.services)) as u32;
        let name = objects::slice_name(i);
        let mut slice = slices.get(&name).await.with_context(|| format!("failed to get {name}"))?;
        let position = (n % args.endpoints) as usize;
        let new_ip = objects::replacement_ip(first_replacement + n);
        let endpoint = slice.endpoints.get_mut(position).with_context(|| format!("{name} has no endpoint {position}"))?;
        endpoint.addresses = vec![new_ip.to_string()];
        result.changes_tried += 1;
        monitor.drain();
        slices.replace(&name, &PostParams::default(), &slice).await.with_context(|| format!("failed to update {name}"))?;
        let written = Instant::now();
        match monitor.wait_for_ip(new_ip, written + Duration::from_secs(args.change_timeout)).await {
            Some(seen) => result.change_ms.push(seen.saturating_duration_since(written).as_secs_f64() * 1000.0),
            None => {
                let why = proxy.exited().or_else(|| monitor.exited()).unwrap_or_default();
                result.failures.push(format!("change {n} ({name}: {new_ip}) not seen within {}s {why}", args.change_timeout));
            }
        }
        tokio::time::sleep(Duration::from_millis(args.change_interval_ms)).await;
    }
    log(format!(
        "  changes: p50 {:.1} ms, p99 {:.1} ms ({} of {})",
        table::percentile(&result.change_ms, 0.5).unwrap_or(f64::NAN),
        table::percentile(&result.change_ms, 0.99).unwrap_or(f64::NAN),
        result.change_ms.len(),
        result.changes_tried
    ));
    Ok(())
}

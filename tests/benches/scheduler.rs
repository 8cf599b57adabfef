//! The scheduler benchmark (issue #3), modelled on upstream's scheduler_perf. Run it with
//! `hack/bench.sh scheduler [--cases a,b] [--quick]`, which starts the throwaway control plane this needs.
//!
//! Per case: N Ready nodes as bare API objects (no agents), then for each scheduler in turn (the same
//! apiserver, a fresh namespace, the scheduler started fresh) M pods created 100 at a time, timed from the
//! first create sent to the last spec.nodeName observed on a watch. Prints one table per case and writes
//! them to --out-dir.

// The helper modules' unit tests run in the bench_unit test target; here (no harness) they are inert.
#![cfg_attr(test, allow(unused_imports, dead_code))]

#[path = "../bench/cases.rs"]
mod cases;
#[path = "../bench/children.rs"]
mod children;
#[path = "../bench/cli.rs"]
mod cli;
#[path = "../bench/measure.rs"]
mod measure;
#[path = "../bench/process.rs"]
mod process;
#[path = "../bench/report.rs"]
mod report;
#[path = "../bench/table.rs"]
mod table;
#[path = "../bench/verify.rs"]
mod verify;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};

use cases::Case;
use children::{Launcher, Scheduler};
use report::RunResult;

#[derive(Parser, Debug)]
#[command(about = "Scheduler throughput/latency benchmark (use hack/bench.sh scheduler)")]
struct Args {
    /// Admin kubeconfig of the throwaway apiserver (never the shared cluster's).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    #[arg(long, default_value = "target/release/rudder-scheduler")]
    rudder_scheduler: PathBuf,
    #[arg(long, default_value = "/var/cache/rudder/bin/kube-scheduler-v1.35.4")]
    kube_scheduler: PathBuf,
    /// Comma-separated case names; empty runs all.
    #[arg(long, default_value = "")]
    cases: String,
    /// Divide every node and pod count by 10 (a smoke run).
    #[arg(long)]
    quick: bool,
    /// Comma-separated, in run order: rudder, kube, noop.
    #[arg(long, default_value = "rudder,kube,noop")]
    schedulers: String,
    /// Seconds one scheduler may take on one case before the run is cut short and marked FAIL
    /// (default 180 with --quick, else 900).
    #[arg(long)]
    timeout: Option<u64>,
    /// Requests in flight for node/pod creation and no-op binds.
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
    #[command(flatten)]
    common: cli::Common,
}

#[tokio::main]
async fn main() {
    cli::exit_with(run().await);
}

/// Ok(true) when every run completed.
async fn run() -> anyhow::Result<bool> {
    if cli::started_without_arguments("scheduler", "hack/bench.sh scheduler") {
        return Ok(true);
    }
    let args = Args::parse();
    let selected = cases::select(&args.cases)?;
    let schedulers = cli::parse_list("--schedulers", "scheduler", &args.schedulers, Scheduler::parse)?;
    for (flag, path) in [("--rudder-scheduler", &args.rudder_scheduler), ("--kube-scheduler", &args.kube_scheduler)] {
        if !path.is_file() {
            bail!("{flag}: {} does not exist", path.display());
        }
    }
    if args.common.check_args {
        return Ok(true);
    }
    let timeout = Duration::from_secs(args.timeout.unwrap_or(if args.quick { 180 } else { 900 }));
    let (kubeconfig_path, client) = cli::client(args.kubeconfig.as_deref()).await?;
    let launcher = Launcher {
        kubeconfig: kubeconfig_path,
        rudder_bin: args.rudder_scheduler.clone(),
        kube_bin: args.kube_scheduler.clone(),
        work_dir: args.common.work_dir.clone(),
    };

    let started = jiff::Timestamp::now();
    let mut out = format!(
        "rudder scheduler benchmark, {started:.0}{}\nmachine: {} cpus, load average at start {}\n\n",
        if args.quick { ", --quick (counts / 10)" } else { "" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    );
    print!("{out}");
    let mut failed = false;
    for case in selected {
        let case = if args.quick { case.scaled(10) } else { case };
        let table = run_case(&client, &launcher, case, &schedulers, &args, timeout).await;
        failed |= table.contains("\nFAIL ");
        println!("{table}");
        out.push_str(&table);
        out.push('\n');
    }
    let file = cli::write_report(&args.common.out_dir, "scheduler", started, &out)?;
    println!("written to {}", file.display());
    if failed {
        // Not an Err: the FAIL lines already say what went wrong, a backtrace would only bury them.
        eprintln!("FAIL: some runs failed (see the FAIL lines above)");
    }
    Ok(!failed)
}

/// One case: its nodes, every scheduler in turn, the nodes deleted again; returns the case's table.
async fn run_case(
    client: &Client,
    launcher: &Launcher,
    case: Case,
    schedulers: &[Scheduler],
    args: &Args,
    timeout: Duration,
) -> String {
    let title = format!("{} ({} nodes, {} pods)", case.name, case.nodes, case.pods);
    eprintln!("[{}] creating {} nodes", case.name, case.nodes);
    let t = Instant::now();
    let nodes = match create_nodes(client, case.nodes, args.concurrency).await {
        Ok(n) => n,
        Err(e) => {
            let _ = delete_nodes(client).await;
            return format!("== {title}\nFAIL {}: {e:#}\n", case.name);
        }
    };
    eprintln!("[{}] nodes created in {:.1}s", case.name, t.elapsed().as_secs_f64());
    let nodes = Arc::new(nodes);
    let mut runs = Vec::new();
    for sched in schedulers {
        let r = run_one(client, launcher, case, *sched, nodes.clone(), args.concurrency, timeout).await;
        eprintln!(
            "[{}] {}: {}/{} bound, {:.1} pods/s{}",
            case.name,
            r.scheduler,
            r.bound,
            r.total,
            r.pods_per_second().unwrap_or(0.0),
            if r.failures.is_empty() { String::new() } else { format!(", FAIL: {}", r.failures.join("; ")) }
        );
        runs.push(r);
    }
    let mut table = report::table(&title, case.name, &runs);
    if let Err(e) = delete_nodes(client).await {
        table.push_str(&format!("FAIL {}: cleanup: {e:#}\n", case.name));
    }
    table
}

/// One scheduler on one case, in a fresh namespace; every error ends up in the result's failures.
async fn run_one(
    client: &Client,
    launcher: &Launcher,
    case: Case,
    sched: Scheduler,
    nodes: Arc<Vec<String>>,
    concurrency: usize,
    timeout: Duration,
) -> RunResult {
    let mut result = RunResult { scheduler: sched.name().into(), total: case.pods, ..Default::default() };
    let ns = format!("{}-{}", case.name, sched.slug());
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    if let Err(e) = create_namespace(client, &ns).await {
        result.failures.push(format!("{e:#}"));
        return result;
    }
    let mut child = match launcher.start(sched, case.name).await {
        Ok(c) => c,
        Err(e) => {
            result.failures.push(format!("{e:#}"));
            return result;
        }
    };
    if let Some(c) = child.as_mut() {
        eprintln!("[{}] {}: started, waiting for it to bind a warm-up pod", case.name, c.name());
        if let Err(e) = warm_up(&api, c).await {
            result.failures.push(format!("{e:#}"));
        }
    }
    if result.failures.is_empty() {
        measure_run(&api, case, sched, nodes, concurrency, timeout, child.as_mut(), &mut result).await;
    }
    if let Some(c) = child {
        c.stop(None).await;
    }
    if let Err(e) = measure::delete_all_pods(&api, Duration::from_secs(120)).await {
        result.failures.push(format!("cleanup: {e}"));
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn measure_run(
    api: &Api<Pod>,
    case: Case,
    sched: Scheduler,
    nodes: Arc<Vec<String>>,
    concurrency: usize,
    timeout: Duration,
    mut child: Option<&mut process::Running>,
    result: &mut RunResult,
) {
    let selector = format!("{}={}", cases::APP_LABEL, case.app());
    let tracker = measure::Shared::default();
    let (pending_tx, pending_rx) = tokio::sync::mpsc::unbounded_channel();
    let noop = sched == Scheduler::Noop;
    let (watch, ready) =
        measure::spawn_watch(api.clone(), selector.clone(), tracker.clone(), noop.then_some(pending_tx));
    let binder = noop.then(|| measure::spawn_noop_binder(api.clone(), nodes.clone(), pending_rx, concurrency));
    if tokio::time::timeout(Duration::from_secs(60), ready).await.is_err() {
        result.failures.push("the pod watch did not start within 60s".into());
        watch.abort();
        return;
    }
    let mut pods = Vec::with_capacity(case.pods);
    for i in 0..case.pods {
        match cases::pod(case.kind, case.app(), &format!("pod-{i}")) {
            Ok(p) => pods.push(p),
            Err(e) => {
                result.failures.push(format!("{e:#}"));
                watch.abort();
                return;
            }
        }
    }
    let t0 = Instant::now();
    let create_errors = measure::create_pods(api, pods, &tracker, concurrency).await;
    eprintln!("[{}] {}: {} creates sent in {:.1}s", case.name, sched.name(), case.pods, t0.elapsed().as_secs_f64());
    if let Some(first) = create_errors.first() {
        result.failures.push(format!("{} creates failed, first: {first}", create_errors.len()));
    }
    let expected = case.pods - create_errors.len();
    let stopped =
        measure::wait_bound(&tracker, expected, t0 + timeout, || child.as_mut().and_then(|c| c.exited())).await;
    result.failures.extend(stopped);
    watch.abort();
    if let Some(binder) = binder {
        match tokio::time::timeout(Duration::from_secs(30), binder).await {
            Ok(Ok(errors)) if !errors.is_empty() => {
                result.failures.push(format!("{} binds failed, first: {}", errors.len(), errors[0]));
            }
            Ok(_) => {}
            Err(_) => result.failures.push("the no-op binder did not finish within 30s".into()),
        }
    }
    {
        let t = measure::lock(&tracker);
        result.bound = t.bound.len();
        let last = t.bound.values().max().copied().unwrap_or_else(Instant::now);
        result.elapsed = last.saturating_duration_since(t0);
        result.latencies_ms = t
            .bound
            .iter()
            .filter_map(|(name, b)| t.created.get(name).map(|c| b.saturating_duration_since(*c).as_secs_f64() * 1e3))
            .collect();
    }
    match measure::placements(api, &selector).await {
        Ok(p) => result.failures.extend(verify::check(case.kind, &p, case.pods, case.nodes)),
        Err(e) => result.failures.push(format!("failed to list the pods to verify them: {e}")),
    }
}

/// Waits until the scheduler binds one throwaway pod (its caches are synced), then deletes it.
async fn warm_up(api: &Api<Pod>, child: &mut process::Running) -> anyhow::Result<()> {
    let pod = cases::pod(cases::Kind::Basic, "bench-warmup", "warmup")?;
    api.create(&PostParams::default(), &pod).await.context("failed to create the warm-up pod")?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(why) = child.exited() {
            bail!("{why}");
        }
        let p = api.get("warmup").await.context("failed to read the warm-up pod")?;
        if p.spec.and_then(|s| s.node_name).is_some_and(|n| !n.is_empty()) {
            break;
        }
        if Instant::now() >= deadline {
            bail!("{} did not bind the warm-up pod within 120s; log {}", child.name(), child.log.display());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let dp = DeleteParams { grace_period_seconds: Some(0), ..Default::default() };
    api.delete("warmup", &dp).await.context("failed to delete the warm-up pod")?;
    Ok(())
}

async fn create_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("failed to create namespace {name}")),
    }
}

/// Creates the case's nodes `concurrency` at a time; sets their status with a second call when the
/// apiserver dropped it on create. Returns the node names in index order.
async fn create_nodes(client: &Client, count: usize, concurrency: usize) -> anyhow::Result<Vec<String>> {
    let api: Api<Node> = Api::all(client.clone());
    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let errors = Arc::new(Mutex::new(Vec::new()));
    futures::stream::iter(0..count)
        .map(|i| {
            let (api, now, errors) = (api.clone(), now.clone(), errors.clone());
            async move {
                if let Err(e) = create_node(&api, i, &now).await {
                    errors.lock().unwrap_or_else(|p| p.into_inner()).push(format!("{e:#}"));
                }
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<()>()
        .await;
    let errors = std::mem::take(&mut *errors.lock().unwrap_or_else(|p| p.into_inner()));
    if let Some(first) = errors.first() {
        bail!("{} of {count} nodes could not be created, first: {first}", errors.len());
    }
    Ok((0..count).map(cases::node_name).collect())
}

async fn create_node(api: &Api<Node>, i: usize, now: &str) -> anyhow::Result<()> {
    let node = cases::node(i, now)?;
    let name = cases::node_name(i);
    let created =
        api.create(&PostParams::default(), &node).await.with_context(|| format!("failed to create node {name}"))?;
    // The TaintNodesByCondition admission plugin (hack/bench.sh disables it) would add a not-ready taint
    // that only a node lifecycle controller removes; none runs here.
    if created.spec.as_ref().and_then(|s| s.taints.as_ref()).is_some_and(|t| !t.is_empty()) {
        let patch = serde_json::json!({"spec": {"taints": null}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .with_context(|| format!("failed to remove the taints of node {name}"))?;
    }
    if created.status.as_ref().and_then(|s| s.allocatable.as_ref()).is_none() {
        let patch = serde_json::json!({"status": node.status});
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .with_context(|| format!("failed to set the status of node {name}"))?;
    }
    Ok(())
}

/// Deletes every benchmark node and waits (up to 2 minutes) until they are gone.
async fn delete_nodes(client: &Client) -> anyhow::Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    let lp = ListParams::default().labels(&format!("{}=true", cases::NODE_LABEL));
    api.delete_collection(&DeleteParams::default(), &lp).await.context("failed to delete the nodes")?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !api.list_metadata(&lp.clone().limit(1)).await.context("failed to list nodes")?.items.is_empty() {
        if Instant::now() >= deadline {
            bail!("benchmark nodes still present after 120s");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}

//! The controllers benchmark (issue #4): rudder-controllers against stock kube-controller-manager v1.35,
//! both running only the deployment, replicaset and garbage-collector controllers, against the same
//! throwaway apiserver. Run it with `hack/bench.sh controllers [--quick]` (tests/bench/controllers/run.sh),
//! which starts the control plane this needs.
//!
//! First the apiserver's raw pod-create ceiling (the benchmark creates N pods itself, --concurrency in
//! flight); then for each manager in turn, started fresh, in its own namespace after a warm-up Deployment:
//! (a) a Deployment of N replicas, created → N pods exist; (b) its rolling update (maxSurge 25%,
//! maxUnavailable 25%), template patched → all N pods are of the new ReplicaSet and no old pod exists,
//! while the benchmark marks every new pod Ready (no kubelets run); (c) its delete with propagationPolicy
//! Background → no pod exists.

// The helper modules' unit tests run in the bench_controllers_unit test target; here they are inert.
#![cfg_attr(test, allow(unused_imports, dead_code))]

#[path = "../bench/cli.rs"]
mod cli;
#[path = "../bench/controllers/managers.rs"]
mod managers;
// Only create_pods and delete_all_pods are used here.
#[allow(dead_code)]
#[path = "../bench/measure.rs"]
mod measure;
#[path = "../bench/controllers/objects.rs"]
mod objects;
#[path = "../bench/controllers/pods.rs"]
mod pods;
#[path = "../bench/process.rs"]
mod process;
#[path = "../bench/controllers/report.rs"]
mod report;
#[path = "../bench/table.rs"]
mod table;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};

use managers::{CpuSample, Launcher, Manager};
use pods::PodWatch;
use report::CaseResult;

#[derive(Parser, Debug)]
#[command(about = "Controller manager benchmark (use hack/bench.sh controllers)")]
struct Args {
    /// Admin kubeconfig of the throwaway apiserver (never the shared cluster's).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    #[arg(long, default_value = "target/release/rudder-controllers")]
    rudder_controllers: PathBuf,
    #[arg(long, default_value = "/var/cache/rudder/bin/kube-controller-manager-v1.35.4")]
    kube_controller_manager: PathBuf,
    /// Comma-separated, in run order: rudder, kube.
    #[arg(long, default_value = "rudder,kube")]
    managers: String,
    /// Deployment replicas (default 5000; 500 with --quick).
    #[arg(long)]
    replicas: Option<usize>,
    /// A smoke run: 500 replicas unless --replicas says otherwise.
    #[arg(long)]
    quick: bool,
    /// Seconds each case may take before it is marked FAIL (default 180 with --quick, else 900).
    #[arg(long)]
    timeout: Option<u64>,
    /// Requests in flight for the raw-ceiling creates and the Ready status patches.
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
    /// --kube-api-qps and --kube-api-burst of both rudder-controllers and kube-controller-manager.
    #[arg(long, default_value_t = 5000)]
    kube_api_qps: u32,
    /// kube-controller-manager's --kube-api-content-type (default: its own, protobuf). rudder speaks JSON
    /// (k8s-openapi has no protobuf), so `application/json` shows how much of stock's rate is protobuf's.
    #[arg(long)]
    kube_content_type: Option<String>,
    #[command(flatten)]
    common: cli::Common,
}

const CASES: [(&str, &str); 3] = [
    ("create", "(a) Deployment created → all pods exist"),
    ("rollout", "(b) rolling update (maxSurge 25%, maxUnavailable 25%) → every pod of the new ReplicaSet"),
    ("delete", "(c) Deployment deleted (propagationPolicy Background) → no pod left"),
];

#[tokio::main]
async fn main() {
    cli::exit_with(run().await);
}

/// Ok(true) when every run completed.
async fn run() -> anyhow::Result<bool> {
    if cli::started_without_arguments("controllers", "hack/bench.sh controllers") {
        return Ok(true);
    }
    let args = Args::parse();
    let managers = cli::parse_list("--managers", "controller manager", &args.managers, Manager::parse)?;
    for (flag, path) in [
        ("--rudder-controllers", &args.rudder_controllers),
        ("--kube-controller-manager", &args.kube_controller_manager),
    ] {
        if !path.is_file() {
            bail!("{flag}: {} does not exist", path.display());
        }
    }
    let replicas = args.replicas.unwrap_or(if args.quick { 500 } else { 5000 });
    if replicas == 0 || replicas > i32::MAX as usize {
        bail!("--replicas: must be between 1 and {}", i32::MAX);
    }
    if args.common.check_args {
        return Ok(true);
    }
    let timeout = Duration::from_secs(args.timeout.unwrap_or(if args.quick { 180 } else { 900 }));
    let (kubeconfig, client) = cli::client(args.kubeconfig.as_deref()).await?;
    let launcher = Launcher {
        kubeconfig,
        rudder_bin: args.rudder_controllers.clone(),
        kube_bin: args.kube_controller_manager.clone(),
        work_dir: args.common.work_dir.clone(),
        kube_api_qps: args.kube_api_qps,
        kube_content_type: args.kube_content_type.clone(),
    };

    let started = jiff::Timestamp::now();
    let mut out = header(&args, replicas, started);
    print!("{out}");

    eprintln!("[ceiling] creating {replicas} pods, {} in flight", args.concurrency);
    let (ceiling, ceiling_line) = match raw_ceiling(&client, replicas, args.concurrency).await {
        Ok(d) => {
            let rate = replicas as f64 / d.as_secs_f64().max(1e-9);
            (
                Some(rate),
                format!("raw pod-create ceiling: {replicas} pods in {:.2}s = {rate:.1} pods/s\n\n", d.as_secs_f64()),
            )
        }
        Err(e) => (None, format!("FAIL ceiling: {e:#}\n\n")),
    };
    print!("{ceiling_line}");
    out.push_str(&ceiling_line);

    let mut per_case: [Vec<CaseResult>; 3] = Default::default();
    for m in managers {
        let results = run_manager(&client, &launcher, m, replicas, args.concurrency, timeout).await;
        for (i, r) in results.into_iter().enumerate() {
            eprintln!(
                "[{}] {}: {}{}",
                CASES[i].0,
                r.manager,
                r.elapsed.map_or_else(|| "-".into(), |d| format!("{:.2}s", d.as_secs_f64())),
                r.failure.as_deref().map(|f| format!(", FAIL: {f}")).unwrap_or_default()
            );
            per_case[i].push(r);
        }
    }
    let mut failed = ceiling.is_none();
    for (i, runs) in per_case.iter().enumerate() {
        let t = report::table(&format!("{} ({replicas} pods)", CASES[i].1), CASES[i].0, runs, ceiling);
        failed |= t.contains("\nFAIL ");
        println!("{t}");
        out.push_str(&t);
        out.push('\n');
    }
    let file = cli::write_report(&args.common.out_dir, "controllers", started, &out)?;
    println!("written to {}", file.display());
    if failed {
        eprintln!("FAIL: some runs failed (see the FAIL lines above)");
    }
    Ok(!failed)
}

fn header(args: &Args, replicas: usize, started: jiff::Timestamp) -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "rudder controllers benchmark, {started:.0}{quick}\n\
         machine: {cpus} cpus, load average at start {load}\n\
         replicas: {replicas}; controllers: {controllers}; both managers --kube-api-qps/--kube-api-burst {qps}{content_type}\n\
         (b) no kubelets run: the benchmark marks every pod Ready (status patch, {conc} in flight) once (a) is \
         done, waits until the Deployment is available, then times the rollout with the marker still on\n\
         pods/s: pods created (a, b) or deleted (c) per second; % of raw ceiling: against the benchmark's own \
         pod creates at {conc} in flight; CPU s: the manager's user + system time during the case; apiserver CPU s: \
         the apiserver's in the same span (serving the manager and the benchmark's own watch and patches); \
         peak RSS: VmHWM at the end of the case\n\n",
        quick = if args.quick { ", --quick" } else { "" },
        cpus = std::thread::available_parallelism().map_or(0, |n| n.get()),
        load = load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        controllers = managers::CONTROLLERS,
        qps = args.kube_api_qps,
        content_type = args.kube_content_type.as_ref().map_or(String::new(), |t| format!("; kube-controller-manager --kube-api-content-type={t}")),
        conc = args.concurrency,
    )
}

/// The time the benchmark itself takes to create `n` pods, `concurrency` in flight (then deleted again).
async fn raw_ceiling(client: &Client, n: usize, concurrency: usize) -> anyhow::Result<Duration> {
    let ns = "ctrl-ceiling";
    create_namespace(client, ns).await?;
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pods = (0..n).map(|i| objects::pod(&format!("pod-{i}"), "ceiling")).collect::<Result<Vec<_>, _>>()?;
    let tracker = measure::Shared::default();
    let t0 = Instant::now();
    let errors = measure::create_pods(&api, pods, &tracker, concurrency).await;
    let elapsed = t0.elapsed();
    let cleanup = measure::delete_all_pods(&api, Duration::from_secs(300)).await;
    if let Some(first) = errors.first() {
        bail!("{} creates failed, first: {first}", errors.len());
    }
    cleanup.map_err(anyhow::Error::msg)?;
    Ok(elapsed)
}

/// The three cases with one manager; a case that fails marks the later ones as skipped.
async fn run_manager(
    client: &Client,
    launcher: &Launcher,
    m: Manager,
    n: usize,
    concurrency: usize,
    timeout: Duration,
) -> Vec<CaseResult> {
    let mut results: Vec<CaseResult> =
        (0..3).map(|_| CaseResult { manager: m.name().into(), pods: n, ..Default::default() }).collect();
    let ns = format!("ctrl-{}", m.slug());
    let mut child = match create_namespace(client, &ns).await {
        Ok(()) => launcher.start(m).await,
        Err(e) => Err(e),
    };
    let outcome = match child.as_mut() {
        Ok(c) => {
            eprintln!("[{}] started; warming up", m.name());
            let r = cases(client, &ns, c, &launcher.work_dir, m, n, concurrency, timeout, &mut results).await;
            if let Some(why) = c.exited() {
                eprintln!("[{}] {why}", m.name());
            }
            r
        }
        Err(e) => Err(anyhow::anyhow!("{e:#}")),
    };
    if let Err(e) = outcome {
        let first_open = results.iter().position(|r| r.elapsed.is_none() && r.failure.is_none());
        for (i, r) in results.iter_mut().enumerate() {
            if r.elapsed.is_none() && r.failure.is_none() {
                r.failure = Some(if Some(i) == first_open { format!("{e:#}") } else { "skipped".into() });
            }
        }
    }
    if let Ok(c) = child {
        c.stop(None).await;
    }
    // Leftovers of a failed run (no controller runs any more: delete the objects directly).
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let _ = deployments.delete_collection(&DeleteParams::default(), &Default::default()).await;
    let rs: Api<k8s_openapi::api::apps::v1::ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let _ = rs.delete_collection(&DeleteParams::default(), &Default::default()).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    if let Err(e) = measure::delete_all_pods(&pods, Duration::from_secs(300)).await {
        eprintln!("[{}] cleanup: {e}", m.name());
    }
    results
}

#[allow(clippy::too_many_arguments)]
async fn cases(
    client: &Client,
    ns: &str,
    child: &mut process::Running,
    work_dir: &std::path::Path,
    m: Manager,
    n: usize,
    concurrency: usize,
    timeout: Duration,
    results: &mut [CaseResult],
) -> anyhow::Result<()> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let watch = PodWatch::start(Api::namespaced(client.clone(), ns), concurrency).await?;
    let name = child.name().to_string();
    let mut abort = || child.exited();
    // What a case cost: the manager's peak RSS so far, and the CPU time it and the apiserver used since `cpu_before`.
    let usage = |result: &mut CaseResult, cpu_before: CpuSample| {
        result.peak_rss_mib = managers::peak_rss_mib(work_dir, &name);
        let cpu = CpuSample::take(work_dir, &name).since(cpu_before);
        (result.cpu_seconds, result.apiserver_cpu_seconds) = (cpu.manager, cpu.apiserver);
    };

    // Warm-up: one pod created and garbage-collected again, so every informer of the manager is synced.
    let warm = objects::deployment("warmup", "bench-warmup", 1)?;
    deployments.create(&PostParams::default(), &warm).await.context("failed to create the warm-up Deployment")?;
    let deadline = Instant::now() + Duration::from_secs(120);
    watch
        .wait(deadline, &mut abort, |p: &pods::PodSet| p.total() >= 1)
        .await
        .map_err(|e| anyhow::anyhow!("warm-up create: {e}"))?;
    deployments.delete("warmup", &background()).await.context("failed to delete the warm-up Deployment")?;
    watch
        .wait(deadline, &mut abort, |p: &pods::PodSet| p.total() == 0)
        .await
        .map_err(|e| anyhow::anyhow!("warm-up delete: {e}"))?;

    // (a)
    eprintln!("[{}] (a) creating a Deployment of {n}", m.name());
    let d = objects::deployment("bench", "bench", n as i32)?;
    let cpu_before = CpuSample::take(work_dir, &name);
    let t0 = Instant::now();
    deployments.create(&PostParams::default(), &d).await.context("failed to create the Deployment")?;
    let seen =
        watch.wait(t0 + timeout, &mut abort, |p: &pods::PodSet| p.total() >= n).await.map_err(anyhow::Error::msg)?;
    results[0].elapsed = Some(seen - t0);
    usage(&mut results[0], cpu_before);

    // (b): every pod Ready and the Deployment available first (untimed), then the rollout.
    eprintln!("[{}] (b) marking pods Ready, waiting for the Deployment to be available", m.name());
    watch.mark_ready();
    if let Err(e) = wait_available(&deployments, n, Instant::now() + timeout, &mut abort).await {
        let errors = std::mem::take(&mut pods::lock(&watch.pods).patch_errors);
        match errors.first() {
            Some(first) => bail!("{e:#}; {} Ready patches failed, first: {first}", errors.len()),
            None => return Err(e),
        }
    }
    let old: HashSet<String> = pods::lock(&watch.pods).hashes();
    eprintln!("[{}] (b) rolling update", m.name());
    let cpu_before = CpuSample::take(work_dir, &name);
    let t0 = Instant::now();
    deployments
        .patch("bench", &PatchParams::default(), &Patch::Strategic(objects::rollout_patch(2)))
        .await
        .context("failed to patch the Deployment's template")?;
    let seen = watch
        .wait(t0 + timeout, &mut abort, |p: &pods::PodSet| p.total() == n && p.not_of(&old) == n)
        .await
        .map_err(anyhow::Error::msg)?;
    results[1].elapsed = Some(seen - t0);
    usage(&mut results[1], cpu_before);
    if let Some(e) = pods::lock(&watch.pods).patch_errors.first() {
        eprintln!("[{}] some Ready patches failed, first: {e}", m.name());
    }

    // (c)
    eprintln!("[{}] (c) deleting the Deployment", m.name());
    let cpu_before = CpuSample::take(work_dir, &name);
    let t0 = Instant::now();
    deployments.delete("bench", &background()).await.context("failed to delete the Deployment")?;
    let seen =
        watch.wait(t0 + timeout, &mut abort, |p: &pods::PodSet| p.total() == 0).await.map_err(anyhow::Error::msg)?;
    results[2].elapsed = Some(seen - t0);
    usage(&mut results[2], cpu_before);
    Ok(())
}

fn background() -> DeleteParams {
    DeleteParams { propagation_policy: Some(PropagationPolicy::Background), ..Default::default() }
}

/// Waits until the Deployment's status reports `n` updated, available replicas for its latest generation.
async fn wait_available(
    api: &Api<Deployment>,
    n: usize,
    deadline: Instant,
    abort: &mut dyn FnMut() -> Option<String>,
) -> anyhow::Result<()> {
    loop {
        let d = api.get("bench").await.context("failed to read the Deployment")?;
        let generation = d.metadata.generation.unwrap_or(0);
        let s = d.status.unwrap_or_default();
        let want = Some(n as i32);
        if s.observed_generation.unwrap_or(0) >= generation
            && s.available_replicas == want
            && s.updated_replicas == want
        {
            return Ok(());
        }
        if let Some(why) = abort() {
            bail!("{why}");
        }
        if Instant::now() >= deadline {
            bail!(
                "the Deployment was not available before the timeout (replicas {:?}, updated {:?}, ready {:?}, \
                 available {:?})",
                s.replicas,
                s.updated_replicas,
                s.ready_replicas,
                s.available_replicas
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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

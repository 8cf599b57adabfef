//! The controller managers the benchmark compares (crate::process children), their peak RSS and CPU time.

use std::path::{Path, PathBuf};

use tokio::process::Command;

use crate::process::{Running, free_port, spawn};

/// The controllers both managers run: what a Deployment's create, rollout and cascading delete need.
pub const CONTROLLERS: &str = "deployment-controller,replicaset-controller,garbage-collector-controller";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    Rudder,
    Kube,
}

impl Manager {
    pub fn name(self) -> &'static str {
        match self {
            Manager::Rudder => "rudder-controllers",
            Manager::Kube => "kube-controller-manager",
        }
    }

    /// A short name for namespaces and logs.
    pub fn slug(self) -> &'static str {
        match self {
            Manager::Rudder => "rudder",
            Manager::Kube => "kube",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "rudder" | "rudder-controllers" => Some(Manager::Rudder),
            "kube" | "kube-controller-manager" => Some(Manager::Kube),
            _ => None,
        }
    }
}

pub struct Launcher {
    pub kubeconfig: PathBuf,
    pub rudder_bin: PathBuf,
    pub kube_bin: PathBuf,
    pub work_dir: PathBuf,
    /// Both managers' client QPS and burst (equal settings, as the comparison needs).
    pub kube_api_qps: u32,
    /// kube-controller-manager's --kube-api-content-type, when not its default (protobuf).
    pub kube_content_type: Option<String>,
}

impl Launcher {
    pub async fn start(&self, which: Manager) -> anyhow::Result<Running> {
        let kubeconfig = format!("--kubeconfig={}", self.kubeconfig.display());
        let controllers = format!("--controllers={CONTROLLERS}");
        let qps = format!("--kube-api-qps={}", self.kube_api_qps);
        let burst = format!("--kube-api-burst={}", self.kube_api_qps);
        let (bin, args) = match which {
            Manager::Rudder => (
                &self.rudder_bin,
                vec![kubeconfig, controllers, qps, burst, format!("--health-bind-address=127.0.0.1:{}", free_port()?)],
            ),
            Manager::Kube => (
                &self.kube_bin,
                vec![
                    kubeconfig,
                    controllers,
                    qps,
                    burst,
                    "--leader-elect=false".into(),
                    "--secure-port=0".into(),
                    "--use-service-account-credentials=false".into(),
                ]
                .into_iter()
                .chain(self.kube_content_type.iter().map(|t| format!("--kube-api-content-type={t}")))
                .collect(),
            ),
        };
        let mut cmd = Command::new(bin);
        cmd.args(&args);
        spawn(&self.work_dir, which.slug(), cmd, bin).await
    }
}

/// The `/proc/<pid>/` directory of the process whose PID (first word) is in `run/<pid_file>`.
fn proc_dir(work_dir: &Path, pid_file: &str) -> Option<PathBuf> {
    let pid_file = std::fs::read_to_string(work_dir.join("run").join(pid_file)).ok()?;
    let pid = pid_file.split_whitespace().next()?;
    Some(PathBuf::from(format!("/proc/{pid}")))
}

/// crate::process's PID file of the child `name`.
fn child_pid_file(name: &str) -> String {
    format!("child-{name}.pid")
}

/// The apiserver's PID file, written by run.sh (util::start_daemon of BENCH_APISERVER_NAME).
const APISERVER_PID_FILE: &str = "bench-controllers-kube-apiserver.pid";

/// The peak resident set (VmHWM) of the child `name` in MiB; None once the process is gone.
pub fn peak_rss_mib(work_dir: &Path, name: &str) -> Option<f64> {
    let status = std::fs::read_to_string(proc_dir(work_dir, &child_pid_file(name))?.join("status")).ok()?;
    parse_vm_hwm_kib(&status).map(|kib| kib as f64 / 1024.0)
}

/// CPU time (user + system, all threads, in seconds) used so far by the manager and by the apiserver
/// serving it; a case's cost is the difference across it ([`CpuSample::since`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSample {
    pub manager: Option<f64>,
    pub apiserver: Option<f64>,
}

impl CpuSample {
    /// Now, for the child `name`; a field is None when its process is gone.
    pub fn take(work_dir: &Path, name: &str) -> Self {
        CpuSample { manager: cpu_seconds(work_dir, &child_pid_file(name)), apiserver: cpu_seconds(work_dir, APISERVER_PID_FILE) }
    }

    /// The CPU used between `before` and this sample.
    pub fn since(self, before: CpuSample) -> CpuSample {
        let delta = |after: Option<f64>, before: Option<f64>| after.zip(before).map(|(a, b)| a - b);
        CpuSample { manager: delta(self.manager, before.manager), apiserver: delta(self.apiserver, before.apiserver) }
    }
}

fn cpu_seconds(work_dir: &Path, pid_file: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(proc_dir(work_dir, pid_file)?.join("stat")).ok()?;
    parse_cpu_ticks(&stat).map(|ticks| ticks as f64 / USER_HZ)
}

/// Clock ticks per second in /proc/PID/stat: the kernel's user-visible HZ, 100 on every Linux ABI.
const USER_HZ: f64 = 100.0;

/// The VmHWM line of /proc/PID/status, in KiB.
fn parse_vm_hwm_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime (fields 14 and 15) of /proc/PID/stat, in clock ticks.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let mut fields = crate::process::stat_fields(stat)?.skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_hwm_parsing() {
        let cases = [
            ("present", "Name:\tx\nVmPeak:\t 9 kB\nVmHWM:\t  123456 kB\nVmRSS:\t 1 kB\n", Some(123456)),
            ("absent (kernel thread)", "Name:\tx\n", None),
            ("garbled", "VmHWM:\tlots kB\n", None),
        ];
        for (name, status, want) in cases {
            assert_eq!(parse_vm_hwm_kib(status), want, "{name}");
        }
        let stat = "4242 (rudder (x) y) S 1 4242 4242 0 -1 4194560 9012 0 0 0 350 125 0 0 20 0 12 0 100 1 1";
        let cases = [("parenthesised name", stat, Some(475)), ("truncated", "4242 (x) S 1 2", None), ("garbled", "x", None)];
        for (name, stat, want) in cases {
            assert_eq!(parse_cpu_ticks(stat), want, "{name}");
        }
        let before = CpuSample { manager: Some(1.0), apiserver: Some(10.0) };
        let after = CpuSample { manager: Some(1.5), apiserver: None };
        let cost = after.since(before);
        assert_eq!((cost.manager, cost.apiserver), (Some(0.5), None), "a process gone has no cost");
        assert_eq!(Manager::parse("kube"), Some(Manager::Kube));
        assert_eq!(Manager::parse("rudder-controllers"), Some(Manager::Rudder));
        assert_eq!(Manager::parse("x"), None);
    }
}

//! The controller managers the benchmark compares (crate::process children), and their peak RSS.

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
                ],
            ),
        };
        let mut cmd = Command::new(bin);
        cmd.args(&args);
        spawn(&self.work_dir, which.slug(), cmd, bin).await
    }
}

/// The peak resident set (VmHWM) of the child `name` in MiB, read through the PID file crate::process
/// writes; None once the process is gone.
pub fn peak_rss_mib(work_dir: &Path, name: &str) -> Option<f64> {
    let pid_file = std::fs::read_to_string(work_dir.join("run").join(format!("child-{name}.pid"))).ok()?;
    let pid = pid_file.split_whitespace().next()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_hwm_kib(&status).map(|kib| kib as f64 / 1024.0)
}

/// The VmHWM line of /proc/PID/status, in KiB.
fn parse_vm_hwm_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
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
        assert_eq!(Manager::parse("kube"), Some(Manager::Kube));
        assert_eq!(Manager::parse("rudder-controllers"), Some(Manager::Rudder));
        assert_eq!(Manager::parse("x"), None);
    }
}

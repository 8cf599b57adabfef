//! Scheduler processes the benchmark starts (as crate::process children, stopped with SIGKILL).

use std::path::PathBuf;

use anyhow::Context;
use tokio::process::Command;

use crate::process::{Running, free_port, spawn};

/// Which scheduler a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduler {
    Rudder,
    Kube,
    /// The benchmark binds pods itself, round-robin, without filtering: the apiserver's binding ceiling.
    Noop,
}

impl Scheduler {
    pub fn name(self) -> &'static str {
        match self {
            Scheduler::Rudder => "rudder-scheduler",
            Scheduler::Kube => "kube-scheduler",
            Scheduler::Noop => "no-op binder",
        }
    }

    /// A short name for namespaces and logs.
    pub fn slug(self) -> &'static str {
        match self {
            Scheduler::Rudder => "rudder",
            Scheduler::Kube => "kube",
            Scheduler::Noop => "noop",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "rudder" | "rudder-scheduler" => Some(Scheduler::Rudder),
            "kube" | "kube-scheduler" => Some(Scheduler::Kube),
            "noop" | "no-op" => Some(Scheduler::Noop),
            _ => None,
        }
    }
}

/// Both schedulers' client-side limit, qps and burst: equal, so neither is throttled more than the other.
const CLIENT_QPS: u32 = 5000;

/// Where the scheduler binaries and the benchmark's scratch files are.
pub struct Launcher {
    pub kubeconfig: PathBuf,
    pub rudder_bin: PathBuf,
    pub kube_bin: PathBuf,
    pub work_dir: PathBuf,
}

impl Launcher {
    /// Starts `which` (None for the no-op binder, which has no process).
    pub async fn start(&self, which: Scheduler, tag: &str) -> anyhow::Result<Option<Running>> {
        let kubeconfig = self.kubeconfig.display().to_string();
        let (bin, args) = match which {
            Scheduler::Noop => return Ok(None),
            Scheduler::Rudder => (
                &self.rudder_bin,
                vec![
                    format!("--kubeconfig={kubeconfig}"),
                    format!("--kube-api-qps={CLIENT_QPS}"),
                    format!("--kube-api-burst={CLIENT_QPS}"),
                    "--leader-elect=false".into(),
                    format!("--health-bind-address=127.0.0.1:{}", free_port()?),
                    format!("--explain-bind-address=127.0.0.1:{}", free_port()?),
                    // kube-scheduler publishes one event per pod (Scheduled); so does rudder without
                    // its extra SchedulingExplained event.
                    "--explain-events=false".into(),
                ],
            ),
            Scheduler::Kube => {
                let config = self.work_dir.join("kube-scheduler.yaml");
                let yaml = format!(
                    "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n\
                     clientConnection:\n  kubeconfig: {kubeconfig}\n  qps: {CLIENT_QPS}\n  burst: {CLIENT_QPS}\n\
                     leaderElection:\n  leaderElect: false\n"
                );
                tokio::fs::write(&config, yaml)
                    .await
                    .with_context(|| format!("failed to write {}", config.display()))?;
                (&self.kube_bin, vec![format!("--config={}", config.display()), "--secure-port=0".into()])
            }
        };
        let name = format!("{}-{tag}", which.slug());
        let mut cmd = Command::new(bin);
        cmd.args(&args);
        spawn(&self.work_dir, &name, cmd, bin).await.map(Some)
    }
}

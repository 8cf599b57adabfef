//! Child processes of a benchmark (schedulers, proxies), shared by both benches.
//!
//! Each child logs to `<work>/logs/<name>.log` and is recorded in `<work>/run/child-<name>.pid` as
//! "PID START_TIME", so the runner script (hack/lib/bench.sh) can still stop it if this process is killed
//! before it does.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::{Child, Command};

pub struct Running {
    name: String,
    child: Child,
    pid_file: PathBuf,
    pub log: PathBuf,
}

/// Starts `cmd` (its program and arguments already set; `what` names it in errors) as the child `name`.
pub async fn spawn(work: &Path, name: &str, mut cmd: Command, what: &Path) -> anyhow::Result<Running> {
    let logs = work.join("logs");
    let run = work.join("run");
    for d in [&logs, &run] {
        tokio::fs::create_dir_all(d).await.with_context(|| format!("failed to create {}", d.display()))?;
    }
    let log = logs.join(format!("{name}.log"));
    let out = std::fs::File::create(&log).with_context(|| format!("failed to create {}", log.display()))?;
    let err = out.try_clone().context("failed to duplicate the log file handle")?;
    let child = cmd
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("failed to start {}", what.display()))?;
    let pid_file = run.join(format!("child-{name}.pid"));
    if let Some(pid) = child.id() {
        let start = start_time(pid).unwrap_or_default();
        tokio::fs::write(&pid_file, format!("{pid} {start}\n"))
            .await
            .with_context(|| format!("failed to write {}", pid_file.display()))?;
    }
    Ok(Running { name: name.to_string(), child, pid_file, log })
}

impl Running {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Some(description) once the process has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("{} exited ({status}); log {}", self.name, self.log.display())),
            Ok(None) => None,
            Err(e) => Some(format!("{}: failed to poll the process: {e}", self.name)),
        }
    }

    /// SIGKILL right away (a scheduler has nothing to flush), or with `grace`: SIGTERM, then SIGKILL
    /// once `grace` has passed (a proxy cleans up its rules).
    pub async fn stop(mut self, grace: Option<Duration>) {
        match (grace, self.child.id()) {
            (Some(grace), Some(pid)) => {
                let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
                if tokio::time::timeout(grace, self.child.wait()).await.is_err() {
                    let _ = self.child.kill().await;
                }
            }
            (None, _) => {
                let _ = self.child.kill().await;
            }
            (Some(_), None) => {}
        }
        let _ = tokio::fs::remove_file(&self.pid_file).await;
    }
}

/// A loopback port free right now (the child binds it a moment later; good enough on a test machine).
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("failed to find a free port")?;
    Ok(l.local_addr().context("failed to read the bound port")?.port())
}

/// Field 22 of /proc/PID/stat (start time in clock ticks).
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_fields(&stat)?.nth(19).map(str::to_string)
}

/// The fields of a /proc/PID/stat line from field 3 (state) on. The command name (field 2) may hold
/// spaces and parentheses, so they are counted from its last `)`.
pub fn stat_fields(stat: &str) -> Option<std::str::SplitWhitespace<'_>> {
    Some(stat.rsplit_once(')')?.1.split_whitespace())
}

//! Watching a network namespace's nftables ruleset through `nft monitor`: the kernel sends every
//! committed change as a netlink event, so a line arrives as soon as a proxy's transaction lands,
//! without the cost (and the sampling error) of listing a large table over and over. Each line is
//! stamped with the moment this process read it; `calibrate` measures how late that is.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// One ruleset event line and when it was read.
pub struct Event {
    pub at: Instant,
    pub line: String,
}

pub struct Monitor {
    child: Child,
    events: mpsc::UnboundedReceiver<Event>,
}

/// Every IPv4 address written in `line` (as in `dnat to 10.244.0.1:80`, `__10.244.0.1/80`,
/// `{ 10.99.1.1 . tcp . 80 : goto … }`); a longer address never yields a shorter one.
pub fn ipv4s_in(line: &str) -> impl Iterator<Item = Ipv4Addr> + '_ {
    line.split(|c: char| !(c.is_ascii_digit() || c == '.')).filter(|token| token.len() >= 7).filter_map(|token| token.parse().ok())
}

/// The command that runs `args` inside network namespace `netns`.
pub fn in_netns(netns: &str, program: &str) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", netns, program]);
    cmd
}

impl Monitor {
    /// Starts `nft monitor` in `netns`; its stderr goes to `log`.
    pub async fn start(netns: &str, log: &Path) -> anyhow::Result<Self> {
        let err = std::fs::File::create(log).with_context(|| format!("failed to create {}", log.display()))?;
        let mut child = in_netns(netns, "nft")
            .arg("monitor")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .context("failed to start nft monitor")?;
        let stdout = child.stdout.take().context("nft monitor has no stdout")?;
        let (tx, events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if tx.send(Event { at: Instant::now(), line }).is_err() {
                    break;
                }
            }
        });
        // nft subscribes to the events right after it starts; give it that moment.
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(Self { child, events })
    }

    /// The next event, or None when `deadline` passes or the monitor ended.
    pub async fn next(&mut self, deadline: Instant) -> Option<Event> {
        tokio::time::timeout_at(deadline.into(), self.events.recv()).await.ok().flatten()
    }

    /// Discards the events read so far.
    pub fn drain(&mut self) {
        while self.events.try_recv().is_ok() {}
    }

    /// Some(description) once `nft monitor` has exited (it then misses every later change).
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("nft monitor exited ({status})")),
            Ok(None) => None,
            Err(e) => Some(format!("failed to poll nft monitor: {e}")),
        }
    }

    /// Waits for the first event line containing `ip`; returns when it was read.
    pub async fn wait_for_ip(&mut self, ip: Ipv4Addr, deadline: Instant) -> Option<Instant> {
        while let Some(event) = self.next(deadline).await {
            if ipv4s_in(&event.line).any(|seen| seen == ip) {
                return Some(event.at);
            }
        }
        None
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Runs `nft <args>` in `netns` and fails with its stderr when nft does.
pub async fn nft(netns: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = in_netns(netns, "nft").args(args).output().await.context("failed to run nft")?;
    if !out.status.success() {
        anyhow::bail!("nft {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// How late the monitor reports a commit, measured with a probe table of its own (deleted afterwards).
pub struct Calibration {
    /// A one-shot `nft add element` started → its event read, in ms: an upper bound on the delay
    /// (it includes starting `ip netns exec` and nft).
    pub upper_ms: Vec<f64>,
    /// That nft exited (its commit done) → its event read, in ms; negative when the event was read
    /// before the process had exited.
    pub after_exit_ms: Vec<f64>,
}

pub fn signed_ms(from: Instant, to: Instant) -> f64 {
    match to.checked_duration_since(from) {
        Some(d) => d.as_secs_f64() * 1000.0,
        None => -(from.saturating_duration_since(to).as_secs_f64() * 1000.0),
    }
}

pub async fn calibrate(netns: &str, monitor: &mut Monitor, samples: u8) -> anyhow::Result<Calibration> {
    const TABLE: &str = "rudder-bench-probe";
    nft(netns, &["add", "table", "ip", TABLE]).await?;
    nft(netns, &["add", "set", "ip", TABLE, "probe", "{ type ipv4_addr; }"]).await?;
    let mut cal = Calibration { upper_ms: Vec::new(), after_exit_ms: Vec::new() };
    for n in 1..=samples {
        monitor.drain();
        let ip = Ipv4Addr::new(192, 0, 2, n);
        let started = Instant::now();
        nft(netns, &["add", "element", "ip", TABLE, "probe", &format!("{{ {ip} }}")]).await?;
        let exited = Instant::now();
        let seen = monitor
            .wait_for_ip(ip, exited + Duration::from_secs(5))
            .await
            .with_context(|| format!("nft monitor did not report the probe element {ip} within 5 s"))?;
        cal.upper_ms.push(signed_ms(started, seen));
        cal.after_exit_ms.push(signed_ms(exited, seen));
    }
    nft(netns, &["delete", "table", "ip", TABLE]).await?;
    Ok(cal)
}

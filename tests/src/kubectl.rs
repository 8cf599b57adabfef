//! Runs the stock kubectl the way a user would, so tests check what users see.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use anyhow::{Context, bail};

use crate::Cluster;

/// What a kubectl run printed.
#[derive(Debug)]
pub struct KubectlOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for KubectlOutput {
    fn from(o: Output) -> Self {
        Self {
            success: o.status.success(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Cluster {
    fn kubectl_command(&self, namespace: Option<&str>, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.kubectl);
        cmd.env("KUBECONFIG", &self.kubeconfig);
        if let Some(ns) = namespace {
            cmd.args(["--namespace", ns]);
        }
        cmd.args(args);
        cmd
    }

    /// Runs kubectl and returns its output whether or not it succeeded.
    pub async fn kubectl_output(&self, namespace: Option<&str>, args: &[&str], stdin: Option<&str>) -> anyhow::Result<KubectlOutput> {
        let mut cmd = self.kubectl_command(namespace, args);
        let stdin = stdin.map(str::to_owned);
        let out = tokio::task::spawn_blocking(move || -> anyhow::Result<Output> {
            cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = cmd.spawn().context("starting kubectl")?;
            if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
                pipe.write_all(input.as_bytes())?;
            }
            Ok(child.wait_with_output()?)
        })
        .await??;
        Ok(out.into())
    }

    /// Runs kubectl and fails the test with its stderr unless it succeeds.
    pub async fn kubectl(&self, namespace: Option<&str>, args: &[&str]) -> anyhow::Result<String> {
        let out = self.kubectl_output(namespace, args, None).await?;
        if !out.success {
            bail!("kubectl {} failed: {}{}", args.join(" "), out.stdout, out.stderr);
        }
        Ok(out.stdout)
    }

    /// Runs kubectl under a pseudo-terminal (util-linux `script`), as `kubectl exec -it` needs one.
    pub async fn kubectl_with_tty(&self, namespace: &str, args: &[&str], stdin: &str) -> anyhow::Result<KubectlOutput> {
        let mut line = format!("{} --namespace {}", self.kubectl.display(), namespace);
        for a in args {
            line.push(' ');
            line.push_str(&shell_quote(a));
        }
        let mut cmd = Command::new("script");
        cmd.env("KUBECONFIG", &self.kubeconfig).args(["-qec", &line, "/dev/null"]);
        let input = stdin.to_owned();
        let out = tokio::task::spawn_blocking(move || -> anyhow::Result<Output> {
            cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
            let mut child = cmd.spawn().context("starting script(1)")?;
            if let Some(mut pipe) = child.stdin.take() {
                pipe.write_all(input.as_bytes())?;
                // Keep stdin open briefly so the remote shell reads the input before EOF hangs up.
                std::thread::sleep(std::time::Duration::from_secs(3));
            }
            Ok(child.wait_with_output()?)
        })
        .await??;
        Ok(out.into())
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Splits `kubectl get` table output into rows of whitespace-separated cells, header first.
pub fn table(output: &str) -> Vec<Vec<String>> {
    output
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

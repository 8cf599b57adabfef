//! The command-line scaffolding both benchmark binaries share: the flags the runner scripts pass to every
//! bench, the exit codes, the client for the throwaway apiserver and the written report.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use kube::Client;

/// Flags every benchmark takes (flattened at the end of each bench's own arguments).
#[derive(clap::Args, Debug)]
pub struct Common {
    /// Scratch directory (logs, PID files, generated configuration).
    #[arg(long, default_value = "/tmp")]
    pub work_dir: PathBuf,
    #[arg(long, default_value = "/var/tmp/rudder-bench")]
    pub out_dir: PathBuf,
    /// Validate the arguments and exit (the runner script does this before starting anything).
    #[arg(long)]
    pub check_args: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    pub bench: bool,
}

/// Exits the process for `result`: 0 when every run completed, 1 when a run failed (its FAIL lines say
/// why), 2 on an error (printed plainly: anyhow's backtrace would bury the message).
pub fn exit_with(result: anyhow::Result<bool>) {
    match result {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}

/// True (after saying so) when the binary was started without arguments: `cargo test --all-targets`
/// runs bench binaries like that, and there is nothing to test then.
pub fn started_without_arguments(what: &str, runner: &str) -> bool {
    let bare = std::env::args_os().len() <= 1;
    if bare {
        eprintln!("the {what} benchmark runs with `{runner}` (see --help); nothing to do");
    }
    bare
}

/// The comma-separated `list` of `flag`, each item parsed by `parse` (None: an unknown `kind`); never empty.
pub fn parse_list<T>(flag: &str, kind: &str, list: &str, parse: impl Fn(&str) -> Option<T>) -> anyhow::Result<Vec<T>> {
    let mut items = Vec::new();
    for s in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        items.push(parse(s).with_context(|| format!("{flag}: unknown {kind} {s:?}"))?);
    }
    if items.is_empty() {
        bail!("{flag}: empty");
    }
    Ok(items)
}

/// A client for the throwaway apiserver of `--kubeconfig`, and that path.
pub async fn client(kubeconfig: Option<&Path>) -> anyhow::Result<(PathBuf, Client)> {
    let path = kubeconfig.context("--kubeconfig is required")?.to_path_buf();
    let kubeconfig =
        kube::config::Kubeconfig::read_from(&path).with_context(|| format!("failed to read {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    Ok((path, Client::try_from(config)?))
}

/// Writes `text` to `<out_dir>/<prefix>-<started, UTC>.txt` and returns that path.
pub fn write_report(out_dir: &Path, prefix: &str, started: jiff::Timestamp, text: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(out_dir).with_context(|| format!("failed to create {}", out_dir.display()))?;
    let file = out_dir.join(format!("{prefix}-{}.txt", started.strftime("%Y%m%dT%H%M%SZ")));
    std::fs::write(&file, text).with_context(|| format!("failed to write {}", file.display()))?;
    Ok(file)
}

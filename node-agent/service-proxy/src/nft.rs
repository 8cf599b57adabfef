//! Running `nft`: a script is fed on stdin to `nft -f -`, which applies it as one transaction
//! (all of it or none of it).

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::AsyncWriteExt;

/// A failed `nft` run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The program could not be started or fed.
    #[error("failed to run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// nft rejected the script; nothing of it was applied.
    #[error("failed to apply nftables transaction: {stderr}")]
    Rejected { stderr: String },
}

/// The nft program to run.
#[derive(Debug, Clone)]
pub struct Nft {
    pub program: PathBuf,
}

impl Default for Nft {
    fn default() -> Self {
        Self { program: PathBuf::from("nft") }
    }
}

impl Nft {
    /// Applies `script` atomically.
    pub async fn apply(&self, script: &str) -> Result<(), Error> {
        let program = self.program.display().to_string();
        let spawn_error = |source| Error::Spawn { program: program.clone(), source };
        let mut child = tokio::process::Command::new(&self.program)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(spawn_error)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(script.as_bytes()).await.map_err(spawn_error)?;
        }
        let output = child.wait_with_output().await.map_err(spawn_error)?;
        if output.status.success() {
            Ok(())
        } else {
            Err(Error::Rejected { stderr: String::from_utf8_lossy(&output.stderr).trim().to_string() })
        }
    }
}

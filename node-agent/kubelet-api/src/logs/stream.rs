//! Serving a container's log file with `kubectl logs` options: `sinceTime`/`sinceSeconds`, `tailLines`,
//! `limitBytes`, `timestamps`, and `follow` (poll for appends, follow rotation and restarts, stop when
//! the container has stopped and its log is drained, or when the client leaves).

use std::collections::VecDeque;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use super::cri::{self, Assembler, Message};
use crate::backend::{Backend, BackendError, ContainerRef};
use crate::query::LogOptions;

/// How often a followed file is checked for appends.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Checks that cost more (the runtime's view of the container, the file's identity) run every this many polls.
const POLLS_PER_CHECK: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to open log file {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read log file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// An open log file read line by line; an incomplete last line is held back until its newline arrives.
pub struct LogFile {
    path: PathBuf,
    reader: BufReader<tokio::fs::File>,
    inode: (u64, u64),
    position: u64,
    pending: Vec<u8>,
}

impl LogFile {
    pub async fn open(path: &Path) -> Result<Self, Error> {
        let open_error = |source| Error::Open {
            path: path.to_owned(),
            source,
        };
        let file = tokio::fs::File::open(path).await.map_err(open_error)?;
        let metadata = file.metadata().await.map_err(open_error)?;
        Ok(Self {
            path: path.to_owned(),
            reader: BufReader::new(file),
            inode: (metadata.dev(), metadata.ino()),
            position: 0,
            pending: Vec::new(),
        })
    }

    /// The next complete line without its newline, or `None` at the current end of the file.
    async fn next_line(&mut self) -> Result<Option<Vec<u8>>, Error> {
        let read = self
            .reader
            .read_until(b'\n', &mut self.pending)
            .await
            .map_err(|source| Error::Read {
                path: self.path.clone(),
                source,
            })?;
        self.position += read as u64;
        if self.pending.last() != Some(&b'\n') {
            return Ok(None);
        }
        let mut line = std::mem::take(&mut self.pending);
        line.pop();
        Ok(Some(line))
    }

    /// The path now names another file (rotated) or this one shrank (truncated).
    fn replaced_on_disk(&self) -> bool {
        match std::fs::metadata(&self.path) {
            Ok(metadata) => {
                (metadata.dev(), metadata.ino()) != self.inode || metadata.len() < self.position
            }
            Err(_) => true,
        }
    }
}

/// Where rendered messages go: the response body. Applies `timestamps` and `limitBytes`.
pub struct Sink {
    tx: mpsc::Sender<Bytes>,
    timestamps: bool,
    remaining: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

impl Sink {
    pub fn new(tx: mpsc::Sender<Bytes>, options: &LogOptions) -> Self {
        Self {
            tx,
            timestamps: options.timestamps,
            remaining: options.limit_bytes,
        }
    }

    async fn emit(&mut self, message: &Message) -> Flow {
        let mut bytes = message.render(self.timestamps);
        let mut flow = Flow::Continue;
        if let Some(remaining) = self.remaining.as_mut() {
            // Like upstream, the limit may cut a message in the middle.
            if bytes.len() as u64 >= *remaining {
                bytes.truncate(usize::try_from(*remaining).unwrap_or(usize::MAX));
                flow = Flow::Stop;
            }
            *remaining -= bytes.len() as u64;
        }
        if !bytes.is_empty() && self.tx.send(Bytes::from(bytes)).await.is_err() {
            return Flow::Stop;
        }
        flow
    }
}

/// Turns a line into a message when it completes one that passes the `since` filter.
fn decode(assembler: &mut Assembler, line: &[u8], options: &LogOptions) -> Option<Message> {
    let entry = match cri::parse_line(line) {
        Ok(entry) => entry,
        Err(error) => {
            tracing::debug!(%error, "skipping log line");
            return None;
        }
    };
    let message = assembler.push(&entry);
    options
        .since
        .is_none_or(|since| message.timestamp >= since)
        .then_some(message)
}

/// Emits every remaining line of `file`; `Stop` when the sink wants no more.
async fn drain(
    file: &mut LogFile,
    assembler: &mut Assembler,
    options: &LogOptions,
    sink: &mut Sink,
) -> Result<Flow, Error> {
    while let Some(line) = file.next_line().await? {
        if let Some(message) = decode(assembler, &line, options)
            && sink.emit(&message).await == Flow::Stop
        {
            return Ok(Flow::Stop);
        }
    }
    Ok(Flow::Continue)
}

/// Sends what is already in the file (after `since`, the last `tailLines`), then, with `follow`, what
/// gets appended.
pub async fn serve_logs<B: Backend>(
    backend: Arc<B>,
    container: ContainerRef,
    mut file: LogFile,
    options: LogOptions,
    mut sink: Sink,
) -> Result<(), Error> {
    let mut assembler = Assembler::default();
    match options.tail_lines {
        None => {
            if drain(&mut file, &mut assembler, &options, &mut sink).await? == Flow::Stop {
                return Ok(());
            }
        }
        Some(lines) => {
            let keep = usize::try_from(lines).unwrap_or(usize::MAX);
            let mut last = VecDeque::new();
            while let Some(line) = file.next_line().await? {
                if let Some(message) = decode(&mut assembler, &line, &options) {
                    if last.len() == keep {
                        last.pop_front();
                    }
                    if keep > 0 {
                        last.push_back(message);
                    }
                }
            }
            for message in &last {
                if sink.emit(message).await == Flow::Stop {
                    return Ok(());
                }
            }
        }
    }
    if options.follow {
        follow(
            backend.as_ref(),
            &container,
            file,
            assembler,
            &options,
            &mut sink,
        )
        .await?;
    }
    Ok(())
}

async fn follow<B: Backend>(
    backend: &B,
    container: &ContainerRef,
    mut file: LogFile,
    mut assembler: Assembler,
    options: &LogOptions,
    sink: &mut Sink,
) -> Result<(), Error> {
    let mut polls: u32 = 0;
    loop {
        if drain(&mut file, &mut assembler, options, sink).await? == Flow::Stop {
            return Ok(());
        }
        tokio::select! {
            () = sink.tx.closed() => return Ok(()),
            () = tokio::time::sleep(POLL_INTERVAL) => {}
        }
        polls = polls.wrapping_add(1);
        if !polls.is_multiple_of(POLLS_PER_CHECK) {
            continue;
        }
        // Read what was written before any rotation or exit we are about to notice.
        if drain(&mut file, &mut assembler, options, sink).await? == Flow::Stop {
            return Ok(());
        }
        let running = match backend.is_running(container).await {
            Ok(running) => running,
            Err(BackendError::NotFound(_)) => false,
            Err(error) => {
                tracing::debug!(%error, "cannot tell whether the container still runs; following on");
                true
            }
        };
        if !running {
            return Ok(());
        }
        // A restart writes a new file; rotation replaces the file under the same name.
        let current = match backend.log_file(container, false).await {
            Ok(path) => path,
            Err(BackendError::NotFound(_)) => return Ok(()),
            Err(_) => file.path.clone(),
        };
        if current != file.path || file.replaced_on_disk() {
            match LogFile::open(&current).await {
                Ok(reopened) => {
                    file = reopened;
                    assembler = Assembler::default();
                }
                // Between rotation's rename and the new file's creation: try again next time.
                Err(error) => tracing::debug!(%error, "log file not there yet"),
            }
        }
    }
}

#[cfg(test)]
mod tests;

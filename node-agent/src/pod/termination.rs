//! Termination messages, as upstream's kubelet gives them: each container instance gets an empty,
//! world-writable host file bind-mounted at its `terminationMessagePath`; when the instance exits, what
//! it wrote there (at most 4096 bytes) becomes `state.terminated.message`. With the policy
//! `FallbackToLogsOnError`, a failed instance that wrote nothing gets the tail of its log instead.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use k8s_cri::v1::Mount;
use k8s_openapi::api::core::v1::{Container, Pod};
use kubelet_api::logs::cri::{Assembler, parse_line};

use super::runtime_config;
use crate::runtime::{ContainerInfo, ContainerState};

const DEFAULT_PATH: &str = "/dev/termination-log";
const MAX_MESSAGE_BYTES: usize = 4096;
const FALLBACK_LOG_LINES: usize = 80;
const FALLBACK_LOG_BYTES: usize = 2048;

/// `<pod-dir>/containers/<name>/<attempt>`: the host side of one instance's termination message file.
pub fn host_file(pod_dir: &Path, container: &str, attempt: u32) -> PathBuf {
    pod_dir.join("containers").join(container).join(attempt.to_string())
}

fn container_path(container: &Container) -> Option<String> {
    match container.termination_message_path.as_deref() {
        Some("") => None,
        Some(path) => Some(path.to_string()),
        None => Some(DEFAULT_PATH.to_string()),
    }
}

/// Creates the empty file of a new instance and returns its mount; `None` when the container opted out
/// with an empty path.
pub fn prepare(pod_dir: &Path, container: &Container, attempt: u32) -> std::io::Result<Option<Mount>> {
    let Some(path) = container_path(container) else { return Ok(None) };
    let file = host_file(pod_dir, &container.name, attempt);
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::File::create(&file)?.flush()?;
    // Any user the container runs as may write its message.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666))?;
    Ok(Some(Mount { container_path: path, host_path: file.display().to_string(), ..Default::default() }))
}

/// The message of an exited instance from what it wrote and (for the fallback) its log.
pub fn message(written: &[u8], fallback_to_logs: bool, exit_code: i32, log: Option<&[u8]>) -> String {
    let written = &written[..written.len().min(MAX_MESSAGE_BYTES)];
    if !written.is_empty() || !fallback_to_logs || exit_code == 0 {
        return String::from_utf8_lossy(written).into_owned();
    }
    log.map(log_tail).unwrap_or_default()
}

/// The last lines of a CRI-format log, both streams, as `kubectl logs` would show them, cut to the
/// fallback's size from the end.
fn log_tail(log: &[u8]) -> String {
    let mut assembler = Assembler::default();
    let mut lines: Vec<Vec<u8>> = Vec::new();
    for line in log.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        if let Ok(entry) = parse_line(line) {
            let message = assembler.push(&entry);
            lines.push(message.text);
        }
    }
    let start = lines.len().saturating_sub(FALLBACK_LOG_LINES);
    let text: Vec<u8> = lines[start..].concat();
    let cut = text.len().saturating_sub(FALLBACK_LOG_BYTES);
    String::from_utf8_lossy(&text[cut..]).into_owned()
}

/// `containers` with the termination message of every exited instance filled in from its file (or log);
/// the runtime's own message stays when there is none.
pub fn with_messages(pod: &Pod, containers: &[ContainerInfo], pod_dir: &Path, root_dir: &Path) -> Vec<ContainerInfo> {
    let spec = pod.spec.clone().unwrap_or_default();
    let specs: Vec<Container> = spec.init_containers.unwrap_or_default().into_iter().chain(spec.containers).collect();
    let m = &pod.metadata;
    let log_dir = runtime_config::log_dir(
        root_dir,
        m.namespace.as_deref().unwrap_or_default(),
        m.name.as_deref().unwrap_or_default(),
        m.uid.as_deref().unwrap_or_default(),
    );
    containers
        .iter()
        .map(|info| {
            let mut info = info.clone();
            let Some(c) = specs.iter().find(|c| c.name == info.name) else { return info };
            if info.state != ContainerState::Exited || container_path(c).is_none() {
                return info;
            }
            let written = std::fs::read(host_file(pod_dir, &c.name, info.attempt)).unwrap_or_default();
            let fallback = c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError");
            let log = (fallback && written.is_empty() && info.exit_code != 0)
                .then(|| std::fs::read(log_dir.join(runtime_config::log_path(&c.name, info.attempt))).ok())
                .flatten();
            let text = message(&written, fallback, info.exit_code, log.as_deref());
            if !text.is_empty() {
                info.message = text;
            }
            info
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &[u8] = b"2026-11-25T10:00:00.000000001Z stdout F first\n\
2026-11-25T10:00:00.000000002Z stderr P par\n\
2026-11-25T10:00:00.000000003Z stderr F tial\n\
not a log line\n";

    #[test]
    fn messages() {
        struct Case {
            name: &'static str,
            written: &'static [u8],
            fallback: bool,
            exit_code: i32,
            wanted: &'static str,
        }
        let cases = [
            Case { name: "what the container wrote", written: b"DONE", fallback: false, exit_code: 0, wanted: "DONE" },
            Case { name: "written wins over the log", written: b"oops", fallback: true, exit_code: 1, wanted: "oops" },
            Case { name: "fallback on failure: the log's tail", written: b"", fallback: true, exit_code: 1, wanted: "first\npartial\n" },
            Case { name: "no fallback on success", written: b"", fallback: true, exit_code: 0, wanted: "" },
            Case { name: "policy File never reads the log", written: b"", fallback: false, exit_code: 2, wanted: "" },
        ];
        for case in cases {
            assert_eq!(message(case.written, case.fallback, case.exit_code, Some(LOG)), case.wanted, "{}", case.name);
        }
    }

    #[test]
    fn limits() {
        let long = vec![b'x'; 5000];
        assert_eq!(message(&long, false, 0, None).len(), MAX_MESSAGE_BYTES, "the file is cut at 4096 bytes");
        let mut log = Vec::new();
        for i in 0..200 {
            log.extend_from_slice(format!("2026-11-25T10:00:00Z stdout F line {i:03} {}\n", "y".repeat(20)).as_bytes());
        }
        let tail = message(b"", true, 1, Some(&log));
        assert!(tail.len() <= FALLBACK_LOG_BYTES, "{}", tail.len());
        assert!(tail.ends_with(&format!("line 199 {}\n", "y".repeat(20))), "ends with the last line");
        assert!(!tail.contains("line 119 "), "at most the last 80 lines");
    }

    #[test]
    fn prepared_file_and_mount() {
        let dir = std::env::temp_dir().join(format!("rudder-termination-test-{}", std::process::id()));
        let c = Container { name: "app".into(), ..Default::default() };
        let mount = prepare(&dir, &c, 2).unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("a mount"));
        assert_eq!(mount.container_path, DEFAULT_PATH);
        assert_eq!(PathBuf::from(&mount.host_path), host_file(&dir, "app", 2));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&mount.host_path).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
        assert_eq!(mode, 0o666);
        let none = Container { name: "quiet".into(), termination_message_path: Some(String::new()), ..Default::default() };
        assert!(prepare(&dir, &none, 0).unwrap_or_else(|e| panic!("{e}")).is_none(), "an empty path opts out");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

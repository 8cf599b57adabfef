//! Facts about this machine for the Node object: capacity and system info, read from /proc and /sys.

use std::path::Path;

/// Capacity of the machine (before any `--capacity-*` override).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    pub cpu_milli: i64,
    pub memory_bytes: i64,
    pub ephemeral_storage_bytes: i64,
}

/// Identity and software of the machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemInfo {
    pub machine_id: String,
    pub system_uuid: String,
    pub boot_id: String,
    pub kernel_version: String,
    pub os_image: String,
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// `MemTotal` of /proc/meminfo text, in bytes.
pub fn parse_mem_total(meminfo: &str) -> Option<i64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `PRETTY_NAME` of /etc/os-release text.
pub fn parse_pretty_name(os_release: &str) -> Option<String> {
    let value = os_release.lines().find_map(|l| l.strip_prefix("PRETTY_NAME="))?;
    Some(value.trim_matches('"').to_string())
}

/// Reads the machine's capacity; `root_dir` is where ephemeral storage lives.
pub fn capacity(root_dir: &Path) -> Capacity {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let memory = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| parse_mem_total(&m)).unwrap_or(0);
    let storage = rustix::fs::statvfs(root_dir).map(|s| (s.f_blocks as i64).saturating_mul(s.f_frsize as i64)).unwrap_or(0);
    Capacity { cpu_milli: i64::try_from(cpus).unwrap_or(1) * 1000, memory_bytes: memory, ephemeral_storage_bytes: storage }
}

/// Reads the machine's identity.
pub fn system_info() -> SystemInfo {
    let machine_id = read_trimmed("/etc/machine-id").or_else(|| read_trimmed("/var/lib/dbus/machine-id")).unwrap_or_default();
    SystemInfo {
        system_uuid: read_trimmed("/sys/class/dmi/id/product_uuid").unwrap_or_else(|| machine_id.clone()),
        machine_id,
        boot_id: read_trimmed("/proc/sys/kernel/random/boot_id").unwrap_or_default(),
        kernel_version: read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_default(),
        os_image: std::fs::read_to_string("/etc/os-release").ok().and_then(|t| parse_pretty_name(&t)).unwrap_or_else(|| "Linux".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_and_os_release() {
        assert_eq!(parse_mem_total("MemTotal:        2000 kB\nMemFree: 1 kB\n"), Some(2_048_000));
        assert_eq!(parse_mem_total("MemFree: 1 kB\n"), None);
        assert_eq!(parse_pretty_name("NAME=x\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n").as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
    }
}

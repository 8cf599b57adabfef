//! The node agent's flags (the contract in hack/README.md) and their validation into a [`Config`], done
//! once at start-up so every later use can trust it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use component_base::quantity;

/// Node agent flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Flags {
    /// Name of the Node object this agent registers and serves.
    #[arg(long)]
    pub node_name: String,
    /// The node's InternalIP; the kubelet API listens there.
    #[arg(long)]
    pub node_ip: String,
    /// Port of the kubelet API on --node-ip.
    #[arg(long, default_value_t = 10250)]
    pub kubelet_port: u16,
    /// CRI endpoint, `unix:///path/to/containerd.sock`.
    #[arg(long)]
    pub container_runtime_endpoint: String,
    /// Directory for pod volumes (`pods/<uid>/volumes`) and logs (`pod-logs/`).
    #[arg(long)]
    pub root_dir: PathBuf,
    /// The node's pod CIDR (spec.podCIDR).
    #[arg(long)]
    pub pod_cidr: String,
    /// Serving certificate of the kubelet API.
    #[arg(long)]
    pub tls_cert_file: PathBuf,
    /// Private key of --tls-cert-file.
    #[arg(long)]
    pub tls_private_key_file: PathBuf,
    /// CA that signs client certificates accepted by the kubelet API.
    #[arg(long)]
    pub client_ca_file: PathBuf,
    /// Cluster DNS server IPs for ClusterFirst pods (repeatable, or comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub cluster_dns: Vec<String>,
    /// Cluster domain for the pod DNS search path.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// How often every pod is re-synced even without changes (e.g. 20s, 1m).
    #[arg(long, default_value = "20s")]
    pub sync_frequency: String,
    /// How often the Node status is patched.
    #[arg(long, default_value = "10s")]
    pub node_status_update_frequency: String,
    /// leaseDurationSeconds of the node Lease.
    #[arg(long, default_value_t = 40)]
    pub node_lease_duration_seconds: i32,
    /// CPU capacity to report instead of the machine's (a quantity, e.g. 4 or 3500m).
    #[arg(long)]
    pub capacity_cpu: Option<String>,
    /// Memory capacity to report instead of the machine's (a quantity, e.g. 8Gi).
    #[arg(long)]
    pub capacity_memory: Option<String>,
    /// Pod capacity of the node.
    #[arg(long, default_value_t = 110)]
    pub max_pods: u32,
    /// Extra node labels, `k=v,k2=v2`.
    #[arg(long, value_delimiter = ',')]
    pub node_labels: Vec<String>,
}

/// A flag with a bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --{flag} {value:?}: {reason}")]
pub struct Error {
    pub flag: &'static str,
    pub value: String,
    pub reason: String,
}

fn bad(flag: &'static str, value: &str, reason: impl Into<String>) -> Error {
    Error { flag, value: value.to_string(), reason: reason.into() }
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub node_name: String,
    pub node_ip: IpAddr,
    pub kubelet_port: u16,
    pub runtime_socket: PathBuf,
    pub root_dir: PathBuf,
    pub pod_cidr: String,
    pub tls_cert_file: PathBuf,
    pub tls_private_key_file: PathBuf,
    pub client_ca_file: PathBuf,
    pub cluster_dns: Vec<IpAddr>,
    pub cluster_domain: String,
    pub sync_frequency: Duration,
    pub node_status_update_frequency: Duration,
    pub node_lease_duration_seconds: i32,
    pub capacity_cpu_milli: Option<i64>,
    pub capacity_memory_bytes: Option<i64>,
    pub max_pods: u32,
    pub node_labels: BTreeMap<String, String>,
}

/// Parses Go-style durations: `500ms`, `20s`, `1m`, `1h`, `1m30s`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            _ => return None,
        };
        total += unit;
        rest = &rest[unit_len..];
    }
    Some(total)
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty() && l.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') && !l.starts_with('-') && !l.ends_with('-')
        })
}

fn check_cidr(s: &str) -> Result<(), String> {
    let (ip, prefix) = s.split_once('/').ok_or("expected ADDRESS/PREFIX")?;
    let ip: IpAddr = ip.parse().map_err(|_| "not an IP address")?;
    let prefix: u8 = prefix.parse().map_err(|_| "prefix is not a number")?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(format!("prefix larger than {max}"));
    }
    Ok(())
}

fn check_file(flag: &'static str, path: &std::path::Path) -> Result<(), Error> {
    if path.is_file() { Ok(()) } else { Err(bad(flag, &path.display().to_string(), "no such file")) }
}

impl Flags {
    /// Validates every flag; the error names the first bad one.
    pub fn validate(&self) -> Result<Config, Error> {
        if !is_dns_subdomain(&self.node_name) {
            return Err(bad("node-name", &self.node_name, "must be a lowercase DNS subdomain"));
        }
        let node_ip: IpAddr = self.node_ip.parse().map_err(|_| bad("node-ip", &self.node_ip, "not an IP address"))?;
        let socket = self
            .container_runtime_endpoint
            .strip_prefix("unix://")
            .filter(|p| p.starts_with('/'))
            .ok_or_else(|| bad("container-runtime-endpoint", &self.container_runtime_endpoint, "expected unix:///absolute/path"))?;
        if !self.root_dir.is_absolute() {
            return Err(bad("root-dir", &self.root_dir.display().to_string(), "must be an absolute path"));
        }
        check_cidr(&self.pod_cidr).map_err(|r| bad("pod-cidr", &self.pod_cidr, r))?;
        check_file("tls-cert-file", &self.tls_cert_file)?;
        check_file("tls-private-key-file", &self.tls_private_key_file)?;
        check_file("client-ca-file", &self.client_ca_file)?;
        let cluster_dns = self
            .cluster_dns
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().map_err(|_| bad("cluster-dns", s, "not an IP address")))
            .collect::<Result<Vec<IpAddr>, _>>()?;
        if !is_dns_subdomain(&self.cluster_domain) {
            return Err(bad("cluster-domain", &self.cluster_domain, "must be a DNS domain"));
        }
        let duration = |flag, s: &str| parse_duration(s).filter(|d| !d.is_zero()).ok_or_else(|| bad(flag, s, "expected a positive duration like 20s or 1m"));
        let sync_frequency = duration("sync-frequency", &self.sync_frequency)?;
        let node_status_update_frequency = duration("node-status-update-frequency", &self.node_status_update_frequency)?;
        if self.node_lease_duration_seconds <= 0 {
            return Err(bad("node-lease-duration-seconds", &self.node_lease_duration_seconds.to_string(), "must be positive"));
        }
        let capacity_cpu_milli = self
            .capacity_cpu
            .as_deref()
            .map(|q| quantity::parse_milli_value(q).ok().filter(|v| *v > 0).ok_or_else(|| bad("capacity-cpu", q, "not a positive quantity")))
            .transpose()?;
        let capacity_memory_bytes = self
            .capacity_memory
            .as_deref()
            .map(|q| quantity::parse_value(q).ok().filter(|v| *v > 0).ok_or_else(|| bad("capacity-memory", q, "not a positive quantity")))
            .transpose()?;
        if self.max_pods == 0 {
            return Err(bad("max-pods", "0", "must be positive"));
        }
        let mut node_labels = BTreeMap::new();
        for item in self.node_labels.iter().filter(|s| !s.is_empty()) {
            let (k, v) = item.split_once('=').ok_or_else(|| bad("node-labels", item, "expected key=value"))?;
            if k.is_empty() {
                return Err(bad("node-labels", item, "empty key"));
            }
            node_labels.insert(k.to_string(), v.to_string());
        }
        Ok(Config {
            node_name: self.node_name.clone(),
            node_ip,
            kubelet_port: self.kubelet_port,
            runtime_socket: PathBuf::from(socket),
            root_dir: self.root_dir.clone(),
            pod_cidr: self.pod_cidr.clone(),
            tls_cert_file: self.tls_cert_file.clone(),
            tls_private_key_file: self.tls_private_key_file.clone(),
            client_ca_file: self.client_ca_file.clone(),
            cluster_dns,
            cluster_domain: self.cluster_domain.clone(),
            sync_frequency,
            node_status_update_frequency,
            node_lease_duration_seconds: self.node_lease_duration_seconds,
            capacity_cpu_milli,
            capacity_memory_bytes,
            max_pods: self.max_pods,
            node_labels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> Flags {
        // Any existing file stands in for the certificates.
        let file = PathBuf::from("/etc/hostname");
        Flags {
            node_name: "rudder-node-1".into(),
            node_ip: "127.0.1.1".into(),
            kubelet_port: 10250,
            container_runtime_endpoint: "unix:///run/c.sock".into(),
            root_dir: "/var/lib/x".into(),
            pod_cidr: "10.244.1.0/24".into(),
            tls_cert_file: file.clone(),
            tls_private_key_file: file.clone(),
            client_ca_file: file,
            cluster_dns: vec![],
            cluster_domain: "cluster.local".into(),
            sync_frequency: "20s".into(),
            node_status_update_frequency: "10s".into(),
            node_lease_duration_seconds: 40,
            capacity_cpu: None,
            capacity_memory: None,
            max_pods: 110,
            node_labels: vec!["a=b".into()],
        }
    }

    #[test]
    fn bad_values_name_their_flag() {
        struct Case {
            name: &'static str,
            edit: fn(&mut Flags),
            flag: Option<&'static str>,
        }
        for case in [
            Case { name: "defaults are fine", edit: |_| {}, flag: None },
            Case { name: "bad ip", edit: |f| f.node_ip = "1.2.3".into(), flag: Some("node-ip") },
            Case { name: "bad cidr", edit: |f| f.pod_cidr = "10.244.1.0/40".into(), flag: Some("pod-cidr") },
            Case { name: "cidr without prefix", edit: |f| f.pod_cidr = "10.244.1.0".into(), flag: Some("pod-cidr") },
            Case { name: "tcp endpoint", edit: |f| f.container_runtime_endpoint = "tcp://x:1".into(), flag: Some("container-runtime-endpoint") },
            Case { name: "relative root", edit: |f| f.root_dir = "x".into(), flag: Some("root-dir") },
            Case { name: "missing cert", edit: |f| f.tls_cert_file = "/nope".into(), flag: Some("tls-cert-file") },
            Case { name: "bad dns", edit: |f| f.cluster_dns = vec!["dns".into()], flag: Some("cluster-dns") },
            Case { name: "bad duration", edit: |f| f.sync_frequency = "20".into(), flag: Some("sync-frequency") },
            Case { name: "bad cpu", edit: |f| f.capacity_cpu = Some("lots".into()), flag: Some("capacity-cpu") },
            Case { name: "bad label", edit: |f| f.node_labels = vec!["novalue".into()], flag: Some("node-labels") },
            Case { name: "upper-case node", edit: |f| f.node_name = "Node".into(), flag: Some("node-name") },
        ] {
            let mut f = flags();
            (case.edit)(&mut f);
            assert_eq!(f.validate().err().map(|e| e.flag), case.flag, "{}", case.name);
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("20s"), Some(Duration::from_secs(20)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration(""), None);
    }
}

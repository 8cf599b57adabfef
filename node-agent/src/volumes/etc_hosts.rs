//! The pod's `/etc/hosts`, which the agent manages like upstream's kubelet: localhost entries, the pod's
//! own name on each of its IPs (with its DNS subdomain name when it has one), then `spec.hostAliases`.
//! Host-network pods and containers that mount their own `/etc/hosts` are left alone.

use std::path::{Path, PathBuf};

use k8s_cri::v1::Mount;
use k8s_openapi::api::core::v1::{Container, Pod};

pub const CONTAINER_PATH: &str = "/etc/hosts";
const HEADER: &str = "# Kubernetes-managed hosts file.";
const LOCALHOST: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n";

/// Whether the agent writes `/etc/hosts` for this pod at all.
pub fn managed_for_pod(pod: &Pod) -> bool {
    !pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false)
}

/// Whether `container` gets the managed file: not when it mounts something at `/etc/hosts` itself.
pub fn managed_for_container(container: &Container) -> bool {
    !container.volume_mounts.iter().flatten().any(|m| Path::new(&m.mount_path) == Path::new(CONTAINER_PATH))
}

/// The pod's hostname as upstream derives it: `spec.hostname`, else the pod name cut to 63 characters
/// (without a trailing `-` or `.`).
fn hostname(pod: &Pod) -> String {
    if let Some(h) = pod.spec.as_ref().and_then(|s| s.hostname.clone()).filter(|h| !h.is_empty()) {
        return h;
    }
    let name = pod.metadata.name.clone().unwrap_or_default();
    let cut: String = name.chars().take(63).collect();
    cut.trim_end_matches(['-', '.']).to_string()
}

/// The file's content for `pod` with `pod_ips` in `cluster_domain`.
pub fn render(pod: &Pod, pod_ips: &[String], cluster_domain: &str) -> String {
    let spec = pod.spec.clone().unwrap_or_default();
    let host = hostname(pod);
    let names = match spec.subdomain.as_deref().filter(|s| !s.is_empty()) {
        Some(sub) => {
            let namespace = pod.metadata.namespace.clone().unwrap_or_default();
            format!("{host}.{sub}.{namespace}.svc.{cluster_domain}\t{host}")
        }
        None => host,
    };
    let mut out = format!("{HEADER}\n{LOCALHOST}");
    for ip in pod_ips {
        out.push_str(&format!("{ip}\t{names}\n"));
    }
    let aliases = spec.host_aliases.unwrap_or_default();
    if !aliases.is_empty() {
        out.push_str("\n# Entries added by HostAliases.\n");
        for alias in aliases {
            let hostnames = alias.hostnames.unwrap_or_default();
            out.push_str(&format!("{}\t{}\n", alias.ip, hostnames.join("\t")));
        }
    }
    out
}

/// Where the file of the pod whose directory is `pod_dir` lives.
pub fn path(pod_dir: &Path) -> PathBuf {
    pod_dir.join("etc-hosts")
}

/// Writes the file (atomically, so a container never reads half of it).
pub fn write(pod_dir: &Path, content: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(pod_dir)?;
    let target = path(pod_dir);
    let tmp = pod_dir.join(".etc-hosts.tmp");
    std::fs::write(&tmp, content)?;
    std::fs::rename(&tmp, &target)?;
    Ok(target)
}

/// The bind mount of the file into a container.
pub fn mount(file: &Path) -> Mount {
    Mount { container_path: CONTAINER_PATH.to_string(), host_path: file.display().to_string(), ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": { "name": "web-0", "namespace": "shop" },
            "spec": spec,
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn rendering() {
        struct Case {
            name: &'static str,
            spec: serde_json::Value,
            wanted: &'static [&'static str],
            unwanted: &'static [&'static str],
        }
        let cases = [
            Case {
                name: "plain pod: its name on its IP",
                spec: serde_json::json!({ "containers": [] }),
                wanted: &["# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n", "10.244.1.5\tweb-0\n"],
                unwanted: &["HostAliases"],
            },
            Case {
                name: "hostname and subdomain give the DNS name first",
                spec: serde_json::json!({ "containers": [], "hostname": "db", "subdomain": "peers" }),
                wanted: &["10.244.1.5\tdb.peers.shop.svc.cluster.local\tdb\n"],
                unwanted: &["web-0"],
            },
            Case {
                name: "host aliases appended",
                spec: serde_json::json!({ "containers": [], "hostAliases": [{ "ip": "192.0.2.9", "hostnames": ["foo.local", "bar.local"] }] }),
                wanted: &["\n# Entries added by HostAliases.\n192.0.2.9\tfoo.local\tbar.local\n"],
                unwanted: &[],
            },
        ];
        for case in cases {
            let out = render(&pod(case.spec), &["10.244.1.5".to_string()], "cluster.local");
            for w in case.wanted {
                assert!(out.contains(w), "{}: expected {w:?} in\n{out}", case.name);
            }
            for u in case.unwanted {
                assert!(!out.contains(u), "{}: unexpected {u:?} in\n{out}", case.name);
            }
        }
    }

    #[test]
    fn long_names_are_cut_like_hostnames() {
        let mut p = pod(serde_json::json!({ "containers": [] }));
        p.metadata.name = Some(format!("{}-abc", "a".repeat(62)));
        assert_eq!(hostname(&p), "a".repeat(62), "63 characters, trailing '-' dropped");
    }

    #[test]
    fn who_is_managed() {
        assert!(managed_for_pod(&pod(serde_json::json!({ "containers": [] }))));
        assert!(!managed_for_pod(&pod(serde_json::json!({ "containers": [], "hostNetwork": true }))));
        let own: Container = serde_json::from_value(serde_json::json!({
            "name": "c", "volumeMounts": [{ "name": "h", "mountPath": "/etc/hosts" }]
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(!managed_for_container(&own));
        assert!(managed_for_container(&Container { name: "c".into(), ..Default::default() }));
    }
}

//! The CRI configs of a pod's sandbox and containers, derived from the pod spec: labels the agent finds
//! them by again, log paths, namespaces, security context and cgroup resources.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Container, Pod, PodSecurityContext, SecurityContext};

use component_base::quantity;
use crate::runtime::labels;

const CPU_PERIOD: i64 = 100_000;
const MIN_SHARES: i64 = 2;

/// `<root-dir>/pod-logs/<ns>_<pod>_<uid>`: the sandbox's log directory.
pub fn log_dir(root: &Path, namespace: &str, name: &str, uid: &str) -> PathBuf {
    root.join("pod-logs").join(format!("{namespace}_{name}_{uid}"))
}

/// `<container>/<restartCount>.log`, relative to the log directory.
pub fn log_path(container: &str, attempt: u32) -> String {
    format!("{container}/{attempt}.log")
}

fn meta(pod: &Pod) -> (String, String, String) {
    let m = &pod.metadata;
    (m.name.clone().unwrap_or_default(), m.namespace.clone().unwrap_or_default(), m.uid.clone().unwrap_or_default())
}

fn namespace_options(pod: &Pod) -> cri::NamespaceOption {
    let spec = pod.spec.as_ref();
    let node_or = |flag: Option<bool>, otherwise: cri::NamespaceMode| {
        if flag == Some(true) { cri::NamespaceMode::Node as i32 } else { otherwise as i32 }
    };
    cri::NamespaceOption {
        network: node_or(spec.and_then(|s| s.host_network), cri::NamespaceMode::Pod),
        pid: node_or(spec.and_then(|s| s.host_pid), if spec.and_then(|s| s.share_process_namespace) == Some(true) { cri::NamespaceMode::Pod } else { cri::NamespaceMode::Container }),
        ipc: node_or(spec.and_then(|s| s.host_ipc), cri::NamespaceMode::Pod),
        ..Default::default()
    }
}

fn int64(v: Option<i64>) -> Option<cri::Int64Value> {
    v.map(|value| cri::Int64Value { value })
}

/// The pod's supplementalGroups plus its fsGroup, appended as upstream does, so the containers' processes
/// may use the volume contents group-owned by it.
fn supplemental_groups(psc: &PodSecurityContext) -> Vec<i64> {
    psc.supplemental_groups.iter().flatten().copied().chain(psc.fs_group).collect()
}

/// The sandbox config of `pod` for one attempt.
pub fn sandbox_config(pod: &Pod, attempt: u32, root: &Path, dns: cri::DnsConfig) -> cri::PodSandboxConfig {
    let (name, namespace, uid) = meta(pod);
    let spec = pod.spec.clone().unwrap_or_default();
    let psc: PodSecurityContext = spec.security_context.clone().unwrap_or_default();
    let mut hostname = spec.hostname.clone().unwrap_or_else(|| name.clone());
    hostname.truncate(63);
    let port_mappings = spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.unwrap_or(0) > 0)
        .map(|p| cri::PortMapping {
            protocol: match p.protocol.as_deref() {
                Some("UDP") => cri::Protocol::Udp,
                Some("SCTP") => cri::Protocol::Sctp,
                _ => cri::Protocol::Tcp,
            } as i32,
            container_port: p.container_port,
            host_port: p.host_port.unwrap_or(0),
            host_ip: p.host_ip.clone().unwrap_or_default(),
        })
        .collect();
    let mut sandbox_labels: HashMap<String, String> = pod.metadata.labels.clone().unwrap_or_default().into_iter().collect();
    sandbox_labels.extend(labels::sandbox_labels(&name, &namespace, &uid));
    let sysctls = psc.sysctls.clone().unwrap_or_default().into_iter().map(|s| (s.name, s.value)).collect();
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata { name: name.clone(), uid: uid.clone(), namespace: namespace.clone(), attempt }),
        hostname: if spec.host_network == Some(true) { String::new() } else { hostname },
        log_directory: log_dir(root, &namespace, &name, &uid).display().to_string(),
        dns_config: Some(dns),
        port_mappings,
        labels: sandbox_labels,
        annotations: pod.metadata.annotations.clone().unwrap_or_default().into_iter().collect(),
        linux: Some(cri::LinuxPodSandboxConfig {
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(namespace_options(pod)),
                run_as_user: int64(psc.run_as_user),
                run_as_group: int64(psc.run_as_group),
                supplemental_groups: supplemental_groups(&psc),
                ..Default::default()
            }),
            sysctls,
            ..Default::default()
        }),
        windows: None,
    }
}

/// cgroup settings from the container's requests and limits.
pub fn resources(container: &Container, node_memory_bytes: i64) -> cri::LinuxContainerResources {
    let r = container.resources.clone().unwrap_or_default();
    let get = |m: &Option<std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>, key: &str| {
        m.as_ref().and_then(|m| m.get(key)).map(|q| q.0.clone())
    };
    let cpu_limit = get(&r.limits, "cpu").and_then(|q| quantity::parse_milli_value(&q).ok());
    let cpu_request = get(&r.requests, "cpu").and_then(|q| quantity::parse_milli_value(&q).ok()).or(cpu_limit);
    let memory_limit = get(&r.limits, "memory").and_then(|q| quantity::parse_value(&q).ok());
    let memory_request = get(&r.requests, "memory").and_then(|q| quantity::parse_value(&q).ok()).or(memory_limit);
    let mut out = cri::LinuxContainerResources {
        cpu_shares: cpu_request.map_or(MIN_SHARES, |m| (m * 1024 / 1000).max(MIN_SHARES)),
        ..Default::default()
    };
    if let Some(limit) = cpu_limit {
        out.cpu_period = CPU_PERIOD;
        out.cpu_quota = (limit * CPU_PERIOD / 1000).max(1000);
    }
    if let Some(limit) = memory_limit {
        out.memory_limit_in_bytes = limit;
    }
    // OOM preference by QoS class, like upstream: best effort first, guaranteed last.
    out.oom_score_adj = match (cpu_request, memory_request) {
        (None, None) => 1000,
        _ if cpu_limit.is_some() && memory_limit.is_some() && cpu_limit == cpu_request && memory_limit == memory_request => -997,
        (_, Some(req)) if node_memory_bytes > 0 => (1000 - 1000 * req / node_memory_bytes).clamp(2, 999),
        _ => 999,
    };
    out
}

fn security_context(pod: &Pod, container: &Container) -> cri::LinuxContainerSecurityContext {
    let psc = pod.spec.as_ref().and_then(|s| s.security_context.clone()).unwrap_or_default();
    let sc: SecurityContext = container.security_context.clone().unwrap_or_default();
    let caps = sc.capabilities.clone().unwrap_or_default();
    cri::LinuxContainerSecurityContext {
        capabilities: Some(cri::Capability {
            add_capabilities: caps.add.unwrap_or_default(),
            drop_capabilities: caps.drop.unwrap_or_default(),
            ..Default::default()
        }),
        privileged: sc.privileged.unwrap_or(false),
        namespace_options: Some(namespace_options(pod)),
        run_as_user: int64(sc.run_as_user.or(psc.run_as_user)),
        run_as_group: int64(sc.run_as_group.or(psc.run_as_group)),
        readonly_rootfs: sc.read_only_root_filesystem.unwrap_or(false),
        supplemental_groups: supplemental_groups(&psc),
        no_new_privs: sc.allow_privilege_escalation == Some(false),
        ..Default::default()
    }
}

/// What a container config is built from besides the pod.
pub struct ContainerParams<'a> {
    pub container: &'a Container,
    pub init: bool,
    pub attempt: u32,
    pub env: Vec<(String, String)>,
    pub mounts: Vec<cri::Mount>,
    pub node_memory_bytes: i64,
}

/// The config of one container instance.
pub fn container_config(pod: &Pod, p: ContainerParams<'_>) -> cri::ContainerConfig {
    let (name, namespace, uid) = meta(pod);
    let c = p.container;
    let vars: HashMap<String, String> = p.env.iter().cloned().collect();
    let expand = |list: &Option<Vec<String>>| list.iter().flatten().map(|s| super::env::expand(s, &vars)).collect::<Vec<_>>();
    let grace = pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(30);
    let annotations = HashMap::from([
        (labels::RESTART_COUNT.to_string(), p.attempt.to_string()),
        (labels::TERMINATION_GRACE.to_string(), grace.to_string()),
        (labels::TERMINATION_MESSAGE_PATH.to_string(), c.termination_message_path.clone().unwrap_or_else(|| "/dev/termination-log".into())),
        (labels::INIT_CONTAINER.to_string(), p.init.to_string()),
    ]);
    let image = c.image.clone().unwrap_or_default();
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata { name: c.name.clone(), attempt: p.attempt }),
        image: Some(cri::ImageSpec { image: image.clone(), user_specified_image: image, ..Default::default() }),
        command: expand(&c.command),
        args: expand(&c.args),
        working_dir: c.working_dir.clone().unwrap_or_default(),
        envs: p.env.into_iter().map(|(key, value)| cri::KeyValue { key, value }).collect(),
        mounts: p.mounts,
        labels: labels::container_labels(&name, &namespace, &uid, &c.name),
        annotations,
        log_path: log_path(&c.name, p.attempt),
        stdin: c.stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        tty: c.tty.unwrap_or(false),
        linux: Some(cri::LinuxContainerConfig {
            resources: Some(resources(c, p.node_memory_bytes)),
            security_context: Some(security_context(pod, c)),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ResourceRequirements;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn with_resources(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Container {
        let map = |l: &[(&str, &str)]| (!l.is_empty()).then(|| l.iter().map(|(k, v)| (k.to_string(), Quantity(v.to_string()))).collect());
        Container { resources: Some(ResourceRequirements { requests: map(requests), limits: map(limits), ..Default::default() }), ..Default::default() }
    }

    #[test]
    fn cgroup_resources() {
        struct Case {
            name: &'static str,
            c: Container,
            shares: i64,
            quota: i64,
            memory: i64,
            oom: i64,
        }
        for case in [
            Case { name: "best effort", c: with_resources(&[], &[]), shares: 2, quota: 0, memory: 0, oom: 1000 },
            Case { name: "half a cpu limit", c: with_resources(&[("cpu", "250m")], &[("cpu", "500m")]), shares: 256, quota: 50_000, memory: 0, oom: 999 },
            Case {
                name: "guaranteed",
                c: with_resources(&[("cpu", "1"), ("memory", "64Mi")], &[("cpu", "1"), ("memory", "64Mi")]),
                shares: 1024,
                quota: 100_000,
                memory: 64 << 20,
                oom: -997,
            },
        ] {
            let r = resources(&case.c, 1 << 30);
            assert_eq!((r.cpu_shares, r.cpu_quota, r.memory_limit_in_bytes, r.oom_score_adj), (case.shares, case.quota, case.memory, case.oom), "{}", case.name);
        }
    }

    #[test]
    fn fs_group_joins_the_supplemental_groups() {
        struct Case {
            name: &'static str,
            psc: Option<PodSecurityContext>,
            want: Vec<i64>,
        }
        for case in [
            Case { name: "no security context", psc: None, want: vec![] },
            Case {
                name: "supplemental groups only",
                psc: Some(PodSecurityContext { supplemental_groups: Some(vec![5, 6]), ..Default::default() }),
                want: vec![5, 6],
            },
            Case { name: "fsGroup only", psc: Some(PodSecurityContext { fs_group: Some(1001), ..Default::default() }), want: vec![1001] },
            Case {
                name: "both, fsGroup last",
                psc: Some(PodSecurityContext { supplemental_groups: Some(vec![5]), fs_group: Some(1001), ..Default::default() }),
                want: vec![5, 1001],
            },
        ] {
            let pod = Pod {
                spec: Some(k8s_openapi::api::core::v1::PodSpec { security_context: case.psc, ..Default::default() }),
                ..Default::default()
            };
            let container = security_context(&pod, &Container::default());
            assert_eq!(container.supplemental_groups, case.want, "{}: container", case.name);
            let sandbox = sandbox_config(&pod, 0, Path::new("/r"), cri::DnsConfig::default());
            let sandbox_groups = sandbox.linux.and_then(|l| l.security_context).map(|s| s.supplemental_groups);
            assert_eq!(sandbox_groups, Some(case.want), "{}: sandbox", case.name);
        }
    }

    #[test]
    fn log_layout() {
        assert_eq!(log_dir(Path::new("/r"), "ns", "p", "u"), PathBuf::from("/r/pod-logs/ns_p_u"));
        assert_eq!(log_path("nginx", 2), "nginx/2.log");
    }
}

//! The resolv.conf a pod gets, from its dnsPolicy and dnsConfig: the cluster DNS with the search path
//! `<ns>.svc.<domain> svc.<domain> <domain>` and `ndots:5` for ClusterFirst, the host's otherwise.

use std::net::IpAddr;

use k8s_cri::v1::DnsConfig;
use k8s_openapi::api::core::v1::Pod;

/// The parts of a resolv.conf the agent passes on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvConf {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

impl ResolvConf {
    /// Parses resolv.conf text; unknown lines are ignored.
    pub fn parse(text: &str) -> Self {
        let mut out = Self::default();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => out.servers.extend(words.next().map(str::to_string)),
                Some("search") | Some("domain") => out.searches = words.map(str::to_string).collect(),
                Some("options") => out.options.extend(words.map(str::to_string)),
                _ => {}
            }
        }
        out
    }

    /// The host's resolv.conf, or nothing when it cannot be read.
    pub fn host() -> Self {
        std::fs::read_to_string("/etc/resolv.conf").map(|t| Self::parse(&t)).unwrap_or_default()
    }
}

const MAX_SEARCHES: usize = 32;

fn push_unique(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// The DNS configuration of `pod`'s sandbox.
pub fn dns_config(pod: &Pod, cluster_dns: &[IpAddr], cluster_domain: &str, host: &ResolvConf) -> DnsConfig {
    let spec = pod.spec.clone().unwrap_or_default();
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let host_network = spec.host_network.unwrap_or(false);
    let mut policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    if (policy == "ClusterFirst" && host_network) || (policy.starts_with("ClusterFirst") && cluster_dns.is_empty()) {
        policy = "Default";
    }
    let mut config = match policy {
        "None" => DnsConfig::default(),
        "ClusterFirst" | "ClusterFirstWithHostNet" => {
            let mut searches = vec![
                format!("{namespace}.svc.{cluster_domain}"),
                format!("svc.{cluster_domain}"),
                cluster_domain.to_string(),
            ];
            for s in &host.searches {
                push_unique(&mut searches, s.clone());
            }
            DnsConfig { servers: cluster_dns.iter().map(ToString::to_string).collect(), searches, options: vec!["ndots:5".into()] }
        }
        _ => DnsConfig { servers: host.servers.clone(), searches: host.searches.clone(), options: host.options.clone() },
    };
    if let Some(extra) = spec.dns_config {
        for s in extra.nameservers.unwrap_or_default() {
            push_unique(&mut config.servers, s);
        }
        for s in extra.searches.unwrap_or_default() {
            push_unique(&mut config.searches, s);
        }
        for o in extra.options.unwrap_or_default() {
            let name = o.name.unwrap_or_default();
            config.options.retain(|existing| existing.split(':').next() != Some(name.as_str()));
            config.options.push(match o.value {
                Some(v) => format!("{name}:{v}"),
                None => name,
            });
        }
    }
    config.searches.truncate(MAX_SEARCHES);
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;

    fn pod(policy: Option<&str>, host_network: bool) -> Pod {
        Pod {
            metadata: kube::api::ObjectMeta { namespace: Some("web".into()), ..Default::default() },
            spec: Some(PodSpec { dns_policy: policy.map(str::to_string), host_network: Some(host_network), ..Default::default() }),
            status: None,
        }
    }

    #[test]
    fn policies() {
        let host = ResolvConf::parse("nameserver 192.0.2.53\nsearch example.org\noptions edns0\n");
        let dns: Vec<IpAddr> = vec![IpAddr::from([10, 96, 0, 10])];
        struct Case {
            name: &'static str,
            pod: Pod,
            cluster_dns: bool,
            servers: Vec<&'static str>,
            first_search: Option<&'static str>,
        }
        for case in [
            Case { name: "cluster first", pod: pod(None, false), cluster_dns: true, servers: vec!["10.96.0.10"], first_search: Some("web.svc.cluster.local") },
            Case { name: "no cluster dns falls back to host", pod: pod(None, false), cluster_dns: false, servers: vec!["192.0.2.53"], first_search: Some("example.org") },
            Case { name: "host network uses host", pod: pod(Some("ClusterFirst"), true), cluster_dns: true, servers: vec!["192.0.2.53"], first_search: Some("example.org") },
            Case { name: "with host net opt-in", pod: pod(Some("ClusterFirstWithHostNet"), true), cluster_dns: true, servers: vec!["10.96.0.10"], first_search: Some("web.svc.cluster.local") },
            Case { name: "none", pod: pod(Some("None"), false), cluster_dns: true, servers: vec![], first_search: None },
        ] {
            let servers = if case.cluster_dns { dns.as_slice() } else { &[] };
            let c = dns_config(&case.pod, servers, "cluster.local", &host);
            assert_eq!(c.servers, case.servers, "{}", case.name);
            assert_eq!(c.searches.first().map(String::as_str), case.first_search, "{}", case.name);
        }
        let c = dns_config(&pod(None, false), &dns, "cluster.local", &host);
        assert_eq!(c.options, vec!["ndots:5".to_string()]);
    }
}

//! A quota's usage: which kind of object each hard resource name counts, and what the objects of a
//! namespace add up to under those names.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
use k8s_openapi::jiff::Timestamp;

use super::amounts::Amounts;
use super::{pods, scopes};

const STORAGE_CLASS_SUFFIX: &str = ".storageclass.storage.k8s.io/";
const BETA_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

/// Where the usage of one quota resource name comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// Pod counts and compute resources.
    Pods,
    /// Service counts, node ports and load balancers.
    Services,
    /// Claim counts and requested storage, overall and per storage class.
    Claims,
    /// A plain object count of `resource` in API `group` (`""` for core).
    Objects { resource: String, group: String },
}

/// The source of quota resource `name`, or None for a name no evaluator tracks.
pub fn source_of(name: &str) -> Option<Source> {
    let objects = |resource: &str, group: &str| Some(Source::Objects { resource: resource.into(), group: group.into() });
    match name {
        "pods" | "count/pods" | "cpu" | "memory" | "ephemeral-storage" => return Some(Source::Pods),
        "services" | "count/services" | "services.nodeports" | "services.loadbalancers" => return Some(Source::Services),
        "persistentvolumeclaims" | "count/persistentvolumeclaims" | "requests.storage" => return Some(Source::Claims),
        "configmaps" => return objects("configmaps", ""),
        "secrets" => return objects("secrets", ""),
        "replicationcontrollers" => return objects("replicationcontrollers", ""),
        "resourcequotas" => return objects("resourcequotas", ""),
        _ => {}
    }
    if name.contains(STORAGE_CLASS_SUFFIX) {
        return Some(Source::Claims);
    }
    if name.starts_with("requests.") || name.starts_with("limits.") || name.starts_with("hugepages-") {
        return Some(Source::Pods);
    }
    let counted = name.strip_prefix("count/")?;
    let (resource, group) = counted.split_once('.').unwrap_or((counted, ""));
    (!resource.is_empty()).then(|| Source::Objects { resource: resource.into(), group: group.into() })
}

/// The sources a quota with these hard names needs listed.
pub fn sources<'a>(hard: impl IntoIterator<Item = &'a String>) -> BTreeSet<Source> {
    hard.into_iter().filter_map(|n| source_of(n)).collect()
}

/// What the namespace holds, for the sources a quota needs (a source not listed counts nothing).
#[derive(Debug, Default)]
pub struct Observed {
    pub pods: Vec<Pod>,
    pub services: Vec<Service>,
    pub claims: Vec<PersistentVolumeClaim>,
    /// Object counts by `(resource, group)`.
    pub counts: BTreeMap<(String, String), i64>,
}

fn service_usage(service: &Service) -> Amounts {
    let mut out = Amounts::default();
    out.count("services", 1);
    out.count("count/services", 1);
    let spec = service.spec.clone().unwrap_or_default();
    let ports = spec.ports.unwrap_or_default();
    match spec.type_.as_deref() {
        Some("NodePort") => out.count("services.nodeports", i64::try_from(ports.len()).unwrap_or(i64::MAX)),
        Some("LoadBalancer") => {
            out.count("services.loadbalancers", 1);
            // Without node ports for load balancers, only ports that were given one explicitly count.
            let with_node_ports = if spec.allocate_load_balancer_node_ports == Some(false) { ports.iter().filter(|p| p.node_port.is_some_and(|n| n != 0)).count() } else { ports.len() };
            out.count("services.nodeports", i64::try_from(with_node_ports).unwrap_or(i64::MAX));
        }
        _ => {}
    }
    out
}

fn claim_usage(claim: &PersistentVolumeClaim) -> Amounts {
    let mut out = Amounts::default();
    out.count("persistentvolumeclaims", 1);
    out.count("count/persistentvolumeclaims", 1);
    let spec = claim.spec.clone().unwrap_or_default();
    let requested = Amounts::from_list(spec.resources.as_ref().and_then(|r| r.requests.as_ref())).get("storage");
    let allocated = Amounts::from_list(claim.status.as_ref().and_then(|s| s.allocated_resources.as_ref())).get("storage");
    // A claim being expanded is charged the larger of what it asks for and what it was given.
    let storage = requested.max(allocated);
    let annotations = claim.metadata.annotations.as_ref();
    let class = spec.storage_class_name.clone().or_else(|| annotations.and_then(|a| a.get(BETA_CLASS_ANNOTATION).cloned())).filter(|c| !c.is_empty());
    if let Some(class) = &class {
        out.count(&format!("{class}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"), 1);
    }
    if let Some(storage) = storage {
        out.add_one("requests.storage", storage);
        if let Some(class) = &class {
            out.add_one(&format!("{class}{STORAGE_CLASS_SUFFIX}requests.storage"), storage);
        }
    }
    out
}

/// The quota's `status.used`: one entry, zero if nothing is used, for every hard name some source
/// tracks. A scoped quota counts only the pods its scopes match.
pub fn used(hard: &BTreeSet<String>, requirements: &[scopes::Requirement], observed: &Observed, now: Timestamp) -> Amounts {
    let mut total = Amounts::default();
    for pod in observed.pods.iter().filter(|p| scopes::pod_matches(p, requirements)) {
        total.add(&pods::usage(pod, now));
    }
    if requirements.is_empty() {
        for service in &observed.services {
            total.add(&service_usage(service));
        }
        for claim in &observed.claims {
            total.add(&claim_usage(claim));
        }
    }
    let mut out = Amounts::default();
    for name in hard {
        let amount = match source_of(name) {
            None => continue,
            Some(Source::Objects { resource, group }) if requirements.is_empty() => observed.counts.get(&(resource, group)).map_or(0, |n| n.saturating_mul(1000)),
            Some(Source::Objects { .. }) => 0,
            Some(_) => total.get(name).unwrap_or(0),
        };
        out.add_one(name, amount);
    }
    out
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{PersistentVolumeClaimSpec, PodStatus, ServicePort, ServiceSpec, VolumeResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    use super::*;

    #[test]
    fn sources_of_names() {
        let cases = [
            ("pods", Some(Source::Pods)),
            ("requests.cpu", Some(Source::Pods)),
            ("limits.memory", Some(Source::Pods)),
            ("requests.example.com/dongle", Some(Source::Pods)),
            ("requests.storage", Some(Source::Claims)),
            ("gold.storageclass.storage.k8s.io/requests.storage", Some(Source::Claims)),
            ("services.nodeports", Some(Source::Services)),
            ("configmaps", Some(Source::Objects { resource: "configmaps".into(), group: "".into() })),
            ("count/secrets", Some(Source::Objects { resource: "secrets".into(), group: "".into() })),
            ("count/replicasets.apps", Some(Source::Objects { resource: "replicasets".into(), group: "apps".into() })),
            ("count/widgets.example.com", Some(Source::Objects { resource: "widgets".into(), group: "example.com".into() })),
            ("bogus", None),
        ];
        for (name, want) in cases {
            assert_eq!(source_of(name), want, "{name}");
        }
    }

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn service(type_: &str, ports: usize) -> Service {
        Service { spec: Some(ServiceSpec { type_: Some(type_.into()), ports: Some(vec![ServicePort::default(); ports]), ..Default::default() }), ..Default::default() }
    }

    fn cpu_pod(cpu: &str, phase: &str) -> Pod {
        let mut p: Pod = serde_json::from_value(serde_json::json!({
            "spec": { "containers": [{ "name": "c", "resources": { "requests": { "cpu": cpu } } }] }
        }))
        .unwrap_or_default();
        p.status = Some(PodStatus { phase: Some(phase.into()), ..Default::default() });
        p
    }

    #[test]
    fn namespace_usage() {
        let claim = PersistentVolumeClaim {
            spec: Some(PersistentVolumeClaimSpec {
                storage_class_name: Some("gold".into()),
                resources: Some(VolumeResourceRequirements { requests: Some([("storage".to_string(), Quantity("1Gi".into()))].into()), ..Default::default() }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let observed = Observed {
            pods: vec![cpu_pod("500m", "Running"), cpu_pod("1", "Succeeded")],
            services: vec![service("ClusterIP", 1), service("NodePort", 2), service("LoadBalancer", 1)],
            claims: vec![claim],
            counts: BTreeMap::from([(("configmaps".to_string(), "".to_string()), 2)]),
        };
        let hard = names(&[
            "pods",
            "count/pods",
            "requests.cpu",
            "limits.cpu",
            "services",
            "services.nodeports",
            "services.loadbalancers",
            "persistentvolumeclaims",
            "requests.storage",
            "gold.storageclass.storage.k8s.io/requests.storage",
            "configmaps",
            "count/configmaps",
            "secrets",
            "bogus",
        ]);
        let used = used(&hard, &[], &observed, Timestamp::UNIX_EPOCH);
        let gib = (1_i64 << 30) * 1000;
        let want = [
            ("pods", 1000),
            ("count/pods", 2000),
            ("requests.cpu", 500),
            ("limits.cpu", 0),
            ("services", 3000),
            ("services.nodeports", 3000),
            ("services.loadbalancers", 1000),
            ("persistentvolumeclaims", 1000),
            ("requests.storage", gib),
            ("gold.storageclass.storage.k8s.io/requests.storage", gib),
            ("configmaps", 2000),
            ("count/configmaps", 2000),
            ("secrets", 0),
        ];
        for (name, milli) in want {
            assert_eq!(used.get(name), Some(milli), "{name}");
        }
        assert_eq!(used.get("bogus"), None, "untracked names are left out");

        let scoped = used_scoped(&observed);
        assert_eq!((scoped.get("pods"), scoped.get("services"), scoped.get("configmaps")), (Some(1000), Some(0), Some(0)), "scopes only match pods");
    }

    fn used_scoped(observed: &Observed) -> Amounts {
        let requirement = scopes::Requirement { scope: "NotBestEffort".into(), operator: "Exists".into(), values: vec![] };
        used(&names(&["pods", "services", "configmaps"]), &[requirement], observed, Timestamp::UNIX_EPOCH)
    }
}

//! What one pod charges to a quota: its count, and — while it is not finished — its effective
//! requests and limits (containers summed, init containers as a floor, sidecars added, pod-level
//! resources and overhead applied), under the names quotas use.

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::amounts::Amounts;

/// Requested resources quotas track under a `requests.` prefix besides their own name.
const PREFIXED: &[&str] = &["hugepages-"];
/// Resources a pod-level `resources` stanza may set, replacing what its containers add up to.
const POD_LEVEL: &[&str] = &["cpu", "memory"];

/// True while a pod uses compute resources: not finished, and not past its deletion grace period.
pub fn is_charged(pod: &Pod, now: Timestamp) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return false;
    }
    match (&pod.metadata.deletion_timestamp, pod.metadata.deletion_grace_period_seconds) {
        (Some(deleted), Some(grace)) => deleted.0.saturating_add(SignedDuration::from_secs(grace)).is_ok_and(|end| now <= end),
        _ => true,
    }
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// The effective amounts of one kind (`requests` or `limits`) a pod holds.
fn effective(pod: &Pod, pick: fn(&Container) -> Amounts, pod_level: Option<Amounts>, overhead_only_on_set: bool) -> Amounts {
    let spec = pod.spec.clone().unwrap_or_default();
    let mut total = Amounts::default();
    for c in &spec.containers {
        total.add(&pick(c));
    }
    let (mut sidecars, mut init_floor) = (Amounts::default(), Amounts::default());
    for c in spec.init_containers.iter().flatten() {
        let own = pick(c);
        if is_sidecar(c) {
            total.add(&own);
            sidecars.add(&own);
            init_floor.max_with(&sidecars);
        } else {
            let mut running = own;
            running.add(&sidecars);
            init_floor.max_with(&running);
        }
    }
    total.max_with(&init_floor);
    if let Some(pod_level) = pod_level {
        for (name, milli) in pod_level.0.into_iter().filter(|(n, _)| POD_LEVEL.contains(&n.as_str())) {
            total.0.insert(name, milli);
        }
    }
    for (name, milli) in Amounts::from_list(spec.overhead.as_ref()).0 {
        if !overhead_only_on_set || total.0.contains_key(&name) {
            total.add_one(&name, milli);
        }
    }
    total
}

pub fn requests(pod: &Pod) -> Amounts {
    let pod_level = pod.spec.as_ref().and_then(|s| s.resources.as_ref()).map(|r| Amounts::from_list(r.requests.as_ref()));
    effective(pod, |c| Amounts::from_list(c.resources.as_ref().and_then(|r| r.requests.as_ref())), pod_level, false)
}

pub fn limits(pod: &Pod) -> Amounts {
    let pod_level = pod.spec.as_ref().and_then(|s| s.resources.as_ref()).map(|r| Amounts::from_list(r.limits.as_ref()));
    effective(pod, |c| Amounts::from_list(c.resources.as_ref().and_then(|r| r.limits.as_ref())), pod_level, true)
}

/// An extended resource: a domain-qualified name outside `kubernetes.io`, not a `requests.` quota.
fn is_extended(name: &str) -> bool {
    name.contains('/') && !name.contains("kubernetes.io/") && !name.starts_with("requests.")
}

/// Everything `pod` charges, under every quota name that tracks it.
pub fn usage(pod: &Pod, now: Timestamp) -> Amounts {
    let mut out = Amounts::default();
    // count/pods tracks every pod in storage, finished or not.
    out.count("count/pods", 1);
    if !is_charged(pod, now) {
        return out;
    }
    out.count("pods", 1);
    let (requests, limits) = (requests(pod), limits(pod));
    for resource in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(milli) = requests.get(resource) {
            out.add_one(resource, milli);
            out.add_one(&format!("requests.{resource}"), milli);
        }
        if let Some(milli) = limits.get(resource) {
            out.add_one(&format!("limits.{resource}"), milli);
        }
    }
    for (name, milli) in &requests.0 {
        if PREFIXED.iter().any(|p| name.starts_with(p)) {
            out.add_one(name, *milli);
            out.add_one(&format!("requests.{name}"), *milli);
        } else if is_extended(name) {
            out.add_one(&format!("requests.{name}"), *milli);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::{PodSpec, PodStatus, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn list(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, Quantity>> {
        (!pairs.is_empty()).then(|| pairs.iter().map(|(k, v)| (k.to_string(), Quantity(v.to_string()))).collect())
    }

    fn container(requests: &[(&str, &str)], limits: &[(&str, &str)], sidecar: bool) -> Container {
        Container {
            resources: Some(ResourceRequirements { requests: list(requests), limits: list(limits), ..Default::default() }),
            restart_policy: sidecar.then(|| "Always".to_string()),
            ..Default::default()
        }
    }

    fn pod(containers: Vec<Container>, init: Vec<Container>) -> Pod {
        Pod { spec: Some(PodSpec { containers, init_containers: Some(init), ..Default::default() }), ..Default::default() }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn effective_requests() {
        let cases = [
            ("containers add up", pod(vec![container(&[("cpu", "100m")], &[], false), container(&[("cpu", "200m")], &[], false)], vec![]), 300),
            ("big init container is the floor", pod(vec![container(&[("cpu", "100m")], &[], false)], vec![container(&[("cpu", "1")], &[], false)]), 1000),
            ("small init container does not count", pod(vec![container(&[("cpu", "500m")], &[], false)], vec![container(&[("cpu", "100m")], &[], false)]), 500),
            ("sidecar adds to the containers", pod(vec![container(&[("cpu", "500m")], &[], false)], vec![container(&[("cpu", "100m")], &[], true)]), 600),
            (
                "init after a sidecar runs beside it",
                pod(vec![container(&[("cpu", "100m")], &[], false)], vec![container(&[("cpu", "200m")], &[], true), container(&[("cpu", "1")], &[], false)]),
                1200,
            ),
        ];
        for (name, p, want) in cases {
            assert_eq!(requests(&p).get("cpu"), Some(want), "{name}");
        }
    }

    #[test]
    fn usage_names() {
        let p = pod(vec![container(&[("cpu", "250m"), ("memory", "64Mi"), ("example.com/dongle", "2"), ("hugepages-2Mi", "2Mi")], &[("cpu", "1")], false)], vec![]);
        let u = usage(&p, at(0));
        let want = [
            ("pods", 1000),
            ("count/pods", 1000),
            ("cpu", 250),
            ("requests.cpu", 250),
            ("limits.cpu", 1000),
            ("memory", 64 * 1024 * 1024 * 1000),
            ("requests.memory", 64 * 1024 * 1024 * 1000),
            ("requests.example.com/dongle", 2000),
            ("hugepages-2Mi", 2 * 1024 * 1024 * 1000),
            ("requests.hugepages-2Mi", 2 * 1024 * 1024 * 1000),
        ];
        for (name, milli) in want {
            assert_eq!(u.get(name), Some(milli), "{name}");
        }
        assert_eq!(u.get("limits.memory"), None, "no memory limit set");
        assert_eq!(u.get("example.com/dongle"), None, "extended resources only as requests.");
    }

    #[test]
    fn finished_pods_only_count_in_storage() {
        let mut done = pod(vec![container(&[("cpu", "1")], &[], false)], vec![]);
        done.status = Some(PodStatus { phase: Some("Succeeded".into()), ..Default::default() });
        let u = usage(&done, at(0));
        assert_eq!((u.get("count/pods"), u.get("pods"), u.get("requests.cpu")), (Some(1000), None, None));

        let mut deleting = pod(vec![], vec![]);
        deleting.metadata.deletion_timestamp = Some(Time(at(100)));
        deleting.metadata.deletion_grace_period_seconds = Some(30);
        assert!(is_charged(&deleting, at(120)), "within its grace period");
        assert!(!is_charged(&deleting, at(131)), "past its grace period");
    }

    #[test]
    fn overhead_and_pod_level() {
        let mut p = pod(vec![container(&[("cpu", "100m")], &[("cpu", "200m")], false)], vec![]);
        if let Some(spec) = p.spec.as_mut() {
            spec.overhead = list(&[("cpu", "10m"), ("memory", "1Ki")]);
        }
        assert_eq!(requests(&p).get("cpu"), Some(110));
        assert_eq!(limits(&p).get("cpu"), Some(210));
        assert_eq!(limits(&p).get("memory"), None, "overhead only raises limits that are set");
        if let Some(spec) = p.spec.as_mut() {
            spec.resources = Some(ResourceRequirements { requests: list(&[("cpu", "2")]), ..Default::default() });
        }
        assert_eq!(requests(&p).get("cpu"), Some(2010), "pod-level request replaces the containers' sum");
    }
}

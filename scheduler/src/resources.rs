//! Resource amounts as the scheduler counts them: a pod's effective requests (containers summed, init
//! containers as a floor, sidecars added, pod-level requests and overhead applied) and a node's allocatable.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use component_base::quantity;

/// CPU counted for a container that requests none, when scoring (upstream's 0.1 core).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Memory counted for a container that requests none, when scoring (upstream's 200 MiB).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

const CPU: &str = "cpu";
const MEMORY: &str = "memory";
const EPHEMERAL_STORAGE: &str = "ephemeral-storage";
const PODS: &str = "pods";

/// An amount of each resource. CPU is in millicores; the rest in base units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resource {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    /// Only meaningful for allocatable: how many pods the node accepts.
    pub allowed_pod_number: i64,
    /// Extended and hugepage resources, by name.
    pub scalar: BTreeMap<String, i64>,
}

impl Resource {
    /// Reads a resource list; unparsable quantities count as zero (the API server validates them, so this
    /// only guards against a corrupt object rather than rejecting it).
    pub fn from_list(list: &BTreeMap<String, Quantity>) -> Self {
        let mut r = Resource::default();
        for (name, q) in list {
            match name.as_str() {
                CPU => r.milli_cpu = quantity::milli_value(q).unwrap_or(0),
                MEMORY => r.memory = quantity::value(q).unwrap_or(0),
                EPHEMERAL_STORAGE => r.ephemeral_storage = quantity::value(q).unwrap_or(0),
                PODS => r.allowed_pod_number = quantity::value(q).unwrap_or(0),
                other if is_scalar_resource(other) => {
                    r.scalar.insert(other.to_string(), quantity::value(q).unwrap_or(0));
                }
                _ => {}
            }
        }
        r
    }

    pub fn add(&mut self, other: &Resource) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    pub fn subtract(&mut self, other: &Resource) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() -= v;
        }
    }

    /// Raises each amount to at least `other`'s.
    fn set_max(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }

    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0 && self.memory == 0 && self.ephemeral_storage == 0 && self.scalar.values().all(|v| *v == 0)
    }
}

/// Extended resources (`example.com/gpu`), hugepages and attachable volumes are counted by name.
fn is_scalar_resource(name: &str) -> bool {
    name.starts_with("hugepages-") || (name.contains('/') && !name.starts_with("kubernetes.io/"))
}

/// The node's allocatable resources (capacity when allocatable is missing).
pub fn node_allocatable(node: &Node) -> Resource {
    let status = node.status.as_ref();
    let list = status.and_then(|s| s.allocatable.as_ref()).or_else(|| status.and_then(|s| s.capacity.as_ref()));
    list.map(Resource::from_list).unwrap_or_default()
}

/// What the pod asks for, for fit checks: containers with no request count zero.
pub fn pod_requests(pod: &Pod) -> Resource {
    compute(pod, false)
}

/// What the pod asks for, for scoring: a container with no cpu or memory request counts the defaults, so
/// best-effort pods still spread.
pub fn pod_non_zero_requests(pod: &Pod) -> Resource {
    compute(pod, true)
}

fn container_requests(c: &Container, non_zero: bool) -> Resource {
    let list = c.resources.as_ref().and_then(|r| r.requests.as_ref());
    let mut r = list.map(Resource::from_list).unwrap_or_default();
    if non_zero {
        let has = |name: &str| list.is_some_and(|l| l.contains_key(name));
        if !has(CPU) {
            r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !has(MEMORY) {
            r.memory = DEFAULT_MEMORY_REQUEST;
        }
    }
    r
}

fn compute(pod: &Pod, non_zero: bool) -> Resource {
    let Some(spec) = pod.spec.as_ref() else { return Resource::default() };
    let mut total = Resource::default();
    for c in &spec.containers {
        total.add(&container_requests(c, non_zero));
    }
    // Sidecars (restartable init containers) run beside the app containers, so they add to the sum; each
    // ordinary init container runs alone next to the sidecars started before it, which sets a floor.
    let mut sidecars = Resource::default();
    let mut init_floor = Resource::default();
    for c in spec.init_containers.iter().flatten() {
        let reqs = container_requests(c, non_zero);
        if c.restart_policy.as_deref() == Some("Always") {
            total.add(&reqs);
            sidecars.add(&reqs);
            init_floor.set_max(&sidecars);
        } else {
            let mut running = reqs;
            running.add(&sidecars);
            init_floor.set_max(&running);
        }
    }
    total.set_max(&init_floor);
    // Pod-level requests (cpu and memory only) replace the container sum when set.
    if let Some(pod_level) = spec.resources.as_ref().and_then(|r| r.requests.as_ref()) {
        let p = Resource::from_list(pod_level);
        if pod_level.contains_key(CPU) {
            total.milli_cpu = p.milli_cpu;
        }
        if pod_level.contains_key(MEMORY) {
            total.memory = p.memory;
        }
    }
    if let Some(overhead) = spec.overhead.as_ref() {
        total.add(&Resource::from_list(overhead));
    }
    total
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements};

    pub fn list(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
        pairs.iter().map(|(k, v)| (k.to_string(), Quantity(v.to_string()))).collect()
    }

    pub fn container(name: &str, reqs: &[(&str, &str)]) -> Container {
        Container {
            name: name.into(),
            resources: (!reqs.is_empty())
                .then(|| ResourceRequirements { requests: Some(list(reqs)), ..Default::default() }),
            ..Default::default()
        }
    }

    fn sidecar(name: &str, reqs: &[(&str, &str)]) -> Container {
        Container { restart_policy: Some("Always".into()), ..container(name, reqs) }
    }

    fn pod(containers: Vec<Container>, init: Vec<Container>) -> Pod {
        Pod {
            spec: Some(PodSpec { containers, init_containers: Some(init), ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn pod_requests_cases() {
        let mut with_overhead = pod(vec![container("a", &[("cpu", "100m")])], vec![]);
        if let Some(spec) = with_overhead.spec.as_mut() {
            spec.overhead = Some(list(&[("cpu", "50m"), ("memory", "10")]));
        }
        let mut pod_level = pod(vec![container("a", &[("cpu", "100m"), ("memory", "5")])], vec![]);
        if let Some(spec) = pod_level.spec.as_mut() {
            spec.resources = Some(ResourceRequirements { requests: Some(list(&[("cpu", "1")])), ..Default::default() });
        }
        let cases: Vec<(&str, Pod, i64, i64)> = vec![
            ("no requests", pod(vec![container("a", &[])], vec![]), 0, 0),
            (
                "containers are summed",
                pod(vec![container("a", &[("cpu", "100m"), ("memory", "1Ki")]), container("b", &[("cpu", "200m")])], vec![]),
                300,
                1024,
            ),
            (
                "init container sets a floor",
                pod(vec![container("a", &[("cpu", "100m")])], vec![container("i", &[("cpu", "2")])]),
                2000,
                0,
            ),
            (
                "smaller init container does not add",
                pod(vec![container("a", &[("cpu", "1")])], vec![container("i", &[("cpu", "500m")])]),
                1000,
                0,
            ),
            (
                "sidecar adds to containers and to later init containers",
                pod(
                    vec![container("a", &[("cpu", "1")])],
                    vec![sidecar("s", &[("cpu", "500m")]), container("i", &[("cpu", "1200m")])],
                ),
                1700,
                0,
            ),
            ("overhead is added", with_overhead, 150, 10),
            ("pod-level cpu replaces the container sum", pod_level, 1000, 5),
        ];
        for (name, p, cpu, mem) in cases {
            let r = pod_requests(&p);
            assert_eq!((r.milli_cpu, r.memory), (cpu, mem), "case {name}");
        }
    }

    #[test]
    fn non_zero_requests_apply_defaults_per_container() {
        let p = pod(vec![container("a", &[]), container("b", &[("cpu", "1")])], vec![]);
        let r = pod_non_zero_requests(&p);
        assert_eq!(r.milli_cpu, 1000 + DEFAULT_MILLI_CPU_REQUEST);
        assert_eq!(r.memory, 2 * DEFAULT_MEMORY_REQUEST);
        assert!(pod_requests(&p).memory == 0, "fit requests keep zero");
    }

    #[test]
    fn scalar_resources_are_tracked() {
        let r = Resource::from_list(&list(&[("example.com/gpu", "2"), ("hugepages-2Mi", "4Mi"), ("pods", "110")]));
        assert_eq!(r.scalar.get("example.com/gpu"), Some(&2));
        assert_eq!(r.scalar.get("hugepages-2Mi"), Some(&(4 * 1024 * 1024)));
        assert_eq!(r.allowed_pod_number, 110);
    }
}

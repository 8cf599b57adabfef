//! From the endpoints a service should have and the slices it has, the fewest writes that get
//! there: endpoints stay in the slice they are in, new ones fill slices with room first, slices
//! left empty go, and a service with no endpoints keeps exactly one empty placeholder slice.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::desired::{self, PortsKey};

/// Upstream's default `--max-endpoints-per-slice`.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// What every slice of the service carries besides its endpoints and ports.
#[derive(Debug, Clone)]
pub struct SliceMeta {
    pub service: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub owner: OwnerReference,
}

/// The writes one sync makes.
#[derive(Debug, Default)]
pub struct Plan {
    pub create: Vec<EndpointSlice>,
    pub update: Vec<EndpointSlice>,
    pub delete: Vec<EndpointSlice>,
}

fn address(e: &Endpoint) -> &str {
    e.addresses.first().map(String::as_str).unwrap_or_default()
}

fn new_slice(meta: &SliceMeta, ports: &PortsKey, endpoints: Vec<Endpoint>) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", meta.service)),
            namespace: Some(meta.namespace.clone()),
            labels: Some(meta.labels.clone()),
            owner_references: Some(vec![meta.owner.clone()]),
            ..Default::default()
        },
        address_type: "IPv4".into(),
        endpoints,
        ports: Some(desired::endpoint_ports(ports)),
    }
}

/// True if the slice's labels and owner already are what `meta` says.
fn meta_matches(slice: &EndpointSlice, meta: &SliceMeta) -> bool {
    slice.metadata.labels.as_ref() == Some(&meta.labels) && slice.metadata.owner_references.as_deref() == Some(std::slice::from_ref(&meta.owner))
}

fn with_meta(mut slice: EndpointSlice, meta: &SliceMeta) -> EndpointSlice {
    slice.metadata.labels = Some(meta.labels.clone());
    slice.metadata.owner_references = Some(vec![meta.owner.clone()]);
    slice
}

/// The plan for one service. `existing` are the slices this controller manages for it.
pub fn plan(meta: &SliceMeta, desired: &BTreeMap<PortsKey, Vec<Endpoint>>, existing: &[EndpointSlice]) -> Plan {
    let mut out = Plan::default();
    let total: usize = desired.values().map(Vec::len).sum();
    if total == 0 {
        return placeholder(meta, existing);
    }
    let mut by_ports: HashMap<PortsKey, Vec<&EndpointSlice>> = HashMap::new();
    for slice in existing {
        let key = desired::ports_key(slice.ports.as_deref().unwrap_or_default());
        if desired.contains_key(&key) && slice.address_type == "IPv4" {
            by_ports.entry(key).or_default().push(slice);
        } else {
            out.delete.push(slice.clone());
        }
    }
    for (ports, wanted) in desired {
        let mut remaining: BTreeMap<&str, &Endpoint> = wanted.iter().map(|e| (address(e), e)).collect();
        // Slices of this port list, each keeping the endpoints still wanted (in their new state).
        let mut kept: Vec<(EndpointSlice, bool)> = Vec::new();
        for slice in by_ports.remove(ports).unwrap_or_default() {
            let endpoints: Vec<Endpoint> = slice.endpoints.iter().filter_map(|e| remaining.remove(address(e)).cloned()).collect();
            if endpoints.is_empty() {
                out.delete.push(slice.clone());
                continue;
            }
            let changed = endpoints != slice.endpoints || !meta_matches(slice, meta);
            let mut updated = with_meta(slice.clone(), meta);
            updated.endpoints = endpoints;
            kept.push((updated, changed));
        }
        // New endpoints go into slices being rewritten anyway, then any with room, then new slices.
        let mut fresh: Vec<Endpoint> = remaining.into_values().cloned().collect();
        kept.sort_by_key(|(_, changed)| !changed);
        for (slice, changed) in &mut kept {
            while slice.endpoints.len() < MAX_ENDPOINTS_PER_SLICE && !fresh.is_empty() {
                slice.endpoints.push(fresh.remove(0));
                *changed = true;
            }
        }
        out.update.extend(kept.into_iter().filter(|(_, changed)| *changed).map(|(slice, _)| slice));
        for chunk in fresh.chunks(MAX_ENDPOINTS_PER_SLICE) {
            out.create.push(new_slice(meta, ports, chunk.to_vec()));
        }
    }
    out
}

/// A service without endpoints keeps one slice with no endpoints and no ports.
fn placeholder(meta: &SliceMeta, existing: &[EndpointSlice]) -> Plan {
    let mut out = Plan::default();
    let is_placeholder = |s: &EndpointSlice| s.endpoints.is_empty() && s.ports.as_deref().unwrap_or_default().is_empty();
    let keep = existing.iter().position(is_placeholder);
    for (i, slice) in existing.iter().enumerate() {
        if Some(i) != keep {
            out.delete.push(slice.clone());
        } else if !meta_matches(slice, meta) {
            out.update.push(with_meta(slice.clone(), meta));
        }
    }
    if keep.is_none() {
        let mut slice = new_slice(meta, &Vec::new(), Vec::new());
        slice.ports = Some(Vec::new());
        out.create.push(slice);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::discovery::v1::EndpointConditions;

    fn meta() -> SliceMeta {
        SliceMeta {
            service: "web".into(),
            namespace: "default".into(),
            labels: [("kubernetes.io/service-name".to_string(), "web".to_string())].into(),
            owner: OwnerReference { name: "web".into(), uid: "u".into(), kind: "Service".into(), api_version: "v1".into(), ..Default::default() },
        }
    }

    fn ep(ip: &str, ready: bool) -> Endpoint {
        Endpoint {
            addresses: vec![ip.into()],
            conditions: Some(EndpointConditions { ready: Some(ready), serving: Some(ready), terminating: Some(false) }),
            ..Default::default()
        }
    }

    fn ports(n: i32) -> PortsKey {
        vec![("http".into(), n, "TCP".into(), None)]
    }

    fn existing(name: &str, port: i32, eps: Vec<Endpoint>) -> EndpointSlice {
        let mut s = new_slice(&meta(), &ports(port), eps);
        s.metadata.name = Some(name.into());
        s
    }

    fn names(slices: &[EndpointSlice]) -> Vec<String> {
        slices.iter().map(|s| s.metadata.name.clone().unwrap_or_default()).collect()
    }

    fn ips(n: usize) -> Vec<Endpoint> {
        (0..n).map(|i| ep(&format!("10.0.{}.{}", i / 250, i % 250 + 1), true)).collect()
    }

    #[test]
    fn plans() {
        struct Case {
            name: &'static str,
            desired: BTreeMap<PortsKey, Vec<Endpoint>>,
            existing: Vec<EndpointSlice>,
            creates: Vec<usize>,
            updated: Vec<&'static str>,
            deleted: Vec<&'static str>,
        }
        let cases = [
            Case { name: "first sync creates", desired: [(ports(80), ips(2))].into(), existing: vec![], creates: vec![2], updated: vec![], deleted: vec![] },
            Case {
                name: "nothing changed, nothing written",
                desired: [(ports(80), ips(2))].into(),
                existing: vec![existing("a", 80, ips(2))],
                creates: vec![],
                updated: vec![],
                deleted: vec![],
            },
            Case {
                name: "a pod turns unready: update in place",
                desired: [(ports(80), vec![ep("10.0.0.1", false)])].into(),
                existing: vec![existing("a", 80, vec![ep("10.0.0.1", true)])],
                creates: vec![],
                updated: vec!["a"],
                deleted: vec![],
            },
            Case {
                name: "new endpoint fills the slice with room",
                desired: [(ports(80), ips(3))].into(),
                existing: vec![existing("a", 80, ips(2))],
                creates: vec![],
                updated: vec!["a"],
                deleted: vec![],
            },
            Case {
                name: "more than 100 endpoints split",
                desired: [(ports(80), ips(250))].into(),
                existing: vec![],
                creates: vec![100, 100, 50],
                updated: vec![],
                deleted: vec![],
            },
            Case {
                name: "port changed: replace the slice",
                desired: [(ports(81), ips(1))].into(),
                existing: vec![existing("a", 80, ips(1))],
                creates: vec![1],
                updated: vec![],
                deleted: vec!["a"],
            },
            Case {
                name: "all pods gone: placeholder",
                desired: BTreeMap::new(),
                existing: vec![existing("a", 80, ips(1))],
                creates: vec![0],
                updated: vec![],
                deleted: vec!["a"],
            },
            Case {
                name: "placeholder kept",
                desired: BTreeMap::new(),
                existing: vec![{
                    let mut s = existing("p", 80, vec![]);
                    s.ports = Some(vec![]);
                    s
                }],
                creates: vec![],
                updated: vec![],
                deleted: vec![],
            },
            Case {
                name: "endpoint gone leaves slice empty: delete",
                desired: [(ports(80), vec![ep("10.0.0.9", true)])].into(),
                existing: vec![existing("a", 80, ips(1))],
                creates: vec![1],
                updated: vec![],
                deleted: vec!["a"],
            },
        ];
        for case in cases {
            let p = plan(&meta(), &case.desired, &case.existing);
            assert_eq!(p.create.iter().map(|s| s.endpoints.len()).collect::<Vec<_>>(), case.creates, "{}: creates", case.name);
            assert_eq!(names(&p.update), case.updated, "{}: updates", case.name);
            assert_eq!(names(&p.delete), case.deleted, "{}: deletes", case.name);
            for s in &p.create {
                assert_eq!(s.metadata.generate_name.as_deref(), Some("web-"), "{}", case.name);
                assert!(s.endpoints.len() <= MAX_ENDPOINTS_PER_SLICE, "{}", case.name);
            }
        }
    }
}

//! Values of the downward API (`fieldRef`, `resourceFieldRef`), shared by env vars and volumes.

use k8s_openapi::api::core::v1::{Container, Pod};

use component_base::quantity;

/// What the downward API may expose besides the pod itself.
#[derive(Debug, Clone, Default)]
pub struct NodeFacts {
    pub host_ip: String,
    pub pod_ips: Vec<String>,
    /// Allocatable CPU (millicores) and memory (bytes): the values of unset limits.
    pub cpu_milli: i64,
    pub memory_bytes: i64,
}

/// A field path the downward API does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("failed to resolve field path {0:?}: unsupported")]
    Field(String),
    #[error("failed to resolve resource {0:?}: unsupported or not a quantity")]
    Resource(String),
}

fn map_entries(map: Option<&std::collections::BTreeMap<String, String>>) -> String {
    // Same shape as upstream's downward API files: one `key="value"` per line, sorted.
    map.map(|m| m.iter().map(|(k, v)| format!("{k}={v:?}")).collect::<Vec<_>>().join("\n")).unwrap_or_default()
}

fn subscript<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    path.strip_prefix(prefix)?.strip_prefix("['")?.strip_suffix("']")
}

/// The value of a `fieldRef.fieldPath`.
pub fn field_value(pod: &Pod, path: &str, node: &NodeFacts) -> Result<String, Error> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let value = match path {
        "metadata.name" => meta.name.clone(),
        "metadata.namespace" => meta.namespace.clone(),
        "metadata.uid" => meta.uid.clone(),
        "metadata.labels" => Some(map_entries(meta.labels.as_ref())),
        "metadata.annotations" => Some(map_entries(meta.annotations.as_ref())),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()),
        "status.hostIP" => Some(node.host_ip.clone()),
        "status.hostIPs" => Some(node.host_ip.clone()),
        "status.podIP" => node.pod_ips.first().cloned(),
        "status.podIPs" => Some(node.pod_ips.join(",")),
        _ => {
            if let Some(key) = subscript(path, "metadata.labels") {
                meta.labels.as_ref().and_then(|l| l.get(key).cloned())
            } else if let Some(key) = subscript(path, "metadata.annotations") {
                meta.annotations.as_ref().and_then(|a| a.get(key).cloned())
            } else {
                return Err(Error::Field(path.to_string()));
            }
        }
    };
    Ok(value.unwrap_or_default())
}

/// The value of a `resourceFieldRef` (`limits.cpu`, `requests.memory`, …) divided by `divisor`, rounded up.
pub fn resource_value(container: &Container, resource: &str, divisor: Option<&str>, node: &NodeFacts) -> Result<String, Error> {
    let bad = || Error::Resource(resource.to_string());
    let (kind, name) = resource.split_once('.').ok_or_else(bad)?;
    let resources = container.resources.as_ref();
    let map = match kind {
        "limits" => resources.and_then(|r| r.limits.as_ref()),
        "requests" => resources.and_then(|r| r.requests.as_ref()),
        _ => return Err(bad()),
    };
    // Exact integer arithmetic in thousandths, so `divisor: 1m` of `cpu: 250m` gives 250.
    let set = map.and_then(|m| m.get(name)).map(|q| quantity::milli_value(q).map_err(|_| bad())).transpose()?;
    let value = match (set, name) {
        (Some(v), _) => v,
        // Unset limits read as the node's allocatable, like upstream.
        (None, "cpu") if kind == "limits" => node.cpu_milli,
        (None, "memory") if kind == "limits" => node.memory_bytes.saturating_mul(1000),
        (None, "ephemeral-storage" | "cpu" | "memory") => 0,
        _ => return Err(bad()),
    };
    let divisor = divisor.map(|d| quantity::parse_milli_value(d).map_err(|_| bad())).transpose()?.filter(|d| *d > 0).unwrap_or(1000);
    Ok(format!("{}", value.div_euclid(divisor) + i64::from(value.rem_euclid(divisor) != 0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ResourceRequirements;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    #[test]
    fn fields_and_resources() {
        let pod = Pod {
            metadata: kube::api::ObjectMeta {
                name: Some("p".into()),
                labels: Some([("app".to_string(), "web".to_string()), ("tier".to_string(), "a".to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let node = NodeFacts { host_ip: "127.0.1.1".into(), pod_ips: vec!["10.244.1.2".into()], cpu_milli: 2000, memory_bytes: 1 << 30 };
        assert_eq!(field_value(&pod, "metadata.name", &node).ok().as_deref(), Some("p"));
        assert_eq!(field_value(&pod, "metadata.labels['app']", &node).ok().as_deref(), Some("web"));
        assert_eq!(field_value(&pod, "metadata.labels", &node).ok().as_deref(), Some("app=\"web\"\ntier=\"a\""));
        assert_eq!(field_value(&pod, "status.podIP", &node).ok().as_deref(), Some("10.244.1.2"));
        assert!(field_value(&pod, "spec.bogus", &node).is_err());

        let c = Container {
            resources: Some(ResourceRequirements {
                limits: Some([("memory".to_string(), Quantity("64Mi".into()))].into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(resource_value(&c, "limits.memory", Some("1Mi"), &node).ok().as_deref(), Some("64"));
        assert_eq!(resource_value(&c, "limits.cpu", None, &node).ok().as_deref(), Some("2"), "unset limit is the node's");
        assert!(resource_value(&c, "limits.gpu", None, &node).is_err());
    }
}

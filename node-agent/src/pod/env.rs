//! A container's environment: Service variables, `envFrom`, then `env` (later wins), with `$(VAR)`
//! references expanded like upstream.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Container, Pod, Service};

use super::fields::{self, NodeFacts};
use crate::objects::{self, Objects};

/// Why an environment could not be built (reported as CreateContainerConfigError).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Object(#[from] objects::Error),
    #[error("couldn't find key {key} in {kind} {namespace}/{name}")]
    MissingKey { kind: &'static str, namespace: String, name: String, key: String },
    #[error(transparent)]
    Field(#[from] fields::Error),
}

/// Expands `$(NAME)` from `vars`; `$$` is a literal `$`; unknown references stay as written.
pub fn expand(input: &str, vars: &HashMap<String, String>) -> String {
    expand_with(input, |name| vars.get(name).cloned())
}

/// Expands `$(NAME)` with `lookup`; `$$` is a literal `$`; a reference `lookup` has no value for stays as
/// written.
pub fn expand_with(input: &str, mut lookup: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    match lookup(&inner[..end]) {
                        Some(value) => out.push_str(&value),
                        None => out.push_str(&rest[pos..pos + 2 + end + 1]),
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push_str(&rest[pos..]);
                    rest = "";
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The `<NAME>_SERVICE_HOST`-style variables of a set of Services (docker-links compatible).
pub fn service_env(services: &[Service]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for svc in services {
        let Some(spec) = &svc.spec else { continue };
        let ip = spec.cluster_ip.clone().unwrap_or_default();
        if ip.is_empty() || ip == "None" {
            continue;
        }
        let name = svc.metadata.name.clone().unwrap_or_default().to_uppercase().replace('-', "_");
        let ports = spec.ports.clone().unwrap_or_default();
        let Some(first) = ports.first() else { continue };
        out.push((format!("{name}_SERVICE_HOST"), ip.clone()));
        out.push((format!("{name}_SERVICE_PORT"), first.port.to_string()));
        for p in &ports {
            if let Some(pname) = &p.name {
                out.push((format!("{name}_SERVICE_PORT_{}", pname.to_uppercase().replace('-', "_")), p.port.to_string()));
            }
        }
        let proto = |p: &k8s_openapi::api::core::v1::ServicePort| p.protocol.clone().unwrap_or_else(|| "TCP".into());
        out.push((format!("{name}_PORT"), format!("{}://{ip}:{}", proto(first).to_lowercase(), first.port)));
        for p in &ports {
            let prefix = format!("{name}_PORT_{}_{}", p.port, proto(p).to_uppercase());
            out.push((prefix.clone(), format!("{}://{ip}:{}", proto(p).to_lowercase(), p.port)));
            out.push((format!("{prefix}_PROTO"), proto(p).to_lowercase()));
            out.push((format!("{prefix}_PORT"), p.port.to_string()));
            out.push((format!("{prefix}_ADDR"), ip.clone()));
        }
    }
    out
}

fn set(vars: &mut Vec<(String, String)>, key: String, value: String) {
    match vars.iter_mut().find(|(k, _)| *k == key) {
        Some(entry) => entry.1 = value,
        None => vars.push((key, value)),
    }
}

/// The full environment of `container`, in definition order.
pub async fn container_env(
    container: &Container,
    pod: &Pod,
    objects: &Objects,
    node: &NodeFacts,
    services: &[Service],
) -> Result<Vec<(String, String)>, Error> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let mut vars: Vec<(String, String)> = service_env(services);

    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            match objects.config_map(&namespace, &r.name).await {
                Ok(cm) => {
                    for (k, v) in cm.data.unwrap_or_default() {
                        set(&mut vars, format!("{prefix}{k}"), v);
                    }
                }
                Err(objects::Error::NotFound { .. }) if r.optional == Some(true) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(r) = &from.secret_ref {
            match objects.secret(&namespace, &r.name).await {
                Ok(s) => {
                    for (k, v) in s.data.unwrap_or_default() {
                        set(&mut vars, format!("{prefix}{k}"), String::from_utf8_lossy(&v.0).into_owned());
                    }
                }
                Err(objects::Error::NotFound { .. }) if r.optional == Some(true) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    for env in container.env.iter().flatten() {
        let lookup: HashMap<String, String> = vars.iter().cloned().collect();
        let value = if let Some(v) = &env.value {
            Some(expand(v, &lookup))
        } else if let Some(from) = &env.value_from {
            if let Some(f) = &from.field_ref {
                Some(fields::field_value(pod, &f.field_path, node)?)
            } else if let Some(r) = &from.resource_field_ref {
                Some(fields::resource_value(container, &r.resource, r.divisor.as_ref().map(|d| d.0.as_str()), node)?)
            } else if let Some(r) = &from.config_map_key_ref {
                let optional = r.optional == Some(true);
                match objects.config_map(&namespace, &r.name).await {
                    Ok(cm) => match cm.data.unwrap_or_default().remove(&r.key) {
                        Some(v) => Some(v),
                        None if optional => None,
                        None => return Err(Error::MissingKey { kind: "configmap", namespace, name: r.name.clone(), key: r.key.clone() }),
                    },
                    Err(objects::Error::NotFound { .. }) if optional => None,
                    Err(e) => return Err(e.into()),
                }
            } else if let Some(r) = &from.secret_key_ref {
                let optional = r.optional == Some(true);
                match objects.secret(&namespace, &r.name).await {
                    Ok(s) => match s.data.unwrap_or_default().remove(&r.key) {
                        Some(v) => Some(String::from_utf8_lossy(&v.0).into_owned()),
                        None if optional => None,
                        None => return Err(Error::MissingKey { kind: "secret", namespace, name: r.name.clone(), key: r.key.clone() }),
                    },
                    Err(objects::Error::NotFound { .. }) if optional => None,
                    Err(e) => return Err(e.into()),
                }
            } else {
                None
            }
        } else {
            Some(String::new())
        };
        if let Some(value) = value {
            set(&mut vars, env.name.clone(), value);
        }
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion() {
        let vars: HashMap<String, String> = [("A".to_string(), "x".to_string())].into();
        for (input, want) in [
            ("$(A)-y", "x-y"),
            ("$(B)", "$(B)"),
            ("$$(A)", "$(A)"),
            ("cost $5", "cost $5"),
            ("$(A", "$(A"),
            ("plain", "plain"),
        ] {
            assert_eq!(expand(input, &vars), want, "{input}");
        }
    }

    #[test]
    fn service_variables() {
        use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};
        let svc = Service {
            metadata: kube::api::ObjectMeta { name: Some("kubernetes".into()), ..Default::default() },
            spec: Some(ServiceSpec {
                cluster_ip: Some("10.96.0.1".into()),
                ports: Some(vec![ServicePort { name: Some("https".into()), port: 443, protocol: Some("TCP".into()), ..Default::default() }]),
                ..Default::default()
            }),
            status: None,
        };
        let env: HashMap<String, String> = service_env(&[svc]).into_iter().collect();
        assert_eq!(env.get("KUBERNETES_SERVICE_HOST").map(String::as_str), Some("10.96.0.1"));
        assert_eq!(env.get("KUBERNETES_SERVICE_PORT").map(String::as_str), Some("443"));
        assert_eq!(env.get("KUBERNETES_PORT_443_TCP_ADDR").map(String::as_str), Some("10.96.0.1"));
        assert_eq!(env.get("KUBERNETES_PORT").map(String::as_str), Some("tcp://10.96.0.1:443"));
    }
}

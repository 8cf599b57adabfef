//! The files of configMap, secret, downwardAPI and projected volumes.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, DownwardAPIVolumeFile, KeyToPath, Pod, Volume};

use super::atomic::File;
use super::{Error, Payload, Prepared, Result, Volumes};
use crate::objects;
use crate::pod::fields::{self, NodeFacts};

const DEFAULT_MODE: i32 = 0o644;

fn mode(item: Option<i32>, default: i32) -> u32 {
    u32::try_from(item.unwrap_or(default)).unwrap_or(0o644) & 0o7777
}

/// Picks `items` (or every key) out of `data`.
fn project(volume: &str, data: BTreeMap<String, Vec<u8>>, items: Option<&Vec<KeyToPath>>, default_mode: i32, optional: bool, out: &mut Payload) -> Result<()> {
    match items {
        None => {
            for (k, v) in data {
                out.insert(k, File { content: v, mode: mode(None, default_mode) });
            }
        }
        Some(items) => {
            for item in items {
                match data.get(&item.key) {
                    Some(v) => {
                        out.insert(item.path.clone(), File { content: v.clone(), mode: mode(item.mode, default_mode) });
                    }
                    None if optional => {}
                    None => {
                        return Err(Error::Invalid { volume: volume.to_string(), message: format!("configmap or secret references non-existent key {}", item.key) });
                    }
                }
            }
        }
    }
    Ok(())
}

fn downward_items(pod: &Pod, volume: &str, items: &[DownwardAPIVolumeFile], default_mode: i32, node: &NodeFacts, out: &mut Payload) -> Result<()> {
    let invalid = |e: fields::Error| Error::Invalid { volume: volume.to_string(), message: e.to_string() };
    for item in items {
        let value = if let Some(f) = &item.field_ref {
            fields::field_value(pod, &f.field_path, node).map_err(invalid)?
        } else if let Some(r) = &item.resource_field_ref {
            let containers = pod.spec.as_ref().map(|s| s.containers.clone()).unwrap_or_default();
            let wanted = r.container_name.clone().unwrap_or_default();
            let container = containers.iter().find(|c| c.name == wanted).cloned().unwrap_or_else(Container::default);
            fields::resource_value(&container, &r.resource, r.divisor.as_ref().map(|d| d.0.as_str()), node).map_err(invalid)?
        } else {
            continue;
        };
        out.insert(item.path.clone(), File { content: value.into_bytes(), mode: mode(item.mode, default_mode) });
    }
    Ok(())
}

impl Volumes {
    async fn config_map_data(&self, volume: &str, namespace: &str, name: &str, optional: bool) -> Result<BTreeMap<String, Vec<u8>>> {
        match self.objects.config_map(namespace, name).await {
            Ok(cm) => {
                let mut data: BTreeMap<String, Vec<u8>> = cm.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
                data.extend(cm.binary_data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)));
                Ok(data)
            }
            Err(objects::Error::NotFound { .. }) if optional => Ok(BTreeMap::new()),
            Err(source) => Err(Error::Object { volume: volume.to_string(), source }),
        }
    }

    async fn secret_data(&self, volume: &str, namespace: &str, name: &str, optional: bool) -> Result<BTreeMap<String, Vec<u8>>> {
        match self.objects.secret(namespace, name).await {
            Ok(s) => Ok(s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect()),
            Err(objects::Error::NotFound { .. }) if optional => Ok(BTreeMap::new()),
            Err(source) => Err(Error::Object { volume: volume.to_string(), source }),
        }
    }

    /// The files of one non-emptyDir, non-hostPath volume.
    pub(super) async fn payload(&self, pod: &Pod, volume: &Volume, node: &NodeFacts, now: Timestamp, prepared: &mut Prepared) -> Result<Payload> {
        let name = volume.name.as_str();
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let mut out = Payload::new();
        if let Some(cm) = &volume.config_map {
            let optional = cm.optional == Some(true);
            let data = self.config_map_data(name, &namespace, &cm.name, optional).await?;
            project(name, data, cm.items.as_ref(), cm.default_mode.unwrap_or(DEFAULT_MODE), optional, &mut out)?;
        } else if let Some(s) = &volume.secret {
            let optional = s.optional == Some(true);
            let secret_name = s.secret_name.clone().unwrap_or_default();
            let data = self.secret_data(name, &namespace, &secret_name, optional).await?;
            project(name, data, s.items.as_ref(), s.default_mode.unwrap_or(DEFAULT_MODE), optional, &mut out)?;
        } else if let Some(d) = &volume.downward_api {
            downward_items(pod, name, d.items.as_deref().unwrap_or_default(), d.default_mode.unwrap_or(DEFAULT_MODE), node, &mut out)?;
        } else if let Some(p) = &volume.projected {
            let default_mode = p.default_mode.unwrap_or(DEFAULT_MODE);
            for source in p.sources.iter().flatten() {
                if let Some(cm) = &source.config_map {
                    let optional = cm.optional == Some(true);
                    let data = self.config_map_data(name, &namespace, &cm.name, optional).await?;
                    project(name, data, cm.items.as_ref(), default_mode, optional, &mut out)?;
                }
                if let Some(s) = &source.secret {
                    let optional = s.optional == Some(true);
                    let data = self.secret_data(name, &namespace, &s.name, optional).await?;
                    project(name, data, s.items.as_ref(), default_mode, optional, &mut out)?;
                }
                if let Some(d) = &source.downward_api {
                    downward_items(pod, name, d.items.as_deref().unwrap_or_default(), default_mode, node, &mut out)?;
                }
                if let Some(t) = &source.service_account_token {
                    let (token, refresh_at) = self.token(pod, name, &t.path, t.audience.clone(), t.expiration_seconds, now).await?;
                    prepared.token_refresh_at = Some(prepared.token_refresh_at.map_or(refresh_at, |r| r.min(refresh_at)));
                    out.insert(t.path.clone(), File { content: token.token.into_bytes(), mode: mode(None, default_mode) });
                }
            }
        }
        Ok(out)
    }
}

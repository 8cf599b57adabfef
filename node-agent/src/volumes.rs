//! A pod's volumes, materialized under `<root-dir>/pods/<uid>/volumes/<plugin>/<name>` and handed to the
//! runtime as bind mounts: emptyDir (on tmpfs for medium Memory), hostPath, configMap, secret, downwardAPI
//! and projected (which carries the `kube-api-access-*` service-account token every pod gets).

pub mod atomic;
pub mod etc_hosts;
mod memory;
pub mod ownership;
mod payload;
mod sub_path;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use jiff::Timestamp;
use k8s_cri::v1::{Mount, MountPropagation};
use k8s_openapi::api::core::v1::{Container, Pod, Volume};

use crate::objects::{self, Objects, Token};
use crate::pod::fields::NodeFacts;

/// Failures setting up or tearing down volumes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to prepare volume {volume}: {source}")]
    Object {
        volume: String,
        #[source]
        source: objects::Error,
    },
    #[error("failed to prepare volume {volume}: {source}")]
    Write {
        volume: String,
        #[source]
        source: atomic::Error,
    },
    #[error("failed to prepare volume {volume}: {message}")]
    Invalid { volume: String, message: String },
    #[error("failed to {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to mount {mount} into container {container}: no volume of that name")]
    UnknownVolume { mount: String, container: String },
    #[error(transparent)]
    SubPath(#[from] sub_path::Error),
    #[error("failed to prepare volume {volume}: {source}")]
    Ownership {
        volume: String,
        #[source]
        source: ownership::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The host directories of a pod's volumes, and when they want refreshing.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    pub paths: HashMap<String, PathBuf>,
    /// The earliest time a token in them should be renewed.
    pub token_refresh_at: Option<Timestamp>,
}

/// A projected token's place: (pod uid, volume, path).
type TokenKey = (String, String, String);

/// Sets up and removes pod volumes.
pub struct Volumes {
    root: PathBuf,
    objects: Objects,
    /// Tokens already issued, by (pod uid, volume, path): reused until 80% of their life has passed.
    tokens: Mutex<HashMap<TokenKey, (Token, Timestamp)>>,
}

fn plugin_dir(volume: &Volume) -> Option<&'static str> {
    if volume.empty_dir.is_some() {
        Some("kubernetes.io~empty-dir")
    } else if volume.config_map.is_some() {
        Some("kubernetes.io~configmap")
    } else if volume.secret.is_some() {
        Some("kubernetes.io~secret")
    } else if volume.downward_api.is_some() {
        Some("kubernetes.io~downward-api")
    } else if volume.projected.is_some() {
        Some("kubernetes.io~projected")
    } else {
        None
    }
}

fn mkdir(path: &Path, mode: Option<u32>) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|source| Error::Io { action: "create directory", path: path.to_path_buf(), source })?;
    if let Some(mode) = mode {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|source| Error::Io { action: "set permissions of", path: path.to_path_buf(), source })?;
    }
    Ok(())
}

impl Volumes {
    pub fn new(root: PathBuf, objects: Objects) -> Self {
        Self { root, objects, tokens: Mutex::new(HashMap::new()) }
    }

    /// `<root-dir>/pods/<uid>`.
    pub fn pod_dir(&self, uid: &str) -> PathBuf {
        self.root.join("pods").join(uid)
    }

    /// Creates or refreshes every volume of `pod`.
    pub async fn setup(&self, pod: &Pod, node: &NodeFacts, now: Timestamp) -> Result<Prepared> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let volumes_dir = self.pod_dir(&uid).join("volumes");
        let mut prepared = Prepared::default();
        let fs_group = ownership::fs_group(pod);
        for volume in pod.spec.as_ref().and_then(|s| s.volumes.as_ref()).into_iter().flatten() {
            let name = volume.name.clone();
            if let Some(host) = &volume.host_path {
                let path = PathBuf::from(&host.path);
                prepare_host_path(&name, &path, host.type_.as_deref().unwrap_or(""))?;
                prepared.paths.insert(name, path);
                continue;
            }
            let Some(plugin) = plugin_dir(volume) else {
                return Err(Error::Invalid { volume: name, message: "unsupported volume type".into() });
            };
            let dir = volumes_dir.join(plugin).join(&name);
            if let Some(empty_dir) = &volume.empty_dir {
                mkdir(&dir, None)?;
                if empty_dir.medium.as_deref() == Some("Memory") {
                    memory::mount(&dir).map_err(|source| Error::Io { action: "mount tmpfs on", path: dir.clone(), source })?;
                }
                match fs_group {
                    // Writable by any user in the container, like upstream (after the mount: the tmpfs root).
                    None => mkdir(&dir, Some(0o777))?,
                    // Owned once, when new: later syncs must not undo what the containers did to their files.
                    Some(gid) if !ownership::root_matches(&dir, gid, false) => {
                        mkdir(&dir, Some(0o777))?;
                        ownership::own_tree(&dir, gid, false).map_err(|source| Error::Ownership { volume: name.clone(), source })?;
                    }
                    Some(_) => {}
                }
            } else {
                // With an fsGroup the writer widens the root's mode itself; resetting it here would flap.
                mkdir(&dir, fs_group.is_none().then_some(0o755))?;
                let files = self.payload(pod, volume, node, now, &mut prepared).await?;
                atomic::write(&dir, &files, fs_group).map_err(|source| Error::Write { volume: name.clone(), source })?;
            }
            prepared.paths.insert(name, dir);
        }
        Ok(prepared)
    }

    /// A token for a projected volume: the cached one while it is fresh, a new one otherwise.
    async fn token(&self, pod: &Pod, volume: &str, path: &str, audience: Option<String>, expiration: Option<i64>, now: Timestamp) -> Result<(Token, Timestamp)> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let key = (uid.clone(), volume.to_string(), path.to_string());
        let cached = self.tokens.lock().unwrap_or_else(|e| e.into_inner()).get(&key).cloned();
        if let Some((token, refresh_at)) = cached.filter(|(_, refresh_at)| *refresh_at > now) {
            return Ok((token, refresh_at));
        }
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let sa = pod.spec.as_ref().and_then(|s| s.service_account_name.clone()).unwrap_or_else(|| "default".into());
        let name = pod.metadata.name.clone().unwrap_or_default();
        let token = self
            .objects
            .token(&namespace, &sa, audience.into_iter().filter(|a| !a.is_empty()).collect(), expiration, &name, &uid)
            .await
            .map_err(|source| Error::Object { volume: volume.to_string(), source })?;
        // Renew at 80% of the token's life, as upstream does.
        let life = token.expires.duration_since(now);
        let refresh_at = now.checked_add(life.checked_mul(4).map(|d| d / 5).unwrap_or(life)).unwrap_or(token.expires);
        self.tokens.lock().unwrap_or_else(|e| e.into_inner()).insert(key, (token.clone(), refresh_at));
        Ok((token, refresh_at))
    }

    /// Removes everything the pod's volumes left on disk (hostPath contents stay).
    pub async fn teardown(&self, uid: &str) -> Result<()> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner()).retain(|(u, _, _), _| u != uid);
        let dir = self.pod_dir(uid);
        // Memory-backed emptyDirs first: removing files under a mount would only empty it.
        let empty_dirs = dir.join("volumes").join("kubernetes.io~empty-dir");
        for entry in std::fs::read_dir(&empty_dirs).into_iter().flatten().flatten() {
            memory::unmount(&entry.path()).map_err(|source| Error::Io { action: "unmount", path: entry.path(), source })?;
        }
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::Io { action: "remove", path: dir, source }),
        }
    }

    /// Pod UIDs with a directory under `<root-dir>/pods` (to clean up after pods this agent never saw go).
    pub fn known_pod_dirs(&self) -> Vec<String> {
        std::fs::read_dir(self.root.join("pods"))
            .map(|entries| entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    }
}

fn prepare_host_path(volume: &str, path: &Path, type_: &str) -> Result<()> {
    let invalid = |message: String| Error::Invalid { volume: volume.to_string(), message };
    let meta = std::fs::metadata(path);
    match type_ {
        "DirectoryOrCreate" if meta.is_err() => mkdir(path, Some(0o755)),
        "FileOrCreate" if meta.is_err() => {
            if let Some(parent) = path.parent() {
                mkdir(parent, None)?;
            }
            std::fs::write(path, b"").map_err(|source| Error::Io { action: "create file", path: path.to_path_buf(), source })
        }
        "Directory" if !meta.as_ref().is_ok_and(|m| m.is_dir()) => Err(invalid(format!("hostPath type check failed: {} is not a directory", path.display()))),
        "File" if !meta.as_ref().is_ok_and(|m| m.is_file()) => Err(invalid(format!("hostPath type check failed: {} is not a file", path.display()))),
        "Socket" | "CharDevice" | "BlockDevice" if meta.is_err() => Err(invalid(format!("hostPath type check failed: {} does not exist", path.display()))),
        _ => Ok(()),
    }
}

/// The runtime mounts of `container`'s volumeMounts; `env` is the container's environment, for
/// `subPathExpr`.
pub fn mounts(container: &Container, prepared: &Prepared, env: &[(String, String)]) -> Result<Vec<Mount>> {
    let mut out = Vec::new();
    for m in container.volume_mounts.iter().flatten() {
        let base = prepared
            .paths
            .get(&m.name)
            .ok_or_else(|| Error::UnknownVolume { mount: m.name.clone(), container: container.name.clone() })?;
        let mut host_path = base.clone();
        if let Some(sub) = sub_path::resolve(m, env)? {
            host_path = base.join(sub);
            if std::fs::symlink_metadata(&host_path).is_err() {
                mkdir(&host_path, None)?;
            }
        }
        let propagation = match m.mount_propagation.as_deref() {
            Some("HostToContainer") => MountPropagation::PropagationHostToContainer,
            Some("Bidirectional") => MountPropagation::PropagationBidirectional,
            _ => MountPropagation::PropagationPrivate,
        };
        out.push(Mount {
            container_path: m.mount_path.clone(),
            host_path: host_path.display().to_string(),
            readonly: m.read_only.unwrap_or(false),
            propagation: propagation as i32,
            ..Default::default()
        });
    }
    Ok(out)
}

/// Payload files keyed by path, shared by the payload builders.
pub(crate) type Payload = BTreeMap<String, atomic::File>;

#[cfg(test)]
#[path = "volumes_tests.rs"]
mod tests;

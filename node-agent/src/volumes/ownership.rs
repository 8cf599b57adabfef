//! The pod's `fsGroup`: volume contents become group-owned by it, group-readable (and group-writable
//! where the volume is writable), with the setgid bit on directories so files created later inherit the
//! group. The same masks as upstream's kubelet; the container's processes get the group as a
//! supplementary group (see `pod::runtime_config`), so a non-root user can read a 0440 secret.
//!
//! `fsGroupChangePolicy` needs no handling of its own here: an emptyDir gets its ownership once, when it
//! is created (the only time upstream's volume manager sets it up too), and configMap, secret,
//! downwardAPI and projected volumes are rewritten whole, which upstream always re-owns regardless of the
//! policy.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;

/// Group read and write, for writable volumes.
const READ_WRITE: u32 = 0o660;
/// Group read, for the read-only payload volumes.
const READ_ONLY: u32 = 0o440;
/// Owner and group may enter directories.
const EXEC: u32 = 0o110;
const SETGID: u32 = 0o2000;

/// Failures re-owning volume contents.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io { action, path: path.to_path_buf(), source }
}

/// `pod.spec.securityContext.fsGroup` as a group id; values no group id can have are ignored (the API
/// server rejects them anyway).
pub fn fs_group(pod: &Pod) -> Option<u32> {
    let gid = pod.spec.as_ref()?.security_context.as_ref()?.fs_group?;
    u32::try_from(gid).ok()
}

/// The mode an entry with `mode` gets: the group bits added, never any bit taken away.
pub fn wanted_mode(mode: u32, is_dir: bool, read_only: bool) -> u32 {
    let mut mask = if read_only { READ_ONLY } else { READ_WRITE };
    if is_dir {
        mask |= EXEC | SETGID;
    }
    mode | mask
}

/// Whether the volume root `dir` already is owned as `gid` wants: right group, setgid, and at least the
/// group and exec bits. Upstream's test for skipping the recursive walk.
pub fn root_matches(dir: &Path, gid: u32, read_only: bool) -> bool {
    let Ok(meta) = std::fs::metadata(dir) else { return false };
    let mode = meta.permissions().mode() & 0o7777;
    meta.is_dir() && meta.gid() == gid && wanted_mode(mode, true, read_only) == mode
}

/// Re-owns `path` alone (not what is under it). Symlinks get the group but keep their mode: a chmod
/// would follow them and change the target's mode.
pub fn own(path: &Path, gid: u32, read_only: bool) -> Result<(), Error> {
    let meta = std::fs::symlink_metadata(path).map_err(io_err("read metadata of", path))?;
    if meta.gid() != gid {
        std::os::unix::fs::lchown(path, None, Some(gid)).map_err(io_err("change the group of", path))?;
    }
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode() & 0o7777;
    let wanted = wanted_mode(mode, meta.is_dir(), read_only);
    // chown clears setgid on some filesystems, so set the mode even when it looked right before.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(wanted)).map_err(io_err("set permissions of", path))
}

/// Re-owns `dir` and everything under it, without following symlinks.
pub fn own_tree(dir: &Path, gid: u32, read_only: bool) -> Result<(), Error> {
    own(dir, gid, read_only)?;
    if !std::fs::symlink_metadata(dir).map_err(io_err("read metadata of", dir))?.is_dir() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).map_err(io_err("read directory", dir))? {
        let entry = entry.map_err(io_err("read directory", dir))?;
        own_tree(&entry.path(), gid, read_only)?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "ownership_tests.rs"]
mod tests;

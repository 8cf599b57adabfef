//! Writes a set of files into a volume directory so that readers see either the old or the new set, never
//! a mix: the files go to a fresh hidden directory, `..data` is switched to it by one rename, and each
//! visible top-level name is a symlink through `..data`. The same layout upstream uses, so tools that
//! watch `..data` for ConfigMap updates work unchanged.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// One file of a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub content: Vec<u8>,
    pub mode: u32,
}

/// Failures writing a payload.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to write volume file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to write volume file {0:?}: the path must be relative and stay inside the volume")]
    BadPath(String),
    #[error(transparent)]
    Ownership(#[from] ownership::Error),
}

use super::ownership;

const DATA: &str = "..data";
const DATA_TMP: &str = "..data_tmp";

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

/// Checks that `path` is relative, non-empty and has no `..` components.
pub fn validate_path(path: &str) -> Result<(), Error> {
    let p = Path::new(path);
    let ok = !path.is_empty() && !path.starts_with("..") && p.components().all(|c| matches!(c, Component::Normal(_)));
    if ok { Ok(()) } else { Err(Error::BadPath(path.to_string())) }
}

fn unchanged(dir: &Path, payload: &BTreeMap<String, File>, group: Option<u32>) -> bool {
    let data = dir.join(DATA);
    payload.iter().all(|(path, file)| {
        let p = data.join(path);
        let mode = group.map_or(file.mode, |_| ownership::wanted_mode(file.mode, false, true));
        std::fs::read(&p).is_ok_and(|c| c == file.content)
            && std::fs::metadata(&p).is_ok_and(|m| m.permissions().mode() & 0o7777 == mode && group.is_none_or(|g| m.gid() == g))
    }) && count_files(&data) == payload.len()
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return usize::MAX };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            Ok(_) => 1,
            Err(_) => 0,
        })
        .sum()
}

/// Replaces the contents of `dir` with `payload` (paths relative to `dir`). With a `group` (the pod's
/// fsGroup) everything is group-owned by it and group-readable, the new files before they become
/// visible. Returns whether anything changed.
pub fn write(dir: &Path, payload: &BTreeMap<String, File>, group: Option<u32>) -> Result<bool, Error> {
    for path in payload.keys() {
        validate_path(path)?;
    }
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    if let Some(gid) = group {
        ownership::own(dir, gid, true)?;
    }
    if unchanged(dir, payload, group) {
        return Ok(false);
    }
    let stamp = format!("..{}", jiff::Timestamp::now().as_nanosecond());
    let target = dir.join(&stamp);
    std::fs::create_dir(&target).map_err(io_err(&target))?;
    for (path, file) in payload {
        let p = target.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        std::fs::write(&p, &file.content).map_err(io_err(&p))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(file.mode)).map_err(io_err(&p))?;
    }
    if let Some(gid) = group {
        ownership::own_tree(&target, gid, true)?;
    }
    let old = std::fs::read_link(dir.join(DATA)).ok();
    let tmp = dir.join(DATA_TMP);
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&stamp, &tmp).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, dir.join(DATA)).map_err(io_err(dir))?;

    let tops: std::collections::BTreeSet<String> =
        payload.keys().filter_map(|p| p.split('/').next().map(str::to_string)).collect();
    for top in &tops {
        let link = dir.join(top);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new(DATA).join(top), &link).map_err(io_err(&link))?;
        }
    }
    // Names of the old payload that are gone now.
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("..") && !tops.contains(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    if let Some(old) = old.filter(|o| o.as_os_str() != stamp.as_str()) {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(entries: &[(&str, &str)]) -> BTreeMap<String, File> {
        entries.iter().map(|(p, c)| (p.to_string(), File { content: c.as_bytes().to_vec(), mode: 0o644 })).collect()
    }

    #[test]
    fn writes_swaps_and_prunes() {
        let dir = std::env::temp_dir().join(format!("rudder-atomic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(matches!(write(&dir, &payload(&[("a", "1"), ("sub/b", "2")]), None), Ok(true)));
        assert_eq!(std::fs::read_to_string(dir.join("a")).ok().as_deref(), Some("1"));
        assert_eq!(std::fs::read_to_string(dir.join("sub/b")).ok().as_deref(), Some("2"));
        assert!(matches!(write(&dir, &payload(&[("a", "1"), ("sub/b", "2")]), None), Ok(false)), "same payload is a no-op");
        assert!(matches!(write(&dir, &payload(&[("a", "3")]), None), Ok(true)));
        assert_eq!(std::fs::read_to_string(dir.join("a")).ok().as_deref(), Some("3"));
        assert!(std::fs::symlink_metadata(dir.join("sub")).is_err(), "names no longer in the payload are removed");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn fs_group_owns_the_payload_before_it_is_visible() {
        let dir = std::env::temp_dir().join(format!("rudder-atomic-group-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let secret: BTreeMap<String, File> =
            [("data-1".to_string(), File { content: b"value-1".to_vec(), mode: 0o400 }), ("sub/b".to_string(), File { content: b"2".to_vec(), mode: 0o600 })]
                .into_iter()
                .collect();
        assert!(matches!(write(&dir, &secret, Some(1001)), Ok(true)));
        let stat = |p: &str| std::fs::metadata(dir.join(p)).map(|m| (m.gid(), m.permissions().mode() & 0o7777)).ok();
        assert_eq!(stat("data-1"), Some((1001, 0o440)), "0400 plus group read, through the ..data link");
        assert_eq!(stat("sub/b"), Some((1001, 0o640)));
        assert_eq!(stat("sub"), Some((1001, 0o2755)), "directories: group enter and setgid");
        assert_eq!(stat(""), Some((1001, 0o2755)), "the volume root too");
        assert_eq!(stat(DATA), Some((1001, 0o2755)), "the timestamped directory");
        assert!(matches!(write(&dir, &secret, Some(1001)), Ok(false)), "the widened modes count as unchanged");
        assert!(matches!(write(&dir, &secret, Some(2002)), Ok(true)), "another group is a change");
        assert_eq!(stat("data-1"), Some((2002, 0o440)));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rejects_escaping_paths() {
        for bad in ["../x", "/etc/passwd", "a/../../b", "", "..data"] {
            assert!(validate_path(bad).is_err(), "{bad}");
        }
        assert!(validate_path("a/b.txt").is_ok());
    }
}

//! Memory-backed emptyDir volumes: a tmpfs mounted on the volume's directory.

use std::io;
use std::path::Path;

use rustix::mount::{MountFlags, UnmountFlags};

/// Whether `dir` is a mount point: it sits on another device than its parent.
fn is_mount_point(dir: &Path) -> io::Result<bool> {
    let parent = dir.parent().unwrap_or(dir);
    let (own, up) = (rustix::fs::stat(dir)?, rustix::fs::stat(parent)?);
    Ok(own.st_dev != up.st_dev)
}

/// Mounts a tmpfs on `dir` unless one is there already (setup runs again on every refresh).
pub fn mount(dir: &Path) -> io::Result<()> {
    if is_mount_point(dir)? {
        return Ok(());
    }
    rustix::mount::mount("tmpfs", dir, "tmpfs", MountFlags::NOSUID | MountFlags::NODEV, None)?;
    Ok(())
}

/// Unmounts `dir` if something is mounted there; a plain directory is left as it is.
pub fn unmount(dir: &Path) -> io::Result<()> {
    match is_mount_point(dir) {
        Ok(true) => Ok(rustix::mount::unmount(dir, UnmountFlags::DETACH)?),
        Ok(false) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_directories_are_not_mount_points_and_unmount_leaves_them() {
        let dir = std::env::temp_dir().join(format!("rudder-memory-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert!(!is_mount_point(&dir).unwrap_or(true));
        assert!(unmount(&dir).is_ok(), "nothing mounted: nothing to do");
        assert!(dir.exists());
        let _ = std::fs::remove_dir(&dir);
        assert!(unmount(&dir).is_ok(), "a missing directory is fine too");
    }

    /// Needs root (mount(2)); run with `cargo test -- --ignored` as root.
    #[test]
    #[ignore = "needs root"]
    fn mounts_tmpfs_once_and_unmounts() {
        let dir = std::env::temp_dir().join(format!("rudder-memory-root-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        mount(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert!(is_mount_point(&dir).unwrap_or(false));
        mount(&dir).unwrap_or_else(|e| panic!("second mount: {e}"));
        let fs = rustix::fs::statfs(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(fs.f_type, 0x0102_1994, "TMPFS_MAGIC");
        unmount(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert!(!is_mount_point(&dir).unwrap_or(true));
        let _ = std::fs::remove_dir(&dir);
    }
}

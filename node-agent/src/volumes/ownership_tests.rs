use std::os::unix::fs::{MetadataExt, PermissionsExt};

use k8s_openapi::api::core::v1::{PodSecurityContext, PodSpec};

use super::*;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("rudder-ownership-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn gid_and_mode(path: &Path) -> (u32, u32) {
    let m = std::fs::symlink_metadata(path).expect("stat");
    (m.gid(), m.permissions().mode() & 0o7777)
}

#[test]
fn modes_gain_the_group_bits() {
    struct Case {
        name: &'static str,
        mode: u32,
        is_dir: bool,
        read_only: bool,
        want: u32,
    }
    for case in [
        Case { name: "secret file 0400", mode: 0o400, is_dir: false, read_only: true, want: 0o440 },
        Case { name: "secret file 0644 keeps other read", mode: 0o644, is_dir: false, read_only: true, want: 0o644 },
        Case { name: "read-only directory", mode: 0o755, is_dir: true, read_only: true, want: 0o2755 },
        Case { name: "emptyDir file", mode: 0o600, is_dir: false, read_only: false, want: 0o660 },
        Case { name: "emptyDir directory", mode: 0o700, is_dir: true, read_only: false, want: 0o2770 },
        Case { name: "emptyDir root", mode: 0o777, is_dir: true, read_only: false, want: 0o2777 },
    ] {
        assert_eq!(wanted_mode(case.mode, case.is_dir, case.read_only), case.want, "{}", case.name);
    }
}

#[test]
fn fs_group_of_pods() {
    let pod = |fs_group: Option<i64>| Pod {
        spec: Some(PodSpec { security_context: Some(PodSecurityContext { fs_group, ..Default::default() }), ..Default::default() }),
        ..Default::default()
    };
    assert_eq!(fs_group(&pod(Some(1001))), Some(1001));
    assert_eq!(fs_group(&pod(None)), None);
    assert_eq!(fs_group(&pod(Some(-1))), None, "not a group id");
    assert_eq!(fs_group(&Pod::default()), None);
}

#[test]
fn trees_are_owned_without_following_symlinks() {
    let tmp = TempDir::new("tree");
    let root = tmp.0.join("vol");
    std::fs::create_dir_all(root.join("sub")).expect("mkdir");
    std::fs::write(root.join("sub/file"), b"x").expect("write");
    set_mode(&root.join("sub/file"), 0o600);
    set_mode(&root.join("sub"), 0o700);
    set_mode(&root, 0o777);
    // A link out of the volume: its target must keep its group and mode.
    let outside = tmp.0.join("outside");
    std::fs::write(&outside, b"y").expect("write");
    set_mode(&outside, 0o600);
    std::os::unix::fs::symlink(&outside, root.join("link")).expect("symlink");
    let outside_before = gid_and_mode(&outside);

    assert!(!root_matches(&root, 1234, false));
    own_tree(&root, 1234, false).expect("own tree");
    assert_eq!(gid_and_mode(&root), (1234, 0o2777));
    assert_eq!(gid_and_mode(&root.join("sub")), (1234, 0o2770));
    assert_eq!(gid_and_mode(&root.join("sub/file")), (1234, 0o660));
    assert_eq!(gid_and_mode(&root.join("link")).0, 1234, "the link itself is re-owned");
    assert_eq!(gid_and_mode(&outside), outside_before, "its target is not");
    assert!(root_matches(&root, 1234, false));
    assert!(!root_matches(&root, 4321, false), "another group");
}

#[test]
fn root_matches_needs_setgid_and_group_bits() {
    let tmp = TempDir::new("root");
    own(&tmp.0, 1234, true).expect("own");
    assert!(root_matches(&tmp.0, 1234, true));
    set_mode(&tmp.0, 0o755);
    assert!(!root_matches(&tmp.0, 1234, true), "setgid gone");
    set_mode(&tmp.0, 0o2705);
    assert!(!root_matches(&tmp.0, 1234, true), "group bits gone");
    assert!(!root_matches(&tmp.0.join("missing"), 1234, true), "missing root");
}

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use k8s_openapi::api::core::v1::{
    DownwardAPIVolumeFile, DownwardAPIVolumeSource, EmptyDirVolumeSource, ObjectFieldSelector, PodSecurityContext, PodSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;

/// Volumes under a fresh temp root; the API client points nowhere: these volumes need no objects.
fn volumes(name: &str) -> (Volumes, PathBuf) {
    let root = std::env::temp_dir().join(format!("rudder-volumes-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let url = "http://127.0.0.1:1".parse().unwrap_or_default();
    let client = kube::Client::try_from(kube::Config::new(url)).expect("client");
    (Volumes::new(root.clone(), Objects::new(client)), root)
}

fn pod(fs_group: Option<i64>) -> Pod {
    let downward = DownwardAPIVolumeSource {
        items: Some(vec![DownwardAPIVolumeFile {
            path: "podname".into(),
            field_ref: Some(ObjectFieldSelector { field_path: "metadata.name".into(), ..Default::default() }),
            mode: Some(0o400),
            ..Default::default()
        }]),
        ..Default::default()
    };
    Pod {
        metadata: ObjectMeta { name: Some("p".into()), namespace: Some("ns".into()), uid: Some("u1".into()), ..Default::default() },
        spec: Some(PodSpec {
            security_context: Some(PodSecurityContext { fs_group, ..Default::default() }),
            volumes: Some(vec![
                Volume { name: "scratch".into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Default::default() },
                Volume { name: "info".into(), downward_api: Some(downward), ..Default::default() },
            ]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn node() -> NodeFacts {
    NodeFacts { host_ip: "192.0.2.1".into(), pod_ips: vec!["10.0.0.9".into()], cpu_milli: 1000, memory_bytes: 1 << 30 }
}

fn gid_and_mode(path: &Path) -> (u32, u32) {
    let m = std::fs::metadata(path).expect("stat");
    (m.gid(), m.permissions().mode() & 0o7777)
}

#[tokio::test]
async fn fs_group_owns_empty_dir_and_payload_volumes() {
    let (volumes, root) = volumes("fsgroup");
    let prepared = volumes.setup(&pod(Some(3456)), &node(), Timestamp::now()).await.expect("setup");
    let scratch = &prepared.paths["scratch"];
    let info = &prepared.paths["info"];
    assert_eq!(gid_and_mode(scratch), (3456, 0o2777), "emptyDir: group-owned, setgid, writable by all");
    assert_eq!(gid_and_mode(info), (3456, 0o2755));
    assert_eq!(gid_and_mode(&info.join("podname")), (3456, 0o440), "0400 plus group read");
    assert_eq!(std::fs::read_to_string(info.join("podname")).ok().as_deref(), Some("p"));

    // What a container does to its emptyDir survives later syncs.
    let file = scratch.join("mine");
    std::fs::write(&file, b"x").expect("write");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    volumes.setup(&pod(Some(3456)), &node(), Timestamp::now()).await.expect("setup again");
    assert_eq!(gid_and_mode(&file).1, 0o600);
    assert_eq!(gid_and_mode(scratch), (3456, 0o2777));
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn without_fs_group_modes_stay_as_given() {
    let (volumes, root) = volumes("plain");
    let prepared = volumes.setup(&pod(None), &node(), Timestamp::now()).await.expect("setup");
    assert_eq!(gid_and_mode(&prepared.paths["scratch"]).1, 0o777);
    assert_eq!(gid_and_mode(&prepared.paths["info"].join("podname")).1, 0o400);
    let _ = std::fs::remove_dir_all(&root);
}

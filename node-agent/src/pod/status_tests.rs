use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};

use super::*;
use crate::runtime::{ContainerInfo, ContainerState, SandboxInfo, SandboxState};

const T0: i64 = 1_700_000_000;

fn pod() -> Pod {
    Pod {
        metadata: kube::api::ObjectMeta { name: Some("p".into()), namespace: Some("ns".into()), uid: Some("u1".into()), ..Default::default() },
        spec: Some(PodSpec {
            containers: vec![Container { name: "a".into(), image: Some("nginx".into()), ..Default::default() }],
            ..Default::default()
        }),
        status: None,
    }
}

fn sandbox() -> SandboxInfo {
    SandboxInfo {
        id: "sb0".into(),
        pod_uid: "u1".into(),
        pod_name: "p".into(),
        pod_namespace: "ns".into(),
        attempt: 0,
        state: SandboxState::Ready,
        created_at: T0 * 1_000_000_000,
        ips: vec!["10.244.1.5".into()],
    }
}

fn instance(id: &str, attempt: u32, state: ContainerState, exit_code: i32) -> ContainerInfo {
    ContainerInfo {
        id: id.into(),
        sandbox_id: "sb0".into(),
        pod_uid: "u1".into(),
        name: "a".into(),
        attempt,
        image: "nginx".into(),
        image_ref: "sha256:abc".into(),
        state,
        created_at: (T0 + i64::from(attempt)) * 1_000_000_000,
        started_at: (T0 + i64::from(attempt)) * 1_000_000_000,
        finished_at: if state == ContainerState::Exited { (T0 + 1 + i64::from(attempt)) * 1_000_000_000 } else { 0 },
        exit_code,
        reason: String::new(),
        message: String::new(),
        labels: HashMap::new(),
        annotations: HashMap::new(),
    }
}

fn build_with(pod: &Pod, sandbox: Option<&SandboxInfo>, containers: &[ContainerInfo], waiting: &BTreeMap<String, Waiting>) -> PodStatus {
    build(&Input {
        pod,
        sandbox,
        containers,
        waiting,
        finished: None,
        host_ip: "127.0.1.1",
        runtime_name: "containerd",
        now: Timestamp::from_second(T0 + 100).unwrap_or(Timestamp::UNIX_EPOCH),
    })
}

fn condition_status(s: &PodStatus, type_: &str) -> String {
    s.conditions.iter().flatten().find(|c| c.type_ == type_).map(|c| c.status.clone()).unwrap_or_default()
}

#[test]
fn running_container_makes_the_pod_ready() {
    let pod = pod();
    let sb = sandbox();
    let s = build_with(&pod, Some(&sb), &[instance("c1", 0, ContainerState::Running, 0)], &BTreeMap::new());
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(s.pod_ip.as_deref(), Some("10.244.1.5"));
    assert_eq!(condition_status(&s, "Ready"), "True");
    assert_eq!(condition_status(&s, "PodReadyToStartContainers"), "True");
    let cs = &s.container_statuses.unwrap_or_default()[0];
    assert_eq!(cs.container_id.as_deref(), Some("containerd://c1"));
    assert!(cs.ready);
}

#[test]
fn image_pull_failure_is_pending_with_the_reason() {
    let pod = pod();
    let sb = sandbox();
    let waiting = BTreeMap::from([("a".to_string(), Waiting { reason: "ErrImagePull".into(), message: "boom".into() })]);
    let s = build_with(&pod, Some(&sb), &[], &waiting);
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    assert_eq!(condition_status(&s, "Ready"), "False");
    let cs = &s.container_statuses.unwrap_or_default()[0];
    let w = cs.state.as_ref().and_then(|st| st.waiting.clone()).unwrap_or_default();
    assert_eq!(w.reason.as_deref(), Some("ErrImagePull"));
}

#[test]
fn crash_loop_shows_waiting_with_last_termination() {
    let pod = pod();
    let sb = sandbox();
    let waiting = BTreeMap::from([("a".to_string(), Waiting { reason: "CrashLoopBackOff".into(), message: "back-off 10s".into() })]);
    let list = [instance("c1", 0, ContainerState::Exited, 1), instance("c2", 1, ContainerState::Exited, 1)];
    let s = build_with(&pod, Some(&sb), &list, &waiting);
    assert_eq!(s.phase.as_deref(), Some("Running"), "a crash-looping pod stays Running like upstream");
    assert_eq!(condition_status(&s, "Ready"), "False");
    let cs = &s.container_statuses.unwrap_or_default()[0];
    assert_eq!(cs.restart_count, 1);
    let last = cs.last_state.as_ref().and_then(|l| l.terminated.clone()).unwrap_or_default();
    assert_eq!((last.exit_code, last.reason.as_deref()), (1, Some("Error")));
    assert_eq!(cs.state.as_ref().and_then(|st| st.waiting.as_ref()).and_then(|w| w.reason.as_deref()), Some("CrashLoopBackOff"));
}

#[test]
fn unchanged_conditions_keep_their_transition_time() {
    let mut pod = pod();
    let sb = sandbox();
    let running = [instance("c1", 0, ContainerState::Running, 0)];
    let first = build_with(&pod, Some(&sb), &running, &BTreeMap::new());
    pod.status = Some(first.clone());
    let second = build(&Input {
        pod: &pod,
        sandbox: Some(&sb),
        containers: &running,
        waiting: &BTreeMap::new(),
        finished: None,
        host_ip: "127.0.1.1",
        runtime_name: "containerd",
        now: Timestamp::from_second(T0 + 500).unwrap_or(Timestamp::UNIX_EPOCH),
    });
    assert_eq!(first, second, "a second sync with nothing new builds the same status (nothing to write)");
}

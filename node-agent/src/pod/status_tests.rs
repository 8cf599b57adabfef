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
        probes: &probe::Results::new(),
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
        probes: &probe::Results::new(),
        host_ip: "127.0.1.1",
        runtime_name: "containerd",
        now: Timestamp::from_second(T0 + 500).unwrap_or(Timestamp::UNIX_EPOCH),
    });
    assert_eq!(first, second, "a second sync with nothing new builds the same status (nothing to write)");
}

#[test]
fn probe_results_drive_ready_and_started() {
    use k8s_openapi::api::core::v1::{ExecAction, Probe};
    use probe::{InstanceResults, Verdict};
    struct Case {
        name: &'static str,
        startup: bool,
        readiness: bool,
        results: Option<InstanceResults>,
        state: ContainerState,
        want_ready: bool,
        want_started: bool,
    }
    let r = |startup, readiness| Some(InstanceResults { startup, liveness: None, readiness });
    let ok = Some(Verdict::Success);
    let bad = Some(Verdict::Failure);
    for case in [
        Case { name: "no probes", startup: false, readiness: false, results: None, state: ContainerState::Running, want_ready: true, want_started: true },
        Case { name: "readiness pending", startup: false, readiness: true, results: None, state: ContainerState::Running, want_ready: false, want_started: true },
        Case { name: "readiness passed", startup: false, readiness: true, results: r(None, ok), state: ContainerState::Running, want_ready: true, want_started: true },
        Case { name: "readiness failed", startup: false, readiness: true, results: r(None, bad), state: ContainerState::Running, want_ready: false, want_started: true },
        Case { name: "startup pending", startup: true, readiness: false, results: None, state: ContainerState::Running, want_ready: false, want_started: false },
        Case { name: "startup passed", startup: true, readiness: false, results: r(ok, None), state: ContainerState::Running, want_ready: true, want_started: true },
        Case { name: "startup passed, readiness pending", startup: true, readiness: true, results: r(ok, None), state: ContainerState::Running, want_ready: false, want_started: true },
        Case { name: "exited with stale success", startup: true, readiness: true, results: r(ok, ok), state: ContainerState::Exited, want_ready: false, want_started: false },
    ] {
        let probe = Probe { exec: Some(ExecAction { command: Some(vec!["true".into()]) }), ..Default::default() };
        let mut pod = pod();
        if let Some(spec) = pod.spec.as_mut() {
            spec.containers[0].startup_probe = case.startup.then(|| probe.clone());
            spec.containers[0].readiness_probe = case.readiness.then(|| probe.clone());
        }
        let results: probe::Results = case.results.map(|r| ("c1".to_string(), r)).into_iter().collect();
        let sb = sandbox();
        let s = build(&Input {
            pod: &pod,
            sandbox: Some(&sb),
            containers: &[instance("c1", 0, case.state, 0)],
            waiting: &BTreeMap::new(),
            finished: None,
            probes: &results,
            host_ip: "127.0.1.1",
            runtime_name: "containerd",
            now: Timestamp::from_second(T0 + 100).unwrap_or(Timestamp::UNIX_EPOCH),
        });
        let cs = s.container_statuses.clone().unwrap_or_default();
        assert_eq!((cs[0].ready, cs[0].started), (case.want_ready, Some(case.want_started)), "{}", case.name);
        let want = if case.want_ready { "True" } else { "False" };
        assert_eq!(condition_status(&s, "Ready"), want, "{}: pod Ready", case.name);
        assert_eq!(condition_status(&s, "ContainersReady"), want, "{}: ContainersReady", case.name);
    }
}

#[test]
fn init_containers_ready_when_done_and_app_containers_wait_for_them() {
    let mut p = pod();
    if let Some(spec) = p.spec.as_mut() {
        spec.init_containers = Some(vec![
            Container { name: "init1".into(), image: Some("busybox".into()), ..Default::default() },
            Container { name: "init2".into(), image: Some("busybox".into()), ..Default::default() },
        ]);
    }
    let mut init1 = instance("c1", 0, ContainerState::Exited, 0);
    init1.name = "init1".into();
    let mut init2 = instance("c2", 0, ContainerState::Running, 0);
    init2.name = "init2".into();

    let s = build_with(&p, Some(&sandbox()), &[init1.clone(), init2.clone()], &BTreeMap::new());
    let init: Vec<(String, bool)> = s.init_container_statuses.iter().flatten().map(|c| (c.name.clone(), c.ready)).collect();
    assert_eq!(init, [("init1".to_string(), true), ("init2".to_string(), false)], "a completed init container is ready");
    let app = s.container_statuses.iter().flatten().next().and_then(|c| c.state.clone()).and_then(|st| st.waiting).and_then(|w| w.reason);
    assert_eq!(app.as_deref(), Some("PodInitializing"));
    assert_eq!(condition_status(&s, "Initialized"), "False");

    // An init container behind one still running (or failing and restarting) waits with PodInitializing.
    let s = build_with(&p, Some(&sandbox()), &[], &BTreeMap::new());
    let waiting: Vec<Option<String>> =
        s.init_container_statuses.iter().flatten().map(|c| c.state.clone().and_then(|st| st.waiting).and_then(|w| w.reason)).collect();
    assert_eq!(waiting, [Some("PodInitializing".to_string()), Some("PodInitializing".to_string())], "nothing created yet");

    init2.state = ContainerState::Exited;
    let s = build_with(&p, Some(&sandbox()), &[init1, init2], &BTreeMap::new());
    let app = s.container_statuses.iter().flatten().next().and_then(|c| c.state.clone()).and_then(|st| st.waiting).and_then(|w| w.reason);
    // Upstream's default waiting reason in a pod with init containers, until the runtime has the container.
    assert_eq!(app.as_deref(), Some("PodInitializing"), "initialized, the app container not created yet");
    assert_eq!(condition_status(&s, "Initialized"), "True");
}

#[test]
fn initialized_condition_like_upstream() {
    use k8s_openapi::api::core::v1::{ContainerState as ApiState, ContainerStateRunning, ContainerStateWaiting};
    let app = |state: ApiState| ContainerStatus { name: "run1".into(), state: Some(state), ..Default::default() };
    let waiting = app(ApiState { waiting: Some(ContainerStateWaiting { reason: Some("PodInitializing".into()), ..Default::default() }), ..Default::default() });
    let running = app(ApiState { running: Some(ContainerStateRunning::default()), ..Default::default() });
    let cases = [
        ("failed during init", "Failed", vec!["init2"], waiting.clone(), ("False", Some("ContainersNotInitialized"), Some("containers with incomplete status: [init2]"))),
        ("still initializing", "Pending", vec!["init1", "init2"], waiting.clone(), ("False", Some("ContainersNotInitialized"), Some("containers with incomplete status: [init1 init2]"))),
        ("init done", "Running", vec![], running.clone(), ("True", None, None)),
        ("app started, an init container restarting", "Running", vec!["init1"], running, ("True", None, None)),
        ("succeeded", "Succeeded", vec![], waiting, ("True", Some("PodCompleted"), None)),
    ];
    for (name, phase, incomplete, status, (want_status, want_reason, want_message)) in cases {
        let c = initialized_condition(phase, &incomplete, &[status], None);
        assert_eq!((c.status.as_str(), c.reason.as_deref(), c.message.as_deref()), (want_status, want_reason, want_message), "{name}");
    }
}

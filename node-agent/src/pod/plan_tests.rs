use std::collections::HashMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};

use super::*;
use crate::runtime::{ContainerInfo, ContainerState, SandboxInfo, SandboxState};

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn nanos(secs: i64) -> i64 {
    (1_700_000_000 + secs) * 1_000_000_000
}

fn pod(policy: &str, init: &[&str], app: &[&str]) -> Pod {
    let container = |n: &&str| Container { name: n.to_string(), image: Some(format!("img-{n}")), ..Default::default() };
    Pod {
        metadata: kube::api::ObjectMeta { name: Some("p".into()), namespace: Some("ns".into()), uid: Some("u1".into()), ..Default::default() },
        spec: Some(PodSpec {
            restart_policy: Some(policy.into()),
            init_containers: (!init.is_empty()).then(|| init.iter().map(container).collect()),
            containers: app.iter().map(container).collect(),
            ..Default::default()
        }),
        status: None,
    }
}

fn sandbox(id: &str, attempt: u32, ready: bool) -> SandboxInfo {
    SandboxInfo {
        id: id.into(),
        pod_uid: "u1".into(),
        pod_name: "p".into(),
        pod_namespace: "ns".into(),
        attempt,
        state: if ready { SandboxState::Ready } else { SandboxState::NotReady },
        created_at: nanos(0) + i64::from(attempt),
        ips: vec![],
    }
}

fn container(id: &str, name: &str, attempt: u32, state: ContainerState, exit_code: i32, finished: i64) -> ContainerInfo {
    ContainerInfo {
        id: id.into(),
        sandbox_id: "sb0".into(),
        pod_uid: "u1".into(),
        name: name.into(),
        attempt,
        image: format!("img-{name}"),
        image_ref: String::new(),
        state,
        created_at: nanos(finished) - 5_000_000_000 + i64::from(attempt),
        started_at: nanos(finished) - 4_000_000_000,
        finished_at: if state == ContainerState::Exited { nanos(finished) } else { 0 },
        exit_code,
        reason: String::new(),
        message: String::new(),
        labels: HashMap::new(),
        annotations: HashMap::new(),
    }
}

fn run(pod: &Pod, sandboxes: &[SandboxInfo], containers: &[ContainerInfo], crash: &Backoff, pull: &Backoff, now: i64) -> Plan {
    plan(&Input { pod, sandboxes, containers, crash_backoff: crash, pull_backoff: pull, now: at(now) })
}

fn started(p: &Plan) -> Vec<(String, u32)> {
    p.start.iter().map(|s| (s.name.clone(), s.attempt)).collect()
}

#[test]
fn fresh_pod_creates_sandbox_then_all_app_containers() {
    let p = run(&pod("Always", &[], &["a", "b"]), &[], &[], &Backoff::default(), &Backoff::default(), 0);
    assert_eq!(p.sandbox, SandboxAction::Create { attempt: 0 });
    assert_eq!(started(&p), vec![("a".into(), 0), ("b".into(), 0)]);
    assert_eq!(p.finished, None);
}

#[test]
fn init_containers_run_first_and_one_at_a_time() {
    let pod = pod("Always", &["i1", "i2"], &["a"]);
    let p = run(&pod, &[], &[], &Backoff::default(), &Backoff::default(), 0);
    assert_eq!(started(&p), vec![("i1".into(), 0)]);

    let sb = [sandbox("sb0", 0, true)];
    let running = [container("c1", "i1", 0, ContainerState::Running, 0, 0)];
    let p = run(&pod, &sb, &running, &Backoff::default(), &Backoff::default(), 1);
    assert!(p.start.is_empty(), "waits for the running init container");

    let done = [container("c1", "i1", 0, ContainerState::Exited, 0, 1)];
    let p = run(&pod, &sb, &done, &Backoff::default(), &Backoff::default(), 2);
    assert_eq!(started(&p), vec![("i2".into(), 0)]);
}

#[test]
fn failing_pull_waits_in_image_pull_backoff() {
    let mut pull = Backoff::default();
    pull.next("img-a", at(0));
    let pod = pod("Always", &[], &["a"]);
    let sb = [sandbox("sb0", 0, true)];
    let p = run(&pod, &sb, &[], &Backoff::default(), &pull, 5);
    assert!(p.start.is_empty());
    let waiting = p.waiting.get("a").cloned();
    assert_eq!(waiting.map(|w| (w.reason, w.message)), Some(("ImagePullBackOff".into(), "Back-off pulling image \"img-a\"".into())));
    assert_eq!(p.requeue_at, Some(at(10)));

    let p = run(&pod, &sb, &[], &Backoff::default(), &pull, 11);
    assert_eq!(started(&p), vec![("a".into(), 0)], "retries once the back-off ends");
}

#[test]
fn crashing_container_backs_off_longer_each_time() {
    let pod = pod("Always", &[], &["a"]);
    let sb = [sandbox("sb0", 0, true)];
    let mut crash = Backoff::default();

    // First crash: restarted at once.
    let exited = [container("c1", "a", 0, ContainerState::Exited, 1, 0)];
    let p = run(&pod, &sb, &exited, &crash, &Backoff::default(), 1);
    assert_eq!(started(&p), vec![("a".into(), 1)]);
    assert_eq!(p.start[0].restart_after, Some(at(0)));
    crash.next("a", at(0));

    // Second crash right after: CrashLoopBackOff for 10s.
    let exited = [container("c2", "a", 1, ContainerState::Exited, 1, 2)];
    let p = run(&pod, &sb, &exited, &crash, &Backoff::default(), 3);
    assert!(p.start.is_empty());
    let w = p.waiting.get("a").cloned().unwrap_or(Waiting { reason: String::new(), message: String::new() });
    assert_eq!(w.reason, "CrashLoopBackOff");
    assert_eq!(w.message, "back-off 10s restarting failed container=a pod=p_ns(u1)");
    assert_eq!(p.requeue_at, Some(at(12)));

    // After the back-off, restarted, and the next back-off doubles.
    let p = run(&pod, &sb, &exited, &crash, &Backoff::default(), 12);
    assert_eq!(started(&p), vec![("a".into(), 2)]);
    crash.next("a", at(2));
    let exited = [container("c3", "a", 2, ContainerState::Exited, 1, 13)];
    let p = run(&pod, &sb, &exited, &crash, &Backoff::default(), 14);
    assert_eq!(p.waiting.get("a").map(|w| w.message.starts_with("back-off 20s")), Some(true));
}

#[test]
fn restart_policy_decides_completion() {
    struct Case {
        name: &'static str,
        policy: &'static str,
        exit_code: i32,
        finished: Option<bool>,
        restarts: bool,
    }
    let sb = [sandbox("sb0", 0, true)];
    for case in [
        Case { name: "never, failed", policy: "Never", exit_code: 1, finished: Some(false), restarts: false },
        Case { name: "never, succeeded", policy: "Never", exit_code: 0, finished: Some(true), restarts: false },
        Case { name: "on-failure, succeeded", policy: "OnFailure", exit_code: 0, finished: Some(true), restarts: false },
        Case { name: "on-failure, failed", policy: "OnFailure", exit_code: 2, finished: None, restarts: true },
        Case { name: "always, succeeded", policy: "Always", exit_code: 0, finished: None, restarts: true },
    ] {
        let exited = [container("c1", "a", 0, ContainerState::Exited, case.exit_code, 0)];
        let p = run(&pod(case.policy, &[], &["a"]), &sb, &exited, &Backoff::default(), &Backoff::default(), 1);
        assert_eq!(p.finished, case.finished, "{}", case.name);
        assert_eq!(!p.start.is_empty(), case.restarts, "{}", case.name);
    }
}

#[test]
fn lost_sandbox_is_recreated_and_old_containers_killed() {
    let pod = pod("Always", &[], &["a"]);
    let sb = [sandbox("sb0", 0, false)];
    let running = [container("c1", "a", 0, ContainerState::Running, 0, 0)];
    let p = run(&pod, &sb, &running, &Backoff::default(), &Backoff::default(), 1);
    assert_eq!(p.sandbox, SandboxAction::Create { attempt: 1 });
    assert_eq!(p.kill, vec!["c1".to_string()]);
    assert_eq!(started(&p), vec![("a".into(), 1)]);
}

#[test]
fn only_two_instances_of_each_container_are_kept() {
    let pod = pod("Always", &[], &["a"]);
    let sb = [sandbox("sb0", 0, true)];
    let list = [
        container("c1", "a", 0, ContainerState::Exited, 1, 0),
        container("c2", "a", 1, ContainerState::Exited, 1, 10),
        container("c3", "a", 2, ContainerState::Running, 0, 20),
    ];
    let p = run(&pod, &sb, &list, &Backoff::default(), &Backoff::default(), 30);
    assert_eq!(p.remove_containers, vec!["c1".to_string()]);
    assert!(p.start.is_empty());
}

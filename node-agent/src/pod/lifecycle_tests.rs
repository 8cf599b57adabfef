use std::collections::HashSet;
use std::path::Path;

use jiff::Timestamp;
use k8s_cri::v1::DnsConfig;
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};

use super::*;
use crate::pod::plan::{self, SandboxAction};
use crate::pod::runtime_config::{self, ContainerParams};
use crate::runtime::simulated::SimulatedRuntime;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn pod(uid: &str, image: &str) -> Pod {
    Pod {
        metadata: kube::api::ObjectMeta { name: Some(format!("p-{uid}")), namespace: Some("ns".into()), uid: Some(uid.into()), ..Default::default() },
        spec: Some(PodSpec {
            containers: vec![Container { name: "app".into(), image: Some(image.into()), ..Default::default() }],
            ..Default::default()
        }),
        status: None,
    }
}

/// One sync as the worker does it, without the API: plan, then create what the plan says.
async fn step(rt: &SimulatedRuntime, pod: &Pod, crash: &mut Backoff, pull: &mut Backoff, now: Timestamp) -> plan::Plan {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let observed = observe(rt, &uid).await.unwrap_or_default();
    let p = plan::plan(&plan::Input { pod, sandboxes: &observed.sandboxes, containers: &observed.containers, crash_backoff: crash, pull_backoff: pull, now });
    let mut sandbox_id = match &p.sandbox {
        SandboxAction::Keep(id) => Some(id.clone()),
        _ => None,
    };
    if let SandboxAction::Create { attempt } = p.sandbox {
        let config = runtime_config::sandbox_config(pod, attempt, Path::new("/tmp"), DnsConfig::default());
        sandbox_id = rt.run_sandbox(&config).await.ok();
    }
    let Some(sandbox_id) = sandbox_id else { return p };
    let sandbox = runtime_config::sandbox_config(pod, 0, Path::new("/tmp"), DnsConfig::default());
    let spec = pod.spec.clone().unwrap_or_default();
    for start in &p.start {
        let Some(c) = spec.containers.iter().find(|c| c.name == start.name) else { continue };
        let image = c.image.clone().unwrap_or_default();
        if ensure_image(rt, &image, "IfNotPresent", &sandbox, pull, now, || {}).await.is_err() {
            continue;
        }
        if let Some(finished) = start.restart_after {
            crash.next(&start.name, finished);
        }
        let config = runtime_config::container_config(pod, ContainerParams { container: c, init: false, attempt: start.attempt, env: vec![], mounts: vec![], node_memory_bytes: 0 });
        if let Ok(id) = rt.create_container(&sandbox_id, &config, &sandbox).await {
            let _ = rt.start_container(&id).await;
        }
    }
    p
}

#[tokio::test]
async fn failed_pull_is_err_image_pull_then_image_pull_backoff() {
    let rt = SimulatedRuntime::new();
    rt.fail_pulls("bad:1", "not found");
    let sandbox = runtime_config::sandbox_config(&pod("u1", "bad:1"), 0, Path::new("/tmp"), DnsConfig::default());
    let mut pull = Backoff::default();
    let err = ensure_image(&rt, "bad:1", "IfNotPresent", &sandbox, &mut pull, at(0), || {}).await;
    assert_eq!(err, Err(Waiting { reason: "ErrImagePull".into(), message: "Failed to pull image \"bad:1\": not found".into() }));

    let (mut crash, pod) = (Backoff::default(), pod("u1", "bad:1"));
    let p = step(&rt, &pod, &mut crash, &mut pull, at(1)).await;
    assert_eq!(p.waiting.get("app").map(|w| w.reason.as_str()), Some("ImagePullBackOff"));
    assert_eq!(rt.calls().iter().filter(|c| c.starts_with("pull_image")).count(), 1, "no pull during the back-off");

    rt.allow_pulls("bad:1");
    step(&rt, &pod, &mut crash, &mut pull, at(11)).await;
    let containers = rt.list_containers(Some("u1")).await.unwrap_or_default();
    assert_eq!(containers.len(), 1, "pulled and started once the back-off ended");
    assert_eq!(containers[0].state, ContainerState::Running);
}

#[tokio::test]
async fn crashing_container_enters_crash_loop_with_growing_backoff() {
    let rt = SimulatedRuntime::new();
    rt.exit_on_start("app", 1);
    let pod = pod("u2", "img");
    let (mut crash, mut pull) = (Backoff::default(), Backoff::default());
    step(&rt, &pod, &mut crash, &mut pull, at(0)).await; // first start, exits
    let p = step(&rt, &pod, &mut crash, &mut pull, at(1)).await; // restarted at once (attempt 1)
    assert_eq!(p.start.first().map(|s| s.attempt), Some(1));
    let p = step(&rt, &pod, &mut crash, &mut pull, at(2)).await;
    assert_eq!(p.waiting.get("app").map(|w| w.reason.as_str()), Some("CrashLoopBackOff"));
    assert_eq!(crash.delay("app").map(|d| d.as_secs()), Some(10));
    // Containers exit "now" in the simulation, so step far enough ahead for each back-off to end.
    let now = Timestamp::now();
    let p = step(&rt, &pod, &mut crash, &mut pull, now.checked_add(jiff::SignedDuration::from_secs(11)).unwrap_or(now)).await;
    assert_eq!(p.start.first().map(|s| s.attempt), Some(2));
    assert_eq!(crash.delay("app").map(|d| d.as_secs()), Some(20), "the back-off doubles");
}

#[tokio::test]
async fn kill_stops_containers_before_the_sandbox_and_removes_last() {
    let rt = SimulatedRuntime::new();
    let pod = pod("u3", "img");
    step(&rt, &pod, &mut Backoff::default(), &mut Backoff::default(), at(0)).await;
    let observed = observe(&rt, "u3").await.unwrap_or_default();
    let before = rt.calls().len();
    assert!(kill_pod(&rt, &observed, 30, true).await.is_ok());
    let calls: Vec<String> = rt.calls()[before..].iter().map(|c| c.split(' ').next().unwrap_or_default().to_string()).collect();
    assert_eq!(calls, vec!["stop_container", "stop_sandbox", "remove_container", "remove_sandbox"]);
    assert!(rt.calls()[before].ends_with(" 30"), "the grace period is the stop timeout");
    assert!(observe(&rt, "u3").await.unwrap_or_default().is_empty());
}

#[tokio::test]
async fn restarted_agent_adopts_what_runs_and_finds_orphans() {
    let rt = SimulatedRuntime::new();
    let gone = pod("gone", "img");
    let pod = pod("u4", "img");
    step(&rt, &pod, &mut Backoff::default(), &mut Backoff::default(), at(0)).await;
    step(&rt, &gone, &mut Backoff::default(), &mut Backoff::default(), at(0)).await;
    let creates = rt.calls().iter().filter(|c| c.starts_with("create_container")).count();

    // A new agent (fresh back-off state) syncing the same pod creates nothing new.
    let p = step(&rt, &pod, &mut Backoff::default(), &mut Backoff::default(), at(5)).await;
    assert!(matches!(p.sandbox, SandboxAction::Keep(_)));
    assert!(p.start.is_empty());
    assert_eq!(rt.calls().iter().filter(|c| c.starts_with("create_container")).count(), creates);

    let sandboxes = rt.list_sandboxes(None).await.unwrap_or_default();
    let containers = rt.list_containers(None).await.unwrap_or_default();
    let known: HashSet<String> = ["u4".to_string()].into();
    assert_eq!(orphans(&sandboxes, &containers, &known), vec!["gone".to_string()]);
}

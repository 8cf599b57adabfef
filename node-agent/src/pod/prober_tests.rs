use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, ExecAction, PodSpec, Probe};

use super::*;
use crate::pod::probe::{InstanceResults, Verdict};
use crate::runtime::simulated::SimulatedRuntime;
use crate::runtime::{ContainerConfig, ExecOutput, PodSandboxConfig};

fn exec_probe(failure_threshold: i32) -> Probe {
    Probe {
        exec: Some(ExecAction { command: Some(vec!["check".into()]) }),
        period_seconds: Some(1),
        failure_threshold: Some(failure_threshold),
        ..Default::default()
    }
}

pub(super) fn pod_with(container: Container) -> Pod {
    Pod {
        metadata: kube::api::ObjectMeta { name: Some("p".into()), namespace: Some("ns".into()), uid: Some("u1".into()), ..Default::default() },
        spec: Some(PodSpec { containers: vec![container], ..Default::default() }),
        status: None,
    }
}

/// A sandbox for pod `u1` with a running container `app`; returns the container id.
pub(super) async fn running_app(rt: &SimulatedRuntime) -> String {
    let sandbox = PodSandboxConfig {
        metadata: Some(k8s_cri::v1::PodSandboxMetadata { name: "p".into(), uid: "u1".into(), namespace: "ns".into(), attempt: 0 }),
        ..Default::default()
    };
    let sb = rt.run_sandbox(&sandbox).await.unwrap_or_default();
    let config = ContainerConfig { metadata: Some(k8s_cri::v1::ContainerMetadata { name: "app".into(), attempt: 0 }), ..Default::default() };
    let id = rt.create_container(&sb, &config, &sandbox).await.unwrap_or_default();
    let _ = rt.start_container(&id).await;
    id
}

fn prober(rt: &Arc<SimulatedRuntime>) -> Prober<SimulatedRuntime> {
    Prober::new(rt.clone(), PodEvents::disabled(), Metrics::unregistered())
}

/// Waits (at most 5 s) until the reported results of `id` satisfy `want`.
async fn until(p: &Prober<SimulatedRuntime>, id: &str, want: impl Fn(&InstanceResults) -> bool) -> InstanceResults {
    let changed = p.changed();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let now = p.results().get(id).copied().unwrap_or_default();
        if want(&now) {
            return now;
        }
        if tokio::time::timeout_at(deadline, changed.notified()).await.is_err() {
            panic!("probe results never became as wanted; last {now:?}");
        }
    }
}

fn runs(p: &Prober<SimulatedRuntime>, kind: &str) -> u64 {
    ["successful", "failed", "unknown"]
        .iter()
        .map(|r| p.metrics.probe_results.get_or_create(&vec![("probe_type".into(), kind.into()), ("result".into(), (*r).into())]).get())
        .sum()
}

#[tokio::test]
async fn readiness_follows_the_exec_probe() {
    let rt = Arc::new(SimulatedRuntime::new());
    let id = running_app(&rt).await;
    let pod = pod_with(Container { name: "app".into(), readiness_probe: Some(exec_probe(1)), ..Default::default() });
    let mut p = prober(&rt);
    p.sync(&pod, &rt.list_containers(Some("u1")).await.unwrap_or_default(), "10.88.0.1");
    assert_eq!(p.tasks.len(), 1, "one task for the one probe");

    until(&p, &id, |r| r.readiness == Some(Verdict::Success)).await;
    rt.exec_returns("app", ExecOutput { exit_code: 1, stdout: b"down".to_vec(), stderr: vec![] });
    until(&p, &id, |r| r.readiness == Some(Verdict::Failure)).await;
}

#[tokio::test]
async fn startup_probe_gates_readiness_and_liveness() {
    let rt = Arc::new(SimulatedRuntime::new());
    let id = running_app(&rt).await;
    rt.exec_returns("app", ExecOutput { exit_code: 1, stdout: vec![], stderr: vec![] });
    let pod = pod_with(Container {
        name: "app".into(),
        startup_probe: Some(exec_probe(30)),
        liveness_probe: Some(exec_probe(1)),
        readiness_probe: Some(exec_probe(1)),
        ..Default::default()
    });
    let mut p = prober(&rt);
    p.sync(&pod, &rt.list_containers(Some("u1")).await.unwrap_or_default(), "10.88.0.1");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(runs(&p, "startup") >= 1, "the startup probe runs");
    assert_eq!((runs(&p, "liveness"), runs(&p, "readiness")), (0, 0), "nothing else runs before startup succeeds");
    assert_eq!(p.results().get(&id).copied().unwrap_or_default(), InstanceResults::default(), "no result yet");

    rt.exec_returns("app", ExecOutput { exit_code: 0, stdout: vec![], stderr: vec![] });
    let r = until(&p, &id, |r| r.startup == Some(Verdict::Success) && r.readiness == Some(Verdict::Success)).await;
    assert_eq!(r.liveness, None, "liveness reports only on a change from its initial success");
    assert!(runs(&p, "liveness") >= 1, "liveness runs once started");
}

#[tokio::test]
async fn liveness_failure_reaches_the_threshold_then_holds() {
    let rt = Arc::new(SimulatedRuntime::new());
    let id = running_app(&rt).await;
    rt.exec_returns("app", ExecOutput { exit_code: 1, stdout: vec![], stderr: vec![] });
    let pod = pod_with(Container { name: "app".into(), liveness_probe: Some(exec_probe(2)), ..Default::default() });
    let mut p = prober(&rt);
    p.sync(&pod, &rt.list_containers(Some("u1")).await.unwrap_or_default(), "10.88.0.1");
    until(&p, &id, |r| r.liveness == Some(Verdict::Failure)).await;
    assert_eq!(runs(&p, "liveness"), 2, "failureThreshold 2: dead after two failures");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(runs(&p, "liveness"), 2, "no probing while waiting for the kill");
}

#[tokio::test]
async fn stopped_instances_lose_their_probes_and_results() {
    let rt = Arc::new(SimulatedRuntime::new());
    let id = running_app(&rt).await;
    let pod = pod_with(Container { name: "app".into(), readiness_probe: Some(exec_probe(1)), ..Default::default() });
    let mut p = prober(&rt);
    p.sync(&pod, &rt.list_containers(Some("u1")).await.unwrap_or_default(), "10.88.0.1");
    until(&p, &id, |r| r.readiness == Some(Verdict::Success)).await;
    let token = p.tasks.values().next().cloned().unwrap_or_default();

    rt.exit_container(&id, 1);
    p.sync(&pod, &rt.list_containers(Some("u1")).await.unwrap_or_default(), "10.88.0.1");
    assert!(token.is_cancelled(), "the exited instance's task is cancelled");
    assert!(p.tasks.is_empty() && p.results().is_empty(), "nothing left for the exited instance");

    p.sync(&pod, &rt.list_containers(Some("u1")).await.unwrap_or_default(), "10.88.0.1");
    assert!(p.tasks.is_empty(), "an exited instance is not probed again");
}

#[tokio::test]
async fn containers_without_probes_get_no_tasks() {
    let rt = Arc::new(SimulatedRuntime::new());
    running_app(&rt).await;
    let mut p = prober(&rt);
    p.sync(&pod_with(Container { name: "app".into(), ..Default::default() }), &rt.list_containers(Some("u1")).await.unwrap_or_default(), "h");
    assert!(p.tasks.is_empty() && p.results().is_empty());
}

#[test]
fn kill_grace_prefers_the_probe_then_the_pod() {
    struct Case {
        name: &'static str,
        probe_grace: Option<i64>,
        pod_grace: Option<i64>,
        want: i64,
    }
    for case in [
        Case { name: "defaults to 30", probe_grace: None, pod_grace: None, want: 30 },
        Case { name: "the pod's", probe_grace: None, pod_grace: Some(45), want: 45 },
        Case { name: "the probe's wins", probe_grace: Some(5), pod_grace: Some(45), want: 5 },
        Case { name: "at least 2 s", probe_grace: Some(0), pod_grace: None, want: 2 },
    ] {
        let container = Container {
            name: "app".into(),
            liveness_probe: Some(Probe { termination_grace_period_seconds: case.probe_grace, ..exec_probe(1) }),
            ..Default::default()
        };
        let mut pod = pod_with(container.clone());
        if let Some(spec) = pod.spec.as_mut() {
            spec.termination_grace_period_seconds = case.pod_grace;
        }
        assert_eq!(kill_grace_seconds(&pod, &container, Kind::Liveness), case.want, "{}", case.name);
    }
}

#[tokio::test]
async fn startup_success_triggers_readiness_at_once() {
    let rt = Arc::new(SimulatedRuntime::new());
    let id = running_app(&rt).await;
    let pod = pod_with(Container {
        name: "app".into(),
        startup_probe: Some(exec_probe(30)),
        // A long period: without the trigger readiness would wait 30 s after its first (gated) tick.
        readiness_probe: Some(Probe { period_seconds: Some(30), ..exec_probe(1) }),
        ..Default::default()
    });
    let mut p = prober(&rt);
    p.sync(&pod, &rt.list_containers(Some("u1")).await.unwrap_or_default(), "10.88.0.1");
    until(&p, &id, |r| r.startup == Some(Verdict::Success) && r.readiness == Some(Verdict::Success)).await;
}

#[tokio::test]
async fn an_adopted_ready_instance_stays_ready_until_its_probe_fails() {
    use k8s_openapi::api::core::v1::{ContainerState as ApiState, ContainerStateRunning, ContainerStatus, PodStatus};
    let rt = Arc::new(SimulatedRuntime::new());
    let id = running_app(&rt).await;
    rt.exec_returns("app", ExecOutput { exit_code: 1, stdout: vec![], stderr: vec![] });
    let mut pod = pod_with(Container { name: "app".into(), readiness_probe: Some(exec_probe(1)), ..Default::default() });
    pod.status = Some(PodStatus {
        container_statuses: Some(vec![ContainerStatus {
            name: "app".into(),
            container_id: Some(format!("containerd://{id}")),
            started: Some(true),
            ready: true,
            state: Some(ApiState { running: Some(ContainerStateRunning::default()), ..Default::default() }),
            ..Default::default()
        }]),
        ..Default::default()
    });
    let mut p = prober(&rt);
    p.sync(&pod, &rt.list_containers(Some("u1")).await.unwrap_or_default(), "10.88.0.1");
    assert_eq!(p.results().get(&id).and_then(|r| r.readiness), Some(Verdict::Success), "adopted as ready");
    until(&p, &id, |r| r.readiness == Some(Verdict::Failure)).await;
}

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, ExecAction, Probe};
use kube::runtime::reflector;

use super::*;
use crate::events::PodEvents;
use crate::metrics::Metrics;
use crate::objects::Objects;
use crate::pod::context::{Context, Settings};
use crate::pod::dns::ResolvConf;
use crate::runtime::simulated::SimulatedRuntime;
use crate::runtime::{ContainerConfig, ExecOutput, PodSandboxConfig};
use crate::volumes::Volumes;

/// A worker over the simulated runtime; the API client points nowhere and is never used here.
fn worker(rt: &Arc<SimulatedRuntime>, pod: Pod) -> Worker<SimulatedRuntime> {
    let url = "http://127.0.0.1:1".parse().unwrap_or_default();
    let client = kube::Client::try_from(kube::Config::new(url)).expect("client");
    let objects = Objects::new(client.clone());
    let (store, _writer) = reflector::store();
    let ctx = Context {
        runtime: rt.clone(),
        client,
        volumes: Volumes::new(std::env::temp_dir().join("rudder-unhealthy-tests"), objects.clone()),
        objects,
        events: PodEvents::disabled(),
        metrics: Metrics::unregistered(),
        store,
        settings: Settings {
            node_name: "n1".into(),
            node_ip: "192.0.2.1".into(),
            root_dir: std::env::temp_dir(),
            cluster_dns: vec![],
            cluster_domain: "cluster.local".into(),
            host_resolv: ResolvConf::default(),
            cpu_milli: 1000,
            memory_bytes: 1 << 30,
        },
        runtime_name: "simulated".into(),
    };
    Worker::new(Arc::new(ctx), Arc::new(pod))
}

fn pod(restart_policy: &str, probe_grace: Option<i64>, startup: bool) -> Pod {
    let failing = Probe {
        exec: Some(ExecAction { command: Some(vec!["check".into()]) }),
        period_seconds: Some(1),
        failure_threshold: Some(1),
        termination_grace_period_seconds: probe_grace,
        ..Default::default()
    };
    let container = Container {
        name: "app".into(),
        liveness_probe: (!startup).then(|| failing.clone()),
        startup_probe: startup.then_some(failing),
        ..Default::default()
    };
    Pod {
        metadata: kube::api::ObjectMeta { name: Some("p".into()), namespace: Some("ns".into()), uid: Some("u1".into()), ..Default::default() },
        spec: Some(k8s_openapi::api::core::v1::PodSpec {
            containers: vec![container],
            restart_policy: Some(restart_policy.into()),
            termination_grace_period_seconds: Some(20),
            ..Default::default()
        }),
        status: None,
    }
}

async fn running_app(rt: &SimulatedRuntime) -> String {
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

/// Runs `apply_probes` like successive syncs until the container is no longer running (at most 5 s).
async fn sync_until_killed(w: &mut Worker<SimulatedRuntime>, pod: &Pod, rt: &SimulatedRuntime) -> Observed {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let changed = w.prober.changed();
    loop {
        let observed = lifecycle::observe(rt, "u1").await.unwrap_or_default();
        let after = w.apply_probes(pod, observed).await.expect("apply probes");
        if after.containers.iter().all(|c| c.state != ContainerState::Running) {
            return after;
        }
        if tokio::time::timeout_at(deadline, changed.notified()).await.is_err() {
            panic!("the container was never killed");
        }
    }
}

#[tokio::test]
async fn failed_probes_kill_the_instance_with_the_right_grace() {
    struct Case {
        name: &'static str,
        pod: Pod,
        want_grace: i64,
    }
    for case in [
        Case { name: "liveness, pod grace", pod: pod("Always", None, false), want_grace: 20 },
        Case { name: "liveness, probe grace", pod: pod("Always", Some(3), false), want_grace: 3 },
        Case { name: "startup, never restarted", pod: pod("Never", None, true), want_grace: 20 },
    ] {
        let rt = Arc::new(SimulatedRuntime::new());
        let id = running_app(&rt).await;
        rt.exec_returns("app", ExecOutput { exit_code: 1, stdout: vec![], stderr: vec![] });
        let mut w = worker(&rt, case.pod.clone());
        let after = sync_until_killed(&mut w, &case.pod, &rt).await;
        assert!(rt.calls().contains(&format!("stop_container {id} {}", case.want_grace)), "{}: calls {:?}", case.name, rt.calls());
        assert_eq!(after.containers.first().map(|c| c.exit_code), Some(137), "{}: killed", case.name);
        assert!(w.prober.results().is_empty() && w.prober.tasks() == 0, "{}: probes of the killed instance are gone", case.name);
    }
}

#[tokio::test]
async fn healthy_and_unprobed_containers_are_left_alone() {
    let rt = Arc::new(SimulatedRuntime::new());
    running_app(&rt).await;
    let mut healthy = pod("Always", None, false);
    let mut w = worker(&rt, healthy.clone());
    for _ in 0..3 {
        let observed = lifecycle::observe(rt.as_ref(), "u1").await.unwrap_or_default();
        w.apply_probes(&healthy, observed).await.expect("apply probes");
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    if let Some(spec) = healthy.spec.as_mut() {
        spec.containers[0].liveness_probe = None;
    }
    let observed = lifecycle::observe(rt.as_ref(), "u1").await.unwrap_or_default();
    w.apply_probes(&healthy, observed).await.expect("apply probes");
    assert!(!rt.calls().iter().any(|c| c.starts_with("stop_container")), "nothing killed: {:?}", rt.calls());
}

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, ExecAction, Probe};

use super::*;

fn probe() -> Probe {
    Probe { exec: Some(ExecAction { command: Some(vec!["true".into()]) }), ..Default::default() }
}

fn with_probes(startup: bool, liveness: bool, readiness: bool) -> Container {
    Container {
        name: "app".into(),
        startup_probe: startup.then(probe),
        liveness_probe: liveness.then(probe),
        readiness_probe: readiness.then(probe),
        ..Default::default()
    }
}

const S: Outcome = Outcome::Success(String::new());
const F: Outcome = Outcome::Failure(String::new());
const E: Outcome = Outcome::Error(String::new());
use Verdict::{Failure as Fail, Success as Ok};

#[test]
fn settings_defaults_and_overrides() {
    struct Case {
        name: &'static str,
        kind: Kind,
        probe: Probe,
        want: Settings,
    }
    let defaults = Settings {
        initial_delay: Duration::ZERO,
        period: Duration::from_secs(10),
        timeout: Duration::from_secs(1),
        success_threshold: 1,
        failure_threshold: 3,
        termination_grace_seconds: None,
    };
    for case in [
        Case { name: "all defaults", kind: Kind::Readiness, probe: probe(), want: defaults },
        Case {
            name: "everything set",
            kind: Kind::Readiness,
            probe: Probe {
                initial_delay_seconds: Some(5),
                period_seconds: Some(2),
                timeout_seconds: Some(3),
                success_threshold: Some(2),
                failure_threshold: Some(4),
                termination_grace_period_seconds: Some(7),
                ..probe()
            },
            want: Settings {
                initial_delay: Duration::from_secs(5),
                period: Duration::from_secs(2),
                timeout: Duration::from_secs(3),
                success_threshold: 2,
                failure_threshold: 4,
                termination_grace_seconds: Some(7),
            },
        },
        Case {
            name: "liveness success threshold is always 1",
            kind: Kind::Liveness,
            probe: Probe { success_threshold: Some(3), ..probe() },
            want: defaults,
        },
        Case {
            name: "invalid values fall back to defaults or minimums",
            kind: Kind::Startup,
            probe: Probe {
                initial_delay_seconds: Some(-1),
                period_seconds: Some(0),
                timeout_seconds: Some(-5),
                failure_threshold: Some(0),
                termination_grace_period_seconds: Some(-1),
                ..probe()
            },
            want: Settings { period: Duration::from_secs(1), ..defaults },
        },
    ] {
        assert_eq!(Settings::new(case.kind, &case.probe), case.want, "{}", case.name);
    }
}

#[test]
fn tracker_counts_consecutive_results() {
    struct Case {
        name: &'static str,
        kind: Kind,
        success_threshold: i32,
        failure_threshold: i32,
        outcomes: Vec<Outcome>,
        /// The reported result after each outcome.
        want: Vec<Option<Verdict>>,
    }
    for case in [
        Case {
            name: "readiness starts failed and turns ready on the first success",
            kind: Kind::Readiness,
            success_threshold: 1,
            failure_threshold: 3,
            outcomes: vec![S],
            want: vec![Some(Ok)],
        },
        Case {
            name: "readiness needs successThreshold successes in a row",
            kind: Kind::Readiness,
            success_threshold: 2,
            failure_threshold: 3,
            outcomes: vec![S, F, S, S],
            want: vec![Some(Fail), Some(Fail), Some(Fail), Some(Ok)],
        },
        Case {
            name: "liveness stays successful until failureThreshold failures in a row",
            kind: Kind::Liveness,
            success_threshold: 1,
            failure_threshold: 3,
            outcomes: vec![F, F, S, F, F, F],
            want: vec![Some(Ok), Some(Ok), Some(Ok), Some(Ok), Some(Ok), Some(Fail)],
        },
        Case {
            name: "errors count neither way and do not break a run",
            kind: Kind::Liveness,
            success_threshold: 1,
            failure_threshold: 2,
            outcomes: vec![F, E, F],
            want: vec![Some(Ok), Some(Ok), Some(Fail)],
        },
        Case {
            name: "startup is unknown until it succeeds",
            kind: Kind::Startup,
            success_threshold: 1,
            failure_threshold: 3,
            outcomes: vec![F, E, S],
            want: vec![None, None, Some(Ok)],
        },
        Case {
            name: "startup fails after failureThreshold failures",
            kind: Kind::Startup,
            success_threshold: 1,
            failure_threshold: 2,
            outcomes: vec![F, F],
            want: vec![None, Some(Fail)],
        },
        Case {
            name: "ready pod turns unready after failureThreshold failures and back",
            kind: Kind::Readiness,
            success_threshold: 1,
            failure_threshold: 2,
            outcomes: vec![S, F, F, S],
            want: vec![Some(Ok), Some(Ok), Some(Fail), Some(Ok)],
        },
    ] {
        let settings = Settings::new(
            case.kind,
            &Probe { success_threshold: Some(case.success_threshold), failure_threshold: Some(case.failure_threshold), ..probe() },
        );
        let mut t = Tracker::new(case.kind, &settings);
        assert_eq!(t.reported(), case.kind.initial(), "{}: initial", case.name);
        let got: Vec<Option<Verdict>> = case
            .outcomes
            .iter()
            .map(|o| {
                let before = t.reported();
                let changed = t.observe(o);
                assert_eq!(changed.is_some(), t.reported() != before, "{}: change reported iff it changed", case.name);
                t.reported()
            })
            .collect();
        assert_eq!(got, case.want, "{}", case.name);
    }
}

#[test]
fn tracker_knows_when_probing_is_over() {
    struct Case {
        name: &'static str,
        kind: Kind,
        outcomes: Vec<Outcome>,
        finished: bool,
    }
    for case in [
        Case { name: "startup before success", kind: Kind::Startup, outcomes: vec![F], finished: false },
        Case { name: "startup after success", kind: Kind::Startup, outcomes: vec![S], finished: true },
        Case { name: "startup after failing", kind: Kind::Startup, outcomes: vec![F, F, F], finished: true },
        Case { name: "liveness alive", kind: Kind::Liveness, outcomes: vec![F, F], finished: false },
        Case { name: "liveness dead waits for the kill", kind: Kind::Liveness, outcomes: vec![F, F, F], finished: true },
        Case { name: "readiness never stops", kind: Kind::Readiness, outcomes: vec![F, F, F, S], finished: false },
    ] {
        let mut t = Tracker::new(case.kind, &Settings::new(case.kind, &probe()));
        for o in &case.outcomes {
            t.observe(o);
        }
        assert_eq!(t.finished(), case.finished, "{}", case.name);
    }
}

#[test]
fn startup_gates_the_other_probes() {
    struct Case {
        name: &'static str,
        kind: Kind,
        has_startup: bool,
        startup: Option<Verdict>,
        want: bool,
    }
    for case in [
        Case { name: "no startup probe: liveness runs", kind: Kind::Liveness, has_startup: false, startup: None, want: true },
        Case { name: "no startup probe: readiness runs", kind: Kind::Readiness, has_startup: false, startup: None, want: true },
        Case { name: "startup pending: readiness waits", kind: Kind::Readiness, has_startup: true, startup: None, want: false },
        Case { name: "startup pending: liveness waits", kind: Kind::Liveness, has_startup: true, startup: None, want: false },
        Case { name: "startup pending: startup runs", kind: Kind::Startup, has_startup: true, startup: None, want: true },
        Case { name: "started: liveness runs", kind: Kind::Liveness, has_startup: true, startup: Some(Ok), want: true },
        Case { name: "started: startup stops", kind: Kind::Startup, has_startup: true, startup: Some(Ok), want: false },
        Case { name: "startup failed: readiness waits", kind: Kind::Readiness, has_startup: true, startup: Some(Fail), want: false },
    ] {
        assert_eq!(may_probe(case.kind, case.has_startup, case.startup), case.want, "{}", case.name);
    }
}

#[test]
fn effects_of_results_on_a_container() {
    struct Case {
        name: &'static str,
        container: Container,
        running: bool,
        results: Option<InstanceResults>,
        want: Effects,
    }
    let up = Effects { started: true, ready: true, kill: None };
    let none = Effects { started: false, ready: false, kill: None };
    let r = |startup, liveness, readiness| Some(InstanceResults { startup, liveness, readiness });
    for case in [
        Case { name: "no probes: ready once running", container: with_probes(false, false, false), running: true, results: None, want: up },
        Case { name: "no probes: not running", container: with_probes(false, false, false), running: false, results: None, want: none },
        Case {
            name: "readiness without result yet: started, not ready",
            container: with_probes(false, false, true),
            running: true,
            results: None,
            want: Effects { started: true, ready: false, kill: None },
        },
        Case { name: "readiness succeeded", container: with_probes(false, false, true), running: true, results: r(None, None, Some(Ok)), want: up },
        Case {
            name: "readiness success but not running",
            container: with_probes(false, false, true),
            running: false,
            results: r(None, None, Some(Ok)),
            want: none,
        },
        Case { name: "liveness without result: alive and ready", container: with_probes(false, true, false), running: true, results: None, want: up },
        Case {
            name: "liveness failed: kill",
            container: with_probes(false, true, false),
            running: true,
            results: r(None, Some(Fail), None),
            want: Effects { kill: Some(Kind::Liveness), ..up },
        },
        Case {
            name: "startup pending: not started, not ready",
            container: with_probes(true, true, false),
            running: true,
            results: None,
            want: none,
        },
        Case {
            name: "startup pending hides a readiness success",
            container: with_probes(true, false, true),
            running: true,
            results: r(None, None, Some(Ok)),
            want: none,
        },
        Case {
            name: "startup succeeded, readiness pending",
            container: with_probes(true, false, true),
            running: true,
            results: r(Some(Ok), None, None),
            want: Effects { started: true, ready: false, kill: None },
        },
        Case {
            name: "startup failed: kill",
            container: with_probes(true, true, true),
            running: true,
            results: r(Some(Fail), None, None),
            want: Effects { kill: Some(Kind::Startup), ..none },
        },
        Case {
            name: "results of a probe the spec lacks are ignored",
            container: with_probes(false, false, false),
            running: true,
            results: r(Some(Fail), Some(Fail), Some(Fail)),
            want: up,
        },
        Case {
            name: "a stopped instance is never killed",
            container: with_probes(false, true, false),
            running: false,
            results: r(None, Some(Fail), None),
            want: none,
        },
    ] {
        assert_eq!(effects(&case.container, case.running, case.results.as_ref()), case.want, "{}", case.name);
    }
}

#[test]
fn adopted_results_come_from_the_same_instance_only() {
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStateRunning, ContainerStatus, PodStatus};
    struct Case {
        name: &'static str,
        container_id: &'static str,
        running: bool,
        started: bool,
        ready: bool,
        want: InstanceResults,
    }
    for case in [
        Case {
            name: "same instance, ready",
            container_id: "containerd://c1",
            running: true,
            started: true,
            ready: true,
            want: InstanceResults { startup: Some(Ok), liveness: None, readiness: Some(Ok) },
        },
        Case {
            name: "same instance, started not ready",
            container_id: "containerd://c1",
            running: true,
            started: true,
            ready: false,
            want: InstanceResults { startup: Some(Ok), ..Default::default() },
        },
        Case { name: "another instance", container_id: "containerd://c0", running: true, started: true, ready: true, want: InstanceResults::default() },
        Case { name: "not running", container_id: "containerd://c1", running: false, started: true, ready: true, want: InstanceResults::default() },
    ] {
        let status = PodStatus {
            container_statuses: Some(vec![ContainerStatus {
                name: "app".into(),
                container_id: Some(case.container_id.into()),
                started: Some(case.started),
                ready: case.ready,
                state: Some(ContainerState {
                    running: case.running.then(ContainerStateRunning::default),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert_eq!(adopted(Some(&status), &with_probes(true, true, true), "c1"), case.want, "{}", case.name);
    }
    assert_eq!(adopted(None, &with_probes(true, true, true), "c1"), InstanceResults::default(), "no status yet");
}

#[test]
fn tracker_can_start_from_an_adopted_result() {
    let settings = Settings::new(Kind::Readiness, &Probe { failure_threshold: Some(1), ..probe() });
    let mut t = Tracker::new(Kind::Readiness, &settings).reporting(Some(Ok));
    assert_eq!(t.observe(&S), None, "already successful: no change");
    assert_eq!(t.observe(&F), Some(Fail), "a failure is a change from the adopted success");
}

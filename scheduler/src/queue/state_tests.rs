use super::*;
use crate::testing::pod;
use k8s_openapi::api::core::v1::PodSchedulingGate;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn with_priority(name: &str, priority: i32) -> Arc<Pod> {
    let mut p = pod(name);
    if let Some(s) = p.spec.as_mut() {
        s.priority = Some(priority);
    }
    Arc::new(p)
}

#[test]
fn backoff_doubles_to_the_cap() {
    let q = QueueState::default();
    let cases = [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (9, 10), (100, 10)];
    for (attempts, want) in cases {
        assert_eq!(q.backoff_duration(attempts), secs(want), "attempts {attempts}");
    }
}

#[test]
fn pop_order_is_priority_then_age() {
    let t0 = Instant::now();
    let mut q = QueueState::default();
    q.add_or_update(with_priority("old-low", 0), t0);
    q.add_or_update(with_priority("new-high", 10), t0 + secs(2));
    q.add_or_update(with_priority("new-low", 0), t0 + secs(1));
    let order: Vec<String> = std::iter::from_fn(|| q.pop().map(|(qp, _)| qp.key)).collect();
    assert_eq!(order, vec!["default/new-high", "default/old-low", "default/new-low"]);
}

#[test]
fn unschedulable_pod_waits_for_an_event_then_backs_off() {
    let t0 = Instant::now();
    let mut q = QueueState::default();
    q.add_or_update(Arc::new(pod("p")), t0);
    let (qp, cycle) = q.pop().expect("one active pod");
    assert_eq!(qp.attempts, 1);
    q.add_unschedulable(qp, cycle, t0);
    assert_eq!(q.where_is("default/p"), Some(Where::Unschedulable));

    // No event: flushing does not retry it.
    assert_eq!(q.flush(t0 + secs(30)), 0);
    assert!(q.pop().is_none());

    // An event within the 1 s backoff parks it in backoff; once that passes it is active again.
    q.move_all_to_active_or_backoff(t0 + Duration::from_millis(500));
    assert_eq!(q.where_is("default/p"), Some(Where::Backoff));
    assert_eq!(q.flush(t0 + Duration::from_millis(900)), 0, "still backing off");
    assert_eq!(q.flush(t0 + secs(1)), 1);
    let (qp, _) = q.pop().expect("retried");
    assert_eq!(qp.attempts, 2);
}

#[test]
fn event_after_backoff_goes_straight_to_active() {
    let t0 = Instant::now();
    let mut q = QueueState::default();
    q.add_or_update(Arc::new(pod("p")), t0);
    let (qp, cycle) = q.pop().expect("pod");
    q.add_unschedulable(qp, cycle, t0);
    q.move_all_to_active_or_backoff(t0 + secs(5));
    assert_eq!(q.where_is("default/p"), Some(Where::Active));
}

#[test]
fn event_during_the_attempt_sends_failure_to_backoff() {
    let t0 = Instant::now();
    let mut q = QueueState::default();
    q.add_or_update(Arc::new(pod("p")), t0);
    let (qp, cycle) = q.pop().expect("pod");
    q.move_all_to_active_or_backoff(t0); // a node appeared while we were filtering
    q.add_unschedulable(qp, cycle, t0);
    assert_eq!(q.where_is("default/p"), Some(Where::Backoff));
}

#[test]
fn long_unschedulable_pods_are_retried_anyway() {
    let t0 = Instant::now();
    let mut q = QueueState::default();
    q.add_or_update(Arc::new(pod("p")), t0);
    let (qp, cycle) = q.pop().expect("pod");
    q.add_unschedulable(qp, cycle, t0);
    assert_eq!(q.flush(t0 + MAX_IN_UNSCHEDULABLE), 1);
    assert_eq!(q.where_is("default/p"), Some(Where::Active));
}

#[test]
fn errors_back_off_with_growing_delay() {
    let t0 = Instant::now();
    let mut q = QueueState::default();
    q.add_or_update(Arc::new(pod("p")), t0);
    let (qp, _) = q.pop().expect("pod");
    q.add_backoff(qp, t0);
    assert_eq!(q.flush(t0 + secs(1)), 1);
    let (qp, _) = q.pop().expect("second attempt");
    q.add_backoff(qp, t0 + secs(1));
    assert_eq!(q.flush(t0 + secs(2)), 0, "second backoff is 2 s");
    assert_eq!(q.flush(t0 + secs(3)), 1);
}

#[test]
fn updates() {
    let t0 = Instant::now();
    let mut q = QueueState::default();

    // Status-only updates leave an unschedulable pod where it is; spec changes retry it.
    q.add_or_update(Arc::new(pod("p")), t0);
    let (qp, cycle) = q.pop().expect("pod");
    q.add_unschedulable(qp, cycle, t0);
    let mut status_only = pod("p");
    status_only.status = Some(Default::default());
    q.add_or_update(Arc::new(status_only), t0 + secs(5));
    assert_eq!(q.where_is("default/p"), Some(Where::Unschedulable));
    let mut relabelled = pod("p");
    relabelled.metadata.labels = Some([("a".to_string(), "b".to_string())].into());
    q.add_or_update(Arc::new(relabelled), t0 + secs(5));
    assert_eq!(q.where_is("default/p"), Some(Where::Active));

    // A new per-pod plugin annotation retries it too.
    q.add_or_update(Arc::new(pod("a")), t0);
    let (qp, cycle) = loop {
        let (qp, cycle) = q.pop().expect("pod");
        if qp.key == "default/a" {
            break (qp, cycle);
        }
        q.done(&qp.key);
    };
    q.add_unschedulable(qp, cycle, t0);
    let mut annotated = pod("a");
    annotated.metadata.annotations =
        Some([(crate::framework::pod_overrides::ANNOTATION.to_string(), "{}".to_string())].into());
    q.add_or_update(Arc::new(annotated), t0 + secs(5));
    assert_eq!(q.where_is("default/a"), Some(Where::Active), "annotation change");
    q.delete("default/a");
    q.add_or_update(Arc::new(pod("p")), t0 + secs(5));

    // Gated pods are held until the gates are removed.
    let mut gated = pod("g");
    if let Some(s) = gated.spec.as_mut() {
        s.scheduling_gates = Some(vec![PodSchedulingGate { name: "wait".into() }]);
    }
    q.add_or_update(Arc::new(gated), t0);
    assert_eq!(q.lengths(), Lengths { active: 1, backoff: 0, unschedulable: 0, gated: 1 });
    q.add_or_update(Arc::new(pod("g")), t0);
    assert_eq!(q.where_is("default/g"), Some(Where::Active));

    // Deleted pods leave the queue; in-flight pods ignore updates.
    q.delete("default/g");
    assert_eq!(q.where_is("default/g"), None);
    let (qp, _) = q.pop().expect("p is active");
    q.add_or_update(Arc::new(pod("p")), t0);
    assert_eq!(q.where_is("default/p"), None, "in flight, not re-queued");
    q.done(&qp.key);
    q.add_or_update(Arc::new(pod("p")), t0);
    assert_eq!(q.where_is("default/p"), Some(Where::Active), "after done it can be queued again");
}

#[test]
fn a_pod_lined_up_twice_is_popped_once_in_its_current_place() {
    let t0 = Instant::now();
    let mut q = QueueState::default();
    q.add_or_update(with_priority("a", 0), t0);
    q.add_or_update(with_priority("b", 0), t0 + secs(1));
    // a is gated, then released later: its old place in line no longer counts.
    let mut gated = (*with_priority("a", 0)).clone();
    if let Some(s) = gated.spec.as_mut() {
        s.scheduling_gates = Some(vec![PodSchedulingGate { name: "wait".into() }]);
    }
    q.add_or_update(Arc::new(gated), t0 + secs(2));
    assert!(q.has_active(), "b is still active");
    q.add_or_update(with_priority("a", 0), t0 + secs(3));
    let order: Vec<String> = std::iter::from_fn(|| q.pop().map(|(qp, _)| qp.key)).collect();
    assert_eq!(order, ["default/b", "default/a"], "a lines up again behind b, once");
    assert!(!q.has_active());
}

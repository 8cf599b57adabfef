//! The scheduling loop: pop a pod, run its profile's framework over a fresh snapshot, assume the pod on
//! the chosen node and bind it in the background; or report why it fits nowhere and put it back in the
//! queue. Every cycle's explanation is kept for the explain endpoint and, on success, summarized in a
//! `SchedulingExplained` event.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::cache::SchedulerCache;
use crate::eligibility::{responsible_for_any, scheduler_name};
use crate::events::PodEvents;
use crate::explain::ExplanationStore;
use crate::framework::{CycleState, Explanation, FitError, Framework, NodeToStatus, PermitOutcome, PreEnqueuePlugin, Status, Waiter, WaitingPods};
use crate::framework::node_info::pod_priority;
use crate::framework::runtime::{Failure, nominated_node_of};
use crate::metrics::{Metrics, RESULT_ERROR, RESULT_SCHEDULED, RESULT_UNSCHEDULABLE};
use crate::pod_status;
use crate::queue::{QueuedPod, SchedulingQueue};

/// Event reason and PodScheduled reason upstream uses.
pub const REASON_FAILED_SCHEDULING: &str = "FailedScheduling";
pub const REASON_SCHEDULED: &str = "Scheduled";
pub const REASON_UNSCHEDULABLE: &str = "Unschedulable";
pub const REASON_SCHEDULER_ERROR: &str = "SchedulerError";
/// Normal event (rudder's own) carrying a summary of how the node was chosen.
pub const REASON_SCHEDULING_EXPLAINED: &str = "SchedulingExplained";
/// Upper bound of an event note (upstream's `NoteLengthLimit`).
pub const NOTE_LENGTH_LIMIT: usize = 1024;

/// One profile: its plugins and its event recorder (reporting as the profile's scheduler name).
pub struct ProfileRuntime {
    pub framework: Arc<Framework>,
    pub events: PodEvents,
}

/// Every profile's PreEnqueue plugins, each pod checked against its own profile's (the queue is shared).
pub struct ProfilesPreEnqueue(pub BTreeMap<String, Arc<Framework>>);

impl PreEnqueuePlugin for ProfilesPreEnqueue {
    fn pre_enqueue(&self, pod: &Pod) -> Status {
        self.0.get(scheduler_name(pod)).map_or_else(Status::success, |f| f.run_pre_enqueue(pod))
    }
}

/// Everything the scheduling loop needs; one loop serves every profile.
pub struct Scheduler {
    /// Profiles by scheduler name.
    pub profiles: BTreeMap<String, ProfileRuntime>,
    pub queue: Arc<SchedulingQueue>,
    pub cache: Arc<SchedulerCache>,
    pub pods: Store<Pod>,
    pub client: kube::Client,
    pub metrics: Metrics,
    pub explanations: Arc<ExplanationStore>,
    /// Whether to publish `SchedulingExplained` events.
    pub explain_events: bool,
    /// Pods a Permit plugin holds before binding (shared with the plugins through their handle).
    pub waiting_pods: Arc<WaitingPods>,
}

/// What the binding cycle takes over from the scheduling cycle.
struct Binding {
    qp: QueuedPod,
    node: String,
    cycle: u64,
    start: Instant,
    explanation: Arc<Explanation>,
    state: CycleState,
    waiter: Option<Waiter>,
}

/// Shortens a message to fit an event note, as upstream does.
pub fn truncate_message(message: &str) -> String {
    if message.len() <= NOTE_LENGTH_LIMIT {
        return message.to_string();
    }
    let suffix = " ...";
    let mut end = NOTE_LENGTH_LIMIT - suffix.len();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{suffix}", &message[..end])
}

impl Scheduler {
    /// Schedules pods until the task is dropped.
    pub async fn run(self: Arc<Self>) {
        loop {
            let (qp, cycle) = self.queue.pop().await;
            self.schedule_one(qp, cycle);
        }
    }

    /// The pod as the store has it now, by `namespace/name`.
    fn stored_pod(&self, key: &str) -> Option<Arc<Pod>> {
        let (ns, name) = key.split_once('/')?;
        self.pods.get(&ObjectRef::new(name).within(ns))
    }

    /// The pod as the store has it now, if it is still ours to schedule.
    fn current_pod(&self, qp: &QueuedPod) -> Option<Arc<Pod>> {
        let pod = self.stored_pod(&qp.key)?;
        self.responsible_for(&pod).then_some(pod)
    }

    fn responsible_for(&self, pod: &Pod) -> bool {
        let names: Vec<&str> = self.profiles.keys().map(String::as_str).collect();
        responsible_for_any(pod, &names)
    }

    /// The profile serving `pod` (it exists for every pod `current_pod` returns).
    fn profile(&self, pod: &Pod) -> Option<&ProfileRuntime> {
        self.profiles.get(scheduler_name(pod))
    }

    /// The pod as this cycle should see it: with the nomination made by an earlier cycle even before the
    /// status patch recording it comes back through the watch, so its nominated node is tried first and it
    /// waits for its victims rather than preempting again.
    fn with_remembered_nomination(&self, key: &str, pod: Arc<Pod>) -> Arc<Pod> {
        let Some(node) = self.cache.nomination(key) else { return pod };
        if nominated_node_of(&pod) == Some(node.as_str()) {
            return pod;
        }
        let mut copy = (*pod).clone();
        copy.status.get_or_insert_with(Default::default).nominated_node_name = Some(node);
        Arc::new(copy)
    }

    fn schedule_one(self: &Arc<Self>, mut qp: QueuedPod, cycle: u64) {
        let start = Instant::now();
        let key = qp.key.clone();
        let Some(pod) = self.current_pod(&qp) else {
            self.queue.done(&key);
            return;
        };
        if self.cache.is_assumed(&key) {
            // Already placed; its binding is in flight.
            self.queue.done(&key);
            return;
        }
        let pod = self.with_remembered_nomination(&key, pod);
        qp.pod = pod.clone();
        let Some(profile) = self.profile(&pod) else {
            self.queue.done(&key);
            return;
        };
        let snapshot = self.cache.snapshot();
        let nominated = Arc::new(self.cache.nominated_pods(|key| self.stored_pod(key), |p| self.responsible_for(p)));
        let (result, explanation) = profile.framework.schedule_cycle(&pod, &snapshot, nominated.clone());
        // Shared with the binding cycle, which summarizes it into an event: never copied.
        let explanation = Arc::new(explanation);
        self.explanations.record(explanation.clone());
        match result {
            Ok((node, mut state)) => {
                tracing::debug!(pod = %key, %node, "assuming pod on node");
                self.cache.assume(pod.clone(), &node);
                let framework = &profile.framework;
                let reserved = framework.run_reserve(&mut state, &pod, &node);
                if !reserved.is_success() {
                    self.cache.forget(&key);
                    self.fail_after_assume(qp, cycle, &node, reserved, start);
                    return;
                }
                let waiter = match framework.run_permit(&state, &pod, &node) {
                    PermitOutcome::Allowed => None,
                    PermitOutcome::Wait(plugins) => Some(self.waiting_pods.add(&key, &plugins)),
                    PermitOutcome::Denied(s) => {
                        framework.run_unreserve(&mut state, &pod, &node);
                        self.cache.forget(&key);
                        self.fail_after_assume(qp, cycle, &node, s, start);
                        return;
                    }
                };
                self.queue.done(&key);
                let this = self.clone();
                let binding = Binding { qp, node, cycle, start, explanation, state, waiter };
                tokio::spawn(async move { this.bind(binding).await });
            }
            Err(Failure::Unschedulable(msg)) => {
                tracing::info!(pod = %key, reason = %msg, "unable to schedule pod; no fit; waiting");
                self.metrics.observe_attempt(RESULT_UNSCHEDULABLE, start.elapsed().as_secs_f64());
                if let Some(node) = &explanation.nominated_node {
                    tracing::info!(pod = %key, %node, "nominated pod to node after preemption");
                    self.cache.nominate(&key, node);
                    // Preemption clears lower-priority pods' nominations to that node in the API; forget
                    // them here too, or the remembered ones would outlive it.
                    let priority = pod_priority(&pod);
                    for other in nominated.on_node(node).iter().filter(|o| o.priority() < priority) {
                        self.cache.clear_nomination(&other.key());
                    }
                }
                self.handle_failure(qp, Some(cycle), REASON_UNSCHEDULABLE, msg, explanation.nominated_node.clone());
            }
            Err(Failure::Error(msg)) => {
                tracing::warn!(pod = %key, error = %msg, "error scheduling pod; retrying");
                self.metrics.observe_attempt(RESULT_ERROR, start.elapsed().as_secs_f64());
                self.handle_failure(qp, None, REASON_SCHEDULER_ERROR, msg, None);
            }
        }
    }

    /// A Reserve, Permit or binding step turned the pod down (it waits as unschedulable, like a pod that
    /// fits nowhere) or failed (it backs off).
    fn fail_after_assume(self: &Arc<Self>, qp: QueuedPod, cycle: u64, node: &str, status: Status, start: Instant) {
        if status.is_rejected() {
            self.metrics.observe_attempt(RESULT_UNSCHEDULABLE, start.elapsed().as_secs_f64());
            let mut node_to_status = NodeToStatus::default();
            node_to_status.set(node, status);
            let fit = FitError { num_all_nodes: 1, pre_filter_msg: None, node_to_status, post_filter_msg: None };
            self.handle_failure(qp, Some(cycle), REASON_UNSCHEDULABLE, fit.message(), None);
        } else {
            self.metrics.observe_attempt(RESULT_ERROR, start.elapsed().as_secs_f64());
            self.handle_failure(qp, None, REASON_SCHEDULER_ERROR, status.message(), None);
        }
    }

    /// The binding cycle: wait for Permit, PreBind, Bind, PostBind; any failure unreserves and forgets the
    /// assumption so the pod is scheduled again.
    async fn bind(self: Arc<Self>, b: Binding) {
        let Binding { qp, node, cycle, start, explanation, mut state, waiter } = b;
        let Some(profile) = self.profile(&qp.pod) else {
            // Cannot happen (the cycle found the profile); never leave the assumption behind.
            self.cache.forget(&qp.key);
            return;
        };
        let framework = &profile.framework;
        let mut status = match waiter {
            Some(w) => w.wait().await,
            None => Status::success(),
        };
        if status.is_success() {
            status = framework.run_pre_bind(&state, &qp.pod, &node).await;
        }
        if status.is_success() {
            status = framework.bind(&qp.pod, &node).await;
            if !status.is_success() && !status.is_rejected() {
                let plugin = status.plugin().unwrap_or_default();
                status = Status::error(format!("running Bind plugin {plugin:?}: {}", status.message()));
            }
        }
        if status.is_success() {
            self.cache.clear_nomination(&qp.key);
            framework.run_post_bind(&state, &qp.pod, &node);
            self.metrics.observe_attempt(RESULT_SCHEDULED, start.elapsed().as_secs_f64());
            let (ns, name) = qp.key.split_once('/').unwrap_or_default();
            tracing::info!(pod = %qp.key, %node, "successfully bound pod to node");
            let note = format!("Successfully assigned {ns}/{name} to {node}");
            profile.events.publish(&qp.pod, EventType::Normal, REASON_SCHEDULED, "Binding", note);
            if self.explain_events {
                let note = truncate_message(&explanation.summary());
                profile.events.publish(&qp.pod, EventType::Normal, REASON_SCHEDULING_EXPLAINED, "Scheduling", note);
            }
            profile.events.forget(&qp.key);
            return;
        }
        framework.run_unreserve(&mut state, &qp.pod, &node);
        self.cache.forget(&qp.key);
        // What was assumed is free again: let other waiting pods try for it.
        self.queue.move_all_to_active_or_backoff();
        tracing::warn!(pod = %qp.key, %node, error = %status.message(), "binding cycle failed; retrying");
        self.fail_after_assume(qp, cycle, &node, status, start);
    }

    /// Puts the pod back (unschedulable pool after a rejection, backoff after an error) unless it is gone
    /// or bound meanwhile, then reports the failure (and any nomination) on the pod.
    fn handle_failure(
        self: &Arc<Self>,
        mut qp: QueuedPod,
        cycle: Option<u64>,
        reason: &'static str,
        msg: String,
        nominated: Option<String>,
    ) {
        // Forget event state of pods that are gone or bound, while we are here.
        for profile in self.profiles.values() {
            profile.events.retain(|key| {
                let Some((ns, name)) = key.split_once('/') else { return false };
                self.pods.get(&ObjectRef::new(name).within(ns)).is_some_and(|p| self.responsible_for(&p))
            });
        }
        let Some(pod) = self.current_pod(&qp) else {
            self.queue.done(&qp.key);
            return;
        };
        qp.pod = pod.clone();
        match cycle {
            Some(c) => self.queue.add_unschedulable(qp, c),
            None => self.queue.add_backoff(qp),
        }
        if let Some(profile) = self.profile(&pod) {
            profile.events.publish(&pod, EventType::Warning, REASON_FAILED_SCHEDULING, "Scheduling", truncate_message(&msg));
        }
        let client = self.client.clone();
        tokio::spawn(async move {
            if let Err(e) = pod_status::set_unschedulable(&client, &pod, reason, &msg, nominated.as_deref()).await {
                tracing::warn!(pod = %crate::framework::node_info::pod_key(&pod), error = %e, "failed to update PodScheduled condition");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation() {
        let long = "x".repeat(2000);
        let cases = [("short stays", "abc".to_string(), 3), ("long is cut to the limit", long, NOTE_LENGTH_LIMIT)];
        for (name, msg, want_len) in cases {
            assert_eq!(truncate_message(&msg).len(), want_len, "case {name}");
        }
        assert!(truncate_message(&"y".repeat(1500)).ends_with(" ..."));
    }
}

//! The scheduling queue's bookkeeping, free of clocks and locks so it can be tested step by step: an
//! active queue (in the QueueSort plugin's order; PrioritySort: highest priority, then oldest, first), a
//! backoff queue (pods waiting out a backoff after a failed attempt: by default 1 s, doubling up to
//! 10 s), an unschedulable pool (pods waiting for a cluster change) and the gated
//! pods (those a PreEnqueue plugin holds back; SchedulingGates: non-empty `schedulingGates`).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;

use crate::config;
use crate::framework::node_info::pod_key;
use crate::framework::{PreEnqueuePlugin, QueueSortPlugin, QueuedPodInfo, pod_overrides};
use crate::plugins::{priority_sort::PrioritySort, scheduling_gates::SchedulingGates};

/// Upstream's default `podInitialBackoffDuration`.
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_secs(config::DEFAULT_POD_INITIAL_BACKOFF_SECONDS.unsigned_abs());
/// Upstream's default `podMaxBackoffDuration`.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(config::DEFAULT_POD_MAX_BACKOFF_SECONDS.unsigned_abs());
/// Upstream's `podMaxInUnschedulablePodsDuration`: retry even without a cluster event after this long.
pub const MAX_IN_UNSCHEDULABLE: Duration = Duration::from_secs(5 * 60);

/// A pod waiting in (or popped from) the queue.
#[derive(Debug, Clone)]
pub struct QueuedPod {
    pub pod: Arc<Pod>,
    pub key: String,
    /// How many times it has been popped for scheduling.
    pub attempts: u32,
    /// When it entered its current sub-queue (orders the active queue among equal priorities).
    pub timestamp: Instant,
    /// When its last attempt failed; backoff counts from here.
    pub last_failure: Option<Instant>,
}

/// Which sub-queue a pod is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Where {
    Active,
    Backoff,
    Unschedulable,
    Gated,
}

/// Sizes, for the pending-pods metric.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lengths {
    pub active: usize,
    pub backoff: usize,
    pub unschedulable: usize,
    pub gated: usize,
}

/// An active pod's place in line, as the QueueSort plugin orders it (equal pods first come, first
/// served). Entries are never removed from the heap; one whose `seq` is no longer its pod's current one
/// is skipped when popped.
struct InLine {
    pod: Arc<Pod>,
    since: Instant,
    seq: u64,
    key: String,
    sort: Arc<dyn QueueSortPlugin>,
}

impl InLine {
    fn info(&self) -> QueuedPodInfo<'_> {
        QueuedPodInfo { pod: &self.pod, timestamp: self.since }
    }
}

impl std::fmt::Debug for InLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InLine").field("key", &self.key).field("seq", &self.seq).finish_non_exhaustive()
    }
}

impl PartialEq for InLine {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for InLine {}

impl Ord for InLine {
    /// Greater pops first (the heap is a max-heap).
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.info(), other.info());
        if self.sort.less(&a, &b) {
            Ordering::Greater
        } else if self.sort.less(&b, &a) {
            Ordering::Less
        } else {
            other.seq.cmp(&self.seq)
        }
    }
}

impl PartialOrd for InLine {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The queue's whole state.
pub struct QueueState {
    /// Orders the active pods (the profiles' common QueueSort plugin).
    sort: Arc<dyn QueueSortPlugin>,
    /// Keeps pods out of the active queue (every profile's PreEnqueue plugins, by the pod's profile).
    pre_enqueue: Arc<dyn PreEnqueuePlugin>,
    pods: BTreeMap<String, (QueuedPod, Where)>,
    /// The active pods in line (a heap, so a pop does not scan every pending pod).
    line: BinaryHeap<InLine>,
    /// Each active pod's current entry in `line`.
    active: HashMap<String, u64>,
    next_seq: u64,
    /// Popped and not yet returned or done.
    in_flight: HashSet<String>,
    /// Incremented by every pop.
    scheduling_cycle: u64,
    /// The cycle at which the last "move everything" event happened; a pod that failed in a cycle at or
    /// before it goes to backoff rather than waiting for another event it may already have missed.
    move_request_cycle: u64,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl Default for QueueState {
    fn default() -> Self {
        Self::new(DEFAULT_INITIAL_BACKOFF, DEFAULT_MAX_BACKOFF)
    }
}

/// Whether an update could change a scheduling decision (spec or labels), as opposed to status churn.
fn scheduling_relevant_change(old: &Pod, new: &Pod) -> bool {
    // The per-pod plugin annotation changes how the pod is scheduled (and may fix a bad one).
    let plugins = |p: &Pod| p.metadata.annotations.as_ref().and_then(|a| a.get(pod_overrides::ANNOTATION)).cloned();
    old.spec != new.spec
        || old.metadata.labels != new.metadata.labels
        || old.metadata.uid != new.metadata.uid
        || plugins(old) != plugins(new)
}

/// `initial × 2^(attempts-1)`, capped at `max`.
fn backoff_for(initial: Duration, max: Duration, attempts: u32) -> Duration {
    let mut d = initial;
    for _ in 1..attempts {
        d = d.saturating_mul(2);
        if d >= max {
            return max;
        }
    }
    d.min(max)
}

impl QueueState {
    /// A queue in the default profile's order, holding back pods with scheduling gates.
    pub fn new(initial_backoff: Duration, max_backoff: Duration) -> Self {
        Self::with_plugins(initial_backoff, max_backoff, Arc::new(PrioritySort), Arc::new(SchedulingGates))
    }

    pub fn with_plugins(
        initial_backoff: Duration,
        max_backoff: Duration,
        sort: Arc<dyn QueueSortPlugin>,
        pre_enqueue: Arc<dyn PreEnqueuePlugin>,
    ) -> Self {
        Self {
            sort,
            pre_enqueue,
            pods: BTreeMap::new(),
            line: BinaryHeap::new(),
            active: HashMap::new(),
            next_seq: 0,
            in_flight: HashSet::new(),
            scheduling_cycle: 0,
            move_request_cycle: 0,
            initial_backoff,
            max_backoff,
        }
    }

    /// `initial × 2^(attempts-1)`, capped.
    pub fn backoff_duration(&self, attempts: u32) -> Duration {
        backoff_for(self.initial_backoff, self.max_backoff, attempts)
    }

    fn backoff_expiry(&self, qp: &QueuedPod) -> Option<Instant> {
        qp.last_failure.map(|t| t + self.backoff_duration(qp.attempts))
    }

    fn is_backing_off(&self, qp: &QueuedPod, now: Instant) -> bool {
        self.backoff_expiry(qp).is_some_and(|e| e > now)
    }

    /// Adds a new pending pod, or refreshes one already queued. A relevant update to an unschedulable or
    /// gated pod sends it back to be tried (after any remaining backoff).
    pub fn add_or_update(&mut self, pod: Arc<Pod>, now: Instant) {
        let key = pod_key(&pod);
        if self.in_flight.contains(&key) {
            return; // The scheduler re-reads the pod from the store when the attempt ends.
        }
        let gated = !self.pre_enqueue.pre_enqueue(&pod).is_success();
        let (initial, max) = (self.initial_backoff, self.max_backoff);
        let Some((qp, place)) = self.pods.get_mut(&key) else {
            let qp = QueuedPod { pod, key: key.clone(), attempts: 0, timestamp: now, last_failure: None };
            self.pods.insert(key.clone(), (qp, Where::Gated));
            if !gated {
                self.place(&key, Where::Active);
            }
            return;
        };
        let relevant = scheduling_relevant_change(&qp.pod, &pod);
        qp.pod = pod;
        let next = match (*place, gated) {
            (_, true) => Where::Gated,
            (Where::Gated, false) => {
                qp.timestamp = now;
                Where::Active
            }
            (Where::Unschedulable, false) if relevant => {
                let backing_off = qp.last_failure.is_some_and(|t| t + backoff_for(initial, max, qp.attempts) > now);
                qp.timestamp = now;
                if backing_off { Where::Backoff } else { Where::Active }
            }
            (current, false) => current,
        };
        self.place(&key, next);
    }

    /// Puts a queued pod in sub-queue `to`, lining it up when it becomes active. Every change of sub-queue
    /// goes through here, so `line` and `active` always agree with `pods`.
    fn place(&mut self, key: &str, to: Where) {
        let Some((qp, place)) = self.pods.get_mut(key) else { return };
        let was = std::mem::replace(place, to);
        if to != Where::Active {
            self.active.remove(key);
            return;
        }
        if was == Where::Active && self.active.contains_key(key) {
            return;
        }
        self.next_seq += 1;
        self.line.push(InLine {
            pod: qp.pod.clone(),
            since: qp.timestamp,
            seq: self.next_seq,
            key: key.to_string(),
            sort: self.sort.clone(),
        });
        self.active.insert(key.to_string(), self.next_seq);
    }

    pub fn delete(&mut self, key: &str) {
        self.pods.remove(key);
        self.active.remove(key);
    }

    /// Takes the highest-priority, longest-waiting active pod and marks it in flight.
    pub fn pop(&mut self) -> Option<(QueuedPod, u64)> {
        let key = loop {
            let entry = self.line.pop()?;
            if self.active.get(&entry.key) == Some(&entry.seq) {
                break entry.key;
            }
        };
        self.active.remove(&key);
        let (mut qp, _) = self.pods.remove(&key)?;
        qp.attempts += 1;
        self.scheduling_cycle += 1;
        self.in_flight.insert(key);
        Some((qp, self.scheduling_cycle))
    }

    /// The attempt ended with the pod placed (or gone): forget it.
    pub fn done(&mut self, key: &str) {
        self.in_flight.remove(key);
    }

    /// The attempt found no node. If a cluster event arrived since the pod was popped it goes to backoff
    /// (that event may have made room); otherwise it waits in the unschedulable pool for the next event.
    pub fn add_unschedulable(&mut self, mut qp: QueuedPod, pod_cycle: u64, now: Instant) {
        self.in_flight.remove(&qp.key);
        qp.last_failure = Some(now);
        qp.timestamp = now;
        let place = if self.move_request_cycle >= pod_cycle { Where::Backoff } else { Where::Unschedulable };
        self.active.remove(&qp.key);
        self.pods.insert(qp.key.clone(), (qp, place));
    }

    /// The attempt failed with an error (or binding failed): retry after backoff.
    pub fn add_backoff(&mut self, mut qp: QueuedPod, now: Instant) {
        self.in_flight.remove(&qp.key);
        qp.last_failure = Some(now);
        qp.timestamp = now;
        self.active.remove(&qp.key);
        self.pods.insert(qp.key.clone(), (qp, Where::Backoff));
    }

    /// A cluster change (node added or changed, pod deleted…): every unschedulable pod gets another try,
    /// once its backoff has passed.
    pub fn move_all_to_active_or_backoff(&mut self, now: Instant) {
        self.move_to_active_or_backoff_where(now, |_| true);
    }

    /// Like [`Self::move_all_to_active_or_backoff`], for the unschedulable pods `affected` picks: the
    /// ones a narrower change (a pod bound somewhere) could make schedulable.
    pub fn move_to_active_or_backoff_where(&mut self, now: Instant, affected: impl Fn(&Pod) -> bool) {
        self.move_request_cycle = self.scheduling_cycle;
        let keys: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, (qp, w))| *w == Where::Unschedulable && affected(&qp.pod))
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            let backing_off = self.pods.get(&k).is_some_and(|(qp, _)| self.is_backing_off(qp, now));
            if let Some((qp, _)) = self.pods.get_mut(&k) {
                qp.timestamp = now;
            }
            self.place(&k, if backing_off { Where::Backoff } else { Where::Active });
        }
    }

    /// Moves pods whose backoff has passed to active, and pods stuck unschedulable for too long to be
    /// retried anyway. Returns how many became active.
    pub fn flush(&mut self, now: Instant) -> usize {
        let mut moved = 0;
        let keys: Vec<String> = self.pods.keys().cloned().collect();
        for k in keys {
            let Some((qp, w)) = self.pods.get(&k) else { continue };
            let ready = match w {
                Where::Backoff => !self.is_backing_off(qp, now),
                Where::Unschedulable => now.saturating_duration_since(qp.timestamp) >= MAX_IN_UNSCHEDULABLE,
                _ => false,
            };
            if ready && let Some((qp, _)) = self.pods.get_mut(&k) {
                qp.timestamp = now;
                self.place(&k, Where::Active);
                moved += 1;
            }
        }
        moved
    }

    pub fn where_is(&self, key: &str) -> Option<Where> {
        self.pods.get(key).map(|(_, w)| *w)
    }

    pub fn has_active(&self) -> bool {
        !self.active.is_empty()
    }

    pub fn lengths(&self) -> Lengths {
        let mut l = Lengths::default();
        for (_, w) in self.pods.values() {
            match w {
                Where::Active => l.active += 1,
                Where::Backoff => l.backoff += 1,
                Where::Unschedulable => l.unschedulable += 1,
                Where::Gated => l.gated += 1,
            }
        }
        l
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;

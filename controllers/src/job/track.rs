//! Counting finished pods without losing or double-counting one across crashes, as upstream:
//! a finished pod's UID is first written to `status.uncountedTerminatedPods`, then its tracking
//! finalizer is removed, and only then does the UID move into `succeeded` / `failed`. Indexed
//! jobs record succeeded pods by index in `completedIndexes` instead of by UID.

use std::collections::HashSet;
use std::sync::Arc;

use k8s_openapi::api::batch::v1::{JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod;

use super::indexes::Indexes;
use super::pods;

/// Upstream's cap on UIDs in `uncountedTerminatedPods`, keeping the status small.
pub const MAX_UNCOUNTED: usize = 500;

/// What one sync learns about finished pods.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Pods whose tracking finalizer comes off after the status is written.
    pub release: Vec<Arc<Pod>>,
    /// UIDs to add to `uncountedTerminatedPods`.
    pub new_succeeded: Vec<String>,
    pub new_failed: Vec<String>,
    /// Hit [`MAX_UNCOUNTED`]: the rest waits for the next sync, and the job cannot finish yet.
    pub full: bool,
}

/// The rules of one sync.
pub struct Rules<'a> {
    /// Indexed jobs: `completions`; pods without a valid index are released but never counted.
    pub indexed: Option<u32>,
    pub replace_only_failed: bool,
    /// The job is being deleted, or has a verdict: every tracked pod may be released.
    pub release_all: bool,
    /// The job has a failure verdict: unfinished pods count as failed.
    pub failing: bool,
    /// UIDs already in `uncountedTerminatedPods`.
    pub uncounted_succeeded: &'a HashSet<String>,
    pub uncounted_failed: &'a HashSet<String>,
    /// Pods whose finalizer removal is not yet visible in the cache.
    pub removing: &'a HashSet<String>,
    /// Whether a failed pod counts toward the backoff limit (pod failure policy `Ignore` says no).
    pub counts: &'a (dyn Fn(&Pod) -> bool + Sync),
}

/// Decides which tracked pods are released and which of them are newly counted.
pub fn settle(all: &[Arc<Pod>], rules: &Rules<'_>) -> Ledger {
    let mut ledger = Ledger::default();
    for pod in all {
        let uid = pods::uid(pod);
        if !pods::has_finalizer(pod) || rules.removing.contains(uid) {
            continue;
        }
        let failed = pods::is_failed(pod, rules.replace_only_failed);
        if !(rules.release_all || pods::is_succeeded(pod) || failed) {
            continue;
        }
        ledger.release.push(pod.clone());
        let valid_index = rules.indexed.is_none_or(|completions| pods::completion_index(pod).is_some_and(|i| i < completions));
        let known = rules.uncounted_succeeded.contains(uid) || rules.uncounted_failed.contains(uid);
        if pods::is_succeeded(pod) && !rules.uncounted_failed.contains(uid) {
            if rules.indexed.is_none() && !known {
                ledger.new_succeeded.push(uid.to_string());
            }
        } else if (failed || rules.failing) && !known && valid_index && (rules.counts)(pod) {
            ledger.new_failed.push(uid.to_string());
        }
        if ledger.new_succeeded.len() + ledger.new_failed.len() >= MAX_UNCOUNTED {
            ledger.full = true;
            break;
        }
    }
    ledger
}

/// Succeeded pods of an Indexed job, added to the indexes already recorded.
pub fn completed_indexes(recorded: &Indexes, all: &[Arc<Pod>], completions: u32) -> Indexes {
    let mut completed = recorded.clone();
    for pod in all.iter().filter(|p| pods::has_finalizer(p) && pods::is_succeeded(p)) {
        if let Some(i) = pods::completion_index(pod).filter(|i| *i < completions) {
            completed.insert(i);
        }
    }
    completed
}

/// Adds the ledger's UIDs to `uncountedTerminatedPods`.
pub fn record(status: &mut JobStatus, ledger: &Ledger) {
    let uncounted = status.uncounted_terminated_pods.get_or_insert_with(UncountedTerminatedPods::default);
    uncounted.succeeded.get_or_insert_default().extend(ledger.new_succeeded.iter().cloned());
    uncounted.failed.get_or_insert_default().extend(ledger.new_failed.iter().cloned());
}

/// Moves every uncounted UID whose pod no longer carries the finalizer (per `still_tracked`)
/// into the counters. Returns whether anything moved.
pub fn count_released(status: &mut JobStatus, still_tracked: impl Fn(&str) -> bool) -> bool {
    let uncounted = status.uncounted_terminated_pods.get_or_insert_with(UncountedTerminatedPods::default);
    let mut moved = (0, 0);
    if let Some(list) = uncounted.succeeded.as_mut() {
        let before = list.len();
        list.retain(|uid| still_tracked(uid));
        moved.0 = before - list.len();
    }
    if let Some(list) = uncounted.failed.as_mut() {
        let before = list.len();
        list.retain(|uid| still_tracked(uid));
        moved.1 = before - list.len();
    }
    let as_i32 = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    if moved.0 > 0 {
        status.succeeded = Some(status.succeeded.unwrap_or(0).saturating_add(as_i32(moved.0)));
    }
    if moved.1 > 0 {
        status.failed = Some(status.failed.unwrap_or(0).saturating_add(as_i32(moved.1)));
    }
    moved != (0, 0)
}

/// UIDs still waiting in `uncountedTerminatedPods`.
pub fn uncounted_len(status: &JobStatus) -> usize {
    status.uncounted_terminated_pods.as_ref().map_or(0, |u| u.succeeded.as_ref().map_or(0, Vec::len) + u.failed.as_ref().map_or(0, Vec::len))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::PodStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn pod(uid: &str, phase: &str, finalizer: bool, deleting: bool) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                uid: Some(uid.into()),
                finalizers: finalizer.then(|| vec![pods::TRACKING_FINALIZER.to_string()]),
                deletion_timestamp: deleting.then_some(Time(Timestamp::UNIX_EPOCH)),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus { phase: Some(phase.into()), ..Default::default() }),
        })
    }

    fn set(uids: &[&str]) -> HashSet<String> {
        uids.iter().map(|s| s.to_string()).collect()
    }

    fn uids(pods: &[Arc<Pod>]) -> Vec<&str> {
        pods.iter().map(|p| pods::uid(p)).collect()
    }

    #[test]
    fn settling() {
        let all = vec![
            pod("ok", "Succeeded", true, false),
            pod("bad", "Failed", true, false),
            pod("run", "Running", true, false),
            pod("gone", "Running", true, true),
            pod("counted", "Succeeded", false, false),
            pod("known", "Succeeded", true, false),
            pod("removing", "Failed", true, false),
        ];
        let (us, uf, rm) = (set(&["known"]), set(&[]), set(&["removing"]));
        let yes = |_: &Pod| true;
        let rules = |release_all, failing| Rules {
            indexed: None,
            replace_only_failed: false,
            release_all,
            failing,
            uncounted_succeeded: &us,
            uncounted_failed: &uf,
            removing: &rm,
            counts: &yes,
        };
        let l = settle(&all, &rules(false, false));
        assert_eq!(uids(&l.release), vec!["ok", "bad", "gone", "known"], "finished and deleted pods are released");
        assert_eq!(l.new_succeeded, vec!["ok"], "known ones are not added twice");
        assert_eq!(l.new_failed, vec!["bad", "gone"], "a pod deleted before finishing is a failure");
        let l = settle(&all, &rules(true, true));
        assert!(uids(&l.release).contains(&"run") && l.new_failed.contains(&"run".to_string()), "failing job counts running pods as failed");
        let l = settle(&all, &rules(true, false));
        assert!(uids(&l.release).contains(&"run") && !l.new_failed.contains(&"run".to_string()), "succeeding job releases without counting");
        let no = |_: &Pod| false;
        let ignoring = Rules { counts: &no, ..rules(false, false) };
        assert!(settle(&all, &ignoring).new_failed.is_empty(), "ignored failures are released, not counted");
    }

    #[test]
    fn counting_released_pods() {
        let mut status = JobStatus {
            succeeded: Some(1),
            uncounted_terminated_pods: Some(UncountedTerminatedPods { succeeded: Some(vec!["a".into(), "b".into()]), failed: Some(vec!["c".into()]) }),
            ..Default::default()
        };
        assert!(count_released(&mut status, |uid| uid == "b"));
        assert_eq!((status.succeeded, status.failed), (Some(2), Some(1)));
        assert_eq!(uncounted_len(&status), 1);
        assert!(!count_released(&mut status, |_| true), "nothing released, nothing moves");
        assert_eq!((status.succeeded, status.failed), (Some(2), Some(1)));
    }

    #[test]
    fn indexes_from_succeeded_pods() {
        let with_index = |i: &str, phase: &str, finalizer: bool| {
            let mut p = (*pod("u", phase, finalizer, false)).clone();
            p.metadata.annotations = Some([(pods::COMPLETION_INDEX.to_string(), i.to_string())].into());
            Arc::new(p)
        };
        let all = vec![with_index("1", "Succeeded", true), with_index("2", "Failed", true), with_index("7", "Succeeded", true), with_index("3", "Succeeded", false)];
        let recorded = Indexes::parse("0", 5);
        assert_eq!(completed_indexes(&recorded, &all, 5).to_string(), "0-1", "failed, out-of-range and untracked pods add nothing");
    }
}

//! `backoffLimitPerIndex` for Indexed jobs: each index retries on its own, with its own backoff,
//! until it has failed more than the limit (or a `FailIndex` rule matched), and then it is a
//! failed index, reported in `status.failedIndexes`.
//!
//! Upstream carries an index's failure count from pod to pod in an annotation and delays
//! releasing the last failed pod until its replacement exists; here the count is read from the
//! index's failed pods themselves (a job keeps its pods until it is deleted), so there is nothing
//! to carry. The annotation is still written on replacements, for people reading them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::PodFailurePolicy;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use super::indexes::Indexes;
use super::policy::{self, Judgement};
use super::{backoff, pods};

/// How many times an index has failed so far, on the pods that replace a failed one.
pub const FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-failure-count";

/// One index's failures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexFailures {
    /// Failures that count (a pod failure policy may ignore some).
    pub count: u32,
    /// When the latest counted failure happened.
    pub last: Option<Timestamp>,
    /// A `FailIndex` rule matched one of them.
    pub fail_index: bool,
}

/// The failures of every index below `completions`, from the job's pods.
pub fn failures(all: &[Arc<Pod>], completions: u32, policy: Option<&PodFailurePolicy>, replace_only_failed: bool) -> BTreeMap<u32, IndexFailures> {
    let mut by_index: BTreeMap<u32, IndexFailures> = BTreeMap::new();
    for pod in all.iter().filter(|p| pods::is_failed(p, replace_only_failed)) {
        let Some(index) = pods::completion_index(pod).filter(|i| *i < completions) else { continue };
        let judgement = policy::judge(policy, pod);
        if !judgement.counts() {
            continue;
        }
        let entry = by_index.entry(index).or_default();
        entry.count += 1;
        entry.last = entry.last.max(pods::finish_time(pod));
        entry.fail_index |= judgement == Judgement::FailIndex;
    }
    by_index
}

/// The failed indexes: those recorded before, plus those past `limit` or failed by a rule.
pub fn failed_indexes(recorded: &Indexes, by_index: &BTreeMap<u32, IndexFailures>, limit: i32) -> Indexes {
    let limit = u32::try_from(limit).unwrap_or(0);
    let mut failed = recorded.clone();
    for (index, f) in by_index {
        if f.fail_index || f.count > limit {
            failed.insert(*index);
        }
    }
    failed
}

/// Splits `wanted` indexes into those whose own backoff has passed and the shortest wait left.
pub fn ready_now(wanted: Vec<Option<u32>>, by_index: &BTreeMap<u32, IndexFailures>, now: Timestamp) -> (Vec<Option<u32>>, Option<Duration>) {
    let mut wait: Option<Duration> = None;
    let mut ready = Vec::new();
    for index in wanted {
        let left = index.and_then(|i| by_index.get(&i)).map_or(Duration::ZERO, |f| backoff::remaining(f.count, f.last, now));
        if left.is_zero() {
            ready.push(index);
        } else {
            wait = Some(wait.map_or(left, |w| w.min(left)));
        }
    }
    (ready, wait)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::batch::v1::{PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyRule};
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStateTerminated, ContainerStatus, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn failed(index: &str, code: i32, second: i64) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta { annotations: Some([(pods::COMPLETION_INDEX.to_string(), index.to_string())].into()), ..Default::default() },
            spec: None,
            status: Some(PodStatus {
                phase: Some("Failed".into()),
                container_statuses: Some(vec![ContainerStatus {
                    name: "c".into(),
                    state: Some(ContainerState {
                        terminated: Some(ContainerStateTerminated { exit_code: code, finished_at: Some(Time(at(second))), ..Default::default() }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        })
    }

    #[test]
    fn index_failures_and_failed_indexes() {
        let rule = |action: &str, code: i32| PodFailurePolicyRule {
            action: action.into(),
            on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement { container_name: None, operator: "In".into(), values: vec![code] }),
            on_pod_conditions: None,
        };
        let policy = PodFailurePolicy { rules: vec![rule("FailIndex", 42), rule("Ignore", 9)] };
        let all = vec![failed("0", 1, 10), failed("0", 1, 20), failed("1", 42, 5), failed("2", 9, 5), failed("7", 1, 5)];
        let by_index = failures(&all, 4, Some(&policy), false);
        assert_eq!(by_index.get(&0), Some(&IndexFailures { count: 2, last: Some(at(20)), fail_index: false }));
        assert!(by_index.get(&1).is_some_and(|f| f.fail_index), "FailIndex rule");
        assert_eq!(by_index.get(&2), None, "ignored failures do not count");
        assert_eq!(by_index.get(&7), None, "beyond completions");

        let cases = [("limit 1: index 0 failed twice", 1, "0-1"), ("limit 2: only the rule", 2, "1"), ("recorded stay failed", 5, "1,3")];
        for (name, limit, want) in cases {
            let recorded = if limit == 5 { Indexes::parse("3", 4) } else { Indexes::default() };
            assert_eq!(failed_indexes(&recorded, &by_index, limit).to_string(), want, "{name}");
        }
    }

    #[test]
    fn per_index_backoff() {
        let by_index: BTreeMap<u32, IndexFailures> = [(0, IndexFailures { count: 2, last: Some(at(100)), fail_index: false })].into();
        let (ready, wait) = ready_now(vec![Some(0), Some(1)], &by_index, at(105));
        assert_eq!(ready, vec![Some(1)], "index 1 never failed");
        assert_eq!(wait, Some(Duration::from_secs(15)), "index 0 waits 20 s after its second failure");
        let (ready, wait) = ready_now(vec![Some(0)], &by_index, at(200));
        assert_eq!((ready, wait), (vec![Some(0)], None));
    }
}

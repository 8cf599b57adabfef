//! The delay before a job replaces failed pods: 10 s after the first failure since the last
//! success, doubling with each further one up to upstream's cap.
//!
//! Upstream keeps the failure count in memory; here it is read from the pods themselves (the
//! failed pods finished after the latest success), so a restart does not forget it.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use super::pods;

/// The first delay.
pub const INITIAL: Duration = Duration::from_secs(10);
/// The longest delay (upstream's `MaxJobPodFailureBackOff`).
pub const MAX: Duration = Duration::from_secs(10 * 60);

/// The delay after `failures` consecutive failures (none after no failure).
pub fn delay(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let doublings = failures - 1;
    // 2^6 × 10 s already passes the cap; stop before the shift could overflow.
    if doublings >= 6 {
        return MAX;
    }
    (INITIAL * (1u32 << doublings)).min(MAX)
}

/// How long to wait still, given `failures` consecutive failures, the last at `last_failure`.
pub fn remaining(failures: u32, last_failure: Option<Timestamp>, now: Timestamp) -> Duration {
    let Some(last) = last_failure else { return Duration::ZERO };
    let wait = delay(failures);
    let elapsed = Duration::try_from(now.duration_since(last)).unwrap_or(Duration::ZERO);
    wait.saturating_sub(elapsed)
}

/// Consecutive failures among `pods` since the latest success, and when the last one happened.
pub fn failures_since_success<'a>(all: impl IntoIterator<Item = &'a Pod>, only_failed_phase: bool) -> (u32, Option<Timestamp>) {
    let mut succeeded: Option<Timestamp> = None;
    let mut failed: Vec<Timestamp> = Vec::new();
    for pod in all {
        let Some(at) = pods::finish_time(pod) else { continue };
        if pods::is_succeeded(pod) {
            succeeded = succeeded.max(Some(at));
        } else if pods::is_failed(pod, only_failed_phase) {
            failed.push(at);
        }
    }
    let after: Vec<Timestamp> = failed.into_iter().filter(|at| succeeded.is_none_or(|s| *at > s)).collect();
    (u32::try_from(after.len()).unwrap_or(u32::MAX), after.iter().max().copied())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStateTerminated, ContainerStatus, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn finished(phase: &str, second: i64) -> Pod {
        Pod {
            status: Some(PodStatus {
                phase: Some(phase.into()),
                container_statuses: Some(vec![ContainerStatus {
                    state: Some(ContainerState {
                        terminated: Some(ContainerStateTerminated { finished_at: Some(Time(at(second))), ..Default::default() }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn delays_double_up_to_the_cap() {
        let cases = [("none", 0, 0), ("first", 1, 10), ("second", 2, 20), ("fourth", 4, 80), ("sixth", 6, 320), ("seventh capped", 7, 600), ("many", 1000, 600)];
        for (name, failures, want) in cases {
            assert_eq!(delay(failures), Duration::from_secs(want), "{name}");
        }
    }

    #[test]
    fn remaining_time() {
        let cases = [
            ("no failure", 0, None, 100, 0),
            ("just failed", 1, Some(100), 100, 10),
            ("partly waited", 2, Some(100), 105, 15),
            ("waited out", 1, Some(100), 200, 0),
            ("clock behind", 1, Some(100), 90, 10),
        ];
        for (name, failures, last, now, want) in cases {
            assert_eq!(remaining(failures, last.map(at), at(now)), Duration::from_secs(want), "{name}");
        }
    }

    #[test]
    fn failures_after_last_success() {
        let cases = [
            ("nothing", vec![], 0, None),
            ("two failures", vec![finished("Failed", 10), finished("Failed", 20)], 2, Some(20)),
            ("success resets", vec![finished("Failed", 10), finished("Succeeded", 15), finished("Failed", 20)], 1, Some(20)),
            ("only successes", vec![finished("Succeeded", 15)], 0, None),
        ];
        for (name, all, count, last) in cases {
            assert_eq!(failures_since_success(&all, false), (count, last.map(at)), "{name}");
        }
    }
}

//! `spec.activeDeadlineSeconds`: a pod active on the node longer than that, counted from its
//! `status.startTime`, is failed with reason DeadlineExceeded and its containers are killed.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Pod;

pub const REASON: &str = "DeadlineExceeded";
pub const MESSAGE: &str = "Pod was active on the node longer than the specified deadline";

/// When the pod's deadline runs out; `None` without a deadline or before the pod has started.
pub fn deadline(pod: &Pod) -> Option<Timestamp> {
    let seconds = pod.spec.as_ref()?.active_deadline_seconds?;
    let started = pod.status.as_ref()?.start_time.as_ref()?.0;
    started.checked_add(SignedDuration::from_secs(seconds)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(deadline: Option<i64>, started: Option<i64>) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": { "name": "p" },
            "spec": { "containers": [], "activeDeadlineSeconds": deadline },
            "status": { "startTime": started.map(|s| Timestamp::from_second(s).map(|t| t.to_string()).unwrap_or_default()) },
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn deadlines() {
        let at = |s: i64| Timestamp::from_second(s).ok();
        assert_eq!(deadline(&pod(Some(30), Some(1_700_000_000))), at(1_700_000_030), "start + deadline");
        assert_eq!(deadline(&pod(None, Some(1_700_000_000))), None, "no deadline");
        assert_eq!(deadline(&pod(Some(30), None)), None, "not started yet");
    }
}

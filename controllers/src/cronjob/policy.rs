//! The cron job's pure decisions: what its jobs are called, whether a new one may start beside
//! the running ones, which finished jobs fall out of the history, and how a job has finished.

use std::cmp::Ordering;
use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::Timestamp;

/// The annotation recording when a job was scheduled to start.
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// Upstream's defaults for the history limits (the apiserver fills them in too).
pub const DEFAULT_SUCCESSFUL_HISTORY: i32 = 3;
pub const DEFAULT_FAILED_HISTORY: i32 = 1;

/// A job's name for one scheduled time: deterministic, so a time is never started twice.
pub fn job_name(cron_job: &str, scheduled: Timestamp) -> String {
    format!("{cron_job}-{}", scheduled.as_second().div_euclid(60))
}

/// How a job ended, from its terminal condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    Complete,
    Failed,
}

impl Finished {
    pub fn of(job: &Job) -> Option<Self> {
        let conditions = job.status.as_ref()?.conditions.as_ref()?;
        conditions.iter().filter(|c| c.status == "True").find_map(|c| match c.type_.as_str() {
            "Complete" => Some(Finished::Complete),
            "Failed" => Some(Finished::Failed),
            _ => None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Finished::Complete => "Complete",
            Finished::Failed => "Failed",
        }
    }
}

/// What to do about a due start time, given `spec.concurrencyPolicy` and how many jobs run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Start the new job.
    Now,
    /// Forbid: a job is still running, so this time is skipped.
    Skip,
    /// Replace: delete the running jobs, then start the new one.
    ReplaceRunning,
}

pub fn decide(policy: Option<&str>, running: usize) -> Start {
    match (policy, running) {
        (_, 0) => Start::Now,
        (Some("Forbid"), _) => Start::Skip,
        (Some("Replace"), _) => Start::ReplaceRunning,
        // Allow, the default; an unknown value is rejected by the apiserver.
        _ => Start::Now,
    }
}

/// The finished jobs beyond the history limits, oldest first: `limit` of each kind are kept,
/// the newest by start time (a job that never started counts as newest, like upstream).
pub fn beyond_history(jobs: &[Arc<Job>], successful_limit: Option<i32>, failed_limit: Option<i32>) -> Vec<Arc<Job>> {
    let mut doomed = Vec::new();
    for (kind, limit) in [
        (Finished::Complete, successful_limit.unwrap_or(DEFAULT_SUCCESSFUL_HISTORY)),
        (Finished::Failed, failed_limit.unwrap_or(DEFAULT_FAILED_HISTORY)),
    ] {
        let mut finished: Vec<&Arc<Job>> = jobs.iter().filter(|j| Finished::of(j) == Some(kind)).collect();
        let keep = usize::try_from(limit).unwrap_or(0);
        if finished.len() <= keep {
            continue;
        }
        finished.sort_by(|a, b| by_start_time(a, b));
        let surplus = finished.len() - keep;
        doomed.extend(finished.into_iter().take(surplus).cloned());
    }
    doomed
}

fn by_start_time(a: &Job, b: &Job) -> Ordering {
    let start = |j: &Job| j.status.as_ref().and_then(|s| s.start_time.as_ref()).map(|t| t.0);
    let name = |j: &Job| j.metadata.name.clone().unwrap_or_default();
    match (start(a), start(b)) {
        (Some(x), Some(y)) if x != y => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        _ => name(a).cmp(&name(b)),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn job(name: &str, finished: Option<&str>, start: Option<i64>) -> Arc<Job> {
        let conditions = finished.map(|type_| vec![JobCondition { type_: type_.into(), status: "True".into(), ..Default::default() }]);
        let start_time = start.and_then(|s| Timestamp::from_second(s).ok()).map(Time);
        let mut job = Job::default();
        job.metadata.name = Some(name.into());
        job.status = Some(JobStatus { conditions, start_time, ..Default::default() });
        Arc::new(job)
    }

    #[test]
    fn job_names_count_minutes_since_the_epoch() {
        let cases = [
            ("epoch", 0, "hello-0"),
            ("a minute", 60, "hello-1"),
            ("mid-minute rounds down", 119, "hello-1"),
            ("2026", 1_767_225_600, "hello-29453760"),
        ];
        for (name, seconds, want) in cases {
            let t = Timestamp::from_second(seconds).unwrap_or(Timestamp::UNIX_EPOCH);
            assert_eq!(job_name("hello", t), want, "{name}");
        }
    }

    #[test]
    fn concurrency_decisions() {
        let cases = [
            ("nothing running, forbid", Some("Forbid"), 0, Start::Now),
            ("running, forbid", Some("Forbid"), 1, Start::Skip),
            ("running, replace", Some("Replace"), 2, Start::ReplaceRunning),
            ("nothing running, replace", Some("Replace"), 0, Start::Now),
            ("running, allow", Some("Allow"), 3, Start::Now),
            ("running, default is allow", None, 1, Start::Now),
        ];
        for (name, policy, running, want) in cases {
            assert_eq!(decide(policy, running), want, "{name}");
        }
    }

    #[test]
    fn finished_states() {
        assert_eq!(Finished::of(&job("a", Some("Complete"), None)), Some(Finished::Complete));
        assert_eq!(Finished::of(&job("a", Some("Failed"), None)), Some(Finished::Failed));
        assert_eq!(Finished::of(&job("a", Some("Suspended"), None)), None, "not terminal");
        assert_eq!(Finished::of(&job("a", None, None)), None);
    }

    #[test]
    fn history_cleanup_selection() {
        let names = |jobs: Vec<Arc<Job>>| jobs.iter().map(|j| j.metadata.name.clone().unwrap_or_default()).collect::<Vec<_>>();
        let mixed = vec![
            job("ok-3", Some("Complete"), Some(300)),
            job("ok-1", Some("Complete"), Some(100)),
            job("running", None, Some(50)),
            job("ok-2", Some("Complete"), Some(200)),
            job("bad-1", Some("Failed"), Some(100)),
            job("bad-2", Some("Failed"), Some(200)),
            job("ok-unstarted", Some("Complete"), None),
        ];
        // (name, successful limit, failed limit, deleted jobs)
        type Case = (&'static str, Option<i32>, Option<i32>, Vec<&'static str>);
        let cases: [Case; 5] = [
            ("defaults keep 3 successful and 1 failed", None, None, vec!["ok-1", "bad-1"]),
            ("keep one of each", Some(1), Some(1), vec!["ok-1", "ok-2", "ok-3", "bad-1"]),
            ("keep none", Some(0), Some(0), vec!["ok-1", "ok-2", "ok-3", "ok-unstarted", "bad-1", "bad-2"]),
            ("generous limits", Some(10), Some(10), vec![]),
            ("negative is none", Some(-1), Some(5), vec!["ok-1", "ok-2", "ok-3", "ok-unstarted"]),
        ];
        for (name, successful, failed, want) in cases {
            assert_eq!(names(beyond_history(&mixed, successful, failed)), want, "{name}");
        }
    }
}

//! Job conditions: the interim SuccessCriteriaMet / FailureTarget, the terminal Complete /
//! Failed, and Suspended, with upstream's types, reasons and messages.

use k8s_openapi::api::batch::v1::{Job, JobCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

pub const COMPLETE: &str = "Complete";
pub const FAILED: &str = "Failed";
pub const SUCCESS_CRITERIA_MET: &str = "SuccessCriteriaMet";
pub const FAILURE_TARGET: &str = "FailureTarget";
pub const SUSPENDED: &str = "Suspended";

/// A condition about to be set: its type, reason and message (status True unless stated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub type_: &'static str,
    pub reason: String,
    pub message: String,
}

impl Verdict {
    pub fn failure(reason: &str, message: &str) -> Self {
        Self { type_: FAILURE_TARGET, reason: reason.to_string(), message: message.to_string() }
    }

    pub fn completions_reached() -> Self {
        Self { type_: SUCCESS_CRITERIA_MET, reason: "CompletionsReached".to_string(), message: "Reached expected number of succeeded pods".to_string() }
    }

    pub fn backoff_limit() -> Self {
        Self::failure("BackoffLimitExceeded", "Job has reached the specified backoff limit")
    }

    pub fn deadline() -> Self {
        Self::failure("DeadlineExceeded", "Job was active longer than specified deadline")
    }

    /// The terminal condition this interim one leads to, with the same reason and message.
    pub fn terminal(&self) -> Self {
        let type_ = if self.type_ == SUCCESS_CRITERIA_MET { COMPLETE } else { FAILED };
        Self { type_, ..self.clone() }
    }

    pub fn is_success(&self) -> bool {
        matches!(self.type_, SUCCESS_CRITERIA_MET | COMPLETE)
    }

    /// The interim verdict already recorded on the job, if any.
    pub fn recorded(job: &Job) -> Option<Self> {
        [SUCCESS_CRITERIA_MET, FAILURE_TARGET].into_iter().find_map(|type_| {
            let c = find(job, type_).filter(|c| c.status == "True")?;
            Some(Self { type_, reason: c.reason.clone().unwrap_or_default(), message: c.message.clone().unwrap_or_default() })
        })
    }
}

pub fn find<'a>(job: &'a Job, type_: &str) -> Option<&'a JobCondition> {
    job.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

/// Complete or Failed is True: the job is done and nothing more happens to it.
pub fn is_finished(job: &Job) -> bool {
    [COMPLETE, FAILED].iter().any(|t| find(job, t).is_some_and(|c| c.status == "True"))
}

/// Sets a condition like upstream's ensureJobConditionStatus: replaced when status, reason or
/// message differ; a False condition is never added where none was. Returns whether it changed.
pub fn ensure(conditions: &mut Vec<JobCondition>, type_: &str, status: &str, reason: &str, message: &str, now: Timestamp) -> bool {
    let fresh = JobCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) if c.status != status || c.reason.as_deref() != Some(reason) || c.message.as_deref() != Some(message) => {
            *c = fresh;
            true
        }
        Some(_) => false,
        None if status != "False" => {
            conditions.push(fresh);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::batch::v1::JobStatus;

    use super::*;

    fn job(conditions: &[(&str, &str)]) -> Job {
        Job {
            status: Some(JobStatus {
                conditions: Some(conditions.iter().map(|(t, s)| JobCondition { type_: t.to_string(), status: s.to_string(), ..Default::default() }).collect()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn finished_jobs() {
        let cases = [
            ("fresh", job(&[]), false),
            ("complete", job(&[(SUCCESS_CRITERIA_MET, "True"), (COMPLETE, "True")]), true),
            ("failed", job(&[(FAILURE_TARGET, "True"), (FAILED, "True")]), true),
            ("only interim", job(&[(FAILURE_TARGET, "True")]), false),
            ("suspended", job(&[(SUSPENDED, "True")]), false),
        ];
        for (name, j, want) in cases {
            assert_eq!(is_finished(&j), want, "{name}");
        }
    }

    #[test]
    fn interim_leads_to_terminal() {
        assert_eq!(Verdict::completions_reached().terminal().type_, COMPLETE);
        assert_eq!(Verdict::completions_reached().terminal().reason, "CompletionsReached");
        let failed = Verdict::backoff_limit().terminal();
        assert_eq!((failed.type_, failed.reason.as_str()), (FAILED, "BackoffLimitExceeded"));
        assert_eq!(Verdict::recorded(&job(&[(FAILURE_TARGET, "True")])).map(|v| v.type_), Some(FAILURE_TARGET));
        assert_eq!(Verdict::recorded(&job(&[(FAILURE_TARGET, "False")])), None);
    }

    #[test]
    fn ensure_transitions() {
        let now = Timestamp::UNIX_EPOCH;
        let mut list = Vec::new();
        assert!(!ensure(&mut list, SUSPENDED, "False", "JobResumed", "Job resumed", now), "False is not added");
        assert!(list.is_empty());
        assert!(ensure(&mut list, SUSPENDED, "True", "JobSuspended", "Job suspended", now), "added");
        assert!(!ensure(&mut list, SUSPENDED, "True", "JobSuspended", "Job suspended", now), "unchanged");
        assert!(ensure(&mut list, SUSPENDED, "False", "JobResumed", "Job resumed", now), "flipped");
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].status, "False");
    }
}

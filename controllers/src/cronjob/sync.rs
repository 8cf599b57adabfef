//! One sync of one cron job: bring `status.active` in line with its jobs, start the job for the
//! most recent due time (if the policy allows), prune the history, write the status, and come
//! back just after the next scheduled time. Idempotent: a scheduled time maps to one job name.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::Api;
use kube::runtime::controller::Action;

use super::policy::{self, Finished, Start};
use super::schedule::{self, Schedule};
use super::writes::{self, Created, Target};
use super::{Context, Error};
use crate::ownership;

pub async fn reconcile(cron_job: Arc<CronJob>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = cron_job.metadata.namespace.clone().ok_or(Error::MissingField("namespace"))?;
    let name = cron_job.metadata.name.clone().ok_or(Error::MissingField("name"))?;
    let uid = cron_job.metadata.uid.clone().ok_or(Error::MissingField("uid"))?;
    let created = cron_job.metadata.creation_timestamp.as_ref().map(|t| t.0).ok_or(Error::MissingField("creationTimestamp"))?;
    let owner = ownership::controller_reference("batch/v1", "CronJob", &cron_job.metadata).ok_or(Error::MissingField("uid"))?;
    let target = Target { cron_job: &cron_job, ns: &ns, name: &name, uid: &uid, regarding: cron_job.object_ref(&()), owner };

    let children: Vec<Arc<Job>> = ctx
        .jobs
        .state()
        .into_iter()
        .filter(|j| j.metadata.namespace.as_deref() == Some(ns.as_str()))
        .filter(|j| ownership::controller_of(&j.metadata).is_some_and(|o| o.uid == uid))
        .collect();
    let mut status = cron_job.status.clone().unwrap_or_default();
    track_children(&target, &ctx, &children, &mut status).await?;
    drop_missing(&target, &ctx, &children, &mut status).await?;

    let (requeue, failure) = if cron_job.metadata.deletion_timestamp.is_some() {
        (None, None)
    } else {
        match start_due_job(&target, &ctx, created, &mut status).await {
            Ok(requeue) => (requeue, None),
            Err(e) => (None, Some(e)),
        }
    };
    if cron_job.metadata.deletion_timestamp.is_none() {
        prune_history(&target, &ctx, &children, &mut status).await;
    }
    writes::write_status(&target, &ctx, status).await?;
    match (failure, requeue) {
        (Some(e), _) => Err(e),
        (None, Some(after)) => Ok(Action::requeue(after)),
        (None, None) => Ok(Action::await_change()),
    }
}

fn active_uids(status: &CronJobStatus) -> HashSet<String> {
    status.active.iter().flatten().filter_map(|r| r.uid.clone()).collect()
}

fn remove_active(status: &mut CronJobStatus, uid: Option<&str>) {
    if let Some(active) = status.active.as_mut() {
        active.retain(|r| r.uid.as_deref() != uid);
    }
}

/// Finished jobs leave the active list (SawCompletedJob); the newest completion becomes
/// `lastSuccessfulTime`; an unfinished job the list does not know is reported (UnexpectedJob).
async fn track_children(target: &Target<'_>, ctx: &Context, children: &[Arc<Job>], status: &mut CronJobStatus) -> Result<(), Error> {
    let mut fresh_active: Option<HashSet<String>> = None;
    for job in children {
        let job_uid = job.metadata.uid.clone().unwrap_or_default();
        let job_name = job.metadata.name.clone().unwrap_or_default();
        let listed = active_uids(status).contains(&job_uid);
        let finished = Finished::of(job);
        match finished {
            Some(how) if listed => {
                remove_active(status, Some(&job_uid));
                let note = format!("Saw completed job: {job_name}, condition: {}", how.as_str());
                ctx.events.normal(&target.regarding, Some(job.object_ref(&())), "SawCompletedJob", "Track", note).await;
            }
            None if !listed => {
                // The cached cron job may lag behind its own status write: ask the apiserver.
                if fresh_active.is_none() {
                    let api: Api<CronJob> = Api::namespaced(ctx.client.clone(), target.ns);
                    let fresh = api.get_opt(target.name).await.map_err(target.error("get cron job"))?;
                    fresh_active = Some(fresh.and_then(|c| c.status).map(|s| active_uids(&s)).unwrap_or_default());
                }
                if !fresh_active.as_ref().is_some_and(|a| a.contains(&job_uid)) {
                    let note = format!("Saw a job that the controller did not create or forgot: {job_name}");
                    ctx.events.warning(&target.regarding, Some(job.object_ref(&())), "UnexpectedJob", "Track", note).await;
                }
            }
            _ => {}
        }
        let completed = job.status.as_ref().and_then(|s| s.completion_time.clone());
        if let (Some(Finished::Complete), Some(t)) = (finished, completed)
            && status.last_successful_time.as_ref().is_none_or(|last| last.0 < t.0)
        {
            status.last_successful_time = Some(t);
        }
    }
    Ok(())
}

/// Active jobs that no longer exist leave the list (MissingJob). The cache may lag, so the
/// apiserver has the last word before one is dropped.
async fn drop_missing(target: &Target<'_>, ctx: &Context, children: &[Arc<Job>], status: &mut CronJobStatus) -> Result<(), Error> {
    let known: HashSet<String> = children.iter().filter_map(|j| j.metadata.uid.clone()).collect();
    let listed: Vec<ObjectReference> = status.active.clone().unwrap_or_default();
    for reference in listed.iter().filter(|r| r.uid.as_ref().is_none_or(|u| !known.contains(u))) {
        let job_name = reference.name.clone().unwrap_or_default();
        let stored = writes::get_job(target, ctx, &job_name).await?;
        if stored.is_some_and(|j| j.metadata.uid == reference.uid) {
            continue;
        }
        remove_active(status, reference.uid.as_deref());
        let note = format!("Active job went missing: {job_name}");
        ctx.events.normal(&target.regarding, Some(reference.clone()), "MissingJob", "Track", note).await;
    }
    Ok(())
}

/// Starts the job for the most recent due time if it is not started yet and the policy allows;
/// returns when to look again (None: only when the cron job changes).
async fn start_due_job(target: &Target<'_>, ctx: &Context, created: Timestamp, status: &mut CronJobStatus) -> Result<Option<Duration>, Error> {
    let spec = target.cron_job.spec.clone().unwrap_or_default();
    let parsed = Schedule::parse(&spec.schedule, spec.time_zone.as_deref());
    if let Err(e @ schedule::Error::UnknownTimeZone { .. }) = &parsed {
        ctx.events.warning(&target.regarding, None, "UnknownTimeZone", "Schedule", e.to_string()).await;
        return Ok(None);
    }
    if spec.suspend == Some(true) {
        return Ok(None);
    }
    let schedule = match parsed {
        Ok(s) => s,
        Err(e) => {
            ctx.events.warning(&target.regarding, None, "UnparseableSchedule", "Schedule", e.to_string()).await;
            return Ok(None);
        }
    };
    let now = Timestamp::now();
    let earliest = status.last_schedule_time.as_ref().map_or(created, |t| t.0);
    let next = |s: &Schedule| s.until_next(now).ok();
    let unmet = match schedule.most_recent_unmet(earliest, spec.starting_deadline_seconds, now) {
        Ok(u) => u,
        Err(e) => {
            ctx.events.warning(&target.regarding, None, "InvalidSchedule", "Schedule", format!("invalid schedule: {} : {e}", spec.schedule)).await;
            return Ok(None);
        }
    };
    let Some(unmet) = unmet else { return Ok(next(&schedule)) };
    if unmet.missed > schedule::MISSED_TIMES_WARNING {
        let note = format!("too many missed start times: {}. Set or decrease .spec.startingDeadlineSeconds or check clock skew", unmet.missed);
        ctx.events.warning(&target.regarding, None, "TooManyMissedTimes", "Schedule", note).await;
    }
    if let Some(seconds) = spec.starting_deadline_seconds
        && unmet.time.as_second().saturating_add(seconds) < now.as_second()
    {
        let note = format!("Missed scheduled time to start a job: {}", unmet.time.strftime("%a, %d %b %Y %H:%M:%S %z"));
        ctx.events.warning(&target.regarding, None, "MissSchedule", "Schedule", note).await;
        return Ok(next(&schedule));
    }
    let job_name = policy::job_name(target.name, unmet.time);
    let already = status.active.iter().flatten().any(|r| r.name.as_deref() == Some(job_name.as_str()));
    if already || status.last_schedule_time.as_ref().is_some_and(|t| t.0 == unmet.time) {
        return Ok(next(&schedule));
    }
    let running = status.active.as_ref().map_or(0, Vec::len);
    match policy::decide(spec.concurrency_policy.as_deref(), running) {
        Start::Now => {}
        Start::Skip => {
            let note = "Not starting job because prior execution is running and concurrency policy is Forbid".to_string();
            ctx.events.normal(&target.regarding, None, "JobAlreadyActive", "Schedule", note).await;
            return Ok(next(&schedule));
        }
        Start::ReplaceRunning => {
            for reference in status.active.clone().unwrap_or_default() {
                writes::delete_job(target, ctx, &reference).await?;
                remove_active(status, reference.uid.as_deref());
            }
        }
    }
    let job = writes::job_for(target, &schedule, unmet.time);
    let stored = match writes::create_job(target, ctx, &job).await? {
        Created::NamespaceTerminating => return Ok(None),
        Created::New(stored) => {
            let note = format!("Created job {job_name}");
            ctx.events.normal(&target.regarding, Some(stored.object_ref(&())), "SuccessfulCreate", "Create", note).await;
            stored
        }
        Created::Existing(stored) => {
            let ours = ownership::controller_of(&stored.metadata).is_some_and(|o| o.uid == target.uid);
            if !ours {
                let note = format!("Error creating job: a job named {job_name} exists and is not controlled by this CronJob");
                ctx.events.warning(&target.regarding, None, "FailedCreate", "Create", note).await;
                return Ok(next(&schedule));
            }
            stored
        }
    };
    // An earlier sync may have created it and lost its status write: record it now.
    let listed = stored.metadata.uid.as_ref().is_some_and(|u| active_uids(status).contains(u));
    if !listed && Finished::of(&stored).is_none() {
        status.active.get_or_insert_default().push(stored.object_ref(&()));
    }
    status.last_schedule_time = Some(Time(unmet.time));
    Ok(next(&schedule))
}

/// Deletes finished jobs beyond the history limits; a failure is reported and retried later.
async fn prune_history(target: &Target<'_>, ctx: &Context, children: &[Arc<Job>], status: &mut CronJobStatus) {
    let spec = target.cron_job.spec.clone().unwrap_or_default();
    for job in policy::beyond_history(children, spec.successful_jobs_history_limit, spec.failed_jobs_history_limit) {
        if job.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if writes::delete_job(target, ctx, &job.object_ref(&())).await.is_ok() {
            remove_active(status, job.metadata.uid.as_deref());
        }
    }
}

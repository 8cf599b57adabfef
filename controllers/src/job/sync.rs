//! One sync of one job: claim its pods, judge it (done, failed, suspended), create or delete
//! pods, then account for finished pods and write the status. Idempotent: every decision is
//! derived from the job, its recorded status and the pod cache.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use super::conditions::{self, Verdict};
use super::indexes::Indexes;
use super::plan::{self, Plan, Shape};
use super::track::{self, Rules};
use super::{Context, Error, backoff, per_index, policy, pods, writes};
use crate::ownership::{self, Claim};
use crate::replicaset::Seen;

/// Upstream's default `backoffLimit`.
const DEFAULT_BACKOFF_LIMIT: i32 = 6;
/// The `managedBy` value that means this controller.
const MANAGED_BY_US: &str = "kubernetes.io/job-controller";

/// The job being synced, as the writes need it.
pub struct Target<'a> {
    pub job: &'a Job,
    pub ns: &'a str,
    pub name: &'a str,
    /// `namespace/name`: the expectations key and the error label.
    pub key: String,
    pub regarding: ObjectReference,
    pub owner: OwnerReference,
}

impl Target<'_> {
    pub fn error(&self, action: &str) -> impl FnOnce(kube::Error) -> Error + '_ {
        let action = action.to_string();
        move |source| Error::Api { action, job: self.key.clone(), source }
    }
}

pub async fn reconcile(job: Arc<Job>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = job.metadata.namespace.clone().ok_or(Error::MissingField("namespace"))?;
    let name = job.metadata.name.clone().ok_or(Error::MissingField("name"))?;
    let uid = job.metadata.uid.clone().ok_or(Error::MissingField("uid"))?;
    let owner = ownership::controller_reference("batch/v1", "Job", &job.metadata).ok_or(Error::MissingField("uid"))?;
    let target = Target { job: &job, ns: &ns, name: &name, key: format!("{ns}/{name}"), regarding: job.object_ref(&()), owner };
    let spec = job.spec.clone().unwrap_or_default();
    if spec.managed_by.as_deref().is_some_and(|m| m != MANAGED_BY_US) {
        return Ok(Action::await_change());
    }
    if conditions::is_finished(&job) {
        // Pods left with a finalizer are released by the orphan sweep.
        ctx.expectations.forget(&target.key);
        ctx.removals.forget(&target.key);
        return Ok(Action::await_change());
    }
    let indexed = match spec.completion_mode.as_deref() {
        None | Some("NonIndexed") => false,
        Some("Indexed") => true,
        Some(_) => {
            ctx.events.warning(&target.regarding, None, "UnknownCompletionMode", "Sync", "Skipped Job sync because completion mode is unknown".into()).await;
            return Ok(Action::await_change());
        }
    };
    let deleting = job.metadata.deletion_timestamp.is_some();
    let now = Timestamp::now();

    // Check expectations before reading the cache, so pods observed in between are not missed.
    let satisfied = ctx.expectations.satisfied(&target.key, Instant::now(), |pod| Seen::in_store(&ctx.pods, pod));
    let all = claim_pods(&target, &ctx, &uid, deleting).await?;
    let tracked: HashSet<String> = all.iter().filter(|p| pods::has_finalizer(p)).map(|p| pods::uid(p).to_string()).collect();
    let removing = ctx.removals.outstanding(&target.key, |uid| tracked.contains(uid));

    let old = job.status.clone().unwrap_or_default();
    let mut status = old.clone();
    let uncounted = old.uncounted_terminated_pods.clone().unwrap_or_default();
    let uncounted_succeeded: HashSet<String> = uncounted.succeeded.into_iter().flatten().collect();
    let uncounted_failed: HashSet<String> = uncounted.failed.into_iter().flatten().collect();
    let replace_only_failed = spec.pod_replacement_policy.as_deref() == Some("Failed");
    let completions = spec.completions.map(|c| u32::try_from(c).unwrap_or(0));
    let index_limit = if indexed { Some(completions.unwrap_or(0)) } else { None };
    let policy = spec.pod_failure_policy.as_ref();
    let counts = |pod: &Pod| policy::judge(policy, pod).counts();

    let active: Vec<Arc<Pod>> = all.iter().filter(|p| pods::is_active(p)).cloned().collect();
    let mut active_count = active.len();
    let mut terminating = all.iter().filter(|p| pods::is_terminating(p)).count();
    let mut ready = active.iter().filter(|p| crate::replicaset::is_ready(p)).count();

    // What the counters will say once every finished pod is accounted for.
    let preview = Rules {
        indexed: index_limit,
        replace_only_failed,
        release_all: false,
        failing: false,
        uncounted_succeeded: &uncounted_succeeded,
        uncounted_failed: &uncounted_failed,
        removing: &removing,
        counts: &counts,
    };
    let fresh = track::settle(&all, &preview);
    let as_i32 = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let mut succeeded = old.succeeded.unwrap_or(0).saturating_add(as_i32(uncounted_succeeded.len() + fresh.new_succeeded.len()));
    let failed = old.failed.unwrap_or(0).saturating_add(as_i32(uncounted_failed.len() + fresh.new_failed.len()));
    let completed = match index_limit {
        Some(limit) => {
            let done = track::completed_indexes(&Indexes::parse(old.completed_indexes.as_deref().unwrap_or(""), limit), &all, limit);
            succeeded = as_i32(done.len());
            Some(done)
        }
        None => None,
    };
    // With backoffLimitPerIndex: each index's failures, and the indexes that failed for good.
    let per_index = match (index_limit, spec.backoff_limit_per_index) {
        (Some(limit), Some(per)) => {
            let by_index = per_index::failures(&all, limit, policy, replace_only_failed);
            let recorded = Indexes::parse(old.failed_indexes.as_deref().unwrap_or(""), limit);
            let failed_indexes = per_index::failed_indexes(&recorded, &by_index, per);
            Some((by_index, failed_indexes))
        }
        _ => None,
    };

    let suspended = spec.suspend == Some(true);
    // The active deadline counts continuous activity, so a job being resumed starts afresh.
    let resuming = !suspended && conditions::find(&job, conditions::SUSPENDED).is_some_and(|c| c.status == "True");
    if status.start_time.is_none() && !suspended {
        status.start_time = Some(Time(now));
    }

    let mut requeue: Option<Duration> = None;
    let mut verdict = Verdict::recorded(&job);
    if verdict.is_none() {
        verdict = all.iter().filter(|p| pods::is_failed(p, replace_only_failed)).find_map(|p| policy::judge(policy, p).fail_job());
    }
    if verdict.is_none() {
        let limit = spec.backoff_limit.unwrap_or(DEFAULT_BACKOFF_LIMIT);
        if failed > limit || past_backoff_limit_on_failure(&spec, &all, limit) {
            verdict = Some(Verdict::backoff_limit());
        } else if let (Some(seconds), Some(start), false) = (spec.active_deadline_seconds, status.start_time.as_ref(), suspended || resuming) {
            let elapsed = now.as_second() - start.0.as_second();
            if elapsed >= seconds {
                verdict = Some(Verdict::deadline());
            } else {
                requeue = Some(Duration::from_secs(u64::try_from(seconds - elapsed).unwrap_or(1)));
            }
        }
    }
    if let (None, Some((_, failed_indexes)), Some(done), Some(total)) = (&verdict, &per_index, &completed, completions) {
        let too_many = spec.max_failed_indexes.is_some_and(|max| failed_indexes.len() > usize::try_from(max).unwrap_or(0));
        if too_many {
            verdict = Some(Verdict::failure("MaxFailedIndexesExceeded", "Job has exceeded the specified maximal number of failed indexes"));
        } else if !failed_indexes.is_empty() && failed_indexes.len() + done.len() >= usize::try_from(total).unwrap_or(0) {
            verdict = Some(Verdict::failure("FailedIndexes", "Job has failed indexes"));
        }
    }
    if let (None, Some(done), Some(total)) = (&verdict, &completed, completions) {
        verdict = policy::success(spec.success_policy.as_ref(), total, done);
    }

    let mut manage_error = None;
    let mut finishing = false;
    if let Some(v) = &verdict {
        // Stop everything still running; the finish waits until they are gone and counted.
        let (deleted, deleted_ready, error) = writes::delete_pods(&target, &ctx, &active, false).await;
        finishing = deleted == active_count && satisfied;
        active_count -= deleted;
        terminating += deleted;
        ready = ready.saturating_sub(deleted_ready);
        manage_error = error;
        tracing::debug!(job = %target.key, condition = v.type_, reason = %v.reason, "job has a verdict");
    } else {
        let mut managed = false;
        if satisfied && !deleting {
            managed = true;
            let shape = Shape {
                parallelism: spec.parallelism.unwrap_or(1),
                completions: spec.completions,
                indexed,
                suspended,
                replace_only_failed,
            };
            let empty = Indexes::default();
            let failed_indexes = per_index.as_ref().map_or(&empty, |(_, failed)| failed);
            match plan::plan(&shape, &active, terminating, succeeded, completed.as_ref().unwrap_or(&empty), failed_indexes) {
                Plan::Nothing => {}
                Plan::Delete(doomed) => {
                    let (deleted, deleted_ready, error) = writes::delete_pods(&target, &ctx, &doomed, true).await;
                    active_count -= deleted;
                    terminating += deleted;
                    ready = ready.saturating_sub(deleted_ready);
                    manage_error = error;
                }
                Plan::Create(indexes) => {
                    // Per-index backoff replaces the job-wide one.
                    let (indexes, wait) = match &per_index {
                        Some((by_index, _)) => per_index::ready_now(indexes, by_index, now),
                        None => {
                            let (failures, last) = backoff::failures_since_success(all.iter().map(AsRef::as_ref), replace_only_failed);
                            let wait = backoff::remaining(failures, last, now);
                            if wait.is_zero() { (indexes, None) } else { (Vec::new(), Some(wait)) }
                        }
                    };
                    if let Some(wait) = wait {
                        requeue = Some(requeue.map_or(wait, |r| r.min(wait)));
                    }
                    if !indexes.is_empty() {
                        let failure_counts = per_index.as_ref().map(|(by_index, _)| by_index);
                        let (created, error) = writes::create_pods(&target, &ctx, &indexes, failure_counts).await;
                        active_count += created;
                        manage_error = error;
                    }
                }
            }
        }
        let complete = match spec.completions {
            None => succeeded > 0 && active_count == 0,
            Some(c) => succeeded >= c && active_count == 0,
        };
        if complete {
            verdict = Some(Verdict::completions_reached());
            finishing = true;
        } else if managed {
            let list = status.conditions.get_or_insert_default();
            if suspended {
                if conditions::ensure(list, conditions::SUSPENDED, "True", "JobSuspended", "Job suspended", now) {
                    ctx.events.normal(&target.regarding, None, "Suspended", "Suspend", "Job suspended".into()).await;
                }
            } else if conditions::ensure(list, conditions::SUSPENDED, "False", "JobResumed", "Job resumed", now) {
                ctx.events.normal(&target.regarding, None, "Resumed", "Resume", "Job resumed".into()).await;
                // The active deadline counts continuous activity: it starts again on resume.
                status.start_time = Some(Time(now));
            }
        }
    }
    if !finishing {
        // Pods still to delete or to see in the cache: judge again on the next sync.
        verdict = None;
    }

    status.active = Some(as_i32(active_count));
    status.ready = Some(as_i32(ready));
    status.terminating = Some(as_i32(terminating));
    let rules = Rules { release_all: deleting || verdict.is_some(), failing: verdict.as_ref().is_some_and(|v| !v.is_success()), ..preview };
    let ledger = track::settle(&all, &rules);
    track::record(&mut status, &ledger);
    if let Some(done) = &completed {
        status.completed_indexes = Some(done.to_string());
        status.succeeded = Some(as_i32(done.len()));
    }
    if let Some((_, failed_indexes)) = &per_index {
        status.failed_indexes = Some(failed_indexes.to_string());
    }
    if let Some(v) = &verdict {
        let list = status.conditions.get_or_insert_default();
        conditions::ensure(list, v.type_, "True", &v.reason, &v.message, now);
    }

    // Step 1: the status names every pod about to lose its finalizer.
    let mut current = writes::write_status(&target, &ctx, &job, &old, status).await?;
    // Step 2: release the finalizers.
    let (released, release_error) = writes::release_finalizers(&target, &ctx, &ledger.release).await;
    // Step 3: pods without the finalizer move from uncounted into the counters.
    let mut status = current.status.clone().unwrap_or_default();
    let before = status.clone();
    let still_tracked = |uid: &str| tracked.contains(uid) && !removing.contains(uid) && !released.contains(uid);
    track::count_released(&mut status, still_tracked);
    // Step 4: finished once nothing is uncounted or still terminating.
    let mut finished = None;
    if let Some(v) = &verdict
        && !ledger.full
        && track::uncounted_len(&status) == 0
        && terminating == 0
        && release_error.is_none()
    {
        let terminal = v.terminal();
        let list = status.conditions.get_or_insert_default();
        conditions::ensure(list, terminal.type_, "True", &terminal.reason, &terminal.message, now);
        if terminal.is_success() {
            status.completion_time = Some(Time(now));
        }
        finished = Some(terminal);
    }
    if status != before {
        current = writes::write_status(&target, &ctx, &current, &before, status).await?;
    }
    if let Some(terminal) = finished {
        announce(&target, &ctx, &current, &terminal).await;
        ctx.expectations.forget(&target.key);
        ctx.removals.forget(&target.key);
        return Ok(Action::await_change());
    }
    if let Some(error) = manage_error.or(release_error) {
        return Err(error);
    }
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

/// The events upstream records when a job finishes.
async fn announce(target: &Target<'_>, ctx: &Context, job: &Job, terminal: &Verdict) {
    if terminal.is_success() {
        let spec = job.spec.as_ref();
        let succeeded = job.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0);
        if spec.and_then(|s| s.completions).is_some_and(|c| succeeded > c) {
            let note = "Too many succeeded pods running after completion count reached".to_string();
            ctx.events.warning(&target.regarding, None, "TooManySucceededPods", "Complete", note).await;
        }
        ctx.events.normal(&target.regarding, None, "Completed", "Complete", "Job completed".into()).await;
    } else {
        ctx.events.warning(&target.regarding, None, &terminal.reason, "Fail", terminal.message.clone()).await;
    }
}

/// `restartPolicy: OnFailure` pods restart in place; their restarts count against the limit.
fn past_backoff_limit_on_failure(spec: &k8s_openapi::api::batch::v1::JobSpec, all: &[Arc<Pod>], limit: i32) -> bool {
    if spec.template.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) != Some("OnFailure") {
        return false;
    }
    let restarts: i32 = all
        .iter()
        .filter_map(|p| p.status.as_ref())
        .filter(|s| matches!(s.phase.as_deref(), Some("Running" | "Pending")))
        .flat_map(|s| s.init_container_statuses.iter().flatten().chain(s.container_statuses.iter().flatten()))
        .map(|c| c.restart_count)
        .sum();
    if limit == 0 { restarts > 0 } else { restarts >= limit }
}

/// The pods this job controls, after adopting selected orphans (adding the tracking finalizer)
/// and releasing pods it no longer selects.
async fn claim_pods(target: &Target<'_>, ctx: &Context, uid: &str, deleting: bool) -> Result<Vec<Arc<Pod>>, Error> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), target.ns);
    let selector = target.job.spec.as_ref().and_then(|s| s.selector.as_ref()).and_then(ownership::selector);
    let mut owned = Vec::new();
    for pod in ctx.pods.state().into_iter().filter(|p| p.metadata.namespace.as_deref() == Some(target.ns)) {
        match ownership::claim(uid, deleting, selector.as_ref(), &pod.metadata) {
            Claim::Owned => owned.push(pod),
            Claim::Adopt => {
                let mut patch = ownership::adopt_patch(&pod.metadata, &target.owner);
                let mut finalizers = pod.metadata.finalizers.clone().unwrap_or_default();
                if !finalizers.iter().any(|f| f == pods::TRACKING_FINALIZER) {
                    finalizers.push(pods::TRACKING_FINALIZER.to_string());
                }
                patch["metadata"]["finalizers"] = serde_json::json!(finalizers);
                let adopted = api.patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(target.error("adopt pod"))?;
                owned.push(Arc::new(adopted));
            }
            Claim::Release => {
                let patch = ownership::release_patch(&pod.metadata, uid);
                match api.patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
                    Ok(_) => {}
                    Err(e) if crate::api_errors::is_not_found(&e) => {}
                    Err(source) => return Err(target.error("release pod")(source)),
                }
            }
            Claim::Ignore => {}
        }
    }
    Ok(owned)
}

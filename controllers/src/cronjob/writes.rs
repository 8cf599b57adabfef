//! The cron job's requests: creating a job from the template, deleting a job, writing the status.

use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams};

use super::policy::{self, SCHEDULED_TIMESTAMP};
use super::schedule::Schedule;
use super::{Context, Error};

/// The cron job being synced, as the requests need it.
pub struct Target<'a> {
    pub cron_job: &'a CronJob,
    pub ns: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
    pub regarding: ObjectReference,
    pub owner: OwnerReference,
}

impl Target<'_> {
    pub fn error(&self, action: &str) -> impl FnOnce(kube::Error) -> Error + '_ {
        let action = action.to_string();
        move |source| Error::Api { action, cron_job: format!("{}/{}", self.ns, self.name), source }
    }
}

/// The job to start for `scheduled`: the template's spec, labels and annotations, the
/// deterministic name, the scheduled-time annotation and a controller reference.
pub fn job_for(target: &Target<'_>, schedule: &Schedule, scheduled: Timestamp) -> Job {
    let template = target.cron_job.spec.as_ref().map(|s| s.job_template.clone()).unwrap_or_default();
    let template_meta = template.metadata.unwrap_or_default();
    let mut annotations = template_meta.annotations.unwrap_or_default();
    annotations.insert(SCHEDULED_TIMESTAMP.to_string(), schedule.rfc3339(scheduled));
    Job {
        metadata: ObjectMeta {
            name: Some(policy::job_name(target.name, scheduled)),
            namespace: Some(target.ns.to_string()),
            labels: template_meta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![target.owner.clone()]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

/// What creating a scheduled job came to.
pub enum Created {
    /// Created now.
    New(Box<Job>),
    /// A job of that name exists already (an earlier sync created it): the stored one.
    Existing(Box<Job>),
    /// The namespace is going away; nothing can or need be created.
    NamespaceTerminating,
}

pub async fn create_job(target: &Target<'_>, ctx: &Context, job: &Job) -> Result<Created, Error> {
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), target.ns);
    match api.create(&PostParams::default(), job).await {
        Ok(created) => Ok(Created::New(Box::new(created))),
        Err(e) if crate::api_errors::is_namespace_terminating(&e) => Ok(Created::NamespaceTerminating),
        Err(e) if crate::api_errors::is_already_exists(&e) => {
            let name = job.metadata.name.as_deref().unwrap_or_default();
            api.get(name).await.map(|j| Created::Existing(Box::new(j))).map_err(target.error("get existing job"))
        }
        Err(source) => {
            let message = crate::replicaset::api_message(&source);
            ctx.events.warning(&target.regarding, None, "FailedCreate", "Create", format!("Error creating job: {message}")).await;
            Err(target.error("create job")(source))
        }
    }
}

/// The job called `name` as stored now, if it exists.
pub async fn get_job(target: &Target<'_>, ctx: &Context, name: &str) -> Result<Option<Job>, Error> {
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), target.ns);
    api.get_opt(name).await.map_err(target.error("get job"))
}

/// Deletes `job` and its pods (background propagation, as upstream); a job already gone counts.
pub async fn delete_job(target: &Target<'_>, ctx: &Context, job: &ObjectReference) -> Result<(), Error> {
    let name = job.name.clone().unwrap_or_default();
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), target.ns);
    let mut params = DeleteParams::background();
    params.preconditions = job.uid.clone().map(|uid| kube::api::Preconditions { uid: Some(uid), resource_version: None });
    match api.delete(&name, &params).await {
        Ok(_) => {
            ctx.events.normal(&target.regarding, Some(job.clone()), "SuccessfulDelete", "Delete", format!("Deleted job {name}")).await;
            Ok(())
        }
        Err(e) if crate::api_errors::is_not_found(&e) => Ok(()),
        Err(source) => {
            let message = crate::replicaset::api_message(&source);
            ctx.events.warning(&target.regarding, Some(job.clone()), "FailedDelete", "Delete", format!("Deleted job: {message}")).await;
            Err(target.error("delete job")(source))
        }
    }
}

/// Writes `status` (an update guarded by the resourceVersion) unless it equals the stored one.
pub async fn write_status(target: &Target<'_>, ctx: &Context, status: CronJobStatus) -> Result<(), Error> {
    let status = normalized(status);
    if status == normalized(target.cron_job.status.clone().unwrap_or_default()) {
        return Ok(());
    }
    let api: Api<CronJob> = Api::namespaced(ctx.client.clone(), target.ns);
    let updated = CronJob { status: Some(status), ..target.cron_job.clone() };
    api.replace_status(target.name, &PostParams::default(), &updated).await.map(|_| ()).map_err(target.error("update status"))
}

/// The status as the apiserver returns it: an empty active list is omitted.
fn normalized(mut status: CronJobStatus) -> CronJobStatus {
    if status.active.as_ref().is_some_and(Vec::is_empty) {
        status.active = None;
    }
    status
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::batch::v1::{CronJobSpec, JobSpec, JobTemplateSpec};

    use super::*;

    #[test]
    fn jobs_are_built_from_the_template() {
        let mut cron_job = CronJob::default();
        cron_job.metadata.name = Some("backup".into());
        cron_job.spec = Some(CronJobSpec {
            schedule: "*/1 * * * *".into(),
            job_template: JobTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(BTreeMap::from([("app".to_string(), "backup".to_string())])),
                    annotations: Some(BTreeMap::from([("note".to_string(), "kept".to_string())])),
                    ..Default::default()
                }),
                spec: Some(JobSpec { parallelism: Some(2), ..Default::default() }),
            },
            ..Default::default()
        });
        let owner = OwnerReference { kind: "CronJob".into(), name: "backup".into(), uid: "u1".into(), controller: Some(true), ..Default::default() };
        let target = Target { cron_job: &cron_job, ns: "ns", name: "backup", uid: "u1", regarding: ObjectReference::default(), owner };
        let Ok(schedule) = Schedule::parse("*/1 * * * *", None) else { panic!("parses") };
        let scheduled = Timestamp::from_second(1_767_225_600).unwrap_or(Timestamp::UNIX_EPOCH);
        let job = job_for(&target, &schedule, scheduled);
        assert_eq!(job.metadata.name.as_deref(), Some("backup-29453760"));
        assert_eq!(job.metadata.labels.as_ref().and_then(|l| l.get("app")).map(String::as_str), Some("backup"));
        let annotations = job.metadata.annotations.unwrap_or_default();
        assert_eq!(annotations.get("note").map(String::as_str), Some("kept"));
        assert_eq!(annotations.get(SCHEDULED_TIMESTAMP).map(String::as_str), Some("2026-01-01T00:00:00Z"));
        assert_eq!(job.metadata.owner_references.unwrap_or_default().first().map(|o| o.uid.as_str()), Some("u1"));
        assert_eq!(job.spec.and_then(|s| s.parallelism), Some(2));
    }
}

//! CronJobs start Jobs on schedule: an every-minute cron job gets a job (named after the scheduled
//! minute, annotated with the scheduled time) that completes and shows up as
//! `lastSuccessfulTime`, and a Forbid cron job whose job never ends starts no second one.

use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::api::{ListParams, PostParams};
use rudder_e2e::{TestNamespace, wait};

use crate::common::setup;

/// One schedule period plus the time to create and start the job.
const FIRST_JOB_TIMEOUT: Duration = Duration::from_secs(75);
const COMPLETION_TIMEOUT: Duration = Duration::from_secs(180);
const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

fn every_minute(name: &str, policy: &str, script: &str) -> serde_json::Value {
    serde_json::json!({
        "metadata": { "name": name },
        "spec": {
            "schedule": "*/1 * * * *",
            "concurrencyPolicy": policy,
            "jobTemplate": {
                "metadata": { "labels": { "cron": name } },
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "terminationGracePeriodSeconds": 1,
                            "containers": [{ "name": "work", "image": "busybox", "command": ["sh", "-c", script] }]
                        }
                    }
                }
            }
        }
    })
}

async fn create_cron_job(ns: &TestNamespace, manifest: serde_json::Value) -> anyhow::Result<CronJob> {
    let cron_job: CronJob = serde_json::from_value(manifest)?;
    Ok(ns.api::<CronJob>().create(&PostParams::default(), &cron_job).await?)
}

async fn jobs_of(ns: &TestNamespace, cron_job: &str) -> anyhow::Result<Vec<Job>> {
    Ok(ns.api::<Job>().list(&ListParams::default().labels(&format!("cron={cron_job}"))).await?.items)
}

fn names(jobs: &[Job]) -> Vec<String> {
    jobs.iter().filter_map(|j| j.metadata.name.clone()).collect()
}

#[tokio::test]
async fn cron_job_starts_a_job_that_completes() -> anyhow::Result<()> {
    let (_cluster, ns) = setup("cronjob").await?;
    let cron_job = create_cron_job(&ns, every_minute("tick", "Allow", "sleep 1")).await?;
    let uid = cron_job.metadata.uid.clone().unwrap_or_default();

    let job = wait::until("the first job of cron job tick", FIRST_JOB_TIMEOUT, || async {
        let jobs = jobs_of(&ns, "tick").await?;
        Ok(jobs.into_iter().next().ok_or_else(|| "no job yet".to_string()))
    })
    .await?;
    let name = job.metadata.name.clone().unwrap_or_default();
    let suffix = name.strip_prefix("tick-").and_then(|m| m.parse::<i64>().ok());
    assert!(suffix.is_some(), "job named <cronjob>-<minutes since epoch>: {name}");
    let scheduled = job.metadata.annotations.as_ref().and_then(|a| a.get(SCHEDULED_TIMESTAMP)).cloned().unwrap_or_default();
    let scheduled_minute = scheduled.parse::<jiff::Timestamp>().map(|t| t.as_second().div_euclid(60)).ok();
    assert_eq!(scheduled_minute, suffix, "the name and the annotation name the same minute ({scheduled})");
    let owner = job.metadata.owner_references.iter().flatten().find(|o| o.controller == Some(true));
    assert_eq!(owner.map(|o| (o.kind.as_str(), o.uid.as_str())), Some(("CronJob", uid.as_str())), "controlled by the cron job");

    ns.kubectl(&["wait", "--for=condition=complete", &format!("job/{name}"), "--timeout=180s"]).await?;
    let status = wait::until("cron job tick to record the success", COMPLETION_TIMEOUT, || async {
        let status = ns.api::<CronJob>().get("tick").await?.status.unwrap_or_default();
        Ok(if status.last_successful_time.is_some() && status.last_schedule_time.is_some() {
            Ok(status)
        } else {
            Err(format!("status: {status:?}"))
        })
    })
    .await?;
    let active = names_of_active(&status);
    assert!(!active.contains(&name), "a finished job leaves the active list: {active:?}");
    Ok(())
}

fn names_of_active(status: &k8s_openapi::api::batch::v1::CronJobStatus) -> Vec<String> {
    status.active.iter().flatten().filter_map(|r| r.name.clone()).collect()
}

#[tokio::test]
async fn forbid_starts_no_second_job_while_one_runs() -> anyhow::Result<()> {
    let (_cluster, ns) = setup("cronjob-forbid").await?;
    create_cron_job(&ns, every_minute("hold", "Forbid", "sleep 600")).await?;

    let first = wait::until("cron job hold to have an active job", FIRST_JOB_TIMEOUT, || async {
        let status = ns.api::<CronJob>().get("hold").await?.status.unwrap_or_default();
        let active = names_of_active(&status);
        Ok(if active.len() == 1 { Ok(active) } else { Err(format!("active: {active:?}")) })
    })
    .await?;
    // Two more schedule times pass while the first job runs.
    tokio::time::sleep(Duration::from_secs(125)).await;
    let jobs = jobs_of(&ns, "hold").await?;
    assert_eq!(names(&jobs), first, "Forbid: still only the first job");
    let status = ns.api::<CronJob>().get("hold").await?.status.unwrap_or_default();
    assert_eq!(names_of_active(&status), first, "the running job stays active");
    Ok(())
}

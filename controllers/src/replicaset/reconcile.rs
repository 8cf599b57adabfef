//! One sync of one owner: claim pods, create or delete to match `spec.replicas`, report status.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use super::expectations::Seen;
use super::{Context, Error, ReplicaOwner, api_message, pods, ranking, status};
use crate::api_errors;
use crate::ownership::{self, Claim};

/// Upstream's cap on pods created or deleted in one sync.
const BURST_REPLICAS: usize = 500;

/// Why pods could not be created or deleted: the ReplicaFailure condition's reason and message,
/// and the error that fails the sync.
struct Failure {
    reason: &'static str,
    message: String,
    error: Error,
}

pub async fn reconcile<K: ReplicaOwner>(owner: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let kind = K::kind(&()).to_string();
    let missing = |field| Error::MissingField { kind: kind.clone(), field };
    // The engine works on the ReplicaSet view; for a ReplicaSet it is the object itself.
    let rs = owner.to_replica_set();
    let ns = rs.metadata.namespace.clone().ok_or_else(|| missing("namespace"))?;
    let name = rs.metadata.name.clone().ok_or_else(|| missing("name"))?;
    let uid = rs.metadata.uid.clone().ok_or_else(|| missing("uid"))?;
    let key = format!("{ns}/{name}");
    let label = format!("{kind} {key}");
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let spec = rs.spec.clone().unwrap_or_default();
    let selector = owner.pod_selector();
    let deleting = rs.metadata.deletion_timestamp.is_some();
    let reference = super::controller_reference(owner.as_ref()).ok_or_else(|| missing("uid"))?;

    // Check expectations before reading the cache, so pods observed in between are not missed.
    let satisfied = ctx.expectations.satisfied(&key, Instant::now(), |pod| Seen::in_store(&ctx.pods, pod));

    let mut owned: Vec<Arc<Pod>> = Vec::new();
    for pod in ctx.pods.state().into_iter().filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str())) {
        match ownership::claim(&uid, deleting, selector.as_ref(), &pod.metadata) {
            Claim::Owned => owned.push(pod),
            Claim::Adopt if pods::is_active(&pod) => {
                let patch = ownership::adopt_patch(&pod.metadata, &reference);
                let adopted = pods_api
                    .patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(|source| Error::Pods { action: "adopt pod", owner: label.clone(), source })?;
                owned.push(Arc::new(adopted));
            }
            Claim::Release => {
                let patch = ownership::release_patch(&pod.metadata, &uid);
                match pods_api.patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
                    Ok(_) => {}
                    Err(e) if api_errors::is_not_found(&e) => {}
                    Err(source) => return Err(Error::Pods { action: "release pod", owner: label.clone(), source }),
                }
            }
            Claim::Adopt | Claim::Ignore => {}
        }
    }

    let active: Vec<Arc<Pod>> = owned.iter().filter(|p| pods::is_active(p)).cloned().collect();
    let mut failure = None;
    let mut manage_error = None;
    if satisfied && !deleting {
        let desired = usize::try_from(spec.replicas.unwrap_or(1)).unwrap_or(0);
        let target = Target { rs: &rs, regarding: owner.object_ref(&()), reference, key: &key, label: &label };
        if let Err(Failure { reason, message, error }) = manage(&target, &ctx, &pods_api, &active, desired).await {
            failure = Some((reason, message));
            manage_error = Some(error);
        }
    }

    let now = Timestamp::now();
    let new_status = status::compute(&rs, &owned, failure, now);
    let updated = owner.with_status(new_status.clone());
    // Compare in the owner's own shape (through the same conversion), so fields its status lacks
    // do not look changed on every sync.
    let written = updated.to_replica_set().status.unwrap_or_default();
    if status::differs(rs.status.as_ref(), &written) {
        let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
        write_status(&api, &name, updated, new_status.clone()).await.map_err(|source| Error::Status { owner: label.clone(), source })?;
    }
    if let Some(error) = manage_error {
        return Err(error);
    }

    // A ready pod becomes available only after minReadySeconds; look again then.
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    if min_ready > 0 && new_status.ready_replicas != new_status.available_replicas {
        return Ok(Action::requeue(Duration::from_secs(u64::try_from(min_ready).unwrap_or(1) + 1)));
    }
    Ok(Action::await_change())
}

/// Replaces the owner's status; when the cached copy was stale (our own previous write, not yet
/// seen by the watch), reads the owner again and retries once, as upstream does, instead of failing
/// the sync and waiting out a requeue. An owner deleted meanwhile, or replaced by a new one of the
/// same name, has no status of ours to write.
async fn write_status<K: ReplicaOwner>(api: &Api<K>, name: &str, updated: K, status: ReplicaSetStatus) -> Result<(), kube::Error> {
    match api.replace_status(name, &PostParams::default(), &updated).await {
        Err(e) if api_errors::is_conflict(&e) => {
            let Some(latest) = api.get_opt(name).await? else { return Ok(()) };
            if latest.meta().uid != updated.meta().uid {
                return Ok(());
            }
            api.replace_status(name, &PostParams::default(), &latest.with_status(status)).await.map(|_| ()).or_else(gone_is_done)
        }
        other => other.map(|_| ()).or_else(gone_is_done),
    }
}

/// A status write to an owner that was deleted meanwhile has nothing left to do.
fn gone_is_done(error: kube::Error) -> Result<(), kube::Error> {
    if api_errors::is_not_found(&error) { Ok(()) } else { Err(error) }
}

/// The owner being resized, as `manage` needs it.
struct Target<'a> {
    /// The ReplicaSet view (template, name).
    rs: &'a ReplicaSet,
    /// The owner itself, which events are about.
    regarding: ObjectReference,
    /// The controller reference new pods carry.
    reference: OwnerReference,
    /// `namespace/name`, the expectations key.
    key: &'a str,
    /// `<Kind> namespace/name`, for errors.
    label: &'a str,
}

/// Creates or deletes pods so that `desired` are active.
async fn manage(target: &Target<'_>, ctx: &Context, api: &Api<Pod>, active: &[Arc<Pod>], desired: usize) -> Result<(), Failure> {
    let Target { rs, regarding: reference, key, label, .. } = target;
    if active.len() < desired {
        let mut remaining = (desired - active.len()).min(BURST_REPLICAS);
        // Slow start, like upstream: 1, 2, 4, … pods per batch, stopping at the first failure so a
        // broken template or a quota does not produce a storm of doomed requests.
        let mut batch = 1;
        while remaining > 0 {
            let size = batch.min(remaining);
            let template = pods::from_template(rs, target.reference.clone());
            let params = PostParams::default();
            let results = futures::future::join_all((0..size).map(|_| api.create(&params, &template))).await;
            for result in results {
                match result {
                    Ok(pod) => {
                        let pod_name = pod.name_any();
                        ctx.expectations.expect_create(key, (pod.namespace().unwrap_or_default(), pod_name.clone()), Instant::now());
                        ctx.events
                            .normal(reference, Some(pod.object_ref(&())), "SuccessfulCreate", "Create", format!("Created pod: {pod_name}"))
                            .await;
                    }
                    // Nothing can be created in a terminating namespace, and nothing needs to be.
                    Err(source) if api_errors::is_namespace_terminating(&source) => return Ok(()),
                    Err(source) => {
                        let message = api_message(&source);
                        ctx.events.warning(reference, None, "FailedCreate", "Create", format!("Error creating: {message}")).await;
                        let error = Error::Pods { action: "create pod", owner: label.to_string(), source };
                        return Err(Failure { reason: "FailedCreate", message, error });
                    }
                }
            }
            remaining -= size;
            batch *= 2;
        }
    } else if active.len() > desired {
        let surplus = (active.len() - desired).min(BURST_REPLICAS);
        let doomed = ranking::pods_to_delete(active, surplus);
        for pod in &doomed {
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            ctx.expectations.expect_delete(key, (pod.namespace().unwrap_or_default(), pod.name_any()), uid, Instant::now());
        }
        // All at once, like upstream.
        let deletes = doomed.iter().map(|pod| {
            let uid = pod.metadata.uid.clone();
            let params = DeleteParams { preconditions: Some(Preconditions { uid, resource_version: None }), ..Default::default() };
            async move { (pod, api.delete(&pod.name_any(), &params).await) }
        });
        let mut failure = None;
        for (pod, result) in futures::future::join_all(deletes).await {
            let pod_name = pod.name_any();
            match result {
                Ok(_) => {
                    ctx.events
                        .normal(reference, Some(pod.object_ref(&())), "SuccessfulDelete", "Delete", format!("Deleted pod: {pod_name}"))
                        .await;
                }
                Err(e) if api_errors::is_not_found(&e) => {}
                Err(source) if failure.is_none() => {
                    let message = api_message(&source);
                    ctx.events.warning(reference, None, "FailedDelete", "Delete", format!("Error deleting: {message}")).await;
                    let error = Error::Pods { action: "delete pod", owner: label.to_string(), source };
                    failure = Some(Failure { reason: "FailedDelete", message, error });
                }
                Err(_) => {}
            }
        }
        if let Some(failure) = failure {
            return Err(failure);
        }
    }
    Ok(())
}

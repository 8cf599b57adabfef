//! One sync of one replica set: claim pods, create or delete to match `spec.replicas`, report status.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

use super::expectations::Seen;
use super::{Context, Error, pods, ranking, status};
use crate::api_errors;
use crate::ownership::{self, Claim};

/// Upstream's cap on pods created or deleted in one sync.
const BURST_REPLICAS: usize = 500;

pub async fn reconcile(rs: Arc<ReplicaSet>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = rs.metadata.namespace.clone().ok_or(Error::MissingField("namespace"))?;
    let name = rs.metadata.name.clone().ok_or(Error::MissingField("name"))?;
    let uid = rs.metadata.uid.clone().ok_or(Error::MissingField("uid"))?;
    let key = format!("{ns}/{name}");
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let spec = rs.spec.clone().unwrap_or_default();
    let selector = ownership::selector(&spec.selector);
    let deleting = rs.metadata.deletion_timestamp.is_some();
    let owner = ownership::controller_reference("apps/v1", "ReplicaSet", &rs.metadata).ok_or(Error::MissingField("uid"))?;

    // Check expectations before reading the cache, so pods observed in between are not missed.
    let satisfied = ctx.expectations.satisfied(&key, Instant::now(), |(pns, pname)| {
        match ctx.pods.get(&ObjectRef::new(pname).within(pns)) {
            None => Seen::Absent,
            Some(p) => Seen::Present {
                uid: p.metadata.uid.clone().unwrap_or_default(),
                deleting: p.metadata.deletion_timestamp.is_some(),
            },
        }
    });

    let mut owned: Vec<Arc<Pod>> = Vec::new();
    for pod in ctx.pods.state().into_iter().filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str())) {
        match ownership::claim(&uid, deleting, selector.as_ref(), &pod.metadata) {
            Claim::Owned => owned.push(pod),
            Claim::Adopt if pods::is_active(&pod) => {
                let patch = ownership::adopt_patch(&pod.metadata, &owner);
                let adopted = pods_api
                    .patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(|source| Error::Pods { action: "adopt pod", rs: key.clone(), source })?;
                owned.push(Arc::new(adopted));
            }
            Claim::Release => {
                let patch = ownership::release_patch(&pod.metadata, &uid);
                match pods_api.patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
                    Ok(_) => {}
                    Err(e) if api_errors::is_not_found(&e) => {}
                    Err(source) => return Err(Error::Pods { action: "release pod", rs: key.clone(), source }),
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
        if let Err((reason, error)) = manage(&rs, &ctx, &pods_api, &key, &active, desired, owner).await {
            failure = Some((reason, error.to_string()));
            manage_error = Some(error);
        }
    }

    let now = Timestamp::now();
    let new_status = status::compute(&rs, &owned, failure, now);
    if status::differs(rs.status.as_ref(), &new_status) {
        let mut updated = (*rs).clone();
        updated.status = Some(new_status.clone());
        let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ns);
        api.replace_status(&name, &PostParams::default(), &updated)
            .await
            .map_err(|source| Error::Status { rs: key.clone(), source })?;
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

/// Creates or deletes pods so that `desired` are active.
async fn manage(
    rs: &ReplicaSet,
    ctx: &Context,
    api: &Api<Pod>,
    key: &str,
    active: &[Arc<Pod>],
    desired: usize,
    owner: k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
) -> Result<(), (&'static str, Error)> {
    let reference = rs.object_ref(&());
    if active.len() < desired {
        let mut remaining = (desired - active.len()).min(BURST_REPLICAS);
        // Slow start, like upstream: 1, 2, 4, … pods per batch, stopping at the first failure so a
        // broken template or a quota does not produce a storm of doomed requests.
        let mut batch = 1;
        while remaining > 0 {
            let size = batch.min(remaining);
            let template = pods::from_template(rs, owner.clone());
            let params = PostParams::default();
            let results = futures::future::join_all((0..size).map(|_| api.create(&params, &template))).await;
            for result in results {
                match result {
                    Ok(pod) => {
                        let pod_name = pod.name_any();
                        ctx.expectations.expect_create(key, (pod.namespace().unwrap_or_default(), pod_name.clone()), Instant::now());
                        ctx.events
                            .normal(&reference, Some(pod.object_ref(&())), "SuccessfulCreate", "Create", format!("Created pod: {pod_name}"))
                            .await;
                    }
                    // Nothing can be created in a terminating namespace, and nothing needs to be.
                    Err(source) if api_errors::is_namespace_terminating(&source) => return Ok(()),
                    Err(source) => {
                        ctx.events.warning(&reference, None, "FailedCreate", "Create", format!("Error creating: {source}")).await;
                        return Err(("FailedCreate", Error::Pods { action: "create pod", rs: key.to_string(), source }));
                    }
                }
            }
            remaining -= size;
            batch *= 2;
        }
    } else if active.len() > desired {
        let surplus = (active.len() - desired).min(BURST_REPLICAS);
        for pod in ranking::pods_to_delete(active, surplus) {
            let pod_name = pod.name_any();
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            ctx.expectations.expect_delete(key, (pod.namespace().unwrap_or_default(), pod_name.clone()), uid.clone(), Instant::now());
            let params = DeleteParams { preconditions: Some(Preconditions { uid: Some(uid), resource_version: None }), ..Default::default() };
            match api.delete(&pod_name, &params).await {
                Ok(_) => {
                    ctx.events
                        .normal(&reference, Some(pod.object_ref(&())), "SuccessfulDelete", "Delete", format!("Deleted pod: {pod_name}"))
                        .await;
                }
                Err(e) if api_errors::is_not_found(&e) => {}
                Err(source) => {
                    ctx.events.warning(&reference, None, "FailedDelete", "Delete", format!("Error deleting: {source}")).await;
                    return Err(("FailedDelete", Error::Pods { action: "delete pod", rs: key.to_string(), source }));
                }
            }
        }
    }
    Ok(())
}

//! Carrying out the collector's work against the API.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};

use super::Error;
use super::decide::{self, OwnerState, Verdict};
use super::graph::{FOREGROUND, Node, ORPHAN, Work};
use super::monitors::Monitors;
use crate::api_errors;
use crate::discovery::Resource;

/// Processes one item; an error means "retry later".
pub async fn process(m: &Monitors, work: &Work) -> Result<(), Error> {
    match work {
        Work::AttemptToDelete(uid) => attempt_to_delete(m, uid).await,
        Work::ProcessOwner(uid) => process_owner(m, uid).await,
    }
}

fn api_for(m: &Monitors, resource: &Resource, namespace: Option<&str>) -> Api<DynamicObject> {
    match namespace.filter(|_| resource.namespaced) {
        Some(ns) => Api::namespaced_with(m.client.clone(), ns, &resource.api),
        None => Api::all_with(m.client.clone(), &resource.api),
    }
}

fn api_error(object: &Node, action: &'static str) -> impl FnOnce(kube::Error) -> Error + use<> {
    let object = format!("{} {}", object.resource.api.kind, object.name);
    move |source| Error::Api { action, object, source }
}

/// Whether an owner exists: from the graph if it is there, else from the API (a dependent is only
/// ever deleted on the apiserver's word that its owner is gone).
async fn owner_state(m: &Monitors, dependent: &Node, owner: &OwnerReference) -> Result<OwnerState, Error> {
    let known = m.graph.lock().unwrap_or_else(|p| p.into_inner()).get(&owner.uid).map(Node::deleting_dependents);
    if let Some(waiting) = known {
        return Ok(if waiting { OwnerState::WaitingForDependents } else { OwnerState::Exists });
    }
    let Some(resource) = m.kinds.get(&owner.api_version, &owner.kind) else {
        return Err(Error::UnknownKind(format!("{}/{}", owner.api_version, owner.kind)));
    };
    let namespace = dependent.namespace.as_deref().filter(|_| resource.namespaced).unwrap_or("");
    if m.absent_owners.contains(namespace, owner) {
        return Ok(OwnerState::Absent);
    }
    let api = api_for(m, &resource, dependent.namespace.as_deref());
    match api.get_metadata_opt(&owner.name).await {
        Ok(Some(found)) if found.metadata.uid.as_deref() == Some(owner.uid.as_str()) => {
            let waiting = found.metadata.deletion_timestamp.is_some()
                && found.metadata.finalizers.iter().flatten().any(|f| f == FOREGROUND);
            Ok(if waiting { OwnerState::WaitingForDependents } else { OwnerState::Exists })
        }
        Ok(_) => {
            m.absent_owners.insert(namespace, owner);
            Ok(OwnerState::Absent)
        }
        Err(source) => Err(Error::Api { action: "look up owner", object: format!("{} {}", owner.kind, owner.name), source }),
    }
}

async fn attempt_to_delete(m: &Monitors, uid: &str) -> Result<(), Error> {
    let (node, has_dependents) = {
        let graph = m.graph.lock().unwrap_or_else(|p| p.into_inner());
        let Some(node) = graph.get(uid).cloned() else { return Ok(()) };
        let has_dependents = !graph.dependents(uid).is_empty();
        (node, has_dependents)
    };
    // Already on its way out, unless it waits on its own dependents (then it must be re-checked).
    if node.deleting && !node.deleting_dependents() {
        return Ok(());
    }
    if node.namespace.is_none() {
        let namespaced = node.owners.iter().find(|o| m.kinds.get(&o.api_version, &o.kind).is_some_and(|r| r.namespaced));
        if let Some(owner) = namespaced {
            // Such a reference can never resolve (a namespaced owner of what? in which namespace?);
            // upstream leaves the object alone rather than read the reference as dangling.
            tracing::warn!(kind = %node.resource.api.kind, name = %node.name, owner_kind = %owner.kind, owner = %owner.name,
                "cluster-scoped object names a namespaced owner; not collected (OwnerRefInvalidNamespace)");
            return Ok(());
        }
    }
    let mut owners = Vec::with_capacity(node.owners.len());
    for owner in &node.owners {
        owners.push((owner.clone(), owner_state(m, &node, owner).await?));
    }
    match decide::verdict(&owners, &node.finalizers, has_dependents) {
        Verdict::Keep => Ok(()),
        Verdict::RemoveOwners(uids) => remove_owner_refs(m, &node, &uids).await,
        Verdict::Delete(policy) => {
            if node.deleting {
                return Ok(());
            }
            let params = DeleteParams {
                propagation_policy: Some(policy.into()),
                preconditions: Some(Preconditions { uid: Some(node.uid.clone()), resource_version: None }),
                ..Default::default()
            };
            // Per object, so debug: a cascading delete of thousands would flood the log at info.
            tracing::debug!(kind = %node.resource.api.kind, namespace = node.namespace.as_deref().unwrap_or(""), name = %node.name, ?policy, "deleting object whose owners are gone");
            match api_for(m, &node.resource, node.namespace.as_deref()).delete(&node.name, &params).await {
                Ok(_) => Ok(()),
                // Gone already, or the name now belongs to a newer object: nothing to do.
                Err(e) if api_errors::is_not_found(&e) || api_errors::is_conflict(&e) => Ok(()),
                Err(e) => Err(api_error(&node, "delete")(e)),
            }
        }
    }
}

/// Drops the owner references with the given UIDs from `node`.
async fn remove_owner_refs(m: &Monitors, node: &Node, uids: &[String]) -> Result<(), Error> {
    let api = api_for(m, &node.resource, node.namespace.as_deref());
    // Strategic merge deletes list entries by UID without racing other writers; custom resources do
    // not support it, so they get the remaining list as a merge patch.
    let deletes: Vec<serde_json::Value> = uids.iter().map(|u| serde_json::json!({ "$patch": "delete", "uid": u })).collect();
    let strategic = serde_json::json!({ "metadata": { "ownerReferences": deletes, "uid": node.uid } });
    let result = api.patch(&node.name, &PatchParams::default(), &Patch::Strategic(strategic)).await;
    let result = match result {
        Err(e) if api_errors::code(&e) == Some(415) => {
            let remaining: Vec<&OwnerReference> = node.owners.iter().filter(|o| !uids.contains(&o.uid)).collect();
            let merge = serde_json::json!({ "metadata": { "ownerReferences": remaining, "uid": node.uid } });
            api.patch(&node.name, &PatchParams::default(), &Patch::Merge(merge)).await
        }
        other => other,
    };
    match result {
        Ok(_) => Ok(()),
        Err(e) if api_errors::is_not_found(&e) || api_errors::is_conflict(&e) => Ok(()),
        Err(e) => Err(api_error(node, "remove owner references of")(e)),
    }
}

async fn process_owner(m: &Monitors, uid: &str) -> Result<(), Error> {
    let (owner, dependents) = {
        let graph = m.graph.lock().unwrap_or_else(|p| p.into_inner());
        let Some(owner) = graph.get(uid).cloned() else { return Ok(()) };
        let dependents: Vec<Node> = graph.dependents(uid).into_iter().cloned().collect();
        (owner, dependents)
    };
    if !owner.deleting {
        return Ok(());
    }
    if owner.has_finalizer(ORPHAN) {
        for dependent in &dependents {
            remove_owner_refs(m, dependent, &[uid.to_string()]).await?;
        }
        return remove_finalizer(m, &owner, ORPHAN).await;
    }
    if owner.has_finalizer(FOREGROUND) {
        let blocking: Vec<&Node> = dependents
            .iter()
            .filter(|d| d.owners.iter().any(|o| o.uid == uid && o.block_owner_deletion == Some(true)))
            .collect();
        if blocking.is_empty() {
            return remove_finalizer(m, &owner, FOREGROUND).await;
        }
        // Each blocking dependent goes (in the foreground too, if it has dependents of its own);
        // their deletion events bring the owner back here.
        for d in dependents {
            m.queue.push(Work::AttemptToDelete(d.uid));
        }
    }
    Ok(())
}

/// Removes `finalizer` from the live object, guarded by its resource version.
async fn remove_finalizer(m: &Monitors, node: &Node, finalizer: &str) -> Result<(), Error> {
    let api = api_for(m, &node.resource, node.namespace.as_deref());
    let live = match api.get_metadata_opt(&node.name).await.map_err(api_error(node, "read"))? {
        Some(live) if live.metadata.uid.as_deref() == Some(node.uid.as_str()) => live,
        _ => return Ok(()),
    };
    let finalizers: Vec<&String> = live.metadata.finalizers.iter().flatten().filter(|f| *f != finalizer).collect();
    let patch = serde_json::json!({ "metadata": { "finalizers": finalizers, "resourceVersion": live.metadata.resource_version } });
    match api.patch(&node.name, &PatchParams::default(), &Patch::Merge(patch)).await {
        Ok(_) => {
            tracing::info!(kind = %node.resource.api.kind, name = %node.name, finalizer, "dependents handled; finalizer removed");
            Ok(())
        }
        Err(e) if api_errors::is_not_found(&e) => Ok(()),
        Err(e) => Err(api_error(node, "remove finalizer of")(e)),
    }
}


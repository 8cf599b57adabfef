//! The controller's writes: node taints, node conditions, pod conditions, pod deletion.
//!
//! Taint edits read the node fresh and write the whole taint list with the resourceVersion as a
//! precondition, so adding one eviction taint and removing the other is one atomic write and a
//! concurrent edit (by the node agent or a person) is never overwritten.

use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::json;

use crate::api_errors;

/// Attempts at a taint edit before giving up until the next pass.
const CONFLICT_RETRIES: usize = 5;

/// Failures writing to the API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A node could not be read or written.
    #[error("failed to {action} node {node}: {source}")]
    Node {
        action: &'static str,
        node: String,
        #[source]
        source: kube::Error,
    },
    /// A pod could not be written or deleted.
    #[error("failed to {action} pod {pod}: {source}")]
    Pod {
        action: &'static str,
        pod: String,
        #[source]
        source: kube::Error,
    },
}

/// Rewrites a node's taints to what `edit` makes of the current node; `edit` returns `None` when
/// nothing needs to change. Returns whether a write happened (a vanished node is no write).
pub async fn edit_taints(nodes: &Api<Node>, name: &str, edit: impl Fn(&Node) -> Option<Vec<Taint>>) -> Result<bool, Error> {
    let node_error = |action| move |source| Error::Node { action, node: name.to_string(), source };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let node = match nodes.get(name).await {
            Ok(node) => node,
            Err(e) if api_errors::is_not_found(&e) => return Ok(false),
            Err(e) => return Err(node_error("read")(e)),
        };
        let Some(taints) = edit(&node) else { return Ok(false) };
        let taints = if taints.is_empty() { serde_json::Value::Null } else { json!(taints) };
        let patch = json!({
            "metadata": { "resourceVersion": node.metadata.resource_version },
            "spec": { "taints": taints },
        });
        match nodes.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => return Ok(true),
            Err(e) if api_errors::is_not_found(&e) => return Ok(false),
            Err(e) if api_errors::is_conflict(&e) && attempt < CONFLICT_RETRIES => continue,
            Err(e) => return Err(node_error("update taints of")(e)),
        }
    }
}

/// Writes a node's conditions, provided the node is still at the version they were computed from
/// (a conflict means the agent just posted status: it is alive after all).
pub async fn set_node_conditions(nodes: &Api<Node>, node: &Node, conditions: &[NodeCondition]) -> Result<Option<Node>, Error> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let patch = json!({
        "metadata": { "resourceVersion": node.metadata.resource_version },
        "status": { "conditions": conditions },
    });
    match nodes.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(updated) => Ok(Some(updated)),
        Err(e) if api_errors::is_not_found(&e) || api_errors::is_conflict(&e) => Ok(None),
        Err(source) => Err(Error::Node { action: "update status of", node: name, source }),
    }
}

fn pod_key(pod: &Pod) -> String {
    format!("{}/{}", pod.metadata.namespace.as_deref().unwrap_or_default(), pod.metadata.name.as_deref().unwrap_or_default())
}

/// Sets one pod condition by strategic merge (conditions merge by type, so the others are kept).
async fn patch_pod_condition(pods: &Api<Pod>, pod: &Pod, condition: serde_json::Value) -> Result<(), Error> {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let patch = json!({
        "metadata": { "uid": pod.metadata.uid },
        "status": { "conditions": [condition] },
    });
    match pods.patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch)).await {
        Ok(_) => Ok(()),
        Err(e) if api_errors::is_not_found(&e) || api_errors::is_conflict(&e) => Ok(()),
        Err(source) => Err(Error::Pod { action: "update status of", pod: pod_key(pod), source }),
    }
}

/// The pod's Ready condition, if it has one.
pub fn pod_ready(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready").map(|c| c.status.as_str())
}

/// Marks a pod not ready (upstream's MarkPodsNotReady); only pods that report a Ready condition
/// other than False are touched. Returns whether it wrote.
pub async fn mark_pod_not_ready(pods: &Api<Pod>, pod: &Pod, now: Timestamp) -> Result<bool, Error> {
    if matches!(pod_ready(pod), None | Some("False")) {
        return Ok(false);
    }
    patch_pod_condition(pods, pod, json!({ "type": "Ready", "status": "False", "lastTransitionTime": Time(now) })).await?;
    Ok(true)
}

/// Records why the pod is going (the DisruptionTarget condition), then deletes it; the UID
/// precondition keeps a same-named successor safe.
pub async fn evict_pod(pods: &Api<Pod>, pod: &Pod, now: Timestamp) -> Result<(), Error> {
    let already = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "DisruptionTarget" && c.status == "True"));
    if !already {
        let condition = json!({
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint",
            "lastTransitionTime": Time(now),
        });
        patch_pod_condition(pods, pod, condition).await?;
    }
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let params = DeleteParams {
        preconditions: Some(Preconditions { uid: pod.metadata.uid.clone(), resource_version: None }),
        ..DeleteParams::default()
    };
    match pods.delete(name, &params).await {
        Ok(_) => Ok(()),
        Err(e) if api_errors::is_not_found(&e) || api_errors::is_conflict(&e) => Ok(()),
        Err(source) => Err(Error::Pod { action: "delete", pod: pod_key(pod), source }),
    }
}

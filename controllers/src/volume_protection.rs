//! The PersistentVolumeClaim and PersistentVolume protection controllers. The apiserver's
//! StorageObjectInUseProtection admission puts a finalizer on every claim and volume; these controllers
//! take it off once a deleted object is no longer in use — a claim when no scheduled pod mounts it, a
//! volume when it is no longer bound — so deleting storage never pulls it from under a running pod.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};

use crate::api_errors;
use crate::informer::Informer;

/// The finalizers the admission plugin adds, as upstream.
pub const PVC_FINALIZER: &str = "kubernetes.io/pvc-protection";
pub const PV_FINALIZER: &str = "kubernetes.io/pv-protection";

/// Failures releasing one object; the sync is retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to {action} for {object}: {source}")]
    Api {
        action: &'static str,
        object: String,
        #[source]
        source: kube::Error,
    },
}

struct ClaimContext {
    client: kube::Client,
    pods: Store<Pod>,
}

/// The claim protection controller, running until `shutdown` resolves.
pub fn run_claims(
    client: kube::Client,
    claims: &Informer<PersistentVolumeClaim>,
    pods: &Informer<Pod>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let context = Arc::new(ClaimContext { client, pods: pods.store() });
    Controller::for_shared_stream(claims.subscribe(), claims.store())
        // A pod going away may free the claims it mounted.
        .watches_shared_stream(pods.subscribe(), |pod: Arc<Pod>| claims_of(&pod).into_iter().map(|(ns, name)| ObjectRef::new(&name).within(&ns)).collect::<Vec<_>>())
        .with_config(controller::Config::default().concurrency(5))
        .graceful_shutdown_on(shutdown)
        .run(reconcile_claim, error_policy, context)
        .for_each(|_| async {})
}

/// The volume protection controller, running until `shutdown` resolves.
pub fn run_volumes(
    client: kube::Client,
    volumes: &Informer<PersistentVolume>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    Controller::for_shared_stream(volumes.subscribe(), volumes.store())
        .with_config(controller::Config::default().concurrency(5))
        .graceful_shutdown_on(shutdown)
        .run(reconcile_volume, error_policy, Arc::new(client))
        .for_each(|_| async {})
}

/// `(namespace, claim)` for every claim `pod` mounts by name, and for its generic ephemeral volumes
/// (whose claims are named `<pod>-<volume>`) while it has not finished.
fn claims_of(pod: &Pod) -> Vec<(String, String)> {
    let (Some(ns), Some(name)) = (pod.metadata.namespace.as_deref(), pod.metadata.name.as_deref()) else { return Vec::new() };
    let finished = matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"));
    let volumes = pod.spec.iter().flat_map(|s| s.volumes.iter().flatten());
    volumes
        .filter_map(|v| match (&v.persistent_volume_claim, &v.ephemeral) {
            (Some(claim), _) => Some(claim.claim_name.clone()),
            (None, Some(_)) if !finished => Some(format!("{name}-{}", v.name)),
            _ => None,
        })
        .map(|claim| (ns.to_string(), claim))
        .collect()
}

/// True if a pod that has been scheduled mounts the claim (an unscheduled pod has not started using it).
fn in_use(claim: &PersistentVolumeClaim, pods: impl IntoIterator<Item = impl AsRef<Pod>>) -> bool {
    let (ns, name) = (claim.namespace().unwrap_or_default(), claim.name_any());
    pods.into_iter().any(|pod| {
        let pod = pod.as_ref();
        pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| !n.is_empty())
            && claims_of(pod).iter().any(|(pod_ns, claim)| *pod_ns == ns && *claim == name)
    })
}

fn releasable<K: Resource>(object: &K, finalizer: &str) -> bool {
    object.meta().deletion_timestamp.is_some() && object.finalizers().iter().any(|f| f == finalizer)
}

async fn reconcile_claim(claim: Arc<PersistentVolumeClaim>, ctx: Arc<ClaimContext>) -> Result<Action, Error> {
    if !releasable(claim.as_ref(), PVC_FINALIZER) || in_use(&claim, ctx.pods.state()) {
        return Ok(Action::await_change());
    }
    // The cache may not show a pod created a moment ago; like upstream, ask the apiserver before letting go.
    let ns = claim.namespace().unwrap_or_default();
    let object = format!("PersistentVolumeClaim {ns}/{}", claim.name_any());
    let live = Api::<Pod>::namespaced(ctx.client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::Api { action: "list pods", object: object.clone(), source })?;
    if in_use(&claim, live.items.iter().map(|p| Arc::new(p.clone()))) {
        return Ok(Action::await_change());
    }
    remove_finalizer(Api::namespaced(ctx.client.clone(), &ns), claim.as_ref(), PVC_FINALIZER, object).await
}

async fn reconcile_volume(volume: Arc<PersistentVolume>, client: Arc<kube::Client>) -> Result<Action, Error> {
    let bound = volume.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    if !releasable(volume.as_ref(), PV_FINALIZER) || bound {
        return Ok(Action::await_change());
    }
    let object = format!("PersistentVolume {}", volume.name_any());
    remove_finalizer(Api::all(client.as_ref().clone()), volume.as_ref(), PV_FINALIZER, object).await
}

/// Drops `finalizer`, only from the version seen: if the object changed meanwhile the patch conflicts
/// and the next sync decides again.
async fn remove_finalizer<K>(api: Api<K>, object: &K, finalizer: &str, name: String) -> Result<Action, Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let remaining: Vec<&String> = object.finalizers().iter().filter(|f| *f != finalizer).collect();
    let patch = serde_json::json!({ "metadata": { "finalizers": remaining, "resourceVersion": object.resource_version() } });
    match api.patch(&object.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => {
            tracing::info!(object = %name, "no longer in use; protection finalizer removed");
            Ok(Action::await_change())
        }
        Err(e) if api_errors::is_not_found(&e) => Ok(Action::await_change()),
        Err(source) => Err(Error::Api { action: "remove the protection finalizer", object: name, source }),
    }
}

fn error_policy<K, C>(_: Arc<K>, error: &Error, _: Arc<C>) -> Action {
    let Error::Api { source, .. } = error;
    if api_errors::is_conflict(source) {
        return Action::requeue(Duration::from_secs(1));
    }
    tracing::warn!(%error, "retrying");
    Action::requeue(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{EphemeralVolumeSource, PersistentVolumeClaimVolumeSource, PodSpec, PodStatus, Volume};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn pod(node: Option<&str>, phase: &str, volumes: Vec<Volume>) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta { name: Some("web".into()), namespace: Some("ns".into()), ..Default::default() },
            spec: Some(PodSpec { node_name: node.map(String::from), volumes: Some(volumes), ..Default::default() }),
            status: Some(PodStatus { phase: Some(phase.into()), ..Default::default() }),
        })
    }

    fn by_name(claim: &str) -> Volume {
        Volume { name: "data".into(), persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource { claim_name: claim.into(), ..Default::default() }), ..Default::default() }
    }

    fn ephemeral() -> Volume {
        Volume { name: "scratch".into(), ephemeral: Some(EphemeralVolumeSource::default()), ..Default::default() }
    }

    fn claim(ns: &str, name: &str) -> PersistentVolumeClaim {
        PersistentVolumeClaim { metadata: ObjectMeta { name: Some(name.into()), namespace: Some(ns.into()), ..Default::default() }, ..Default::default() }
    }

    #[test]
    fn a_claim_is_in_use_while_a_scheduled_pod_mounts_it() {
        let cases = [
            ("scheduled pod mounts it", claim("ns", "db"), pod(Some("n1"), "Running", vec![by_name("db")]), true),
            ("finished pod still holds a named claim", claim("ns", "db"), pod(Some("n1"), "Succeeded", vec![by_name("db")]), true),
            ("unscheduled pod", claim("ns", "db"), pod(None, "Pending", vec![by_name("db")]), false),
            ("another claim", claim("ns", "other"), pod(Some("n1"), "Running", vec![by_name("db")]), false),
            ("same name, other namespace", claim("elsewhere", "db"), pod(Some("n1"), "Running", vec![by_name("db")]), false),
            ("ephemeral claim of a running pod", claim("ns", "web-scratch"), pod(Some("n1"), "Running", vec![ephemeral()]), true),
            ("ephemeral claim of a finished pod", claim("ns", "web-scratch"), pod(Some("n1"), "Failed", vec![ephemeral()]), false),
        ];
        for (name, c, p, want) in cases {
            assert_eq!(in_use(&c, [p]), want, "{name}");
        }
    }

    #[test]
    fn only_deleted_objects_with_the_finalizer_are_released() {
        let mut c = claim("ns", "db");
        assert!(!releasable(&c, PVC_FINALIZER), "not being deleted");
        c.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        assert!(!releasable(&c, PVC_FINALIZER), "no finalizer");
        c.metadata.finalizers = Some(vec!["other".into(), PVC_FINALIZER.into()]);
        assert!(releasable(&c, PVC_FINALIZER));
    }
}

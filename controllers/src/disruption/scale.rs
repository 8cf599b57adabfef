//! How many pods a budget's pods' controllers want: the summed scale of every distinct controller,
//! found like upstream — a ReplicaSet (or the Deployment controlling it), a ReplicationController,
//! a StatefulSet, or else any resource with a `scale` subresource.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::core::GroupVersionKind;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::ownership::{self, controller_of};

/// Failures finding a pod's controller's scale; the budget then allows no disruptions.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pod's controller is none of the known kinds and serves no scale subresource.
    #[error("found no controllers for pod {0:?}")]
    NoController(String),
    /// Looking the controller's scale up through the API failed.
    #[error("failed to get the scale of {kind} {name}: {source}")]
    Scale {
        kind: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// The cached controllers the finder consults before asking the API.
pub struct Stores {
    pub replica_sets: Store<ReplicaSet>,
    pub deployments: Store<Deployment>,
    pub replication_controllers: Store<ReplicationController>,
    pub stateful_sets: Store<StatefulSet>,
}

/// The expected pod count and the pods that have no controller (upstream ignores those and warns).
pub struct Expected {
    pub count: i32,
    pub unmanaged: Vec<String>,
}

/// Sums the scale of the controllers of `pods` (each controller once).
pub async fn expected(client: &kube::Client, stores: &Stores, pods: &[&Pod]) -> Result<Expected, Error> {
    let mut scales: BTreeMap<String, i32> = BTreeMap::new();
    let mut unmanaged = Vec::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let (Some(owner), Some(ns)) = (controller_of(&pod.metadata), pod.metadata.namespace.as_deref()) else {
            unmanaged.push(name);
            continue;
        };
        if scales.contains_key(&owner.uid) {
            continue;
        }
        let found = match cached(stores, owner, ns) {
            Some(found) => Some(found),
            None => scale_subresource(client, owner, ns).await?,
        };
        let (uid, scale) = found.ok_or(Error::NoController(name))?;
        scales.insert(uid, scale);
    }
    let count = scales.values().fold(0i32, |sum, s| sum.saturating_add(*s));
    Ok(Expected { count, unmanaged })
}

/// `(uid, replicas)` of a controller the caches hold, checked against the reference's UID.
fn cached(stores: &Stores, owner: &OwnerReference, ns: &str) -> Option<(String, i32)> {
    let uid_matches = |uid: &Option<String>| uid.as_deref() == Some(owner.uid.as_str());
    if ownership::refers_to::<ReplicaSet>(owner) {
        let rs = stores.replica_sets.get(&ObjectRef::new(&owner.name).within(ns)).filter(|rs| uid_matches(&rs.metadata.uid))?;
        if let Some(parent) = controller_of(&rs.metadata).filter(|p| ownership::refers_to::<Deployment>(p)) {
            let d = stores.deployments.get(&ObjectRef::new(&parent.name).within(ns)).filter(|d| d.metadata.uid.as_deref() == Some(parent.uid.as_str()))?;
            return Some((parent.uid.clone(), d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)));
        }
        return Some((owner.uid.clone(), rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)));
    }
    if ownership::refers_to::<ReplicationController>(owner) {
        let rc = stores.replication_controllers.get(&ObjectRef::new(&owner.name).within(ns)).filter(|rc| uid_matches(&rc.metadata.uid))?;
        return Some((owner.uid.clone(), rc.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)));
    }
    if ownership::refers_to::<StatefulSet>(owner) {
        let ss = stores.stateful_sets.get(&ObjectRef::new(&owner.name).within(ns)).filter(|ss| uid_matches(&ss.metadata.uid))?;
        return Some((owner.uid.clone(), ss.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)));
    }
    None
}

/// Any other controller: its `scale` subresource, if its resource serves one and the scale belongs
/// to the referenced object.
async fn scale_subresource(client: &kube::Client, owner: &OwnerReference, ns: &str) -> Result<Option<(String, i32)>, Error> {
    let (group, version) = owner.api_version.rsplit_once('/').unwrap_or(("", owner.api_version.as_str()));
    let gvk = GroupVersionKind::gvk(group, version, &owner.kind);
    let error = |source| Error::Scale { kind: owner.kind.clone(), name: owner.name.clone(), source };
    let (resource, caps) = match kube::discovery::pinned_kind(client, &gvk).await {
        Ok(found) => found,
        // An unknown kind is no controller, not a failure to retry.
        Err(kube::Error::Discovery(_)) => return Ok(None),
        Err(e) if crate::api_errors::is_not_found(&e) => return Ok(None),
        Err(e) => return Err(error(e)),
    };
    if !caps.subresources.iter().any(|(sub, _)| sub.plural == "scale") {
        return Ok(None);
    }
    let api: kube::Api<kube::core::DynamicObject> = kube::Api::namespaced_with(client.clone(), ns, &resource);
    let scale: Scale = match api.get_subresource("scale", &owner.name).await {
        Ok(obj) => serde_json::to_value(obj).and_then(serde_json::from_value).unwrap_or_default(),
        Err(e) if crate::api_errors::is_not_found(&e) => return Ok(None),
        Err(e) => return Err(error(e)),
    };
    if scale.metadata.uid.as_deref() != Some(owner.uid.as_str()) {
        return Ok(None);
    }
    Ok(Some((owner.uid.clone(), scale.spec.and_then(|s| s.replicas).unwrap_or(0))))
}

//! Which namespaces just saw a counted object change: metadata-only watches of the kinds quotas
//! count (pods come from the shared pod informer), so a deletion frees quota at once rather than at
//! the next resync. Creations are charged by the apiserver's admission plugin already.

use std::fmt::Debug;

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, ReplicationController, Secret, Service};
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

/// The namespace of every change (deletions included) to an object of kind `K`.
fn namespaces_of<K>(client: &kube::Client) -> impl Stream<Item = String> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let kind = K::kind(&()).to_string();
    watcher(Api::<PartialObjectMeta<K>>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .touched_objects()
        .filter_map(move |event| {
            let kind = kind.clone();
            async move {
                match event {
                    Ok(obj) => obj.metadata.namespace,
                    Err(error) => {
                        tracing::debug!(%kind, %error, "quota trigger watch failed; retrying");
                        None
                    }
                }
            }
        })
}

/// Namespaces of changes to every watched kind, merged.
pub fn namespaces_of_changes(client: kube::Client) -> impl Stream<Item = String> + Send + 'static {
    futures::stream::select_all([
        namespaces_of::<ConfigMap>(&client).boxed(),
        namespaces_of::<Secret>(&client).boxed(),
        namespaces_of::<Service>(&client).boxed(),
        namespaces_of::<PersistentVolumeClaim>(&client).boxed(),
        namespaces_of::<ReplicationController>(&client).boxed(),
        namespaces_of::<ReplicaSet>(&client).boxed(),
        namespaces_of::<Deployment>(&client).boxed(),
        namespaces_of::<StatefulSet>(&client).boxed(),
        namespaces_of::<DaemonSet>(&client).boxed(),
        namespaces_of::<Job>(&client).boxed(),
        namespaces_of::<CronJob>(&client).boxed(),
    ])
}

/// True if changes to `(resource, group)` reach the controller through a watch; quotas counting
/// other kinds are recalculated on a short timer instead.
pub fn is_watched(resource: &str, group: &str) -> bool {
    matches!(
        (group, resource),
        ("", "pods" | "configmaps" | "secrets" | "services" | "persistentvolumeclaims" | "replicationcontrollers" | "resourcequotas")
            | ("apps", "replicasets" | "deployments" | "statefulsets" | "daemonsets")
            | ("batch", "jobs" | "cronjobs")
    )
}

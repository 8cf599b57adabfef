//! The EndpointSlice controller: every service with a selector gets EndpointSlices listing the
//! pods it selects, with their ready/serving/terminating conditions and resolved ports.

pub mod desired;
pub mod plan;
pub mod pods;
mod sync;
pub(crate) mod tracker;

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::informer::Informer;

pub use sync::{is_managed_slice, slice_labels};
pub(crate) use sync::write;

/// The controller's name, as upstream.
pub const NAME: &str = "endpointslice-controller";
/// The label naming a slice's service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label naming who manages a slice, and this controller's value for it.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";

/// Failures syncing one service's slices; the sync is retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A service without namespace, name or uid cannot be synced.
    #[error("failed to sync endpoint slices: service has no {0}")]
    MissingField(&'static str),
    /// Creating, updating or deleting a slice failed.
    #[error("failed to {action} for service {service}: {source}")]
    Write {
        action: &'static str,
        service: String,
        #[source]
        source: kube::Error,
    },
}

/// What every sync shares.
pub struct Context {
    pub client: kube::Client,
    pub pods: Store<Pod>,
    pub slices: Store<EndpointSlice>,
    pub nodes: Store<Node>,
    tracker: tracker::Tracker,
}

/// The controller, running until `shutdown` resolves; it subscribes to the informers at once.
/// Nodes are only read (for endpoint zones).
pub fn run(
    client: kube::Client,
    services: &Informer<Service>,
    pods: &Informer<Pod>,
    slices: &Informer<EndpointSlice>,
    nodes: &Informer<Node>,
    concurrency: u16,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let service_store = services.store();
    let context = Arc::new(Context { client, pods: pods.store(), slices: slices.store(), nodes: nodes.store(), tracker: tracker::Tracker::default() });
    Controller::for_shared_stream(services.subscribe(), service_store.clone())
        .watches_shared_stream(pods.subscribe(), pod_mapper(service_store, slices.store()))
        .watches_shared_stream(slices.subscribe(), slice_owner)
        .with_config(controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(sync::reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "endpoint slice sync did not complete");
            }
        })
}

/// A pod concerns the services that select it now, and those whose slices still list it (its
/// labels may have changed, or it may be gone).
pub fn pod_mapper(
    services: Store<Service>,
    slices: Store<EndpointSlice>,
) -> impl Fn(Arc<Pod>) -> Vec<ObjectRef<Service>> + Send + Sync + 'static {
    move |pod| {
        let Some(ns) = pod.metadata.namespace.clone() else { return Vec::new() };
        let mut refs: Vec<ObjectRef<Service>> =
            services.state().iter().filter(|s| pods::selects(s, &pod)).map(|s| ObjectRef::from_obj(s.as_ref())).collect();
        let listed = slices.state().into_iter().filter(|s| {
            s.metadata.namespace.as_deref() == Some(ns.as_str())
                && s.endpoints.iter().any(|e| e.target_ref.as_ref().is_some_and(|r| r.name == pod.metadata.name && r.kind.as_deref() == Some("Pod")))
        });
        for slice in listed {
            if let Some(service) = slice.metadata.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL)) {
                refs.push(ObjectRef::new(service).within(&ns));
            }
        }
        refs
    }
}

/// A managed slice concerns its service (someone edited or deleted it: put it back).
fn slice_owner(slice: Arc<EndpointSlice>) -> Option<ObjectRef<Service>> {
    let labels = slice.metadata.labels.as_ref()?;
    if labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(MANAGED_BY) {
        return None;
    }
    Some(ObjectRef::new(labels.get(SERVICE_NAME_LABEL)?).within(slice.metadata.namespace.as_deref()?))
}

fn error_policy(service: Arc<Service>, error: &Error, _: Arc<Context>) -> Action {
    crate::retry::after_error("Service", service.metadata.name.as_deref(), matches!(error, Error::Write { source, .. } if crate::api_errors::is_conflict(source)), error)
}

#[cfg(test)]
mod tests {
    use super::pods::fixtures::{pod, service};
    use super::*;
    use k8s_openapi::api::core::v1::ObjectReference;
    use k8s_openapi::api::discovery::v1::Endpoint;
    use kube::runtime::reflector;
    use kube::runtime::watcher;

    fn store<K>(objects: Vec<K>) -> Store<K>
    where
        K: kube::Resource<DynamicType = ()> + Clone + 'static,
    {
        let (reader, mut writer) = reflector::store();
        for o in objects {
            writer.apply_watcher_event(&watcher::Event::Apply(o));
        }
        reader
    }

    fn listing(service: &str, pod: &str, managed_by: &str) -> EndpointSlice {
        let mut s = EndpointSlice::default();
        s.metadata.name = Some(format!("{service}-abc"));
        s.metadata.namespace = Some("default".into());
        s.metadata.labels = Some([(SERVICE_NAME_LABEL.to_string(), service.to_string()), (MANAGED_BY_LABEL.to_string(), managed_by.to_string())].into());
        s.endpoints = vec![Endpoint {
            addresses: vec!["10.0.0.1".into()],
            target_ref: Some(ObjectReference { kind: Some("Pod".into()), name: Some(pod.into()), ..Default::default() }),
            ..Default::default()
        }];
        s
    }

    #[test]
    fn pod_changes_reach_services() {
        let mapper = pod_mapper(store(vec![service("web", vec![])]), store(vec![listing("old", "a", MANAGED_BY)]));
        let names = |p| mapper(Arc::new(p)).into_iter().map(|r| r.name).collect::<Vec<_>>();
        let mut relabelled = pod("a", "10.0.0.1", true);
        relabelled.metadata.labels = None;
        let cases = [
            ("selected and listed", pod("a", "10.0.0.1", true), vec!["web", "old"]),
            ("selected only", pod("b", "10.0.0.2", true), vec!["web"]),
            ("relabelled away, still listed", relabelled, vec!["old"]),
        ];
        for (name, p, want) in cases {
            assert_eq!(names(p), want, "{name}");
        }
    }

    #[test]
    fn slices_map_to_their_service_when_ours() {
        let cases = [("ours", MANAGED_BY, Some("web".to_string())), ("someone else's", "mirroring", None)];
        for (name, managed_by, want) in cases {
            assert_eq!(slice_owner(Arc::new(listing("web", "a", managed_by))).map(|r| r.name), want, "{name}");
        }
    }
}

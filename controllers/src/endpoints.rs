//! The (legacy) Endpoints controller: every service with a selector gets an Endpoints object of the
//! same name listing its pods, ready ones under `addresses`, the others under `notReadyAddresses`.
//! The object goes when the service does.

pub mod subsets;

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::api_errors;
use crate::endpointslice::pods;
use crate::informer::Informer;

/// The controller's name, as upstream.
pub const NAME: &str = "endpoints-controller";

/// Failures syncing one service's Endpoints; the sync is retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A service without namespace or name cannot be synced.
    #[error("failed to sync endpoints: service has no {0}")]
    MissingField(&'static str),
    /// Writing or deleting the Endpoints failed.
    #[error("failed to {action} endpoints {namespace}/{name}: {source}")]
    Write {
        action: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

struct Context {
    client: kube::Client,
    pods: Store<Pod>,
    endpoints: Store<Endpoints>,
}

/// The controller, running until `shutdown` resolves; it subscribes to the informers at once.
pub fn run(
    client: kube::Client,
    services: &Informer<Service>,
    pods: &Informer<Pod>,
    endpoints: &Informer<Endpoints>,
    concurrency: u16,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let service_store = services.store();
    let context = Arc::new(Context { client: client.clone(), pods: pods.store(), endpoints: endpoints.store() });
    let deletions = delete_with_services(client, services.subscribe(), service_store.clone());
    let controller = Controller::for_shared_stream(services.subscribe(), service_store.clone())
        .watches_shared_stream(pods.subscribe(), pod_mapper(service_store, endpoints.store()))
        .watches_shared_stream(endpoints.subscribe(), same_name_service)
        .with_config(controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "endpoints sync did not complete");
            }
        });
    async move {
        let deleter = tokio::spawn(deletions);
        controller.await;
        deleter.abort();
    }
}

/// A pod concerns the services that select it and those whose Endpoints list it.
fn pod_mapper(services: Store<Service>, endpoints: Store<Endpoints>) -> impl Fn(Arc<Pod>) -> Vec<ObjectRef<Service>> + Send + Sync + 'static {
    move |pod| {
        let Some(ns) = pod.metadata.namespace.clone() else { return Vec::new() };
        let mut refs: Vec<ObjectRef<Service>> =
            services.state().iter().filter(|s| pods::selects(s, &pod)).map(|s| ObjectRef::from_obj(s.as_ref())).collect();
        for e in endpoints.state().iter().filter(|e| e.metadata.namespace.as_deref() == Some(ns.as_str())) {
            let addresses = e.subsets.iter().flatten().flat_map(|s| s.addresses.iter().flatten().chain(s.not_ready_addresses.iter().flatten()));
            if addresses.clone().any(|a| a.target_ref.as_ref().is_some_and(|r| r.name == pod.metadata.name)) {
                refs.push(ObjectRef::new(e.metadata.name.as_deref().unwrap_or_default()).within(&ns));
            }
        }
        refs
    }
}

/// Endpoints belong to the service of the same name (someone edited or deleted them: put them back).
fn same_name_service(endpoints: Arc<Endpoints>) -> Option<ObjectRef<Service>> {
    Some(ObjectRef::new(endpoints.metadata.name.as_deref()?).within(endpoints.metadata.namespace.as_deref()?))
}

async fn reconcile(service: Arc<Service>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = service.metadata.namespace.clone().ok_or(Error::MissingField("namespace"))?;
    let name = service.metadata.name.clone().ok_or(Error::MissingField("name"))?;
    if !pods::is_managed(&service) || service.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let all_pods = ctx.pods.state();
    let subsets = subsets::subsets(&service, all_pods.iter().map(Arc::as_ref));
    let existing = ctx.endpoints.get(&ObjectRef::new(&name).within(&ns));
    let Some(wanted) = subsets::desired(&service, existing.as_deref(), subsets) else {
        return Ok(Action::await_change());
    };
    let api: Api<Endpoints> = Api::namespaced(ctx.client.clone(), &ns);
    let error = |action| move |source| Error::Write { action, namespace: ns.clone(), name: name.clone(), source };
    let result = match existing {
        Some(_) => api.replace(wanted.metadata.name.as_deref().unwrap_or_default(), &PostParams::default(), &wanted).await.map_err(error("update")),
        None => match api.create(&PostParams::default(), &wanted).await {
            Err(e) if api_errors::is_namespace_terminating(&e) => return Ok(Action::await_change()),
            other => other.map_err(error("create")),
        },
    };
    result.map(|_| Action::await_change())
}

/// Deletes a service's Endpoints once the service is gone (they have no owner reference).
async fn delete_with_services(client: kube::Client, changes: impl futures::Stream<Item = Arc<Service>> + Send, services: Store<Service>) {
    let mut changes = std::pin::pin!(changes);
    while let Some(service) = changes.next().await {
        let (Some(ns), Some(name)) = (service.metadata.namespace.as_deref(), service.metadata.name.as_deref()) else { continue };
        if services.get(&ObjectRef::new(name).within(ns)).is_some() {
            continue;
        }
        let api: Api<Endpoints> = Api::namespaced(client.clone(), ns);
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => tracing::debug!(namespace = ns, name, "deleted endpoints of a deleted service"),
            Err(e) if api_errors::is_not_found(&e) => {}
            Err(error) => tracing::warn!(namespace = ns, name, %error, "failed to delete endpoints of a deleted service"),
        }
    }
}

fn error_policy(service: Arc<Service>, error: &Error, _: Arc<Context>) -> Action {
    crate::retry::after_error("Service", service.metadata.name.as_deref(), matches!(error, Error::Write { source, .. } if api_errors::is_conflict(source) || api_errors::is_already_exists(source)), error)
}

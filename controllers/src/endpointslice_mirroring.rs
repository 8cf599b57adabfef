//! The EndpointSlice mirroring controller: a Service without a selector gets its endpoints from an
//! Endpoints object someone wrote by hand, and this controller copies that object into EndpointSlices,
//! so everything that reads slices (the service proxy, DNS) serves such Services too. Endpoints that
//! the endpoints controller itself maintains carry the skip-mirror label and are left alone.

mod desired;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::endpointslice::plan::{self, Plan, SliceMeta};
use crate::endpointslice::tracker::Tracker;
use crate::endpointslice::{self, Error, MANAGED_BY_LABEL, SERVICE_NAME_LABEL};
use crate::informer::Informer;
use crate::ownership;

/// The controller's name, as upstream.
pub const NAME: &str = "endpointslicemirroring-controller";
/// The managed-by value of the slices this controller writes.
pub const MANAGED_BY: &str = "endpointslicemirroring-controller.k8s.io";

/// What every sync shares.
pub struct Context {
    client: kube::Client,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    tracker: Tracker,
}

/// The controller, running until `shutdown` resolves; it subscribes to the informers at once.
pub fn run(
    client: kube::Client,
    endpoints: &Informer<Endpoints>,
    services: &Informer<Service>,
    slices: &Informer<EndpointSlice>,
    concurrency: u16,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let context = Arc::new(Context { client, services: services.store(), slices: slices.store(), tracker: Tracker::default() });
    Controller::for_shared_stream(endpoints.subscribe(), endpoints.store())
        // Endpoints, Service and slices share namespace and name: a Service gaining or losing its
        // selector, or someone editing a mirrored slice, concerns the Endpoints of that name.
        .watches_shared_stream(services.subscribe(), |service: Arc<Service>| same_name::<Endpoints>(&service.metadata))
        .watches_shared_stream(slices.subscribe(), mirrored_endpoints)
        .with_config(controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "endpoint slice mirroring did not complete");
            }
        })
}

fn same_name<K: kube::Resource<DynamicType = ()>>(meta: &kube::api::ObjectMeta) -> Option<ObjectRef<K>> {
    Some(ObjectRef::new(meta.name.as_deref()?).within(meta.namespace.as_deref()?))
}

fn mirrored_endpoints(slice: Arc<EndpointSlice>) -> Option<ObjectRef<Endpoints>> {
    let labels = slice.metadata.labels.as_ref()?;
    if labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(MANAGED_BY) {
        return None;
    }
    Some(ObjectRef::new(labels.get(SERVICE_NAME_LABEL)?).within(slice.metadata.namespace.as_deref()?))
}

async fn reconcile(endpoints: Arc<Endpoints>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = endpoints.metadata.namespace.clone().ok_or(Error::MissingField("namespace"))?;
    let name = endpoints.metadata.name.clone().ok_or(Error::MissingField("name"))?;
    let key = format!("{ns}/{name}");
    let existing: Vec<EndpointSlice> = ctx
        .slices
        .state()
        .iter()
        .filter(|s| s.metadata.namespace.as_deref() == Some(ns.as_str()) && mirrored_endpoints(Arc::clone(s)).is_some_and(|r| r.name == name))
        .map(|s| s.as_ref().clone())
        .collect();
    if ctx.tracker.is_stale(&key, &existing) {
        return Ok(Action::requeue(Duration::from_millis(200)));
    }
    let service = ctx.services.get(&ObjectRef::new(&name).within(&ns));
    let wanted = if desired::should_mirror(&endpoints, service.as_deref()) { desired::endpoints_by_ports(&endpoints) } else { Default::default() };
    let plan = if wanted.is_empty() {
        // Nothing to mirror: no slices at all (unlike a selector Service, no empty placeholder).
        Plan { delete: existing, ..Default::default() }
    } else {
        let owner = ownership::controller_reference("v1", "Endpoints", &endpoints.metadata).ok_or(Error::MissingField("uid"))?;
        let meta = SliceMeta { service: name.clone(), namespace: ns.clone(), labels: desired::slice_labels(&endpoints, &name), owner };
        plan::plan(&meta, &wanted, &existing)
    };
    endpointslice::write(&ctx.client, &ns, &key, &plan, &ctx.tracker).await?;
    Ok(Action::await_change())
}

fn error_policy(endpoints: Arc<Endpoints>, error: &Error, _: Arc<Context>) -> Action {
    crate::retry::after_error("Endpoints", endpoints.metadata.name.as_deref(), matches!(error, Error::Write { source, .. } if crate::api_errors::is_conflict(source)), error)
}

//! One sync of one service's EndpointSlices: read pods and slices from the caches, plan, write.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;

use super::plan::{self, Plan, SliceMeta};
use super::tracker::Tracker;
use super::{Context, Error, MANAGED_BY, MANAGED_BY_LABEL, SERVICE_NAME_LABEL, desired, pods};
use crate::{api_errors, ownership};

/// Set on slices of headless services, as upstream.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// The labels of the service's slices: the service's own, then the ones that say whose they are.
pub fn slice_labels(service: &Service, name: &str) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = service
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != SERVICE_NAME_LABEL && k.as_str() != MANAGED_BY_LABEL && k.as_str() != HEADLESS_LABEL)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None") {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    }
    labels.insert(SERVICE_NAME_LABEL.into(), name.into());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    labels
}

/// True if this controller manages `slice` for the service `namespace/name`.
pub fn is_managed_slice(slice: &EndpointSlice, namespace: &str, name: &str) -> bool {
    let labels = slice.metadata.labels.as_ref();
    slice.metadata.namespace.as_deref() == Some(namespace)
        && labels.and_then(|l| l.get(SERVICE_NAME_LABEL)).map(String::as_str) == Some(name)
        && labels.and_then(|l| l.get(MANAGED_BY_LABEL)).map(String::as_str) == Some(MANAGED_BY)
}

pub async fn reconcile(service: Arc<Service>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = service.metadata.namespace.clone().ok_or(Error::MissingField("namespace"))?;
    let name = service.metadata.name.clone().ok_or(Error::MissingField("name"))?;
    let key = format!("{ns}/{name}");
    // Selectorless and ExternalName services get no slices from us; a deleting service loses its
    // slices to the garbage collector.
    if !pods::is_managed(&service) || service.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let existing: Vec<EndpointSlice> =
        ctx.slices.state().iter().filter(|s| is_managed_slice(s, &ns, &name)).map(|s| s.as_ref().clone()).collect();
    if ctx.tracker.is_stale(&key, &existing) {
        return Ok(Action::requeue(Duration::from_millis(200)));
    }
    let owner = ownership::controller_reference("v1", "Service", &service.metadata).ok_or(Error::MissingField("uid"))?;
    let meta = SliceMeta { service: name.clone(), namespace: ns.clone(), labels: slice_labels(&service, &name), owner };
    let pods = ctx.pods.state();
    let nodes = ctx.nodes.clone();
    let wanted = desired::endpoints_by_ports(&service, pods.iter().map(Arc::as_ref), |node| nodes.get(&ObjectRef::new(node)));
    let plan = plan::plan(&meta, &wanted, &existing);

    write(&ctx.client, &ns, &key, &plan, &ctx.tracker).await?;
    Ok(Action::await_change())
}

/// Makes the plan's writes for the slices of `key` (`namespace/name`) in namespace `ns`, telling
/// `tracker` what was written. In a namespace being deleted, where creating is refused, it stops
/// quietly: the slices are going anyway.
pub(crate) async fn write(client: &kube::Client, ns: &str, key: &str, plan: &Plan, tracker: &Tracker) -> Result<(), Error> {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    let write_error = |action: &'static str| {
        let service = key.to_string();
        move |source| Error::Write { action, service, source }
    };
    for slice in &plan.create {
        match api.create(&PostParams::default(), slice).await {
            Ok(created) => tracker.wrote(key, &created),
            Err(e) if api_errors::is_namespace_terminating(&e) => return Ok(()),
            Err(e) => return Err(write_error("create endpoint slice")(e)),
        }
    }
    for slice in &plan.update {
        let slice_name = slice.metadata.name.clone().unwrap_or_default();
        let updated = api.replace(&slice_name, &PostParams::default(), slice).await.map_err(write_error("update endpoint slice"))?;
        tracker.wrote(key, &updated);
    }
    for slice in &plan.delete {
        let slice_name = slice.metadata.name.clone().unwrap_or_default();
        let params = DeleteParams { preconditions: Some(Preconditions { uid: slice.metadata.uid.clone(), resource_version: None }), ..Default::default() };
        match api.delete(&slice_name, &params).await {
            Ok(_) => tracker.deleted(key, &slice_name),
            Err(e) if api_errors::is_not_found(&e) => {}
            Err(e) => return Err(write_error("delete endpoint slice")(e)),
        }
    }
    if !(plan.create.is_empty() && plan.update.is_empty() && plan.delete.is_empty()) {
        tracing::debug!(service = %key, created = plan.create.len(), updated = plan.update.len(), deleted = plan.delete.len(), "synced endpoint slices");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::pods::fixtures::service;
    use super::*;

    #[test]
    fn labels() {
        let mut svc = service("web", vec![]);
        svc.metadata.labels = Some([("team".to_string(), "a".to_string()), (MANAGED_BY_LABEL.to_string(), "someone".to_string())].into());
        let labels = slice_labels(&svc, "web");
        assert_eq!(labels.get("team").map(String::as_str), Some("a"), "service labels copied");
        assert_eq!(labels.get(MANAGED_BY_LABEL).map(String::as_str), Some(MANAGED_BY), "reserved labels are ours");
        assert_eq!(labels.get(SERVICE_NAME_LABEL).map(String::as_str), Some("web"));
        assert!(!labels.contains_key(HEADLESS_LABEL));
        if let Some(s) = svc.spec.as_mut() {
            s.cluster_ip = Some("None".into());
        }
        assert!(slice_labels(&svc, "web").contains_key(HEADLESS_LABEL), "headless");
    }
}

//! The root CA publisher: every active namespace has a ConfigMap `kube-root-ca.crt` holding the
//! cluster CA bundle, so pods can verify the apiserver; edits and deletions are undone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::api_errors;
use crate::informer::Informer;
use crate::serviceaccount::is_active;

pub const CONFIG_MAP: &str = "kube-root-ca.crt";
pub const KEY: &str = "ca.crt";
pub const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
/// What the bundle is for, in the annotation upstream uses to say so.
const DESCRIPTION: &str = "CA bundle for verifying the kube-apiserver through in-cluster endpoints \
(the kubernetes service IP, kubernetes.default.svc). Other uses are not guaranteed across Kubernetes distributions.";

/// Failures publishing the bundle into a namespace.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The ConfigMap could not be created or updated.
    #[error("failed to {action} config map {CONFIG_MAP} in namespace {namespace}: {source}")]
    Write {
        action: &'static str,
        namespace: String,
        #[source]
        source: kube::Error,
    },
}

struct Context {
    client: kube::Client,
    config_maps: Store<ConfigMap>,
    ca: String,
}

/// True when `cm` already carries exactly the bundle and the description.
pub fn up_to_date(cm: &ConfigMap, ca: &str) -> bool {
    let data_ok = cm.data.as_ref().is_some_and(|d| d.len() == 1 && d.get(KEY).map(String::as_str) == Some(ca));
    let described = cm.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(DESCRIPTION_ANNOTATION));
    data_ok && described && cm.binary_data.as_ref().is_none_or(BTreeMap::is_empty)
}

/// The published ConfigMap, based on `existing` (keeping its identity and other metadata) if any.
pub fn desired(existing: Option<&ConfigMap>, namespace: &str, ca: &str) -> ConfigMap {
    let mut metadata = existing.map(|cm| cm.metadata.clone()).unwrap_or_else(|| ObjectMeta {
        name: Some(CONFIG_MAP.to_string()),
        namespace: Some(namespace.to_string()),
        ..Default::default()
    });
    metadata.annotations.get_or_insert_with(BTreeMap::new).insert(DESCRIPTION_ANNOTATION.to_string(), DESCRIPTION.to_string());
    ConfigMap { metadata, data: Some(BTreeMap::from([(KEY.to_string(), ca.to_string())])), ..Default::default() }
}

/// The publisher, running until `shutdown` resolves; it subscribes to the informers at once. `config_maps` should watch only `kube-root-ca.crt`.
pub fn run(
    client: kube::Client,
    ca: String,
    namespaces: &Informer<Namespace>,
    config_maps: &Informer<ConfigMap>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let context = Arc::new(Context { client, config_maps: config_maps.store(), ca });
    Controller::for_shared_stream(namespaces.subscribe(), namespaces.store())
        .watches_shared_stream(config_maps.subscribe(), |cm: Arc<ConfigMap>| {
            let ns = cm.metadata.namespace.clone().filter(|_| cm.metadata.name.as_deref() == Some(CONFIG_MAP));
            ns.map(|ns| ObjectRef::<Namespace>::new(&ns))
        })
        .with_config(controller::Config::default().concurrency(1))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|_| async {})
}

async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action, Error> {
    let Some(name) = ns.metadata.name.clone() else { return Ok(Action::await_change()) };
    if !is_active(&ns) {
        return Ok(Action::await_change());
    }
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &name);
    let existing = ctx.config_maps.get(&ObjectRef::new(CONFIG_MAP).within(&name));
    let (action, result) = match existing.as_deref() {
        Some(cm) if up_to_date(cm, &ctx.ca) => return Ok(Action::await_change()),
        Some(cm) => ("update", api.replace(CONFIG_MAP, &PostParams::default(), &desired(Some(cm), &name, &ctx.ca)).await),
        None => ("create", api.create(&PostParams::default(), &desired(None, &name, &ctx.ca)).await),
    };
    match result {
        Ok(_) => tracing::info!(namespace = %name, action, "published root CA config map"),
        // Lost a race with the cache or another writer, or the namespace is terminating: the next
        // event brings us back if anything is still wrong.
        Err(e) if api_errors::is_already_exists(&e) || api_errors::is_conflict(&e) || api_errors::code(&e) == Some(403) => {}
        Err(e) if api_errors::is_not_found(&e) => {}
        Err(source) => return Err(Error::Write { action, namespace: name, source }),
    }
    Ok(Action::await_change())
}

fn error_policy(_: Arc<Namespace>, error: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(%error, "retrying");
    Action::requeue(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_drift() {
        let fresh = desired(None, "ns", "CA");
        assert!(up_to_date(&fresh, "CA"));
        assert_eq!(fresh.metadata.name.as_deref(), Some(CONFIG_MAP));
        let cases = [
            ("other CA", { let mut c = fresh.clone(); c.data = Some(BTreeMap::from([(KEY.into(), "X".into())])); c }),
            ("extra key", { let mut c = fresh.clone(); c.data.get_or_insert_with(BTreeMap::new).insert("x".into(), "y".into()); c }),
            ("no description", { let mut c = fresh.clone(); c.metadata.annotations = None; c }),
            ("no data", { let mut c = fresh.clone(); c.data = None; c }),
        ];
        for (name, cm) in cases {
            assert!(!up_to_date(&cm, "CA"), "{name}");
            assert!(up_to_date(&desired(Some(&cm), "ns", "CA"), "CA"), "{name}: repaired");
        }
    }
}

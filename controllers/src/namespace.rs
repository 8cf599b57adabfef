//! The Namespace controller: empties a namespace that is being deleted, then releases it to the
//! apiserver by removing the `kubernetes` finalizer.

mod conditions;
mod deleter;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::{self, Action, Controller};

use crate::api_errors;
use crate::discovery;
use crate::informer::Informer;

/// The finalizer this controller owns (in `spec.finalizers`).
pub const FINALIZER: &str = "kubernetes";

/// How soon to look again while content remains (pods may take their grace period to go).
const RECHECK: Duration = Duration::from_secs(2);

/// Failures finishing a namespace's deletion.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The status or finalize call failed.
    #[error("failed to {action} namespace {namespace}: {source}")]
    Api {
        action: &'static str,
        namespace: String,
        #[source]
        source: kube::Error,
    },
}

struct Context {
    client: kube::Client,
}

/// The controller, running until `shutdown` resolves; it subscribes to the informers at once.
pub fn run(
    client: kube::Client,
    namespaces: &Informer<Namespace>,
    concurrency: u16,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    Controller::for_shared_stream(namespaces.subscribe(), namespaces.store())
        .with_config(controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, Arc::new(Context { client }))
        .for_each(|_| async {})
}

fn has_finalizer(ns: &Namespace) -> bool {
    ns.spec.as_ref().and_then(|s| s.finalizers.as_ref()).is_some_and(|f| f.iter().any(|x| x == FINALIZER))
}

async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action, Error> {
    let Some(name) = ns.metadata.name.clone() else { return Ok(Action::await_change()) };
    if ns.metadata.deletion_timestamp.is_none() || !has_finalizer(&ns) {
        return Ok(Action::await_change());
    }
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    let api_error = |action| {
        let namespace = name.clone();
        move |source| Error::Api { action, namespace, source }
    };

    let (leftovers, discovery_error) = match discovery::deletable(&ctx.client).await {
        Ok(resources) => (deleter::delete_all(&ctx.client, &name, &resources).await, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let previous = ns.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    let next = conditions::merge(&previous, conditions::compute(&leftovers, discovery_error.as_deref(), Timestamp::now()));
    let mut latest = (*ns).clone();
    if next != previous {
        let patch = serde_json::json!({ "status": { "conditions": next } });
        match api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(updated) => latest = updated,
            Err(e) if api_errors::is_not_found(&e) => return Ok(Action::await_change()),
            Err(e) => return Err(api_error("update status of")(e)),
        }
    }
    let blocked = discovery_error.is_some() || leftovers.iter().any(|l| l.remaining > 0 || l.error.is_some());
    if blocked {
        return Ok(Action::requeue(RECHECK));
    }

    // The version just written, so the finalize call does not conflict with our own status update.
    let mut finalized = latest;
    if let Some(f) = finalized.spec.as_mut().and_then(|s| s.finalizers.as_mut()) {
        f.retain(|x| x != FINALIZER);
    }
    match api.replace_subresource("finalize", &name, &PostParams::default(), &finalized).await {
        Ok(_) => tracing::info!(namespace = %name, "namespace emptied; finalizer removed"),
        Err(e) if api_errors::is_not_found(&e) => {}
        Err(e) => return Err(api_error("finalize")(e)),
    }
    Ok(Action::await_change())
}

fn error_policy(_: Arc<Namespace>, error: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(%error, "retrying");
    Action::requeue(Duration::from_secs(5))
}

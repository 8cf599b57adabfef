//! The ServiceAccount controller: every active namespace has a `default` service account.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::api_errors;
use crate::informer::Informer;

/// The account every namespace gets.
pub const DEFAULT_ACCOUNT: &str = "default";

/// Failures ensuring a namespace's default account.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The account could not be created.
    #[error("failed to create service account {DEFAULT_ACCOUNT} in namespace {namespace}: {source}")]
    Create {
        namespace: String,
        #[source]
        source: kube::Error,
    },
}

struct Context {
    client: kube::Client,
    accounts: Store<ServiceAccount>,
}

/// A namespace that may receive new objects.
pub fn is_active(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_none() && ns.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating")
}

/// The controller, running until `shutdown` resolves; it subscribes to the informers at once. `accounts` should watch only `default` accounts.
pub fn run(
    client: kube::Client,
    namespaces: &Informer<Namespace>,
    accounts: &Informer<ServiceAccount>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let context = Arc::new(Context { client, accounts: accounts.store() });
    Controller::for_shared_stream(namespaces.subscribe(), namespaces.store())
        .watches_shared_stream(accounts.subscribe(), |sa: Arc<ServiceAccount>| {
            let ns = sa.metadata.namespace.clone().filter(|_| sa.metadata.name.as_deref() == Some(DEFAULT_ACCOUNT));
            ns.map(|ns| ObjectRef::<Namespace>::new(&ns))
        })
        .with_config(controller::Config::default().concurrency(1))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|_| async {})
}

async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action, Error> {
    let Some(name) = ns.metadata.name.clone() else { return Ok(Action::await_change()) };
    if !is_active(&ns) || ctx.accounts.get(&ObjectRef::new(DEFAULT_ACCOUNT).within(&name)).is_some() {
        return Ok(Action::await_change());
    }
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &name);
    let account = ServiceAccount {
        metadata: ObjectMeta { name: Some(DEFAULT_ACCOUNT.to_string()), ..Default::default() },
        ..Default::default()
    };
    match api.create(&PostParams::default(), &account).await {
        Ok(_) => tracing::info!(namespace = %name, "created default service account"),
        // Already there (the cache lagged), or the namespace began terminating meanwhile.
        Err(e) if api_errors::is_already_exists(&e) || api_errors::code(&e) == Some(403) => {}
        Err(source) => return Err(Error::Create { namespace: name, source }),
    }
    Ok(Action::await_change())
}

fn error_policy(_: Arc<Namespace>, error: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(%error, "retrying");
    Action::requeue(Duration::from_secs(5))
}

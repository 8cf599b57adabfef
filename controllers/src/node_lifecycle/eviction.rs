//! Taint-based eviction (upstream's taint eviction controller): deletes pods from nodes whose
//! `NoExecute` taints they do not tolerate, at once or when their `tolerationSeconds` run out.
//!
//! Each pod is reconciled on its own changes and whenever its node's `NoExecute` taints change; a
//! pod that may stay a while is simply requeued for its deadline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::Resource as _;
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};

use super::tolerations::{self, Eviction};
use super::{taints, writes};
use crate::events::Events;
use crate::informer::Informer;

/// The event source, as upstream.
pub const NAME: &str = "taint-eviction-controller";

/// Pods reconciled concurrently.
const CONCURRENCY: u16 = 8;

/// A pod on a node with `NoExecute` taints.
struct Watched {
    uid: String,
    /// When this controller first saw the pod's node tainted (the clock for taints without
    /// `timeAdded`).
    since: Timestamp,
    /// A deletion is pending (its cancellation is reported, as upstream).
    scheduled: bool,
}

struct Context {
    client: kube::Client,
    nodes: Store<Node>,
    events: Events,
    watched: Mutex<HashMap<String, Watched>>,
}

/// The eviction reconciler, running until `shutdown` resolves.
pub fn run(
    client: kube::Client,
    nodes: &Informer<Node>,
    pods: &Informer<Pod>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let context = Arc::new(Context {
        client: client.clone(),
        nodes: nodes.store(),
        events: Events::new(client, NAME),
        watched: Mutex::default(),
    });
    Controller::for_shared_stream(pods.subscribe(), pods.store())
        .watches_shared_stream(nodes.subscribe(), node_mapper(pods.store()))
        .with_config(controller::Config::default().concurrency(CONCURRENCY))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|_| async {})
}

/// A node change concerns its pods only when its `NoExecute` taints changed (nodes post status
/// every few seconds; that alone must not wake every pod).
fn node_mapper(pods: Store<Pod>) -> impl Fn(Arc<Node>) -> Vec<ObjectRef<Pod>> + Send + Sync + 'static {
    let last_seen: Mutex<HashMap<String, Vec<Taint>>> = Mutex::default();
    move |node| {
        let Some(name) = node.metadata.name.clone() else { return Vec::new() };
        let current = taints::no_execute(&node);
        let changed = {
            let mut seen = last_seen.lock().unwrap_or_else(|p| p.into_inner());
            let changed = seen.get(&name) != Some(&current);
            seen.insert(name.clone(), current);
            changed
        };
        if !changed {
            return Vec::new();
        }
        pods.state()
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name.as_str()))
            .map(|p| ObjectRef::from_obj(p.as_ref()))
            .collect()
    }
}

fn key(pod: &Pod) -> String {
    format!("{}/{}", pod.metadata.namespace.as_deref().unwrap_or_default(), pod.metadata.name.as_deref().unwrap_or_default())
}

impl Context {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Watched>> {
        self.watched.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops watching the pod; reports a cancelled deletion if one was pending.
    async fn forget(&self, pod: &Pod) {
        let was_scheduled = self.lock().remove(&key(pod)).is_some_and(|w| w.scheduled);
        if was_scheduled {
            let note = format!("Cancelling deletion of Pod {}", key(pod));
            self.events.normal(&pod.object_ref(&()), None, "TaintManagerEviction", "CancelEviction", note).await;
        }
    }

    /// When the pod's node was first seen tainted, remembering `now` for a pod seen first.
    fn since(&self, pod: &Pod, now: Timestamp) -> Timestamp {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let mut watched = self.lock();
        let entry = watched.entry(key(pod)).or_insert_with(|| Watched { uid: uid.clone(), since: now, scheduled: false });
        if entry.uid != uid {
            *entry = Watched { uid, since: now, scheduled: false };
        }
        entry.since
    }

    fn set_scheduled(&self, pod: &Pod) {
        if let Some(w) = self.lock().get_mut(&key(pod)) {
            w.scheduled = true;
        }
    }
}

async fn reconcile(pod: Arc<Pod>, ctx: Arc<Context>) -> Result<Action, writes::Error> {
    let node_name = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
    let node = node_name.and_then(|n| ctx.nodes.get(&ObjectRef::new(n)));
    let (Some(node), None) = (node, pod.metadata.deletion_timestamp.as_ref()) else {
        // Unscheduled, on a node that is gone, or already being deleted: nothing to do.
        ctx.forget(&pod).await;
        return Ok(Action::await_change());
    };
    let no_execute = taints::no_execute(&node);
    if no_execute.is_empty() {
        ctx.forget(&pod).await;
        return Ok(Action::await_change());
    }
    let now = Timestamp::now();
    let since = ctx.since(&pod, now);
    let pod_tolerations = pod.spec.as_ref().and_then(|s| s.tolerations.as_deref()).unwrap_or_default();
    let created = pod.metadata.creation_timestamp.as_ref().map(|t| t.0);
    match tolerations::eviction(&no_execute, pod_tolerations, created, since) {
        Eviction::Never => {
            ctx.forget(&pod).await;
            Ok(Action::await_change())
        }
        Eviction::At(deadline) if deadline > now => {
            ctx.set_scheduled(&pod);
            let wait = Duration::try_from(deadline.duration_since(now)).unwrap_or(Duration::from_secs(1));
            // A little past the deadline, so the next look finds it reached.
            Ok(Action::requeue(wait + Duration::from_millis(100)))
        }
        Eviction::At(_) | Eviction::Now => {
            let note = format!("Marking for deletion Pod {}", key(&pod));
            tracing::info!(pod = %key(&pod), node = node_name.unwrap_or_default(), "deleting pod: it does not tolerate its node's NoExecute taints (or no longer)");
            ctx.events.normal(&pod.object_ref(&()), None, "TaintManagerEviction", "Evict", note).await;
            let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
            writes::evict_pod(&Api::namespaced(ctx.client.clone(), namespace), &pod, now).await?;
            ctx.lock().remove(&key(&pod));
            Ok(Action::await_change())
        }
    }
}

fn error_policy(pod: Arc<Pod>, error: &writes::Error, _: Arc<Context>) -> Action {
    tracing::warn!(pod = %key(&pod), %error, "taint eviction failed; retrying");
    Action::requeue(Duration::from_secs(1))
}

//! Taints by condition: keeps each node's `NoSchedule` taints in step with its conditions and
//! `spec.unschedulable`, so the scheduler stops placing pods on nodes that cannot take them — and
//! starts once a new node (tainted `not-ready` by admission) reports Ready.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::runtime::controller::{self, Action, Controller};

use super::taints;
use super::writes;
use crate::informer::Informer;

/// Nodes reconciled concurrently (upstream runs eight node workers).
const CONCURRENCY: u16 = 8;

struct Context {
    nodes: Api<Node>,
}

/// The reconciler over every node, running until `shutdown` resolves.
pub fn run(
    client: kube::Client,
    nodes: &Informer<Node>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    Controller::for_shared_stream(nodes.subscribe(), nodes.store())
        .with_config(controller::Config::default().concurrency(CONCURRENCY))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, Arc::new(Context { nodes: Api::all(client) }))
        .for_each(|_| async {})
}

async fn reconcile(node: Arc<Node>, ctx: Arc<Context>) -> Result<Action, writes::Error> {
    let Some(name) = node.metadata.name.as_deref() else { return Ok(Action::await_change()) };
    // Decide on the cached node; write only when it is out of step, recomputing on the fresh one.
    if taints::with_no_schedule(&node, &taints::wanted_no_schedule(&node), Timestamp::now()).is_none() {
        return Ok(Action::await_change());
    }
    let edit = |fresh: &Node| taints::with_no_schedule(fresh, &taints::wanted_no_schedule(fresh), Timestamp::now());
    if writes::edit_taints(&ctx.nodes, name, edit).await? {
        tracing::info!(node = name, wanted = ?taints::wanted_no_schedule(&node), "updated NoSchedule taints");
    }
    Ok(Action::await_change())
}

fn error_policy(node: Arc<Node>, error: &writes::Error, _: Arc<Context>) -> Action {
    tracing::warn!(node = node.metadata.name.as_deref().unwrap_or(""), %error, "tainting by condition failed; retrying");
    Action::requeue(Duration::from_secs(5))
}

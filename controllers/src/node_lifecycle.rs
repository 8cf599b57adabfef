//! The node lifecycle controller (upstream's `nodelifecycle` with its built-in taint eviction):
//!
//! - judges each node alive by its Lease in `kube-node-lease` and its Ready heartbeat, and sets the
//!   agent's conditions Unknown when both go quiet past the grace period;
//! - keeps `NoSchedule` taints in step with node conditions (removing the `not-ready` taint
//!   admission puts on every new node once it is Ready);
//! - taints not-ready and unreachable nodes `NoExecute`, at a limited rate, and deletes the pods
//!   that do not tolerate that (after their `tolerationSeconds`);
//! - marks pods on unreachable nodes not ready.

mod config;
mod eviction;
mod health;
mod monitor;
mod no_schedule;
mod taints;
pub(crate) mod tolerations;
mod writes;
mod zone;

use futures::FutureExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};

use crate::events::Events;
use crate::informer::Informer;

pub use config::{Error, NodeLifecycleConfig, NodeLifecycleFlags, parse_duration};
pub use monitor::LEASE_NAMESPACE;

/// The event source for node events, as upstream.
pub const NAME: &str = "node-controller";

/// The controller, running until `shutdown` resolves; it subscribes to the informers at once.
/// `leases` must watch the `kube-node-lease` namespace ([`LEASE_NAMESPACE`]); `config` should have
/// been checked with [`NodeLifecycleConfig::validate`] (or built by [`NodeLifecycleFlags::into_config`]).
pub fn run(
    client: kube::Client,
    config: NodeLifecycleConfig,
    nodes: &Informer<Node>,
    leases: &Informer<Lease>,
    pods: &Informer<Pod>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let shutdown = shutdown.boxed().shared();
    let tainting = no_schedule::run(client.clone(), nodes, shutdown.clone());
    let evicting = eviction::run(client.clone(), nodes, pods, shutdown.clone());
    let events = Events::new(client.clone(), NAME);
    let monitor = monitor::Monitor::new(client, config, nodes.store(), leases.store(), pods.store(), events);
    async move {
        tracing::info!("starting node lifecycle controller");
        futures::join!(tainting, evicting, monitor.run(shutdown));
        tracing::info!("node lifecycle controller stopped");
    }
}

//! The garbage collector: deletes objects whose owners are gone, and carries out foreground
//! deletion and orphaning, for every resource kind discovery reports.

mod absent_owners;
mod decide;
mod graph;
mod monitors;
mod queue;
mod worker;

use std::sync::{Arc, Mutex};

use futures::StreamExt;

use graph::Graph;
use monitors::Monitors;
use queue::Queue;

/// Failures handling one object; the work is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An owner reference names a kind discovery does not know (yet).
    #[error("failed to resolve owner kind {0}")]
    UnknownKind(String),
    /// An API call failed.
    #[error("failed to {action} {object}: {source}")]
    Api {
        action: &'static str,
        object: String,
        #[source]
        source: kube::Error,
    },
}

/// Runs the collector until `shutdown` resolves. `ready` fires once every monitor has listed once
/// (or discovery failed, so readiness does not hang on it).
pub async fn run(
    client: kube::Client,
    workers: usize,
    ready: tokio::sync::oneshot::Sender<()>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let queue = Queue::default();
    let monitors = Monitors::new(client, Arc::new(Mutex::new(Graph::default())), queue.clone());
    let (discovered_tx, discovered_rx) = tokio::sync::oneshot::channel();
    let discovery = tokio::spawn(monitors.clone().run(discovered_tx));
    if let Ok(Err(error)) = discovered_rx.await {
        tracing::warn!(%error, "garbage collector starts without a full view; it will retry discovery");
    }
    // Acting before the graph is complete would send every owner lookup to the API; wait for it.
    monitors.wait_synced().await;
    let _ = ready.send(());
    tracing::info!("garbage collector graph synced");

    let work = futures::stream::repeat(()).then(|_| queue.pop()).for_each_concurrent(workers.max(1), |item| {
        let monitors = monitors.clone();
        let queue = queue.clone();
        async move {
            match worker::process(&monitors, &item).await {
                Ok(()) => queue.succeeded(&item),
                Err(error) => {
                    tracing::debug!(%error, ?item, "garbage collection failed; will retry");
                    queue.retry(item);
                }
            }
        }
    });
    tokio::select! {
        _ = work => {}
        _ = shutdown => {}
    }
    discovery.abort();
}

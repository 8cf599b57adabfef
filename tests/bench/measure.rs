//! Timing one run: bulk pod creation, a watch that records when each pod's spec.nodeName first appears,
//! and the no-op binder that binds pending pods round-robin through pods/binding.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

/// What the watch and the creators saw, by pod name.
#[derive(Default)]
pub struct Tracker {
    pub created: HashMap<String, Instant>,
    pub bound: HashMap<String, Instant>,
    pending_sent: HashSet<String>,
}

pub type Shared = Arc<Mutex<Tracker>>;

pub fn lock(t: &Shared) -> MutexGuard<'_, Tracker> {
    // A panicking holder cannot leave the maps half-updated in a way that matters for timings.
    t.lock().unwrap_or_else(|p| p.into_inner())
}

/// Watches the namespace's pods with `selector`; records the first time each shows a nodeName, and sends
/// pods seen without one to `pending` (the no-op binder) once. The receiver resolves when the initial
/// list is done, so creates start only once nothing can be missed.
pub fn spawn_watch(
    api: Api<Pod>,
    selector: String,
    tracker: Shared,
    pending: Option<mpsc::UnboundedSender<String>>,
) -> (JoinHandle<()>, oneshot::Receiver<()>) {
    let (ready_tx, ready_rx) = oneshot::channel();
    let task = tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        let mut stream = watcher(api, watcher::Config::default().labels(&selector)).default_backoff().boxed();
        while let Some(item) = stream.next().await {
            let pod = match item {
                Ok(watcher::Event::InitDone) => {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(());
                    }
                    continue;
                }
                Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => pod,
                Ok(_) => continue,
                Err(e) => {
                    eprintln!("pod watch error (retrying): {e}");
                    continue;
                }
            };
            let now = Instant::now();
            let Some(name) = pod.metadata.name else { continue };
            let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("");
            let mut t = lock(&tracker);
            if !node.is_empty() {
                t.bound.entry(name).or_insert(now);
            } else if let Some(tx) = &pending
                && t.pending_sent.insert(name.clone())
            {
                let _ = tx.send(name);
            }
        }
    });
    (task, ready_rx)
}

/// Creates `pods` with at most `concurrency` requests in flight, recording each send time. Retries
/// throttling and server errors a few times; returns one message per pod that could not be created.
pub async fn create_pods(api: &Api<Pod>, pods: Vec<Pod>, tracker: &Shared, concurrency: usize) -> Vec<String> {
    futures::stream::iter(pods)
        .map(|pod| async move {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let mut attempt = 0;
            loop {
                lock(tracker).created.insert(name.clone(), Instant::now());
                match api.create(&PostParams::default(), &pod).await {
                    Ok(_) => return None,
                    Err(kube::Error::Api(s)) if (s.code == 429 || s.code >= 500) && attempt < 5 => {}
                    Err(e) => return Some(format!("create {name}: {e}")),
                }
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
            }
        })
        .buffer_unordered(concurrency.max(1))
        .filter_map(|r| async move { r })
        .collect()
        .await
}

/// The no-op binder: binds each name it receives to the next node round-robin, `concurrency` at a time.
/// Resolves to the bind errors once the sender side is dropped and every bind finished.
pub fn spawn_noop_binder(
    api: Api<Pod>,
    nodes: Arc<Vec<String>>,
    mut pending: mpsc::UnboundedReceiver<String>,
    concurrency: usize,
) -> JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        let next = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        while let Some(name) = pending.recv().await {
            let Ok(permit) = permits.clone().acquire_owned().await else { break };
            let (api, nodes, next, errors) = (api.clone(), nodes.clone(), next.clone(), errors.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = permit;
                if nodes.is_empty() {
                    return;
                }
                let node = &nodes[next.fetch_add(1, Ordering::Relaxed) % nodes.len()];
                let binding = json!({
                    "apiVersion": "v1", "kind": "Binding",
                    "metadata": {"name": name},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": node},
                });
                let res: Result<serde_json::Value, _> =
                    api.create_subresource("binding", &name, &PostParams::default(), &binding).await;
                if let Err(e) = res {
                    errors.lock().unwrap_or_else(|p| p.into_inner()).push(format!("bind {name} to {node}: {e}"));
                }
            }));
            tasks.retain(|t| !t.is_finished());
        }
        for t in tasks {
            let _ = t.await;
        }
        std::mem::take(&mut *errors.lock().unwrap_or_else(|p| p.into_inner()))
    })
}

/// Waits until `total` pods are bound, `deadline` passes, or `alive` reports the scheduler gone.
/// Returns why it stopped early, if it did.
pub async fn wait_bound(
    tracker: &Shared,
    total: usize,
    deadline: Instant,
    mut alive: impl FnMut() -> Option<String>,
) -> Option<String> {
    loop {
        let bound = lock(tracker).bound.len();
        if bound >= total {
            return None;
        }
        if let Some(why) = alive() {
            return Some(why);
        }
        if Instant::now() >= deadline {
            return Some(format!("timed out with {bound}/{total} pods bound"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Lists the namespace's pods with `selector` as pod name → node name ("" when unbound).
pub async fn placements(api: &Api<Pod>, selector: &str) -> Result<HashMap<String, String>, kube::Error> {
    let lp = kube::api::ListParams::default().labels(selector);
    let pods = api.list(&lp).await?;
    Ok(pods
        .items
        .into_iter()
        .filter_map(|p| {
            let node = p.spec.and_then(|s| s.node_name).unwrap_or_default();
            p.metadata.name.map(|n| (n, node))
        })
        .collect())
}

/// Deletes every pod of the namespace at once (grace 0: no agent would ever confirm a graceful delete)
/// and waits up to `timeout` for them to be gone.
pub async fn delete_all_pods(api: &Api<Pod>, timeout: Duration) -> Result<(), String> {
    let dp = kube::api::DeleteParams { grace_period_seconds: Some(0), ..Default::default() };
    api.delete_collection(&dp, &kube::api::ListParams::default())
        .await
        .map_err(|e| format!("failed to delete the pods: {e}"))?;
    let deadline = Instant::now() + timeout;
    loop {
        let left = api
            .list_metadata(&kube::api::ListParams::default().limit(1))
            .await
            .map_err(|e| format!("failed to list pods: {e}"))?;
        if left.items.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("pods still present after {}s", timeout.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

//! One watch on the namespace's pods: how many exist per pod-template-hash (what the cases wait for), and
//! the readiness marker that stands in for kubelets — while it is on, every pod seen not Ready gets a
//! Ready status patch (`concurrency` in flight), so a rolling update can progress past maxSurge.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::objects;

/// The pods that exist now (not yet deleted from storage), by name → pod-template-hash.
#[derive(Default)]
pub struct PodSet {
    hashes: HashMap<String, String>,
    /// Pods that are neither Ready nor terminating: what the marker has to patch.
    unready: HashSet<String>,
    /// Pods already handed to the readiness marker.
    marked: HashSet<String>,
    pub patch_errors: Vec<String>,
}

impl PodSet {
    pub fn total(&self) -> usize {
        self.hashes.len()
    }

    /// Pods whose hash is not `old` (None: every pod with a hash).
    pub fn not_of(&self, old: &HashSet<String>) -> usize {
        self.hashes.values().filter(|h| !h.is_empty() && !old.contains(*h)).count()
    }

    /// The pods not Ready that were never handed to the marker, now recorded as handed over.
    fn take_unmarked(&mut self) -> Vec<String> {
        let todo: Vec<String> = self.unready.iter().filter(|n| !self.marked.contains(*n)).cloned().collect();
        self.marked.extend(todo.iter().cloned());
        todo
    }

    pub fn hashes(&self) -> HashSet<String> {
        self.hashes.values().filter(|h| !h.is_empty()).cloned().collect()
    }
}

pub type Shared = Arc<Mutex<PodSet>>;

pub fn lock(s: &Shared) -> MutexGuard<'_, PodSet> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

pub struct PodWatch {
    pub pods: Shared,
    marking: Arc<AtomicBool>,
    to_mark: mpsc::UnboundedSender<String>,
    watch: JoinHandle<()>,
    marker: JoinHandle<()>,
}

impl PodWatch {
    /// Starts the watch (and the idle marker); returns once the initial list is in.
    pub async fn start(api: Api<Pod>, concurrency: usize) -> anyhow::Result<Self> {
        let pods = Shared::default();
        let marking = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        let watch = tokio::spawn(watch_pods(api.clone(), pods.clone(), marking.clone(), tx.clone(), ready_tx));
        let marker = tokio::spawn(mark_ready(api, pods.clone(), rx, concurrency));
        let pw = PodWatch { pods, marking, to_mark: tx, watch, marker };
        if tokio::time::timeout(Duration::from_secs(60), ready_rx).await.is_err() {
            pw.stop();
            anyhow::bail!("the pod watch did not start within 60s");
        }
        Ok(pw)
    }

    /// Turns the readiness marker on: every pod not Ready now, and every one seen later, is marked.
    pub fn mark_ready(&self) {
        let mut set = lock(&self.pods);
        // Under the lock, so the watch cannot hand over a pod between the flag and the sweep.
        self.marking.store(true, Ordering::SeqCst);
        for name in set.take_unmarked() {
            let _ = self.to_mark.send(name);
        }
    }

    pub fn stop(&self) {
        self.watch.abort();
        self.marker.abort();
    }

    /// Polls `done` on the pod set every 10 ms until it holds (Ok: when it was first seen) or `deadline`
    /// passes, or `abort` reports a reason (a controller manager that exited).
    pub async fn wait(
        &self,
        deadline: Instant,
        mut abort: impl FnMut() -> Option<String>,
        done: impl Fn(&PodSet) -> bool,
    ) -> Result<Instant, String> {
        loop {
            if done(&lock(&self.pods)) {
                return Ok(Instant::now());
            }
            if let Some(why) = abort() {
                return Err(why);
            }
            if Instant::now() >= deadline {
                let p = lock(&self.pods);
                return Err(format!("timed out ({} pods exist, hashes {:?})", p.total(), p.hashes()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn watch_pods(
    api: Api<Pod>,
    pods: Shared,
    marking: Arc<AtomicBool>,
    to_mark: mpsc::UnboundedSender<String>,
    ready: oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut stream = watcher(api, watcher::Config::default()).default_backoff().boxed();
    while let Some(item) = stream.next().await {
        let (pod, deleted) = match item {
            Ok(watcher::Event::InitDone) => {
                if let Some(tx) = ready.take() {
                    let _ = tx.send(());
                }
                continue;
            }
            Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => (pod, false),
            Ok(watcher::Event::Delete(pod)) => (pod, true),
            Ok(watcher::Event::Init) => continue,
            Err(e) => {
                eprintln!("pod watch error (retrying): {e}");
                continue;
            }
        };
        let Some(name) = pod.metadata.name.clone() else { continue };
        let mut set = lock(&pods);
        if deleted {
            set.hashes.remove(&name);
            set.unready.remove(&name);
            set.marked.remove(&name);
            continue;
        }
        set.hashes.insert(name.clone(), objects::template_hash(&pod));
        if pod.metadata.deletion_timestamp.is_some() || objects::is_ready(&pod) {
            set.unready.remove(&name);
            continue;
        }
        set.unready.insert(name.clone());
        if marking.load(Ordering::SeqCst) && set.marked.insert(name.clone()) {
            let _ = to_mark.send(name);
        }
    }
}

/// Patches each received pod's status to Ready, `concurrency` at a time; a pod gone meanwhile is fine.
async fn mark_ready(api: Api<Pod>, pods: Shared, rx: mpsc::UnboundedReceiver<String>, concurrency: usize) {
    tokio_stream_of(rx)
        .map(|name| {
            let (api, pods) = (api.clone(), pods.clone());
            async move {
                let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
                let patch = objects::ready_status_patch(&now);
                match api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                    Err(e) => {
                        let mut set = lock(&pods);
                        // Let a later event of this pod retry it.
                        set.marked.remove(&name);
                        set.patch_errors.push(format!("mark {name} Ready: {e}"));
                    }
                }
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<()>()
        .await;
}

fn tokio_stream_of<T>(mut rx: mpsc::UnboundedReceiver<T>) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_hash() {
        let mut set = PodSet::default();
        for (name, hash) in [("a", "old"), ("b", "old"), ("c", "new"), ("d", "")] {
            set.hashes.insert(name.into(), hash.into());
        }
        let old: HashSet<String> = ["old".to_string()].into();
        let cases =
            [("all but old and unhashed", set.not_of(&old), 1), ("none excluded", set.not_of(&HashSet::new()), 3)];
        for (name, got, want) in cases {
            assert_eq!(got, want, "{name}");
        }
        assert_eq!(set.total(), 4);

        set.unready.extend(["a".to_string(), "b".to_string()]);
        set.marked.insert("a".into());
        assert_eq!(set.take_unmarked(), vec!["b".to_string()], "only the pod not handed over yet");
        assert!(set.take_unmarked().is_empty(), "nothing twice");
        assert_eq!(set.hashes().len(), 2);
    }
}

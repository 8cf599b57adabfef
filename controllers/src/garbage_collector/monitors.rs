//! One metadata-only watch per discovered resource kind, feeding the ownership graph.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;

use super::absent_owners::AbsentOwners;
use super::graph::{Graph, Node};
use super::queue::Queue;
use crate::discovery::{self, Resource};

/// How often discovery is repeated to pick up new kinds (custom resources).
const REDISCOVERY: Duration = Duration::from_secs(60);

/// Kinds the collector leaves alone: events are many, short-lived and never owners.
fn ignored(r: &Resource) -> bool {
    r.api.plural == "events" && (r.api.group.is_empty() || r.api.group == "events.k8s.io")
}

/// The discovered kinds, by (group, kind), for resolving owner references.
#[derive(Default, Clone)]
pub struct Kinds(Arc<Mutex<HashMap<GroupKind, Arc<Resource>>>>);

/// (API group, kind).
type GroupKind = (String, String);

impl Kinds {
    pub fn get(&self, api_version: &str, kind: &str) -> Option<Arc<Resource>> {
        let group = crate::ownership::api_group(api_version);
        self.0.lock().unwrap_or_else(|p| p.into_inner()).get(&(group.to_string(), kind.to_string())).cloned()
    }

    fn insert(&self, r: Arc<Resource>) -> bool {
        let key = (r.api.group.clone(), r.api.kind.clone());
        let mut kinds = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if kinds.contains_key(&key) {
            return false;
        }
        kinds.insert(key, r);
        true
    }
}

/// Shared state of the monitors.
#[derive(Clone)]
pub struct Monitors {
    pub client: kube::Client,
    pub graph: Arc<Mutex<Graph>>,
    pub queue: Queue,
    pub kinds: Kinds,
    pub absent_owners: Arc<AbsentOwners>,
    /// Count of monitors started, and of those that have completed their first list.
    synced: watch::Sender<(usize, usize)>,
}

impl Monitors {
    pub fn new(client: kube::Client, graph: Arc<Mutex<Graph>>, queue: Queue) -> Self {
        Self { client, graph, queue, kinds: Kinds::default(), absent_owners: Arc::default(), synced: watch::channel((0, 0)).0 }
    }

    /// Discovers kinds and starts a monitor for each new one, now and every minute; reports the
    /// outcome of the first discovery on `first_done`.
    pub async fn run(self, first_done: tokio::sync::oneshot::Sender<Result<(), discovery::Error>>) {
        let mut first = Some(first_done);
        loop {
            let result = discovery::deletable(&self.client).await;
            match &result {
                Ok(resources) => {
                    for r in resources.iter().filter(|r| r.supports("watch") && !ignored(r)) {
                        let r = Arc::new(r.clone());
                        if self.kinds.insert(r.clone()) {
                            self.synced.send_modify(|(started, _)| *started += 1);
                            tokio::spawn(self.clone().monitor(r));
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "garbage collector discovery failed; retrying"),
            }
            if let Some(tx) = first.take() {
                let _ = tx.send(result.map(|_| ()));
            }
            tokio::time::sleep(REDISCOVERY).await;
        }
    }

    /// Resolves once every monitor started so far has completed its first list.
    pub async fn wait_synced(&self) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|(started, synced)| synced >= started).await;
    }

    fn node(resource: &Arc<Resource>, obj: &PartialObjectMeta<DynamicObject>) -> Option<Node> {
        let meta = &obj.metadata;
        Some(Node {
            uid: meta.uid.clone()?,
            resource: resource.clone(),
            namespace: meta.namespace.clone(),
            name: meta.name.clone()?,
            owners: meta.owner_references.clone().unwrap_or_default(),
            deleting: meta.deletion_timestamp.is_some(),
            finalizers: meta.finalizers.clone().unwrap_or_default(),
        })
    }

    async fn monitor(self, resource: Arc<Resource>) {
        let api: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(self.client.clone(), &resource.api);
        let mut events = watcher(api, watcher::Config::default()).default_backoff().boxed();
        let mut listed: HashSet<String> = HashSet::new();
        let mut first_list = true;
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(e) => e,
                Err(error) => {
                    tracing::debug!(resource = %resource.api.plural, %error, "garbage collector watch failed; retrying");
                    continue;
                }
            };
            let list_done = matches!(event, watcher::Event::InitDone);
            let work = {
                let mut graph = self.graph.lock().unwrap_or_else(|p| p.into_inner());
                match event {
                    watcher::Event::Init => {
                        listed.clear();
                        Vec::new()
                    }
                    watcher::Event::InitApply(obj) => {
                        let node = Self::node(&resource, &obj);
                        if let Some(n) = &node {
                            listed.insert(n.uid.clone());
                        }
                        node.map(|n| graph.upsert(n)).unwrap_or_default()
                    }
                    watcher::Event::Apply(obj) => Self::node(&resource, &obj).map(|n| graph.upsert(n)).unwrap_or_default(),
                    watcher::Event::Delete(obj) => obj.metadata.uid.as_deref().map(|uid| graph.remove(uid)).unwrap_or_default(),
                    watcher::Event::InitDone => {
                        // Objects deleted while the watch was down never get a Delete event.
                        let stale: Vec<String> = graph.uids_of(&resource).into_iter().filter(|u| !listed.contains(u)).collect();
                        stale.iter().flat_map(|uid| graph.remove(uid)).collect()
                    }
                }
            };
            self.queue.extend(work);
            if list_done && first_list {
                first_list = false;
                self.synced.send_modify(|(_, synced)| *synced += 1);
            }
        }
    }
}

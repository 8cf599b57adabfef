//! One watch per resource, shared by every controller that needs it.
//!
//! kube-runtime's own shared streams do not forward deletions, and the replica set controller must
//! see a pod vanish to replace it, so this small informer keeps a reflector store and fans every
//! change — deletions included — out to any number of subscribers.

use std::collections::HashSet;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::broadcast;

/// How many changes a slow subscriber may fall behind before it is sent the whole store again.
const CHANGE_BUFFER: usize = 4096;

/// A watched resource: a cache plus a fan-out of changed objects.
pub struct Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    store: Store<K>,
    changes: broadcast::Sender<Arc<K>>,
}

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    /// Starts watching `api` on the runtime; the watch retries with backoff until the process exits.
    pub fn spawn(api: Api<K>, config: watcher::Config) -> Self {
        let (store, writer) = reflector::store::<K>();
        let (changes, _) = broadcast::channel(CHANGE_BUFFER);
        tokio::spawn(drive(api, config, writer, changes.clone()));
        Self { store, changes }
    }

    /// The cache; empty until the first list completes (see [`Store::wait_until_ready`]).
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Every object that changes from now on (a deleted object is sent in its last known state).
    /// A subscriber that falls behind receives the whole cache instead of the changes it missed.
    pub fn subscribe(&self) -> impl Stream<Item = Arc<K>> + Send + 'static {
        let store = self.store.clone();
        let receiver = self.changes.subscribe();
        futures::stream::unfold(receiver, move |mut receiver| {
            let store = store.clone();
            async move {
                match receiver.recv().await {
                    Ok(obj) => Some((vec![obj], receiver)),
                    Err(broadcast::error::RecvError::Lagged(_)) => Some((store.state(), receiver)),
                    Err(broadcast::error::RecvError::Closed) => None,
                }
            }
        })
        .flat_map(futures::stream::iter)
    }
}

/// Feeds the store from the watch and broadcasts each change after the store has seen it, so a
/// subscriber that looks an object up in the store finds the state it was told about (or newer).
async fn drive<K>(
    api: Api<K>,
    config: watcher::Config,
    mut writer: reflector::store::Writer<K>,
    changes: broadcast::Sender<Arc<K>>,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let kind = K::kind(&()).to_string();
    let reader = writer.as_reader();
    let mut events = watcher(api, config).default_backoff().boxed();
    let mut before_relist: Vec<Arc<K>> = Vec::new();
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!(%kind, %error, "watch failed; retrying");
                continue;
            }
        };
        if matches!(event, watcher::Event::Init) {
            before_relist = reader.state();
        }
        writer.apply_watcher_event(&event);
        match event {
            watcher::Event::Apply(obj) | watcher::Event::Delete(obj) | watcher::Event::InitApply(obj) => {
                // Nobody listening is fine: controllers subscribe before they start.
                let _ = changes.send(Arc::new(obj));
            }
            watcher::Event::InitDone => {
                // Objects deleted while the watch was down never get a Delete event; report them.
                for gone in vanished(&before_relist, &reader) {
                    let _ = changes.send(gone);
                }
                before_relist.clear();
            }
            watcher::Event::Init => {}
        }
    }
}

/// The objects of `before` that the store no longer holds.
fn vanished<K>(before: &[Arc<K>], now: &Store<K>) -> Vec<Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
    ObjectRef<K>: Hash + Eq,
{
    let present: HashSet<ObjectRef<K>> = now.state().iter().map(|o| ObjectRef::from_obj(o.as_ref())).collect();
    before.iter().filter(|o| !present.contains(&ObjectRef::from_obj(o.as_ref()))).cloned().collect()
}

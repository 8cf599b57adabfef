//! Publishing events through kube-runtime's recorder; a failed event is logged, never fatal.
//!
//! Events are sent in the background, like upstream's broadcaster: a reconcile creating hundreds of
//! pods must not wait for an event request after each one. At most `IN_FLIGHT` go out at once.
//!
//! Like client-go's event correlator, each object gets at most a burst of 25 events, then one per five
//! minutes (its `EventSourceObjectSpamFilter`): scaling a ReplicaSet to 5000 pods records the first 25
//! `SuccessfulCreate` events, not 5000 writes competing with the pod creations themselves.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// Recorders kept before the cache is dropped and started afresh.
const MAX_RECORDERS: usize = 512;
/// Event requests in flight per controller.
const IN_FLIGHT: usize = 16;
/// Events per object let through at once (client-go's `defaultSpamBurst`)…
const SPAM_BURST: NonZeroU32 = NonZeroU32::MIN.saturating_add(24);
/// …then this many an hour: one per five minutes (its `defaultSpamQPS`, 1/300).
const SPAM_PER_HOUR: NonZeroU32 = NonZeroU32::MIN.saturating_add(11);
/// Objects whose allowance is remembered before the ones back at a full burst are forgotten
/// (client-go keeps an LRU of 4096).
const SPAM_OBJECTS: usize = 4096;

/// The per-object allowance of events.
fn spam_filter() -> DefaultKeyedRateLimiter<String> {
    RateLimiter::keyed(Quota::per_hour(SPAM_PER_HOUR).allow_burst(SPAM_BURST))
}

/// Events from one controller, named after it like upstream's event sources.
///
/// kube-runtime's recorder folds every event with the same object, reason and action into one
/// series and keeps the first message, so "Scaled down … from 3 to 1" would be reported as the
/// earlier "Scaled up … from 0 to 3". Like upstream's correlator, only identical messages should
/// fold, so each distinct (object, reason, message) gets its own recorder.
#[derive(Clone)]
pub struct Events {
    client: kube::Client,
    reporter: Reporter,
    recorders: Arc<Mutex<HashMap<String, Recorder>>>,
    in_flight: Arc<tokio::sync::Semaphore>,
    spam_filter: Arc<DefaultKeyedRateLimiter<String>>,
}

impl Events {
    pub fn new(client: kube::Client, controller: &str) -> Self {
        let reporter = Reporter { controller: controller.to_string(), instance: std::env::var("POD_NAME").ok() };
        Self {
            client,
            reporter,
            recorders: Arc::default(),
            in_flight: Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT)),
            spam_filter: Arc::new(spam_filter()),
        }
    }

    /// Records a Normal event about `regarding`; `related` names the other object involved.
    pub async fn normal(&self, regarding: &ObjectReference, related: Option<ObjectReference>, reason: &str, action: &str, note: String) {
        self.publish(EventType::Normal, regarding, related, reason, action, note).await;
    }

    /// Records a Warning event about `regarding`.
    pub async fn warning(&self, regarding: &ObjectReference, related: Option<ObjectReference>, reason: &str, action: &str, note: String) {
        self.publish(EventType::Warning, regarding, related, reason, action, note).await;
    }

    fn recorder(&self, key: String) -> Recorder {
        let mut recorders = self.recorders.lock().unwrap_or_else(|p| p.into_inner());
        if recorders.len() >= MAX_RECORDERS {
            recorders.clear();
        }
        recorders.entry(key).or_insert_with(|| Recorder::new(self.client.clone(), self.reporter.clone())).clone()
    }

    /// Whether the object's allowance has room for one more event.
    fn allowed(&self, regarding: &ObjectReference) -> bool {
        if self.spam_filter.len() > SPAM_OBJECTS {
            self.spam_filter.retain_recent();
        }
        self.spam_filter.check_key(&object_key(regarding)).is_ok()
    }

    async fn publish(&self, type_: EventType, regarding: &ObjectReference, related: Option<ObjectReference>, reason: &str, action: &str, note: String) {
        if !self.allowed(regarding) {
            tracing::debug!(reason, object = ?regarding.name, "event dropped: the object's event allowance is used up");
            return;
        }
        let key = format!("{}\0{reason}\0{note}", regarding.uid.as_deref().unwrap_or_default());
        let recorder = self.recorder(key);
        let event = Event { type_, reason: reason.to_string(), note: Some(note), action: action.to_string(), secondary: related };
        let (regarding, reason) = (regarding.clone(), reason.to_string());
        let in_flight = self.in_flight.clone();
        tokio::spawn(async move {
            let Ok(_permit) = in_flight.acquire_owned().await else { return };
            match recorder.publish(&event, &regarding).await {
                Ok(()) => {}
                Err(error) if crate::api_errors::is_namespace_terminating(&error) => {}
                Err(error) => tracing::warn!(%error, %reason, "failed to record event"),
            }
        });
    }
}

/// The object an event is about, as the spam filter tells objects apart.
fn object_key(o: &ObjectReference) -> String {
    let part = |s: &Option<String>| s.clone().unwrap_or_default();
    format!("{}\0{}\0{}\0{}\0{}", part(&o.api_version), part(&o.kind), part(&o.namespace), part(&o.name), part(&o.uid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(name: &str) -> ObjectReference {
        ObjectReference { kind: Some("ReplicaSet".into()), namespace: Some("ns".into()), name: Some(name.into()), uid: Some(format!("uid-{name}")), ..Default::default() }
    }

    #[test]
    fn each_object_gets_a_burst_of_25_events() {
        let filter = spam_filter();
        let (busy, other) = (object_key(&object("busy")), object_key(&object("other")));
        let allowed = (0..100).filter(|_| filter.check_key(&busy).is_ok()).count();
        assert_eq!(allowed, 25, "then one per five minutes");
        assert!(filter.check_key(&other).is_ok(), "another object has its own allowance");
        assert_ne!(object_key(&object("a")), object_key(&ObjectReference { kind: Some("Deployment".into()), ..object("a") }));
    }
}

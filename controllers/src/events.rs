//! Publishing events through kube-runtime's recorder; a failed event is logged, never fatal.
//!
//! Events are sent in the background, like upstream's broadcaster: a reconcile creating hundreds of
//! pods must not wait for an event request after each one. At most `IN_FLIGHT` go out at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// Recorders kept before the cache is dropped and started afresh.
const MAX_RECORDERS: usize = 512;
/// Event requests in flight per controller.
const IN_FLIGHT: usize = 16;

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
}

impl Events {
    pub fn new(client: kube::Client, controller: &str) -> Self {
        let reporter = Reporter { controller: controller.to_string(), instance: std::env::var("POD_NAME").ok() };
        Self { client, reporter, recorders: Arc::default(), in_flight: Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT)) }
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

    async fn publish(&self, type_: EventType, regarding: &ObjectReference, related: Option<ObjectReference>, reason: &str, action: &str, note: String) {
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

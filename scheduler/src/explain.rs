//! Keeps the latest [`Explanation`] of each pod and serves them: `GET /explain/{namespace}/{pod}` returns
//! the pod's last cycle as JSON (404 when the scheduler has not tried it or has forgotten it), and
//! `GET /explain` lists the pods it knows.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;

use crate::framework::Explanation;

/// How many pods' explanations are kept; the oldest are forgotten first.
pub const CAPACITY: usize = 4096;

#[derive(Default)]
struct Inner {
    by_pod: HashMap<String, Arc<Explanation>>,
    order: VecDeque<String>,
}

/// The latest explanation per pod key (`namespace/name`), bounded.
#[derive(Default)]
pub struct ExplanationStore {
    inner: Mutex<Inner>,
}

impl ExplanationStore {
    pub fn record(&self, ex: Arc<Explanation>) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let key = ex.pod.clone();
        if inner.by_pod.insert(key.clone(), ex).is_none() {
            inner.order.push_back(key);
        }
        while inner.order.len() > CAPACITY {
            if let Some(old) = inner.order.pop_front() {
                inner.by_pod.remove(&old);
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<Arc<Explanation>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).by_pod.get(key).cloned()
    }

    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.inner.lock().unwrap_or_else(|p| p.into_inner()).by_pod.keys().cloned().collect();
        keys.sort();
        keys
    }
}

/// The explain endpoint's listener, bound at start-up so a bad address fails early.
pub struct ExplainServer {
    listener: tokio::net::TcpListener,
    store: Arc<ExplanationStore>,
}

impl ExplainServer {
    pub async fn bind(addr: SocketAddr, store: Arc<ExplanationStore>) -> std::io::Result<Self> {
        Ok(Self { listener: tokio::net::TcpListener::bind(addr).await?, store })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        axum::serve(self.listener, router(self.store)).with_graceful_shutdown(shutdown).await
    }
}

fn router(store: Arc<ExplanationStore>) -> Router {
    Router::new().route("/explain", get(list)).route("/explain/{namespace}/{pod}", get(explain)).with_state(store)
}

async fn list(State(store): State<Arc<ExplanationStore>>) -> impl IntoResponse {
    Json(serde_json::json!({ "pods": store.keys() }))
}

async fn explain(State(store): State<Arc<ExplanationStore>>, Path((namespace, pod)): Path<(String, String)>) -> impl IntoResponse {
    let key = format!("{namespace}/{pod}");
    match store.get(&key) {
        Some(ex) => (StatusCode::OK, Json(serde_json::to_value(&*ex).unwrap_or_default())).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({ "error": format!("no scheduling cycle recorded for pod {key}") })),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(pod: &str, node: &str) -> Arc<Explanation> {
        Arc::new(Explanation { pod: pod.into(), selected_node: Some(node.into()), ..Default::default() })
    }

    #[test]
    fn keeps_the_latest_per_pod() {
        let s = ExplanationStore::default();
        s.record(ex("ns/a", "n1"));
        s.record(ex("ns/a", "n2"));
        s.record(ex("ns/b", "n1"));
        assert_eq!(s.get("ns/a").and_then(|e| e.selected_node.clone()), Some("n2".into()));
        assert_eq!(s.keys(), vec!["ns/a".to_string(), "ns/b".to_string()]);
        assert!(s.get("ns/c").is_none());
    }

    #[test]
    fn forgets_the_oldest_beyond_capacity() {
        let s = ExplanationStore::default();
        for i in 0..=CAPACITY {
            s.record(ex(&format!("ns/p{i}"), "n"));
        }
        assert!(s.get("ns/p0").is_none(), "oldest evicted");
        assert!(s.get(&format!("ns/p{CAPACITY}")).is_some());
        assert_eq!(s.keys().len(), CAPACITY);
    }
}

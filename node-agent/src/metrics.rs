//! The node agent's Prometheus metrics.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Counters shared by the pod workers.
#[derive(Clone)]
pub struct Metrics {
    pub pod_syncs: Counter,
    pub pod_sync_errors: Counter,
    pub pod_workers: Gauge,
    /// Seconds from first seeing a pod to all its containers running.
    pub pod_start_duration: Histogram,
    /// Probe runs by `probe_type` (startup, liveness, readiness) and `result` (successful, failed, unknown).
    pub probe_results: Family<Vec<(String, String)>, Counter>,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            pod_syncs: Counter::default(),
            pod_sync_errors: Counter::default(),
            pod_workers: Gauge::default(),
            pod_start_duration: Histogram::new([0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0]),
            probe_results: Family::default(),
        };
        registry.register("node_agent_pod_syncs", "Pod syncs run", m.pod_syncs.clone());
        registry.register("node_agent_pod_sync_errors", "Pod syncs that failed", m.pod_sync_errors.clone());
        registry.register("node_agent_pod_workers", "Pods with a worker", m.pod_workers.clone());
        registry.register("node_agent_pod_start_duration_seconds", "Time from seeing a pod to all its containers running", m.pod_start_duration.clone());
        registry.register("node_agent_probe_results", "Container probe runs by probe type and result", m.probe_results.clone());
        m
    }

    pub fn unregistered() -> Self {
        Self::register(&mut Registry::default())
    }
}

//! The scheduler's Prometheus metrics, named like upstream's.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::queue::Lengths;

/// How an attempt ended: `scheduled`, `unschedulable` or `error`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    pub result: String,
    pub profile: String,
}

/// Which sub-queue: `active`, `backoff`, `unschedulable` or `gated`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: String,
}

pub const RESULT_SCHEDULED: &str = "scheduled";
pub const RESULT_UNSCHEDULABLE: &str = "unschedulable";
pub const RESULT_ERROR: &str = "error";

type HistogramFamily = Family<AttemptLabels, Histogram, fn() -> Histogram>;

#[derive(Clone)]
pub struct Metrics {
    profile: String,
    attempts: Family<AttemptLabels, Counter>,
    attempt_duration: HistogramFamily,
    pending: Family<QueueLabels, Gauge>,
}

fn duration_histogram() -> Histogram {
    // 1 ms doubling to about 16 s, as upstream's scheduling_attempt_duration_seconds.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Metrics {
    /// Creates the metrics and registers them.
    pub fn register(registry: &mut Registry, profile: &str) -> Self {
        let m = Self {
            profile: profile.to_string(),
            attempts: Family::default(),
            attempt_duration: Family::new_with_constructor(duration_histogram as fn() -> Histogram),
            pending: Family::default(),
        };
        registry.register(
            "scheduler_schedule_attempts",
            "Number of attempts to schedule pods, by the result.",
            m.attempts.clone(),
        );
        registry.register(
            "scheduler_scheduling_attempt_duration_seconds",
            "Scheduling attempt latency in seconds (scheduling algorithm + binding).",
            m.attempt_duration.clone(),
        );
        registry.register("scheduler_pending_pods", "Number of pending pods, by the queue type.", m.pending.clone());
        m
    }

    /// Counts one attempt and its duration.
    pub fn observe_attempt(&self, result: &str, seconds: f64) {
        let labels = AttemptLabels { result: result.to_string(), profile: self.profile.clone() };
        self.attempts.get_or_create(&labels).inc();
        self.attempt_duration.get_or_create(&labels).observe(seconds);
    }

    pub fn set_pending(&self, l: Lengths) {
        for (queue, n) in [("active", l.active), ("backoff", l.backoff), ("unschedulable", l.unschedulable), ("gated", l.gated)] {
            self.pending.get_or_create(&QueueLabels { queue: queue.into() }).set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_upstream_names() {
        let mut registry = Registry::default();
        let m = Metrics::register(&mut registry, "default-scheduler");
        m.observe_attempt(RESULT_SCHEDULED, 0.01);
        m.set_pending(Lengths { active: 1, backoff: 2, unschedulable: 3, gated: 0 });
        let mut text = String::new();
        assert!(prometheus_client::encoding::text::encode(&mut text, &registry).is_ok());
        assert!(text.contains("scheduler_schedule_attempts_total{result=\"scheduled\",profile=\"default-scheduler\"} 1"), "{text}");
        assert!(text.contains("scheduler_pending_pods{queue=\"unschedulable\"} 3"), "{text}");
        assert!(text.contains("scheduler_scheduling_attempt_duration_seconds_count"), "{text}");
    }
}

//! Metrics served on `/metrics`, named and labelled like kube-controller-manager's so the same
//! dashboards and alerts work: `leader_election_master_status{name}` and the workqueue family
//! (`workqueue_adds_total`, `workqueue_retries_total`, `workqueue_work_duration_seconds`, each by queue
//! `name`).
//!
//! kube-runtime's `Controller` owns its queue, so the workqueue numbers come from wrapping a controller's
//! reconcile function ([`instrumented`]): every sync is one item taken off the queue (an add that was not
//! folded into a pending one, which is what upstream's `adds_total` counts), a failed sync is one
//! rate-limited requeue (upstream's `retries_total`), and its run time is the work duration. The families
//! are process-wide, like upstream's legacy registry, so a controller needs no new parameter to report.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Instant;

use futures::FutureExt;
use futures::future::BoxFuture;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The `name` label: a workqueue's or a lease's name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NameLabel {
    pub name: String,
}

/// Upstream's work-duration buckets: 10ns to 10s, one per decade.
fn work_duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1e-8, 10.0, 10))
}

type HistogramConstructor = fn() -> Histogram;

/// The workqueue families every controller shares.
#[derive(Clone)]
struct Workqueue {
    adds: Family<NameLabel, Counter>,
    retries: Family<NameLabel, Counter>,
    work_duration: Family<NameLabel, Histogram, HistogramConstructor>,
}

fn workqueue() -> &'static Workqueue {
    static WORKQUEUE: OnceLock<Workqueue> = OnceLock::new();
    WORKQUEUE.get_or_init(|| Workqueue {
        adds: Family::default(),
        retries: Family::default(),
        work_duration: Family::new_with_constructor(work_duration_histogram),
    })
}

/// `leader_election_master_status{name}`: 1 while this process holds the lease, else 0.
#[derive(Clone)]
pub struct LeaderStatus {
    gauge: Gauge,
}

impl LeaderStatus {
    pub fn set_leading(&self, leading: bool) {
        self.gauge.set(i64::from(leading));
    }

    pub fn get(&self) -> i64 {
        self.gauge.get()
    }
}

/// Registers every family on `registry`; `lease_name` labels the leader-election gauge (upstream
/// labels it with the lease's name).
pub fn register(registry: &mut Registry, lease_name: &str) -> LeaderStatus {
    let wq = workqueue();
    registry.register("workqueue_adds", "Total number of adds handled by a workqueue", wq.adds.clone());
    registry.register("workqueue_retries", "Total number of retries handled by a workqueue", wq.retries.clone());
    registry.register(
        "workqueue_work_duration_seconds",
        "How long in seconds processing an item from a workqueue takes",
        wq.work_duration.clone(),
    );
    let status = Family::<NameLabel, Gauge>::default();
    registry.register(
        "leader_election_master_status",
        "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master",
        status.clone(),
    );
    let gauge = status.get_or_create(&NameLabel { name: lease_name.to_string() }).clone();
    LeaderStatus { gauge }
}

/// Wraps a reconcile function so each sync is counted under workqueue `name` (see the module docs).
pub fn instrumented<K, C, T, E, F, Fut>(name: &str, mut reconcile: F) -> impl FnMut(K, C) -> BoxFuture<'static, Result<T, E>>
where
    F: FnMut(K, C) -> Fut,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
{
    let label = NameLabel { name: name.to_string() };
    move |object, context| {
        let wq = workqueue();
        wq.adds.get_or_create(&label).inc();
        let retries = wq.retries.get_or_create(&label).clone();
        let duration = wq.work_duration.get_or_create(&label).clone();
        let started = Instant::now();
        reconcile(object, context)
            .map(move |result| {
                duration.observe(started.elapsed().as_secs_f64());
                if result.is_err() {
                    retries.inc();
                }
                result
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(registry: &Registry) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).unwrap_or_default();
        text
    }

    #[tokio::test]
    async fn syncs_are_counted_per_queue() {
        let mut registry = Registry::default();
        register(&mut registry, "rudder-controller-manager");
        let mut sync = instrumented("test_queue_a", |fail: bool, _ctx: ()| async move { if fail { Err("boom") } else { Ok(()) } });
        assert_eq!(sync(false, ()).await, Ok(()), "the wrapped result is passed through");
        assert_eq!(sync(true, ()).await, Err("boom"), "the wrapped error is passed through");
        let text = encoded(&registry);
        let cases = [
            ("adds", r#"workqueue_adds_total{name="test_queue_a"} 2"#),
            ("retries", r#"workqueue_retries_total{name="test_queue_a"} 1"#),
            ("durations", r#"workqueue_work_duration_seconds_count{name="test_queue_a"} 2"#),
        ];
        for (case, line) in cases {
            assert!(text.lines().any(|l| l == line), "case {case}: {line} missing from\n{text}");
        }
    }

    #[test]
    fn leader_status_follows_the_lease() {
        let mut registry = Registry::default();
        let status = register(&mut registry, "rudder-controller-manager");
        let line = |v| format!(r#"leader_election_master_status{{name="rudder-controller-manager"}} {v}"#);
        assert!(encoded(&registry).lines().any(|l| l == line(0)), "standby reports 0");
        status.set_leading(true);
        assert!(encoded(&registry).lines().any(|l| l == line(1)), "leader reports 1");
        status.set_leading(false);
        assert_eq!(status.get(), 0, "losing the lease reports 0 again");
    }
}

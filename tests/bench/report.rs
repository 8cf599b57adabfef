//! Turning per-pod timings into the numbers of one run, and runs into a case's table.

use std::time::Duration;

use crate::table::{Layout, num, percentile, render};

/// The measured outcome of one scheduler on one case.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    pub scheduler: String,
    pub total: usize,
    pub bound: usize,
    /// From the first create sent to the last bind observed.
    pub elapsed: Duration,
    /// create sent → bind observed, per bound pod, in milliseconds.
    pub latencies_ms: Vec<f64>,
    /// Verification failures and errors; empty means the run is good.
    pub failures: Vec<String>,
}

impl RunResult {
    pub fn pods_per_second(&self) -> Option<f64> {
        let s = self.elapsed.as_secs_f64();
        (self.bound > 0 && s > 0.0).then(|| self.bound as f64 / s)
    }
}

/// The case's table: one row per scheduler, the ratio against kube-scheduler and the share of the no-op
/// ceiling, then one FAIL line per failure.
pub fn table(title: &str, case: &str, runs: &[RunResult]) -> String {
    let rate_of = |name: &str| runs.iter().find(|r| r.scheduler == name).and_then(RunResult::pods_per_second);
    let kube = rate_of("kube-scheduler");
    let noop = rate_of("no-op binder");
    let header = ["scheduler", "bound", "seconds", "pods/s", "p50 ms", "p99 ms", "vs kube-scheduler", "% of no-op"];
    let mut rows = vec![header.map(str::to_string).to_vec()];
    for r in runs {
        let rate = r.pods_per_second();
        let ratio = rate.zip(kube).map(|(a, b)| format!("{:.2}x", a / b)).unwrap_or_else(|| "-".into());
        let share = rate.zip(noop).map(|(a, b)| format!("{:.0}%", 100.0 * a / b)).unwrap_or_else(|| "-".into());
        rows.push(vec![
            r.scheduler.clone(),
            format!("{}/{}", r.bound, r.total),
            format!("{:.2}", r.elapsed.as_secs_f64()),
            num(rate, 1),
            num(percentile(&r.latencies_ms, 0.50), 0),
            num(percentile(&r.latencies_ms, 0.99), 0),
            ratio,
            share,
        ]);
    }
    let mut out = format!("== {title}\n");
    out.push_str(&render(&rows, Layout { numbers_right: true, rule_under_header: true }));
    for r in runs {
        for f in &r.failures {
            out.push_str(&format!("FAIL {case} {}: {f}\n", r.scheduler));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_ratios_and_fail_lines() {
        let run = |name: &str, bound, secs, failures: Vec<String>| RunResult {
            scheduler: name.into(),
            total: 100,
            bound,
            elapsed: Duration::from_secs(secs),
            latencies_ms: vec![10.0, 20.0],
            failures,
        };
        let t = table(
            "basic (10 nodes)",
            "basic",
            &[
                run("rudder-scheduler", 100, 1, vec![]),
                run("kube-scheduler", 100, 2, vec![]),
                run("no-op binder", 100, 1, vec!["not bound: 3 pods".into()]),
            ],
        );
        assert!(t.contains("2.00x"), "{t}");
        assert!(t.contains("100%"), "{t}");
        assert!(t.contains("FAIL basic no-op binder: not bound: 3 pods"), "{t}");
        assert_eq!(run("x", 0, 1, vec![]).pods_per_second(), None);
    }
}

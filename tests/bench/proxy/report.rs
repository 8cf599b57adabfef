//! Turning one proxy's timings into a row, and the rows into the printed table.

use std::time::Duration;

use crate::table::{Layout, num, percentile, render};

/// The measured outcome of one proxy.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    pub proxy: String,
    /// Proxy start → every cluster IP and endpoint address seen in its rules.
    pub full_sync: Option<Duration>,
    /// EndpointSlice write returned → the new address seen in the rules, per change, in ms.
    pub change_ms: Vec<f64>,
    pub changes_tried: usize,
    /// How late `nft monitor` reports a commit (calibration before the run): an upper bound and the
    /// delay after the committing nft exited (negative: before), in ms.
    pub monitor_upper_ms: Vec<f64>,
    pub monitor_after_exit_ms: Vec<f64>,
    /// Errors and timeouts; empty means the run is complete.
    pub failures: Vec<String>,
}

/// "3.10x" when both are known: how many times faster `ours` is than `theirs` (lower is better).
fn speedup(ours: Option<f64>, theirs: Option<f64>) -> String {
    match (ours, theirs) {
        (Some(a), Some(b)) if a > 0.0 => format!("{:.2}x", b / a),
        _ => "-".into(),
    }
}

/// The target of issue #5: a single endpoint change in the rules in under `target_ms`.
pub fn target_line(rudder: Option<&RunResult>, target_ms: f64, services: u32) -> String {
    let p99 = rudder.and_then(|r| percentile(&r.change_ms, 0.99));
    match (rudder, p99) {
        (Some(r), Some(p99)) if r.change_ms.len() == r.changes_tried => {
            let verdict = if p99 < target_ms { "MET" } else { "NOT MET" };
            format!("target (one endpoint change < {target_ms:.0} ms at {services} services, rudder p99): {verdict} ({p99:.1} ms)")
        }
        (Some(r), Some(p99)) => format!(
            "target (one endpoint change < {target_ms:.0} ms at {services} services): NOT MET ({} of {} changes never seen; p99 of the rest {p99:.1} ms)",
            r.changes_tried - r.change_ms.len(),
            r.changes_tried
        ),
        _ => format!("target (one endpoint change < {target_ms:.0} ms at {services} services): not measured"),
    }
}

/// One row per proxy; ratios are kube-proxy's time ÷ rudder's (above 1: rudder is faster).
pub fn table(runs: &[RunResult]) -> String {
    let find = |name: &str| runs.iter().find(|r| r.proxy == name);
    let kube = find("kube-proxy");
    let full_s = |r: &RunResult| r.full_sync.map(|d| d.as_secs_f64());
    let header = [
        "proxy",
        "full sync s",
        "change p50 ms",
        "change p99 ms",
        "changes seen",
        "monitor delay p50 ms (bound; after commit)",
        "full sync vs kube-proxy",
        "change p50 vs kube-proxy",
    ];
    let mut rows = vec![header.map(str::to_string).to_vec()];
    for r in runs {
        let p50 = percentile(&r.change_ms, 0.50);
        rows.push(vec![
            r.proxy.clone(),
            num(full_s(r), 2),
            num(p50, 1),
            num(percentile(&r.change_ms, 0.99), 1),
            format!("{}/{}", r.change_ms.len(), r.changes_tried),
            format!("≤{}; {}", num(percentile(&r.monitor_upper_ms, 0.50), 1), num(percentile(&r.monitor_after_exit_ms, 0.50), 2)),
            speedup(full_s(r), kube.and_then(full_s)),
            speedup(p50, kube.and_then(|k| percentile(&k.change_ms, 0.50))),
        ]);
    }
    let mut out = render(&rows, Layout { numbers_right: false, rule_under_header: false });
    for r in runs {
        for f in &r.failures {
            out.push_str(&format!("FAIL {}: {f}\n", r.proxy));
        }
    }
    out
}

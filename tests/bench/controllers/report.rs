//! One case's numbers per controller manager, and the case's table.

use std::time::Duration;

use crate::table::{Layout, num, render};

/// The outcome of one controller manager on one case.
#[derive(Debug, Clone, Default)]
pub struct CaseResult {
    pub manager: String,
    /// Pods the case creates (or deletes).
    pub pods: usize,
    /// None when the case did not finish.
    pub elapsed: Option<Duration>,
    /// VmHWM of the manager at the end of the case (its peak so far).
    pub peak_rss_mib: Option<f64>,
    /// CPU seconds (user + system) the manager used during the case.
    pub cpu_seconds: Option<f64>,
    /// CPU seconds the apiserver used during the case: the cost of the manager's requests and watches
    /// to the server (e.g. JSON against protobuf).
    pub apiserver_cpu_seconds: Option<f64>,
    pub failure: Option<String>,
}

impl CaseResult {
    pub fn pods_per_second(&self) -> Option<f64> {
        let s = self.elapsed?.as_secs_f64();
        (self.pods > 0 && s > 0.0).then(|| self.pods as f64 / s)
    }
}

/// The case's table: seconds, pods/s, ratio of each manager's rate to kube-controller-manager's, share of
/// the apiserver's raw pod-create rate `ceiling`, the manager's and the apiserver's CPU seconds in the case, peak RSS; then one FAIL line per failed run.
pub fn table(title: &str, case: &str, runs: &[CaseResult], ceiling: Option<f64>) -> String {
    let kube = runs.iter().find(|r| r.manager == "kube-controller-manager").and_then(CaseResult::pods_per_second);
    let header =
        ["controller manager", "seconds", "pods/s", "vs kube-controller-manager", "% of raw ceiling", "CPU s", "apiserver CPU s", "peak RSS MiB"];
    let mut rows = vec![header.map(str::to_string).to_vec()];
    for r in runs {
        let rate = r.pods_per_second();
        rows.push(vec![
            r.manager.clone(),
            num(r.elapsed.map(|d| d.as_secs_f64()), 2),
            num(rate, 1),
            rate.zip(kube).map_or_else(|| "-".into(), |(a, b)| format!("{:.2}x", a / b)),
            rate.zip(ceiling).map_or_else(|| "-".into(), |(a, c)| format!("{:.0}%", 100.0 * a / c)),
            num(r.cpu_seconds, 2),
            num(r.apiserver_cpu_seconds, 2),
            num(r.peak_rss_mib, 0),
        ]);
    }
    let mut out = format!("== {title}\n");
    out.push_str(&render(&rows, Layout { numbers_right: true, rule_under_header: true }));
    for r in runs {
        if let Some(f) = &r.failure {
            out.push_str(&format!("FAIL {case} {}: {f}\n", r.manager));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_ratio_ceiling_share_and_fail_lines() {
        let run = |name: &str, secs: Option<u64>, failure: Option<&str>| CaseResult {
            manager: name.into(),
            pods: 100,
            elapsed: secs.map(Duration::from_secs),
            peak_rss_mib: Some(42.4),
            cpu_seconds: Some(3.25),
            apiserver_cpu_seconds: Some(7.5),
            failure: failure.map(str::to_string),
        };
        let runs = [
            run("rudder-controllers", Some(1), None),
            run("kube-controller-manager", Some(2), None),
            run("x", None, Some("timed out")),
        ];
        let t = table("create", "a", &runs, Some(200.0));
        let cases = [("ratio", "2.00x"), ("ceiling share", "50%"), ("rss", "42"), ("cpu", "3.25"), ("apiserver cpu", "7.50"), ("fail line", "FAIL a x: timed out")];
        for (name, want) in cases {
            assert!(t.contains(want), "{name}: {t}");
        }
        assert_eq!(run("y", Some(0), None).pods_per_second(), None);
    }
}

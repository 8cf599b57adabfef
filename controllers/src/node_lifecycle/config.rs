//! The node lifecycle controller's settings, their upstream defaults, and the flags that set them.

use std::time::Duration;

/// A setting that cannot work; names the flag so the operator knows what to fix.
#[derive(Debug, thiserror::Error)]
#[error("invalid --{flag}: {reason}")]
pub struct Error {
    /// The flag (and field) at fault.
    pub flag: &'static str,
    /// Why the value was refused.
    pub reason: String,
}

/// How the controller judges node health and how fast it taints nodes for eviction.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeLifecycleConfig {
    /// A node whose agent has neither renewed its lease nor posted a Ready heartbeat for this long is
    /// marked Unknown.
    pub node_monitor_grace_period: Duration,
    /// How often node health is checked.
    pub node_monitor_period: Duration,
    /// The grace period for a node that has never posted a Ready condition.
    pub node_startup_grace_period: Duration,
    /// Nodes tainted `NoExecute` per second while the cluster is healthy.
    pub eviction_rate_qps: f32,
    /// Nodes tainted per second while a large cluster is partially disrupted.
    pub secondary_eviction_rate_qps: f32,
    /// Above this many nodes a partially disrupted cluster keeps evicting at the secondary rate;
    /// at or below it, evictions stop.
    pub large_cluster_size_threshold: u32,
    /// The share of not-ready nodes (with more than two of them) that makes the cluster partially
    /// disrupted.
    pub unhealthy_zone_threshold: f32,
}

impl Default for NodeLifecycleConfig {
    /// Upstream kube-controller-manager's defaults.
    fn default() -> Self {
        Self {
            node_monitor_grace_period: Duration::from_secs(50),
            node_monitor_period: Duration::from_secs(5),
            node_startup_grace_period: Duration::from_secs(60),
            eviction_rate_qps: 0.1,
            secondary_eviction_rate_qps: 0.01,
            large_cluster_size_threshold: 50,
            unhealthy_zone_threshold: 0.55,
        }
    }
}

impl NodeLifecycleConfig {
    /// Refuses settings the controller cannot run with.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |flag, reason: &str| Err(Error { flag, reason: reason.to_string() });
        if self.node_monitor_period.is_zero() {
            return bad("node-monitor-period", "must be greater than zero");
        }
        if self.node_monitor_grace_period.is_zero() {
            return bad("node-monitor-grace-period", "must be greater than zero");
        }
        if self.node_startup_grace_period.is_zero() {
            return bad("node-startup-grace-period", "must be greater than zero");
        }
        if !(self.eviction_rate_qps.is_finite() && self.eviction_rate_qps >= 0.0) {
            return bad("node-eviction-rate", "must be a number of nodes per second, zero or more");
        }
        if !(self.secondary_eviction_rate_qps.is_finite() && self.secondary_eviction_rate_qps >= 0.0) {
            return bad("secondary-node-eviction-rate", "must be a number of nodes per second, zero or more");
        }
        if !(self.unhealthy_zone_threshold > 0.0 && self.unhealthy_zone_threshold <= 1.0) {
            return bad("unhealthy-zone-threshold", "must be a fraction in (0, 1]");
        }
        Ok(())
    }
}

/// The upstream flags for these settings, to flatten into the binary's parser.
#[derive(clap::Args, Debug, Clone)]
pub struct NodeLifecycleFlags {
    /// How long a node may go without renewing its lease or posting status before it is marked
    /// Unknown (Go duration syntax: 40s, 1m30s).
    #[arg(long, default_value = "50s", value_parser = parse_duration)]
    pub node_monitor_grace_period: Duration,
    /// How often the node lifecycle controller checks node health.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub node_monitor_period: Duration,
    /// How long a node that never posted status may stay silent before it is marked Unknown.
    #[arg(long, default_value = "1m0s", value_parser = parse_duration)]
    pub node_startup_grace_period: Duration,
    /// Nodes per second tainted for eviction while the cluster is healthy.
    #[arg(long, default_value_t = 0.1)]
    pub node_eviction_rate: f32,
    /// Nodes per second tainted for eviction while a large cluster is partially unhealthy.
    #[arg(long, default_value_t = 0.01)]
    pub secondary_node_eviction_rate: f32,
    /// Clusters with at most this many nodes stop evicting while partially unhealthy.
    #[arg(long, default_value_t = 50)]
    pub large_cluster_size_threshold: u32,
    /// Share of not-ready nodes (at least three) at which the cluster counts as partially unhealthy.
    #[arg(long, default_value_t = 0.55)]
    pub unhealthy_zone_threshold: f32,
}

impl NodeLifecycleFlags {
    /// The validated configuration.
    pub fn into_config(self) -> Result<NodeLifecycleConfig, Error> {
        let config = NodeLifecycleConfig {
            node_monitor_grace_period: self.node_monitor_grace_period,
            node_monitor_period: self.node_monitor_period,
            node_startup_grace_period: self.node_startup_grace_period,
            eviction_rate_qps: self.node_eviction_rate,
            secondary_eviction_rate_qps: self.secondary_node_eviction_rate,
            large_cluster_size_threshold: self.large_cluster_size_threshold,
            unhealthy_zone_threshold: self.unhealthy_zone_threshold,
        };
        config.validate()?;
        Ok(config)
    }
}

/// Parses Go's duration syntax as upstream's flags take it: `0`, or numbers with units `ms`, `s`,
/// `m`, `h`, concatenated (`1m30s`, `1.5s`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("empty duration".to_string());
    }
    let mut total = 0.0_f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_len);
        let value: f64 = number.parse().map_err(|_| format!("{text:?} is not a duration (like 40s or 1m30s)"))?;
        let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let seconds = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(format!("{text:?} has unit {unit:?}; use ms, s, m or h")),
        };
        total += value * seconds;
        rest = tail;
    }
    Duration::try_from_secs_f64(total).map_err(|_| format!("{text:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases = [
            ("plain seconds", "40s", Some(Duration::from_secs(40))),
            ("minutes and seconds", "1m30s", Some(Duration::from_secs(90))),
            ("fraction", "1.5s", Some(Duration::from_millis(1500))),
            ("milliseconds", "250ms", Some(Duration::from_millis(250))),
            ("hours", "1h", Some(Duration::from_secs(3600))),
            ("bare zero", "0", Some(Duration::ZERO)),
            ("bare number", "40", None),
            ("unknown unit", "3d", None),
            ("empty", "", None),
            ("garbage", "soon", None),
        ];
        for (name, input, want) in cases {
            assert_eq!(parse_duration(input).ok(), want, "{name}");
        }
    }

    #[test]
    fn defaults_are_upstream_and_valid() {
        let config = NodeLifecycleConfig::default();
        assert_eq!(config.node_monitor_grace_period, Duration::from_secs(50));
        assert_eq!(config.node_monitor_period, Duration::from_secs(5));
        assert_eq!(config.node_startup_grace_period, Duration::from_secs(60));
        assert!((config.eviction_rate_qps - 0.1).abs() < f32::EPSILON);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn validation_names_the_flag() {
        // (name, how to break the default config, the flag the error must name)
        type Case = (&'static str, fn(&mut NodeLifecycleConfig), &'static str);
        let cases: [Case; 4] = [
            ("zero period", |c| c.node_monitor_period = Duration::ZERO, "--node-monitor-period"),
            ("zero grace", |c| c.node_monitor_grace_period = Duration::ZERO, "--node-monitor-grace-period"),
            ("negative rate", |c| c.eviction_rate_qps = -1.0, "--node-eviction-rate"),
            ("threshold above one", |c| c.unhealthy_zone_threshold = 1.5, "--unhealthy-zone-threshold"),
        ];
        for (name, break_it, flag) in cases {
            let mut config = NodeLifecycleConfig::default();
            break_it(&mut config);
            let message = config.validate().err().map(|e| e.to_string()).unwrap_or_default();
            assert!(message.contains(flag), "{name}: {message}");
        }
    }
}

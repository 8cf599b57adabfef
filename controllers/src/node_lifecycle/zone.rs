//! How disrupted the cluster is, and how fast nodes may be tainted for eviction because of it.
//!
//! Upstream keeps one such state per topology zone; rudder treats the cluster as a single zone.
//! When every node is not ready the fault is more likely the control plane's view than the nodes,
//! so no node is tainted for eviction at all; when most nodes of a small cluster are not ready,
//! tainting stops too.

use std::collections::VecDeque;
use std::time::Instant;

/// The health of the zone as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneState {
    /// Not judged yet (no pass has seen any node).
    Initial,
    Normal,
    /// Many nodes (more than two, at least the unhealthy threshold) are not ready.
    PartialDisruption,
    /// No node is ready.
    FullDisruption,
}

/// The zone's state from its nodes' readiness.
pub fn state(ready: usize, not_ready: usize, unhealthy_threshold: f32) -> ZoneState {
    let total = ready + not_ready;
    if total == 0 {
        return ZoneState::Initial;
    }
    if ready == 0 {
        return ZoneState::FullDisruption;
    }
    // Counts are node numbers; f32 precision is ample for any cluster size.
    if not_ready > 2 && (not_ready as f32) / (total as f32) >= unhealthy_threshold {
        return ZoneState::PartialDisruption;
    }
    ZoneState::Normal
}

/// The tainting rate for a zone in `state` with `size` nodes.
pub fn rate(state: ZoneState, size: usize, normal_qps: f32, secondary_qps: f32, large_cluster_threshold: u32) -> f32 {
    match state {
        ZoneState::Initial | ZoneState::Normal | ZoneState::FullDisruption => normal_qps,
        ZoneState::PartialDisruption if size > large_cluster_threshold as usize => secondary_qps,
        ZoneState::PartialDisruption => 0.0,
    }
}

/// A token bucket holding at most one token (upstream's eviction burst), refilled at `qps`.
#[derive(Debug)]
pub struct TokenBucket {
    qps: f32,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket; `qps` 0 never lets anything through.
    pub fn new(qps: f32, now: Instant) -> Self {
        Self { qps, tokens: 1.0, last: now }
    }

    pub fn qps(&self) -> f32 {
        self.qps
    }

    /// Takes a token if one is available.
    pub fn try_accept(&mut self, now: Instant) -> bool {
        if self.qps <= 0.0 {
            return false;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(self.qps)).min(1.0);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Nodes waiting to be tainted `NoExecute`, in arrival order, each once, released at the bucket's
/// rate.
#[derive(Debug)]
pub struct TaintQueue {
    nodes: VecDeque<String>,
    bucket: TokenBucket,
}

impl TaintQueue {
    pub fn new(qps: f32, now: Instant) -> Self {
        Self { nodes: VecDeque::new(), bucket: TokenBucket::new(qps, now) }
    }

    /// Queues a node unless it is already waiting.
    pub fn add(&mut self, node: &str) {
        if !self.nodes.iter().any(|n| n == node) {
            self.nodes.push_back(node.to_string());
        }
    }

    /// Drops a node from the queue; whether it was there.
    pub fn remove(&mut self, node: &str) -> bool {
        let before = self.nodes.len();
        self.nodes.retain(|n| n != node);
        self.nodes.len() != before
    }

    /// The next node whose turn has come, if the rate allows one now.
    pub fn next(&mut self, now: Instant) -> Option<String> {
        if self.nodes.is_empty() || !self.bucket.try_accept(now) {
            return None;
        }
        self.nodes.pop_front()
    }

    /// Changes the rate (a fresh, full bucket, as upstream's limiter swap).
    pub fn set_rate(&mut self, qps: f32, now: Instant) {
        if (self.bucket.qps() - qps).abs() > f32::EPSILON {
            self.bucket = TokenBucket::new(qps, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn zone_states() {
        let cases = [
            ("no nodes", 0, 0, ZoneState::Initial),
            ("all ready", 3, 0, ZoneState::Normal),
            ("one of three down", 2, 1, ZoneState::Normal),
            ("every node down", 0, 1, ZoneState::FullDisruption),
            ("two down never counts as partial", 1, 2, ZoneState::Normal),
            ("three of five down", 2, 3, ZoneState::PartialDisruption),
            ("three of ten down", 7, 3, ZoneState::Normal),
        ];
        for (name, ready, not_ready, want) in cases {
            assert_eq!(state(ready, not_ready, 0.55), want, "{name}");
        }
    }

    #[test]
    fn rates() {
        let cases = [
            ("normal", ZoneState::Normal, 3, 0.1),
            ("full disruption keeps the normal rate (no node is tainted anyway)", ZoneState::FullDisruption, 3, 0.1),
            ("partial, small cluster stops", ZoneState::PartialDisruption, 10, 0.0),
            ("partial, large cluster slows", ZoneState::PartialDisruption, 60, 0.01),
        ];
        for (name, s, size, want) in cases {
            assert!((rate(s, size, 0.1, 0.01, 50) - want).abs() < f32::EPSILON, "{name}");
        }
    }

    #[test]
    fn queue_releases_at_the_rate() {
        let start = Instant::now();
        let mut queue = TaintQueue::new(0.5, start);
        queue.add("a");
        queue.add("b");
        queue.add("a");
        assert_eq!(queue.next(start), Some("a".to_string()), "a full bucket lets the first through");
        assert_eq!(queue.next(start + Duration::from_secs(1)), None, "half a token after one second");
        assert_eq!(queue.next(start + Duration::from_secs(2)), Some("b".to_string()));
        assert_eq!(queue.next(start + Duration::from_secs(10)), None, "'a' was queued once");
        queue.add("c");
        assert!(queue.remove("c"));
        assert!(!queue.remove("c"));
        queue.add("d");
        queue.set_rate(0.0, start);
        assert_eq!(queue.next(start + Duration::from_secs(100)), None, "rate zero stops tainting");
    }
}

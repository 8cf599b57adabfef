//! Whether a node's agent is still alive: the last time this controller saw it renew its Lease or
//! post a new Ready heartbeat, and the conditions a silent node gets.
//!
//! Like upstream, liveness is judged by when *this controller* observed a change (the probe time),
//! not by the timestamps the agent wrote, so a skewed node clock does not matter.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, NodeCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::taints;

/// The conditions a node agent owns; they go Unknown together when it falls silent.
pub const AGENT_CONDITIONS: &[&str] = &["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

pub const REASON_UNKNOWN: &str = "NodeStatusUnknown";
pub const MESSAGE_UNKNOWN: &str = "Kubelet stopped posting node status.";
pub const REASON_NEVER_UPDATED: &str = "NodeStatusNeverUpdated";
pub const MESSAGE_NEVER_UPDATED: &str = "Kubelet never posted node status.";

/// What was last seen of one node.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// When the agent last showed signs of life, as observed here.
    pub at: Timestamp,
    /// Whether the node had a Ready condition, and its heartbeat, when last seen.
    ready_heartbeat: Option<Option<Timestamp>>,
    /// The lease's renewTime when last seen.
    lease_renewed: Option<Timestamp>,
}

impl Probe {
    /// Treats the node as alive now (used when the cluster leaves full disruption, so every node
    /// gets a fresh grace period).
    pub fn refreshed(mut self, now: Timestamp) -> Self {
        self.at = now;
        self
    }
}

/// Updates the probe of one node from its current object and lease.
pub fn observe(previous: Option<&Probe>, node: &Node, lease_renewed: Option<Timestamp>, now: Timestamp) -> Probe {
    let ready_heartbeat = taints::condition(node, "Ready").map(|c| c.last_heartbeat_time.as_ref().map(|t| t.0));
    let created = node.metadata.creation_timestamp.as_ref().map_or(now, |t| t.0);
    let mut probe = match (previous, ready_heartbeat) {
        // Never seen and never posted: the node has been silent since it was created.
        (None, None) => Probe { at: created, ready_heartbeat: None, lease_renewed: None },
        // First sighting of a Ready condition, a new heartbeat, or a removed condition: alive now.
        (None, Some(_)) => Probe { at: now, ready_heartbeat, lease_renewed: None },
        (Some(p), current) if p.ready_heartbeat != current => Probe { at: now, ready_heartbeat: current, lease_renewed: p.lease_renewed },
        (Some(p), _) => p.clone(),
    };
    if let Some(renewed) = lease_renewed
        && probe.lease_renewed.is_none_or(|seen| seen < renewed)
    {
        probe.lease_renewed = Some(renewed);
        probe.at = now;
    }
    probe
}

/// The grace period that applies to the node: longer while it has never posted a Ready condition.
pub fn grace_period(node: &Node, monitor_grace: Duration, startup_grace: Duration) -> Duration {
    if taints::condition(node, "Ready").is_some() { monitor_grace } else { startup_grace }
}

/// The node has shown no sign of life for longer than `grace`.
pub fn is_stale(probe: &Probe, grace: Duration, now: Timestamp) -> bool {
    let grace = SignedDuration::try_from(grace).unwrap_or(SignedDuration::MAX);
    now.duration_since(probe.at) > grace
}

/// The node's conditions with every agent-owned one set Unknown (added if the agent never posted
/// it), or `None` when they already are.
pub fn unknown_conditions(node: &Node, now: Timestamp) -> Option<Vec<NodeCondition>> {
    let mut conditions = node.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    let created = node.metadata.creation_timestamp.clone();
    let mut changed = false;
    for type_ in AGENT_CONDITIONS {
        match conditions.iter_mut().find(|c| c.type_ == *type_) {
            Some(c) if c.status == "Unknown" => {}
            Some(c) => {
                c.status = "Unknown".to_string();
                c.reason = Some(REASON_UNKNOWN.to_string());
                c.message = Some(MESSAGE_UNKNOWN.to_string());
                c.last_transition_time = Some(Time(now));
                changed = true;
            }
            None => {
                conditions.push(NodeCondition {
                    type_: type_.to_string(),
                    status: "Unknown".to_string(),
                    reason: Some(REASON_NEVER_UPDATED.to_string()),
                    message: Some(MESSAGE_NEVER_UPDATED.to_string()),
                    last_heartbeat_time: created.clone(),
                    last_transition_time: Some(Time(now)),
                });
                changed = true;
            }
        }
    }
    changed.then_some(conditions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NodeStatus;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn node(ready_heartbeat: Option<i64>) -> Node {
        let mut node = Node::default();
        node.metadata.creation_timestamp = Some(Time(at(100)));
        node.status = Some(NodeStatus {
            conditions: ready_heartbeat.map(|hb| {
                vec![NodeCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_heartbeat_time: Some(Time(at(hb))),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        });
        node
    }

    #[test]
    fn probe_times() {
        let seen = observe(None, &node(Some(150)), Some(at(150)), at(200));
        // (name, previous, node, lease renewTime, now, expected probe time)
        let cases = [
            ("new node without status counts from creation", None, node(None), None, 300, 100),
            ("first sighting counts from now", None, node(Some(150)), None, 300, 300),
            ("same heartbeat, same lease: unchanged", Some(seen.clone()), node(Some(150)), Some(at(150)), 400, 200),
            ("new heartbeat", Some(seen.clone()), node(Some(390)), Some(at(150)), 400, 400),
            ("renewed lease alone is enough", Some(seen.clone()), node(Some(150)), Some(at(395)), 400, 400),
            ("older lease is ignored", Some(seen.clone()), node(Some(150)), Some(at(10)), 400, 200),
            ("ready condition removed", Some(seen.clone()), node(None), Some(at(150)), 400, 400),
        ];
        for (name, previous, node, lease, now, want) in cases {
            assert_eq!(observe(previous.as_ref(), &node, lease, at(now)).at, at(want), "{name}");
        }
    }

    #[test]
    fn staleness() {
        let probe = observe(None, &node(Some(0)), None, at(1000));
        let grace = Duration::from_secs(40);
        let cases = [("within grace", 1030, false), ("exactly at grace", 1040, false), ("past grace", 1041, true)];
        for (name, now, want) in cases {
            assert_eq!(is_stale(&probe, grace, at(now)), want, "{name}");
        }
        let startup = Duration::from_secs(60);
        assert_eq!(grace_period(&node(None), grace, startup), startup, "no Ready condition: startup grace");
        assert_eq!(grace_period(&node(Some(1)), grace, startup), grace, "Ready posted: monitor grace");
    }

    #[test]
    fn silent_node_conditions() {
        let mut n = node(Some(150));
        if let Some(c) = n.status.as_mut().and_then(|s| s.conditions.as_mut()) {
            c.push(NodeCondition { type_: "NetworkUnavailable".into(), status: "False".into(), ..Default::default() });
        }
        let conditions = unknown_conditions(&n, at(500)).unwrap_or_default();
        let get = |t: &str| conditions.iter().find(|c| c.type_ == t).cloned().unwrap_or_default();
        assert_eq!(get("Ready").status, "Unknown");
        assert_eq!(get("Ready").reason.as_deref(), Some(REASON_UNKNOWN));
        assert_eq!(get("Ready").message.as_deref(), Some(MESSAGE_UNKNOWN));
        assert_eq!(get("Ready").last_heartbeat_time, Some(Time(at(150))), "heartbeat is kept");
        assert_eq!(get("MemoryPressure").reason.as_deref(), Some(REASON_NEVER_UPDATED));
        assert_eq!(get("NetworkUnavailable").status, "False", "not the agent's condition");

        let mut already = n.clone();
        if let Some(s) = already.status.as_mut() {
            s.conditions = Some(conditions.clone());
        }
        assert_eq!(unknown_conditions(&already, at(600)), None, "already Unknown: nothing to write");
    }
}

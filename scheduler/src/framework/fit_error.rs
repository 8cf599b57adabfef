//! Why a pod fits no node, and the message upstream prints for it:
//! `0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 Insufficient cpu. preemption: …`
//! Reasons are counted across nodes and the `"<count> <reason>"` strings sorted as text.

use std::collections::BTreeMap;

use super::Status;

/// Each node's filter verdict; nodes not listed share `absent`.
#[derive(Debug, Clone)]
pub struct NodeToStatus {
    explicit: BTreeMap<String, Status>,
    absent: Status,
}

impl Default for NodeToStatus {
    fn default() -> Self {
        Self::new(Status::new(super::Code::UnschedulableAndUnresolvable, Vec::<String>::new()))
    }
}

impl NodeToStatus {
    /// An empty map whose unlisted nodes all have `absent`.
    pub fn new(absent: Status) -> Self {
        Self { explicit: BTreeMap::new(), absent }
    }

    pub fn set(&mut self, node: impl Into<String>, status: Status) {
        self.explicit.insert(node.into(), status);
    }

    /// The status recorded for `node`, or the shared status of unlisted nodes.
    pub fn get(&self, node: &str) -> &Status {
        self.explicit.get(node).unwrap_or(&self.absent)
    }

    pub fn explicit(&self) -> impl Iterator<Item = (&str, &Status)> {
        self.explicit.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn absent(&self) -> &Status {
        &self.absent
    }

    pub fn len(&self) -> usize {
        self.explicit.len()
    }

    pub fn is_empty(&self) -> bool {
        self.explicit.is_empty()
    }
}

/// The diagnosis of a failed scheduling cycle.
#[derive(Debug, Clone)]
pub struct FitError {
    pub num_all_nodes: usize,
    /// Set when a PreFilter plugin rejected the pod for every node.
    pub pre_filter_msg: Option<String>,
    pub node_to_status: NodeToStatus,
    /// The PostFilter plugins' message (for example the preemption verdict).
    pub post_filter_msg: Option<String>,
}

impl FitError {
    /// The full message, as used in the FailedScheduling event and the PodScheduled condition.
    pub fn message(&self) -> String {
        let mut msg = format!("0/{} nodes are available:", self.num_all_nodes);
        match self.pre_filter_msg.as_deref().filter(|m| !m.is_empty()) {
            Some(pre) => msg.push_str(&format!(" {pre}.")),
            None => {
                let histogram = self.reason_histogram();
                if !histogram.is_empty() {
                    msg.push_str(&format!(" {}.", histogram.join(", ")));
                }
            }
        }
        if let Some(post) = self.post_filter_msg.as_deref().filter(|m| !m.is_empty()) {
            msg.push(' ');
            msg.push_str(post);
        }
        msg
    }

    /// `"<count> <reason>"` for every distinct reason, sorted as strings (so "10 x" sorts before "2 y",
    /// exactly as upstream does).
    fn reason_histogram(&self) -> Vec<String> {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, status) in self.node_to_status.explicit() {
            for reason in status.reasons() {
                *counts.entry(reason.as_str()).or_default() += 1;
            }
        }
        let listed = self.node_to_status.len();
        if listed < self.num_all_nodes {
            for reason in self.node_to_status.absent().reasons() {
                if !reason.is_empty() {
                    *counts.entry(reason.as_str()).or_default() += self.num_all_nodes - listed;
                }
            }
        }
        let mut lines: Vec<String> = counts.into_iter().map(|(reason, n)| format!("{n} {reason}")).collect();
        lines.sort();
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;

    fn statuses(pairs: &[(&str, Status)]) -> NodeToStatus {
        let mut m = NodeToStatus::default();
        for (n, s) in pairs {
            m.set(*n, s.clone());
        }
        m
    }

    #[test]
    fn messages() {
        let cpu = Status::unschedulable("Insufficient cpu");
        let taint = Status::unresolvable("node(s) had untolerated taint(s)");
        let cases = [
            (
                "all nodes short of cpu, no preemption victims",
                FitError {
                    num_all_nodes: 3,
                    pre_filter_msg: None,
                    node_to_status: statuses(&[("a", cpu.clone()), ("b", cpu.clone()), ("c", cpu.clone())]),
                    post_filter_msg: Some(
                        "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.".into(),
                    ),
                },
                "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.",
            ),
            (
                "mixed reasons are counted and sorted",
                FitError {
                    num_all_nodes: 3,
                    pre_filter_msg: None,
                    node_to_status: statuses(&[
                        ("a", taint.clone()),
                        ("b", Status::new(Code::Unschedulable, ["Insufficient cpu", "Insufficient memory"])),
                        ("c", cpu.clone()),
                    ]),
                    post_filter_msg: None,
                },
                "0/3 nodes are available: 1 Insufficient memory, 1 node(s) had untolerated taint(s), 2 Insufficient cpu.",
            ),
            (
                "unlisted nodes take the absent status",
                FitError {
                    num_all_nodes: 3,
                    pre_filter_msg: None,
                    node_to_status: NodeToStatus::new(Status::unresolvable("Preemption is not helpful for scheduling")),
                    post_filter_msg: None,
                },
                "0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
            ),
            (
                "prefilter message replaces the histogram",
                FitError {
                    num_all_nodes: 2,
                    pre_filter_msg: Some("pod affinity terms conflict".into()),
                    node_to_status: statuses(&[("a", cpu.clone())]),
                    post_filter_msg: None,
                },
                "0/2 nodes are available: pod affinity terms conflict.",
            ),
            (
                "no nodes at all",
                FitError { num_all_nodes: 0, pre_filter_msg: None, node_to_status: NodeToStatus::default(), post_filter_msg: None },
                "0/0 nodes are available:",
            ),
        ];
        for (name, fe, want) in cases {
            assert_eq!(fe.message(), want, "case {name}");
        }
    }

    #[test]
    fn counts_sort_as_text() {
        let mut m = NodeToStatus::default();
        for i in 0..10 {
            m.set(format!("x{i}"), Status::unschedulable("b"));
        }
        m.set("y0", Status::unschedulable("a"));
        m.set("y1", Status::unschedulable("a"));
        let fe = FitError { num_all_nodes: 12, pre_filter_msg: None, node_to_status: m, post_filter_msg: None };
        assert_eq!(fe.message(), "0/12 nodes are available: 10 b, 2 a.");
    }
}

//! One small trait per extension point. A plugin implements the ones it needs and exposes them through
//! the `as_*` accessors of [`Plugin`], so the framework can build each extension point's list from the
//! enabled plugins.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;

use super::{CycleState, NodeInfo, NodeToStatus, Snapshot, Status};

/// The highest score a Score plugin may give a node after normalization.
pub const MAX_NODE_SCORE: i64 = 100;

/// A node's score from one plugin, or the weighted total. It borrows the node's name: a cycle scores
/// hundreds of nodes per plugin, and copying every name each time was most of its cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeScore<'a> {
    pub name: &'a str,
    pub score: i64,
}

/// Every plugin: a name plus the extension points it takes part in.
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;

    fn as_pre_enqueue(&self) -> Option<&dyn PreEnqueuePlugin> {
        None
    }
    fn as_queue_sort(&self) -> Option<&dyn QueueSortPlugin> {
        None
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        None
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        None
    }
    fn as_post_filter(&self) -> Option<&dyn PostFilterPlugin> {
        None
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        None
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        None
    }
    fn as_reserve(&self) -> Option<&dyn ReservePlugin> {
        None
    }
    fn as_permit(&self) -> Option<&dyn PermitPlugin> {
        None
    }
    fn as_pre_bind(&self) -> Option<&dyn PreBindPlugin> {
        None
    }
    fn as_bind(&self) -> Option<&dyn BindPlugin> {
        None
    }
    fn as_post_bind(&self) -> Option<&dyn PostBindPlugin> {
        None
    }
}

/// Decides whether a pod may enter the active queue at all (upstream: scheduling gates). A pod turned
/// down waits, untried, until an update to it lets every PreEnqueue plugin pass.
pub trait PreEnqueuePlugin: Send + Sync {
    fn pre_enqueue(&self, pod: &Pod) -> Status;
}

/// A pod as the queue orders it: the object and when it entered the active queue.
#[derive(Debug, Clone, Copy)]
pub struct QueuedPodInfo<'a> {
    pub pod: &'a Pod,
    pub timestamp: Instant,
}

/// Orders the active queue: `less(a, b)` means `a` is scheduled before `b`. One per scheduler, since
/// every profile shares the queue.
pub trait QueueSortPlugin: Send + Sync {
    fn less(&self, a: &QueuedPodInfo<'_>, b: &QueuedPodInfo<'_>) -> bool;
}

/// Runs once per cycle before filtering: precomputes state, or rejects the pod outright (for every
/// node). `Skip` means this plugin's Filter is not needed for this pod.
pub trait PreFilterPlugin: Send + Sync {
    fn pre_filter(&self, state: &mut CycleState, pod: &Pod, snapshot: &Snapshot) -> Status;
}

/// Decides whether the pod can run on one node.
pub trait FilterPlugin: Send + Sync {
    fn filter(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> Status;
}

/// Runs every enabled Filter plugin against one node; handed to PostFilter plugins so they can ask
/// "would the pod fit if…" on a modified node.
pub trait FilterRunner: Send + Sync {
    fn run_filters(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> Status;
}

/// What a PostFilter plugin did: its status (a rejection's message is appended to the failure message)
/// and, when it made room somewhere, the node the pod is nominated to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostFilterResult {
    pub status: Status,
    pub nominated_node: Option<String>,
}

impl From<Status> for PostFilterResult {
    fn from(status: Status) -> Self {
        Self { status, nominated_node: None }
    }
}

/// Runs when no node passed the filters (upstream: preemption).
pub trait PostFilterPlugin: Send + Sync {
    fn post_filter(
        &self,
        state: &CycleState,
        pod: &Pod,
        snapshot: &Snapshot,
        statuses: &NodeToStatus,
        filters: &dyn FilterRunner,
    ) -> PostFilterResult;
}

/// Runs once before scoring with the feasible nodes, and the whole cluster's `snapshot` (upstream's plugins
/// reach it through the handle's snapshot lister). `Skip` means this plugin's Score is not needed.
pub trait PreScorePlugin: Send + Sync {
    fn pre_score(&self, state: &mut CycleState, pod: &Pod, nodes: &[&NodeInfo], snapshot: &Snapshot) -> Status;
}

/// Ranks one feasible node. Scores are brought to `0..=MAX_NODE_SCORE` by [`NormalizeScorePlugin`] when
/// the plugin has one, then multiplied by the plugin's weight.
pub trait ScorePlugin: Send + Sync {
    fn score(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> Result<i64, Status>;

    fn normalizer(&self) -> Option<&dyn NormalizeScorePlugin> {
        None
    }
}

/// Rescales one plugin's scores across all feasible nodes.
pub trait NormalizeScorePlugin: Send + Sync {
    fn normalize_score(&self, state: &CycleState, pod: &Pod, scores: &mut [NodeScore<'_>]) -> Status;
}

/// Claims what the pod will use on its node once it is assumed there (volumes, devices), before the
/// binding cycle starts. `unreserve` undoes it when any later step fails; it must be idempotent, since
/// it also runs for plugins whose `reserve` never ran or failed.
pub trait ReservePlugin: Send + Sync {
    fn reserve(&self, state: &mut CycleState, pod: &Pod, node_name: &str) -> Status;
    fn unreserve(&self, state: &mut CycleState, pod: &Pod, node_name: &str);
}

/// The last say before binding: allow, reject, or `Wait` (with how long at most) until the plugin, or
/// whoever holds the [`WaitingPods`](super::WaitingPods), allows or rejects the pod.
pub trait PermitPlugin: Send + Sync {
    fn permit(&self, state: &CycleState, pod: &Pod, node_name: &str) -> (Status, Duration);
}

/// Prepares the node or the API for the pod (for example provisions a volume) before it is bound.
pub trait PreBindPlugin: Send + Sync {
    fn pre_bind<'a>(&'a self, state: &'a CycleState, pod: &'a Pod, node_name: &'a str) -> BoxFuture<'a, Status>;
}

/// Told that the pod was bound; informational, it cannot fail the binding.
pub trait PostBindPlugin: Send + Sync {
    fn post_bind(&self, state: &CycleState, pod: &Pod, node_name: &str);
}

/// Commits the decision to the API. `Skip` passes the pod to the next Bind plugin.
pub trait BindPlugin: Send + Sync {
    fn bind<'a>(&'a self, pod: &'a Pod, node_name: &'a str) -> BoxFuture<'a, Status>;
}

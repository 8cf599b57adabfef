//! One small trait per extension point. A plugin implements the ones it needs and exposes them through
//! the `as_*` accessors of [`Plugin`], so the framework can build each extension point's list from the
//! enabled plugins.

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;

use super::{CycleState, NodeInfo, NodeToStatus, Snapshot, Status};

/// The highest score a Score plugin may give a node after normalization.
pub const MAX_NODE_SCORE: i64 = 100;

/// A node's score from one plugin, or the weighted total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeScore {
    pub name: String,
    pub score: i64,
}

/// Every plugin: a name plus the extension points it takes part in.
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;

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
    fn as_bind(&self) -> Option<&dyn BindPlugin> {
        None
    }
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

/// Runs once before scoring with the feasible nodes. `Skip` means this plugin's Score is not needed.
pub trait PreScorePlugin: Send + Sync {
    fn pre_score(&self, state: &mut CycleState, pod: &Pod, nodes: &[&NodeInfo]) -> Status;
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
    fn normalize_score(&self, state: &CycleState, pod: &Pod, scores: &mut [NodeScore]) -> Status;
}

/// Commits the decision to the API. `Skip` passes the pod to the next Bind plugin.
pub trait BindPlugin: Send + Sync {
    fn bind<'a>(&'a self, pod: &'a Pod, node_name: &'a str) -> BoxFuture<'a, Status>;
}

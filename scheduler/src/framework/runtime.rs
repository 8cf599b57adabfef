//! Runs the enabled plugins through one scheduling cycle: PreFilter → Filter (every node) → PostFilter
//! when nothing fits → PreScore → Score → NormalizeScore → weighted sum → host selection; Bind later.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use rand::Rng;

use super::registry::{self, Handle, PluginSpec, Registry};
use super::{Code, CycleState, FilterRunner, FitError, MAX_NODE_SCORE, NodeInfo, NodeScore, NodeToStatus, Plugin, Snapshot, Status};

/// CycleState key for the Filter plugins a PreFilter plugin asked to skip.
const SKIP_FILTER_KEY: &str = "framework/skip-filter-plugins";
/// Upstream's message when the cluster has no nodes.
pub const NO_NODES_AVAILABLE: &str = "no nodes available to schedule pods";

/// Why a cycle did not produce a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The pod fits nowhere (reason `Unschedulable`); the message is the FitError text.
    Unschedulable(String),
    /// A plugin failed (reason `SchedulerError`); the pod is retried with backoff.
    Error(String),
}

/// The plugins of one profile, with their score weights.
pub struct Framework {
    plugins: Vec<(Arc<dyn Plugin>, i64)>,
}

impl Framework {
    pub fn new(plugins: Vec<(Arc<dyn Plugin>, i64)>) -> Self {
        Self { plugins }
    }

    /// Builds the profile's plugins from the registry.
    pub fn from_registry(registry: &Registry, specs: &[PluginSpec], handle: &Handle) -> registry::Result<Self> {
        Ok(Self::new(registry.build(specs, handle)?))
    }

    /// Chooses a node for `pod`, or says why none fits.
    pub fn schedule(&self, pod: &Pod, snapshot: &Snapshot) -> Result<String, Failure> {
        if snapshot.is_empty() {
            return Err(Failure::Unschedulable(NO_NODES_AVAILABLE.to_string()));
        }
        let mut state = CycleState::new();
        let mut skip = BTreeSet::new();
        for (p, _) in &self.plugins {
            let Some(pf) = p.as_pre_filter() else { continue };
            let s = pf.pre_filter(&mut state, pod, snapshot);
            match s.code() {
                Code::Success => {}
                Code::Skip => {
                    skip.insert(p.name());
                }
                Code::Unschedulable | Code::UnschedulableAndUnresolvable => {
                    let fit = FitError {
                        num_all_nodes: snapshot.len(),
                        pre_filter_msg: Some(s.message()),
                        node_to_status: NodeToStatus::new(s.clone().with_plugin(p.name())),
                        post_filter_msg: None,
                    };
                    return Err(self.post_filter(&state, pod, snapshot, fit));
                }
                Code::Error | Code::Wait => {
                    return Err(Failure::Error(format!("running PreFilter plugin {:?}: {}", p.name(), s.message())));
                }
            }
        }
        state.write(SKIP_FILTER_KEY, skip);

        let mut statuses = NodeToStatus::default();
        let mut feasible: Vec<&NodeInfo> = Vec::new();
        for node in snapshot.nodes() {
            let s = self.run_filters(&state, pod, node);
            match s.code() {
                Code::Success => feasible.push(node),
                Code::Error | Code::Wait => {
                    return Err(Failure::Error(format!(
                        "running Filter plugin {:?} on node {:?}: {}",
                        s.plugin().unwrap_or_default(),
                        node.name(),
                        s.message()
                    )));
                }
                _ => statuses.set(node.name(), s),
            }
        }
        if feasible.is_empty() {
            let fit = FitError { num_all_nodes: snapshot.len(), pre_filter_msg: None, node_to_status: statuses, post_filter_msg: None };
            return Err(self.post_filter(&state, pod, snapshot, fit));
        }
        if let [only] = feasible.as_slice() {
            return Ok(only.name().to_string());
        }
        let totals = self.score(&mut state, pod, &feasible)?;
        select_host(&totals, &mut rand::rng()).ok_or_else(|| Failure::Error("no node left after scoring".into()))
    }

    /// Runs the PostFilter plugins and turns the diagnosis into the final message.
    fn post_filter(&self, state: &CycleState, pod: &Pod, snapshot: &Snapshot, mut fit: FitError) -> Failure {
        let mut messages = Vec::new();
        for (p, _) in &self.plugins {
            let Some(pf) = p.as_post_filter() else { continue };
            let s = pf.post_filter(state, pod, snapshot, &fit.node_to_status, self);
            if s.is_success() {
                break;
            }
            let m = s.message();
            if !m.is_empty() {
                messages.push(m);
            }
        }
        if !messages.is_empty() {
            fit.post_filter_msg = Some(messages.join(" "));
        }
        Failure::Unschedulable(fit.message())
    }

    /// Scores the feasible nodes: each plugin's scores normalized, checked, weighted and summed.
    fn score(&self, state: &mut CycleState, pod: &Pod, nodes: &[&NodeInfo]) -> Result<Vec<NodeScore>, Failure> {
        let mut skip = BTreeSet::new();
        for (p, _) in &self.plugins {
            let Some(ps) = p.as_pre_score() else { continue };
            let s = ps.pre_score(state, pod, nodes);
            if s.is_skip() {
                skip.insert(p.name());
            } else if !s.is_success() {
                return Err(Failure::Error(format!("running PreScore plugin {:?}: {}", p.name(), s.message())));
            }
        }
        let mut totals: Vec<NodeScore> = nodes.iter().map(|n| NodeScore { name: n.name().to_string(), score: 0 }).collect();
        for (p, weight) in &self.plugins {
            let Some(sp) = p.as_score() else { continue };
            if skip.contains(p.name()) || *weight == 0 {
                continue;
            }
            let mut scores = Vec::with_capacity(nodes.len());
            for n in nodes {
                let score = sp.score(state, pod, n).map_err(|s| {
                    Failure::Error(format!("running Score plugin {:?} on node {:?}: {}", p.name(), n.name(), s.message()))
                })?;
                scores.push(NodeScore { name: n.name().to_string(), score });
            }
            if let Some(norm) = sp.normalizer() {
                let s = norm.normalize_score(state, pod, &mut scores);
                if !s.is_success() {
                    return Err(Failure::Error(format!("running NormalizeScore plugin {:?}: {}", p.name(), s.message())));
                }
            }
            for (total, s) in totals.iter_mut().zip(&scores) {
                if !(0..=MAX_NODE_SCORE).contains(&s.score) {
                    return Err(Failure::Error(format!(
                        "plugin {:?} returns an invalid score {} for node {:?}, it should be in the range of [0, {MAX_NODE_SCORE}] after normalizing",
                        p.name(),
                        s.score,
                        s.name
                    )));
                }
                total.score += s.score * weight;
            }
        }
        Ok(totals)
    }

    /// Calls the Bind plugins in order until one does not skip.
    pub async fn bind(&self, pod: &Pod, node_name: &str) -> Status {
        for (p, _) in &self.plugins {
            let Some(b) = p.as_bind() else { continue };
            let s = b.bind(pod, node_name).await;
            if !s.is_skip() {
                return s.with_plugin(p.name());
            }
        }
        Status::error("no Bind plugin bound the pod")
    }
}

impl FilterRunner for Framework {
    /// Every Filter plugin not skipped in this cycle; the first rejection wins, as upstream.
    fn run_filters(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> Status {
        let skip = state.read::<BTreeSet<&'static str>>(SKIP_FILTER_KEY);
        for (p, _) in &self.plugins {
            let Some(f) = p.as_filter() else { continue };
            if skip.is_some_and(|s| s.contains(p.name())) {
                continue;
            }
            let s = f.filter(state, pod, node);
            if !s.is_success() {
                return s.with_plugin(p.name());
            }
        }
        Status::success()
    }
}

/// The highest total, ties broken uniformly at random (reservoir sampling) so equal nodes share load.
pub fn select_host(scores: &[NodeScore], rng: &mut impl Rng) -> Option<String> {
    let mut best: Option<&NodeScore> = None;
    let mut ties = 0_u32;
    for s in scores {
        match best {
            Some(b) if s.score < b.score => {}
            Some(b) if s.score == b.score => {
                ties += 1;
                if rng.random_range(0..ties) == 0 {
                    best = Some(s);
                }
            }
            _ => {
                best = Some(s);
                ties = 1;
            }
        }
    }
    best.map(|b| b.name.clone())
}

#[cfg(test)]
#[path = "runtime_tests.rs"]
mod tests;

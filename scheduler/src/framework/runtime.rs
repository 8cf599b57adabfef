//! Runs the enabled plugins through one scheduling cycle: PreFilter → Filter (every node, or enough of
//! them) → PostFilter when nothing fits → PreScore → Score → NormalizeScore → weighted sum → host
//! selection; Bind later. Every cycle also records an [`Explanation`].

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::core::v1::Pod;
use rand::Rng;

use super::explanation::{Candidate, EXPLAINED_CANDIDATES, Explanation, PluginScore, Rejection};
use super::nominated::{self, NominatedPods};
use super::node_info::pod_key;
use super::points::{Enabled, Point};
use super::pod_overrides;
use super::registry::{self, Handle, PluginSpec, Registry};
use super::{Code, CycleState, FilterRunner, FitError, MAX_NODE_SCORE, NodeInfo, NodeScore, NodeToStatus, Plugin, Snapshot, Status};

/// CycleState key for the Filter plugins a PreFilter plugin asked to skip.
const SKIP_FILTER_KEY: &str = "framework/skip-filter-plugins";
/// Upstream's message when the cluster has no nodes.
pub const NO_NODES_AVAILABLE: &str = "no nodes available to schedule pods";
/// Below this many nodes every node is filtered, whatever percentageOfNodesToScore says (upstream's
/// `minFeasibleNodesToFind`).
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// The lowest adaptive percentage (upstream's `minFeasibleNodesPercentageToFind`).
const MIN_FEASIBLE_NODES_PERCENTAGE: usize = 5;

/// Why a cycle did not produce a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The pod fits nowhere (reason `Unschedulable`); the message is the FitError text.
    Unschedulable(String),
    /// A plugin failed (reason `SchedulerError`); the pod is retried with backoff.
    Error(String),
}

/// The plugins of one profile, with their score weights and extension points.
pub struct Framework {
    profile: String,
    plugins: Vec<Enabled>,
    /// `None` or `Some(0)`: upstream's adaptive default.
    percentage_of_nodes_to_score: Option<u32>,
    /// Where the next cycle starts filtering, so that a search stopped early does not always favour the
    /// first nodes (upstream's `nextStartNodeIndex`).
    next_start: AtomicUsize,
}

impl Framework {
    /// Every plugin at every point it implements.
    pub fn new(plugins: Vec<(Arc<dyn Plugin>, i64)>) -> Self {
        Self::from_enabled(String::new(), plugins.into_iter().map(|(p, w)| Enabled::everywhere(p, w)).collect(), None)
    }

    /// A profile resolved from the configuration.
    pub fn from_enabled(profile: String, plugins: Vec<Enabled>, percentage_of_nodes_to_score: Option<u32>) -> Self {
        Self { profile, plugins, percentage_of_nodes_to_score, next_start: AtomicUsize::new(0) }
    }

    /// Builds the profile's plugins from the registry.
    pub fn from_registry(registry: &Registry, specs: &[PluginSpec], handle: &Handle) -> registry::Result<Self> {
        Ok(Self::new(registry.build(specs, handle)?))
    }

    pub fn profile(&self) -> &str {
        &self.profile
    }

    pub fn plugins(&self) -> &[Enabled] {
        &self.plugins
    }

    /// Chooses a node for `pod`, or says why none fits.
    pub fn schedule(&self, pod: &Pod, snapshot: &Snapshot) -> Result<String, Failure> {
        self.schedule_explained(pod, snapshot).0
    }

    /// Like [`Framework::schedule`], with the record of how the decision was made.
    pub fn schedule_explained(&self, pod: &Pod, snapshot: &Snapshot) -> (Result<String, Failure>, Explanation) {
        self.schedule_with_nominated(pod, snapshot, Arc::default())
    }

    /// Like [`Framework::schedule_explained`], counting `nominated` pods on their nominated nodes while
    /// filtering (for pods they outrank or equal).
    pub fn schedule_with_nominated(
        &self,
        pod: &Pod,
        snapshot: &Snapshot,
        nominated: Arc<NominatedPods>,
    ) -> (Result<String, Failure>, Explanation) {
        let (result, ex) = self.schedule_cycle(pod, snapshot, nominated);
        (result.map(|(node, _)| node), ex)
    }

    /// Like [`Framework::schedule_with_nominated`], also handing back the cycle's state for the Reserve,
    /// Permit and binding plugins.
    pub fn schedule_cycle(
        &self,
        pod: &Pod,
        snapshot: &Snapshot,
        nominated: Arc<NominatedPods>,
    ) -> (Result<(String, CycleState), Failure>, Explanation) {
        let mut ex = Explanation {
            pod: pod_key(pod),
            profile: self.profile.clone(),
            time: k8s_openapi::jiff::Timestamp::now().to_string(),
            total_nodes: snapshot.len(),
            ..Default::default()
        };
        let search = Search {
            enough: self.num_feasible_nodes_to_find(snapshot.len()),
            start: self.next_start.load(Ordering::Relaxed) % snapshot.len().max(1),
        };
        let result = match pod_overrides::apply(&self.plugins, pod) {
            Ok(None) => Cycle { plugins: &self.plugins }.run(pod, snapshot, nominated, search, &mut ex),
            Ok(Some((plugins, summary))) => {
                ex.pod_plugin_overrides = Some(summary);
                Cycle { plugins: &plugins }.run(pod, snapshot, nominated, search, &mut ex)
            }
            Err(e) => Err(Failure::Unschedulable(e.to_string())),
        };
        self.next_start.store((search.start + ex.evaluated_nodes) % snapshot.len().max(1), Ordering::Relaxed);
        match &result {
            Ok((node, _)) => ex.selected_node = Some(node.clone()),
            Err(Failure::Unschedulable(m) | Failure::Error(m)) => ex.failure = Some(m.clone()),
        }
        ex.sort_candidates();
        (result, ex)
    }

    /// How many feasible nodes are enough before scoring (upstream's `numFeasibleNodesToFind`).
    fn num_feasible_nodes_to_find(&self, all: usize) -> usize {
        let pct = self.percentage_of_nodes_to_score.unwrap_or(0) as usize;
        if all < MIN_FEASIBLE_NODES_TO_FIND || pct >= 100 {
            return all;
        }
        let pct = if pct == 0 { 50_usize.saturating_sub(all / 125).max(MIN_FEASIBLE_NODES_PERCENTAGE) } else { pct };
        (all * pct / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
    }

    /// Calls the Bind plugins in order until one does not skip.
    pub async fn bind(&self, pod: &Pod, node_name: &str) -> Status {
        for e in self.plugins.iter().filter(|e| e.runs_at(Point::Bind)) {
            let Some(b) = e.plugin.as_bind() else { continue };
            let s = b.bind(pod, node_name).await;
            if !s.is_skip() {
                return s.with_plugin(e.name());
            }
        }
        Status::error("no Bind plugin bound the pod")
    }
}

/// How much of the cluster one cycle filters: from `start` (wrapping), until `enough` nodes fit.
#[derive(Debug, Clone, Copy)]
struct Search {
    enough: usize,
    start: usize,
}

/// The plugins in force for one pod's cycle (the profile's, or the profile's as the pod's annotation
/// changed them).
struct Cycle<'a> {
    plugins: &'a [Enabled],
}

impl Cycle<'_> {
    fn at(&self, p: Point) -> impl Iterator<Item = &Enabled> {
        self.plugins.iter().filter(move |e| e.runs_at(p))
    }

    fn run(
        &self,
        pod: &Pod,
        snapshot: &Snapshot,
        nominated: Arc<NominatedPods>,
        search: Search,
        ex: &mut Explanation,
    ) -> Result<(String, CycleState), Failure> {
        if snapshot.is_empty() {
            return Err(Failure::Unschedulable(NO_NODES_AVAILABLE.to_string()));
        }
        let mut state = CycleState::new();
        state.write(nominated::STATE_KEY, nominated);
        let mut skip = BTreeSet::new();
        for e in self.at(Point::PreFilter) {
            let Some(pf) = e.plugin.as_pre_filter() else { continue };
            let s = pf.pre_filter(&mut state, pod, snapshot);
            match s.code() {
                Code::Success => {}
                Code::Skip => {
                    skip.insert(e.name());
                }
                Code::Unschedulable | Code::UnschedulableAndUnresolvable => {
                    ex.rejections.push(rejection("*", e.name(), &s));
                    let fit = FitError {
                        num_all_nodes: snapshot.len(),
                        pre_filter_msg: Some(s.message()),
                        node_to_status: NodeToStatus::new(s.clone().with_plugin(e.name())),
                        post_filter_msg: None,
                    };
                    return Err(self.post_filter(&state, pod, snapshot, fit, ex));
                }
                Code::Error | Code::Wait => {
                    return Err(Failure::Error(format!("running PreFilter plugin {:?}: {}", e.name(), s.message())));
                }
            }
        }
        state.write(SKIP_FILTER_KEY, skip);

        // A pod that preempted before goes where it made room, if it fits there now (upstream's
        // evaluateNominatedNode); otherwise every node is considered again.
        if let Some(node) = nominated_node_of(pod).and_then(|n| snapshot.get(n)) {
            ex.evaluated_nodes += 1;
            if self.run_filters(&state, pod, node).is_success() {
                ex.feasible_nodes = 1;
                return Ok((node.name().to_string(), state));
            }
        }

        let mut statuses = NodeToStatus::default();
        let mut feasible: Vec<&NodeInfo> = Vec::new();
        let nodes = snapshot.nodes();
        let (tail, head) = nodes.split_at(search.start.min(nodes.len()));
        for node in head.iter().chain(tail) {
            if feasible.len() >= search.enough {
                break;
            }
            ex.evaluated_nodes += 1;
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
                _ => {
                    ex.rejections.push(rejection(node.name(), s.plugin().unwrap_or_default(), &s));
                    statuses.set(node.name(), s);
                }
            }
        }
        ex.feasible_nodes = feasible.len();
        if feasible.is_empty() {
            let fit = FitError { num_all_nodes: snapshot.len(), pre_filter_msg: None, node_to_status: statuses, post_filter_msg: None };
            return Err(self.post_filter(&state, pod, snapshot, fit, ex));
        }
        if let [only] = feasible.as_slice() {
            return Ok((only.name().to_string(), state));
        }
        let totals = self.score(&mut state, pod, &feasible, snapshot, ex)?;
        let node = select_host(&totals, &mut rand::rng()).ok_or_else(|| Failure::Error("no node left after scoring".into()))?;
        Ok((node, state))
    }

    /// Runs the PostFilter plugins and turns the diagnosis into the final message.
    /// A plugin that nominates a node is recorded in `ex.nominated_node`.
    fn post_filter(&self, state: &CycleState, pod: &Pod, snapshot: &Snapshot, mut fit: FitError, ex: &mut Explanation) -> Failure {
        let mut messages = Vec::new();
        for e in self.at(Point::PostFilter) {
            let Some(pf) = e.plugin.as_post_filter() else { continue };
            let result = pf.post_filter(state, pod, snapshot, &fit.node_to_status, self);
            let s = result.status;
            if s.is_success() {
                ex.nominated_node = result.nominated_node;
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
    /// The weighted totals, in the order of `nodes`.
    fn score<'n>(
        &self,
        state: &mut CycleState,
        pod: &Pod,
        nodes: &[&'n NodeInfo],
        snapshot: &Snapshot,
        ex: &mut Explanation,
    ) -> Result<Vec<NodeScore<'n>>, Failure> {
        let mut skip = BTreeSet::new();
        for e in self.at(Point::PreScore) {
            let Some(ps) = e.plugin.as_pre_score() else { continue };
            let s = ps.pre_score(state, pod, nodes, snapshot);
            if s.is_skip() {
                skip.insert(e.name());
            } else if !s.is_success() {
                return Err(Failure::Error(format!("running PreScore plugin {:?}: {}", e.name(), s.message())));
            }
        }
        let mut totals: Vec<NodeScore<'n>> = nodes.iter().map(|n| NodeScore { name: n.name(), score: 0 }).collect();
        let mut scores = totals.clone();
        // Each plugin's normalized scores, node by node, for the explanation.
        let mut by_plugin: Vec<(&'static str, i64, Vec<i64>)> = Vec::new();
        for e in self.at(Point::Score) {
            let Some(sp) = e.plugin.as_score() else { continue };
            if skip.contains(e.name()) || e.weight == 0 {
                continue;
            }
            for (slot, n) in scores.iter_mut().zip(nodes) {
                slot.score = sp.score(state, pod, n).map_err(|s| {
                    Failure::Error(format!("running Score plugin {:?} on node {:?}: {}", e.name(), n.name(), s.message()))
                })?;
            }
            if let Some(norm) = sp.normalizer() {
                let s = norm.normalize_score(state, pod, &mut scores);
                if !s.is_success() {
                    return Err(Failure::Error(format!("running NormalizeScore plugin {:?}: {}", e.name(), s.message())));
                }
            }
            if let Some(bad) = scores.iter().find(|s| !(0..=MAX_NODE_SCORE).contains(&s.score)) {
                return Err(Failure::Error(format!(
                    "plugin {:?} returns an invalid score {} for node {:?}, it should be in the range of [0, {MAX_NODE_SCORE}] after normalizing",
                    e.name(),
                    bad.score,
                    bad.name
                )));
            }
            for (total, s) in totals.iter_mut().zip(&scores) {
                total.score += s.score * e.weight;
            }
            by_plugin.push((e.name(), e.weight, scores.iter().map(|s| s.score).collect()));
        }
        ex.candidates = best_candidates(&totals, &by_plugin);
        Ok(totals)
    }
}

/// The [`EXPLAINED_CANDIDATES`] best nodes by total (ties by name), each with every plugin's part.
fn best_candidates(totals: &[NodeScore<'_>], by_plugin: &[(&'static str, i64, Vec<i64>)]) -> Vec<Candidate> {
    let mut order: Vec<usize> = (0..totals.len()).collect();
    order.sort_unstable_by(|&a, &b| totals[b].score.cmp(&totals[a].score).then_with(|| totals[a].name.cmp(totals[b].name)));
    order.truncate(EXPLAINED_CANDIDATES);
    order
        .into_iter()
        .map(|i| Candidate {
            node: totals[i].name.to_string(),
            total: totals[i].score,
            scores: by_plugin
                .iter()
                .map(|(plugin, weight, scores)| PluginScore {
                    plugin: plugin.to_string(),
                    score: scores[i],
                    weight: *weight,
                    weighted: scores[i] * weight,
                })
                .collect(),
        })
        .collect()
}

fn rejection(node: &str, plugin: &str, s: &Status) -> Rejection {
    Rejection { node: node.to_string(), plugin: plugin.to_string(), code: format!("{:?}", s.code()), reasons: s.reasons().to_vec() }
}

impl FilterRunner for Cycle<'_> {
    /// The filters must pass twice when pods the pod cannot outrank are nominated to the node: once with
    /// them counted (so they keep the room made for them) and once without (so what they would add, such
    /// as affinity matches, is not relied on before they are there), as upstream.
    fn run_filters(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> Status {
        let with = state.read::<Arc<NominatedPods>>(nominated::STATE_KEY).and_then(|n| n.with_nominated(pod, node));
        if let Some(with) = with {
            let s = self.run_filter_plugins(state, pod, &with);
            if !s.is_success() {
                return s;
            }
        }
        self.run_filter_plugins(state, pod, node)
    }
}

/// The node an earlier preemption nominated the pod to.
pub fn nominated_node_of(pod: &Pod) -> Option<&str> {
    pod.status.as_ref().and_then(|s| s.nominated_node_name.as_deref()).filter(|n| !n.is_empty())
}

impl Cycle<'_> {
    /// Every Filter plugin not skipped in this cycle; the first rejection wins, as upstream.
    fn run_filter_plugins(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> Status {
        let skip = state.read::<BTreeSet<&'static str>>(SKIP_FILTER_KEY);
        for e in self.at(Point::Filter) {
            let Some(f) = e.plugin.as_filter() else { continue };
            if skip.is_some_and(|s| s.contains(e.name())) {
                continue;
            }
            let s = f.filter(state, pod, node);
            if !s.is_success() {
                return s.with_plugin(e.name());
            }
        }
        Status::success()
    }
}

/// The highest total, ties broken uniformly at random (reservoir sampling) so equal nodes share load.
pub fn select_host(scores: &[NodeScore<'_>], rng: &mut impl Rng) -> Option<String> {
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
    best.map(|b| b.name.to_string())
}

#[cfg(test)]
#[path = "runtime_tests.rs"]
mod tests;

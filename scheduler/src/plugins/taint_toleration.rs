//! TaintToleration: a node's NoSchedule/NoExecute taints keep out pods that do not tolerate them; its
//! PreferNoSchedule taints count against the node when scoring.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use super::helper::{default_normalize_score, pod_tolerates, pod_tolerations, tolerates};
use crate::framework::registry::{Handle, Result};
use crate::framework::{
    CycleState, FilterPlugin, MAX_NODE_SCORE, NodeInfo, NodeScore, NormalizeScorePlugin, Plugin, ScorePlugin, Status,
};

pub const NAME: &str = "TaintToleration";
/// Filter reason (1.35 wording: the taint itself is not disclosed).
pub const ERR_REASON_NOT_MATCH: &str = "node(s) had untolerated taint(s)";

pub struct TaintToleration;

pub fn new(_: &Handle) -> Result<Arc<dyn Plugin>> {
    Ok(Arc::new(TaintToleration))
}

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

fn node_taints(node: &NodeInfo) -> &[k8s_openapi::api::core::v1::Taint] {
    node.node().spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or_default()
}

impl FilterPlugin for TaintToleration {
    fn filter(&self, _: &CycleState, pod: &Pod, node: &NodeInfo) -> Status {
        let untolerated = node_taints(node)
            .iter()
            .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
            .any(|t| !pod_tolerates(pod, t));
        if untolerated { Status::unresolvable(ERR_REASON_NOT_MATCH) } else { Status::success() }
    }
}

impl ScorePlugin for TaintToleration {
    /// The number of PreferNoSchedule taints the pod does not tolerate (fewer is better).
    fn score(&self, _: &CycleState, pod: &Pod, node: &NodeInfo) -> std::result::Result<i64, Status> {
        let prefer: Vec<_> = pod_tolerations(pod)
            .iter()
            .filter(|t| t.effect.as_deref().is_none_or(|e| e.is_empty() || e == "PreferNoSchedule"))
            .collect();
        let n = node_taints(node)
            .iter()
            .filter(|t| t.effect == "PreferNoSchedule" && !prefer.iter().any(|tol| tolerates(tol, t)))
            .count();
        Ok(i64::try_from(n).unwrap_or(i64::MAX))
    }

    fn normalizer(&self) -> Option<&dyn NormalizeScorePlugin> {
        Some(self)
    }
}

impl NormalizeScorePlugin for TaintToleration {
    fn normalize_score(&self, _: &CycleState, _: &Pod, scores: &mut [NodeScore<'_>]) -> Status {
        default_normalize_score(MAX_NODE_SCORE, true, scores);
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, node_info, pod};
    use k8s_openapi::api::core::v1::{Node, Taint, Toleration};

    fn tainted(effect: &str) -> Node {
        let mut n = node("n", "1", "1Gi");
        if let Some(s) = n.spec.as_mut() {
            s.taints = Some(vec![Taint { key: "dedicated".into(), value: Some("db".into()), effect: effect.into(), ..Default::default() }]);
        }
        n
    }

    fn tolerating(value: &str) -> Pod {
        let mut p = pod("p");
        if let Some(s) = p.spec.as_mut() {
            s.tolerations = Some(vec![Toleration {
                key: Some("dedicated".into()),
                operator: Some("Equal".into()),
                value: Some(value.into()),
                ..Default::default()
            }]);
        }
        p
    }

    #[test]
    fn filter() {
        let cases = [
            ("no taints", node("n", "1", "1Gi"), pod("p"), Status::success()),
            ("NoSchedule untolerated", tainted("NoSchedule"), pod("p"), Status::unresolvable(ERR_REASON_NOT_MATCH)),
            ("NoExecute untolerated", tainted("NoExecute"), pod("p"), Status::unresolvable(ERR_REASON_NOT_MATCH)),
            ("PreferNoSchedule does not filter", tainted("PreferNoSchedule"), pod("p"), Status::success()),
            ("tolerated", tainted("NoSchedule"), tolerating("db"), Status::success()),
            ("toleration for another value", tainted("NoSchedule"), tolerating("web"), Status::unresolvable(ERR_REASON_NOT_MATCH)),
        ];
        for (name, n, p, want) in cases {
            assert_eq!(TaintToleration.filter(&CycleState::new(), &p, &node_info(n, vec![])), want, "case {name}");
        }
    }

    #[test]
    fn score_prefers_fewer_intolerable_taints() {
        let state = CycleState::new();
        let p = pod("p");
        let clean = TaintToleration.score(&state, &p, &node_info(node("a", "1", "1Gi"), vec![]));
        let soft = TaintToleration.score(&state, &p, &node_info(tainted("PreferNoSchedule"), vec![]));
        let tolerated = TaintToleration.score(&state, &tolerating("db"), &node_info(tainted("PreferNoSchedule"), vec![]));
        assert_eq!((clean, soft, tolerated), (Ok(0), Ok(1), Ok(0)));
        let mut scores = vec![NodeScore { name: "a", score: 0 }, NodeScore { name: "b", score: 1 }];
        TaintToleration.normalize_score(&state, &p, &mut scores);
        assert_eq!((scores[0].score, scores[1].score), (100, 0));
    }
}

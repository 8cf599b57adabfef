//! PodTopologySpread: spreads pods over topology domains (nodes, zones, any node label).
//!
//! - A pod's own `DoNotSchedule` constraints filter (`filtering`): a node fails when the pod would make
//!   its domain hold more than `maxSkew` matching pods beyond the least crowded eligible domain.
//! - A pod's own `ScheduleAnyway` constraints score (`scoring`): fewer matching pods, higher score.
//! - Pods without constraints of their own get upstream's system defaults as a score: pods of the same
//!   controller spread across hosts (`kubernetes.io/hostname`, maxSkew 3) and zones
//!   (`topology.kubernetes.io/zone`, maxSkew 5). Upstream derives their selector from the
//!   Services/ReplicaSets/StatefulSets selecting the pod; "same namespace and same controller owner" stands
//!   in for it here, which is the same set for pods a workload controller creates.
//!   `PodTopologySpreadArgs` may replace them (`defaultingType: List`) with other `ScheduleAnyway`
//!   constraints, or none.
//!
//! Counts come from the cycle's snapshot, which holds the pods assumed earlier in the same batch, so pods
//! created together spread as they are placed one after the other.

mod constraint;
mod filtering;
mod scoring;

use std::sync::Arc;

use crate::framework::registry::{Handle, Result};
use crate::framework::{FilterPlugin, Plugin, PreFilterPlugin, PreScorePlugin, ScorePlugin};
use constraint::{DO_NOT_SCHEDULE, SCHEDULE_ANYWAY};
pub use filtering::{ERR_REASON_CONSTRAINTS_NOT_MATCH, ERR_REASON_NODE_LABEL_NOT_MATCH};

pub const NAME: &str = "PodTopologySpread";
pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
pub const LABEL_ZONE: &str = "topology.kubernetes.io/zone";

pub const DEFAULTING_SYSTEM: &str = "System";
pub const DEFAULTING_LIST: &str = "List";

/// One default constraint (its selector is derived for each pod).
#[derive(Debug, Clone, PartialEq, Eq)]
struct DefaultConstraint {
    topology_key: String,
    max_skew: i64,
}

/// Upstream's system defaults (`PodTopologySpreadArgs.defaultingType: System`).
fn system_default_constraints() -> Vec<DefaultConstraint> {
    vec![
        DefaultConstraint { topology_key: LABEL_HOSTNAME.into(), max_skew: 3 },
        DefaultConstraint { topology_key: LABEL_ZONE.into(), max_skew: 5 },
    ]
}

/// `PodTopologySpreadArgs` of `kubescheduler.config.k8s.io/v1`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodTopologySpreadArgs {
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub default_constraints: Vec<k8s_openapi::api::core::v1::TopologySpreadConstraint>,
    /// `System` (default) or `List`.
    #[serde(default)]
    pub defaulting_type: Option<String>,
}

impl PodTopologySpreadArgs {
    /// Field-path errors, empty when valid.
    pub fn validate(&self, path: &str) -> Vec<String> {
        let mut errs = Vec::new();
        let defaulting = self.defaulting_type.as_deref().unwrap_or(DEFAULTING_SYSTEM);
        if ![DEFAULTING_SYSTEM, DEFAULTING_LIST].contains(&defaulting) {
            errs.push(format!("{path}.defaultingType: unsupported value {defaulting:?}: supported values are \"System\", \"List\""));
        }
        if defaulting == DEFAULTING_SYSTEM && !self.default_constraints.is_empty() {
            errs.push(format!("{path}.defaultConstraints: invalid value: when .defaultingType is \"System\", .defaultConstraints must be empty"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, c) in self.default_constraints.iter().enumerate() {
            let at = format!("{path}.defaultConstraints[{i}]");
            if c.max_skew <= 0 {
                errs.push(format!("{at}.maxSkew: invalid value {}: must be greater than zero", c.max_skew));
            }
            if c.topology_key.is_empty() {
                errs.push(format!("{at}.topologyKey: required value"));
            }
            match c.when_unsatisfiable.as_str() {
                SCHEDULE_ANYWAY => {}
                DO_NOT_SCHEDULE => errs.push(format!("{at}.whenUnsatisfiable: unsupported value \"DoNotSchedule\": rudder supports only \"ScheduleAnyway\" default constraints so far")),
                other => errs.push(format!("{at}.whenUnsatisfiable: unsupported value {other:?}: supported values are \"DoNotSchedule\", \"ScheduleAnyway\"")),
            }
            if c.label_selector.is_some() {
                errs.push(format!("{at}.labelSelector: forbidden: constraint must not define a selector, as they are deduced for each pod"));
            }
            if !seen.insert((c.topology_key.as_str(), c.when_unsatisfiable.as_str())) {
                errs.push(format!("{at}: duplicate value {{{:?}, {:?}}}", c.topology_key, c.when_unsatisfiable));
            }
        }
        errs
    }
}

pub struct PodTopologySpread {
    /// The constraints for pods without their own.
    defaults: Vec<DefaultConstraint>,
}

impl Default for PodTopologySpread {
    fn default() -> Self {
        Self { defaults: system_default_constraints() }
    }
}

impl PodTopologySpread {
    pub fn with_args(args: &PodTopologySpreadArgs) -> Self {
        if args.defaulting_type.as_deref() != Some(DEFAULTING_LIST) {
            return Self::default();
        }
        let defaults = args
            .default_constraints
            .iter()
            .map(|c| DefaultConstraint { topology_key: c.topology_key.clone(), max_skew: i64::from(c.max_skew) })
            .collect();
        Self { defaults }
    }
}

pub fn new(_: &Handle) -> Result<Arc<dyn Plugin>> {
    Ok(Arc::new(PodTopologySpread::default()))
}

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

#[cfg(test)]
mod tests;

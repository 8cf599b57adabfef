//! Typed plugin arguments (`profiles[].pluginConfig[].args`): decoded once, per plugin, at start-up and
//! validated with field paths; plugins are then built from the typed value.

use std::sync::Arc;

use super::node_affinity::{self, NodeAffinity, NodeAffinityArgs};
use super::node_resources_fit::{self, NodeResourcesFit, NodeResourcesFitArgs};
use super::pod_topology_spread::{self, PodTopologySpread, PodTopologySpreadArgs};
use crate::framework::Plugin;

/// The arguments of one plugin.
#[derive(Debug, Clone, PartialEq)]
pub enum PluginArgs {
    NodeResourcesFit(NodeResourcesFitArgs),
    PodTopologySpread(PodTopologySpreadArgs),
    NodeAffinity(NodeAffinityArgs),
}

/// Decodes and validates `args` for plugin `name`; `path` is where they sit (`profiles[0].pluginConfig[1].args`).
/// Errors are field-path messages.
pub fn decode(name: &str, args: &serde_json::Value, path: &str) -> Result<PluginArgs, Vec<String>> {
    fn typed<T: serde::de::DeserializeOwned>(args: &serde_json::Value, path: &str) -> Result<T, Vec<String>> {
        let v = if args.is_null() { serde_json::Value::Object(Default::default()) } else { args.clone() };
        serde_json::from_value(v).map_err(|e| vec![format!("{path}: failed to decode: {e}")])
    }
    let (args, errs) = match name {
        node_resources_fit::NAME => {
            let a: NodeResourcesFitArgs = typed(args, path)?;
            let errs = a.validate(path);
            (PluginArgs::NodeResourcesFit(a), errs)
        }
        pod_topology_spread::NAME => {
            let a: PodTopologySpreadArgs = typed(args, path)?;
            let errs = a.validate(path);
            (PluginArgs::PodTopologySpread(a), errs)
        }
        node_affinity::NAME => {
            let a: NodeAffinityArgs = typed(args, path)?;
            let errs = a.validate(path);
            (PluginArgs::NodeAffinity(a), errs)
        }
        other => return Err(vec![format!("{path}: plugin {other:?} takes no arguments")]),
    };
    if errs.is_empty() { Ok(args) } else { Err(errs) }
}

impl PluginArgs {
    /// The plugin built with these arguments.
    pub fn build(&self) -> Arc<dyn Plugin> {
        match self {
            PluginArgs::NodeResourcesFit(a) => Arc::new(NodeResourcesFit::with_args(a.clone())),
            PluginArgs::PodTopologySpread(a) => Arc::new(PodTopologySpread::with_args(a)),
            PluginArgs::NodeAffinity(a) => Arc::new(NodeAffinity::with_args(a.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decoding() {
        let cases = [
            ("fit with most allocated", "NodeResourcesFit", json!({"scoringStrategy": {"type": "MostAllocated"}}), None),
            ("null args mean defaults", "NodeResourcesFit", serde_json::Value::Null, None),
            (
                "fit with a bad weight",
                "NodeResourcesFit",
                json!({"scoringStrategy": {"resources": [{"name": "cpu", "weight": 200}]}}),
                Some("a.scoringStrategy.resources[0].weight: invalid value 200"),
            ),
            ("unknown field", "NodeResourcesFit", json!({"scoring": {}}), Some("a: failed to decode: unknown field `scoring`")),
            (
                "spread list of constraints",
                "PodTopologySpread",
                json!({"defaultingType": "List", "defaultConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}]}),
                None,
            ),
            (
                "spread system with constraints",
                "PodTopologySpread",
                json!({"defaultConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}]}),
                Some("a.defaultConstraints: invalid value: when .defaultingType is \"System\""),
            ),
            (
                "affinity with empty required terms",
                "NodeAffinity",
                json!({"addedAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}),
                Some("a.addedAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"),
            ),
            ("plugin without args", "TaintToleration", json!({}), Some("a: plugin \"TaintToleration\" takes no arguments")),
        ];
        for (name, plugin, args, want) in cases {
            match (decode(plugin, &args, "a"), want) {
                (Ok(_), None) => {}
                (Err(errs), Some(w)) => assert!(errs.iter().any(|e| e.starts_with(w)), "case {name}: {errs:?}"),
                (got, want) => panic!("case {name}: got {got:?}, want error {want:?}"),
            }
        }
    }
}

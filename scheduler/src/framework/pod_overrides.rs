//! Per-pod plugin selection, beyond upstream: the annotation `scheduling.rudder.dev/plugins` holds
//! `{"disabled": [..], "enabled": [..], "weights": {"Name": n}}` and changes the Filter and Score plugins
//! of the pod's profile for that pod alone. It can only act on plugins the profile configures (a plugin
//! the profile disables everywhere may be enabled; one it never mentions may not), never on Bind or
//! PostFilter plugins. A bad annotation fails the pod's cycle with a message naming the problem.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Pod;
use serde::Deserialize;

use super::points::{Enabled, Point, Points};

/// The annotation a pod sets to change its profile's plugins.
pub const ANNOTATION: &str = "scheduling.rudder.dev/plugins";
/// The points the annotation switches: Filter with its PreFilter, Score with its PreScore.
const SWITCHED: [Point; 4] = [Point::PreFilter, Point::Filter, Point::PreScore, Point::Score];

/// Why a pod's annotation cannot be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The value is not the expected JSON object.
    #[error("invalid annotation {ANNOTATION}: failed to parse: {0}")]
    Parse(String),
    /// A named plugin is not part of the pod's profile.
    #[error("invalid annotation {ANNOTATION}: {field}: plugin {name:?} is not configured in scheduler profile {profile:?}")]
    NotInProfile { field: String, name: String, profile: String },
    /// A named plugin has neither a Filter nor a Score extension point.
    #[error("invalid annotation {ANNOTATION}: {field}: plugin {name:?} is neither a Filter nor a Score plugin")]
    NotSwitchable { field: String, name: String },
    /// A plugin is both enabled and disabled.
    #[error("invalid annotation {ANNOTATION}: plugin {0:?} is both enabled and disabled")]
    Conflict(String),
    /// A weight names a plugin that does not score for this pod, or is out of range.
    #[error("invalid annotation {ANNOTATION}: weights.{name}: {reason}")]
    BadWeight { name: String, reason: String },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Overrides {
    #[serde(default)]
    disabled: Vec<String>,
    #[serde(default)]
    enabled: Vec<String>,
    #[serde(default)]
    weights: BTreeMap<String, i64>,
}

/// The profile's plugins as the pod's annotation changes them, with a short summary of the change;
/// `None` when the pod has no annotation.
pub fn apply(plugins: &[Enabled], pod: &Pod) -> Result<Option<(Vec<Enabled>, String)>, Error> {
    let Some(raw) = pod.metadata.annotations.as_ref().and_then(|a| a.get(ANNOTATION)) else { return Ok(None) };
    let o: Overrides = serde_json::from_str(raw).map_err(|e| Error::Parse(e.to_string()))?;
    let profile = pod.spec.as_ref().and_then(|s| s.scheduler_name.clone()).unwrap_or_default();
    let mut out = plugins.to_vec();
    let find = |out: &[Enabled], field: String, name: &str| {
        out.iter().position(|e| e.name() == name).ok_or_else(|| Error::NotInProfile {
            field: field.clone(),
            name: name.to_string(),
            profile: profile.clone(),
        })
    };
    let disabled: BTreeSet<&str> = o.disabled.iter().map(String::as_str).collect();
    for (i, name) in o.enabled.iter().enumerate() {
        if disabled.contains(name.as_str()) {
            return Err(Error::Conflict(name.clone()));
        }
        let idx = find(&out, format!("enabled[{i}]"), name)?;
        let e = &mut out[idx];
        let implemented = Points::implemented_by(e.plugin.as_ref());
        let switchable: Vec<Point> = SWITCHED.into_iter().filter(|p| implemented.contains(*p)).collect();
        if switchable.is_empty() {
            return Err(Error::NotSwitchable { field: format!("enabled[{i}]"), name: name.clone() });
        }
        e.points = switchable.into_iter().fold(e.points, Points::with);
        if e.weight == 0 && implemented.contains(Point::Score) {
            e.weight = 1;
        }
    }
    for (i, name) in o.disabled.iter().enumerate() {
        let idx = find(&out, format!("disabled[{i}]"), name)?;
        let e = &mut out[idx];
        if !SWITCHED.iter().any(|p| p.implemented_by(e.plugin.as_ref())) {
            return Err(Error::NotSwitchable { field: format!("disabled[{i}]"), name: name.clone() });
        }
        e.points = SWITCHED.into_iter().fold(e.points, Points::without);
    }
    for (name, weight) in &o.weights {
        let bad = |reason: &str| Error::BadWeight { name: name.clone(), reason: reason.to_string() };
        let idx = find(&out, format!("weights.{name}"), name)?;
        if !out[idx].runs_at(Point::Score) {
            return Err(bad("the plugin does not score for this pod"));
        }
        if !(1..=100).contains(weight) {
            return Err(bad(&format!("weight {weight} is outside 1..=100")));
        }
        out[idx].weight = *weight;
    }
    Ok(Some((out, summary(&o))))
}

fn summary(o: &Overrides) -> String {
    let mut parts = Vec::new();
    if !o.enabled.is_empty() {
        parts.push(format!("enabled {}", o.enabled.join(", ")));
    }
    if !o.disabled.is_empty() {
        parts.push(format!("disabled {}", o.disabled.join(", ")));
    }
    if !o.weights.is_empty() {
        let w: Vec<String> = o.weights.iter().map(|(n, w)| format!("{n}={w}")).collect();
        parts.push(format!("weights {}", w.join(", ")));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Handle;
    use crate::plugins::{balanced_allocation, default_binder, node_resources_fit, taint_toleration};
    use crate::testing::pod;

    /// Fit and TaintToleration everywhere, BalancedAllocation configured but off, a binder.
    fn profile() -> Vec<Enabled> {
        let h = Handle::default();
        let build = |f: crate::framework::registry::Factory| match f(&h) {
            Ok(p) => p,
            Err(e) => panic!("plugin must build: {e}"),
        };
        let binder = std::sync::Arc::new(NoopBinder);
        vec![
            Enabled::everywhere(build(node_resources_fit::new), 1),
            Enabled::everywhere(build(taint_toleration::new), 3),
            Enabled { plugin: build(balanced_allocation::new), weight: 0, points: Points::NONE },
            Enabled::everywhere(binder, 0),
        ]
    }

    struct NoopBinder;
    impl crate::framework::Plugin for NoopBinder {
        fn name(&self) -> &'static str {
            default_binder::NAME
        }
        fn as_bind(&self) -> Option<&dyn crate::framework::BindPlugin> {
            Some(self)
        }
    }
    impl crate::framework::BindPlugin for NoopBinder {
        fn bind<'a>(&'a self, _: &'a Pod, _: &'a str) -> futures::future::BoxFuture<'a, crate::framework::Status> {
            Box::pin(async { crate::framework::Status::success() })
        }
    }

    fn annotated(value: &str) -> Pod {
        let mut p = pod("p");
        p.metadata.annotations = Some([(ANNOTATION.to_string(), value.to_string())].into());
        p
    }

    /// (name, runs Filter, runs Score, weight).
    type Row = (&'static str, bool, bool, i64);

    /// Every plugin after applying.
    fn view(v: &[Enabled]) -> Vec<Row> {
        v.iter().map(|e| (e.name(), e.runs_at(Point::Filter), e.runs_at(Point::Score), e.weight)).collect()
    }

    #[test]
    fn applies() {
        let base = profile();
        let cases: [(&str, &str, Vec<Row>); 3] = [
            (
                "disable a filter-and-score plugin",
                r#"{"disabled":["NodeResourcesFit"]}"#,
                vec![("NodeResourcesFit", false, false, 1), ("TaintToleration", true, true, 3), ("NodeResourcesBalancedAllocation", false, false, 0), ("DefaultBinder", false, false, 0)],
            ),
            (
                "enable a configured-but-off scorer gets weight 1",
                r#"{"enabled":["NodeResourcesBalancedAllocation"]}"#,
                vec![("NodeResourcesFit", true, true, 1), ("TaintToleration", true, true, 3), ("NodeResourcesBalancedAllocation", false, true, 1), ("DefaultBinder", false, false, 0)],
            ),
            (
                "reweight",
                r#"{"weights":{"NodeResourcesFit":5}}"#,
                vec![("NodeResourcesFit", true, true, 5), ("TaintToleration", true, true, 3), ("NodeResourcesBalancedAllocation", false, false, 0), ("DefaultBinder", false, false, 0)],
            ),
        ];
        for (name, value, want) in cases {
            match apply(&base, &annotated(value)) {
                Ok(Some((got, _))) => assert_eq!(view(&got), want, "case {name}"),
                other => panic!("case {name}: got {:?}", other.map(|o| o.map(|(_, s)| s))),
            }
        }
    }

    #[test]
    fn rejects() {
        let base = profile();
        let cases = [
            ("not json", "{", "failed to parse"),
            ("unknown field", r#"{"enable":["X"]}"#, "unknown field `enable`"),
            ("plugin not in profile", r#"{"enabled":["ImageLocality"]}"#, "enabled[0]: plugin \"ImageLocality\" is not configured"),
            ("binder cannot be switched", r#"{"disabled":["DefaultBinder"]}"#, "disabled[0]: plugin \"DefaultBinder\" is neither"),
            ("both ways", r#"{"enabled":["TaintToleration"],"disabled":["TaintToleration"]}"#, "both enabled and disabled"),
            ("weight of a disabled scorer", r#"{"disabled":["TaintToleration"],"weights":{"TaintToleration":2}}"#, "weights.TaintToleration: the plugin does not score"),
            ("weight out of range", r#"{"weights":{"NodeResourcesFit":0}}"#, "weight 0 is outside 1..=100"),
        ];
        for (name, value, want) in cases {
            match apply(&base, &annotated(value)) {
                Err(e) => assert!(e.to_string().contains(want), "case {name}: {e}"),
                Ok(_) => panic!("case {name}: accepted"),
            }
        }
    }

    #[test]
    fn absent_annotation_changes_nothing() {
        assert!(matches!(apply(&profile(), &pod("p")), Ok(None)));
    }
}

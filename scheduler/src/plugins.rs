//! The in-tree plugins (one module each), the registry that builds them by name, and the default
//! profile as plain data (upstream's `apis/config/v1/default_plugins.go`).

pub mod args;
pub mod balanced_allocation;
pub mod default_binder;
pub mod default_preemption;
pub mod helper;
pub mod image_locality;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_ready;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod priority_sort;
pub mod resource_scoring;
pub mod scheduling_gates;
pub mod taint_toleration;

use std::sync::Arc;

use crate::framework::registry::{self, Handle};
use crate::framework::{Plugin, PluginSpec, Point, Points, Registry};

/// Every in-tree plugin by name.
pub fn in_tree_registry() -> Registry {
    Registry::new()
        .with(scheduling_gates::NAME, scheduling_gates::new)
        .with(priority_sort::NAME, priority_sort::new)
        .with(node_unschedulable::NAME, node_unschedulable::new)
        .with(node_name::NAME, node_name::new)
        .with(node_ready::NAME, node_ready::new)
        .with(taint_toleration::NAME, taint_toleration::new)
        .with(node_affinity::NAME, node_affinity::new)
        .with(node_ports::NAME, node_ports::new)
        .with(node_resources_fit::NAME, node_resources_fit::new)
        .with(pod_topology_spread::NAME, pod_topology_spread::new)
        .with(inter_pod_affinity::NAME, inter_pod_affinity::new)
        .with(default_preemption::NAME, default_preemption::new)
        .with(balanced_allocation::NAME, balanced_allocation::new)
        .with(image_locality::NAME, image_locality::new)
        .with(default_binder::NAME, default_binder::new)
}

/// The extension points each in-tree plugin implements, known without building it (the configuration is
/// validated before there is an API client for DefaultBinder).
const PLUGIN_POINTS: &[(&str, &[Point])] = &[
    (scheduling_gates::NAME, &[Point::PreEnqueue]),
    (priority_sort::NAME, &[Point::QueueSort]),
    (node_unschedulable::NAME, &[Point::Filter]),
    (node_name::NAME, &[Point::Filter]),
    (node_ready::NAME, &[Point::Filter]),
    (taint_toleration::NAME, &[Point::Filter, Point::Score]),
    (node_affinity::NAME, &[Point::Filter, Point::Score]),
    (node_ports::NAME, &[Point::PreFilter, Point::Filter]),
    (node_resources_fit::NAME, &[Point::PreFilter, Point::Filter, Point::PreScore, Point::Score]),
    (pod_topology_spread::NAME, &[Point::PreFilter, Point::Filter, Point::PreScore, Point::Score]),
    (inter_pod_affinity::NAME, &[Point::PreFilter, Point::Filter, Point::PreScore, Point::Score]),
    (default_preemption::NAME, &[Point::PostFilter]),
    (balanced_allocation::NAME, &[Point::PreScore, Point::Score]),
    (image_locality::NAME, &[Point::PreScore, Point::Score]),
    (default_binder::NAME, &[Point::Bind]),
];

/// The points an in-tree plugin implements; `None` for an unknown name.
pub fn extension_points(name: &str) -> Option<Points> {
    PLUGIN_POINTS.iter().find(|(n, _)| *n == name).map(|(_, ps)| ps.iter().fold(Points::NONE, |s, p| s.with(*p)))
}

/// Every in-tree plugin name.
pub fn plugin_names() -> impl Iterator<Item = &'static str> {
    PLUGIN_POINTS.iter().map(|(n, _)| *n)
}

/// Builds one plugin, from its typed arguments when the configuration gives some.
pub fn build(name: &str, handle: &Handle, plugin_args: Option<&args::PluginArgs>) -> registry::Result<Arc<dyn Plugin>> {
    if let Some(a) = plugin_args {
        return Ok(a.build());
    }
    let spec = DEFAULT_PLUGINS.iter().find(|s| s.name == name).copied().or_else(|| {
        PLUGIN_POINTS.iter().find(|(n, _)| *n == name).map(|(n, _)| PluginSpec { name: n, weight: 0 })
    });
    let spec = spec.ok_or_else(|| registry::Error::UnknownPlugin(name.to_string()))?;
    let mut built = in_tree_registry().build(&[spec], handle)?;
    built.pop().map(|(p, _)| p).ok_or_else(|| registry::Error::UnknownPlugin(name.to_string()))
}

const fn spec(name: &'static str, weight: i64) -> PluginSpec {
    PluginSpec { name, weight }
}

/// The default profile in upstream's order; weights are upstream's score weights (0 = not a scorer).
pub const DEFAULT_PLUGINS: &[PluginSpec] = &[
    spec(scheduling_gates::NAME, 0),
    spec(priority_sort::NAME, 0),
    spec(node_unschedulable::NAME, 0),
    spec(node_name::NAME, 0),
    spec(node_ready::NAME, 0),
    spec(taint_toleration::NAME, 3),
    spec(node_affinity::NAME, 2),
    spec(node_ports::NAME, 0),
    spec(node_resources_fit::NAME, 1),
    spec(pod_topology_spread::NAME, 2),
    spec(inter_pod_affinity::NAME, 2),
    spec(default_preemption::NAME, 0),
    spec(balanced_allocation::NAME, 1),
    spec(image_locality::NAME, 1),
    spec(default_binder::NAME, 0),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Handle;
    use crate::framework::registry::Error;

    #[test]
    fn every_default_plugin_is_registered() {
        // DefaultBinder needs a client; everything else must build from an empty handle.
        let without_binder: Vec<PluginSpec> = DEFAULT_PLUGINS.iter().copied().filter(|s| s.name != default_binder::NAME).collect();
        let built = in_tree_registry().build(&without_binder, &Handle::default());
        assert_eq!(built.map(|v| v.len()).ok(), Some(DEFAULT_PLUGINS.len() - 1));
    }

    #[test]
    fn points_table_matches_the_plugins() {
        for name in plugin_names().filter(|n| *n != default_binder::NAME) {
            let built = build(name, &Handle::default(), None);
            let points = built.as_ref().map(|p| Points::implemented_by(p.as_ref())).ok();
            assert_eq!(points, extension_points(name), "plugin {name}");
        }
        assert_eq!(extension_points(default_binder::NAME), Some(Points::NONE.with(Point::Bind)));
        assert_eq!(extension_points("Nope"), None);
    }

    #[test]
    fn registry_rejects_bad_profiles() {
        let r = in_tree_registry();
        let h = Handle::default();
        assert!(matches!(r.build(&[spec("Nope", 0)], &h), Err(Error::UnknownPlugin(_))));
        assert!(matches!(r.build(&[spec(node_name::NAME, 0), spec(node_name::NAME, 0)], &h), Err(Error::Duplicate(_))));
        assert!(matches!(r.build(&[spec(node_affinity::NAME, 101)], &h), Err(Error::BadWeight { .. })));
    }
}

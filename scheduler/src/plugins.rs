//! The in-tree plugins (one module each), the registry that builds them by name, and the default
//! profile as plain data (upstream's `apis/config/v1/default_plugins.go`).

pub mod balanced_allocation;
pub mod default_binder;
pub mod default_preemption;
pub mod helper;
pub mod node_affinity;
pub mod node_name;
pub mod node_ready;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod taint_toleration;

use crate::framework::{PluginSpec, Registry};

/// Every in-tree plugin by name.
pub fn in_tree_registry() -> Registry {
    Registry::new()
        .with(node_unschedulable::NAME, node_unschedulable::new)
        .with(node_name::NAME, node_name::new)
        .with(node_ready::NAME, node_ready::new)
        .with(taint_toleration::NAME, taint_toleration::new)
        .with(node_affinity::NAME, node_affinity::new)
        .with(node_resources_fit::NAME, node_resources_fit::new)
        .with(pod_topology_spread::NAME, pod_topology_spread::new)
        .with(default_preemption::NAME, default_preemption::new)
        .with(balanced_allocation::NAME, balanced_allocation::new)
        .with(default_binder::NAME, default_binder::new)
}

const fn spec(name: &'static str, weight: i64) -> PluginSpec {
    PluginSpec { name, weight }
}

/// The default profile in upstream's order; weights are upstream's score weights (0 = not a scorer).
pub const DEFAULT_PLUGINS: &[PluginSpec] = &[
    spec(node_unschedulable::NAME, 0),
    spec(node_name::NAME, 0),
    spec(node_ready::NAME, 0),
    spec(taint_toleration::NAME, 3),
    spec(node_affinity::NAME, 2),
    spec(node_resources_fit::NAME, 1),
    spec(pod_topology_spread::NAME, 2),
    spec(default_preemption::NAME, 0),
    spec(balanced_allocation::NAME, 1),
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
    fn registry_rejects_bad_profiles() {
        let r = in_tree_registry();
        let h = Handle::default();
        assert!(matches!(r.build(&[spec("Nope", 0)], &h), Err(Error::UnknownPlugin(_))));
        assert!(matches!(r.build(&[spec(node_name::NAME, 0), spec(node_name::NAME, 0)], &h), Err(Error::Duplicate(_))));
        assert!(matches!(r.build(&[spec(node_affinity::NAME, 101)], &h), Err(Error::BadWeight { .. })));
    }
}

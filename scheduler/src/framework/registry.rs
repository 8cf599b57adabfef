//! Plugin factories by name, and the plain-data description of which plugins a profile enables.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Plugin;

/// Failures building plugins from a profile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The profile names a plugin that no factory provides.
    #[error("failed to build plugin {0:?}: no such plugin in the registry")]
    UnknownPlugin(String),
    /// The same plugin appears twice in one profile.
    #[error("failed to build plugin {0:?}: enabled more than once")]
    Duplicate(String),
    /// A score weight outside `1..=100` was given to a plugin.
    #[error("failed to build plugin {name:?}: weight {weight} is outside 0..=100")]
    BadWeight { name: String, weight: i64 },
    /// The factory could not build the plugin.
    #[error("failed to build plugin {name:?}: {reason}")]
    Factory { name: String, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What plugins may use from the running scheduler.
#[derive(Clone, Default)]
pub struct Handle {
    /// The API client; `None` in unit tests that never reach the API.
    pub client: Option<kube::Client>,
    /// Pods Permit plugins hold back, so a plugin may allow or reject pods other than the current one.
    pub waiting_pods: Arc<super::WaitingPods>,
}

/// Builds one plugin instance.
pub type Factory = fn(&Handle) -> Result<Arc<dyn Plugin>>;

/// One enabled plugin and, for Score plugins, its weight (0 means "not a scorer").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginSpec {
    pub name: &'static str,
    pub weight: i64,
}

/// Name → factory.
#[derive(Default, Clone)]
pub struct Registry {
    factories: BTreeMap<&'static str, Factory>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a factory; a later registration under the same name replaces the earlier one.
    #[must_use]
    pub fn with(mut self, name: &'static str, factory: Factory) -> Self {
        self.factories.insert(name, factory);
        self
    }

    /// Builds the plugins a profile enables, in order, checking names and weights once.
    pub fn build(&self, specs: &[PluginSpec], handle: &Handle) -> Result<Vec<(Arc<dyn Plugin>, i64)>> {
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::with_capacity(specs.len());
        for spec in specs {
            if !seen.insert(spec.name) {
                return Err(Error::Duplicate(spec.name.to_string()));
            }
            if !(0..=100).contains(&spec.weight) {
                return Err(Error::BadWeight { name: spec.name.to_string(), weight: spec.weight });
            }
            let factory = self.factories.get(spec.name).ok_or_else(|| Error::UnknownPlugin(spec.name.to_string()))?;
            out.push((factory(handle)?, spec.weight));
        }
        Ok(out)
    }
}

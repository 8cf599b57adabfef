//! Resolves one profile's `plugins` and `pluginConfig` against the default plugins into the list the
//! framework runs: which plugins, at which extension points, with which weights and arguments.
//!
//! Order of application, as upstream: the defaults (every default plugin at all its points), then
//! `multiPoint.disabled` / `multiPoint.enabled`, then each extension point's `disabled` / `enabled`.
//! `disabled: [{name: "*"}]` turns off every plugin at that point (all points for `multiPoint`).
//! A plugin a profile disables stays listed with no points: it is "configured" and a pod's annotation
//! may turn it back on.

use std::collections::BTreeMap;

use super::{PluginSet, Plugins, ProfileConfig};
use crate::eligibility::DEFAULT_SCHEDULER_NAME;
use crate::framework::registry::{self, Handle};
use crate::framework::{Enabled, Framework, Point, Points};
use crate::plugins::args::{self, PluginArgs};
use crate::plugins::{self as in_tree, DEFAULT_PLUGINS};

/// One plugin of a resolved profile.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedPlugin {
    pub name: &'static str,
    pub weight: i64,
    pub points: Points,
    pub args: Option<PluginArgs>,
}

/// A runnable profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub scheduler_name: String,
    pub percentage_of_nodes_to_score: Option<u32>,
    pub plugins: Vec<ResolvedPlugin>,
}

impl Profile {
    /// The profile's QueueSort plugin (resolution makes sure it has exactly one).
    pub fn queue_sort(&self) -> Option<&ResolvedPlugin> {
        self.plugins.iter().find(|p| p.points.contains(Point::QueueSort))
    }

    /// Upstream's default profile under `scheduler_name`.
    pub fn default_named(scheduler_name: &str) -> Self {
        let plugins = DEFAULT_PLUGINS
            .iter()
            .map(|s| ResolvedPlugin {
                name: s.name,
                weight: s.weight,
                points: in_tree::extension_points(s.name).unwrap_or_default(),
                args: None,
            })
            .collect();
        Self { scheduler_name: scheduler_name.to_string(), percentage_of_nodes_to_score: None, plugins }
    }

    /// Builds the plugins and the framework that runs them.
    pub fn build(&self, handle: &Handle) -> registry::Result<Framework> {
        let mut out = Vec::with_capacity(self.plugins.len());
        for p in &self.plugins {
            let plugin = in_tree::build(p.name, handle, p.args.as_ref())?;
            out.push(Enabled { plugin, weight: p.weight, points: p.points });
        }
        Ok(Framework::from_enabled(self.scheduler_name.clone(), out, self.percentage_of_nodes_to_score))
    }
}

const ALL: &str = "*";

/// Resolves profile `index`; errors are field-path messages.
pub fn resolve(index: usize, cfg: &ProfileConfig, global_percentage: Option<u32>) -> Result<Profile, Vec<String>> {
    let base = format!("profiles[{index}]");
    let name = cfg.scheduler_name.clone().unwrap_or_else(|| DEFAULT_SCHEDULER_NAME.to_string());
    let mut profile = Profile::default_named(&name);
    let mut errs = Vec::new();
    profile.percentage_of_nodes_to_score = match cfg.percentage_of_nodes_to_score {
        None => global_percentage,
        Some(p) => match u32::try_from(p).ok().filter(|p| *p <= 100) {
            Some(p) => Some(p),
            None => {
                errs.push(format!("{base}.percentageOfNodesToScore: invalid value {p}: not in valid range [0-100]"));
                None
            }
        },
    };
    let empty = Plugins::default();
    let plugins = cfg.plugins.as_ref().unwrap_or(&empty);
    let path = format!("{base}.plugins");
    apply_multi_point(&mut profile.plugins, &plugins.multi_point, &format!("{path}.multiPoint"), &mut errs);
    let points = [
        (&plugins.pre_enqueue, Point::PreEnqueue),
        (&plugins.queue_sort, Point::QueueSort),
        (&plugins.pre_filter, Point::PreFilter),
        (&plugins.filter, Point::Filter),
        (&plugins.post_filter, Point::PostFilter),
        (&plugins.pre_score, Point::PreScore),
        (&plugins.score, Point::Score),
        (&plugins.reserve, Point::Reserve),
        (&plugins.permit, Point::Permit),
        (&plugins.pre_bind, Point::PreBind),
        (&plugins.bind, Point::Bind),
        (&plugins.post_bind, Point::PostBind),
    ];
    for (set, point) in points {
        apply_point(&mut profile.plugins, set, point, &format!("{path}.{}", point.field()), &mut errs);
    }
    match profile.plugins.iter().filter(|p| p.points.contains(Point::QueueSort)).count() {
        1 => {}
        0 => errs.push(format!("{path}.queueSort: invalid value: no queue sort plugin is enabled")),
        _ => errs.push(format!("{path}.queueSort: invalid value: only one queue sort plugin can be enabled")),
    }
    if !profile.plugins.iter().any(|p| p.points.contains(Point::Bind)) {
        errs.push(format!("{path}.bind: invalid value: at least one bind plugin is needed"));
    }
    apply_plugin_config(&mut profile.plugins, cfg, &base, &mut errs);
    if errs.is_empty() { Ok(profile) } else { Err(errs) }
}

/// The static name of a known plugin, or an "unknown plugin" error at `path`.
fn known(name: &str, path: &str, errs: &mut Vec<String>) -> Option<&'static str> {
    let found = in_tree::plugin_names().find(|n| *n == name);
    if found.is_none() {
        errs.push(format!("{path}.name: unknown plugin {name:?}"));
    }
    found
}

/// The plugin's entry, added with no points when the profile did not list it yet.
fn entry<'a>(plugins: &'a mut Vec<ResolvedPlugin>, name: &'static str) -> &'a mut ResolvedPlugin {
    let idx = match plugins.iter().position(|p| p.name == name) {
        Some(i) => i,
        None => {
            plugins.push(ResolvedPlugin { name, weight: 0, points: Points::NONE, args: None });
            plugins.len() - 1
        }
    };
    &mut plugins[idx]
}

/// Checks a weight; `Some(w)` when one was given and is valid.
fn weight(w: Option<i64>, path: &str, errs: &mut Vec<String>) -> Option<i64> {
    match w {
        None | Some(0) => None,
        Some(w) if (1..=100).contains(&w) => Some(w),
        Some(w) => {
            errs.push(format!("{path}.weight: invalid value {w}: must be in the range [0, 100]"));
            None
        }
    }
}

fn check_duplicates(set: &PluginSet, path: &str, errs: &mut Vec<String>) {
    let mut seen = BTreeMap::new();
    for (i, p) in set.enabled.iter().enumerate() {
        if seen.insert(p.name.as_str(), i).is_some() {
            errs.push(format!("{path}.enabled[{i}].name: duplicate value {:?}", p.name));
        }
    }
}

fn apply_multi_point(plugins: &mut Vec<ResolvedPlugin>, set: &PluginSet, path: &str, errs: &mut Vec<String>) {
    check_duplicates(set, path, errs);
    for (i, p) in set.disabled.iter().enumerate() {
        if p.name == ALL {
            plugins.iter_mut().for_each(|e| e.points = Points::NONE);
        } else if let Some(name) = known(&p.name, &format!("{path}.disabled[{i}]"), errs) {
            entry(plugins, name).points = Points::NONE;
        }
    }
    for (i, p) in set.enabled.iter().enumerate() {
        let at = format!("{path}.enabled[{i}]");
        let Some(name) = known(&p.name, &at, errs) else { continue };
        let w = weight(p.weight, &at, errs);
        let implemented = in_tree::extension_points(name).unwrap_or_default();
        let e = entry(plugins, name);
        e.points = implemented;
        if implemented.contains(Point::Score) {
            e.weight = w.unwrap_or(if e.weight == 0 { 1 } else { e.weight });
        }
    }
}

fn apply_point(plugins: &mut Vec<ResolvedPlugin>, set: &PluginSet, point: Point, path: &str, errs: &mut Vec<String>) {
    check_duplicates(set, path, errs);
    for (i, p) in set.disabled.iter().enumerate() {
        if p.name == ALL {
            plugins.iter_mut().for_each(|e| e.points = e.points.without(point));
        } else if let Some(name) = known(&p.name, &format!("{path}.disabled[{i}]"), errs) {
            let e = entry(plugins, name);
            e.points = e.points.without(point);
        }
    }
    for (i, p) in set.enabled.iter().enumerate() {
        let at = format!("{path}.enabled[{i}]");
        let Some(name) = known(&p.name, &at, errs) else { continue };
        if !in_tree::extension_points(name).unwrap_or_default().contains(point) {
            errs.push(format!("{at}.name: plugin {name:?} does not implement the {} extension point", point.field()));
            continue;
        }
        let w = weight(p.weight, &at, errs);
        let e = entry(plugins, name);
        e.points = e.points.with(point);
        if point == Point::Score {
            e.weight = w.unwrap_or(if e.weight == 0 { 1 } else { e.weight });
        }
    }
}

fn apply_plugin_config(plugins: &mut Vec<ResolvedPlugin>, cfg: &ProfileConfig, base: &str, errs: &mut Vec<String>) {
    let mut seen = BTreeMap::new();
    for (i, pc) in cfg.plugin_config.iter().enumerate() {
        let at = format!("{base}.pluginConfig[{i}]");
        let Some(name) = known(&pc.name, &at, errs) else { continue };
        if seen.insert(name, i).is_some() {
            errs.push(format!("{at}.name: duplicate value {name:?}"));
            continue;
        }
        match args::decode(name, &pc.args, &format!("{at}.args")) {
            Ok(a) => entry(plugins, name).args = Some(a),
            Err(e) => errs.extend(e),
        }
    }
}

#[cfg(test)]
#[path = "profiles_tests.rs"]
mod tests;

//! Which extension points of a plugin a profile (or a pod's annotation) turns on. A plugin implements a
//! set of points; a profile may enable only some of them (upstream: `plugins.filter.disabled` keeps the
//! plugin's Score but drops its Filter).

use std::sync::Arc;

use super::Plugin;

/// The extension points rudder runs, as named in `KubeSchedulerConfiguration.profiles[].plugins`, in
/// the order a pod meets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Point {
    PreEnqueue,
    QueueSort,
    PreFilter,
    Filter,
    PostFilter,
    PreScore,
    Score,
    Reserve,
    Permit,
    PreBind,
    Bind,
    PostBind,
}

impl Point {
    pub const ALL: [Point; 12] = [
        Point::PreEnqueue,
        Point::QueueSort,
        Point::PreFilter,
        Point::Filter,
        Point::PostFilter,
        Point::PreScore,
        Point::Score,
        Point::Reserve,
        Point::Permit,
        Point::PreBind,
        Point::Bind,
        Point::PostBind,
    ];

    /// The field name in the configuration (`plugins.<field>`).
    pub fn field(self) -> &'static str {
        match self {
            Point::PreEnqueue => "preEnqueue",
            Point::QueueSort => "queueSort",
            Point::PreFilter => "preFilter",
            Point::Filter => "filter",
            Point::PostFilter => "postFilter",
            Point::PreScore => "preScore",
            Point::Score => "score",
            Point::Reserve => "reserve",
            Point::Permit => "permit",
            Point::PreBind => "preBind",
            Point::Bind => "bind",
            Point::PostBind => "postBind",
        }
    }

    /// Whether `plugin` implements this point.
    pub fn implemented_by(self, plugin: &dyn Plugin) -> bool {
        match self {
            Point::PreEnqueue => plugin.as_pre_enqueue().is_some(),
            Point::QueueSort => plugin.as_queue_sort().is_some(),
            Point::PreFilter => plugin.as_pre_filter().is_some(),
            Point::Filter => plugin.as_filter().is_some(),
            Point::PostFilter => plugin.as_post_filter().is_some(),
            Point::PreScore => plugin.as_pre_score().is_some(),
            Point::Score => plugin.as_score().is_some(),
            Point::Reserve => plugin.as_reserve().is_some(),
            Point::Permit => plugin.as_permit().is_some(),
            Point::PreBind => plugin.as_pre_bind().is_some(),
            Point::Bind => plugin.as_bind().is_some(),
            Point::PostBind => plugin.as_post_bind().is_some(),
        }
    }
}

/// A set of extension points.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Points(u16);

impl Points {
    pub const NONE: Points = Points(0);

    /// Every point `plugin` implements.
    pub fn implemented_by(plugin: &dyn Plugin) -> Self {
        Point::ALL.into_iter().filter(|p| p.implemented_by(plugin)).fold(Self::NONE, |s, p| s.with(p))
    }

    #[must_use]
    pub fn with(self, p: Point) -> Self {
        Points(self.0 | 1 << p as u16)
    }

    #[must_use]
    pub fn without(self, p: Point) -> Self {
        Points(self.0 & !(1 << p as u16))
    }

    pub fn contains(self, p: Point) -> bool {
        self.0 & (1 << p as u16) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// One plugin of a profile: the instance, its score weight and the points it runs at. A plugin the profile
/// mentions but disables everywhere stays listed with no points, so a pod's annotation may turn it on.
#[derive(Clone)]
pub struct Enabled {
    pub plugin: Arc<dyn Plugin>,
    pub weight: i64,
    pub points: Points,
}

impl Enabled {
    /// The plugin at every point it implements.
    pub fn everywhere(plugin: Arc<dyn Plugin>, weight: i64) -> Self {
        let points = Points::implemented_by(plugin.as_ref());
        Self { plugin, weight, points }
    }

    pub fn runs_at(&self, p: Point) -> bool {
        self.points.contains(p)
    }

    pub fn name(&self) -> &'static str {
        self.plugin.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        let s = Points::NONE.with(Point::Filter).with(Point::Score);
        assert!(s.contains(Point::Filter) && s.contains(Point::Score) && !s.contains(Point::Bind));
        let s = s.without(Point::Filter);
        assert!(!s.contains(Point::Filter) && s.contains(Point::Score));
        assert!(s.without(Point::Score).is_empty());
    }
}

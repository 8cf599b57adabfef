//! The arithmetic of a disruption budget: how many pods must stay healthy, how many are, and how many
//! may be disrupted now — with upstream's rounding and its safety rules.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// A `minAvailable`/`maxUnavailable` value that is neither an integer nor a percentage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value for IntOrString: invalid type: string is not a percentage: {0:?}")]
pub struct NotAPercentage(pub String);

/// `value` as a count of `total`: an integer as is, a percentage of `total` rounded up (upstream
/// rounds up for both fields, so a budget is never weaker than written).
pub fn scaled(value: &IntOrString, total: i32) -> Result<i32, NotAPercentage> {
    match value {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let percent: i64 = s.strip_suffix('%').and_then(|p| p.parse().ok()).ok_or_else(|| NotAPercentage(s.clone()))?;
            let product = percent * i64::from(total);
            let rounded = if product >= 0 { (product + 99) / 100 } else { product / 100 };
            Ok(i32::try_from(rounded).unwrap_or(if rounded < 0 { i32::MIN } else { i32::MAX }))
        }
    }
}

/// What a budget's spec asks of the pods, before the controllers' scale is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `minAvailable` as an integer: the matching pods themselves are the expected count.
    MinCount(i32),
    /// `minAvailable` as a percentage of the controllers' scale.
    MinPercent(IntOrString),
    /// `maxUnavailable` (integer or percentage) against the controllers' scale.
    MaxUnavailable(IntOrString),
    /// Neither field set: nothing is required and nothing may be disrupted until pods are expected.
    Nothing,
}

impl Requirement {
    /// `maxUnavailable` wins when both are set, as upstream reads it first.
    pub fn of(min_available: Option<&IntOrString>, max_unavailable: Option<&IntOrString>) -> Self {
        match (max_unavailable, min_available) {
            (Some(max), _) => Requirement::MaxUnavailable(max.clone()),
            (None, Some(IntOrString::Int(n))) => Requirement::MinCount(*n),
            (None, Some(min)) => Requirement::MinPercent(min.clone()),
            (None, None) => Requirement::Nothing,
        }
    }

    /// True if the expected count comes from the pods' controllers rather than the pods.
    pub fn needs_scale(&self) -> bool {
        matches!(self, Requirement::MinPercent(_) | Requirement::MaxUnavailable(_))
    }

    /// `(expectedPods, desiredHealthy)` given the number of matching pods and, when
    /// [`Self::needs_scale`], the summed scale of their controllers.
    pub fn expected_and_desired(&self, pod_count: i32, scale: i32) -> Result<(i32, i32), NotAPercentage> {
        Ok(match self {
            Requirement::MinCount(n) => (pod_count, *n),
            Requirement::MinPercent(value) => (scale, scaled(value, scale)?),
            Requirement::MaxUnavailable(value) => (scale, (scale - scaled(value, scale)?).max(0)),
            Requirement::Nothing => (0, 0),
        })
    }
}

/// Disruptions allowed now: the healthy surplus, but none while no pods are expected (a budget whose
/// pods have not appeared yet must not let the first ones be evicted before it is synced).
pub fn disruptions_allowed(current_healthy: i32, desired_healthy: i32, expected: i32) -> i32 {
    let surplus = current_healthy.saturating_sub(desired_healthy);
    if expected <= 0 || surplus <= 0 { 0 } else { surplus }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> IntOrString {
        IntOrString::String(v.into())
    }

    #[test]
    fn scaling() {
        let cases = [
            ("integer kept", IntOrString::Int(2), 10, Ok(2)),
            ("exact percent", s("50%"), 10, Ok(5)),
            ("percent rounds up", s("50%"), 3, Ok(2)),
            ("small percent rounds up to one", s("1%"), 3, Ok(1)),
            ("zero percent", s("0%"), 3, Ok(0)),
            ("hundred percent", s("100%"), 7, Ok(7)),
            ("percent of nothing", s("90%"), 0, Ok(0)),
            ("plain number string is not a percentage", s("2"), 3, Err(NotAPercentage("2".into()))),
            ("garbage", s("half%"), 3, Err(NotAPercentage("half%".into()))),
        ];
        for (name, value, total, want) in cases {
            assert_eq!(scaled(&value, total), want, "{name}");
        }
    }

    #[test]
    fn requirements() {
        let cases = [
            ("min count uses the pods", Requirement::of(Some(&IntOrString::Int(2)), None), 3, 5, (3, 2)),
            ("min percent uses the scale", Requirement::of(Some(&s("50%")), None), 3, 5, (5, 3)),
            ("max unavailable integer", Requirement::of(None, Some(&IntOrString::Int(1))), 3, 3, (3, 2)),
            ("max unavailable percent rounds up", Requirement::of(None, Some(&s("10%"))), 10, 10, (10, 9)),
            ("max unavailable above scale floors at zero", Requirement::of(None, Some(&IntOrString::Int(5))), 3, 3, (3, 0)),
            ("max wins over min", Requirement::of(Some(&IntOrString::Int(3)), Some(&IntOrString::Int(1))), 3, 3, (3, 2)),
            ("nothing set", Requirement::of(None, None), 3, 3, (0, 0)),
        ];
        for (name, requirement, pods, scale, want) in cases {
            assert_eq!(requirement.expected_and_desired(pods, scale), Ok(want), "{name}");
        }
        assert!(!Requirement::MinCount(1).needs_scale());
        assert!(Requirement::MinPercent(s("5%")).needs_scale());
        assert!(Requirement::MaxUnavailable(IntOrString::Int(0)).needs_scale());
        assert!(Requirement::MaxUnavailable(s("x")).expected_and_desired(3, 3).is_err());
    }

    #[test]
    fn allowed() {
        let cases = [
            ("one spare", 3, 2, 3, 1),
            ("exactly enough", 2, 2, 3, 0),
            ("too few", 1, 2, 3, 0),
            ("nothing expected", 3, 0, 0, 0),
            ("desired zero", 3, 0, 3, 3),
        ];
        for (name, healthy, desired, expected, want) in cases {
            assert_eq!(disruptions_allowed(healthy, desired, expected), want, "{name}");
        }
    }
}

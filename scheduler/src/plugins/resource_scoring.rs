//! NodeResourcesFit's scoring strategies (`NodeResourcesFitArgs.scoringStrategy`): LeastAllocated prefers
//! empty nodes, MostAllocated packs them, RequestedToCapacityRatio follows a piecewise-linear shape of
//! utilization. Each resource is scored on its own and the results averaged by the resources' weights.

use serde::Deserialize;

use crate::framework::MAX_NODE_SCORE;

pub const LEAST_ALLOCATED: &str = "LeastAllocated";
pub const MOST_ALLOCATED: &str = "MostAllocated";
pub const REQUESTED_TO_CAPACITY_RATIO: &str = "RequestedToCapacityRatio";
/// Shape scores are given in `0..=MAX_CUSTOM_PRIORITY_SCORE` and scaled to node scores.
pub const MAX_CUSTOM_PRIORITY_SCORE: i64 = 10;

/// A resource and its weight in the average.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    pub name: String,
    #[serde(default)]
    pub weight: i64,
}

/// One point of the RequestedToCapacityRatio shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UtilizationShapePoint {
    pub utilization: i64,
    pub score: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestedToCapacityRatioParam {
    #[serde(default)]
    pub shape: Vec<UtilizationShapePoint>,
}

/// `NodeResourcesFitArgs.scoringStrategy`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScoringStrategy {
    #[serde(rename = "type", default = "default_type")]
    pub type_: String,
    #[serde(default = "default_resources")]
    pub resources: Vec<ResourceSpec>,
    #[serde(default)]
    pub requested_to_capacity_ratio: Option<RequestedToCapacityRatioParam>,
}

fn default_type() -> String {
    LEAST_ALLOCATED.into()
}

/// cpu and memory, weight 1 each (upstream's default).
pub fn default_resources() -> Vec<ResourceSpec> {
    vec![ResourceSpec { name: "cpu".into(), weight: 1 }, ResourceSpec { name: "memory".into(), weight: 1 }]
}

impl Default for ScoringStrategy {
    fn default() -> Self {
        Self { type_: default_type(), resources: default_resources(), requested_to_capacity_ratio: None }
    }
}

impl ScoringStrategy {
    /// Field-path errors, empty when valid. `path` is where the strategy sits in the configuration.
    pub fn validate(&self, path: &str) -> Vec<String> {
        let mut errs = Vec::new();
        if ![LEAST_ALLOCATED, MOST_ALLOCATED, REQUESTED_TO_CAPACITY_RATIO].contains(&self.type_.as_str()) {
            errs.push(format!(
                "{path}.type: unsupported value {:?}: supported values are {LEAST_ALLOCATED:?}, {MOST_ALLOCATED:?}, {REQUESTED_TO_CAPACITY_RATIO:?}",
                self.type_
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, r) in self.resources.iter().enumerate() {
            if r.name.is_empty() {
                errs.push(format!("{path}.resources[{i}].name: required value"));
            } else if !seen.insert(r.name.as_str()) {
                errs.push(format!("{path}.resources[{i}].name: duplicate value {:?}", r.name));
            }
            if !(1..=100).contains(&r.weight) {
                errs.push(format!("{path}.resources[{i}].weight: invalid value {}: must be in the range [1, 100]", r.weight));
            }
        }
        let shape = self.requested_to_capacity_ratio.as_ref().map(|r| r.shape.as_slice()).unwrap_or_default();
        if self.type_ == REQUESTED_TO_CAPACITY_RATIO && shape.is_empty() {
            errs.push(format!("{path}.requestedToCapacityRatio.shape: required value"));
        }
        for (i, p) in shape.iter().enumerate() {
            let at = format!("{path}.requestedToCapacityRatio.shape[{i}]");
            if !(0..=100).contains(&p.utilization) {
                errs.push(format!("{at}.utilization: invalid value {}: must be in the range [0, 100]", p.utilization));
            } else if i > 0 && p.utilization <= shape[i - 1].utilization {
                errs.push(format!("{at}.utilization: invalid value {}: values must be sorted in increasing order", p.utilization));
            }
            if !(0..=MAX_CUSTOM_PRIORITY_SCORE).contains(&p.score) {
                errs.push(format!("{at}.score: invalid value {}: must be in the range [0, {MAX_CUSTOM_PRIORITY_SCORE}]", p.score));
            }
        }
        errs
    }

    /// The node's score from `(requested, allocatable)` per configured resource, in the order of
    /// `resources`; resources the node lacks are left out of the average.
    pub fn score(&self, amounts: impl IntoIterator<Item = (i64, i64)>) -> i64 {
        let (mut total, mut weights) = (0, 0);
        for (r, (requested, capacity)) in self.resources.iter().zip(amounts) {
            if capacity <= 0 {
                continue;
            }
            let s = match self.type_.as_str() {
                MOST_ALLOCATED => most_requested(requested, capacity),
                REQUESTED_TO_CAPACITY_RATIO => self.shaped(requested, capacity),
                _ => least_requested(requested, capacity),
            };
            total += s * r.weight;
            weights += r.weight;
        }
        if weights == 0 { 0 } else { total / weights }
    }

    /// The shape's value at this utilization, linear between points, flat beyond the ends.
    fn shaped(&self, requested: i64, capacity: i64) -> i64 {
        let shape = self.requested_to_capacity_ratio.as_ref().map(|r| r.shape.as_slice()).unwrap_or_default();
        let scale = MAX_NODE_SCORE / MAX_CUSTOM_PRIORITY_SCORE;
        let utilization = requested.min(capacity) * 100 / capacity;
        let Some(first) = shape.first() else { return 0 };
        if utilization <= first.utilization {
            return first.score * scale;
        }
        for w in shape.windows(2) {
            let (a, b) = (w[0], w[1]);
            if utilization <= b.utilization {
                let (sa, sb) = (a.score * scale, b.score * scale);
                return sa + (sb - sa) * (utilization - a.utilization) / (b.utilization - a.utilization);
            }
        }
        shape.last().map_or(0, |p| p.score * scale)
    }
}

/// `(capacity - requested) * MAX / capacity`, 0 when over capacity.
pub fn least_requested(requested: i64, capacity: i64) -> i64 {
    if capacity <= 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

/// `requested * MAX / capacity`, requests above capacity counted as capacity.
pub fn most_requested(requested: i64, capacity: i64) -> i64 {
    if capacity <= 0 {
        return 0;
    }
    requested.min(capacity) * MAX_NODE_SCORE / capacity
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strategy(type_: &str, shape: &[(i64, i64)]) -> ScoringStrategy {
        ScoringStrategy {
            type_: type_.into(),
            resources: default_resources(),
            requested_to_capacity_ratio: Some(RequestedToCapacityRatioParam {
                shape: shape.iter().map(|&(utilization, score)| UtilizationShapePoint { utilization, score }).collect(),
            }),
        }
    }

    #[test]
    fn scores() {
        let cases = [
            ("least: quarter used", strategy(LEAST_ALLOCATED, &[]), [(1, 4), (1, 4)], 75),
            ("most: quarter used", strategy(MOST_ALLOCATED, &[]), [(1, 4), (1, 4)], 25),
            ("most: over capacity is full", strategy(MOST_ALLOCATED, &[]), [(8, 4), (8, 4)], 100),
            ("rtcr: packing shape at 50%", strategy(REQUESTED_TO_CAPACITY_RATIO, &[(0, 0), (100, 10)]), [(2, 4), (2, 4)], 50),
            ("rtcr: spreading shape at 25%", strategy(REQUESTED_TO_CAPACITY_RATIO, &[(0, 10), (100, 0)]), [(1, 4), (1, 4)], 75),
            ("missing resource left out", strategy(LEAST_ALLOCATED, &[]), [(0, 4), (5, 0)], 100),
        ];
        for (name, s, amounts, want) in cases {
            assert_eq!(s.score(amounts.iter().copied()), want, "case {name}");
        }
    }

    #[test]
    fn validation() {
        let mut dup = ScoringStrategy::default();
        dup.resources.push(ResourceSpec { name: "cpu".into(), weight: 0 });
        let cases = [
            ("default is valid", ScoringStrategy::default(), vec![]),
            ("unknown type", strategy("Packed", &[]), vec!["s.type: unsupported value \"Packed\""]),
            ("rtcr needs a shape", strategy(REQUESTED_TO_CAPACITY_RATIO, &[]), vec!["s.requestedToCapacityRatio.shape: required value"]),
            (
                "shape out of order and out of range",
                strategy(REQUESTED_TO_CAPACITY_RATIO, &[(50, 1), (40, 11)]),
                vec!["s.requestedToCapacityRatio.shape[1].utilization: invalid value 40", "s.requestedToCapacityRatio.shape[1].score: invalid value 11"],
            ),
            ("duplicate resource, zero weight", dup, vec!["s.resources[2].name: duplicate value \"cpu\"", "s.resources[2].weight: invalid value 0"]),
        ];
        for (name, s, want) in cases {
            let got = s.validate("s");
            assert_eq!(got.len(), want.len(), "case {name}: {got:?}");
            for (g, w) in got.iter().zip(&want) {
                assert!(g.starts_with(w), "case {name}: {g:?} should start with {w:?}");
            }
        }
    }
}

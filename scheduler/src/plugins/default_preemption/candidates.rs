//! Choosing among the nodes where preemption would work (upstream's `pickOneNodeForPreemption`). Each
//! criterion keeps only the best candidates by it; the first one left wins:
//! 1. fewest PodDisruptionBudget violations,
//! 2. lowest priority of the most important victim,
//! 3. smallest sum of victim priorities (each shifted to be positive, so more victims weigh more),
//! 4. fewest victims,
//! 5. latest start among the most important victims (disturb the youngest work),
//! 6. the first in node order.

use k8s_openapi::jiff::Timestamp;

use super::victims::start_time;
use crate::framework::PodInfo;

/// A node and the pods that must go for the preemptor to fit there, most important first.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub node: String,
    pub victims: Vec<PodInfo>,
    pub pdb_violations: usize,
}

/// Keeps the indices whose key is the smallest.
fn keep_min<K: Ord>(indices: Vec<usize>, key: impl Fn(usize) -> K) -> Vec<usize> {
    let Some(best) = indices.iter().map(|i| key(*i)).min() else { return indices };
    indices.into_iter().filter(|i| key(*i) == best).collect()
}

/// The index of the candidate to preempt on.
pub fn pick_one(candidates: &[Candidate], now: Timestamp) -> Option<usize> {
    // A node that needs no victims (room made by other means, e.g. a nomination given up) is best.
    if let Some(i) = candidates.iter().position(|c| c.victims.is_empty()) {
        return Some(i);
    }
    let mut left: Vec<usize> = (0..candidates.len()).collect();
    let victims = |i: usize| candidates.get(i).map_or(&[][..], |c| c.victims.as_slice());
    left = keep_min(left, |i| candidates.get(i).map_or(usize::MAX, |c| c.pdb_violations));
    let highest = |i: usize| victims(i).first().map_or(i32::MIN, PodInfo::priority);
    left = keep_min(left, highest);
    left = keep_min(left, |i| victims(i).iter().map(|v| i64::from(v.priority()) + i64::from(i32::MAX) + 1).sum::<i64>());
    left = keep_min(left, |i| victims(i).len());
    // The earliest start among the victims of the top priority; the latest such time wins.
    left = keep_min(left, |i| {
        let top = highest(i);
        let earliest = victims(i).iter().filter(|v| v.priority() == top).map(|v| start_time(&v.pod, now)).min();
        std::cmp::Reverse(earliest.unwrap_or(now))
    });
    left.first().copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::plugins::default_preemption::victims::tests::prio;

    fn cand(node: &str, victims: &[(i32, i64)]) -> Candidate {
        let victims = victims
            .iter()
            .enumerate()
            .map(|(i, (p, started))| PodInfo::new(Arc::new(prio(&format!("{node}-{i}"), "1", *p, *started))))
            .collect();
        Candidate { node: node.into(), victims, pdb_violations: 0 }
    }

    fn violating(mut c: Candidate, n: usize) -> Candidate {
        c.pdb_violations = n;
        c
    }

    #[test]
    fn ordering() {
        let now = Timestamp::from_second(10_000).unwrap_or(Timestamp::UNIX_EPOCH);
        let cases = [
            ("no victims wins outright", vec![cand("a", &[(1, 0)]), cand("b", &[])], Some("b")),
            ("fewest budget violations first", vec![violating(cand("a", &[(1, 0)]), 1), violating(cand("b", &[(50, 0), (50, 0)]), 0)], Some("b")),
            ("lowest top victim priority", vec![cand("a", &[(10, 0)]), cand("b", &[(5, 0), (5, 0), (5, 0)])], Some("b")),
            ("then smallest priority sum", vec![cand("a", &[(10, 0), (9, 0)]), cand("b", &[(10, 0), (1, 0)])], Some("b")),
            ("more victims weigh more, whatever their priority", vec![cand("a", &[(10, 0), (0, 0)]), cand("b", &[(10, 0)]), cand("c", &[(10, 0), (-1, 0)])], Some("b")),
            ("then latest start of top victims", vec![cand("a", &[(10, 100)]), cand("b", &[(10, 300)]), cand("c", &[(10, 200)])], Some("b")),
            ("all equal: the first", vec![cand("a", &[(10, 100)]), cand("b", &[(10, 100)])], Some("a")),
            ("none", vec![], None),
        ];
        for (name, candidates, want) in cases {
            let got = pick_one(&candidates, now).and_then(|i| candidates.get(i)).map(|c| c.node.as_str());
            assert_eq!(got, want, "case {name}");
        }
    }
}

//! Proportional scaling: when a deployment is resized in the middle of a rollout, every replica set
//! with pods grows or shrinks in proportion to its share, so the rollout keeps its shape.

use std::cmp::Ordering;

use k8s_openapi::jiff::Timestamp;

/// What proportional scaling knows about one replica set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub replicas: i32,
    /// The deployment size (replicas + surge) this replica set last saw (`max-replicas` annotation).
    pub max_replicas: Option<i32>,
    pub created: Option<Timestamp>,
}

/// New sizes for `shares` so their total becomes `desired + surge` (or 0 when `desired` is 0).
/// `fallback_max` stands in for a missing `max-replicas` annotation.
pub fn scale(shares: &[Share], desired: i32, surge: i32, fallback_max: i32) -> Vec<i32> {
    let allowed = if desired > 0 { desired + surge } else { 0 };
    let current: i32 = shares.iter().map(|s| s.replicas).sum();
    let to_add = allowed - current;
    let mut sizes: Vec<i32> = shares.iter().map(|s| s.replicas).collect();
    if to_add == 0 {
        return sizes;
    }

    // Growing favours the biggest (then newest) set; shrinking the biggest (then oldest).
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| {
        let (sa, sb) = (&shares[a], &shares[b]);
        sb.replicas.cmp(&sa.replicas).then_with(|| {
            if to_add > 0 { sb.created.cmp(&sa.created) } else { sa.created.cmp(&sb.created) }
        })
    });

    let mut added = 0;
    for &i in &order {
        let share = &shares[i];
        if share.replicas == 0 || added == to_add {
            continue;
        }
        let fraction = if desired == 0 {
            -share.replicas
        } else {
            let annotated = share.max_replicas.unwrap_or(fallback_max).max(1);
            let target = (f64::from(share.replicas) * f64::from(desired + surge) / f64::from(annotated)).round();
            // The target is bounded by the deployment size, so it fits an i32.
            target as i32 - share.replicas
        };
        let remaining = to_add - added;
        let step = match to_add.cmp(&0) {
            Ordering::Greater => fraction.min(remaining),
            _ => fraction.max(remaining),
        };
        sizes[i] += step;
        added += step;
    }

    // Rounding leaves a remainder; the first (largest) set absorbs it.
    if let Some(&first) = order.first() {
        sizes[first] = (sizes[first] + to_add - added).max(0);
    }
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(replicas: i32, max: i32, created: i64) -> Share {
        Share { replicas, max_replicas: Some(max), created: Timestamp::from_second(created).ok() }
    }

    #[test]
    fn proportional_cases() {
        let cases = [
            ("grow 10→20 mid-rollout", vec![share(5, 13, 1), share(8, 13, 2)], 20, 3, vec![9, 14]),
            ("shrink to zero", vec![share(2, 4, 1), share(2, 4, 2)], 0, 1, vec![0, 0]),
            ("no change", vec![share(3, 4, 1), share(1, 4, 2)], 3, 1, vec![3, 1]),
        ];
        for (name, shares, desired, surge, want) in cases {
            let got = scale(&shares, desired, surge, desired + surge);
            assert_eq!(got, want, "{name}");
            let allowed = if desired > 0 { desired + surge } else { 0 };
            assert_eq!(got.iter().sum::<i32>(), allowed, "{name}: total");
        }
    }
}

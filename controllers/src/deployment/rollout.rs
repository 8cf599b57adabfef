//! Rolling-update arithmetic: how far the new replica set may grow and how far the old ones may
//! shrink while staying within `maxSurge` and `maxUnavailable`.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Upstream's default for both `maxSurge` and `maxUnavailable`.
pub const DEFAULT_FENCEPOST: &str = "25%";

/// `maxSurge` and `maxUnavailable` resolved against a replica count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fenceposts {
    pub surge: i32,
    pub unavailable: i32,
}

/// Resolves an absolute number or a percentage of `total`, rounding up or down.
pub fn scaled_value(value: &IntOrString, total: i32, round_up: bool) -> Option<i32> {
    match value {
        IntOrString::Int(n) => Some(*n),
        IntOrString::String(s) => {
            let percent: i64 = s.strip_suffix('%')?.trim().parse().ok()?;
            let product = percent * i64::from(total);
            let value = if round_up { (product + 99).div_euclid(100) } else { product.div_euclid(100) };
            i32::try_from(value).ok()
        }
    }
}

/// Resolves both fenceposts; both zero would deadlock a rollout, so unavailable becomes 1 then,
/// and unavailable never exceeds the replica count.
pub fn fenceposts(max_surge: Option<&IntOrString>, max_unavailable: Option<&IntOrString>, replicas: i32) -> Option<Fenceposts> {
    let default = IntOrString::String(DEFAULT_FENCEPOST.to_string());
    let surge = scaled_value(max_surge.unwrap_or(&default), replicas, true)?.max(0);
    let mut unavailable = scaled_value(max_unavailable.unwrap_or(&default), replicas, false)?.max(0);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    Some(Fenceposts { surge, unavailable: unavailable.min(replicas.max(0)) })
}

/// How many replicas the new replica set should have now: grow it as far as the surge allows.
pub fn new_rs_replicas(desired: i32, surge: i32, all_replicas: i32, new_replicas: i32) -> i32 {
    let max_total = desired + surge;
    if all_replicas >= max_total {
        return new_replicas;
    }
    let scale_up = (max_total - all_replicas).min(desired - new_replicas);
    new_replicas + scale_up.max(0)
}

/// Spec replicas and available replicas of one replica set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub spec: i32,
    pub available: i32,
}

/// New sizes for the old replica sets (given oldest first): first drop their unhealthy pods, then
/// shrink them oldest first while at least `desired - unavailable` pods stay available.
pub fn scale_down_old(desired: i32, unavailable: i32, new: Sizes, old: &[Sizes]) -> Vec<i32> {
    let mut sizes: Vec<i32> = old.iter().map(|s| s.spec).collect();
    let old_total: i32 = sizes.iter().sum();
    if old_total == 0 {
        return sizes;
    }
    let all_total = old_total + new.spec;
    let min_available = desired - unavailable;
    let new_unavailable = new.spec - new.available;
    let max_scaled_down = all_total - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return sizes;
    }

    // Unhealthy pods of old replica sets cost no availability; remove them first.
    let mut cleaned = 0;
    for (size, s) in sizes.iter_mut().zip(old) {
        if cleaned >= max_scaled_down {
            break;
        }
        let unhealthy = s.spec - s.available;
        if s.spec == 0 || unhealthy <= 0 {
            continue;
        }
        let down = unhealthy.min(max_scaled_down - cleaned);
        *size -= down;
        cleaned += down;
    }

    // Then trade available old pods for the slack above the minimum.
    let available: i32 = new.available + old.iter().map(|s| s.available).sum::<i32>();
    if available <= min_available {
        return sizes;
    }
    let total_down = available - min_available;
    let mut done = 0;
    for size in sizes.iter_mut() {
        if done >= total_down {
            break;
        }
        if *size == 0 {
            continue;
        }
        let down = (*size).min(total_down - done);
        *size -= down;
        done += down;
    }
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pct(s: &str) -> IntOrString {
        IntOrString::String(s.to_string())
    }

    #[test]
    fn fencepost_resolution() {
        let cases = [
            ("defaults on 3", None, None, 3, Fenceposts { surge: 1, unavailable: 0 }),
            ("defaults on 10", None, None, 10, Fenceposts { surge: 3, unavailable: 2 }),
            ("absolute", Some(IntOrString::Int(2)), Some(IntOrString::Int(1)), 5, Fenceposts { surge: 2, unavailable: 1 }),
            ("both zero", Some(IntOrString::Int(0)), Some(IntOrString::Int(0)), 5, Fenceposts { surge: 0, unavailable: 1 }),
            ("unavailable capped", Some(IntOrString::Int(0)), Some(pct("100%")), 2, Fenceposts { surge: 0, unavailable: 2 }),
        ];
        for (name, surge, unavailable, replicas, want) in cases {
            assert_eq!(fenceposts(surge.as_ref(), unavailable.as_ref(), replicas), Some(want), "{name}");
        }
        assert_eq!(fenceposts(Some(&pct("abc")), None, 3), None, "bad percentage");
    }

    #[test]
    fn new_replica_set_growth() {
        let cases = [
            ("fresh deployment", 3, 1, 0, 0, 3),
            ("rolling: surge room of one", 3, 1, 3, 0, 1),
            ("at max total", 3, 1, 4, 1, 1),
            ("never above desired", 3, 5, 0, 2, 3),
        ];
        for (name, desired, surge, all, new, want) in cases {
            assert_eq!(new_rs_replicas(desired, surge, all, new), want, "{name}");
        }
    }

    #[test]
    fn old_replica_sets_shrink() {
        let s = |spec, available| Sizes { spec, available };
        let cases = [
            ("no slack: new pods not yet available", 3, 0, s(1, 0), vec![s(3, 3)], vec![3]),
            ("one new available frees one old", 3, 0, s(1, 1), vec![s(3, 3)], vec![2]),
            ("unhealthy old pods go first", 3, 1, s(1, 0), vec![s(3, 2)], vec![2]),
            ("oldest shrinks first", 4, 1, s(2, 2), vec![s(1, 1), s(2, 2)], vec![0, 1]),
            ("nothing old", 3, 0, s(3, 3), vec![s(0, 0)], vec![0]),
            ("all new available", 3, 0, s(3, 3), vec![s(1, 1)], vec![0]),
        ];
        for (name, desired, unavailable, new, old, want) in cases {
            assert_eq!(scale_down_old(desired, unavailable, new, &old), want, "{name}");
        }
    }
}

//! When a pod on a node with `NoExecute` taints has to go.

use k8s_openapi::api::core::v1::{Taint, Toleration};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// The fate of a pod on a tainted node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    /// Some taint is not tolerated (or is tolerated for zero seconds): delete the pod now.
    Now,
    /// Every taint is tolerated, the shortest for a limited time: delete the pod at this moment.
    At(Timestamp),
    /// Every taint is tolerated forever.
    Never,
}

/// The toleration matches the taint (upstream's `ToleratesTaint`; the alpha `Lt`/`Gt` operators
/// are off by default upstream, so they never match here).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or_default();
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or_default() {
        "" | "Equal" => toleration.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default(),
        "Exists" => true,
        _ => false,
    }
}

/// When a pod with `tolerations` must leave a node with `no_execute` taints.
///
/// The toleration clock starts when the node was first tainted: the earliest `timeAdded`, or
/// `observed_since` (when this controller first saw the pod on a tainted node) if that is earlier —
/// so swapping `unreachable` for `not-ready` does not restart the clock, as upstream. It never
/// starts before the pod existed, so a pod placed on an already-tainted node gets its full period.
pub fn eviction(no_execute: &[Taint], tolerations: &[Toleration], pod_created: Option<Timestamp>, observed_since: Timestamp) -> Eviction {
    if no_execute.is_empty() {
        return Eviction::Never;
    }
    let mut shortest: Option<i64> = None;
    for taint in no_execute {
        // Like upstream, the first toleration that matches a taint is the one that counts for it.
        let Some(used) = tolerations.iter().find(|t| tolerates(t, taint)) else { return Eviction::Now };
        if let Some(seconds) = used.toleration_seconds {
            if seconds <= 0 {
                return Eviction::Now;
            }
            shortest = Some(shortest.map_or(seconds, |s| s.min(seconds)));
        }
    }
    let Some(seconds) = shortest else { return Eviction::Never };
    let tainted_at = no_execute.iter().filter_map(|t| t.time_added.as_ref().map(|t| t.0)).fold(observed_since, Timestamp::min);
    let start = pod_created.map_or(tainted_at, |created| created.max(tainted_at));
    match start.checked_add(SignedDuration::from_secs(seconds)) {
        Ok(deadline) => Eviction::At(deadline),
        Err(_) => Eviction::Never,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn taint(key: &str, added: Option<i64>) -> Taint {
        Taint { key: key.into(), effect: "NoExecute".into(), value: None, time_added: added.map(|s| Time(at(s))) }
    }

    fn toleration(key: &str, operator: &str, effect: &str, seconds: Option<i64>) -> Toleration {
        Toleration {
            key: (!key.is_empty()).then(|| key.into()),
            operator: Some(operator.into()),
            effect: (!effect.is_empty()).then(|| effect.into()),
            toleration_seconds: seconds,
            value: None,
        }
    }

    const NR: &str = "node.kubernetes.io/not-ready";
    const UR: &str = "node.kubernetes.io/unreachable";

    #[test]
    fn matching() {
        let t = taint(NR, None);
        let cases = [
            ("exists on the key", toleration(NR, "Exists", "NoExecute", None), true),
            ("wildcard key and effect", toleration("", "Exists", "", None), true),
            ("other key", toleration(UR, "Exists", "NoExecute", None), false),
            ("other effect", toleration(NR, "Exists", "NoSchedule", None), false),
            ("equal with empty values", toleration(NR, "Equal", "", None), true),
            ("alpha operator is off", toleration(NR, "Lt", "", None), false),
        ];
        for (name, tol, want) in cases {
            assert_eq!(tolerates(&tol, &t), want, "{name}");
        }
    }

    #[test]
    fn deadlines() {
        let default_tolerations = vec![toleration(NR, "Exists", "NoExecute", Some(300)), toleration(UR, "Exists", "NoExecute", Some(300))];
        // (name, taints, tolerations, pod created, expected)
        let cases = [
            ("no taints", vec![], vec![], None, Eviction::Never),
            ("untolerated taint", vec![taint(UR, Some(100))], vec![], None, Eviction::Now),
            ("default 300 s from timeAdded", vec![taint(UR, Some(100))], default_tolerations.clone(), Some(10), Eviction::At(at(400))),
            ("pod came after the taint", vec![taint(UR, Some(100))], default_tolerations.clone(), Some(250), Eviction::At(at(550))),
            ("no timeAdded: from first observation", vec![taint(UR, None)], default_tolerations.clone(), None, Eviction::At(at(1300))),
            ("swapped taint keeps the earlier clock", vec![taint(NR, Some(1100))], default_tolerations.clone(), None, Eviction::At(at(1300))),
            ("tolerated forever", vec![taint(UR, Some(100))], vec![toleration("", "Exists", "", None)], None, Eviction::Never),
            ("zero seconds", vec![taint(UR, Some(100))], vec![toleration(UR, "Exists", "", Some(0))], None, Eviction::Now),
            (
                "shortest toleration wins, clock from the first taint",
                vec![taint(UR, Some(100)), taint(NR, Some(200))],
                vec![toleration(UR, "Exists", "", Some(60)), toleration(NR, "Exists", "", Some(30))],
                None,
                Eviction::At(at(130)),
            ),
            (
                "one taint tolerated, the other not",
                vec![taint(UR, Some(100)), taint("example.com/x", Some(100))],
                default_tolerations.clone(),
                None,
                Eviction::Now,
            ),
        ];
        for (name, taints, tolerations, created, want) in cases {
            assert_eq!(eviction(&taints, &tolerations, created.map(at), at(1000)), want, "{name}");
        }
    }
}

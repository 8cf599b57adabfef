//! Small pieces several plugins share: toleration matching and the default score normalization.

use k8s_openapi::api::core::v1::{Pod, Taint, Toleration};

use crate::framework::NodeScore;

/// Whether one toleration tolerates the taint (empty effect = any effect, empty key with `Exists` = any
/// key, `Equal` or no operator compares values).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref().filter(|e| !e.is_empty())
        && effect != taint.effect
    {
        return false;
    }
    if let Some(key) = toleration.key.as_deref().filter(|k| !k.is_empty())
        && key != taint.key
    {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("") {
        "" | "Equal" => toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        "Exists" => true,
        _ => false,
    }
}

/// Whether any of the pod's tolerations tolerates the taint.
pub fn pod_tolerates(pod: &Pod, taint: &Taint) -> bool {
    pod_tolerations(pod).iter().any(|t| tolerates(t, taint))
}

pub fn pod_tolerations(pod: &Pod) -> &[Toleration] {
    pod.spec.as_ref().and_then(|s| s.tolerations.as_deref()).unwrap_or_default()
}

/// Scales scores so the highest becomes `max`; `reverse` flips them so the lowest raw score wins.
pub fn default_normalize_score(max: i64, reverse: bool, scores: &mut [NodeScore<'_>]) {
    let highest = scores.iter().map(|s| s.score).max().unwrap_or(0);
    if highest == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| s.score = max);
        }
        return;
    }
    for s in scores.iter_mut() {
        let scaled = max * s.score / highest;
        s.score = if reverse { max - scaled } else { scaled };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, value: &str, effect: &str) -> Taint {
        Taint { key: key.into(), value: Some(value.into()).filter(|v: &String| !v.is_empty()), effect: effect.into(), ..Default::default() }
    }

    fn tol(key: &str, op: &str, value: &str, effect: &str) -> Toleration {
        let opt = |s: &str| Some(s.to_string()).filter(|v| !v.is_empty());
        Toleration { key: opt(key), operator: opt(op), value: opt(value), effect: opt(effect), ..Default::default() }
    }

    #[test]
    fn toleration_matching() {
        let cases = [
            ("equal key and value", tol("k", "Equal", "v", "NoSchedule"), taint("k", "v", "NoSchedule"), true),
            ("default operator is Equal", tol("k", "", "v", ""), taint("k", "v", "NoExecute"), true),
            ("value differs", tol("k", "Equal", "w", ""), taint("k", "v", "NoSchedule"), false),
            ("effect differs", tol("k", "Exists", "", "NoExecute"), taint("k", "v", "NoSchedule"), false),
            ("exists ignores value", tol("k", "Exists", "", ""), taint("k", "v", "NoSchedule"), true),
            ("empty key with exists tolerates everything", tol("", "Exists", "", ""), taint("any", "x", "NoSchedule"), true),
            ("key differs", tol("other", "Exists", "", ""), taint("k", "", "NoSchedule"), false),
            ("unknown operator", tol("k", "Gt", "1", ""), taint("k", "2", "NoSchedule"), false),
        ];
        for (name, t, ta, want) in cases {
            assert_eq!(tolerates(&t, &ta), want, "case {name}");
        }
    }

    #[test]
    fn normalization() {
        let mk = |v: &[i64]| v.iter().map(|s| NodeScore { name: "n", score: *s }).collect::<Vec<_>>();
        let cases = [
            ("scaled to max", vec![1, 2, 4], false, vec![25, 50, 100]),
            ("reversed", vec![0, 1, 2], true, vec![100, 50, 0]),
            ("all zero forward", vec![0, 0], false, vec![0, 0]),
            ("all zero reversed", vec![0, 0], true, vec![100, 100]),
        ];
        for (name, input, reverse, want) in cases {
            let mut s = mk(&input);
            default_normalize_score(100, reverse, &mut s);
            assert_eq!(s.iter().map(|s| s.score).collect::<Vec<_>>(), want, "case {name}");
        }
    }
}

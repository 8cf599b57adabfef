//! Which of a budget's pods count as healthy, and which recorded disruptions still stand.
//!
//! The eviction API records each pod it lets go in `status.disruptedPods` before deleting it; the pod
//! stops counting as healthy at once. If the deletion has not happened two minutes later the entry is
//! dropped, so a failed deletion does not use up the budget for good.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::replicaset::is_ready;

/// How long an evicted pod may take to start terminating before its entry is dropped (upstream's
/// DeletionTimeout).
pub const DELETION_TIMEOUT: SignedDuration = SignedDuration::from_secs(120);

/// The disruptions that still stand, and when the earliest of them expires (time to sync again).
#[derive(Debug, Default, PartialEq)]
pub struct Disrupted {
    pub pods: BTreeMap<String, Time>,
    pub recheck_at: Option<Timestamp>,
    /// Pods whose entry expired without a deletion (upstream warns about each with `NotDeleted`).
    pub not_deleted: Vec<String>,
}

/// Keeps the recorded disruptions of pods that still exist, are not yet terminating and whose
/// deletion is not overdue.
pub fn still_disrupted(recorded: Option<&BTreeMap<String, Time>>, pods: &[&Pod], now: Timestamp) -> Disrupted {
    let mut out = Disrupted::default();
    let Some(recorded) = recorded else {
        return out;
    };
    for pod in pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
        let Some(name) = pod.metadata.name.as_deref() else { continue };
        let Some(since) = recorded.get(name) else { continue };
        let expires = since.0.saturating_add(DELETION_TIMEOUT).unwrap_or(since.0);
        if expires < now {
            out.not_deleted.push(name.to_string());
        } else {
            out.recheck_at = Some(out.recheck_at.map_or(expires, |t| t.min(expires)));
            out.pods.insert(name.to_string(), since.clone());
        }
    }
    out
}

/// Pods that are ready, not terminating and not about to be deleted by an eviction.
pub fn current_healthy(pods: &[&Pod], disrupted: &BTreeMap<String, Time>) -> i32 {
    let healthy = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| p.metadata.name.as_ref().is_none_or(|n| !disrupted.contains_key(n)))
        .filter(|p| is_ready(p))
        .count();
    i32::try_from(healthy).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};

    use super::*;

    fn pod(name: &str, ready: bool, terminating: bool) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        if terminating {
            p.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        }
        p.status = Some(PodStatus {
            conditions: Some(vec![PodCondition { type_: "Ready".into(), status: if ready { "True" } else { "False" }.into(), ..Default::default() }]),
            ..Default::default()
        });
        p
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn healthy_counts() {
        let (a, b, c, d) = (pod("a", true, false), pod("b", true, true), pod("c", false, false), pod("d", true, false));
        let cases = [
            ("ready counts", vec![&a], None, 1),
            ("terminating does not", vec![&a, &b], None, 1),
            ("unready does not", vec![&a, &c], None, 1),
            ("disrupted does not", vec![&a, &d], Some("d"), 1),
        ];
        for (name, pods, disrupted, want) in cases {
            let disrupted: BTreeMap<String, Time> = disrupted.map(|n: &str| (n.to_string(), Time(at(0)))).into_iter().collect();
            assert_eq!(current_healthy(&pods, &disrupted), want, "{name}");
        }
    }

    #[test]
    fn disruptions_expire() {
        let (fresh, old, gone_soon) = (pod("fresh", true, false), pod("old", true, false), pod("term", true, true));
        let recorded = BTreeMap::from([
            ("fresh".to_string(), Time(at(1000))),
            ("old".to_string(), Time(at(800))),
            ("term".to_string(), Time(at(1000))),
            ("missing".to_string(), Time(at(1000))),
        ]);
        let out = still_disrupted(Some(&recorded), &[&fresh, &old, &gone_soon], at(1010));
        assert_eq!(out.pods.keys().collect::<Vec<_>>(), ["fresh"], "only the fresh, live, not-yet-terminating entry stays");
        assert_eq!(out.recheck_at, Some(at(1120)));
        assert_eq!(out.not_deleted, ["old"]);
        assert_eq!(still_disrupted(None, &[&fresh], at(0)), Disrupted::default(), "nothing recorded");
    }
}

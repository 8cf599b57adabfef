//! Creations and deletions a replica set has asked for but not yet seen in the pod cache.
//!
//! Acting again before the cache has caught up would create or delete twice, so a replica set
//! is only resized once all its outstanding requests have been observed (or have expired, as a
//! safety net against a lost watch event, like upstream's five minutes).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{ObjectRef, Store};

/// How long an expectation may stay unobserved before it is assumed lost.
pub const EXPECTATION_TTL: Duration = Duration::from_secs(5 * 60);

/// A pod by namespace and name.
pub type PodKey = (String, String);

#[derive(Debug, Default)]
struct Pending {
    /// Pods we created, by name.
    creates: HashSet<PodKey>,
    /// Pods we deleted, with the UID of the incarnation we deleted.
    deletes: HashMap<PodKey, String>,
    since: Option<Instant>,
}

/// What the pod cache currently says about one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Not in the cache.
    Absent,
    /// In the cache with this UID; `deleting` if it has a deletion timestamp.
    Present { uid: String, deleting: bool },
}

impl Seen {
    /// What `pods` (the shared pod cache) holds under `key`.
    pub fn in_store(pods: &Store<Pod>, (namespace, name): &PodKey) -> Self {
        match pods.get(&ObjectRef::new(name).within(namespace)) {
            None => Seen::Absent,
            Some(p) => Seen::Present { uid: p.metadata.uid.clone().unwrap_or_default(), deleting: p.metadata.deletion_timestamp.is_some() },
        }
    }
}

/// Outstanding expectations of every owner (replica set, daemon set…), keyed by `namespace/name`.
#[derive(Debug, Default)]
pub struct Expectations {
    pending: Mutex<HashMap<String, Pending>>,
    /// Pods the watch has shown us recently, so a pod created and deleted before the replica set
    /// was next synced still counts as observed.
    observed: Mutex<Observed>,
}

/// Recently watched pods, pruned of entries older than the TTL at most once per [`PRUNE_EVERY`]:
/// pruning on every event would walk the whole map per pod event, quadratic in a burst of creates.
#[derive(Debug, Default)]
struct Observed {
    at: HashMap<PodKey, Instant>,
    pruned: Option<Instant>,
}

/// How often the observed pods are pruned; entries live between the TTL and the TTL plus this.
const PRUNE_EVERY: Duration = Duration::from_secs(30);

impl Expectations {
    /// Records that `rs` created the pod `key`.
    pub fn expect_create(&self, rs: &str, key: PodKey, now: Instant) {
        let mut pending = self.lock_pending();
        let entry = pending.entry(rs.to_string()).or_default();
        entry.creates.insert(key);
        entry.since.get_or_insert(now);
    }

    /// Records that `rs` deleted the pod `key` whose UID was `uid`.
    pub fn expect_delete(&self, rs: &str, key: PodKey, uid: String, now: Instant) {
        let mut pending = self.lock_pending();
        let entry = pending.entry(rs.to_string()).or_default();
        entry.deletes.insert(key, uid);
        entry.since.get_or_insert(now);
    }

    /// Notes a pod event from the watch.
    pub fn observe(&self, key: PodKey, now: Instant) {
        let mut observed = self.observed.lock().unwrap_or_else(|p| p.into_inner());
        if observed.pruned.is_none_or(|last| now.duration_since(last) >= PRUNE_EVERY) {
            observed.at.retain(|_, at| now.duration_since(*at) < EXPECTATION_TTL);
            observed.pruned = Some(now);
        }
        observed.at.insert(key, now);
    }

    /// Forgets everything about `rs` (it was deleted).
    pub fn forget(&self, rs: &str) {
        self.lock_pending().remove(rs);
    }

    /// True when every request of `rs` has been observed (dropping those that have been), or
    /// when the outstanding ones have expired. `lookup` reads the pod cache.
    pub fn satisfied(&self, rs: &str, now: Instant, lookup: impl Fn(&PodKey) -> Seen) -> bool {
        let observed = self.observed.lock().unwrap_or_else(|p| p.into_inner());
        let mut pending = self.lock_pending();
        let Some(entry) = pending.get_mut(rs) else { return true };
        entry.creates.retain(|key| !observed.at.contains_key(key) && lookup(key) == Seen::Absent);
        entry.deletes.retain(|key, uid| matches!(lookup(key), Seen::Present { uid: seen, deleting: false } if &seen == uid));
        let expired = entry.since.is_some_and(|since| now.duration_since(since) >= EXPECTATION_TTL);
        if entry.creates.is_empty() && entry.deletes.is_empty() || expired {
            pending.remove(rs);
            return true;
        }
        false
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        // A poisoned lock only means another reconcile panicked mid-update; the map is still usable.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> PodKey {
        ("ns".to_string(), name.to_string())
    }

    #[test]
    fn nothing_expected_is_satisfied() {
        let e = Expectations::default();
        assert!(e.satisfied("ns/rs", Instant::now(), |_| Seen::Absent));
    }

    #[test]
    fn create_waits_until_seen_in_cache() {
        let e = Expectations::default();
        let t0 = Instant::now();
        e.expect_create("ns/rs", key("p1"), t0);
        assert!(!e.satisfied("ns/rs", t0, |_| Seen::Absent), "not yet in cache");
        assert!(e.satisfied("ns/rs", t0, |_| Seen::Present { uid: "u1".into(), deleting: false }), "in cache");
    }

    #[test]
    fn create_seen_by_watch_then_deleted_counts() {
        let e = Expectations::default();
        let t0 = Instant::now();
        e.expect_create("ns/rs", key("p1"), t0);
        e.observe(key("p1"), t0);
        assert!(e.satisfied("ns/rs", t0, |_| Seen::Absent));
    }

    #[test]
    fn delete_waits_until_gone_or_terminating() {
        let cases = [
            ("still there", Seen::Present { uid: "u1".into(), deleting: false }, false),
            ("terminating", Seen::Present { uid: "u1".into(), deleting: true }, true),
            ("gone", Seen::Absent, true),
            ("recreated under same name", Seen::Present { uid: "u2".into(), deleting: false }, true),
        ];
        for (name, seen, want) in cases {
            let e = Expectations::default();
            let t0 = Instant::now();
            e.expect_delete("ns/rs", key("p1"), "u1".into(), t0);
            assert_eq!(e.satisfied("ns/rs", t0, |_| seen.clone()), want, "{name}");
        }
    }

    #[test]
    fn observations_are_pruned_after_the_ttl() {
        let e = Expectations::default();
        let t0 = Instant::now();
        e.observe(key("p1"), t0);
        e.observe(key("p2"), t0 + Duration::from_secs(1));
        let later = t0 + EXPECTATION_TTL + PRUNE_EVERY;
        e.observe(key("p3"), later);
        e.expect_create("ns/rs", key("p1"), later);
        assert!(!e.satisfied("ns/rs", later, |_| Seen::Absent), "p1's old observation was pruned");
        e.expect_create("ns/rs", key("p3"), later);
        e.observe(key("p1"), later);
        assert!(e.satisfied("ns/rs", later, |_| Seen::Absent), "fresh observations count");
    }

    #[test]
    fn expectations_expire() {
        let e = Expectations::default();
        let t0 = Instant::now();
        e.expect_create("ns/rs", key("p1"), t0);
        assert!(!e.satisfied("ns/rs", t0 + Duration::from_secs(10), |_| Seen::Absent));
        assert!(e.satisfied("ns/rs", t0 + EXPECTATION_TTL, |_| Seen::Absent));
    }

    #[test]
    fn replica_sets_are_independent() {
        let e = Expectations::default();
        let t0 = Instant::now();
        e.expect_create("ns/a", key("p1"), t0);
        assert!(e.satisfied("ns/b", t0, |_| Seen::Absent));
        assert!(!e.satisfied("ns/a", t0, |_| Seen::Absent));
        e.forget("ns/a");
        assert!(e.satisfied("ns/a", t0, |_| Seen::Absent));
    }
}

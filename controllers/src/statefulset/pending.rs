//! Pod writes a set has made but not yet seen in the pod cache. Until the cache shows them, the
//! set is not planned again: a sync started by some other change (its own status write, say) would
//! otherwise act on the old picture and repeat a deletion. (The ReplicaSet engine's expectations
//! track unnamed pods; a set's pods have fixed names, which makes this simpler.)

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a write may stay unobserved before it is assumed lost (a missed watch event).
pub const TTL: Duration = Duration::from_secs(60);

/// What the cache must show for a write to count as seen.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Write {
    /// The pod with this name exists.
    Created(String),
    /// The pod with this name and UID is gone or terminating.
    Deleted(String, String),
}

/// What the pod cache says about one pod name: its UID and whether it is terminating.
pub type Seen = Option<(String, bool)>;

#[derive(Debug, Default)]
pub struct Pending {
    writes: Mutex<HashMap<String, Vec<(Write, Instant)>>>,
}

impl Pending {
    pub fn created(&self, set: &str, pod: String, now: Instant) {
        self.push(set, Write::Created(pod), now);
    }

    pub fn deleted(&self, set: &str, pod: String, uid: String, now: Instant) {
        self.push(set, Write::Deleted(pod, uid), now);
    }

    /// True when every write of `set` shows in the cache (`lookup` reads it by pod name) or has
    /// expired; seen writes are forgotten.
    pub fn settled(&self, set: &str, now: Instant, lookup: impl Fn(&str) -> Seen) -> bool {
        let mut writes = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        let Some(list) = writes.get_mut(set) else { return true };
        list.retain(|(write, at)| {
            let seen = match write {
                Write::Created(pod) => lookup(pod).is_some(),
                Write::Deleted(pod, uid) => !matches!(lookup(pod), Some((seen, false)) if &seen == uid),
            };
            !seen && now.duration_since(*at) < TTL
        });
        if list.is_empty() {
            writes.remove(set);
            return true;
        }
        false
    }

    fn push(&self, set: &str, write: Write, now: Instant) {
        self.writes.lock().unwrap_or_else(|p| p.into_inner()).entry(set.to_string()).or_default().push((write, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_settle_when_seen() {
        let t0 = Instant::now();
        let cases: [(&str, bool, Seen, bool); 6] = [
            ("created, not yet seen", true, None, false),
            ("created, seen", true, Some(("u2".into(), false)), true),
            ("deleted, still there", false, Some(("u1".into(), false)), false),
            ("deleted, terminating", false, Some(("u1".into(), true)), true),
            ("deleted, gone", false, None, true),
            ("deleted, recreated", false, Some(("u2".into(), false)), true),
        ];
        for (name, create, seen, want) in cases {
            let p = Pending::default();
            if create {
                p.created("ns/web", "web-0".into(), t0);
            } else {
                p.deleted("ns/web", "web-0".into(), "u1".into(), t0);
            }
            assert_eq!(p.settled("ns/web", t0, |_| seen.clone()), want, "{name}");
            assert!(p.settled("ns/other", t0, |_| None), "{name}: other sets are independent");
        }
    }

    #[test]
    fn writes_expire() {
        let p = Pending::default();
        let t0 = Instant::now();
        p.created("ns/web", "web-0".into(), t0);
        assert!(!p.settled("ns/web", t0 + Duration::from_secs(1), |_| None));
        assert!(p.settled("ns/web", t0 + TTL, |_| None));
        assert!(p.settled("ns/web", t0, |_| None), "forgotten once settled");
    }
}

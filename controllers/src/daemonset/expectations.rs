//! Pod creations and deletions a DaemonSet has made but not yet seen in the pod cache. Planning on
//! a cache that lags behind would create a second pod on a node (or delete twice), so a set only
//! acts once its earlier writes are visible, or after a safety timeout (upstream's five minutes).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an expectation may stay unobserved before it is assumed lost.
pub const TTL: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Default)]
struct Outstanding {
    /// Names of pods created.
    creates: HashSet<String>,
    /// Names of pods deleted, with the UID deleted.
    deletes: HashMap<String, String>,
    since: Option<Instant>,
}

/// Outstanding writes per set (`namespace/name`), and pods the watch has shown (`namespace/pod`),
/// so a pod created and gone again before the next sync still counts as seen.
#[derive(Debug, Default)]
pub struct Expectations {
    outstanding: Mutex<HashMap<String, Outstanding>>,
    observed: Mutex<HashMap<String, Instant>>,
}

impl Expectations {
    pub fn created(&self, set: &str, pod: String, now: Instant) {
        let mut all = self.outstanding.lock().unwrap_or_else(|p| p.into_inner());
        let entry = all.entry(set.to_string()).or_default();
        entry.creates.insert(pod);
        entry.since.get_or_insert(now);
    }

    pub fn deleted(&self, set: &str, pod: String, uid: String, now: Instant) {
        let mut all = self.outstanding.lock().unwrap_or_else(|p| p.into_inner());
        let entry = all.entry(set.to_string()).or_default();
        entry.deletes.insert(pod, uid);
        entry.since.get_or_insert(now);
    }

    /// Notes that the watch delivered pod `key` (`namespace/name`).
    pub fn observe(&self, key: String, now: Instant) {
        let mut observed = self.observed.lock().unwrap_or_else(|p| p.into_inner());
        observed.retain(|_, at| now.duration_since(*at) < TTL);
        observed.insert(key, now);
    }

    /// True when every write of `set` in namespace `ns` shows in the cache (`lookup` gives a pod's
    /// UID and whether it is terminating) or the writes have expired.
    pub fn satisfied(&self, set: &str, ns: &str, now: Instant, lookup: impl Fn(&str) -> Option<(String, bool)>) -> bool {
        let observed = self.observed.lock().unwrap_or_else(|p| p.into_inner());
        let mut all = self.outstanding.lock().unwrap_or_else(|p| p.into_inner());
        let Some(entry) = all.get_mut(set) else { return true };
        entry.creates.retain(|pod| !observed.contains_key(&format!("{ns}/{pod}")) && lookup(pod).is_none());
        entry.deletes.retain(|pod, uid| matches!(lookup(pod), Some((seen, false)) if &seen == uid));
        let expired = entry.since.is_some_and(|since| now.duration_since(since) >= TTL);
        if (entry.creates.is_empty() && entry.deletes.is_empty()) || expired {
            all.remove(set);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectation_cases() {
        let t0 = Instant::now();
        let present = |uid: &str, deleting: bool| Some((uid.to_string(), deleting));
        // (name, create?, cache says, watch saw it, elapsed, satisfied)
        let cases = [
            ("create not yet cached", true, None, false, 0, false),
            ("create cached", true, present("u1", false), false, 0, true),
            ("create seen by the watch, gone again", true, None, true, 0, true),
            ("create expired", true, None, false, 301, true),
            ("delete not yet seen", false, present("u1", false), false, 0, false),
            ("delete: terminating", false, present("u1", true), false, 0, true),
            ("delete: gone", false, None, false, 0, true),
            ("delete: replaced under same name", false, present("u2", false), false, 0, true),
        ];
        for (name, create, cached, watched, elapsed, want) in cases {
            let e = Expectations::default();
            if create {
                e.created("ns/ds", "p".into(), t0);
            } else {
                e.deleted("ns/ds", "p".into(), "u1".into(), t0);
            }
            if watched {
                e.observe("ns/p".into(), t0);
            }
            let now = t0 + Duration::from_secs(elapsed);
            assert_eq!(e.satisfied("ns/ds", "ns", now, |_| cached.clone()), want, "{name}");
            assert!(e.satisfied("ns/other", "ns", now, |_| None), "{name}: other sets unaffected");
        }
    }
}

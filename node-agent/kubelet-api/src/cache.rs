//! A small time-bounded cache for authentication and authorization decisions, so that a burst of requests
//! (every `kubectl logs -f` reconnect, every exec) does not become a burst of TokenReviews or
//! SubjectAccessReviews.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Beyond this many entries, expired ones are swept on insert; beyond twice as many, everything is dropped
/// (a cache miss only costs one more review).
const SWEEP_ABOVE: usize = 4096;

/// Entries expire after a TTL chosen per insert (upstream caches allows longer than denials).
#[derive(Debug)]
pub struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K, V> Default for TtlCache<K, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    /// The value stored for `key`, unless it has expired at `now`.
    pub fn get(&self, key: &K, now: Instant) -> Option<V> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries
            .get(key)
            .filter(|(expires, _)| *expires > now)
            .map(|(_, value)| value.clone())
    }

    pub fn insert(&self, key: K, value: V, ttl: Duration, now: Instant) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= SWEEP_ABOVE {
            entries.retain(|_, (expires, _)| *expires > now);
            if entries.len() >= 2 * SWEEP_ABOVE {
                entries.clear();
            }
        }
        entries.insert(key, (now + ttl, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_after_their_ttl() {
        let cache = TtlCache::default();
        let start = Instant::now();
        cache.insert("allowed", true, Duration::from_secs(300), start);
        cache.insert("denied", false, Duration::from_secs(30), start);
        assert_eq!(
            cache.get(&"allowed", start + Duration::from_secs(60)),
            Some(true)
        );
        assert_eq!(
            cache.get(&"denied", start + Duration::from_secs(29)),
            Some(false)
        );
        assert_eq!(cache.get(&"denied", start + Duration::from_secs(31)), None);
        assert_eq!(
            cache.get(&"allowed", start + Duration::from_secs(301)),
            None
        );
        assert_eq!(cache.get(&"unknown", start), None);
    }
}

//! Remembers the slices this controller just wrote, so a sync that runs before the cache has seen
//! those writes waits instead of acting on stale state (and, say, creating a second slice).

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::discovery::v1::EndpointSlice;

/// Per service key (`namespace/name`): slice name → generation written, or None once deleted.
#[derive(Default)]
pub struct Tracker {
    written: Mutex<HashMap<String, HashMap<String, Option<i64>>>>,
}

impl Tracker {
    pub fn wrote(&self, service: &str, slice: &EndpointSlice) {
        if let Some(name) = slice.metadata.name.clone() {
            self.lock().entry(service.to_string()).or_default().insert(name, Some(slice.metadata.generation.unwrap_or(0)));
        }
    }

    pub fn deleted(&self, service: &str, name: &str) {
        self.lock().entry(service.to_string()).or_default().insert(name.to_string(), None);
    }

    /// True if `cached` does not yet show every write; entries the cache has caught up with are
    /// forgotten.
    pub fn is_stale(&self, service: &str, cached: &[EndpointSlice]) -> bool {
        let mut all = self.lock();
        let Some(expected) = all.get_mut(service) else { return false };
        expected.retain(|name, generation| {
            let seen = cached.iter().find(|s| s.metadata.name.as_deref() == Some(name.as_str()));
            match (generation, seen) {
                (Some(g), Some(s)) => s.metadata.generation.unwrap_or(0) < *g,
                (Some(_), None) => true,
                (None, seen) => seen.is_some(),
            }
        });
        let stale = !expected.is_empty();
        if !stale {
            all.remove(service);
        }
        stale
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, Option<i64>>>> {
        self.written.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(name: &str, generation: i64) -> EndpointSlice {
        let mut s = EndpointSlice::default();
        s.metadata.name = Some(name.into());
        s.metadata.generation = Some(generation);
        s
    }

    #[test]
    fn staleness() {
        let cases: [(&str, Vec<EndpointSlice>, bool); 4] = [
            ("created slice not cached yet", vec![], true),
            ("cached at an older generation", vec![slice("a", 1), slice("gone", 1)], true),
            ("deleted slice still cached", vec![slice("a", 2), slice("gone", 1)], true),
            ("cache caught up", vec![slice("a", 2)], false),
        ];
        for (name, cached, want) in cases {
            let t = Tracker::default();
            t.wrote("ns/web", &slice("a", 2));
            t.deleted("ns/web", "gone");
            assert_eq!(t.is_stale("ns/web", &cached), want, "{name}");
        }
        let t = Tracker::default();
        t.wrote("ns/web", &slice("a", 2));
        assert!(t.is_stale("ns/web", &[]));
        assert!(!t.is_stale("ns/web", &[slice("a", 3)]), "caught up");
        assert!(!t.is_stale("ns/web", &[]), "forgotten once caught up");
        assert!(!t.is_stale("ns/other", &[]), "an untracked service is never stale");
    }
}

//! Tracking-finalizer removals a job has made but not yet seen in the pod cache.
//!
//! Once a pod's finalizer is removed its UID leaves `status.uncountedTerminatedPods` and enters
//! the counters; a stale cache still showing the finalizer must not make the pod count twice,
//! so such pods are skipped until the cache shows them without it (or gone).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Removals {
    pending: Mutex<HashMap<String, HashSet<String>>>,
}

impl Removals {
    /// Records that `job` removed the finalizer of the pods with `uids`.
    pub fn expect(&self, job: &str, uids: impl IntoIterator<Item = String>) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.entry(job.to_string()).or_default().extend(uids);
    }

    /// The UIDs of `job` still awaiting their removal in the cache; `still_tracked` says whether
    /// the cache shows a pod with that UID still carrying the finalizer. Seen removals are dropped.
    pub fn outstanding(&self, job: &str, still_tracked: impl Fn(&str) -> bool) -> HashSet<String> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let Some(uids) = pending.get_mut(job) else { return HashSet::new() };
        uids.retain(|uid| still_tracked(uid));
        let left = uids.clone();
        if left.is_empty() {
            pending.remove(job);
        }
        left
    }

    /// Forgets `job` (it finished or was deleted).
    pub fn forget(&self, job: &str) {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(job);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removals_wait_for_the_cache() {
        let r = Removals::default();
        r.expect("ns/j", ["a".to_string(), "b".to_string()]);
        let left = r.outstanding("ns/j", |uid| uid == "a");
        assert_eq!(left, HashSet::from(["a".to_string()]), "b was seen without its finalizer");
        assert!(r.outstanding("ns/other", |_| true).is_empty(), "jobs are independent");
        assert!(r.outstanding("ns/j", |_| false).is_empty(), "a seen too");
        assert!(r.outstanding("ns/j", |_| true).is_empty(), "nothing comes back");
        r.expect("ns/j", ["c".to_string()]);
        r.forget("ns/j");
        assert!(r.outstanding("ns/j", |_| true).is_empty());
    }
}

//! Data plugins keep for the length of one scheduling cycle (PreFilter results read by Filter, PreScore
//! results read by Score), keyed by name.

use std::any::Any;
use std::borrow::Cow;
use std::collections::HashMap;

/// Per-cycle storage shared by the plugins; a fresh one is made for every pod attempt. Filters read it
/// once per node, so the keys hash with foldhash rather than SipHash (nothing here is attacker-chosen).
#[derive(Default)]
pub struct CycleState {
    data: HashMap<String, Box<dyn Any + Send + Sync>, foldhash::fast::RandomState>,
}

impl CycleState {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn write<T: Any + Send + Sync>(&mut self, key: impl Into<String>, value: T) {
        self.data.insert(key.into(), Box::new(value));
    }

    /// The value under `key`, if present and of type `T`.
    pub fn read<T: Any + Send + Sync>(&self, key: &str) -> Option<&T> {
        self.data.get(key).and_then(|v| v.downcast_ref::<T>())
    }

    /// The value under `key`, or `compute()` when it is missing: a plugin whose PreFilter or PreScore did
    /// not run (disabled at that point for this pod, say) still works, only slower.
    pub fn read_or<T: Any + Send + Sync + Clone>(&self, key: &str, compute: impl FnOnce() -> T) -> Cow<'_, T> {
        self.read::<T>(key).map_or_else(|| Cow::Owned(compute()), Cow::Borrowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_read_back() {
        let mut s = CycleState::new();
        s.write("PreFilterX", 42_i64);
        assert_eq!(s.read::<i64>("PreFilterX"), Some(&42));
        assert_eq!(s.read::<String>("PreFilterX"), None, "wrong type reads as absent");
        assert_eq!(s.read::<i64>("missing"), None);
        assert_eq!(*s.read_or("PreFilterX", || 7_i64), 42, "present: read");
        assert_eq!(*s.read_or("missing", || 7_i64), 7, "missing: computed");
    }
}

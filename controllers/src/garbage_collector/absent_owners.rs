//! Owners the apiserver has said are gone, so their other dependents are not looked up again.
//!
//! A cascading delete of a 5000-pod replica set asks about the same owner once per pod otherwise. An
//! owner is remembered by UID (never reused), within the namespace of the dependent that asked: a
//! namespaced owner is only ever looked up in its dependent's namespace, so an absence seen from one
//! namespace says nothing about another. Like upstream's absentOwnerCache the set is bounded; when full
//! it starts over, which costs lookups, never correctness.

use std::collections::HashSet;
use std::sync::Mutex;

/// How many absent owners are remembered (upstream keeps 500).
const CAPACITY: usize = 500;

/// (the dependent's namespace, or "" for a cluster-scoped owner; the owner's UID).
type Key = (String, String);

#[derive(Debug, Default)]
pub struct AbsentOwners(Mutex<HashSet<Key>>);

impl AbsentOwners {
    pub fn contains(&self, namespace: &str, uid: &str) -> bool {
        self.lock().contains(&(namespace.to_string(), uid.to_string()))
    }

    pub fn insert(&self, namespace: &str, uid: &str) {
        let mut set = self.lock();
        if set.len() >= CAPACITY {
            set.clear();
        }
        set.insert((namespace.to_string(), uid.to_string()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<Key>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_by_namespace_and_uid_within_capacity() {
        let absent = AbsentOwners::default();
        absent.insert("a", "u1");
        let cases = [("same namespace", "a", "u1", true), ("other namespace", "b", "u1", false), ("other uid", "a", "u2", false)];
        for (name, ns, uid, want) in cases {
            assert_eq!(absent.contains(ns, uid), want, "{name}");
        }
        for i in 0..CAPACITY {
            absent.insert("a", &format!("x{i}"));
        }
        assert!(absent.lock().len() <= CAPACITY, "bounded");
    }
}

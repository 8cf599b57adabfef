//! Owners the apiserver has said are gone, so their other dependents are not looked up again.
//!
//! A cascading delete of a 5000-pod replica set asks about the same owner once per pod otherwise. A lookup
//! of `group/kind name` that finds nothing (or another UID) proves only that this reference is dangling,
//! not that no object has the UID — another dependent may name the same UID under its real kind — so,
//! as upstream's absentOwnerCache, an entry is the whole reference: the dependent's namespace ("" for a
//! cluster-scoped owner), the owner's API group, kind, name and UID. UIDs are never reused, so an entry
//! stays true. The set is bounded; when full it starts over, which costs lookups, never correctness.

use std::collections::HashSet;
use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

/// How many absent owners are remembered (upstream keeps 500).
const CAPACITY: usize = 500;

/// (namespace, API group, kind, name, UID).
type Key = (String, String, String, String, String);

fn key(namespace: &str, owner: &OwnerReference) -> Key {
    // The version does not matter: every version of a kind names the same objects.
    let group = crate::ownership::api_group(&owner.api_version);
    (namespace.to_string(), group.to_string(), owner.kind.clone(), owner.name.clone(), owner.uid.clone())
}

#[derive(Debug, Default)]
pub struct AbsentOwners(Mutex<HashSet<Key>>);

impl AbsentOwners {
    /// Whether `owner`, looked up from a dependent in `namespace`, is known to be gone.
    pub fn contains(&self, namespace: &str, owner: &OwnerReference) -> bool {
        self.lock().contains(&key(namespace, owner))
    }

    /// Remembers that the apiserver found no `owner` (with its UID) for a dependent in `namespace`.
    pub fn insert(&self, namespace: &str, owner: &OwnerReference) {
        let mut set = self.lock();
        if set.len() >= CAPACITY {
            set.clear();
        }
        set.insert(key(namespace, owner));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<Key>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(api_version: &str, kind: &str, name: &str, uid: &str) -> OwnerReference {
        OwnerReference { api_version: api_version.into(), kind: kind.into(), name: name.into(), uid: uid.into(), ..Default::default() }
    }

    #[test]
    fn remembers_the_whole_reference_within_capacity() {
        let absent = AbsentOwners::default();
        let typo = owner("v1", "ConfigMap", "typo", "u1");
        absent.insert("a", &typo);
        let cases = [
            ("same reference", "a", typo.clone(), true),
            ("another version of the kind", "a", owner("v2", "ConfigMap", "typo", "u1"), true),
            ("other namespace", "b", typo.clone(), false),
            ("same UID under its real kind and name", "a", owner("apps/v1", "Deployment", "web", "u1"), false),
            ("other uid", "a", owner("v1", "ConfigMap", "typo", "u2"), false),
        ];
        for (name, ns, reference, want) in cases {
            assert_eq!(absent.contains(ns, &reference), want, "{name}");
        }
        for i in 0..CAPACITY {
            absent.insert("a", &owner("v1", "ConfigMap", "x", &format!("x{i}")));
        }
        assert!(absent.lock().len() <= CAPACITY, "bounded");
    }
}

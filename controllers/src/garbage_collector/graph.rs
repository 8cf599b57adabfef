//! The ownership graph: every object with its owners, and who depends on whom, built from the
//! watches. Changes to it yield the work the collector must do.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use crate::discovery::Resource;

pub const FOREGROUND: &str = "foregroundDeletion";
pub const ORPHAN: &str = "orphan";

/// One object as the collector sees it.
#[derive(Debug, Clone)]
pub struct Node {
    pub uid: String,
    pub resource: Arc<Resource>,
    pub namespace: Option<String>,
    pub name: String,
    pub owners: Vec<OwnerReference>,
    pub deleting: bool,
    pub finalizers: Vec<String>,
}

impl Node {
    pub fn has_finalizer(&self, name: &str) -> bool {
        self.finalizers.iter().any(|f| f == name)
    }

    /// Being deleted in the foreground: waits for its blocking dependents.
    pub fn deleting_dependents(&self) -> bool {
        self.deleting && self.has_finalizer(FOREGROUND)
    }

    /// Being deleted with a finalizer the collector acts on.
    fn needs_owner_work(&self) -> bool {
        self.deleting && (self.has_finalizer(FOREGROUND) || self.has_finalizer(ORPHAN))
    }
}

/// A unit of collector work, by object UID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Work {
    /// Check whether a dependent's owners still exist, and delete or fix it if not.
    AttemptToDelete(String),
    /// Carry out an owner's foreground deletion or orphaning.
    ProcessOwner(String),
}

#[derive(Debug, Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
    /// Owner UID → UIDs of objects naming it as owner.
    dependents: HashMap<String, HashSet<String>>,
}

impl Graph {
    pub fn get(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    pub fn dependents(&self, uid: &str) -> Vec<&Node> {
        self.dependents.get(uid).into_iter().flatten().filter_map(|d| self.nodes.get(d)).collect()
    }

    /// UIDs of the nodes of one resource kind.
    pub fn uids_of(&self, resource: &Resource) -> Vec<String> {
        self.nodes.values().filter(|n| n.resource.api == resource.api).map(|n| n.uid.clone()).collect()
    }

    /// Records an added or changed object.
    pub fn upsert(&mut self, node: Node) -> Vec<Work> {
        let mut work = Vec::new();
        let previous = self.nodes.get(&node.uid);
        let owners_changed = previous.is_none_or(|p| p.owners != node.owners);
        let deletion_changed = previous.is_none_or(|p| p.deleting != node.deleting || p.finalizers != node.finalizers);
        let old_owners: Vec<String> = previous.map(|p| p.owners.iter().map(|o| o.uid.clone()).collect()).unwrap_or_default();

        if !node.owners.is_empty() && (owners_changed || deletion_changed) {
            work.push(Work::AttemptToDelete(node.uid.clone()));
        }
        if node.needs_owner_work() && deletion_changed {
            work.push(Work::ProcessOwner(node.uid.clone()));
        }
        for gone in old_owners.iter().filter(|o| !node.owners.iter().any(|n| &n.uid == *o)) {
            self.unlink(gone, &node.uid);
            // An owner waiting on this dependent may now be free to go.
            if self.nodes.get(gone).is_some_and(Node::needs_owner_work) {
                work.push(Work::ProcessOwner(gone.clone()));
            }
        }
        for owner in &node.owners {
            self.dependents.entry(owner.uid.clone()).or_default().insert(node.uid.clone());
        }
        self.nodes.insert(node.uid.clone(), node);
        work
    }

    /// Records a deleted object: its dependents may now be orphans, its owners may be unblocked.
    pub fn remove(&mut self, uid: &str) -> Vec<Work> {
        let mut work = Vec::new();
        let Some(node) = self.nodes.remove(uid) else { return work };
        for dependent in self.dependents.get(uid).into_iter().flatten() {
            work.push(Work::AttemptToDelete(dependent.clone()));
        }
        for owner in &node.owners {
            self.unlink(&owner.uid, uid);
            if self.nodes.get(&owner.uid).is_some_and(Node::needs_owner_work) {
                work.push(Work::ProcessOwner(owner.uid.clone()));
            }
        }
        work
    }

    fn unlink(&mut self, owner: &str, dependent: &str) {
        if let Some(set) = self.dependents.get_mut(owner) {
            set.remove(dependent);
            if set.is_empty() {
                self.dependents.remove(owner);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use kube::discovery::ApiResource;

    use super::*;

    pub fn resource(kind: &str) -> Arc<Resource> {
        Arc::new(Resource {
            api: ApiResource { group: "apps".into(), version: "v1".into(), api_version: "apps/v1".into(), kind: kind.into(), plural: format!("{}s", kind.to_lowercase()) },
            namespaced: true,
            verbs: vec![],
        })
    }

    pub fn owner_ref(uid: &str, block: bool) -> OwnerReference {
        OwnerReference { api_version: "apps/v1".into(), kind: "Deployment".into(), name: "d".into(), uid: uid.into(), controller: Some(true), block_owner_deletion: Some(block) }
    }

    pub fn node(uid: &str, owners: Vec<OwnerReference>, deleting: bool, finalizers: &[&str]) -> Node {
        Node {
            uid: uid.into(),
            resource: resource("ReplicaSet"),
            namespace: Some("ns".into()),
            name: uid.into(),
            owners,
            deleting,
            finalizers: finalizers.iter().map(|f| f.to_string()).collect(),
        }
    }

    #[test]
    fn new_dependent_is_checked_once() {
        let mut g = Graph::default();
        let n = node("rs", vec![owner_ref("d", true)], false, &[]);
        assert_eq!(g.upsert(n.clone()), vec![Work::AttemptToDelete("rs".into())]);
        assert!(g.upsert(n).is_empty(), "unchanged update does nothing");
        assert_eq!(g.dependents("d").len(), 1);
    }

    #[test]
    fn owner_deletion_wakes_dependents() {
        let mut g = Graph::default();
        g.upsert(node("d", vec![], false, &[]));
        g.upsert(node("rs", vec![owner_ref("d", true)], false, &[]));
        assert_eq!(g.remove("d"), vec![Work::AttemptToDelete("rs".into())]);
    }

    #[test]
    fn foreground_owner_is_processed_and_unblocked() {
        let mut g = Graph::default();
        g.upsert(node("rs", vec![owner_ref("d", true)], false, &[]));
        let work = g.upsert(node("d", vec![], true, &[FOREGROUND]));
        assert_eq!(work, vec![Work::ProcessOwner("d".into())]);
        assert_eq!(g.remove("rs"), vec![Work::ProcessOwner("d".into())]);
        assert!(g.dependents("d").is_empty());
    }

    #[test]
    fn dropping_an_owner_reference_unlinks() {
        let mut g = Graph::default();
        g.upsert(node("d", vec![], true, &[ORPHAN]));
        g.upsert(node("rs", vec![owner_ref("d", true)], false, &[]));
        let work = g.upsert(node("rs", vec![], false, &[]));
        assert_eq!(work, vec![Work::ProcessOwner("d".into())]);
        assert!(g.dependents("d").is_empty());
    }
}

//! What to do with a dependent given the state of its owners, after upstream's rules.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::PropagationPolicy;

use super::graph::{FOREGROUND, ORPHAN};

/// An owner as found in the graph or, failing that, the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerState {
    /// Exists, with the UID the reference names.
    Exists,
    /// Exists and is being deleted in the foreground, waiting for its dependents.
    WaitingForDependents,
    /// Gone, or replaced by a different object under the same name.
    Absent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// At least one owner is alive and nothing needs fixing.
    Keep,
    /// Some owners are alive; drop the references (by UID) to the others.
    RemoveOwners(Vec<String>),
    /// No owner is alive: delete the dependent.
    Delete(Policy),
}

/// The propagation to delete a dependent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Background,
    Foreground,
    Orphan,
}

impl From<Policy> for PropagationPolicy {
    fn from(p: Policy) -> Self {
        match p {
            Policy::Background => PropagationPolicy::Background,
            Policy::Foreground => PropagationPolicy::Foreground,
            Policy::Orphan => PropagationPolicy::Orphan,
        }
    }
}

/// Decides the fate of a dependent. `has_dependents` tells whether the dependent owns others itself
/// (then a foreground-deleting owner's wait must cascade through it).
pub fn verdict(owners: &[(OwnerReference, OwnerState)], dependent_finalizers: &[String], has_dependents: bool) -> Verdict {
    if owners.is_empty() {
        return Verdict::Keep;
    }
    let solid = owners.iter().any(|(_, s)| *s == OwnerState::Exists);
    let not_solid: Vec<String> = owners.iter().filter(|(_, s)| *s != OwnerState::Exists).map(|(r, _)| r.uid.clone()).collect();
    if solid {
        return if not_solid.is_empty() { Verdict::Keep } else { Verdict::RemoveOwners(not_solid) };
    }
    let waiting = owners.iter().any(|(_, s)| *s == OwnerState::WaitingForDependents);
    if waiting && has_dependents {
        return Verdict::Delete(Policy::Foreground);
    }
    let has = |f: &str| dependent_finalizers.iter().any(|x| x == f);
    Verdict::Delete(if has(ORPHAN) {
        Policy::Orphan
    } else if has(FOREGROUND) {
        Policy::Foreground
    } else {
        Policy::Background
    })
}

#[cfg(test)]
mod tests {
    use super::super::graph::tests::owner_ref;
    use super::*;

    #[test]
    fn verdicts() {
        use OwnerState::*;
        let a = owner_ref("a", true);
        let b = owner_ref("b", true);
        // (name, owners and their states, dependent's finalizers, dependent has dependents, verdict)
        type Case = (&'static str, Vec<(OwnerReference, OwnerState)>, Vec<String>, bool, Verdict);
        let cases: Vec<Case> = vec![
            ("no owners", vec![], vec![], false, Verdict::Keep),
            ("owner alive", vec![(a.clone(), Exists)], vec![], false, Verdict::Keep),
            ("owner gone", vec![(a.clone(), Absent)], vec![], false, Verdict::Delete(Policy::Background)),
            ("one of two gone", vec![(a.clone(), Exists), (b.clone(), Absent)], vec![], false, Verdict::RemoveOwners(vec!["b".into()])),
            ("alive plus waiting", vec![(a.clone(), Exists), (b.clone(), WaitingForDependents)], vec![], false, Verdict::RemoveOwners(vec!["b".into()])),
            ("waiting owner, dependent has dependents", vec![(a.clone(), WaitingForDependents)], vec![], true, Verdict::Delete(Policy::Foreground)),
            ("waiting owner, leaf dependent", vec![(a.clone(), WaitingForDependents)], vec![], false, Verdict::Delete(Policy::Background)),
            ("gone, dependent asks orphan", vec![(a.clone(), Absent)], vec![ORPHAN.into()], false, Verdict::Delete(Policy::Orphan)),
            ("gone, dependent asks foreground", vec![(a, Absent)], vec![FOREGROUND.into()], false, Verdict::Delete(Policy::Foreground)),
        ];
        for (name, owners, finalizers, has_deps, want) in cases {
            assert_eq!(verdict(&owners, &finalizers, has_deps), want, "{name}");
        }
    }
}

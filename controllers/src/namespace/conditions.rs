//! The deletion conditions a terminating namespace reports, so `kubectl describe ns` says what
//! it is waiting for.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::NamespaceCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// What one resource kind still holds in the namespace after a deletion pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leftover {
    /// `resource` or `resource.group`, like upstream's GroupResource.
    pub resource: String,
    pub remaining: usize,
    /// Finalizer name → objects carrying it.
    pub finalizers: BTreeMap<String, usize>,
    /// Why deleting or listing failed, if it did.
    pub error: Option<String>,
}

fn condition(type_: &str, failing: bool, reason: &str, message: String, now: Timestamp) -> NamespaceCondition {
    NamespaceCondition {
        type_: type_.to_string(),
        status: if failing { "True" } else { "False" }.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message),
        last_transition_time: Some(Time(now)),
    }
}

/// The five deletion conditions for one pass; `discovery_error` is set when discovery failed.
pub fn compute(leftovers: &[Leftover], discovery_error: Option<&str>, now: Timestamp) -> Vec<NamespaceCondition> {
    let mut out = Vec::new();
    out.push(match discovery_error {
        Some(e) => condition("NamespaceDeletionDiscoveryFailure", true, "DiscoveryFailed", format!("Discovery failed for some groups: {e}"), now),
        None => condition("NamespaceDeletionDiscoveryFailure", false, "ResourcesDiscovered", "All resources successfully discovered".into(), now),
    });
    out.push(condition("NamespaceDeletionGroupVersionParsingFailure", false, "ParsedGroupVersions", "All legacy kube types successfully parsed".into(), now));

    let errors: Vec<String> = leftovers.iter().filter_map(|l| l.error.as_ref().map(|e| format!("{}: {e}", l.resource))).collect();
    out.push(if errors.is_empty() {
        condition("NamespaceDeletionContentFailure", false, "ContentDeleted", "All content successfully deleted, may be waiting on finalization".into(), now)
    } else {
        condition("NamespaceDeletionContentFailure", true, "ContentDeletionFailed", format!("Failed to delete all resource types, {} remaining: {}", errors.len(), errors.join(", ")), now)
    });

    let mut remaining: Vec<String> =
        leftovers.iter().filter(|l| l.remaining > 0).map(|l| format!("{} has {} resource instances", l.resource, l.remaining)).collect();
    remaining.sort();
    out.push(if remaining.is_empty() {
        condition("NamespaceContentRemaining", false, "ContentRemoved", "All content successfully removed".into(), now)
    } else {
        condition("NamespaceContentRemaining", true, "SomeResourcesRemain", format!("Some resources are remaining: {}", remaining.join(", ")), now)
    });

    let mut finalizers: BTreeMap<&str, usize> = BTreeMap::new();
    for (name, count) in leftovers.iter().flat_map(|l| l.finalizers.iter()) {
        *finalizers.entry(name.as_str()).or_default() += count;
    }
    out.push(if finalizers.is_empty() {
        condition("NamespaceFinalizersRemaining", false, "ContentHasNoFinalizers", "All content-preserving finalizers finished".into(), now)
    } else {
        let list: Vec<String> = finalizers.iter().map(|(f, n)| format!("{f} in {n} resource instances")).collect();
        condition("NamespaceFinalizersRemaining", true, "SomeFinalizersRemain", format!("Some content in the namespace has finalizers remaining: {}", list.join(", ")), now)
    });
    out
}

/// Keeps the transition time of conditions whose status did not change, so repeated passes do not
/// look like flapping.
pub fn merge(previous: &[NamespaceCondition], mut next: Vec<NamespaceCondition>) -> Vec<NamespaceCondition> {
    for c in &mut next {
        if let Some(old) = previous.iter().find(|o| o.type_ == c.type_ && o.status == c.status) {
            c.last_transition_time = old.last_transition_time.clone();
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(conds: &'a [NamespaceCondition], type_: &str) -> Option<&'a NamespaceCondition> {
        conds.iter().find(|c| c.type_ == type_)
    }

    #[test]
    fn empty_namespace_is_all_clear() {
        let conds = compute(&[], None, Timestamp::UNIX_EPOCH);
        assert_eq!(conds.len(), 5);
        assert!(conds.iter().all(|c| c.status == "False"), "{conds:?}");
    }

    #[test]
    fn leftovers_are_reported() {
        let leftovers = [
            Leftover { resource: "pods".into(), remaining: 2, ..Default::default() },
            Leftover {
                resource: "widgets.example.com".into(),
                remaining: 1,
                finalizers: BTreeMap::from([("example.com/keep".to_string(), 1)]),
                error: Some("forbidden".into()),
            },
        ];
        let conds = compute(&leftovers, None, Timestamp::UNIX_EPOCH);
        let remaining = find(&conds, "NamespaceContentRemaining").and_then(|c| c.message.clone()).unwrap_or_default();
        assert_eq!(remaining, "Some resources are remaining: pods has 2 resource instances, widgets.example.com has 1 resource instances");
        let finalizers = find(&conds, "NamespaceFinalizersRemaining").map(|c| c.status.clone());
        assert_eq!(finalizers.as_deref(), Some("True"));
        let failure = find(&conds, "NamespaceDeletionContentFailure").and_then(|c| c.reason.clone());
        assert_eq!(failure.as_deref(), Some("ContentDeletionFailed"));
    }

    #[test]
    fn merge_keeps_unchanged_transition_times() {
        let old = compute(&[], None, Timestamp::UNIX_EPOCH);
        let later = Timestamp::from_second(100).unwrap_or(Timestamp::UNIX_EPOCH);
        let merged = merge(&old, compute(&[], None, later));
        assert!(merged.iter().all(|c| c.last_transition_time == Some(Time(Timestamp::UNIX_EPOCH))));
    }
}

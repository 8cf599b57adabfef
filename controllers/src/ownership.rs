//! Controller references and label selectors: who owns what, and what a controller may claim.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::Resource;
use kube::core::{Selector, SelectorExt};
use kube::runtime::reflector::{ObjectRef, Store};

/// The owner reference marked `controller: true`, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references.as_deref()?.iter().find(|r| r.controller == Some(true))
}

/// A workload object that owns the pods its label selector picks.
pub trait SelectsPods: Resource<DynamicType = ()> + Clone + 'static {
    /// The pod selector in testable form; None (empty or invalid) selects nothing.
    fn pod_selector(&self) -> Option<Selector>;
}

/// The API group of an `apiVersion` (`apps/v1` → `apps`, the core `v1` → ``).
pub fn api_group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

/// True if the owner reference `reference` points at an object of kind `K` (same kind and group; any
/// version).
pub fn refers_to<K: Resource<DynamicType = ()>>(reference: &OwnerReference) -> bool {
    reference.kind == K::kind(&()) && api_group(&reference.api_version) == K::group(&())
}

/// The `K` that controls the object with `meta`, if its controller is one (owners share their
/// dependents' namespace).
pub fn controlling<K: Resource<DynamicType = ()>>(meta: &ObjectMeta) -> Option<ObjectRef<K>> {
    let (namespace, owner) = (meta.namespace.as_deref()?, controller_of(meta)?);
    refers_to::<K>(owner).then(|| ObjectRef::new(&owner.name).within(namespace))
}

/// The owners a pod change concerns: its controller if that is a `K`, or — for an orphan — every `K`
/// in its namespace that selects it (one of them may adopt it).
pub fn owners_of_pod<K: SelectsPods>(owners: &Store<K>, pod: &Pod) -> Vec<ObjectRef<K>> {
    let Some(namespace) = pod.metadata.namespace.as_deref() else {
        return Vec::new();
    };
    if controller_of(&pod.metadata).is_some() {
        return controlling::<K>(&pod.metadata).into_iter().collect();
    }
    owners
        .state()
        .iter()
        .filter(|o| o.meta().namespace.as_deref() == Some(namespace))
        .filter(|o| matches(o.pod_selector().as_ref(), pod.metadata.labels.as_ref()))
        .map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect()
}

/// An owner reference that makes `owner` the controller of a dependent and blocks the owner's
/// foreground deletion until the dependent is gone.
pub fn controller_reference(api_version: &str, kind: &str, owner: &ObjectMeta) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        name: owner.name.clone()?,
        uid: owner.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// A label selector in a form that can test labels. An empty selector matches nothing here, as
/// upstream's controllers refuse to adopt with one; an invalid one also matches nothing.
pub fn selector(selector: &LabelSelector) -> Option<Selector> {
    let empty_labels = selector.match_labels.as_ref().is_none_or(BTreeMap::is_empty);
    let empty_exprs = selector.match_expressions.as_ref().is_none_or(Vec::is_empty);
    if empty_labels && empty_exprs {
        return None;
    }
    Selector::try_from(selector.clone()).ok()
}

/// True if `labels` satisfy `selector` (None never matches).
pub fn matches(selector: Option<&Selector>, labels: Option<&BTreeMap<String, String>>) -> bool {
    let empty = BTreeMap::new();
    selector.is_some_and(|s| s.matches(labels.unwrap_or(&empty)))
}

/// What a controller should do with one candidate dependent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Already controlled by us and still selected.
    Owned,
    /// Selected, controlled by nobody, alive: take it.
    Adopt,
    /// Controlled by us but no longer selected: let it go.
    Release,
    /// Not ours to touch.
    Ignore,
}

/// Decides, like upstream's ControllerRefManager, whether a controller with `owner_uid` keeps,
/// adopts, releases or ignores an object. A controller being deleted adopts nothing.
pub fn claim(owner_uid: &str, owner_deleting: bool, selector: Option<&Selector>, meta: &ObjectMeta) -> Claim {
    let selected = matches(selector, meta.labels.as_ref());
    match controller_of(meta) {
        Some(r) if r.uid == owner_uid => {
            if selected || owner_deleting {
                Claim::Owned
            } else {
                Claim::Release
            }
        }
        Some(_) => Claim::Ignore,
        None if selected && !owner_deleting && meta.deletion_timestamp.is_none() => Claim::Adopt,
        None => Claim::Ignore,
    }
}

/// A merge patch that adds `reference` to an object's owners, guarded by the object's UID.
pub fn adopt_patch(meta: &ObjectMeta, reference: &OwnerReference) -> serde_json::Value {
    let mut owners = meta.owner_references.clone().unwrap_or_default();
    owners.push(reference.clone());
    serde_json::json!({ "metadata": { "ownerReferences": owners, "uid": meta.uid, "resourceVersion": meta.resource_version } })
}

/// A merge patch that drops the owner with `owner_uid`, guarded by the object's UID and version.
pub fn release_patch(meta: &ObjectMeta, owner_uid: &str) -> serde_json::Value {
    let owners: Vec<OwnerReference> =
        meta.owner_references.iter().flatten().filter(|r| r.uid != owner_uid).cloned().collect();
    serde_json::json!({ "metadata": { "ownerReferences": owners, "uid": meta.uid, "resourceVersion": meta.resource_version } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controlling_names_only_owners_of_that_kind() {
        use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
        let reference = |api_version: &str, kind: &str| OwnerReference {
            api_version: api_version.into(),
            kind: kind.into(),
            name: "web".into(),
            controller: Some(true),
            ..Default::default()
        };
        let dependent = |namespace: Option<&str>, owner: OwnerReference| ObjectMeta {
            namespace: namespace.map(String::from),
            owner_references: Some(vec![owner]),
            ..Default::default()
        };
        let cases = [
            ("same kind and group", dependent(Some("ns"), reference("apps/v1", "StatefulSet")), Some(ObjectRef::new("web").within("ns"))),
            ("any version of the group", dependent(Some("ns"), reference("apps/v1beta2", "StatefulSet")), Some(ObjectRef::new("web").within("ns"))),
            ("other group", dependent(Some("ns"), reference("example.com/v1", "StatefulSet")), None),
            ("other kind", dependent(Some("ns"), reference("apps/v1", "ReplicaSet")), None),
            ("no namespace", dependent(None, reference("apps/v1", "StatefulSet")), None),
            ("not the controller", dependent(Some("ns"), OwnerReference { controller: None, ..reference("apps/v1", "StatefulSet") }), None),
        ];
        for (name, meta, want) in cases {
            assert_eq!(controlling::<StatefulSet>(&meta), want, "{name}");
        }
        assert_eq!(controlling::<DaemonSet>(&dependent(Some("ns"), reference("apps/v1", "StatefulSet"))), None, "kind is checked per K");
    }

    fn labels(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
        Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    fn meta(labels_: &[(&str, &str)], controller_uid: Option<&str>, deleting: bool) -> ObjectMeta {
        ObjectMeta {
            name: Some("x".into()),
            uid: Some("obj".into()),
            labels: labels(labels_),
            owner_references: controller_uid.map(|uid| {
                vec![OwnerReference {
                    api_version: "apps/v1".into(),
                    kind: "ReplicaSet".into(),
                    name: "rs".into(),
                    uid: uid.into(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]
            }),
            deletion_timestamp: deleting.then_some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)),
            ..Default::default()
        }
    }

    #[test]
    fn claim_decisions() {
        let sel = selector(&LabelSelector { match_labels: labels(&[("app", "web")]), ..Default::default() });
        let cases = [
            ("owned and selected", meta(&[("app", "web")], Some("me"), false), false, Claim::Owned),
            ("owned, no longer selected", meta(&[("app", "db")], Some("me"), false), false, Claim::Release),
            ("owned, owner deleting keeps", meta(&[("app", "db")], Some("me"), false), true, Claim::Owned),
            ("orphan selected", meta(&[("app", "web")], None, false), false, Claim::Adopt),
            ("orphan selected but owner deleting", meta(&[("app", "web")], None, false), true, Claim::Ignore),
            ("orphan being deleted", meta(&[("app", "web")], None, true), false, Claim::Ignore),
            ("orphan not selected", meta(&[("app", "db")], None, false), false, Claim::Ignore),
            ("someone else's", meta(&[("app", "web")], Some("other"), false), false, Claim::Ignore),
        ];
        for (name, m, deleting, want) in cases {
            assert_eq!(claim("me", deleting, sel.as_ref(), &m), want, "{name}");
        }
    }

    #[test]
    fn empty_selector_matches_nothing() {
        let sel = selector(&LabelSelector::default());
        assert!(sel.is_none());
        assert!(!matches(sel.as_ref(), labels(&[("a", "b")]).as_ref()));
    }

    #[test]
    fn release_patch_keeps_other_owners() {
        let mut m = meta(&[], Some("me"), false);
        if let Some(owners) = m.owner_references.as_mut() {
            owners.push(OwnerReference { uid: "other".into(), ..owners[0].clone() });
        }
        let patch = release_patch(&m, "me");
        let owners = patch["metadata"]["ownerReferences"].as_array().map(Vec::len);
        assert_eq!(owners, Some(1));
        assert_eq!(patch["metadata"]["ownerReferences"][0]["uid"], "other");
    }
}

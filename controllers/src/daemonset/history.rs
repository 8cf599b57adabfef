//! A DaemonSet's ControllerRevisions, `<ds>-<hash>`: the template history rolling updates are
//! measured against. Hashing, naming, choosing and pruning are shared with the StatefulSet
//! controller; only the revision's labels differ (a DaemonSet's carry `controller-revision-hash`).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;

use super::pods::REVISION_HASH_LABEL;
use crate::statefulset::revision;

pub use revision::{DEFAULT_HISTORY_LIMIT, Decision, decide, next_number, sort, to_prune};

/// A new revision of `ds` holding its current template, numbered `number`.
pub fn build(ds: &DaemonSet, owner: OwnerReference, number: i64, collision_count: i32) -> ControllerRevision {
    let template = ds.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    let patch = revision::patch_of(&template);
    let hash = revision::hash(&patch, collision_count);
    let mut labels: BTreeMap<String, String> = template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    labels.insert(REVISION_HASH_LABEL.to_string(), hash.clone());
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(revision::name(ds.metadata.name.as_deref().unwrap_or_default(), &hash)),
            namespace: ds.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: ds.metadata.annotations.clone(),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        data: Some(RawExtension(patch)),
        revision: number,
    }
}

/// The hash a revision stands for: its label, else what follows `<ds>-` in its name.
pub fn hash_of(ds_name: &str, revision: &ControllerRevision) -> String {
    let label = revision.metadata.labels.as_ref().and_then(|l| l.get(REVISION_HASH_LABEL)).cloned();
    label.unwrap_or_else(|| {
        let name = revision.metadata.name.as_deref().unwrap_or_default();
        name.strip_prefix(ds_name).and_then(|rest| rest.strip_prefix('-')).unwrap_or(name).to_string()
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::DaemonSetSpec;
    use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};

    use super::*;

    fn ds(image: &str) -> DaemonSet {
        DaemonSet {
            metadata: ObjectMeta { name: Some("agent".into()), namespace: Some("ns".into()), ..Default::default() },
            spec: Some(DaemonSetSpec {
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta { labels: Some([("app".to_string(), "agent".to_string())].into()), ..Default::default() }),
                    spec: Some(PodSpec { containers: vec![Container { name: "c".into(), image: Some(image.into()), ..Default::default() }], ..Default::default() }),
                },
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn revisions_are_named_and_labelled_by_hash() {
        let r = build(&ds("nginx"), OwnerReference::default(), 1, 0);
        let hash = hash_of("agent", &r);
        assert!(!hash.is_empty());
        assert_eq!(r.metadata.name, Some(format!("agent-{hash}")));
        assert_eq!(r.metadata.labels.as_ref().and_then(|l| l.get("app")).map(String::as_str), Some("agent"));
        assert_ne!(hash, hash_of("agent", &build(&ds("nginx:2"), OwnerReference::default(), 2, 0)), "new template, new hash");
        assert_ne!(hash, hash_of("agent", &build(&ds("nginx"), OwnerReference::default(), 1, 1)), "collision count");
        let unlabelled = ControllerRevision { metadata: ObjectMeta { name: Some("agent-xyz".into()), ..Default::default() }, ..Default::default() };
        assert_eq!(hash_of("agent", &unlabelled), "xyz");
    }

    #[test]
    fn same_template_is_reused() {
        let history = vec![build(&ds("v1"), OwnerReference::default(), 1, 0), build(&ds("v2"), OwnerReference::default(), 2, 0)];
        let cases = [("unchanged", "v2", "latest"), ("rollback", "v1", "renumber"), ("new", "v3", "create")];
        for (name, image, want) in cases {
            let got = match decide(&history, &build(&ds(image), OwnerReference::default(), 3, 0)) {
                Decision::Latest(_) => "latest",
                Decision::Renumber(_) => "renumber",
                Decision::Create => "create",
            };
            assert_eq!(got, want, "{name}");
        }
    }
}

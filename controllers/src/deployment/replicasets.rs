//! The replica sets of a deployment: which one runs the current template, what the new one looks
//! like, revisions and the bookkeeping annotations.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::hash;
use super::revision::REVISION_HISTORY;
use crate::ownership;

pub const HASH_LABEL: &str = "pod-template-hash";
pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
const ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";

/// Annotations that belong to the deployment machinery and are never copied onto replica sets.
fn is_bookkeeping(key: &str) -> bool {
    matches!(key, REVISION | DESIRED_REPLICAS | MAX_REPLICAS | REVISION_HISTORY | LAST_APPLIED | ROLLBACK_TO)
}

/// Two templates equal apart from the `pod-template-hash` label.
pub fn same_template(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let strip = |t: &PodTemplateSpec| {
        let mut t = t.clone();
        if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove(HASH_LABEL);
        }
        if let Some(meta) = t.metadata.as_mut()
            && meta.labels.as_ref().is_some_and(BTreeMap::is_empty)
        {
            meta.labels = None;
        }
        t
    };
    strip(a) == strip(b)
}

pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata.annotations.as_ref().and_then(|a| a.get(REVISION)).and_then(|r| r.parse().ok()).unwrap_or(0)
}

pub fn annotation_i32(rs: &ReplicaSet, key: &str) -> Option<i32> {
    rs.metadata.annotations.as_ref()?.get(key)?.parse().ok()
}

pub fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

/// The replica set is controlled by the deployment and runs its current template: a name clash
/// with it is the cache lagging, not a hash collision.
pub fn runs_current_template(d: &Deployment, rs: &ReplicaSet) -> bool {
    let ours = ownership::controller_of(&rs.metadata).is_some_and(|o| Some(o.uid.as_str()) == d.metadata.uid.as_deref());
    let template = d.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    ours && rs.spec.as_ref().and_then(|s| s.template.as_ref()).is_some_and(|t| same_template(t, &template))
}

/// Splits `all` (sorted oldest first) into the replica set running the deployment's template — the
/// oldest such, like upstream — and the rest.
pub fn split_new_old(d: &Deployment, all: &[ReplicaSet]) -> (Option<ReplicaSet>, Vec<ReplicaSet>) {
    let template = d.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    let new_index = all.iter().position(|rs| rs.spec.as_ref().and_then(|s| s.template.as_ref()).is_some_and(|t| same_template(t, &template)));
    let new = new_index.and_then(|i| all.get(i).cloned());
    let old = all.iter().enumerate().filter(|(i, _)| Some(*i) != new_index).map(|(_, rs)| rs.clone()).collect();
    (new, old)
}

/// Copies the deployment's annotations that replica sets carry onto `into` (never removing any);
/// returns whether anything changed.
pub fn copy_annotations(d: &Deployment, into: &mut BTreeMap<String, String>) -> bool {
    let mut changed = false;
    for (k, v) in d.metadata.annotations.iter().flatten().filter(|(k, _)| !is_bookkeeping(k)) {
        if into.get(k) != Some(v) {
            into.insert(k.clone(), v.clone());
            changed = true;
        }
    }
    changed
}

/// The deployment's annotations that replica sets carry, plus the bookkeeping ones.
pub fn annotations(d: &Deployment, revision: i64, desired: i32, max: i32) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> =
        d.metadata.annotations.iter().flatten().filter(|(k, _)| !is_bookkeeping(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
    out.insert(REVISION.to_string(), revision.to_string());
    out.insert(DESIRED_REPLICAS.to_string(), desired.to_string());
    out.insert(MAX_REPLICAS.to_string(), max.to_string());
    out
}

/// The replica set for the deployment's current template: named `<deployment>-<hash>`, labelled and
/// selected by the hash, controlled by the deployment.
pub fn new_replica_set(d: &Deployment, replicas: i32, revision: i64, max: i32) -> Option<ReplicaSet> {
    let spec = d.spec.as_ref()?;
    let collision_count = d.status.as_ref().and_then(|s| s.collision_count);
    let hash = hash::pod_template_hash(&spec.template, collision_count);
    let mut template = spec.template.clone();
    let template_meta = template.metadata.get_or_insert_with(ObjectMeta::default);
    template_meta.labels.get_or_insert_with(BTreeMap::new).insert(HASH_LABEL.to_string(), hash.clone());
    let labels = template_meta.labels.clone();
    let mut selector: LabelSelector = spec.selector.clone();
    selector.match_labels.get_or_insert_with(BTreeMap::new).insert(HASH_LABEL.to_string(), hash.clone());
    let desired = spec.replicas.unwrap_or(1);
    Some(ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("{}-{hash}", d.metadata.name.as_deref()?)),
            namespace: d.metadata.namespace.clone(),
            labels,
            annotations: Some(annotations(d, revision, desired, max)),
            owner_references: Some(vec![ownership::controller_reference("apps/v1", "Deployment", &d.metadata)?]),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            min_ready_seconds: spec.min_ready_seconds,
            selector,
            template: Some(template),
        }),
        status: None,
    })
}

/// Old replica sets beyond `limit` that may be deleted: fully scaled down, settled, oldest revision
/// first.
pub fn history_to_delete(old: &[ReplicaSet], limit: i32) -> Vec<ReplicaSet> {
    let mut candidates: Vec<&ReplicaSet> = old.iter().filter(|rs| rs.metadata.deletion_timestamp.is_none()).collect();
    let excess = candidates.len().saturating_sub(usize::try_from(limit.max(0)).unwrap_or(0));
    candidates.sort_by_key(|rs| revision(rs));
    candidates
        .into_iter()
        .take(excess)
        .filter(|rs| {
            let status = rs.status.clone().unwrap_or_default();
            spec_replicas(rs) == 0 && status.replicas == 0 && status.observed_generation >= rs.metadata.generation
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{DeploymentSpec, ReplicaSetStatus};

    use super::*;

    fn deployment() -> Deployment {
        let labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
        let mut d = Deployment {
            spec: Some(DeploymentSpec {
                replicas: Some(3),
                selector: LabelSelector { match_labels: Some(labels.clone()), ..Default::default() },
                template: PodTemplateSpec { metadata: Some(ObjectMeta { labels: Some(labels), ..Default::default() }), spec: None },
                ..Default::default()
            }),
            ..Default::default()
        };
        d.metadata.name = Some("web".into());
        d.metadata.uid = Some("d-uid".into());
        d.metadata.annotations = Some(BTreeMap::from([(LAST_APPLIED.to_string(), "{}".to_string()), ("team".to_string(), "a".to_string())]));
        d
    }

    #[test]
    fn new_replica_set_shape() {
        let d = deployment();
        let rs = new_replica_set(&d, 3, 1, 4);
        let rs = rs.as_ref();
        let name = rs.and_then(|r| r.metadata.name.clone()).unwrap_or_default();
        let hash = name.strip_prefix("web-").unwrap_or_default().to_string();
        assert!(!hash.is_empty(), "{name}");
        let spec = rs.and_then(|r| r.spec.clone()).unwrap_or_default();
        assert_eq!(spec.selector.match_labels.as_ref().and_then(|l| l.get(HASH_LABEL)), Some(&hash));
        let template_labels = spec.template.and_then(|t| t.metadata).and_then(|m| m.labels).unwrap_or_default();
        assert_eq!(template_labels.get(HASH_LABEL), Some(&hash));
        assert_eq!(template_labels.get("app").map(String::as_str), Some("web"));
        let ann = rs.and_then(|r| r.metadata.annotations.clone()).unwrap_or_default();
        assert_eq!(ann.get(REVISION).map(String::as_str), Some("1"));
        assert_eq!(ann.get(DESIRED_REPLICAS).map(String::as_str), Some("3"));
        assert_eq!(ann.get(MAX_REPLICAS).map(String::as_str), Some("4"));
        assert_eq!(ann.get("team").map(String::as_str), Some("a"));
        assert!(!ann.contains_key(LAST_APPLIED));
        let owner = rs.and_then(|r| r.metadata.owner_references.clone()).unwrap_or_default();
        assert_eq!(owner.len(), 1);
        assert_eq!((owner[0].controller, owner[0].block_owner_deletion), (Some(true), Some(true)));
    }

    #[test]
    fn finds_new_by_template_ignoring_hash() {
        let d = deployment();
        let current = new_replica_set(&d, 3, 2, 4).unwrap_or_default();
        let mut other = d.clone();
        if let Some(spec) = other.spec.as_mut() {
            spec.template.metadata.get_or_insert_with(ObjectMeta::default).labels.get_or_insert_with(BTreeMap::new).insert("v".into(), "2".into());
        }
        let old = new_replica_set(&other, 0, 1, 4).unwrap_or_default();
        let (new, olds) = split_new_old(&d, &[old.clone(), current.clone()]);
        assert_eq!(new.and_then(|r| r.metadata.name), current.metadata.name);
        assert_eq!(olds.len(), 1);
    }

    #[test]
    fn hash_collision_detection() {
        let d = deployment();
        let ours = new_replica_set(&d, 3, 1, 4).unwrap_or_default();
        let mut foreign = ours.clone();
        if let Some(owners) = foreign.metadata.owner_references.as_mut() {
            owners.iter_mut().for_each(|o| o.uid = "other-uid".into());
        }
        let mut other_template = ours.clone();
        if let Some(t) = other_template.spec.as_mut().and_then(|s| s.template.as_mut()) {
            t.metadata.get_or_insert_with(ObjectMeta::default).labels.get_or_insert_with(BTreeMap::new).insert("v".into(), "2".into());
        }
        let cases = [("ours, same template: reuse", &ours, true), ("owned by another", &foreign, false), ("different template", &other_template, false)];
        for (name, rs, want) in cases {
            assert_eq!(runs_current_template(&d, rs), want, "{name}");
        }
        // A raised collision count moves the new replica set to another name.
        let mut bumped = d.clone();
        bumped.status = Some(k8s_openapi::api::apps::v1::DeploymentStatus { collision_count: Some(1), ..Default::default() });
        let renamed = new_replica_set(&bumped, 3, 1, 4).unwrap_or_default();
        assert_ne!(renamed.metadata.name, ours.metadata.name);
        assert!(runs_current_template(&bumped, &renamed), "the renamed set still runs the template");
    }

    #[test]
    fn copies_annotations_without_bookkeeping() {
        let mut d = deployment();
        if let Some(a) = d.metadata.annotations.as_mut() {
            a.insert("kubernetes.io/change-cause".into(), "set image".into());
            a.insert(REVISION.into(), "9".into());
        }
        let mut rs_annotations = BTreeMap::from([(REVISION.to_string(), "2".to_string()), ("kept".to_string(), "x".to_string())]);
        assert!(copy_annotations(&d, &mut rs_annotations), "change-cause is new");
        assert_eq!(rs_annotations.get("kubernetes.io/change-cause").map(String::as_str), Some("set image"));
        assert_eq!(rs_annotations.get(REVISION).map(String::as_str), Some("2"), "revision is not copied");
        assert_eq!(rs_annotations.get("kept").map(String::as_str), Some("x"), "nothing is removed");
        assert!(!rs_annotations.contains_key(LAST_APPLIED));
        assert!(!copy_annotations(&d, &mut rs_annotations), "second copy changes nothing");
    }

    #[test]
    fn history_cleanup_keeps_limit_and_busy_sets() {
        let rs = |rev: i64, replicas: i32| {
            let mut r = ReplicaSet {
                spec: Some(ReplicaSetSpec { replicas: Some(replicas), ..Default::default() }),
                status: Some(ReplicaSetStatus { replicas, ..Default::default() }),
                ..Default::default()
            };
            r.metadata.name = Some(format!("r{rev}"));
            r.metadata.annotations = Some(BTreeMap::from([(REVISION.to_string(), rev.to_string())]));
            r
        };
        let old = [rs(3, 0), rs(1, 0), rs(2, 1), rs(4, 0)];
        let names: Vec<String> = history_to_delete(&old, 1).into_iter().filter_map(|r| r.metadata.name).collect();
        assert_eq!(names, vec!["r1".to_string(), "r3".to_string()], "r2 still has pods");
        assert!(history_to_delete(&old, 10).is_empty());
    }
}

//! ControllerRevisions: the history of a set's pod template. Each revision holds the template as a
//! patch (`{"spec":{"template":{…,"$patch":"replace"}}}`), is named `<set>-<hash>` after a hash of
//! that patch and the set's collision count, and carries an increasing revision number.
//!
//! Upstream hashes the bytes Go's encoder writes; those cannot be reproduced here, so the hash is
//! of serde's rendering of the same patch (stable for a given template), spelled with upstream's
//! alphabet.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use serde_json::Value;

/// The label holding a revision's hash, as upstream.
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";
/// Revisions kept beyond the live ones when the set does not say.
pub const DEFAULT_HISTORY_LIMIT: i32 = 10;
/// Longest name prefix, so `<prefix>-<hash>` stays a valid object name.
const MAX_PREFIX: usize = 223;

/// Upstream's alphabet for name suffixes: no vowels and no look-alike characters.
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// FNV-1 (not 1a), 32 bit, as upstream's revision hash uses.
fn fnv32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, b| hash.wrapping_mul(0x0100_0193) ^ u32::from(*b))
}

/// The patch a revision stores for `template`.
pub fn patch_of(template: &PodTemplateSpec) -> Value {
    let mut template = serde_json::to_value(template).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut template {
        map.insert("$patch".to_string(), Value::String("replace".to_string()));
    }
    serde_json::json!({ "spec": { "template": template } })
}

/// The template a revision stores, if it holds a readable one.
pub fn template_of(revision: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut template = revision.data.as_ref()?.0.get("spec")?.get("template")?.clone();
    if let Value::Object(map) = &mut template {
        map.remove("$patch");
    }
    serde_json::from_value(template).ok()
}

/// The hash naming a revision with `patch`; a different `collision_count` gives a different hash.
pub fn hash(patch: &Value, collision_count: i32) -> String {
    let mut bytes = serde_json::to_vec(patch).unwrap_or_default();
    bytes.extend_from_slice(collision_count.to_string().as_bytes());
    fnv32(&bytes).to_string().bytes().map(|b| char::from(ALPHABET[usize::from(b) % ALPHABET.len()])).collect()
}

/// The name of `set`'s revision with hash `hash`.
pub fn name(set: &str, hash: &str) -> String {
    let prefix: String = set.chars().take(MAX_PREFIX).collect();
    format!("{prefix}-{hash}")
}

/// A new revision of `set` holding its current template, numbered `number`.
pub fn build(set: &StatefulSet, owner: OwnerReference, number: i64, collision_count: i32) -> ControllerRevision {
    let spec = set.spec.clone().unwrap_or_default();
    let patch = patch_of(&spec.template);
    let hash = hash(&patch, collision_count);
    let mut labels: BTreeMap<String, String> = spec.selector.match_labels.clone().unwrap_or_default();
    labels.insert(HASH_LABEL.to_string(), hash.clone());
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(name(set.metadata.name.as_deref().unwrap_or_default(), &hash)),
            namespace: set.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: set.metadata.annotations.clone(),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        data: Some(RawExtension(patch)),
        revision: number,
    }
}

/// Sorts revisions oldest first: by number, then creation time, then name.
pub fn sort(revisions: &mut [ControllerRevision]) {
    revisions.sort_by(|a, b| {
        let created = |r: &ControllerRevision| r.metadata.creation_timestamp.as_ref().map(|t| t.0);
        (a.revision, created(a), &a.metadata.name).cmp(&(b.revision, created(b), &b.metadata.name))
    });
}

/// How to obtain the update revision given the sorted existing `revisions` and the `wanted` one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The newest revision already holds the template: use it as is.
    Latest(String),
    /// An older revision holds it (a rollback): renumber it to make it the newest.
    Renumber(String),
    /// No revision holds it: create one.
    Create,
}

pub fn decide(revisions: &[ControllerRevision], wanted: &ControllerRevision) -> Decision {
    let Some(equal) = revisions.iter().rev().find(|r| r.data == wanted.data) else { return Decision::Create };
    let name = equal.metadata.name.clone().unwrap_or_default();
    if revisions.last().is_some_and(|newest| newest.metadata.name == equal.metadata.name) {
        Decision::Latest(name)
    } else {
        Decision::Renumber(name)
    }
}

/// The number the next revision gets.
pub fn next_number(revisions: &[ControllerRevision]) -> i64 {
    revisions.iter().map(|r| r.revision).max().unwrap_or(0) + 1
}

/// The revisions to delete, oldest first, so that at most `limit` revisions that no pod and neither
/// the current nor the update revision use remain (a negative limit keeps everything).
pub fn to_prune(sorted: &[ControllerRevision], live: &HashSet<String>, limit: i32) -> Vec<String> {
    let history: Vec<&String> = sorted.iter().filter_map(|r| r.metadata.name.as_ref()).filter(|n| !live.contains(*n)).collect();
    let Ok(limit) = usize::try_from(limit) else { return Vec::new() };
    let surplus = history.len().saturating_sub(limit);
    history.into_iter().take(surplus).cloned().collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::StatefulSetSpec;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    use super::*;

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta { labels: Some([("app".to_string(), "web".to_string())].into()), ..Default::default() }),
            spec: Some(PodSpec { containers: vec![Container { name: "c".into(), image: Some(image.into()), ..Default::default() }], ..Default::default() }),
        }
    }

    fn set(image: &str) -> StatefulSet {
        StatefulSet {
            metadata: ObjectMeta { name: Some("web".into()), namespace: Some("ns".into()), ..Default::default() },
            spec: Some(StatefulSetSpec { template: template(image), ..Default::default() }),
            status: None,
        }
    }

    fn revision(image: &str, number: i64) -> ControllerRevision {
        build(&set(image), OwnerReference::default(), number, 0)
    }

    #[test]
    fn fnv1_known_vectors() {
        let cases = [("empty", "", 0x811c_9dc5_u32), ("a", "a", 0x050c_5d7e), ("foobar", "foobar", 0x31f0_b262)];
        for (name, input, want) in cases {
            assert_eq!(fnv32(input.as_bytes()), want, "{name}");
        }
    }

    #[test]
    fn hash_is_stable_and_sensitive() {
        let patch = patch_of(&template("nginx"));
        let a = hash(&patch, 0);
        assert_eq!(a, hash(&patch_of(&template("nginx")), 0), "same template, same hash");
        assert_ne!(a, hash(&patch_of(&template("nginx:2")), 0), "image change");
        assert_ne!(a, hash(&patch, 1), "collision count");
        assert!(!a.is_empty() && a.bytes().all(|b| ALPHABET.contains(&b)), "{a}");
        let r = revision("nginx", 1);
        assert_eq!(r.metadata.name, Some(format!("web-{a}")));
        assert_eq!(r.metadata.labels.as_ref().and_then(|l| l.get(HASH_LABEL)), Some(&a));
    }

    #[test]
    fn template_round_trips_through_the_patch() {
        let r = revision("nginx", 1);
        assert_eq!(r.data.as_ref().map(|d| d.0["spec"]["template"]["$patch"].clone()), Some(Value::String("replace".into())));
        assert_eq!(template_of(&r), Some(template("nginx")));
        assert_eq!(template_of(&ControllerRevision::default()), None);
    }

    #[test]
    fn decisions() {
        let history = vec![revision("v1", 1), revision("v2", 2)];
        let cases = [
            ("unchanged", "v2", Decision::Latest(revision("v2", 0).metadata.name.unwrap_or_default())),
            ("rollback", "v1", Decision::Renumber(revision("v1", 0).metadata.name.unwrap_or_default())),
            ("new template", "v3", Decision::Create),
        ];
        for (name, image, want) in cases {
            assert_eq!(decide(&history, &revision(image, 3)), want, "{name}");
        }
        assert_eq!(decide(&[], &revision("v1", 1)), Decision::Create, "no history");
        assert_eq!(next_number(&history), 3);
        assert_eq!(next_number(&[]), 1);
    }

    #[test]
    fn sorting_and_pruning() {
        let mut history: Vec<ControllerRevision> = (1..=5).rev().map(|n| revision(&format!("v{n}"), n)).collect();
        sort(&mut history);
        let numbers: Vec<i64> = history.iter().map(|r| r.revision).collect();
        assert_eq!(numbers, [1, 2, 3, 4, 5]);
        let names: Vec<String> = history.iter().filter_map(|r| r.metadata.name.clone()).collect();
        let live: HashSet<String> = [names[0].clone(), names[4].clone()].into();
        let cases = [
            ("limit keeps newest history", 2, vec![names[1].clone()]),
            ("limit zero drops all history", 0, vec![names[1].clone(), names[2].clone(), names[3].clone()]),
            ("limit above history", 10, vec![]),
            ("negative keeps all", -1, vec![]),
        ];
        for (name, limit, want) in cases {
            assert_eq!(to_prune(&history, &live, limit), want, "{name}");
        }
    }
}

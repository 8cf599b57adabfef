//! PersistentVolumeClaims from `volumeClaimTemplates`: one per template and ordinal, named
//! `<template>-<set>-<ordinal>`, created before the pod that mounts it and never deleted with it.
//!
//! Ownership follows `persistentVolumeClaimRetentionPolicy.whenDeleted`: Retain (the default)
//! leaves the claim unowned so it outlives the set; Delete makes the set its controller so the
//! garbage collector removes it with the set. (`whenScaled: Delete`, which hands a condemned
//! member's claims to the pod, is not implemented.)

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSetSpec;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::identity;

/// True if the set asks for its claims to go with it.
fn deleted_with_set(spec: &StatefulSetSpec) -> bool {
    spec.persistent_volume_claim_retention_policy.as_ref().and_then(|p| p.when_deleted.as_deref()) == Some("Delete")
}

/// The claims the pod at `ordinal` of the set `set` (name, namespace) mounts.
pub fn for_ordinal(set: &ObjectMeta, spec: &StatefulSetSpec, owner: &OwnerReference, ordinal: i32) -> Vec<PersistentVolumeClaim> {
    let set_name = set.name.as_deref().unwrap_or_default();
    let selector_labels = spec.selector.match_labels.clone().unwrap_or_default();
    spec.volume_claim_templates
        .iter()
        .flatten()
        .filter_map(|template| {
            let template_name = template.metadata.name.as_deref()?;
            let mut labels: BTreeMap<String, String> = template.metadata.labels.clone().unwrap_or_default();
            labels.extend(selector_labels.clone());
            Some(PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(identity::claim_name(template_name, set_name, ordinal)),
                    namespace: set.namespace.clone(),
                    labels: Some(labels),
                    annotations: template.metadata.annotations.clone(),
                    owner_references: deleted_with_set(spec).then(|| vec![owner.clone()]),
                    ..Default::default()
                },
                spec: template.spec.clone(),
                status: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::StatefulSetPersistentVolumeClaimRetentionPolicy;
    use k8s_openapi::api::core::v1::PersistentVolumeClaimSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    use super::*;

    fn spec(when_deleted: Option<&str>) -> StatefulSetSpec {
        StatefulSetSpec {
            selector: LabelSelector { match_labels: Some([("app".to_string(), "web".to_string())].into()), ..Default::default() },
            persistent_volume_claim_retention_policy: when_deleted.map(|w| StatefulSetPersistentVolumeClaimRetentionPolicy {
                when_deleted: Some(w.to_string()),
                when_scaled: None,
            }),
            volume_claim_templates: Some(vec![PersistentVolumeClaim {
                metadata: ObjectMeta { name: Some("www".into()), labels: Some([("tier".to_string(), "data".to_string())].into()), ..Default::default() },
                spec: Some(PersistentVolumeClaimSpec { access_modes: Some(vec!["ReadWriteOnce".into()]), ..Default::default() }),
                status: None,
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn claims_per_template_and_retention() {
        let set = ObjectMeta { name: Some("web".into()), namespace: Some("ns".into()), ..Default::default() };
        let owner = OwnerReference { kind: "StatefulSet".into(), name: "web".into(), uid: "u".into(), controller: Some(true), ..Default::default() };
        let cases = [("default retains", None, false), ("retain", Some("Retain"), false), ("delete with set", Some("Delete"), true)];
        for (name, policy, owned) in cases {
            let claims = for_ordinal(&set, &spec(policy), &owner, 1);
            assert_eq!(claims.len(), 1, "{name}");
            let claim = &claims[0];
            assert_eq!(claim.metadata.name.as_deref(), Some("www-web-1"), "{name}");
            assert_eq!(claim.metadata.namespace.as_deref(), Some("ns"), "{name}");
            let labels = claim.metadata.labels.clone().unwrap_or_default();
            assert_eq!((labels.get("app").map(String::as_str), labels.get("tier").map(String::as_str)), (Some("web"), Some("data")), "{name}");
            assert_eq!(claim.metadata.owner_references.is_some(), owned, "{name}");
            assert!(claim.spec.is_some(), "{name}");
        }
        assert!(for_ordinal(&set, &StatefulSetSpec::default(), &owner, 0).is_empty(), "no templates, no claims");
    }
}

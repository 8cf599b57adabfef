//! A stateful pod's identity: its name `<set>-<ordinal>`, the labels that pin it to its ordinal
//! and revision, its DNS hostname and subdomain, and the claims mounted into it.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSetSpec;
use k8s_openapi::api::core::v1::{PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// The label naming the pod itself, so a Service can select exactly one member.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label carrying the pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
/// The label carrying the name of the ControllerRevision the pod was made from.
pub const REVISION_LABEL: &str = "controller-revision-hash";

/// The first ordinal of the set (`spec.ordinals.start`, default 0).
pub fn start_ordinal(spec: &StatefulSetSpec) -> i32 {
    spec.ordinals.as_ref().and_then(|o| o.start).unwrap_or(0).max(0)
}

/// The name of the pod at `ordinal`.
pub fn pod_name(set: &str, ordinal: i32) -> String {
    format!("{set}-{ordinal}")
}

/// The ordinal of `pod` if its name is `<set>-<non-negative integer>`; other pods are not members.
pub fn ordinal_of(set: &str, pod: &str) -> Option<i32> {
    let digits = pod.strip_prefix(set)?.strip_prefix('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The name of the claim made from the claim template `template` for the pod at `ordinal`.
pub fn claim_name(template: &str, set: &str, ordinal: i32) -> String {
    format!("{template}-{}", pod_name(set, ordinal))
}

/// What a new member pod is made from.
pub struct PodSource<'a> {
    /// The set's name and namespace.
    pub set: &'a ObjectMeta,
    /// The set's spec (service name, claim templates).
    pub spec: &'a StatefulSetSpec,
    /// The pod template of the revision the pod is made at (not necessarily the spec's).
    pub template: &'a PodTemplateSpec,
    /// That revision's name.
    pub revision: &'a str,
    /// The set's controller reference.
    pub owner: OwnerReference,
}

/// The pod at `ordinal`: the template with the member's name, identity labels, hostname and
/// subdomain, and one PersistentVolumeClaim volume per claim template (replacing a template volume
/// of the same name).
pub fn new_pod(source: &PodSource<'_>, ordinal: i32) -> Pod {
    let set_name = source.set.name.clone().unwrap_or_default();
    let name = pod_name(&set_name, ordinal);
    let template_meta = source.template.metadata.clone().unwrap_or_default();
    let mut labels: BTreeMap<String, String> = template_meta.labels.unwrap_or_default();
    labels.insert(POD_NAME_LABEL.to_string(), name.clone());
    labels.insert(POD_INDEX_LABEL.to_string(), ordinal.to_string());
    labels.insert(REVISION_LABEL.to_string(), source.revision.to_string());

    let mut spec = source.template.spec.clone().unwrap_or_default();
    spec.hostname = Some(name.clone());
    spec.subdomain = source.spec.service_name.clone().filter(|s| !s.is_empty());
    let claims: Vec<Volume> = source
        .spec
        .volume_claim_templates
        .iter()
        .flatten()
        .filter_map(|t| t.metadata.name.as_deref())
        .map(|template| Volume {
            name: template.to_string(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim_name(template, &set_name, ordinal),
                read_only: None,
            }),
            ..Default::default()
        })
        .collect();
    if !claims.is_empty() {
        let mut volumes: Vec<Volume> =
            spec.volumes.take().unwrap_or_default().into_iter().filter(|v| !claims.iter().any(|c| c.name == v.name)).collect();
        volumes.extend(claims);
        spec.volumes = Some(volumes);
    }

    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: source.set.namespace.clone(),
            labels: Some(labels),
            annotations: template_meta.annotations,
            finalizers: template_meta.finalizers,
            owner_references: Some(vec![source.owner.clone()]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// The revision a pod was made from (its `controller-revision-hash` label), or "".
pub fn revision_of(pod: &Pod) -> &str {
    pod.metadata.labels.as_ref().and_then(|l| l.get(REVISION_LABEL)).map_or("", String::as_str)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::StatefulSetOrdinals;
    use k8s_openapi::api::core::v1::{Container, PersistentVolumeClaim, PodSpec};

    use super::*;

    #[test]
    fn ordinals_parse_only_members() {
        let cases = [
            ("member", "web", "web-0", Some(0)),
            ("large ordinal", "web", "web-12", Some(12)),
            ("other set", "web", "db-0", None),
            ("set name prefix of another", "web", "web-x-1", None),
            ("no ordinal", "web", "web-", None),
            ("negative", "web", "web--1", None),
            ("generated suffix", "web", "web-abcde", None),
            ("dashed set name", "my-web", "my-web-3", Some(3)),
            ("overflow", "web", "web-99999999999", None),
        ];
        for (name, set, pod, want) in cases {
            assert_eq!(ordinal_of(set, pod), want, "{name}");
        }
    }

    #[test]
    fn start_ordinal_defaults_and_clamps() {
        let spec = |start| StatefulSetSpec { ordinals: Some(StatefulSetOrdinals { start }), ..Default::default() };
        let cases = [("unset", StatefulSetSpec::default(), 0), ("set", spec(Some(5)), 5), ("start unset", spec(None), 0), ("negative", spec(Some(-1)), 0)];
        for (name, s, want) in cases {
            assert_eq!(start_ordinal(&s), want, "{name}");
        }
    }

    fn fixture() -> (ObjectMeta, StatefulSetSpec, PodTemplateSpec) {
        let set = ObjectMeta { name: Some("web".into()), namespace: Some("ns".into()), uid: Some("set-uid".into()), ..Default::default() };
        let template = PodTemplateSpec {
            metadata: Some(ObjectMeta { labels: Some([("app".to_string(), "web".to_string())].into()), ..Default::default() }),
            spec: Some(PodSpec {
                containers: vec![Container { name: "nginx".into(), image: Some("nginx".into()), ..Default::default() }],
                volumes: Some(vec![
                    Volume { name: "www".into(), ..Default::default() },
                    Volume { name: "config".into(), ..Default::default() },
                ]),
                ..Default::default()
            }),
        };
        let spec = StatefulSetSpec {
            service_name: Some("nginx".into()),
            volume_claim_templates: Some(vec![PersistentVolumeClaim {
                metadata: ObjectMeta { name: Some("www".into()), ..Default::default() },
                ..Default::default()
            }]),
            template: template.clone(),
            ..Default::default()
        };
        (set, spec, template)
    }

    #[test]
    fn new_pod_carries_identity() {
        let (set, spec, template) = fixture();
        let owner = OwnerReference { kind: "StatefulSet".into(), name: "web".into(), uid: "set-uid".into(), controller: Some(true), ..Default::default() };
        let source = PodSource { set: &set, spec: &spec, template: &template, revision: "web-abc", owner: owner.clone() };
        let pod = new_pod(&source, 2);
        assert_eq!(pod.metadata.name.as_deref(), Some("web-2"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("ns"));
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        let label = |k: &str| labels.get(k).map(String::as_str);
        assert_eq!((label("app"), label(POD_NAME_LABEL), label(POD_INDEX_LABEL)), (Some("web"), Some("web-2"), Some("2")));
        assert_eq!(revision_of(&pod), "web-abc");
        assert_eq!(pod.metadata.owner_references, Some(vec![owner]));
        let pod_spec = pod.spec.unwrap_or_default();
        assert_eq!((pod_spec.hostname.as_deref(), pod_spec.subdomain.as_deref()), (Some("web-2"), Some("nginx")));
        let volumes = pod_spec.volumes.unwrap_or_default();
        let names: Vec<&str> = volumes.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["config", "www"], "the claim replaces the template's volume of the same name");
        let claim = volumes.iter().find_map(|v| v.persistent_volume_claim.as_ref()).map(|c| c.claim_name.as_str());
        assert_eq!(claim, Some("www-web-2"));
    }

    #[test]
    fn no_service_name_no_subdomain_and_no_claims_keeps_volumes() {
        let (set, mut spec, template) = fixture();
        spec.service_name = Some(String::new());
        spec.volume_claim_templates = None;
        let source = PodSource { set: &set, spec: &spec, template: &template, revision: "r", owner: OwnerReference::default() };
        let pod_spec = new_pod(&source, 0).spec.unwrap_or_default();
        assert_eq!(pod_spec.subdomain, None);
        assert_eq!(pod_spec.volumes.map(|v| v.len()), Some(2));
    }
}

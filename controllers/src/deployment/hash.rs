//! The `pod-template-hash`: a short, stable name suffix for one pod template.
//!
//! Upstream hashes the Go struct's printed form with FNV-32a; that form cannot be reproduced
//! outside Go, so this hashes a canonical JSON rendering instead (struct fields in declaration
//! order, maps sorted), plus the collision count, and spells the number with upstream's alphabet
//! so names look the same (`k8s-nginx-75f95db655`).

use k8s_openapi::api::core::v1::PodTemplateSpec;

/// Upstream's alphabet for name suffixes: no vowels (no words) and no look-alike characters.
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

const FNV_OFFSET: u32 = 0x811c_9dc5;
const FNV_PRIME: u32 = 0x0100_0193;

/// FNV-1a, 32 bit.
pub fn fnv32a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(FNV_OFFSET, |hash, b| (hash ^ u32::from(*b)).wrapping_mul(FNV_PRIME))
}

/// Maps each character of `s` onto the safe alphabet, as upstream's SafeEncodeString does.
pub fn safe_encode(s: &str) -> String {
    s.bytes().map(|b| char::from(ALPHABET[usize::from(b) % ALPHABET.len()])).collect()
}

/// The hash of a pod template; a non-zero `collision_count` yields a different hash so a name clash
/// with a foreign replica set can be escaped.
pub fn pod_template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    // Serialising a typed struct cannot fail; an empty rendering would still hash deterministically.
    let mut bytes = serde_json::to_vec(template).unwrap_or_default();
    if let Some(count) = collision_count {
        bytes.extend_from_slice(&count.to_le_bytes());
    }
    safe_encode(&fnv32a(&bytes).to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(BTreeMap::from([("app".to_string(), "web".to_string())])),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container { name: "c".into(), image: Some(image.into()), ..Default::default() }],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn fnv_known_vectors() {
        let cases = [("empty", "", 0x811c_9dc5_u32), ("a", "a", 0xe40c_292c), ("foobar", "foobar", 0xbf9c_f968)];
        for (name, input, want) in cases {
            assert_eq!(fnv32a(input.as_bytes()), want, "{name}");
        }
    }

    #[test]
    fn encoding_uses_upstream_alphabet() {
        // '0' is byte 48 → 48 % 27 = 21 → '4'; '9' is 57 → 3 → 'f'; so digits become 4-9, b, c, d, f.
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
        let hash = pod_template_hash(&template("nginx"), None);
        assert!(!hash.is_empty() && hash.len() <= 10, "{hash}");
        assert!(hash.bytes().all(|b| ALPHABET.contains(&b)), "{hash}");
    }

    #[test]
    fn hash_is_stable_and_sensitive() {
        let a = pod_template_hash(&template("nginx"), None);
        assert_eq!(a, pod_template_hash(&template("nginx"), None), "same template, same hash");
        assert_ne!(a, pod_template_hash(&template("nginx:2"), None), "image change");
        assert_ne!(a, pod_template_hash(&template("nginx"), Some(1)), "collision count");
    }
}

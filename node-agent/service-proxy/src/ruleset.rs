//! The per-service part of the proxy's table as plain data — chains, affinity sets and map
//! elements — so that two versions can be compared and only the difference sent to the kernel.

use std::collections::BTreeMap;

/// The only table the proxy ever touches.
pub const TABLE: &str = "rudder-proxy";
/// The table's family.
pub const FAMILY: &str = "ip";

/// Cluster IP . protocol . port → verdict.
pub const SERVICE_IPS: &str = "service-ips";
/// Protocol . node port → verdict.
pub const SERVICE_NODEPORTS: &str = "service-nodeports";
/// Cluster IP . protocol . port of services without endpoints → reject.
pub const NO_ENDPOINT_SERVICES: &str = "no-endpoint-services";
/// Protocol . node port of services without endpoints → reject.
pub const NO_ENDPOINT_NODEPORTS: &str = "no-endpoint-nodeports";
/// The base chains that mark and masquerade, and reject.
pub const MARK_FOR_MASQ: &str = "mark-for-masq";
pub const REJECT_CHAIN: &str = "reject-chain";

/// The dynamic part of the table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// Chain name → its rules, in order.
    pub chains: BTreeMap<String, Vec<String>>,
    /// Set name → the statements of its declaration (`type …; flags …; timeout …;`).
    pub sets: BTreeMap<String, String>,
    /// (map, element key) → verdict.
    pub elements: BTreeMap<(&'static str, String), String>,
}

impl Ruleset {
    pub fn chain(&mut self, name: String, rules: Vec<String>) {
        self.chains.insert(name, rules);
    }

    pub fn element(&mut self, map: &'static str, key: String, verdict: String) {
        self.elements.insert((map, key), verdict);
    }

    /// Adds everything of `other` (names never collide between service ports).
    pub fn extend(&mut self, other: &Ruleset) {
        self.chains.extend(other.chains.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.sets.extend(other.sets.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.elements.extend(other.elements.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

/// A short stable name part for a string: 64-bit FNV-1a, as 13 base-32 characters. Stable across
/// restarts and builds, unlike std's hasher, so a restarted proxy finds its own chain names.
pub fn name_hash(s: &str) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (0..13).map(|i| char::from(ALPHABET[((h >> (i * 5)) & 31) as usize])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes() {
        let a = name_hash("default/web:http/tcp");
        assert_eq!(a.len(), 13);
        assert_eq!(a, name_hash("default/web:http/tcp"), "stable");
        assert_ne!(a, name_hash("default/web:http/udp"), "distinct");
        assert!(a.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()), "safe in nft names: {a}");
    }
}

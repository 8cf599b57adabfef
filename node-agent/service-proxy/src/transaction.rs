//! nft scripts that move the table from one [`Ruleset`] to another in one atomic transaction.
//!
//! Order matters inside the transaction: chains and sets are created before anything refers to
//! them, and removed only after every map element and rule that referred to them is gone.

use std::fmt::Write as _;

use crate::ruleset::{FAMILY, Ruleset, TABLE};

/// Replaces the whole table: anything left from an earlier run is dropped, nothing outside the
/// table is touched. `base` is the fixed part ([`crate::render::base`]).
pub fn full(base: &str, desired: &Ruleset) -> String {
    let mut s = String::new();
    // `add` first so that `delete` cannot fail on a fresh host.
    let _ = writeln!(s, "add table {FAMILY} {TABLE}");
    let _ = writeln!(s, "delete table {FAMILY} {TABLE}");
    let _ = writeln!(s, "table {FAMILY} {TABLE} {{");
    s.push_str(base);
    let _ = writeln!(s, "}}");
    s.push_str(&diff(&Ruleset::default(), desired));
    s
}

/// The commands that turn `old` into `new`; empty when they are equal.
pub fn diff(old: &Ruleset, new: &Ruleset) -> String {
    let mut s = String::new();
    let t = format!("{FAMILY} {TABLE}");
    for (name, decl) in new.sets.iter().filter(|(n, _)| !old.sets.contains_key(*n)) {
        let _ = writeln!(s, "add set {t} {name} {{ {decl} }}");
    }
    for name in new.chains.keys().filter(|n| !old.chains.contains_key(*n)) {
        let _ = writeln!(s, "add chain {t} {name}");
    }
    for (name, rules) in &new.chains {
        match old.chains.get(name) {
            Some(previous) if previous == rules => continue,
            Some(_) => {
                let _ = writeln!(s, "flush chain {t} {name}");
            }
            None => {}
        }
        for rule in rules {
            let _ = writeln!(s, "add rule {t} {name} {rule}");
        }
    }
    for ((map, key), verdict) in &old.elements {
        if new.elements.get(&(*map, key.clone())) != Some(verdict) {
            let _ = writeln!(s, "delete element {t} {map} {{ {key} }}");
        }
    }
    for ((map, key), verdict) in &new.elements {
        if old.elements.get(&(*map, key.clone())) != Some(verdict) {
            let _ = writeln!(s, "add element {t} {map} {{ {key} : {verdict} }}");
        }
    }
    let removed: Vec<&String> = old.chains.keys().filter(|n| !new.chains.contains_key(*n)).collect();
    // Flush them all first: a removed chain may jump to another removed chain.
    for name in &removed {
        let _ = writeln!(s, "flush chain {t} {name}");
    }
    for name in &removed {
        let _ = writeln!(s, "delete chain {t} {name}");
    }
    for name in old.sets.keys().filter(|n| !new.sets.contains_key(*n)) {
        let _ = writeln!(s, "delete set {t} {name}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ruleset::SERVICE_IPS;

    fn rs(chains: &[(&str, &[&str])], elements: &[(&str, &str)]) -> Ruleset {
        let mut r = Ruleset::default();
        for (name, rules) in chains {
            r.chain(name.to_string(), rules.iter().map(|s| s.to_string()).collect());
        }
        for (key, verdict) in elements {
            r.element(SERVICE_IPS, key.to_string(), verdict.to_string());
        }
        r
    }

    #[test]
    fn diffs() {
        let one = rs(&[("svc-a", &["goto ep-a"]), ("ep-a", &["dnat to 10.0.0.1:80"])], &[("k1", "goto svc-a")]);
        let cases = [
            ("no change, no commands", one.clone(), one.clone(), vec![]),
            (
                "new service",
                Ruleset::default(),
                one.clone(),
                vec![
                    "add chain ip rudder-proxy ep-a",
                    "add chain ip rudder-proxy svc-a",
                    "add rule ip rudder-proxy ep-a dnat to 10.0.0.1:80",
                    "add rule ip rudder-proxy svc-a goto ep-a",
                    "add element ip rudder-proxy service-ips { k1 : goto svc-a }",
                ],
            ),
            (
                "endpoint changed: only its chain is rewritten",
                one.clone(),
                rs(&[("svc-a", &["goto ep-a"]), ("ep-a", &["dnat to 10.0.0.2:80"])], &[("k1", "goto svc-a")]),
                vec!["flush chain ip rudder-proxy ep-a", "add rule ip rudder-proxy ep-a dnat to 10.0.0.2:80"],
            ),
            (
                "service removed: element, then chains",
                one.clone(),
                Ruleset::default(),
                vec![
                    "delete element ip rudder-proxy service-ips { k1 }",
                    "flush chain ip rudder-proxy ep-a",
                    "flush chain ip rudder-proxy svc-a",
                    "delete chain ip rudder-proxy ep-a",
                    "delete chain ip rudder-proxy svc-a",
                ],
            ),
            (
                "element retargeted",
                one.clone(),
                rs(&[("svc-a", &["goto ep-a"]), ("ep-a", &["dnat to 10.0.0.1:80"])], &[("k1", "goto reject-chain")]),
                vec!["delete element ip rudder-proxy service-ips { k1 }", "add element ip rudder-proxy service-ips { k1 : goto reject-chain }"],
            ),
        ];
        for (name, old, new, want) in cases {
            let got = diff(&old, &new);
            assert_eq!(got.lines().collect::<Vec<_>>(), want, "{name}");
        }
    }

    #[test]
    fn full_replaces_only_its_table() {
        let script = full("\tchain x {\n\t}\n", &rs(&[("svc-a", &["drop"])], &[]));
        let lines: Vec<&str> = script.lines().collect();
        assert_eq!(&lines[..3], ["add table ip rudder-proxy", "delete table ip rudder-proxy", "table ip rudder-proxy {"]);
        assert!(script.contains("add rule ip rudder-proxy svc-a drop"));
        assert!(!script.contains("flush ruleset"), "never flushes other tables");
        assert!(lines.iter().all(|l| !l.contains("table") || l.contains("rudder-proxy")), "only its own table");
    }
}

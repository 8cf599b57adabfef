//! The rendered table kept per service port, so a change re-renders and compares only the ports
//! whose inputs changed: at 1000 services a single endpoint change costs one port's rendering,
//! not a thousand.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::model::{PortKey, ServicePort};
use crate::render;
use crate::ruleset::Ruleset;

/// What was rendered for each service port, with the input it was rendered from.
#[derive(Debug, Default)]
pub struct Rendered(BTreeMap<PortKey, (ServicePort, Ruleset)>);

/// The ports that changed between two renders: their old and their new rules.
#[derive(Debug, Default)]
pub struct Change {
    pub old: Ruleset,
    pub new: Ruleset,
}

impl Rendered {
    /// Renders `ports`, reusing the fragments of ports whose input is unchanged.
    pub fn next(mut self, config: &Config, ports: Vec<ServicePort>) -> (Rendered, Change) {
        let mut change = Change::default();
        let mut next = BTreeMap::new();
        for port in ports {
            let fragment = match self.0.remove(&port.key) {
                Some((previous, rules)) if previous == port => rules,
                Some((_, rules)) => {
                    let fresh = render::services(config, std::slice::from_ref(&port));
                    change.old.extend(&rules);
                    change.new.extend(&fresh);
                    fresh
                }
                None => {
                    let fresh = render::services(config, std::slice::from_ref(&port));
                    change.new.extend(&fresh);
                    fresh
                }
            };
            next.insert(port.key.clone(), (port, fragment));
        }
        // Whatever is left is gone.
        for (_, rules) in self.0.values() {
            change.old.extend(rules);
        }
        (Rendered(next), change)
    }

    /// Every fragment together: the whole dynamic part of the table.
    pub fn whole(&self) -> Ruleset {
        let mut all = Ruleset::default();
        for (_, rules) in self.0.values() {
            all.extend(rules);
        }
        all
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::model::fixtures::{ep, service_port};
    use crate::transaction;

    fn config() -> Config {
        Config::new("n1", Ipv4Addr::new(127, 0, 1, 1), "10.244.0.0/16", &[]).unwrap_or_else(|e| panic!("{e}"))
    }

    fn svc(name: &str, ip: u8, endpoints: &[u8]) -> ServicePort {
        let mut sp = service_port(name, endpoints.iter().map(|e| ep([10, 244, 1, *e], "n1", true, true, false)).collect());
        sp.cluster_ip = Ipv4Addr::new(10, 96, 0, ip);
        sp
    }

    /// The incremental script must be exactly the whole-table diff.
    #[test]
    fn same_script_as_whole_diff() {
        let cases = [
            ("nothing changes", vec![svc("a", 1, &[1, 2]), svc("b", 2, &[3])], vec![svc("a", 1, &[1, 2]), svc("b", 2, &[3])]),
            ("an endpoint goes", vec![svc("a", 1, &[1, 2]), svc("b", 2, &[3])], vec![svc("a", 1, &[1]), svc("b", 2, &[3])]),
            ("a service goes", vec![svc("a", 1, &[1, 2]), svc("b", 2, &[3])], vec![svc("b", 2, &[3])]),
            ("a service comes", vec![svc("b", 2, &[3])], vec![svc("a", 1, &[1]), svc("b", 2, &[3])]),
            // A cluster IP freed by one service and taken by another in the same sync.
            ("cluster IP reused", vec![svc("a", 1, &[1])], vec![svc("b", 1, &[2])]),
            ("last endpoint goes", vec![svc("a", 1, &[1])], vec![svc("a", 1, &[])]),
        ];
        let config = config();
        for (name, before, after) in cases {
            let (first, _) = Rendered::default().next(&config, before.clone());
            let whole_before = first.whole();
            assert_eq!(whole_before, render::services(&config, &before), "{name}: fragments add up to the whole");
            let (second, change) = first.next(&config, after.clone());
            let expected = transaction::diff(&whole_before, &render::services(&config, &after));
            assert_eq!(transaction::diff(&change.old, &change.new), expected, "{name}");
            assert_eq!(second.len(), after.len(), "{name}");
        }
    }
}

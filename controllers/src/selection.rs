//! `--controllers`: which controllers run, with upstream's grammar — a name enables, `-name`
//! disables, `*` stands for every controller that is on by default.

use std::collections::BTreeSet;

/// A controller's canonical name and the older names upstream also accepts.
pub struct Known {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
}

pub const DEPLOYMENT: &str = "deployment-controller";
pub const REPLICASET: &str = "replicaset-controller";
pub const REPLICATIONCONTROLLER: &str = "replicationcontroller-controller";
pub const STATEFULSET: &str = "statefulset-controller";
pub const DAEMONSET: &str = "daemonset-controller";
pub const GARBAGE_COLLECTOR: &str = "garbage-collector-controller";
pub const SERVICEACCOUNT: &str = "serviceaccount-controller";
pub const ROOT_CA_PUBLISHER: &str = "root-ca-certificate-publisher-controller";
pub const NAMESPACE: &str = "namespace-controller";
pub const NODE_LIFECYCLE: &str = "node-lifecycle-controller";
pub const ENDPOINTSLICE: &str = "endpointslice-controller";
pub const ENDPOINTS: &str = "endpoints-controller";
pub const ENDPOINTSLICE_MIRRORING: &str = "endpointslice-mirroring-controller";
pub const PVC_PROTECTION: &str = "persistentvolumeclaim-protection-controller";
pub const PV_PROTECTION: &str = "persistentvolume-protection-controller";
pub const DISRUPTION: &str = "disruption-controller";
pub const RESOURCEQUOTA: &str = "resourcequota-controller";
pub const JOB: &str = "job-controller";
pub const CRONJOB: &str = "cronjob-controller";

/// Every controller rudder has; all are on by default.
pub const KNOWN: &[Known] = &[
    Known { name: DEPLOYMENT, aliases: &["deployment"] },
    Known { name: REPLICASET, aliases: &["replicaset"] },
    Known { name: REPLICATIONCONTROLLER, aliases: &["replicationcontroller"] },
    Known { name: STATEFULSET, aliases: &["statefulset"] },
    Known { name: DAEMONSET, aliases: &["daemonset"] },
    Known { name: GARBAGE_COLLECTOR, aliases: &["garbagecollector", "garbage-collector"] },
    Known { name: SERVICEACCOUNT, aliases: &["serviceaccount"] },
    Known { name: ROOT_CA_PUBLISHER, aliases: &["root-ca-cert-publisher"] },
    Known { name: NAMESPACE, aliases: &["namespace"] },
    Known { name: NODE_LIFECYCLE, aliases: &["nodelifecycle"] },
    Known { name: ENDPOINTSLICE, aliases: &["endpointslice"] },
    Known { name: ENDPOINTS, aliases: &["endpoint"] },
    Known { name: ENDPOINTSLICE_MIRRORING, aliases: &["endpointslicemirroring"] },
    Known { name: PVC_PROTECTION, aliases: &["pvc-protection"] },
    Known { name: PV_PROTECTION, aliases: &["pv-protection"] },
    Known { name: DISRUPTION, aliases: &["disruption"] },
    Known { name: RESOURCEQUOTA, aliases: &["resourcequota"] },
    Known { name: JOB, aliases: &["job"] },
    Known { name: CRONJOB, aliases: &["cronjob"] },
];

/// `--controllers` names something that does not exist.
#[derive(Debug, thiserror::Error)]
#[error("invalid --controllers: unknown controller {0:?} (known: {known})", known = KNOWN.iter().map(|k| k.name).collect::<Vec<_>>().join(", "))]
pub struct Error(String);

fn canonical(name: &str) -> Option<&'static str> {
    KNOWN.iter().find(|k| k.name == name || k.aliases.contains(&name)).map(|k| k.name)
}

/// The canonical names of the enabled controllers.
pub fn enabled(entries: &[String]) -> Result<BTreeSet<&'static str>, Error> {
    let mut on = BTreeSet::new();
    let mut off = BTreeSet::new();
    let mut star = false;
    for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
        if entry == "*" {
            star = true;
        } else if let Some(name) = entry.strip_prefix('-') {
            off.insert(canonical(name).ok_or_else(|| Error(entry.to_string()))?);
        } else {
            on.insert(canonical(entry).ok_or_else(|| Error(entry.to_string()))?);
        }
    }
    Ok(KNOWN.iter().map(|k| k.name).filter(|n| on.contains(n) || (star && !off.contains(n))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(s: &str) -> Vec<String> {
        s.split(',').map(str::to_string).collect()
    }

    #[test]
    fn selections() {
        let cases = [
            ("star is everything", "*", KNOWN.len()),
            ("star minus one", "*,-garbage-collector", KNOWN.len() - 1),
            ("just two, old names", "deployment,replicaset", 2),
            ("new names", "namespace-controller", 1),
            ("explicit beats disable", "*,-namespace,namespace", KNOWN.len()),
            ("nothing", "", 0),
        ];
        for (name, input, want) in cases {
            assert_eq!(enabled(&list(input)).map(|s| s.len()).ok(), Some(want), "{name}");
        }
        assert!(enabled(&list("*,-deployment")).is_ok_and(|s| !s.contains(DEPLOYMENT)));
        assert!(enabled(&list("*")).is_ok_and(|s| s.contains(REPLICATIONCONTROLLER)), "on by default");
        assert!(enabled(&list("replicationcontroller")).is_ok_and(|s| s.len() == 1 && s.contains(REPLICATIONCONTROLLER)), "old name");
        assert!(enabled(&list("statefulset")).is_ok_and(|s| s.len() == 1 && s.contains(STATEFULSET)), "statefulset alias");
        assert!(enabled(&list("*,-statefulset")).is_ok_and(|s| !s.contains(STATEFULSET) && s.contains(REPLICASET)));
        assert!(enabled(&list("daemonset")).is_ok_and(|s| s.len() == 1 && s.contains(DAEMONSET)), "daemonset alias");
        assert!(enabled(&list("*,-daemonset")).is_ok_and(|s| !s.contains(DAEMONSET) && s.contains(STATEFULSET)));
        assert!(enabled(&list("*")).is_ok_and(|s| s.contains(DISRUPTION) && s.contains(RESOURCEQUOTA)), "on by default");
        assert!(enabled(&list("disruption,resourcequota")).is_ok_and(|s| s.len() == 2), "short names");
        assert!(enabled(&list("cronjob")).is_ok_and(|s| s.len() == 1 && s.contains(CRONJOB)), "cronjob alias");
    }

    #[test]
    fn unknown_names_fail() {
        let err = enabled(&list("*,ttl-after-finished")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("--controllers") && err.contains("ttl-after-finished"), "{err}");
        assert!(enabled(&list("-bogus")).is_err());
    }
}

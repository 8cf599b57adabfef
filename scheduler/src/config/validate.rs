//! Start-up validation of the whole configuration; every message names the bad field's path.

use std::collections::BTreeMap;

use component_base::rate_limit::{Invalid, RateLimit};

use super::{API_VERSION, ClientConnectionConfiguration, KIND, KubeSchedulerConfiguration, LeaderElectionConfiguration, Profile, duration, profiles};
use crate::eligibility::DEFAULT_SCHEDULER_NAME;

/// Whether `name` is a lowercase DNS subdomain (what `spec.schedulerName` must be).
pub fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Checks the configuration and resolves its profiles (the default profile when it lists none).
pub fn validate(cfg: &KubeSchedulerConfiguration) -> Result<Vec<Profile>, Vec<String>> {
    let mut errs = Vec::new();
    if cfg.api_version != API_VERSION {
        errs.push(format!("apiVersion: unsupported value {:?}: supported value is {API_VERSION:?}", cfg.api_version));
    }
    if cfg.kind != KIND {
        errs.push(format!("kind: unsupported value {:?}: supported value is {KIND:?}", cfg.kind));
    }
    let global = match cfg.percentage_of_nodes_to_score {
        None => None,
        Some(p) => match u32::try_from(p).ok().filter(|p| *p <= 100) {
            Some(p) => Some(p),
            None => {
                errs.push(format!("percentageOfNodesToScore: invalid value {p}: not in valid range [0-100]"));
                None
            }
        },
    };
    if !cfg.extenders.is_empty() {
        errs.push("extenders: unsupported: rudder does not call scheduler extenders".to_string());
    }
    if let Some(le) = &cfg.leader_election {
        validate_leader_election(le, &mut errs);
    }
    if let Some(cc) = &cfg.client_connection {
        validate_client_connection(cc, &mut errs);
    }
    let (initial_backoff, max_backoff) = cfg.pod_backoff_seconds();
    if initial_backoff <= 0 {
        errs.push(format!("podInitialBackoffSeconds: invalid value {initial_backoff}: must be greater than 0"));
    }
    if max_backoff < initial_backoff {
        errs.push(format!("podMaxBackoffSeconds: invalid value {max_backoff}: must be greater than or equal to podInitialBackoffSeconds ({initial_backoff})"));
    }
    let mut resolved = Vec::new();
    let mut names = BTreeMap::new();
    if cfg.profiles.is_empty() {
        let mut p = Profile::default_named(DEFAULT_SCHEDULER_NAME);
        p.percentage_of_nodes_to_score = global;
        resolved.push(p);
    }
    for (i, pc) in cfg.profiles.iter().enumerate() {
        let name = pc.scheduler_name.as_deref().unwrap_or(DEFAULT_SCHEDULER_NAME);
        if !is_dns_subdomain(name) {
            errs.push(format!("profiles[{i}].schedulerName: invalid value {name:?}: must be a lowercase RFC 1123 subdomain"));
        } else if let Some(first) = names.insert(name.to_string(), i) {
            errs.push(format!("profiles[{i}].schedulerName: duplicate value {name:?} (also profiles[{first}])"));
        }
        match profiles::resolve(i, pc, global) {
            Ok(p) => resolved.push(p),
            Err(e) => errs.extend(e),
        }
    }
    // Every profile shares one queue, so they must agree on its order (as upstream).
    let sort_of = |p: &Profile| p.queue_sort().map(|q| (q.name, q.args.clone()));
    if let Some(first) = resolved.first().map(sort_of) {
        for (i, p) in resolved.iter().enumerate().skip(1) {
            if sort_of(p) != first {
                let name = p.queue_sort().map(|q| q.name).unwrap_or_default();
                errs.push(format!("profiles[{i}].plugins.queueSort: invalid value {name:?}: queueSort must be the same for all profiles"));
            }
        }
    }
    if errs.is_empty() { Ok(resolved) } else { Err(errs) }
}

fn validate_client_connection(cc: &ClientConnectionConfiguration, errs: &mut Vec<String>) {
    let Ok(burst) = u32::try_from(cc.burst.unwrap_or(0)) else {
        errs.push(format!("clientConnection.burst: invalid value {}: must be between 0 and {}", cc.burst.unwrap_or(0), u32::MAX));
        return;
    };
    // The flags' rule (a positive qps needs a burst), reported under the file's field names; a finite
    // negative qps is client-go's "no limit".
    let qps = cc.qps.unwrap_or(0.0);
    let qps = if qps < 0.0 && qps.is_finite() { 0.0 } else { qps };
    match RateLimit::new(qps, burst) {
        Ok(_) => {}
        Err(Invalid::Qps(qps)) => errs.push(format!("clientConnection.qps: invalid value {qps}: must be a finite number")),
        Err(Invalid::Burst(_)) => {
            errs.push("clientConnection.burst: required: must be at least 1 when clientConnection.qps is positive".to_string())
        }
    }
}

fn validate_leader_election(le: &LeaderElectionConfiguration, errs: &mut Vec<String>) {
    let mut parsed = BTreeMap::new();
    for (field, value) in
        [("leaseDuration", &le.lease_duration), ("renewDeadline", &le.renew_deadline), ("retryPeriod", &le.retry_period)]
    {
        let Some(v) = value else { continue };
        match duration::parse(v).filter(|d| !d.is_zero()) {
            Some(d) => {
                parsed.insert(field, d);
            }
            None => errs.push(format!("leaderElection.{field}: invalid value {v:?}: must be a positive duration such as \"15s\"")),
        }
    }
    if let (Some(lease), Some(renew)) = (parsed.get("leaseDuration"), parsed.get("renewDeadline"))
        && renew >= lease
    {
        errs.push("leaderElection.renewDeadline: invalid value: must be less than leaseDuration".to_string());
    }
    if let Some(lock) = le.resource_lock.as_deref().filter(|l| *l != "leases") {
        errs.push(format!("leaderElection.resourceLock: unsupported value {lock:?}: supported value is \"leases\""));
    }
    for (field, value) in [("resourceName", &le.resource_name), ("resourceNamespace", &le.resource_namespace)] {
        if let Some(v) = value.as_deref().filter(|v| !is_dns_subdomain(v)) {
            errs.push(format!("leaderElection.{field}: invalid value {v:?}: must be a lowercase RFC 1123 subdomain"));
        }
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;

//! kube-controller-manager's `--leader-elect*` flags. The elector itself is shared with the scheduler
//! (`component_base::leader_election`).

use std::time::Duration;

use component_base::leader_election::{self, Config, ConfigError};

use crate::node_lifecycle::parse_duration;

/// The Lease rudder-controllers holds by default. Not upstream's `kube-controller-manager`: a stock
/// controller manager left running (or started later) in the same cluster would otherwise share one
/// lease with rudder, and whichever held it would silently keep the other's controllers off — rudder
/// must run *instead of* those controllers, never be mistaken for them.
pub const DEFAULT_LEASE_NAME: &str = "rudder-controller-manager";

/// Leader-election flags, as upstream's controller manager spells them.
#[derive(clap::Args, Debug, Clone)]
pub struct LeaderElectionFlags {
    /// Take part in leader election and run the controllers only while holding the lease (for
    /// replicated deployments).
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub leader_elect: bool,

    /// How long standbys wait, after the last renewal they observed, before taking the lease over.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub leader_elect_lease_duration: Duration,

    /// How long the leader keeps trying to renew before it gives up (and exits); less than the lease
    /// duration.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub leader_elect_renew_deadline: Duration,

    /// How long to wait between attempts to acquire or renew; less than the renew deadline.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub leader_elect_retry_period: Duration,

    /// The kind of lock object; only `leases` (upstream's only choice too).
    #[arg(long, default_value = "leases", value_parser = ["leases"])]
    pub leader_elect_resource_lock: String,

    /// The Lease's name.
    #[arg(long, default_value = DEFAULT_LEASE_NAME)]
    pub leader_elect_resource_name: String,

    /// The Lease's namespace.
    #[arg(long, default_value = "kube-system")]
    pub leader_elect_resource_namespace: String,
}

impl LeaderElectionFlags {
    /// The checked lease configuration with a fresh identity; `None` when `--leader-elect=false`. The
    /// flags are checked either way, so a typo never waits until someone turns election on.
    pub fn into_config(self) -> Result<Option<Config>, ConfigError> {
        let config = Config::new(
            &self.leader_elect_resource_namespace,
            &self.leader_elect_resource_name,
            leader_election::unique_identity(),
            self.leader_elect_lease_duration,
            self.leader_elect_renew_deadline,
            self.leader_elect_retry_period,
        )?;
        Ok(self.leader_elect.then_some(config))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        le: LeaderElectionFlags,
    }

    fn config(args: &[&str]) -> Result<Option<Config>, String> {
        let cli = Cli::try_parse_from(std::iter::once("rudder-controllers").chain(args.iter().copied())).map_err(|e| e.to_string())?;
        cli.le.into_config().map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_upstreams_with_a_rudder_lease() {
        let Ok(Some(cfg)) = config(&[]) else { panic!("defaults must enable leader election") };
        assert_eq!((cfg.namespace.as_str(), cfg.name.as_str()), ("kube-system", DEFAULT_LEASE_NAME));
        assert_eq!(
            (cfg.lease_duration, cfg.renew_deadline, cfg.retry_period),
            (Duration::from_secs(15), Duration::from_secs(10), Duration::from_secs(2))
        );
        assert!(cfg.identity.contains('_'), "identity is host_uuid: {}", cfg.identity);
    }

    #[test]
    fn flags() {
        let cases: [(&str, &[&str], Result<bool, &str>); 8] = [
            ("disabled", &["--leader-elect=false"], Ok(false)),
            ("bare flag enables", &["--leader-elect"], Ok(true)),
            ("custom timing", &["--leader-elect-lease-duration=30s", "--leader-elect-renew-deadline=20s", "--leader-elect-retry-period=500ms"], Ok(true)),
            ("renew not below lease", &["--leader-elect-renew-deadline=15s"], Err("--leader-elect-renew-deadline")),
            ("retry not below renew", &["--leader-elect-retry-period=10s"], Err("--leader-elect-retry-period")),
            ("bad name", &["--leader-elect-resource-name=Rudder"], Err("--leader-elect-resource-name")),
            ("checked even when disabled", &["--leader-elect=false", "--leader-elect-resource-namespace=a.b"], Err("--leader-elect-resource-namespace")),
            ("other lock kind", &["--leader-elect-resource-lock=endpoints"], Err("--leader-elect-resource-lock")),
        ];
        for (case, args, want) in cases {
            match (config(args), want) {
                (Ok(cfg), Ok(enabled)) => assert_eq!(cfg.is_some(), enabled, "case {case}"),
                (Err(e), Err(flag)) => assert!(e.contains(flag), "case {case}: {e}"),
                (got, want) => panic!("case {case}: got {got:?}, want {want:?}"),
            }
        }
    }
}

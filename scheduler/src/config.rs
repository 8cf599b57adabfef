//! `KubeSchedulerConfiguration` (`kubescheduler.config.k8s.io/v1`) as read from `--config`: the subset
//! rudder acts on, decoded strictly (unknown fields are errors, as upstream's strict decoding), then
//! validated once with field-path messages and resolved into runnable profiles.

pub mod duration;
pub mod profiles;
pub mod validate;

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

pub use profiles::{Profile, ResolvedPlugin};

pub const API_VERSION: &str = "kubescheduler.config.k8s.io/v1";
pub const KIND: &str = "KubeSchedulerConfiguration";

/// Failures loading the configuration file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("failed to read scheduler configuration {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a well-formed configuration.
    #[error("failed to decode scheduler configuration {path}: {message}")]
    Decode { path: String, message: String },
    /// The configuration decodes but breaks a rule; every problem is listed with its field path.
    #[error("invalid scheduler configuration: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeSchedulerConfiguration {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub percentage_of_nodes_to_score: Option<i64>,
    #[serde(default)]
    pub leader_election: Option<LeaderElectionConfiguration>,
    #[serde(default)]
    pub profiles: Vec<ProfileConfig>,
    /// Not supported: a non-empty list is an error.
    #[serde(default)]
    pub extenders: Vec<serde_json::Value>,
    /// The backoff after a pod's first failed attempt (default 1); it doubles with each further one.
    #[serde(default)]
    pub pod_initial_backoff_seconds: Option<i64>,
    /// The cap on that backoff (default 10).
    #[serde(default)]
    pub pod_max_backoff_seconds: Option<i64>,
    /// What it sets replaces `--kubeconfig`, `--kube-api-qps` and `--kube-api-burst`.
    #[serde(default)]
    pub client_connection: Option<ClientConnectionConfiguration>,
    // Accepted for compatibility and ignored: rudder does not have these.
    #[serde(default)]
    pub parallelism: Option<i64>,
    #[serde(default)]
    pub enable_profiling: Option<bool>,
    #[serde(default)]
    pub enable_contention_profiling: Option<bool>,
    #[serde(default)]
    pub delay_cache_until_active: Option<bool>,
}

impl KubeSchedulerConfiguration {
    /// `(podInitialBackoffSeconds, podMaxBackoffSeconds)` with upstream's defaults filled in.
    pub fn pod_backoff_seconds(&self) -> (i64, i64) {
        (self.pod_initial_backoff_seconds.unwrap_or(DEFAULT_POD_INITIAL_BACKOFF_SECONDS), self.pod_max_backoff_seconds.unwrap_or(DEFAULT_POD_MAX_BACKOFF_SECONDS))
    }

    /// The queue's backoff after a failed attempt, initial and cap (validated: positive, initial ≤ cap).
    pub fn pod_backoff(&self) -> (Duration, Duration) {
        let (initial, max) = self.pod_backoff_seconds();
        let secs = |s: i64| Duration::from_secs(u64::try_from(s).unwrap_or(0));
        (secs(initial), secs(max))
    }
}

/// Upstream's default `podInitialBackoffSeconds`.
pub const DEFAULT_POD_INITIAL_BACKOFF_SECONDS: i64 = 1;
/// Upstream's default `podMaxBackoffSeconds`.
pub const DEFAULT_POD_MAX_BACKOFF_SECONDS: i64 = 10;

/// `clientConnection`. Unlike upstream, an absent `qps`/`burst` is not defaulted to 50/100: the flags'
/// values (no limit unless given) stand, so a configuration file alone does not throttle rudder.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientConnectionConfiguration {
    #[serde(default)]
    pub kubeconfig: Option<String>,
    /// Requests per second; negative means no limit (client-go's convention), 0 means not set.
    #[serde(default)]
    pub qps: Option<f64>,
    #[serde(default)]
    pub burst: Option<i64>,
    /// Accepted and ignored: rudder always speaks JSON.
    #[serde(default)]
    pub accept_content_types: Option<String>,
    /// Accepted and ignored: rudder always speaks JSON.
    #[serde(default)]
    pub content_type: Option<String>,
}

impl ClientConnectionConfiguration {
    /// The client flags with what this block sets applied over them (validated beforehand).
    pub fn apply(&self, flags: &component_base::CommonFlags) -> component_base::CommonFlags {
        let mut out = flags.clone();
        if let Some(path) = self.kubeconfig.as_deref().filter(|p| !p.is_empty()) {
            out.kubeconfig = Some(path.into());
        }
        match self.qps {
            Some(qps) if qps < 0.0 => out.kube_api_qps = 0.0,
            Some(qps) if qps > 0.0 => out.kube_api_qps = qps,
            _ => {}
        }
        if let Some(burst) = self.burst.and_then(|b| u32::try_from(b).ok()).filter(|b| *b > 0) {
            out.kube_api_burst = burst;
        }
        out
    }
}

/// `leaderElection`: what it sets replaces the corresponding `--leader-elect*` flags.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeaderElectionConfiguration {
    #[serde(default)]
    pub leader_elect: Option<bool>,
    #[serde(default)]
    pub lease_duration: Option<String>,
    #[serde(default)]
    pub renew_deadline: Option<String>,
    #[serde(default)]
    pub retry_period: Option<String>,
    #[serde(default)]
    pub resource_lock: Option<String>,
    #[serde(default)]
    pub resource_name: Option<String>,
    #[serde(default)]
    pub resource_namespace: Option<String>,
}

/// `profiles[]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileConfig {
    #[serde(default)]
    pub scheduler_name: Option<String>,
    #[serde(default)]
    pub percentage_of_nodes_to_score: Option<i64>,
    #[serde(default)]
    pub plugins: Option<Plugins>,
    #[serde(default)]
    pub plugin_config: Vec<PluginConfig>,
}

/// `profiles[].plugins`: one set per extension point, plus `multiPoint` for every point a plugin has.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Plugins {
    #[serde(default)]
    pub multi_point: PluginSet,
    #[serde(default)]
    pub pre_filter: PluginSet,
    #[serde(default)]
    pub filter: PluginSet,
    #[serde(default)]
    pub post_filter: PluginSet,
    #[serde(default)]
    pub pre_score: PluginSet,
    #[serde(default)]
    pub score: PluginSet,
    #[serde(default)]
    pub bind: PluginSet,
    // Extension points rudder has no plugins for: only `disabled` entries are accepted there.
    #[serde(default)]
    pub pre_enqueue: PluginSet,
    #[serde(default)]
    pub queue_sort: PluginSet,
    #[serde(default)]
    pub reserve: PluginSet,
    #[serde(default)]
    pub permit: PluginSet,
    #[serde(default)]
    pub pre_bind: PluginSet,
    #[serde(default)]
    pub post_bind: PluginSet,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSet {
    #[serde(default)]
    pub enabled: Vec<PluginRef>,
    #[serde(default)]
    pub disabled: Vec<PluginRef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginRef {
    #[serde(default)]
    pub name: String,
    /// Score weight; 0 or absent means the plugin's default.
    #[serde(default)]
    pub weight: Option<i64>,
}

/// `profiles[].pluginConfig[]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub args: serde_json::Value,
}

/// Decodes a configuration from YAML (or JSON) text; `origin` names it in errors.
pub fn decode(text: &str, origin: &str) -> Result<KubeSchedulerConfiguration> {
    serde_yaml_ng::from_str(text).map_err(|e| Error::Decode { path: origin.to_string(), message: e.to_string() })
}

/// Reads, decodes, validates and resolves the file at `path` into its profiles.
pub fn load(path: &Path) -> Result<(KubeSchedulerConfiguration, Vec<Profile>)> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: origin.clone(), source })?;
    let cfg = decode(&text, &origin)?;
    let profiles = validate::validate(&cfg).map_err(Error::Invalid)?;
    Ok((cfg, profiles))
}

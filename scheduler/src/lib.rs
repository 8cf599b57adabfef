//! rudder's scheduler: a kube-scheduler replacement laid out as upstream's scheduling framework.

pub mod cache;
pub mod config;
pub mod eligibility;
pub mod events;
pub mod explain;
pub mod framework;
pub mod informers;
pub mod metrics;
pub mod plugins;
pub mod pod_status;
pub mod queue;
pub mod resources;
pub mod scheduler;

#[cfg(test)]
pub(crate) mod testing;

//! End-to-end tests of the seed walkthrough (../shared/FLOW.md) against the local cluster. They run in
//! one binary so they run concurrently, each in its own namespace.

mod common;
mod cronjob;
mod daemonset;
mod disruption;
mod dns;
mod failures;
mod garbage_collection;
mod job;
mod kubelet_api;
mod leader_election;
mod manifests;
mod rollout;
mod namespaces;
mod pod_features;
mod preemption;
mod probes;
mod replication_controller;
mod resource_quota;
mod scaling;
mod scheduling;
mod services;
mod statefulset;
mod topology_spread;
mod volume_protection;
mod walkthrough;

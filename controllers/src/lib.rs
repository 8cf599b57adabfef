//! rudder's controllers: the parts of kube-controller-manager that run Deployments, ReplicaSets,
//! ReplicationControllers, StatefulSets, DaemonSets, garbage collection, namespaces, default service accounts and the root CA
//! bundle.

pub mod api_errors;
pub mod retry;
pub mod events;
pub mod informer;
pub mod ownership;
pub mod replicaset;
pub mod replicationcontroller;
pub mod statefulset;
pub mod daemonset;
pub mod deployment;
pub mod discovery;
pub mod root_ca_publisher;
pub mod serviceaccount;
pub mod namespace;
pub mod garbage_collector;
pub mod selection;
pub mod node_lifecycle;
pub mod endpointslice;
pub mod endpoints;
pub mod endpointslice_mirroring;
pub mod volume_protection;
pub mod disruption;
pub mod resourcequota;
pub mod metrics;
pub mod leader_election;
pub mod job;
pub mod cronjob;

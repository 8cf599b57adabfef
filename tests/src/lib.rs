//! A small harness for end-to-end tests against a running local rudder cluster: the stock apiserver with
//! rudder's controllers, scheduler and node agents (`hack/local-cluster.sh up`).
//!
//! Every test gets its own [`TestNamespace`], deleted when the test ends, so tests share one control
//! plane without seeing each other's objects.

pub mod cluster;
pub mod http;
pub mod kubectl;
pub mod namespace;
pub mod wait;

pub use cluster::Cluster;
pub use namespace::TestNamespace;

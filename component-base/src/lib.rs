//! The edge every rudder component shares, in the spirit of `k8s.io/component-base`: common flags, the API
//! client, structured logging, the `/healthz` `/readyz` `/metrics` endpoints, Lease-based leader election and
//! SIGTERM handling.

pub mod client;
pub mod flags;
pub mod health;
pub mod leader_election;
pub mod logging;
pub mod quantity;
pub mod rate_limit;
pub mod shutdown;

pub use flags::CommonFlags;
pub use health::{HealthServer, Readiness};

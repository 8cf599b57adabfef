//! The pod lifecycle: an explicit state machine ([`state`]), a pure plan of what to do next ([`plan`]),
//! the status it reports ([`status`]), the per-pod workers that carry it out ([`worker`], [`sync`]), and
//! the container probes they run ([`probe`], [`prober`]).

pub mod backoff;
pub mod context;
mod deadline;
pub mod dns;
pub mod env;
pub mod fields;
mod hooks;
pub mod lifecycle;
pub mod plan;
pub mod probe;
pub mod prober;
pub mod runtime_config;
mod start;
pub mod state;
pub mod status;
pub mod sync;
mod termination;
mod unhealthy;
pub mod worker;

//! The pod lifecycle: an explicit state machine ([`state`]), a pure plan of what to do next ([`plan`]),
//! the status it reports ([`status`]), and the per-pod workers that carry it out ([`worker`], [`sync`]).

pub mod backoff;
pub mod context;
pub mod dns;
pub mod env;
pub mod fields;
pub mod lifecycle;
pub mod plan;
pub mod runtime_config;
mod start;
pub mod state;
pub mod status;
pub mod sync;
pub mod worker;

//! The rudder node agent (kubelet replacement): registers the node, keeps its lease, and runs the pods
//! bound to it through a CRI runtime.

pub mod backend;
pub mod config;
pub mod events;
pub mod metrics;
pub mod node;
pub mod objects;
pub mod pod;
pub mod runtime;
pub mod volumes;

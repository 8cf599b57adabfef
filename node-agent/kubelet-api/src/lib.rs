//! The kubelet API a node agent serves to the apiserver (exec, attach, port-forward, logs).

pub mod backend;

pub use backend::{Backend, BackendError, ContainerRef, StreamOptions};

//! The kubelet API a node agent serves to the apiserver (port 10250): TLS with client certificates,
//! Webhook-style authorization, exec/attach/port-forward relayed to the runtime's streaming server,
//! container logs.

pub mod authn;
pub mod authz;
pub mod backend;
mod cache;
mod handler;
pub mod logs;
pub mod query;
mod relay;
mod response;
pub mod routes;
mod server;
mod tls;

pub use backend::{Backend, BackendError, ContainerRef, StreamOptions};
pub use handler::Auth;
pub use server::{Error, Server, ServerConfig, serve};

//! This node in the API: the Node object (registration and periodic status) and its heartbeat Lease.

pub mod images;
pub mod lease;
pub mod machine;
pub mod registration;

/// Failures talking to the API about the Node.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to {action} node {node}: {source}")]
    Node {
        action: &'static str,
        node: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to {action} lease kube-node-lease/{node}: {source}")]
    Lease {
        action: &'static str,
        node: String,
        #[source]
        source: kube::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

//! End-to-end tests that disturb the whole cluster, so they run one at a time after the others.

#[path = "../e2e/common.rs"]
mod common;
mod node_failure;

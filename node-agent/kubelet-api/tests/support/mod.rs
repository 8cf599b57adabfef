//! Test doubles for the kubelet API server: certificates, a runtime streaming server, a TLS client, and
//! an in-memory backend and authorizer.

#![allow(dead_code, clippy::unwrap_used)]

pub mod client;
pub mod fakes;
pub mod pki;
pub mod stream_server;

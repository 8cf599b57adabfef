//! Container logs: the CRI log file format and serving it with `kubectl logs` options.

pub mod cri;
pub mod stream;

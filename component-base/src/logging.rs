//! Structured logging through `tracing`, filtered by `RUST_LOG` (default `info`).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; `json` selects machine-readable lines.
pub fn init(format: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second init (as in tests) keeps the first subscriber; that is not an error worth reporting.
    let _ = if format == "json" { builder.json().try_init() } else { builder.try_init() };
}

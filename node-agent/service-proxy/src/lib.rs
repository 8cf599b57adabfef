//! rudder's service proxy: Services and EndpointSlices become nftables rules in one table of its
//! own (`table ip rudder-proxy`), rendered as pure data, then applied in one `nft -f` transaction.

pub mod config;
pub mod incremental;
pub mod model;
pub mod nft;
pub mod render;
pub mod ruleset;
pub mod sync;
pub mod transaction;

//! The proxy's validated settings: parsed once from flags, every error naming its flag.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// A bad flag value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A CIDR did not parse.
    #[error("invalid {flag}: {value:?} is not an IPv4 CIDR (like 10.244.0.0/16)")]
    Cidr { flag: &'static str, value: String },
    /// A required value is empty.
    #[error("invalid {0}: must not be empty")]
    Empty(&'static str),
}

/// An IPv4 network, kept normalised (host bits cleared) so it renders as nft expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Cidr {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl FromStr for Ipv4Cidr {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, p.parse::<u8>().map_err(|_| ())?),
            None => (s, 32),
        };
        let addr: Ipv4Addr = addr.parse().map_err(|_| ())?;
        if prefix > 32 {
            return Err(());
        }
        let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
        Ok(Self { network: Ipv4Addr::from(u32::from(addr) & mask), prefix })
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix == 32 { write!(f, "{}", self.network) } else { write!(f, "{}/{}", self.network, self.prefix) }
    }
}

/// What the rule rendering needs to know about this node.
#[derive(Debug, Clone)]
pub struct Config {
    /// Endpoints on this node are the "local" ones for the Local traffic policies.
    pub node_name: String,
    /// Pod traffic (from this range) reaches cluster IPs without masquerade; anything else is
    /// masqueraded so replies come back through this node.
    pub cluster_cidr: Option<Ipv4Cidr>,
    /// Destination addresses on which NodePorts are served.
    pub nodeport_addresses: Vec<Ipv4Cidr>,
}

impl Config {
    /// Validates the flag values; NodePorts default to the node IP alone.
    pub fn new(node_name: &str, node_ip: Ipv4Addr, cluster_cidr: &str, nodeport_addresses: &[String]) -> Result<Self, Error> {
        if node_name.trim().is_empty() {
            return Err(Error::Empty("--node-name"));
        }
        let cidr = |flag, value: &str| value.trim().parse::<Ipv4Cidr>().map_err(|()| Error::Cidr { flag, value: value.to_string() });
        let cluster_cidr = (!cluster_cidr.trim().is_empty()).then(|| cidr("--cluster-cidr", cluster_cidr)).transpose()?;
        let mut nodeport_addresses = nodeport_addresses
            .iter()
            .filter(|a| !a.trim().is_empty())
            .map(|a| cidr("--nodeport-addresses", a))
            .collect::<Result<Vec<_>, _>>()?;
        if nodeport_addresses.is_empty() {
            nodeport_addresses.push(Ipv4Cidr { network: node_ip, prefix: 32 });
        }
        Ok(Self { node_name: node_name.to_string(), cluster_cidr, nodeport_addresses })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let cases = [
            ("network", "10.244.0.0/16", Some("10.244.0.0/16")),
            ("host bits cleared", "10.244.3.7/16", Some("10.244.0.0/16")),
            ("bare address", "127.0.1.1", Some("127.0.1.1")),
            ("prefix too long", "10.0.0.0/33", None),
            ("not an address", "ten/8", None),
            ("IPv6", "fd00::/64", None),
        ];
        for (name, input, want) in cases {
            assert_eq!(input.parse::<Ipv4Cidr>().ok().map(|c| c.to_string()).as_deref(), want, "{name}");
        }
    }

    #[test]
    fn config() {
        let ip = Ipv4Addr::new(127, 0, 1, 1);
        let c = Config::new("n1", ip, "10.244.0.0/16", &[]);
        assert!(c.as_ref().is_ok_and(|c| c.nodeport_addresses == vec![Ipv4Cidr { network: ip, prefix: 32 }]), "node IP by default");
        let err = Config::new("n1", ip, "10.244.0.0/40", &[]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("--cluster-cidr"), "{err}");
        let err = Config::new("n1", ip, "", &["x".into()]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("--nodeport-addresses"), "{err}");
        assert!(Config::new(" ", ip, "", &[]).is_err(), "empty node name");
        assert!(Config::new("n1", ip, "", &[]).is_ok_and(|c| c.cluster_cidr.is_none()), "no cluster CIDR");
    }
}

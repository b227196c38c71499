//! IP networks in CIDR notation (`10.0.0.0/8`, `::1`), for the trusted-proxy allow list. The
//! parsing and matching are `ipnet`'s; this type adds what the allow list needs on top: a bare
//! address means a network of one, IPv4-mapped IPv6 peers match IPv4 networks, and a bad entry
//! is a configuration error naming the setting.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use crate::HttpError;

/// An address with a prefix length; a bare address is a network of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpCidr(IpNet);

impl IpCidr {
    /// Whether `addr` lies in this network. IPv4-mapped IPv6 peers (`::ffff:10.0.0.1`) match
    /// IPv4 networks, since dual-stack listeners report IPv4 clients that way.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(addr),
            v4 => v4,
        };
        self.0.contains(&addr)
    }
}

impl FromStr for IpCidr {
    type Err = HttpError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let network = if s.contains('/') {
            s.parse::<IpNet>().ok()
        } else {
            s.parse::<IpAddr>().ok().map(IpNet::from)
        };
        network.map(Self).ok_or_else(|| HttpError::InvalidConfig {
            setting: "trusted_proxies",
            reason: format!("{s:?} is not an IP address or CIDR network"),
        })
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(network: &str, addr: &str, expected: bool) {
        let cidr: IpCidr = network.parse().unwrap();
        assert_eq!(
            cidr.contains(addr.parse().unwrap()),
            expected,
            "{network} ∋ {addr}"
        );
    }

    #[test]
    fn membership() {
        check("10.0.0.0/8", "10.200.3.4", true);
        check("10.0.0.0/8", "11.0.0.1", false);
        check("127.0.0.1", "127.0.0.1", true);
        check("127.0.0.1", "127.0.0.2", false);
        check("0.0.0.0/0", "8.8.8.8", true);
        check("192.168.1.0/24", "::ffff:192.168.1.9", true);
        check("::1", "::1", true);
        check("fd00::/8", "fd12::1", true);
        check("fd00::/8", "fe80::1", false);
        check("10.0.0.0/8", "::1", false);
    }

    #[test]
    fn parsing_rejects_junk() {
        for junk in [
            "",
            "10.0.0.0/",
            "10.0.0.0/33",
            "::/129",
            "host.local",
            "10.0.0.0/-1",
        ] {
            assert!(junk.parse::<IpCidr>().is_err(), "{junk:?}");
        }
        assert_eq!(
            "10.1.0.0/16".parse::<IpCidr>().unwrap().to_string(),
            "10.1.0.0/16"
        );
        assert_eq!(
            "127.0.0.1".parse::<IpCidr>().unwrap().to_string(),
            "127.0.0.1/32"
        );
    }
}

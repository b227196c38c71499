//! IP networks in CIDR notation (`10.0.0.0/8`, `::1`), for the trusted-proxy allow list.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::HttpError;

/// An address with a prefix length; a bare address is a network of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpCidr {
    network: IpAddr,
    prefix: u8,
}

impl IpCidr {
    /// Whether `addr` lies in this network. IPv4-mapped IPv6 peers (`::ffff:10.0.0.1`) match
    /// IPv4 networks, since dual-stack listeners report IPv4 clients that way.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(addr),
            v4 => v4,
        };
        match (self.network, addr) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_matches(u32::from(net).into(), u32::from(ip).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_matches(u128::from(net), u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// Compares the top `prefix` bits of two addresses `width` bits wide.
fn prefix_matches(network: u128, addr: u128, prefix: u8, width: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = u32::from(width - prefix);
    (network >> shift) == (addr >> shift)
}

impl FromStr for IpCidr {
    type Err = HttpError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || HttpError::InvalidConfig {
            setting: "trusted_proxies",
            reason: format!("{s:?} is not an IP address or CIDR network"),
        };
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let network: IpAddr = addr.parse().map_err(|_| invalid())?;
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().map_err(|_| invalid())?,
            None => width,
        };
        if prefix > width {
            return Err(invalid());
        }
        Ok(Self { network, prefix })
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
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
    }
}

//! Addresses with a prefix length, for subnets and interface addresses.

use std::net::IpAddr;

/// An address with a prefix length: a subnet (`10.0.0.0/24`) or an interface's address
/// (`10.0.0.2/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    /// The address.
    pub addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Its prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is in this subnet.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Cidr, String> {
        let bad = || {
            format!("Invalid subnet {text:?}: expected an address and a prefix length, such as 10.0.0.0/24")
        };
        let (addr, prefix) = text.split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr { addr, prefix })
    }
}

impl TryFrom<String> for Cidr {
    type Error = String;

    fn try_from(text: String) -> Result<Cidr, String> {
        text.parse()
    }
}

impl From<Cidr> for String {
    fn from(cidr: Cidr) -> String {
        cidr.to_string()
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_parse_and_contain() {
        let cases: &[(&str, &str, bool)] = &[
            ("10.0.0.0/24", "10.0.0.7", true),
            ("10.0.0.0/24", "10.0.1.7", false),
            ("10.0.0.0/0", "192.0.2.1", true),
            ("10.0.0.5/32", "10.0.0.5", true),
            ("fd00::/64", "fd00::9", true),
            ("fd00::/64", "fd01::9", false),
            ("fd00::/64", "10.0.0.1", false),
        ];
        for (net, ip, want) in cases {
            assert_eq!(cidr(net).contains(ip.parse().unwrap()), *want, "{net} {ip}");
        }
        for bad in ["10.0.0.0", "10.0.0.0/33", "x/24", "fd00::/129", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?}");
        }
    }
}

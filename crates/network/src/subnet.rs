//! Addresses with prefixes: parsing, overlap, and choosing a free private subnet for `auto`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address with its prefix length, such as `10.12.3.1/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

fn width(addr: &IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

fn bits(addr: &IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u32::from(*a) as u128,
        IpAddr::V6(a) => u128::from(*a),
    }
}

fn from_bits(v4: bool, v: u128) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(v as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(v))
    }
}

fn mask(w: u8, prefix: u8) -> u128 {
    if prefix == 0 {
        return 0;
    }
    let all = if w == 32 { u32::MAX as u128 } else { u128::MAX };
    all & !((1u128 << (w - prefix)) - 1).min(all)
}

impl Cidr {
    /// An address and prefix; the prefix must fit the family.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        (prefix <= width(&addr)).then_some(Cidr { addr, prefix })
    }

    /// Parses `address/prefix`.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, p) = s.split_once('/')?;
        let addr: IpAddr = a.parse().ok()?;
        let prefix: u8 = p.parse().ok()?;
        Cidr::new(addr, prefix)
    }

    /// The address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn mask(&self) -> u128 {
        mask(width(&self.addr), self.prefix)
    }

    /// The network address (host bits zero).
    pub fn network(&self) -> IpAddr {
        from_bits(self.addr.is_ipv4(), bits(&self.addr) & self.mask())
    }

    /// The subnet, as `network/prefix`.
    pub fn subnet(&self) -> Cidr {
        Cidr {
            addr: self.network(),
            prefix: self.prefix,
        }
    }

    /// The last address of the subnet (the IPv4 broadcast address).
    pub fn last(&self) -> IpAddr {
        let w = width(&self.addr);
        let all = if w == 32 { u32::MAX as u128 } else { u128::MAX };
        from_bits(
            self.addr.is_ipv4(),
            (bits(&self.addr) & self.mask()) | (all & !self.mask()),
        )
    }

    /// Whether the two subnets share any address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        if self.addr.is_ipv4() != other.addr.is_ipv4() {
            return false;
        }
        let m = mask(width(&self.addr), self.prefix.min(other.prefix));
        bits(&self.addr) & m == bits(&other.addr) & m
    }

    /// The address `n` places after the network address.
    pub fn nth(&self, n: u128) -> IpAddr {
        from_bits(self.addr.is_ipv4(), (bits(&self.addr) & self.mask()) + n)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Picks `10.x.y.1/24` whose subnet overlaps none of `used`, trying candidates drawn from
/// `random`; `None` when every try collided.
pub fn pick_v4(used: &[Cidr], mut random: impl FnMut() -> u32) -> Option<Cidr> {
    for _ in 0..1000 {
        let r = random();
        let candidate = Cidr {
            addr: IpAddr::V4(Ipv4Addr::new(10, (r >> 8) as u8, r as u8, 1)),
            prefix: 24,
        };
        if !used.iter().any(|u| u.overlaps(&candidate)) {
            return Some(candidate);
        }
    }
    None
}

/// Picks a unique local `fd42:xxxx:xxxx:xxxx::1/64`, as LXD does.
pub fn pick_v6(used: &[Cidr], mut random: impl FnMut() -> u32) -> Option<Cidr> {
    for _ in 0..1000 {
        let (a, b) = (random(), random());
        let candidate = Cidr {
            addr: IpAddr::V6(Ipv6Addr::new(
                0xfd42,
                (a >> 16) as u16,
                a as u16,
                b as u16,
                0,
                0,
                0,
                1,
            )),
            prefix: 64,
        };
        if !used.iter().any(|u| u.overlaps(&candidate)) {
            return Some(candidate);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_overlap() {
        let cases = [
            ("10.1.2.1/24", "10.1.2.0/24", true),
            ("10.1.2.1/24", "10.1.3.0/24", false),
            ("10.1.2.1/24", "10.0.0.0/8", true),
            ("10.1.2.1/24", "fd42::/64", false),
            ("fd42:1:2:3::1/64", "fd42:1:2:3::/64", true),
            ("fd42:1:2:3::1/64", "fd42:1:2:4::/64", false),
            ("192.0.2.7/32", "192.0.2.0/24", true),
        ];
        for (a, b, want) in cases {
            let (a, b) = (Cidr::parse(a).unwrap(), Cidr::parse(b).unwrap());
            assert_eq!(a.overlaps(&b), want, "{a} vs {b}");
        }
        assert!(Cidr::parse("10.0.0.1").is_none());
        assert!(Cidr::parse("10.0.0.1/33").is_none());
        assert!(Cidr::parse("auto/24").is_none());
        let c = Cidr::parse("10.1.2.9/24").unwrap();
        assert_eq!(c.network().to_string(), "10.1.2.0");
        assert_eq!(c.last().to_string(), "10.1.2.255");
        assert_eq!(c.nth(2).to_string(), "10.1.2.2");
        assert_eq!(c.subnet().to_string(), "10.1.2.0/24");
    }

    #[test]
    fn auto_skips_used_subnets() {
        let used = [Cidr::parse("10.0.0.0/16").unwrap()];
        let mut draws = [0x0001u32, 0x0102].into_iter();
        let got = pick_v4(&used, || draws.next().unwrap()).unwrap();
        assert_eq!(got.to_string(), "10.1.2.1/24");
        let everything = [Cidr::parse("10.0.0.0/8").unwrap()];
        assert!(pick_v4(&everything, || 7).is_none());
        let v6 = pick_v6(&[], || 0x1234_5678).unwrap();
        assert_eq!(v6.to_string(), "fd42:1234:5678:5678::1/64");
    }
}

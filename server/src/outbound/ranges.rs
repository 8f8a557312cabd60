//! Which IP addresses an outbound fetch may never reach, and why (pure: no I/O).
//!
//! [`classify`] answers, for one address, the forbidden range it falls in, looking through every
//! IPv6 form that embeds an IPv4 address (mapped, compatible, translated, NAT64, 6to4, Teredo),
//! so `::ffff:127.0.0.1`, `64:ff9b::a00:1` and `2002:7f00:1::` are refused as what they embed.
//! [`Cidr`] is also what the operator's allowlist is written in.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An address block, `addr/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The block `addr/prefix` (`prefix` clamped to the address family's length).
    pub fn new(addr: IpAddr, prefix: u8) -> Self {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        Self {
            addr,
            prefix: prefix.min(max),
        }
    }

    /// An IPv4 block (`prefix` at most 32; larger is clamped).
    pub const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Self {
        Self {
            addr: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            prefix: if prefix > 32 { 32 } else { prefix },
        }
    }

    /// An IPv6 block from its first 32 bits and prefix (`prefix` at most 128; larger is
    /// clamped). Enough for every block of the forbidden table.
    pub const fn v6(high: [u16; 4], prefix: u8) -> Self {
        Self {
            addr: IpAddr::V6(Ipv6Addr::new(
                high[0], high[1], high[2], high[3], 0, 0, 0, 0,
            )),
            prefix: if prefix > 128 { 128 } else { prefix },
        }
    }

    /// Whether `ip` is inside this block (an IPv4 block never contains an IPv6 address).
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

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Why a [`Cidr`] did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IP address or `address/prefix` block")]
pub struct CidrParseError(pub String);

impl FromStr for Cidr {
    type Err = CidrParseError;

    /// `10.0.0.0/8`, `::1/128`, or a bare address (a block of one).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) =
            crate::config::outbound::parse_block(s).ok_or_else(|| CidrParseError(s.to_owned()))?;
        Ok(Self { addr, prefix })
    }
}

/// A forbidden block and its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The block.
    pub cidr: Cidr,
    /// What it is (`loopback`, `private`, ...).
    pub name: &'static str,
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8, name: &'static str) -> Range {
    Range {
        cidr: Cidr::v4(a, b, c, d, prefix),
        name,
    }
}

const fn v6(high: [u16; 4], prefix: u8, name: &'static str) -> Range {
    Range {
        cidr: Cidr::v6(high, prefix),
        name,
    }
}

/// Every IPv4 block an outbound fetch may not reach, most specific first.
pub const FORBIDDEN_V4: &[Range] = &[
    v4(255, 255, 255, 255, 32, "broadcast"),
    v4(0, 0, 0, 0, 32, "unspecified"),
    v4(0, 0, 0, 0, 8, "this network"),
    v4(10, 0, 0, 0, 8, "private"),
    v4(100, 64, 0, 0, 10, "carrier-grade NAT"),
    v4(127, 0, 0, 0, 8, "loopback"),
    v4(169, 254, 0, 0, 16, "link-local"),
    v4(172, 16, 0, 0, 12, "private"),
    v4(192, 0, 0, 0, 24, "IETF protocol assignments"),
    v4(192, 0, 2, 0, 24, "documentation"),
    v4(192, 88, 99, 0, 24, "6to4 relay anycast"),
    v4(192, 168, 0, 0, 16, "private"),
    v4(198, 18, 0, 0, 15, "benchmarking"),
    v4(198, 51, 100, 0, 24, "documentation"),
    v4(203, 0, 113, 0, 24, "documentation"),
    v4(224, 0, 0, 0, 4, "multicast"),
    v4(240, 0, 0, 0, 4, "reserved"),
];

/// Every IPv6 block an outbound fetch may not reach outright. The blocks that embed an IPv4
/// address (see [`classify`]) are judged by what they embed instead, except where noted.
pub const FORBIDDEN_V6: &[Range] = &[
    Range {
        cidr: Cidr {
            addr: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            prefix: 128,
        },
        name: "unspecified",
    },
    Range {
        cidr: Cidr {
            addr: IpAddr::V6(Ipv6Addr::LOCALHOST),
            prefix: 128,
        },
        name: "loopback",
    },
    v6([0, 0, 0, 0], 96, "IPv4-compatible (deprecated)"),
    v6([0x64, 0xff9b, 1, 0], 48, "local-use NAT64"),
    v6([0x100, 0, 0, 0], 64, "discard-only"),
    v6([0x2001, 2, 0, 0], 48, "benchmarking"),
    v6([0x2001, 0x10, 0, 0], 28, "ORCHID"),
    v6([0x2001, 0x20, 0, 0], 28, "ORCHIDv2"),
    v6([0x2001, 0xdb8, 0, 0], 32, "documentation"),
    v6([0x3fff, 0, 0, 0], 20, "documentation"),
    v6([0xfc00, 0, 0, 0], 7, "unique-local"),
    v6([0xfe80, 0, 0, 0], 10, "link-local"),
    v6([0xfec0, 0, 0, 0], 10, "site-local (deprecated)"),
    v6([0xff00, 0, 0, 0], 8, "multicast"),
];

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The forbidden block.
    pub range: Range,
    /// The IPv4 address an IPv6 address embeds, when that is what was refused.
    pub embedded: Option<(&'static str, Ipv4Addr)>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((form, v4)) = self.embedded {
            write!(f, "{form} form of {v4}, ")?;
        }
        write!(f, "{} {}", self.range.name, self.range.cidr)
    }
}

fn lookup(table: &'static [Range], ip: IpAddr) -> Option<Range> {
    table.iter().copied().find(|r| r.cidr.contains(ip))
}

/// The IPv4 addresses an IPv6 address embeds, with the name of the form, per the IPv6
/// transition mechanisms: IPv4-mapped `::ffff:a.b.c.d`, IPv4-translated `::ffff:0:a.b.c.d`,
/// IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:AABB:CCDD::/48`, and Teredo
/// `2001:0:SERVER:...:~CLIENT` (both the server and the obfuscated client address).
pub fn embedded_v4(ip: Ipv6Addr) -> Vec<(&'static str, Ipv4Addr)> {
    let bits = u128::from(ip);
    let low32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    let s = ip.segments();
    let mut out = Vec::new();
    if bits >> 32 == 0xffff {
        out.push(("IPv4-mapped", low32));
    }
    if bits >> 32 == 0xffff_0000 {
        out.push(("IPv4-translated", low32));
    }
    if bits >> 32 == 0 {
        out.push(("IPv4-compatible", low32));
    }
    if bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        out.push(("NAT64", low32));
    }
    if s[0] == 0x2002 {
        out.push(("6to4", Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32)));
    }
    if s[0] == 0x2001 && s[1] == 0 {
        out.push((
            "Teredo server",
            Ipv4Addr::from(((bits >> 64) & 0xffff_ffff) as u32),
        ));
        out.push((
            "Teredo client",
            Ipv4Addr::from(!((bits & 0xffff_ffff) as u32)),
        ));
    }
    out
}

/// The forbidden range `ip` falls in, or `None` when an outbound fetch may reach it.
pub fn classify(ip: IpAddr) -> Option<Refusal> {
    match ip {
        IpAddr::V4(v4) => lookup(FORBIDDEN_V4, IpAddr::V4(v4)).map(|range| Refusal {
            range,
            embedded: None,
        }),
        IpAddr::V6(v6) => {
            // `::` and `::1` are themselves, not IPv4-compatible forms of 0.0.0.0 and 0.0.0.1.
            if v6.is_unspecified() || v6.is_loopback() {
                return lookup(FORBIDDEN_V6, ip).map(|range| Refusal {
                    range,
                    embedded: None,
                });
            }
            for (form, v4) in embedded_v4(v6) {
                if let Some(range) = lookup(FORBIDDEN_V4, IpAddr::V4(v4)) {
                    return Some(Refusal {
                        range,
                        embedded: Some((form, v4)),
                    });
                }
            }
            lookup(FORBIDDEN_V6, ip).map(|range| Refusal {
                range,
                embedded: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    fn refused(ip: &str) -> Option<String> {
        classify(ip.parse().unwrap()).map(|r| r.to_string())
    }

    /// Asserts that each address is refused with a reason containing its expected text.
    fn assert_refused(cases: &[(&str, &str)]) {
        for (ip, expect) in cases {
            let got = refused(ip).unwrap_or_default();
            assert!(got.contains(expect), "{ip}: {got:?}, expected {expect}");
        }
    }

    #[test]
    fn forbidden_v4_blocks_name_their_reason() {
        assert_refused(&[
            ("127.0.0.1", "loopback 127.0.0.0/8"),
            ("127.255.255.254", "loopback"),
            ("10.1.2.3", "private 10.0.0.0/8"),
            ("172.16.0.1", "private 172.16.0.0/12"),
            ("172.31.255.255", "private 172.16.0.0/12"),
            ("192.168.1.1", "private 192.168.0.0/16"),
            ("169.254.169.254", "link-local 169.254.0.0/16"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("100.127.255.255", "carrier-grade NAT"),
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "this network"),
            ("255.255.255.255", "broadcast"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved"),
            ("192.0.0.8", "IETF protocol assignments"),
            ("192.0.2.1", "documentation 192.0.2.0/24"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.9", "documentation"),
            ("198.18.0.1", "benchmarking 198.18.0.0/15"),
            ("198.19.255.255", "benchmarking"),
        ]);
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.215.14",
            "172.32.0.1",
            "172.15.255.255",
            "100.128.0.1",
            "198.20.0.1",
            "192.0.3.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "::ffff:1.1.1.1",
        ] {
            assert_eq!(refused(ip), None, "{ip}");
        }
    }

    #[test]
    fn forbidden_v6_blocks_and_embedded_forms() {
        assert_refused(&[
            ("::1", "loopback ::1/128"),
            ("::", "unspecified"),
            ("fe80::1", "link-local fe80::/10"),
            ("fc00::1", "unique-local fc00::/7"),
            ("fd12:3456::1", "unique-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation 2001:db8::/32"),
            (
                "::ffff:127.0.0.1",
                "IPv4-mapped form of 127.0.0.1, loopback",
            ),
            ("::ffff:a9fe:a9fe", "IPv4-mapped form of 169.254.169.254"),
            ("::127.0.0.1", "IPv4-compatible form of 127.0.0.1"),
            ("::ffff:0:10.0.0.1", "IPv4-translated form of 10.0.0.1"),
            ("64:ff9b::127.0.0.1", "NAT64 form of 127.0.0.1"),
            ("64:ff9b::a9fe:a9fe", "NAT64 form of 169.254.169.254"),
            ("2002:7f00:1::", "6to4 form of 127.0.0.1"),
            ("2002:c0a8:101::1", "6to4 form of 192.168.1.1"),
            ("2001:0:7f00:1::", "Teredo server form of 127.0.0.1"),
            (
                "2001:0:4136:e378:8000:63bf:80ff:fffe",
                "Teredo client form of 127.0.0.1",
            ),
            ("::8.8.8.8", "IPv4-compatible (deprecated)"),
            ("64:ff9b:1::1", "local-use NAT64"),
        ]);
    }

    #[test]
    fn cidr_parses_and_contains() {
        let net: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.255.0.1".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(!net.contains("::1".parse().unwrap()));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert_eq!(one.to_string(), "127.0.0.1/32");
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let all: Cidr = "::/0".parse().unwrap();
        assert!(all.contains("2001:db8::1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "::/129", "example.com", "10.0.0.0/x", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    fn forbidden_v4() -> impl Strategy<Value = Ipv4Addr> {
        (0..FORBIDDEN_V4.len(), any::<u32>()).prop_map(|(i, bits)| {
            let Cidr { addr, prefix } = FORBIDDEN_V4[i].cidr;
            let IpAddr::V4(net) = addr else {
                unreachable!("the v4 table holds v4 blocks")
            };
            let host_mask = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
            Ipv4Addr::from((u32::from(net) & !host_mask) | (bits & host_mask))
        })
    }

    /// Every IPv6 form that embeds `v4`, built independently of [`embedded_v4`].
    fn v6_forms(v4: Ipv4Addr, noise: u64) -> Vec<Ipv6Addr> {
        let v = u128::from(u32::from(v4));
        vec![
            v4.to_ipv6_mapped(),
            v4.to_ipv6_compatible(),
            Ipv6Addr::from((0xffff_0000u128 << 32) | v),
            Ipv6Addr::from((0x0064_ff9bu128 << 96) | v),
            Ipv6Addr::from((0x2002u128 << 112) | (v << 80) | u128::from(noise & 0xffff)),
            Ipv6Addr::from((0x2001_0000u128 << 96) | (v << 64) | u128::from(noise as u32)),
            Ipv6Addr::from(
                (0x2001_0000u128 << 96) | (u128::from(noise >> 32) << 32) | (!v & 0xffff_ffff),
            ),
        ]
    }

    proptest! {
        #[test]
        fn any_forbidden_v4_is_refused_in_every_embedded_form(v4 in forbidden_v4(), noise in any::<u64>()) {
            prop_assert!(classify(IpAddr::V4(v4)).is_some());
            for v6 in v6_forms(v4, noise) {
                let refusal = classify(IpAddr::V6(v6));
                prop_assert!(refusal.is_some(), "{v6} (embeds {v4}) was not refused");
            }
        }

        #[test]
        fn cidr_contains_agrees_with_display_and_parse(bits in any::<u32>(), prefix in 0u8..=32) {
            let [a, b, c, d] = bits.to_be_bytes();
            let net = Cidr::v4(a, b, c, d, prefix);
            let back: Cidr = net.to_string().parse().map_err(|e| TestCaseError::fail(format!("{e}")))?;
            prop_assert_eq!(back, net);
            prop_assert!(net.contains(IpAddr::V4(Ipv4Addr::from(bits))));
        }
    }
}

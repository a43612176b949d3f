//! Which IP addresses are public destinations. Pure functions, no I/O.
//!
//! IPv4: everything except the special-purpose blocks of the IANA registry
//! that are not globally reachable (RFC 6890 and successors). IPv6: only
//! global unicast (`2000::/3`) minus its special blocks, plus the forms that
//! embed an IPv4 address (IPv4-mapped `::ffff:0:0/96`, NAT64 `64:ff9b::/96`,
//! 6to4 `2002::/16`), which are judged by the address they embed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is not a public destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Range {
    /// `0.0.0.0/8`, `::`.
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918: `10/8`, `172.16/12`, `192.168/16`.
    Private,
    /// RFC 6598 carrier-grade NAT `100.64/10` (also Alibaba Cloud's metadata).
    SharedAddressSpace,
    /// `169.254/16`, `fe80::/10`.
    LinkLocal,
    /// `169.254.169.254`, `fd00:ec2::254` (AWS, GCP, Azure instance metadata).
    CloudMetadata,
    /// `fc00::/7`.
    UniqueLocal,
    /// `224/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// `198.18/15`.
    Benchmarking,
    /// Everything else that is not globally routable: `240/4`, `192.0.0/24`,
    /// the 6to4 relay anycast, IETF protocol assignments `2001::/23` (Teredo
    /// included), discard-only `100::/64`, local-use NAT64, site-local,
    /// IPv4-compatible `::/96`, anything outside `2000::/3`.
    Reserved,
}

impl Range {
    /// Stable snake-case name (for delivery records, logs, metrics).
    pub fn as_str(self) -> &'static str {
        match self {
            Range::Unspecified => "unspecified",
            Range::Loopback => "loopback",
            Range::Private => "private",
            Range::SharedAddressSpace => "shared_address_space",
            Range::LinkLocal => "link_local",
            Range::CloudMetadata => "cloud_metadata",
            Range::UniqueLocal => "unique_local",
            Range::Multicast => "multicast",
            Range::Broadcast => "broadcast",
            Range::Documentation => "documentation",
            Range::Benchmarking => "benchmarking",
            Range::Reserved => "reserved",
        }
    }
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Denied IPv4 blocks, most specific first: (network, prefix length, range).
const V4: &[(u32, u8, Range)] = &[
    (0xA9FE_A9FE, 32, Range::CloudMetadata), // 169.254.169.254
    (0xFFFF_FFFF, 32, Range::Broadcast),
    (0x0000_0000, 8, Range::Unspecified),
    (0x0A00_0000, 8, Range::Private),
    (0x6440_0000, 10, Range::SharedAddressSpace),
    (0x7F00_0000, 8, Range::Loopback),
    (0xA9FE_0000, 16, Range::LinkLocal),
    (0xAC10_0000, 12, Range::Private),
    (0xC000_0000, 24, Range::Reserved), // IETF protocol assignments
    (0xC000_0200, 24, Range::Documentation),
    (0xC058_6300, 24, Range::Reserved), // 6to4 relay anycast
    (0xC0A8_0000, 16, Range::Private),
    (0xC612_0000, 15, Range::Benchmarking),
    (0xC633_6400, 24, Range::Documentation),
    (0xCB00_7100, 24, Range::Documentation),
    (0xE000_0000, 4, Range::Multicast),
    (0xF000_0000, 4, Range::Reserved),
];

/// Denied IPv6 blocks inside `2000::/3` or needing a specific name, most
/// specific first. The embedding forms are handled before this table.
const V6: &[(u128, u8, Range)] = &[
    (0, 128, Range::Unspecified),
    (1, 128, Range::Loopback),
    (
        0xfd00_0ec2_0000_0000_0000_0000_0000_0254,
        128,
        Range::CloudMetadata,
    ),
    (
        0x0100_0000_0000_0000_0000_0000_0000_0000,
        64,
        Range::Reserved,
    ), // discard-only
    (
        0x2001_0db8_0000_0000_0000_0000_0000_0000,
        32,
        Range::Documentation,
    ),
    (
        0x2001_0000_0000_0000_0000_0000_0000_0000,
        23,
        Range::Reserved,
    ), // IETF, Teredo
    (
        0x3fff_0000_0000_0000_0000_0000_0000_0000,
        20,
        Range::Documentation,
    ),
    (
        0xfc00_0000_0000_0000_0000_0000_0000_0000,
        7,
        Range::UniqueLocal,
    ),
    (
        0xfe80_0000_0000_0000_0000_0000_0000_0000,
        10,
        Range::LinkLocal,
    ),
    (
        0xff00_0000_0000_0000_0000_0000_0000_0000,
        8,
        Range::Multicast,
    ),
];

fn in_v4(addr: u32, net: u32, len: u8) -> bool {
    len == 0 || addr >> (32 - u32::from(len)) == net >> (32 - u32::from(len))
}

fn in_v6(addr: u128, net: u128, len: u8) -> bool {
    len == 0 || addr >> (128 - u32::from(len)) == net >> (128 - u32::from(len))
}

/// `Some(range)` when `ip` is not a public destination; `None` when it is.
pub fn classify(ip: IpAddr) -> Option<Range> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Range> {
    let a = u32::from(ip);
    V4.iter()
        .find(|(net, len, _)| in_v4(a, *net, *len))
        .map(|(_, _, r)| *r)
}

/// The IPv4 address an IPv6 address stands for, if it is one of the forms a
/// host or a gateway translates to IPv4: IPv4-mapped (`::ffff:a.b.c.d`),
/// NAT64 well-known prefix (`64:ff9b::a.b.c.d`), 6to4 (`2002:AABB:CCDD::/48`).
pub fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let a = u128::from(ip);
    if in_v6(a, 0x0064_ff9b_0000_0000_0000_0000_0000_0000, 96) {
        return Some(Ipv4Addr::from(a as u32));
    }
    if in_v6(a, 0x2002_0000_0000_0000_0000_0000_0000_0000, 16) {
        return Some(Ipv4Addr::from((a >> 80) as u32));
    }
    None
}

fn classify_v6(ip: Ipv6Addr) -> Option<Range> {
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    let a = u128::from(ip);
    if let Some((_, _, r)) = V6.iter().find(|(net, len, _)| in_v6(a, *net, *len)) {
        return Some(*r);
    }
    // IPv4-compatible (`::a.b.c.d`, deprecated), local-use NAT64, site-local
    // and every other block outside global unicast.
    if !in_v6(a, 0x2000_0000_0000_0000_0000_0000_0000_0000, 3) {
        return Some(Range::Reserved);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Option<Range> {
        classify(s.parse().unwrap())
    }

    #[test]
    fn ipv4_special_blocks() {
        let cases = [
            ("0.0.0.0", Range::Unspecified),
            ("0.1.2.3", Range::Unspecified),
            ("10.0.0.1", Range::Private),
            ("10.255.255.255", Range::Private),
            ("100.64.0.1", Range::SharedAddressSpace),
            ("100.100.100.200", Range::SharedAddressSpace),
            ("100.127.255.255", Range::SharedAddressSpace),
            ("127.0.0.1", Range::Loopback),
            ("127.0.0.2", Range::Loopback),
            ("127.255.255.254", Range::Loopback),
            ("169.254.0.1", Range::LinkLocal),
            ("169.254.169.254", Range::CloudMetadata),
            ("172.16.0.1", Range::Private),
            ("172.31.255.255", Range::Private),
            ("192.0.0.192", Range::Reserved),
            ("192.0.2.10", Range::Documentation),
            ("192.88.99.1", Range::Reserved),
            ("192.168.1.1", Range::Private),
            ("198.18.0.1", Range::Benchmarking),
            ("198.19.255.255", Range::Benchmarking),
            ("198.51.100.7", Range::Documentation),
            ("203.0.113.9", Range::Documentation),
            ("224.0.0.1", Range::Multicast),
            ("239.255.255.250", Range::Multicast),
            ("240.0.0.1", Range::Reserved),
            ("255.255.255.255", Range::Broadcast),
        ];
        for (ip, want) in cases {
            assert_eq!(c(ip), Some(want), "{ip}");
        }
    }

    #[test]
    fn ipv4_public_neighbours_of_denied_blocks() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.255",
            "192.0.3.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
        ] {
            assert_eq!(c(ip), None, "{ip}");
        }
    }

    #[test]
    fn ipv6_special_blocks() {
        let cases = [
            ("::", Range::Unspecified),
            ("::1", Range::Loopback),
            ("fe80::1", Range::LinkLocal),
            ("febf::1", Range::LinkLocal),
            ("fc00::1", Range::UniqueLocal),
            ("fd12:3456::1", Range::UniqueLocal),
            ("fd00:ec2::254", Range::CloudMetadata),
            ("ff02::1", Range::Multicast),
            ("ff05::2", Range::Multicast),
            ("2001:db8::1", Range::Documentation),
            ("3fff::1", Range::Documentation),
            ("2001::1", Range::Reserved),      // Teredo
            ("2001:2::1", Range::Reserved),    // benchmarking
            ("100::1", Range::Reserved),       // discard-only
            ("64:ff9b:1::1", Range::Reserved), // local-use NAT64
            ("fec0::1", Range::Reserved),      // site-local
            ("::7f00:1", Range::Reserved),     // IPv4-compatible 127.0.0.1
            ("::a00:1", Range::Reserved),      // IPv4-compatible 10.0.0.1
            ("5f00::1", Range::Reserved),      // SRv6 SIDs
            ("4000::1", Range::Reserved),      // unassigned
        ];
        for (ip, want) in cases {
            assert_eq!(c(ip), Some(want), "{ip}");
        }
    }

    #[test]
    fn embedded_ipv4_forms_are_judged_by_their_ipv4_address() {
        let cases = [
            ("::ffff:127.0.0.1", Some(Range::Loopback)),
            ("::ffff:7f00:1", Some(Range::Loopback)),
            ("::ffff:10.1.2.3", Some(Range::Private)),
            ("::ffff:169.254.169.254", Some(Range::CloudMetadata)),
            ("::ffff:0.0.0.0", Some(Range::Unspecified)),
            ("::ffff:8.8.8.8", None),
            ("64:ff9b::127.0.0.1", Some(Range::Loopback)),
            ("64:ff9b::192.168.0.1", Some(Range::Private)),
            ("64:ff9b::8.8.8.8", None),
            ("2002:7f00:1::1", Some(Range::Loopback)),
            ("2002:a9fe:a9fe::", Some(Range::CloudMetadata)),
            ("2002:0808:0808::1", None),
        ];
        for (ip, want) in cases {
            assert_eq!(c(ip), want, "{ip}");
        }
    }

    #[test]
    fn ipv6_global_unicast_is_public() {
        for ip in [
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "2001:4860::8888",
        ] {
            assert_eq!(c(ip), None, "{ip}");
        }
    }

    #[test]
    fn no_ipv4_address_escapes_through_an_ipv6_form() {
        // Every denied IPv4 block, as each embedding form, stays denied.
        for (net, _, range) in V4 {
            let v4 = Ipv4Addr::from(*net | 1);
            let expect = classify_v4(v4);
            assert!(expect.is_some(), "{v4} {range}");
            let mapped = v4.to_ipv6_mapped();
            let nat64 = Ipv6Addr::from(
                0x0064_ff9b_0000_0000_0000_0000_0000_0000u128 | u128::from(u32::from(v4)),
            );
            let six_to_four = Ipv6Addr::from(
                0x2002_0000_0000_0000_0000_0000_0000_0000u128 | (u128::from(u32::from(v4)) << 80),
            );
            for v6 in [mapped, nat64, six_to_four] {
                assert_eq!(classify(IpAddr::V6(v6)), expect, "{v6} ({v4})");
            }
        }
    }
}

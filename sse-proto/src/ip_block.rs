//! [`IpBlock`]: an address or a CIDR block of addresses (`10.0.0.0/8`,
//! `192.0.2.7`, `fd00::/8`), as `NO_PROXY` lists and trusted-proxy lists
//! name them.

use core::fmt;
use core::net::IpAddr;

/// An IP address block: a network address and the number of leading bits
/// that every address of the block shares with it. A single address is a
/// block of all its bits (`/32`, `/128`).
///
/// IPv4 addresses mapped into IPv6 (`::ffff:192.0.2.7`) are the IPv4
/// addresses they carry, both as blocks and as the addresses looked up.
///
/// ```
/// use sse_proto::IpBlock;
///
/// let block = IpBlock::parse("10.0.0.0/8").unwrap();
/// assert!(block.contains("10.20.30.40".parse().unwrap()));
/// assert!(block.contains("::ffff:10.0.0.1".parse().unwrap()));
/// assert!(!block.contains("11.0.0.1".parse().unwrap()));
/// assert_eq!(IpBlock::parse("10.0.0.0/33"), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpBlock {
    net: IpAddr,
    bits: u8,
}

impl IpBlock {
    /// The block of the addresses sharing `bits` leading bits with `net`;
    /// `None` when `bits` is more than the address has (32 or 128).
    pub fn new(net: IpAddr, bits: u8) -> Option<IpBlock> {
        let max = if net.is_ipv4() { 32 } else { 128 };
        if bits > max {
            return None;
        }
        // A block inside the IPv4-mapped range is an IPv4 block.
        let (net, bits) = match net {
            IpAddr::V6(v6) if bits >= 96 => match v6.to_ipv4_mapped() {
                Some(v4) => (IpAddr::V4(v4), bits - 96),
                None => (net, bits),
            },
            _ => (net, bits),
        };
        // The host bits are dropped: `10.0.0.1/8` is `10.0.0.0/8`.
        let net = match net {
            IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & v4_mask(bits)).into()),
            IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & v6_mask(bits)).into()),
        };
        Some(IpBlock { net, bits })
    }

    /// The block of one address.
    pub fn single(ip: IpAddr) -> IpBlock {
        let bits = if ip.is_ipv4() { 32 } else { 128 };
        IpBlock::new(ip, bits).unwrap_or(IpBlock { net: ip, bits })
    }

    /// Parses `address` or `address/bits` (no brackets, no port);
    /// `None` for anything else.
    pub fn parse(s: &str) -> Option<IpBlock> {
        match s.split_once('/') {
            Some((address, bits)) => {
                // Digits only: `u8`'s parser would take a `+` sign.
                if bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                IpBlock::new(address.parse().ok()?, bits.parse().ok()?)
            }
            None => Some(IpBlock::single(s.parse().ok()?)),
        }
    }

    /// Whether `ip` is in the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (ip, self.net) {
            (IpAddr::V4(ip), IpAddr::V4(net)) => {
                u32::from(ip) & v4_mask(self.bits) == u32::from(net)
            }
            // A mapped address is its IPv4 address for an IPv4 block, and
            // an IPv6 address for an IPv6 block (`::/0` holds it).
            (IpAddr::V6(ip), IpAddr::V4(net)) => ip
                .to_ipv4_mapped()
                .is_some_and(|v4| u32::from(v4) & v4_mask(self.bits) == u32::from(net)),
            (IpAddr::V6(ip), IpAddr::V6(net)) => {
                u128::from(ip) & v6_mask(self.bits) == u128::from(net)
            }
            (IpAddr::V4(_), IpAddr::V6(_)) => false,
        }
    }
}

/// The mask of the first `bits` bits of an IPv4 address.
fn v4_mask(bits: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0)
}

/// The mask of the first `bits` bits of an IPv6 address.
fn v6_mask(bits: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0)
}

impl fmt::Display for IpBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.bits)
    }
}

#[cfg(test)]
mod tests {
    use super::IpBlock;
    use alloc::string::ToString;
    use core::net::IpAddr;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn edges() {
        let all = IpBlock::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("1.2.3.4")));
        assert!(!all.contains(ip("::1")), "IPv6 is not in an IPv4 block");
        let one = IpBlock::parse("1.2.3.4").unwrap();
        assert!(one.contains(ip("1.2.3.4")));
        assert!(!one.contains(ip("1.2.3.5")));
        assert!(IpBlock::parse("fd00::/8").unwrap().contains(ip("fd12::1")));
        assert!(!IpBlock::parse("fd00::/8").unwrap().contains(ip("fe80::1")));
        assert!(IpBlock::parse("::/0").unwrap().contains(ip("::1")));
    }

    #[test]
    fn mapped_addresses_are_ipv4() {
        let mapped = IpBlock::parse("::ffff:10.0.0.0/104").unwrap();
        assert_eq!(mapped, IpBlock::parse("10.0.0.0/8").unwrap());
        assert!(mapped.contains(ip("10.9.9.9")));
        assert!(mapped.contains(ip("::ffff:10.9.9.9")));
        assert!(!mapped.contains(ip("::ffff:11.0.0.1")));
    }

    #[test]
    fn host_bits_are_dropped() {
        assert_eq!(IpBlock::parse("10.1.2.3/8"), IpBlock::parse("10.0.0.0/8"));
        assert_eq!(
            IpBlock::parse("10.1.2.3/8").unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(IpBlock::parse("fd12::1/8").unwrap().to_string(), "fd00::/8");
        // A single mapped address is a single IPv4 address.
        let one = IpBlock::parse("::ffff:10.0.0.1").unwrap();
        assert!(one.contains(ip("10.0.0.1")));
        assert!(!one.contains(ip("10.0.0.2")));
    }

    #[test]
    fn an_ipv6_block_holds_mapped_addresses_as_ipv6() {
        assert!(
            IpBlock::parse("::/0")
                .unwrap()
                .contains(ip("::ffff:10.0.0.1"))
        );
        // The whole mapped range is every IPv4 address.
        assert!(
            IpBlock::parse("::ffff:0:0/96")
                .unwrap()
                .contains(ip("10.0.0.1"))
        );
        assert!(
            !IpBlock::parse("fd00::/8")
                .unwrap()
                .contains(ip("::ffff:10.0.0.1"))
        );
    }

    #[test]
    fn what_is_refused() {
        for bad in [
            "",
            "/8",
            "10.0.0.0/",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/+8",
            "10.0.0.0/8/8",
            "example.com",
            "[::1]",
            "10.0.0.1:80",
            " 10.0.0.1",
        ] {
            assert_eq!(IpBlock::parse(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #![proptest_config(crate::test_support::proptest_config(256))]

        /// A block holds its own network address, and an address is in a
        /// block exactly when its first `bits` bits are the block's.
        #[test]
        fn membership_is_the_shared_prefix(a in any::<u32>(), b in any::<u32>(), bits in 0u8..=32) {
            let block = IpBlock::new(IpAddr::V4(a.into()), bits).unwrap();
            prop_assert!(block.contains(IpAddr::V4(a.into())));
            let shared = (a ^ b).leading_zeros() >= u32::from(bits);
            prop_assert_eq!(block.contains(IpAddr::V4(b.into())), shared);
        }

        #[test]
        fn membership_is_the_shared_prefix_v6(a in any::<u128>(), b in any::<u128>(), bits in 0u8..=128) {
            let net = IpAddr::V6(a.into());
            let block = IpBlock::new(net, bits).unwrap();
            let v6 = |x: u128| IpAddr::V6(x.into());
            // Mapped addresses are IPv4, outside an IPv6 block of another kind.
            prop_assume!(v6_plain(a) && v6_plain(b));
            prop_assert!(block.contains(v6(a)));
            let shared = (a ^ b).leading_zeros() >= u32::from(bits);
            prop_assert_eq!(block.contains(v6(b)), shared);
        }

        /// Parsing never panics, and what it accepts prints back the same.
        #[test]
        fn parse_round_trips(s in "[0-9a-f:./]{0,45}") {
            if let Some(block) = IpBlock::parse(&s) {
                prop_assert_eq!(IpBlock::parse(&block.to_string()), Some(block));
            }
        }
    }

    /// Not an IPv4-mapped address.
    fn v6_plain(x: u128) -> bool {
        x >> 32 != 0xffff
    }
}

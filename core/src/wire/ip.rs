//! The parts of IPv4 and IPv6 headers that label disposition touches: version,
//! TTL / hop limit, destination address, and the IPv4 header checksum
//! (RFC 791, RFC 8200, incremental update per RFC 1624).

use super::{be16, be32, Error};

pub const IPV4_MIN_HDR_BYTES: usize = 20;
pub const IPV6_HDR_BYTES: usize = 40;
/// TTL byte of an IPv4 header.
pub const IPV4_TTL_OFFSET: usize = 8;
/// Hop limit byte of an IPv6 header.
pub const IPV6_HOP_LIMIT_OFFSET: usize = 7;
/// Total length (16 bits) of an IPv4 header.
pub const IPV4_TOTAL_LEN_OFFSET: usize = 2;
/// Header checksum (16 bits) of an IPv4 header.
pub const IPV4_CHECKSUM_OFFSET: usize = 10;
/// Payload length (16 bits) of an IPv6 header.
pub const IPV6_PAYLOAD_LEN_OFFSET: usize = 4;
/// The first byte of an IPv4 header without options: version 4, IHL 5 words.
pub const IPV4_VERSION_IHL_NO_OPTIONS: u8 = 0x45;

/// The IP version nibble of the first payload byte (0 for an empty payload).
#[inline(always)]
pub fn version(payload: &[u8]) -> u8 {
    payload.first().map_or(0, |b| b >> 4)
}

/// Checks an IPv4 header's length fields. Returns the header length in bytes.
#[inline(always)]
pub fn check_ipv4(p: &[u8]) -> Result<usize, Error> {
    let Some(h) = p.first_chunk::<IPV4_MIN_HDR_BYTES>() else { return Err(Error::BadIpHeader) };
    let ihl = ((h[0] & 0x0f) as usize) * 4;
    // Total length covers the header and fits the frame (trailing Ethernet padding is fine).
    let total = u16::from_be_bytes([h[2], h[3]]) as usize;
    if ihl < IPV4_MIN_HDR_BYTES || ihl > total || total > p.len() {
        return Err(Error::BadIpHeader);
    }
    Ok(ihl)
}

/// Checks an IPv6 fixed header is present.
#[inline(always)]
pub fn check_ipv6(p: &[u8]) -> Result<(), Error> {
    // Payload length 0 is a jumbogram (RFC 2675) and cannot be checked here.
    if p.len() < IPV6_HDR_BYTES || IPV6_HDR_BYTES + be16(p, 4) as usize > p.len() {
        return Err(Error::BadIpHeader);
    }
    Ok(())
}

/// IPv4 destination; caller has run `check_ipv4`.
#[inline(always)]
pub fn ipv4_dst(p: &[u8]) -> u32 {
    be32(p, 16)
}

/// IPv6 destination; caller has run `check_ipv6`.
#[inline(always)]
pub fn ipv6_dst(p: &[u8]) -> u128 {
    u128::from_be_bytes(p[24..40].try_into().expect("checked length"))
}

/// Sets the IPv4 TTL and updates the header checksum incrementally (RFC 1624 eqn. 3:
/// HC' = ~(~HC + ~m + m')), where m is the 16-bit word holding the TTL and the
/// protocol. The protocol byte is the same in m and m' and cancels out, so only the
/// TTL enters the sum. A one's-complement sum does not depend on byte order (RFC 1071
/// section 2(B)), so the words are summed as they sit in memory, little-endian, with no
/// byte swaps. Caller has run `check_ipv4` on `hdr`.
#[inline(always)]
pub fn ipv4_set_ttl(hdr: &mut [u8], ttl: u8) {
    let Some(h) = hdr.first_chunk_mut::<12>() else {
        debug_assert!(false, "ipv4_set_ttl on a short header");
        return;
    };
    // Little-endian, the TTL is the low byte of m: ~m + m' = 0xffff - ttl + ttl'.
    let hc = u16::from_le_bytes([h[10], h[11]]) as u32;
    let mut sum = (!hc & 0xffff) + 0xffff - h[IPV4_TTL_OFFSET] as u32 + ttl as u32;
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    let [c0, c1] = (!(sum as u16)).to_le_bytes();
    h[IPV4_TTL_OFFSET] = ttl;
    h[10] = c0;
    h[11] = c1;
}

/// Full IPv4 header checksum (RFC 791). Over a header carrying a valid checksum it is 0.
pub fn ipv4_checksum(hdr: &[u8]) -> u16 {
    let mut sum: u32 = hdr.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4_header(ttl: u8, proto: u8, seed: u32) -> Vec<u8> {
        let mut h = vec![0x45, 0, 0, 20, 0x12, 0x34, 0x40, 0, ttl, proto, 0, 0];
        h.extend_from_slice(&seed.to_be_bytes());
        h.extend_from_slice(&[10, 1, 1, 1]);
        let c = ipv4_checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h
    }

    #[test]
    fn incremental_checksum_matches_full_recompute() {
        // Deterministic sweep of TTLs, protocols and source addresses.
        let mut x: u32 = 0x1234_5678;
        for old in 0..=255u8 {
            for _ in 0..16 {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let mut h = v4_header(old, (x >> 24) as u8, x);
                let new = (x >> 8) as u8;
                ipv4_set_ttl(&mut h, new);
                assert_eq!(h[8], new);
                assert_eq!(ipv4_checksum(&h), 0, "old {old} new {new}");
                // etherparse agrees the header is valid.
                let (parsed, _) = etherparse::Ipv4Header::from_slice(&h).unwrap();
                assert_eq!(parsed.header_checksum, parsed.calc_header_checksum());
            }
        }
    }

    /// RFC 1624 eqn. 3 word by word, big-endian, as written in the RFC.
    fn textbook_set_ttl(h: &mut [u8], ttl: u8) {
        let old = u16::from_be_bytes([h[8], h[9]]) as u32;
        let new = ((ttl as u32) << 8) | (h[9] as u32);
        let hc = u16::from_be_bytes([h[10], h[11]]) as u32;
        let mut sum = (!hc & 0xffff) + (!old & 0xffff) + new;
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        h[8] = ttl;
        h[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    }

    #[test]
    fn set_ttl_matches_the_textbook_update_bit_for_bit() {
        // Every checksum (valid or not) and every old/new TTL pair, for a few protocols:
        // the same bytes, including which of the two one's-complement zeros comes out.
        let mut h = v4_header(0, 0, 0);
        for proto in [0u8, 6, 17, 255] {
            h[9] = proto;
            for hc in (0..=u16::MAX).step_by(97).chain([0, 1, 0xfeff, 0xff00, 0xfffe, 0xffff]) {
                for old in [0u8, 1, 2, 63, 64, 128, 254, 255] {
                    for new in [0u8, 1, 62, 63, 127, 253, 254, 255] {
                        h[8] = old;
                        h[10..12].copy_from_slice(&hc.to_be_bytes());
                        let mut want = h.clone();
                        textbook_set_ttl(&mut want, new);
                        ipv4_set_ttl(&mut h, new);
                        assert_eq!(h, want, "proto {proto} hc {hc:#06x} ttl {old} -> {new}");
                    }
                }
            }
        }
    }

    #[test]
    fn header_checks_reject_every_truncation() {
        let h = v4_header(64, 17, 7);
        for n in 0..h.len() {
            assert_eq!(check_ipv4(&h[..n]), Err(Error::BadIpHeader), "len {n}");
        }
        assert_eq!(check_ipv4(&h), Ok(20));
        let mut bad = h.clone();
        bad[0] = 0x44; // IHL 4 words
        assert_eq!(check_ipv4(&bad), Err(Error::BadIpHeader));
        bad[0] = 0x46; // IHL 24 bytes > 20 present
        assert_eq!(check_ipv4(&bad), Err(Error::BadIpHeader));
        let mut long = h.clone();
        long[3] = 21; // total length past the end
        assert_eq!(check_ipv4(&long), Err(Error::BadIpHeader));
        let mut padded = h.clone();
        padded.extend_from_slice(&[0; 6]); // Ethernet padding after the packet
        assert_eq!(check_ipv4(&padded), Ok(20));
        assert_eq!(ipv4_dst(&h), u32::from_be_bytes([10, 1, 1, 1]));
        let mut v6 = [0x60u8; 40];
        v6[4..6].copy_from_slice(&[0, 0]);
        for n in 0..40 {
            assert!(check_ipv6(&v6[..n]).is_err());
        }
        assert!(check_ipv6(&v6).is_ok());
        assert_eq!(version(&[]), 0);
        assert_eq!(version(&[0x45]), 4);
    }
}

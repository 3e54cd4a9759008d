//! Ethernet II with zero, one or two 802.1Q / 802.1ad tags.

use super::{be16, Error};

/// Bytes in an untagged Ethernet II header (dst, src, ethertype).
pub const ETH_HDR_BYTES: usize = 14;
/// Bytes one VLAN tag adds.
pub const VLAN_TAG_BYTES: usize = 4;
/// Bytes of the two MAC addresses (dst, src) at the start of the header.
pub const MACS_BYTES: usize = 12;
/// Offset of the ethertype in an untagged header (a tag moves it by [`VLAN_TAG_BYTES`]).
pub const ETHERTYPE_OFFSET: usize = MACS_BYTES;

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_MPLS: u16 = 0x8847;
pub const ETHERTYPE_MPLS_MC: u16 = 0x8848;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const ETHERTYPE_QINQ: u16 = 0x88A8;

/// A MAC address.
pub type Mac = [u8; 6];

/// A checked view of an Ethernet frame's L2 header, tags included.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    buf: &'a [u8],
    /// Offset of the L3 payload (14, 18 or 22).
    l2_bytes: u8,
    /// Inner ethertype, after the tags.
    ethertype: u16,
}

impl<'a> Frame<'a> {
    /// Parses the L2 header, walking up to two VLAN tags.
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Frame<'a>, Error> {
        let Some(hdr) = buf.first_chunk::<ETH_HDR_BYTES>() else { return Err(Error::TooShort) };
        let mut ethertype = u16::from_be_bytes([hdr[12], hdr[13]]);
        if ethertype != ETHERTYPE_VLAN && ethertype != ETHERTYPE_QINQ {
            // Untagged: the common case, no loop.
            return Ok(Frame { buf, l2_bytes: ETH_HDR_BYTES as u8, ethertype });
        }
        let mut l2 = ETH_HDR_BYTES;
        let mut tags = 0;
        while ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ {
            if tags == 2 {
                return Err(Error::VlanTooDeep);
            }
            if buf.len() < l2 + VLAN_TAG_BYTES {
                return Err(Error::TooShort);
            }
            ethertype = be16(buf, l2 + 2);
            l2 += VLAN_TAG_BYTES;
            tags += 1;
        }
        Ok(Frame { buf, l2_bytes: l2 as u8, ethertype })
    }

    pub fn dst(&self) -> Mac {
        self.buf[0..6].try_into().expect("checked length")
    }

    pub fn src(&self) -> Mac {
        self.buf[6..12].try_into().expect("checked length")
    }

    /// Ethertype after any VLAN tags.
    #[inline]
    pub fn ethertype(&self) -> u16 {
        self.ethertype
    }

    /// Bytes of L2 header, tags included: the offset of the payload.
    #[inline]
    pub fn l2_bytes(&self) -> usize {
        self.l2_bytes as usize
    }

    /// Number of VLAN tags (0..=2).
    pub fn vlan_tags(&self) -> usize {
        (self.l2_bytes() - ETH_HDR_BYTES) / VLAN_TAG_BYTES
    }

    /// The payload after the L2 header.
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.l2_bytes()..]
    }
}

/// Writes an untagged Ethernet header into `out[..14]`: `macs` is dst then src.
/// Caller guarantees `out.len() >= 14` (it is the start of a frame at least that long).
#[inline(always)]
pub fn emit_header_unchecked(out: &mut [u8], macs: &[u8; 12], ethertype: u16) {
    if let Some(h) = out.first_chunk_mut::<ETH_HDR_BYTES>() {
        let [t0, t1] = ethertype.to_be_bytes();
        let mut v = [0u8; ETH_HDR_BYTES];
        v[..12].copy_from_slice(macs);
        v[12] = t0;
        v[13] = t1;
        *h = v;
    } else {
        debug_assert!(false, "emit_header_unchecked on a frame shorter than 14 bytes");
    }
}

/// Formats a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(m: &Mac) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff` (also `-` separated). None if malformed.
pub fn parse_mac(s: &str) -> Option<Mac> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut m = [0u8; 6];
    for (b, p) in m.iter_mut().zip(parts) {
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tags: &[u16], ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        for t in tags {
            f.extend_from_slice(&t.to_be_bytes());
            f.extend_from_slice(&[0x00, 0x64]); // VID 100
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn untagged_single_and_double_tagged() {
        for (tags, l2) in [(&[][..], 14), (&[ETHERTYPE_VLAN][..], 18), (&[ETHERTYPE_QINQ, ETHERTYPE_VLAN][..], 22)] {
            let f = frame(tags, ETHERTYPE_MPLS, &[0xaa; 4]);
            let v = Frame::new_checked(&f).unwrap();
            assert_eq!(v.ethertype(), ETHERTYPE_MPLS);
            assert_eq!(v.l2_bytes(), l2);
            assert_eq!(v.vlan_tags(), tags.len());
            assert_eq!(v.dst(), [1, 2, 3, 4, 5, 6]);
            assert_eq!(v.src(), [7, 8, 9, 10, 11, 12]);
            assert_eq!(v.payload(), &[0xaa; 4]);
        }
    }

    #[test]
    fn three_tags_rejected() {
        let f = frame(&[ETHERTYPE_QINQ, ETHERTYPE_VLAN, ETHERTYPE_VLAN], ETHERTYPE_MPLS, &[0; 8]);
        assert_eq!(Frame::new_checked(&f).unwrap_err(), Error::VlanTooDeep);
    }

    #[test]
    fn every_truncated_length_is_rejected() {
        let f = frame(&[ETHERTYPE_QINQ, ETHERTYPE_VLAN], ETHERTYPE_MPLS, &[]);
        for n in 0..f.len() {
            assert_eq!(Frame::new_checked(&f[..n]).unwrap_err(), Error::TooShort, "len {n}");
        }
        assert!(Frame::new_checked(&f).is_ok());
    }

    #[test]
    fn emit_round_trips() {
        let mut out = [0u8; 14];
        let macs = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        emit_header_unchecked(&mut out, &macs, ETHERTYPE_IPV6);
        let v = Frame::new_checked(&out).unwrap();
        assert_eq!(v.ethertype(), ETHERTYPE_IPV6);
        assert_eq!(&out[..12], &macs);
    }

    #[test]
    fn mac_parse_and_format() {
        assert_eq!(parse_mac("02:00:00:00:0c:0a"), Some([2, 0, 0, 0, 0x0c, 0x0a]));
        assert_eq!(parse_mac("02-00-00-00-0C-0A"), Some([2, 0, 0, 0, 0x0c, 0x0a]));
        for bad in ["", "02:00:00:00:0c", "02:00:00:00:0c:0a:01", "zz:00:00:00:00:00", "2:0:0:0:0:0"] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
        assert_eq!(format_mac(&[2, 0, 0, 0, 0x0c, 0x0a]), "02:00:00:00:0c:0a");
    }
}

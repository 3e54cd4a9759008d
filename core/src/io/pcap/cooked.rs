//! Linux cooked captures (`tcpdump -i any`): link types 113 (`LINUX_SLL`) and 276
//! (`LINUX_SLL2`), turned into Ethernet frames when the capture is opened.
//!
//! A cooked header records the protocol (the EtherType) and the sender's link-layer
//! address, not the Ethernet header itself, so each frame gets a synthesised one:
//! destination `00:00:00:00:00:00` (not recorded), source the recorded address when it
//! is 6 bytes long (else zeros), and the recorded protocol as the EtherType. VLAN tags
//! the kernel stripped are not in the capture and are not restored. The packet bytes
//! after the cooked header are kept as they are, so MPLS frames (protocol 0x8847)
//! replay with their label stacks intact.
//!
//! The converted capture is a copy in memory (cooked captures are not memory-mapped).

use super::{Error, Record, LINKTYPE_ETHERNET};

/// `LINKTYPE_LINUX_SLL`.
pub(super) const LINKTYPE_LINUX_SLL: u32 = 113;
/// `LINKTYPE_LINUX_SLL2`.
pub(super) const LINKTYPE_LINUX_SLL2: u32 = 276;

/// True for the link types a capture may have (Ethernet, or cooked and converted).
pub(super) fn readable(linktype: u32) -> bool {
    matches!(linktype, LINKTYPE_ETHERNET | LINKTYPE_LINUX_SLL | LINKTYPE_LINUX_SLL2)
}

/// Ethernet frames for the records of `d`, whose link types are `links` (one per
/// record): a new buffer and its records (same timestamps, lengths changed by the
/// header swap).
pub(super) fn to_ethernet(d: &[u8], records: &[Record], links: &[u16]) -> Result<(Vec<u8>, Vec<Record>), Error> {
    let mut out = Vec::with_capacity(d.len() + records.len() * 14);
    let mut recs = Vec::with_capacity(records.len());
    for (i, (r, link)) in records.iter().zip(links).enumerate() {
        let pkt = &d[r.offset as usize..r.offset as usize + r.caplen as usize];
        let (hlen, proto, addr) = match u32::from(*link) {
            LINKTYPE_LINUX_SLL => (16, 14, (pkt.get(4..6), 6)),
            LINKTYPE_LINUX_SLL2 => (20, 0, (pkt.get(11..12), 12)),
            _ => {
                let offset = out.len() as u64;
                out.extend_from_slice(pkt);
                recs.push(Record { offset, ..*r });
                continue;
            }
        };
        if pkt.len() < hlen {
            return Err(Error::Cooked {
                offset: r.offset,
                record: i as u64,
                len: r.caplen,
                need: hlen as u32,
                linktype: *link,
            });
        }
        // The address length: a big-endian u16 (SLL) or one byte (SLL2).
        let alen = match addr.0 {
            Some([a, b]) => usize::from(u16::from_be_bytes([*a, *b])),
            Some([a]) => usize::from(*a),
            _ => 0,
        };
        let offset = out.len() as u64;
        out.extend_from_slice(&[0; 6]);
        match alen {
            6 => out.extend_from_slice(&pkt[addr.1..addr.1 + 6]),
            _ => out.extend_from_slice(&[0; 6]),
        }
        out.extend_from_slice(&pkt[proto..proto + 2]);
        out.extend_from_slice(&pkt[hlen..]);
        let shrink = |n: u32| (n + 14).saturating_sub(hlen as u32);
        recs.push(Record { offset, caplen: shrink(r.caplen), origlen: shrink(r.origlen), ts_ns: r.ts_ns });
    }
    Ok((out, recs))
}

#[cfg(test)]
mod tests {
    use super::super::Capture;

    /// A little-endian microsecond classic pcap of link type `lt` with `pkts`.
    fn classic(lt: u32, pkts: &[&[u8]]) -> Vec<u8> {
        let mut v = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
        v.extend_from_slice(&[2, 0, 4, 0]); // version 2.4
        for x in [0u32, 0, 65535, lt] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        for (i, p) in pkts.iter().enumerate() {
            for x in [7u32, i as u32, p.len() as u32, p.len() as u32 + 2] {
                v.extend_from_slice(&x.to_le_bytes());
            }
            v.extend_from_slice(p);
        }
        v
    }

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xd];
    /// Label 48122, bottom of stack, TTL 64, then four payload bytes.
    const MPLS: [u8; 8] = [0x0b, 0xbf, 0xa1, 0x40, 0x45, 0, 0, 20];

    fn sll(proto: u16, alen: u16) -> Vec<u8> {
        let mut h = vec![0, 0, 0, 1];
        h.extend_from_slice(&alen.to_be_bytes());
        h.extend_from_slice(&MAC);
        h.extend_from_slice(&[0, 0]);
        h.extend_from_slice(&proto.to_be_bytes());
        h.extend_from_slice(&MPLS);
        h
    }

    fn sll2(proto: u16, alen: u8) -> Vec<u8> {
        let mut h = proto.to_be_bytes().to_vec();
        h.extend_from_slice(&[0, 0, 0, 0, 0, 3, 0, 1, 0, alen]);
        h.extend_from_slice(&MAC);
        h.extend_from_slice(&[0, 0]);
        h.extend_from_slice(&MPLS);
        h
    }

    fn want(src: [u8; 6], proto: u16) -> Vec<u8> {
        let mut f = vec![0; 6];
        f.extend_from_slice(&src);
        f.extend_from_slice(&proto.to_be_bytes());
        f.extend_from_slice(&MPLS);
        f
    }

    #[test]
    fn cooked_frames_get_a_synthesised_ethernet_header() {
        let cap = Capture::from_bytes(classic(113, &[&sll(0x8847, 6), &sll(0x0800, 8)])).unwrap();
        assert_eq!(cap.packet(0), want(MAC, 0x8847));
        assert_eq!(cap.packet(1), want([0; 6], 0x0800), "an address that is not 6 bytes is not a MAC");
        let r = cap.records()[0];
        assert_eq!((r.caplen, r.origlen, r.ts_ns), (22, 24, 7_000_000_000));
        let cap = Capture::from_bytes(classic(276, &[&sll2(0x8847, 6)])).unwrap();
        assert_eq!(cap.packet(0), want(MAC, 0x8847));
        assert_eq!(cap.records()[0].caplen, 22);
    }

    #[test]
    fn a_record_shorter_than_its_cooked_header_is_an_error_with_its_offset() {
        let e = Capture::from_bytes(classic(113, &[&sll(0x8847, 6), &[0; 10]])).unwrap_err().to_string();
        assert_eq!(
            e,
            "record 1: packet data at byte offset 80 is 10 bytes, shorter than the 16-byte Linux cooked (link \
             type 113) header"
        );
    }
}

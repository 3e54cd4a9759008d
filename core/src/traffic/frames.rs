//! Frame builders and the seed scenario's capture. Used by the generators, `popgo gen
//! seed`, the tests and the benches. Allocates freely (tools only).

use crate::wire::ethernet::{Mac, ETHERTYPE_ARP, ETHERTYPE_MPLS, ETHERTYPE_MPLS_MC, ETHERTYPE_QINQ, ETHERTYPE_VLAN};
use crate::wire::mpls::{LabelEntry, LABEL_ELI, LABEL_IPV4_EXPLICIT_NULL, LABEL_ROUTER_ALERT};
use etherparse::PacketBuilder;
use std::net::{Ipv4Addr, Ipv6Addr};

/// DeviceD's MAC (the sender on the BGP LSP) and DeviceC's port toward it.
pub const SEED_SRC_MAC: Mac = [0x02, 0, 0, 0, 0, 0x0d];
pub const SEED_DST_MAC: Mac = [0x02, 0, 0, 0, 0x0c, 0x0d];
/// The BGP label of 10.1.1.0/24 in `pcaps/seed.toml`.
pub const SEED_LABEL: u32 = 48122;
/// 2026-01-01T00:00:00Z, the first timestamp of generated captures.
pub const EPOCH_NS: u64 = 1_767_225_600_000_000_000;

/// An IPv4/UDP packet of `total_len` bytes (at least 28) with the given TTL.
pub fn ipv4_udp(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, total_len: usize) -> Vec<u8> {
    let payload = vec![0x5a; total_len.saturating_sub(28)];
    let b = PacketBuilder::ipv4(src.octets(), dst.octets(), ttl).udp(40000, 9);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, &payload).expect("writing to a Vec cannot fail");
    out
}

/// An IPv6/UDP packet of `total_len` bytes (at least 48) with the given hop limit.
pub fn ipv6_udp(src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8, total_len: usize) -> Vec<u8> {
    let payload = vec![0x5a; total_len.saturating_sub(48)];
    let b = PacketBuilder::ipv6(src.octets(), dst.octets(), hop_limit).udp(40000, 9);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, &payload).expect("writing to a Vec cannot fail");
    out
}

/// An Ethernet frame: `tags` are VLAN TPIDs (VID 100 each), then `ethertype`, the
/// label stack (bottom-of-stack set on the last entry) and the payload.
pub fn frame(dst: Mac, src: Mac, tags: &[u16], ethertype: u16, labels: &[(u32, u8)], payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(22 + labels.len() * 4 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    for t in tags {
        f.extend_from_slice(&t.to_be_bytes());
        f.extend_from_slice(&100u16.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    for (i, (label, ttl)) in labels.iter().enumerate() {
        f.extend_from_slice(&LabelEntry::new(*label, 0, i + 1 == labels.len(), *ttl).to_bytes());
    }
    f.extend_from_slice(payload);
    f
}

/// An untagged MPLS frame from DeviceD to DeviceC.
pub fn seed_mpls(labels: &[(u32, u8)], payload: &[u8]) -> Vec<u8> {
    frame(SEED_DST_MAC, SEED_SRC_MAC, &[], ETHERTYPE_MPLS, labels, payload)
}

/// One frame of the seed capture and what it shows.
pub struct SeedFrame {
    pub frame: Vec<u8>,
    pub what: &'static str,
}

/// The seed capture: labeled traffic from DeviceD to 10.1.1.1, .2, .3 and .5 (plain,
/// VLAN-tagged, under an explicit null, with an entropy label), and a few bad frames.
pub fn seed_frames() -> Vec<SeedFrame> {
    let d = Ipv4Addr::new(172, 16, 0, 1);
    let to = |host: u8| ipv4_udp(d, Ipv4Addr::new(10, 1, 1, host), 64, 46);
    let l = SEED_LABEL;
    vec![
        SeedFrame { frame: seed_mpls(&[(l, 64)], &to(1)), what: "10.1.1.1, label 48122" },
        SeedFrame { frame: seed_mpls(&[(l, 64)], &to(2)), what: "10.1.1.2, label 48122" },
        SeedFrame { frame: seed_mpls(&[(l, 64)], &to(3)), what: "10.1.1.3, label 48122" },
        SeedFrame { frame: seed_mpls(&[(l, 64)], &to(5)), what: "10.1.1.5, label 48122" },
        SeedFrame {
            frame: frame(SEED_DST_MAC, SEED_SRC_MAC, &[ETHERTYPE_VLAN], ETHERTYPE_MPLS, &[(l, 64)], &to(1)),
            what: "10.1.1.1, label 48122 behind an 802.1Q tag (the tag is removed)",
        },
        SeedFrame {
            frame: seed_mpls(&[(LABEL_IPV4_EXPLICIT_NULL, 64), (l, 64)], &to(2)),
            what: "10.1.1.2, IPv4 explicit null above label 48122",
        },
        SeedFrame {
            frame: seed_mpls(&[(l, 64), (LABEL_ELI, 64), (0x12345, 64)], &to(5)),
            what: "10.1.1.5, label 48122 with ELI + entropy label below (popped too)",
        },
        SeedFrame { frame: seed_mpls(&[(48999, 64)], &to(1)), what: "bad: unknown label 48999 (no_ilm_entry)" },
        SeedFrame { frame: seed_mpls(&[(l, 1)], &to(1)), what: "bad: MPLS TTL 1 (ttl_expired)" },
        SeedFrame {
            frame: seed_mpls(&[(LABEL_ROUTER_ALERT, 64), (l, 64)], &to(1)),
            what: "bad: router alert on top (reserved_label)",
        },
        SeedFrame {
            frame: seed_mpls(&[(l, 64)], &[0x00, 0, 0, 0, 0x45]),
            what: "bad: control word under BoS (payload_mismatch)",
        },
        SeedFrame {
            frame: seed_mpls(&[], &[0x00, 0x0b, 0xbf]),
            what: "bad: label stack cut short (truncated_label_stack)",
        },
        SeedFrame { frame: seed_mpls(&[], &[])[..10].to_vec(), what: "bad: 10-byte runt (too_short)" },
        SeedFrame {
            frame: frame(SEED_DST_MAC, SEED_SRC_MAC, &[], ETHERTYPE_MPLS_MC, &[(l, 64)], &to(1)),
            what: "bad: MPLS multicast ethertype 0x8848 (mpls_multicast)",
        },
        SeedFrame {
            frame: frame([0xff; 6], SEED_SRC_MAC, &[], ETHERTYPE_ARP, &[], &[0; 28]),
            what: "bad: ARP request (not_mpls)",
        },
        SeedFrame {
            frame: frame(
                SEED_DST_MAC,
                SEED_SRC_MAC,
                &[ETHERTYPE_QINQ, ETHERTYPE_VLAN],
                ETHERTYPE_MPLS,
                &[(l, 64)],
                &to(3),
            ),
            what: "10.1.1.3, label 48122 behind 802.1ad + 802.1Q tags",
        },
    ]
}

/// The labels of `pcaps/l3vpn.toml`: the egress's own transport label (a static egress
/// LSP) and the VPN labels of vpna's and vpnb's 10.1.1.0/24 (the first dynamic labels
/// from `label_base = 16`).
pub const L3VPN_TRANSPORT: u32 = 18;
pub const L3VPN_VPNA: u32 = 16;
pub const L3VPN_VPNB: u32 = 17;

/// The L3VPN capture (`pcaps/l3vpn.pcap`): traffic from the ingress PE to 10.1.1.x in
/// two VPN instances whose prefixes overlap, with and without the transport label on
/// top (label 18 over label 16 is the two-level stack of the public MPLS sample
/// captures), and two frames that must be dropped.
pub fn l3vpn_frames() -> Vec<SeedFrame> {
    let d = Ipv4Addr::new(172, 16, 0, 1);
    let to = |host: u8| ipv4_udp(d, Ipv4Addr::new(10, 1, 1, host), 64, 46);
    let (t, a, b) = (L3VPN_TRANSPORT, L3VPN_VPNA, L3VPN_VPNB);
    vec![
        SeedFrame {
            frame: seed_mpls(&[(t, 64), (a, 255)], &to(1)),
            what: "vpna 10.1.1.1, transport 18 over VPN label 16",
        },
        SeedFrame {
            frame: seed_mpls(&[(t, 64), (b, 255)], &to(1)),
            what: "vpnb 10.1.1.1, transport 18 over VPN label 17",
        },
        SeedFrame { frame: seed_mpls(&[(a, 64)], &to(2)), what: "vpna 10.1.1.2, VPN label 16 alone (PHP)" },
        SeedFrame { frame: seed_mpls(&[(b, 64)], &to(3)), what: "vpnb 10.1.1.3, VPN label 17 alone (PHP)" },
        SeedFrame {
            frame: seed_mpls(&[(t, 64), (a, 255)], &to(5)),
            what: "vpna 10.1.1.5, transport 18 over VPN label 16",
        },
        SeedFrame {
            frame: seed_mpls(&[(t, 64), (b, 255)], &to(5)),
            what: "vpnb 10.1.1.5, transport 18 over VPN label 17",
        },
        SeedFrame { frame: seed_mpls(&[(t, 64), (99, 255)], &to(1)), what: "bad: unknown VPN label 99 (no_ilm_entry)" },
        SeedFrame {
            frame: seed_mpls(&[(t, 64)], &to(1)),
            what: "bad: transport label alone: no public route (no_route)",
        },
    ]
}

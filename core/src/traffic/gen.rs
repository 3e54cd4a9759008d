//! Frame and pcap generation: the seed scenario's capture and synthetic benchmark
//! traffic. Used by `popgo gen`, the tests and the benches. Allocates freely (tools only).

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

/// How labels are drawn for synthetic traffic.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LabelDist {
    /// Always the first label.
    Single,
    /// Uniform over the label set.
    Uniform,
    /// Zipf with exponent `s` (rank 1 most frequent).
    Zipf(f64),
}

/// Synthetic benchmark traffic.
#[derive(Clone, Debug)]
pub struct Synth {
    pub count: u64,
    /// Labels are `first_label .. first_label + labels`.
    pub labels: u32,
    pub first_label: u32,
    pub dist: LabelDist,
    /// Frame size in bytes (Ethernet header through payload, no FCS).
    pub size: usize,
    /// Share of IPv6 payloads, 0.0..=1.0.
    pub v6_share: f64,
    /// Label stack depth: the BGP label plus `depth - 1` labels below it.
    pub depth: usize,
    pub seed: u64,
}

impl Default for Synth {
    fn default() -> Self {
        Synth {
            count: 100_000,
            labels: 100_000,
            first_label: 16,
            dist: LabelDist::Uniform,
            size: 64,
            v6_share: 0.0,
            depth: 1,
            seed: 1,
        }
    }
}

/// A small deterministic PRNG (xorshift64*): the same arguments give the same file.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() >> 32) * n) >> 32
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Destination IPv4 address that synthetic label `l` carries: 10.x.y.z from the label.
pub fn synth_v4_dst(l: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 | (l & 0x00ff_ffff))
}

impl Synth {
    /// Checks the parameters.
    pub fn check(&self) -> Result<(), String> {
        let min = 14 + 4 * self.depth.max(1) + if self.v6_share > 0.0 { 48 } else { 28 };
        if self.size < min || self.size > 9000 {
            return Err(format!("size {} must be in {min}..=9000 for this stack depth and IP mix", self.size));
        }
        let blocks = if self.v6_share > 0.0 { 2 } else { 1 };
        if self.labels == 0
            || self.first_label < 16
            || self.first_label as u64 + blocks * self.labels as u64 > (1 << 20)
        {
            return Err("labels must be in 16..=1048575".into());
        }
        if !(0.0..=1.0).contains(&self.v6_share) {
            return Err("v6 share must be in 0..=1".into());
        }
        if !(1..=8).contains(&self.depth) {
            return Err("depth must be in 1..=8".into());
        }
        Ok(())
    }

    /// Generates the frames, calling `out` for each (sequence number, frame).
    pub fn generate(&self, mut out: impl FnMut(u64, &[u8])) -> Result<(), String> {
        self.check()?;
        let mut rng = Rng::new(self.seed);
        let zipf = match self.dist {
            LabelDist::Zipf(s) => Some(ZipfTable::new(self.labels, s)),
            _ => None,
        };
        let src4 = Ipv4Addr::new(172, 16, 0, 1);
        let src6: Ipv6Addr = "2001:db8:d::1".parse().expect("literal");
        for i in 0..self.count {
            let rank = match (&self.dist, &zipf) {
                (LabelDist::Single, _) => 0,
                (_, Some(z)) => z.sample(&mut rng),
                _ => rng.below(self.labels as u64) as u32,
            };
            let v6 = self.v6_share > 0.0 && rng.unit() < self.v6_share;
            // IPv6 (6PE) traffic uses its own block of labels right after the IPv4 block:
            // an ILM entry carries one address family.
            let label = self.first_label + rank + if v6 { self.labels } else { 0 };
            let l3_len = self.size - 14 - 4 * self.depth;
            let payload = if v6 {
                ipv6_udp(src6, synth_v6_dst(label), 64, l3_len)
            } else {
                ipv4_udp(src4, synth_v4_dst(label), 64, l3_len)
            };
            let mut labels = vec![(label, 64u8)];
            for k in 1..self.depth {
                labels.push((1000 + k as u32, 64));
            }
            out(i, &seed_mpls(&labels, &payload));
        }
        Ok(())
    }
}

/// Inverse-CDF table for Zipf sampling.
struct ZipfTable {
    cdf: Vec<f64>,
}

impl ZipfTable {
    fn new(n: u32, s: f64) -> ZipfTable {
        let mut cdf = Vec::with_capacity(n as usize);
        let mut acc = 0.0;
        for k in 1..=n {
            acc += 1.0 / (k as f64).powf(s);
            cdf.push(acc);
        }
        for c in &mut cdf {
            *c /= acc;
        }
        ZipfTable { cdf }
    }

    fn sample(&self, rng: &mut Rng) -> u32 {
        let u = rng.unit();
        self.cdf.partition_point(|c| *c < u).min(self.cdf.len() - 1) as u32
    }
}

/// A popgo config that forwards labels `first .. first + labels` with POPGO, one /32
/// network per label, spread over `neighbors` next hops on `ports` ports. With `v6`, the
/// IPv6 block `first + labels .. first + 2 * labels` gets one /128 network each as well.
pub fn synth_config(first: u32, labels: u32, ports: usize, neighbors: usize, v6: bool) -> String {
    use std::fmt::Write;
    let mut s = String::from("[device]\nname = \"bench\"\n");
    for p in 0..ports {
        let _ = writeln!(s, "\n[[port]]\nname = \"p{p}\"\nmac = \"02:00:00:00:00:{:02x}\"", 0xf0 + p);
    }
    for n in 0..neighbors {
        let _ = writeln!(
            s,
            "\n[[neighbor]]\nip = \"192.168.{n}.1\"\nmac = \"02:00:00:00:{n:02x}:01\"\nport = \"p{}\"",
            n % ports
        );
        if v6 {
            let _ = writeln!(
                s,
                "\n[[neighbor]]\nip = \"fd00::{n:x}:1\"\nmac = \"02:00:00:01:{n:02x}:01\"\nport = \"p{}\"",
                n % ports
            );
        }
    }
    for l in first..first + labels {
        let n = l as usize % neighbors;
        let _ = writeln!(s, "\n[[static_route]]\nprefix = \"{}/32\"\nnext_hop = \"192.168.{n}.1\"", synth_v4_dst(l));
    }
    if v6 {
        for l in first + labels..first + 2 * labels {
            let n = l as usize % neighbors;
            let _ =
                writeln!(s, "\n[[static_route]]\nprefix = \"{}/128\"\nnext_hop = \"fd00::{n:x}:1\"", synth_v6_dst(l));
        }
    }
    let _ = writeln!(s, "\n[bgp]\nas = 100\nlabel_mode = \"per-route\"\npop_go = true\nlabel_base = 16");
    for l in first..first + labels {
        let _ = writeln!(s, "\n[[bgp.network]]\nprefix = \"{}/32\"\nlabel = {l}", synth_v4_dst(l));
    }
    if v6 {
        for l in first + labels..first + 2 * labels {
            let _ = writeln!(s, "\n[[bgp.network]]\nprefix = \"{}/128\"\nlabel = {l}", synth_v6_dst(l));
        }
    }
    s
}

/// Destination IPv6 address that synthetic (6PE) label `l` carries: 2001:db8::<label>.
pub fn synth_v6_dst(l: u32) -> Ipv6Addr {
    Ipv6Addr::from(0x2001_0db8_0000_0000_0000_0000_0000_0000u128 | l as u128)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::mpls::LabelStack;

    #[test]
    fn synth_frames_have_the_requested_shape() {
        let s = Synth {
            count: 500,
            labels: 10,
            dist: LabelDist::Zipf(1.2),
            size: 128,
            v6_share: 0.5,
            depth: 2,
            ..Synth::default()
        };
        let mut v6 = 0;
        let mut first = 0;
        s.generate(|_, f| {
            assert_eq!(f.len(), 128);
            let st = LabelStack::new_checked(&f[14..]).unwrap();
            assert_eq!(st.depth(), 2);
            let l = st.entries().next().unwrap().label();
            assert!((16..36).contains(&l), "v4 labels 16..26, v6 labels 26..36");
            first += (l == 16 || l == 26) as u32;
            match etherparse::SlicedPacket::from_ip(st.payload()).unwrap().net {
                Some(etherparse::NetSlice::Ipv6(_)) => v6 += 1,
                Some(etherparse::NetSlice::Ipv4(_)) => {}
                other => panic!("{other:?}"),
            }
        })
        .unwrap();
        assert!((150..350).contains(&v6), "v6 share {v6}/500");
        assert!(first > 100, "zipf rank 1 is most frequent: {first}");
        assert!(Synth { size: 20, ..Synth::default() }.check().is_err());
    }

    #[test]
    fn synth_config_loads_and_forwards_both_families() {
        let c = crate::config::Config::parse(&synth_config(16, 50, 4, 16, false)).unwrap();
        assert_eq!(c.bgp.unwrap().networks.len(), 50);
        let c = crate::config::Config::parse(&synth_config(16, 50, 4, 16, true)).unwrap();
        let snap = crate::ilm::build(&c, 0).unwrap();
        assert_eq!(snap.lsps.len(), 100);
        let s = Synth { count: 400, labels: 50, v6_share: 0.5, size: 96, ..Synth::default() };
        let mut plan = Default::default();
        s.generate(|_, f| {
            let v = crate::dataplane::burst::classify_frame(&snap, f, &mut plan);
            assert!(v.is_ok(), "{v:?}");
        })
        .unwrap();
    }
}

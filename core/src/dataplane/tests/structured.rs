//! Structure-aware properties: generators of valid Ethernet/VLAN/MPLS/IP frames for the
//! test snapshots' labels, optionally with one field changed or cut short, and a
//! reference model of the label rules that the data path must agree with byte for byte.
//!
//! Every property counts the cases that reach its interesting assertion and fails if
//! fewer than half do, so a generator that drifts away from the data path's interesting
//! branches is noticed.

use super::{config, run, snap};
use crate::config::TtlMode;
use crate::dataplane::burst::{apply_to, classify_frame, fast_path_frame, Plan};
use crate::ilm::{build, Af, IlmOp, Snapshot};
use crate::io::Verdict;
use crate::stats::DropReason;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};

// ---------------------------------------------------------------------------------
// Snapshots: the test config with and without POPGO, in uniform and in pipe mode.

fn pipe_snap(pop_go: bool) -> &'static Snapshot {
    static SNAPS: std::sync::OnceLock<[Snapshot; 2]> = std::sync::OnceLock::new();
    &SNAPS.get_or_init(|| {
        [build(&config(false, TtlMode::Pipe), 0).unwrap(), build(&config(true, TtlMode::Pipe), 0).unwrap()]
    })[pop_go as usize]
}

fn all_snaps() -> [(&'static str, &'static Snapshot); 4] {
    [
        ("popgo uniform", snap(true)),
        ("pop uniform", snap(false)),
        ("popgo pipe", pipe_snap(true)),
        ("pop pipe", pipe_snap(false)),
    ]
}

// ---------------------------------------------------------------------------------
// Frame generator.

/// The labels the test config binds: 10.1.1.0/24 (IPv4) and 2001:db8:1::/48 (IPv6).
const V4_LABEL: u32 = 48122;
const V6_LABEL: u32 = 48200;
use super::{TRANSPORT_LABEL, VPN_LABEL};

/// Which frames a generator builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// Any stack of explicit nulls, ELI/EL pairs and the config's labels, IPv4 or IPv6.
    Any,
    /// As `Any`, with IPv4 payloads only.
    V4,
    /// The fast path's case: one IPv4 label at the bottom, a 20-byte IPv4 header.
    Fast,
}

/// One label stack entry before encoding (bottom of stack is set on the last).
#[derive(Clone, Copy, Debug)]
struct Lse {
    label: u32,
    tc: u8,
    ttl: u8,
}

#[derive(Clone, Debug)]
enum Payload {
    V4 { option_words: u8, ttl: u8, dst: [u8; 4], body: u8 },
    V6 { hop: u8, dst: u128, body: u8 },
}

/// A valid frame, before any change.
#[derive(Clone, Debug)]
struct Spec {
    tags: Vec<u16>,
    stack: Vec<Lse>,
    payload: Payload,
    /// Bytes after the IP packet (Ethernet padding).
    pad: u8,
}

/// A field of a built frame that an edit may change.
#[derive(Clone, Copy, Debug)]
enum Field {
    /// A TPID or the ethertype (2 bytes).
    EtherType,
    /// The 20-bit label of the entry at this offset.
    Label,
    /// The bottom-of-stack bit of the entry at this offset.
    Bos,
    /// A TTL byte (label, IPv4 TTL, IPv6 hop limit).
    Ttl,
    /// The IPv4 version/IHL byte or the IPv6 version byte.
    IpFirst,
    /// A 16-bit length (IPv4 total length, IPv6 payload length) or checksum.
    Word,
    /// An address byte.
    Byte,
}

/// What is done to the built frame.
#[derive(Clone, Debug)]
enum Edit {
    None,
    /// Changes one field: which field, the new value, and whether the value is taken
    /// from the field's list of interesting values (else it is raw).
    Field(Index, u32, bool),
    /// Cuts the frame at one point.
    Cut(Index),
}

/// A generated frame: the spec, the edit, and the resulting bytes.
#[derive(Clone, Debug)]
struct Gen {
    frame: Vec<u8>,
    edited: bool,
}

fn ttl() -> impl Strategy<Value = u8> {
    prop_oneof![12 => 2u8..=255, 1 => 0u8..2]
}

fn lse(label: impl Strategy<Value = u32>) -> impl Strategy<Value = Lse> {
    (label, 0u8..8, ttl()).prop_map(|(label, tc, ttl)| Lse { label, tc, ttl })
}

/// An ELI and an entropy label (any value: it never decides).
fn eli_pair() -> impl Strategy<Value = Vec<Lse>> {
    (lse(Just(7u32)), lse(16u32..1 << 20)).prop_map(|(a, b)| vec![a, b])
}

/// Above the labels that decide: explicit nulls (either family), the static egress
/// LSP's transport label and ELI/EL pairs.
fn filler() -> impl Strategy<Value = Vec<Lse>> {
    prop_oneof![lse(prop_oneof![Just(0u32), Just(2u32), Just(TRANSPORT_LABEL)]).prop_map(|e| vec![e]), eli_pair()]
}

/// A config label (public IPv4 or IPv6, or the VPN instance's) followed by 0-2 ELI/EL
/// pairs.
fn service(v4_only: bool) -> impl Strategy<Value = Vec<Lse>> {
    let label = if v4_only {
        prop_oneof![Just(V4_LABEL), Just(VPN_LABEL)].boxed()
    } else {
        prop_oneof![Just(V4_LABEL), Just(V6_LABEL), Just(VPN_LABEL)].boxed()
    };
    (lse(label), prop::collection::vec(eli_pair(), 0..=2)).prop_map(|(l, pairs)| {
        let mut v = vec![l];
        v.extend(pairs.into_iter().flatten());
        v
    })
}

fn v4_payload(fast: bool) -> impl Strategy<Value = Payload> {
    let words = if fast { Just(0u8).boxed() } else { prop_oneof![3 => Just(0u8), 2 => 1u8..=10].boxed() };
    let dst = prop_oneof![
        16 => any::<u8>().prop_map(|h| [10, 1, 1, h]),
        1 => Just([192, 0, 2, 1]),
        1 => any::<[u8; 4]>(),
    ];
    (words, ttl(), dst, 8u8..40).prop_map(|(option_words, ttl, dst, body)| Payload::V4 { option_words, ttl, dst, body })
}

fn v6_payload() -> impl Strategy<Value = Payload> {
    let net = 0x2001_0db8_0001_u128 << 80;
    let dst = prop_oneof![16 => any::<u64>().prop_map(move |h| net | h as u128), 1 => any::<u128>()];
    (ttl(), dst, 8u8..40).prop_map(|(hop, dst, body)| Payload::V6 { hop, dst, body })
}

fn spec(shape: Shape) -> BoxedStrategy<Spec> {
    let tags = prop::collection::vec(prop_oneof![Just(0x8100u16), Just(0x88a8u16)], 0..=2);
    let pad = prop_oneof![3 => Just(0u8), 1 => 1u8..8];
    if shape == Shape::Fast {
        return (tags, lse(Just(V4_LABEL)), v4_payload(true), pad)
            .prop_map(|(tags, l, payload, pad)| Spec { tags, stack: vec![l], payload, pad })
            .boxed();
    }
    let v4_only = shape == Shape::V4;
    // Fillers above, 1-3 config labels (with their ELI/EL pairs), and at times an
    // explicit null at the bottom; the payload is of the family of the bottom label.
    let stack = (
        prop::collection::vec(filler(), 0..=2),
        prop_oneof![
            3 => prop::collection::vec(service(v4_only), 1..=1),
            1 => prop::collection::vec(service(v4_only), 2..=3),
        ],
        prop_oneof![
            3 => Just(None),
            1 => lse(if v4_only { Just(0u32).boxed() } else { prop_oneof![Just(0u32), Just(2u32)].boxed() }).prop_map(Some),
        ],
    );
    (tags, stack, v4_payload(false), v6_payload(), pad)
        .prop_map(|(tags, (top, services, null), p4, p6, pad)| {
            // The payload is of the family of the label that decides at the bottom.
            let v6 = match null {
                Some(n) => n.label == 2,
                None => services.last().is_some_and(|s| s[0].label == V6_LABEL),
            };
            let mut stack: Vec<Lse> = top.into_iter().flatten().collect();
            stack.extend(services.into_iter().flatten());
            stack.extend(null);
            Spec { tags, stack, payload: if v6 { p6 } else { p4 }, pad }
        })
        .boxed()
}

/// RFC 1071 checksum of a header (ones' complement of the ones' complement sum).
fn rfc1071(h: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in h.chunks(2) {
        sum += u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

impl Spec {
    /// The frame's bytes and its editable fields (offset, kind).
    fn build(&self) -> (Vec<u8>, Vec<(usize, Field)>) {
        let mut f = vec![2, 0, 0, 0, 0x0c, 0x0d, 2, 0, 0, 0, 0, 0x0d];
        let mut fields = Vec::new();
        for t in &self.tags {
            fields.push((f.len(), Field::EtherType));
            f.extend_from_slice(&t.to_be_bytes());
            f.extend_from_slice(&[0, 100]);
        }
        fields.push((f.len(), Field::EtherType));
        f.extend_from_slice(&0x8847u16.to_be_bytes());
        for (i, e) in self.stack.iter().enumerate() {
            let bos = i + 1 == self.stack.len();
            fields.extend([(f.len(), Field::Label), (f.len(), Field::Bos), (f.len() + 3, Field::Ttl)]);
            let w = e.label << 12 | u32::from(e.tc) << 9 | u32::from(bos) << 8 | u32::from(e.ttl);
            f.extend_from_slice(&w.to_be_bytes());
        }
        let ip = f.len();
        match self.payload {
            Payload::V4 { option_words, ttl, dst, body } => {
                let ihl = 20 + 4 * option_words as usize;
                let total = ihl + body as usize;
                let mut h = vec![0x40 | (ihl / 4) as u8, 0];
                h.extend_from_slice(&(total as u16).to_be_bytes());
                h.extend_from_slice(&[0x12, 0x34, 0x40, 0, ttl, 17, 0, 0, 172, 16, 0, 1]);
                h.extend_from_slice(&dst);
                // Options: NOPs then an end-of-options byte, or arbitrary bytes.
                h.extend((0..4 * option_words as usize).map(|i| (i as u8).wrapping_mul(37) | 1));
                let c = rfc1071(&h);
                h[10..12].copy_from_slice(&c.to_be_bytes());
                f.extend_from_slice(&h);
                f.extend((0..body).map(|i| i ^ 0x5a));
                fields.extend([
                    (ip, Field::IpFirst),
                    (ip + 2, Field::Word),
                    (ip + 8, Field::Ttl),
                    (ip + 10, Field::Word),
                    (ip + 16, Field::Byte),
                    (ip + 19, Field::Byte),
                ]);
            }
            Payload::V6 { hop, dst, body } => {
                f.extend_from_slice(&[0x60, 0, 0, 0]);
                f.extend_from_slice(&u16::from(body).to_be_bytes());
                f.extend_from_slice(&[17, hop]);
                f.extend_from_slice(&(0x2001_0db8_000d_u128 << 80 | 1).to_be_bytes());
                f.extend_from_slice(&dst.to_be_bytes());
                f.extend((0..body).map(|i| i ^ 0xa5));
                fields.extend([
                    (ip, Field::IpFirst),
                    (ip + 4, Field::Word),
                    (ip + 7, Field::Ttl),
                    (ip + 24, Field::Byte),
                    (ip + 29, Field::Byte),
                ]);
            }
        }
        f.extend(std::iter::repeat_n(0u8, self.pad as usize));
        (f, fields)
    }
}

impl Edit {
    fn apply(&self, mut f: Vec<u8>, fields: &[(usize, Field)]) -> Vec<u8> {
        match *self {
            Edit::None => {}
            Edit::Cut(at) => f.truncate(at.index(f.len())),
            Edit::Field(which, v, listed) => {
                let (at, kind) = *which.get(fields);
                let pick = |list: &[u32]| if listed { list[v as usize % list.len()] } else { v };
                match kind {
                    Field::EtherType => {
                        let t = pick(&[0x8847, 0x8848, 0x8100, 0x88a8, 0x0800, 0x86dd, 0x0806]) as u16;
                        f[at..at + 2].copy_from_slice(&t.to_be_bytes());
                    }
                    Field::Label => {
                        let l = pick(&[0, 1, 2, 3, 7, 13, 15, V4_LABEL, V6_LABEL, 40000]) & 0xfffff;
                        let w = u32::from_be_bytes(f[at..at + 4].try_into().unwrap());
                        f[at..at + 4].copy_from_slice(&(l << 12 | (w & 0xfff)).to_be_bytes());
                    }
                    Field::Bos => f[at + 2] ^= 1,
                    Field::Ttl => f[at] = pick(&[0, 1, 2, 255]) as u8,
                    Field::IpFirst => f[at] = pick(&[0x45, 0x46, 0x4f, 0x44, 0x60, 0x00, 0x10, 0x65]) as u8,
                    Field::Word => {
                        let old = u16::from_be_bytes([f[at], f[at + 1]]);
                        let w = if listed { old.wrapping_add((v % 17) as u16).wrapping_sub(8) } else { v as u16 };
                        f[at..at + 2].copy_from_slice(&w.to_be_bytes());
                    }
                    Field::Byte => f[at] = v as u8,
                }
            }
        }
        f
    }
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        5 => Just(Edit::None),
        4 => (any::<Index>(), any::<u32>(), any::<bool>()).prop_map(|(i, v, l)| Edit::Field(i, v, l)),
        1 => any::<Index>().prop_map(Edit::Cut),
    ]
}

/// Valid frames of `shape`, half of them with one field changed or cut short.
fn frames(shape: Shape) -> impl Strategy<Value = Gen> {
    (spec(shape), edit()).prop_map(|(s, e)| {
        let (f, fields) = s.build();
        Gen { frame: e.apply(f, &fields), edited: !matches!(e, Edit::None) }
    })
}

// ---------------------------------------------------------------------------------
// The reference model.

/// What the model decides for a frame: out port and bytes, or the drop reason.
type Outcome = Result<(u16, Vec<u8>), DropReason>;

/// The label rules, straight-line. Shares no code with the data path: it parses the
/// bytes itself and reads only the snapshot's ILM, adjacencies and FIB.
///
/// Rules, in the order they are checked:
/// 1. Ethernet: at least 14 bytes; up to two 0x8100/0x88a8 tags, each whole; a third
///    tag is `vlan_too_deep`. Ethertype 0x8848 is `mpls_multicast`, anything but
///    0x8847 `not_mpls`.
/// 2. The label stack is walked from the top; an entry that is not in the frame is
///    `truncated_label_stack`. Each step (an explicit null, an ELI/EL pair, a label
///    with an ILM entry, an ELI/EL pair directly below such a label) counts as one pop;
///    the ninth pop is `label_stack_too_deep`.
///    - 0/2 (explicit null): popped; at the bottom, the payload is routed by the FIB as
///      IPv4/IPv6 in the device's TTL mode.
///    - 7 (ELI): the entropy label below is popped with it; an ELI at the bottom, a
///      missing entropy label or one at the bottom is `entropy_malformed`.
///    - 1, 3-6, 8-15: `reserved_label`.
///    - other: no ILM entry is `no_ilm_entry`; ELI/EL pairs directly below are popped
///      with it. At the bottom: POPGO sends the IP packet to its adjacency, POP routes
///      it by the FIB. Not at the bottom: POPGO sends the rest as MPLS to its
///      adjacency, POP goes on with the next label.
/// 3. IP at the bottom: the first nibble must be the label's family (4 or 6; either
///    for a family-less entry), else `payload_mismatch`; a top TTL <= 1 is
///    `ttl_expired`; a short or inconsistent header is `bad_ip_header`; pipe mode with
///    an IP TTL <= 1 is `ttl_expired`; no route is `no_route`; an adjacency on a port
///    that is not attached is `bad_out_port`. The new TTL is the top TTL - 1 (uniform)
///    or the IP TTL - 1 (pipe); IPv4 gets the RFC 1624 checksum update.
/// 4. MPLS out: a top TTL <= 1 is `ttl_expired`; uniform mode writes the top TTL - 1
///    into the exposed entry, pipe leaves it.
///
/// The output is an untagged Ethernet header with the adjacency's MACs, then the
/// frame from the end of the popped labels (padding included).
fn model(s: &Snapshot, f: &[u8]) -> Outcome {
    use DropReason as D;
    let be16 = |b: &[u8], at: usize| u16::from_be_bytes([b[at], b[at + 1]]);

    // 1. Ethernet.
    if f.len() < 14 {
        return Err(D::TooShort);
    }
    let mut type_at = 12;
    let mut tags = 0;
    while be16(f, type_at) == 0x8100 || be16(f, type_at) == 0x88a8 {
        if tags == 2 {
            return Err(D::VlanTooDeep);
        }
        if f.len() < type_at + 2 + 4 {
            return Err(D::TooShort);
        }
        type_at += 4;
        tags += 1;
    }
    match be16(f, type_at) {
        0x8847 => {}
        0x8848 => return Err(D::MplsMulticast),
        _ => return Err(D::NotMpls),
    }

    // 2. The label stack as far as the frame holds it: (label, bos, ttl) per entry.
    let first = type_at + 2;
    let mut stack = Vec::new();
    let mut at = first;
    while at + 4 <= f.len() {
        let w = u32::from_be_bytes([f[at], f[at + 1], f[at + 2], f[at + 3]]);
        let bos = w & 0x100 != 0;
        stack.push((w >> 12, bos, w as u8));
        at += 4;
        if bos {
            break;
        }
    }
    let entry = |i: usize| stack.get(i).copied().ok_or(D::TruncatedLabelStack);
    let mut ttl_in = entry(0)?.2;

    enum End {
        /// `vrf`: the table a FIB lookup uses.
        Ip {
            af: Af,
            pipe: bool,
            adj: Option<u16>,
            vrf: u16,
        },
        Mpls {
            pipe: bool,
            adj: u16,
        },
    }
    let mut i = 0; // next entry
    let mut pops = 0;
    let end = loop {
        let (label, bos, _) = entry(i)?;
        pops += 1;
        if pops > 8 {
            return Err(D::LabelStackTooDeep);
        }
        if label == 0 || label == 2 {
            i += 1;
            if bos {
                break End::Ip { af: if label == 0 { Af::V4 } else { Af::V6 }, pipe: s.pipe, adj: None, vrf: 0 };
            }
        } else if label == 7 {
            let el = stack.get(i + 1).filter(|_| !bos).ok_or(D::EntropyMalformed)?;
            if el.1 {
                return Err(D::EntropyMalformed);
            }
            i += 2;
        } else if label < 16 {
            return Err(D::ReservedLabel);
        } else {
            let e = s.ilm.lookup(label);
            let op = e.op().ok_or(D::NoIlmEntry)?;
            i += 1;
            let mut bottom = bos;
            // ELI/EL pairs directly below go with the label.
            while !bottom {
                let (next, eli_bos, _) = entry(i)?;
                if next != 7 {
                    break;
                }
                pops += 1;
                if pops > 8 {
                    return Err(D::LabelStackTooDeep);
                }
                let el = stack.get(i + 1).filter(|_| !eli_bos).ok_or(D::EntropyMalformed)?;
                bottom = el.1;
                i += 2;
            }
            match (op, bottom) {
                (IlmOp::PopGo, true) => break End::Ip { af: e.af(), pipe: e.pipe(), adj: Some(e.adjacency()), vrf: 0 },
                (IlmOp::Pop, true) => break End::Ip { af: e.af(), pipe: e.pipe(), adj: None, vrf: e.vrf() },
                (IlmOp::Transport, true) => break End::Ip { af: e.af(), pipe: e.pipe(), adj: None, vrf: 0 },
                (IlmOp::PopGo, false) => break End::Mpls { pipe: e.pipe(), adj: e.adjacency() },
                (IlmOp::Pop, false) => {}
                // A transport label in pipe mode: its own TTL must not expire here,
                // and the exposed entry's TTL is the one that counts from now on.
                (IlmOp::Transport, false) if e.pipe() => {
                    if ttl_in <= 1 {
                        return Err(D::TtlExpired);
                    }
                    ttl_in = entry(i)?.2;
                }
                (IlmOp::Transport, false) => {}
            }
        }
    };
    let off = first + 4 * i;
    let out_port = |adj: u16| match s.adjacencies.get(adj as usize) {
        Some(a) if (a.port as usize) < s.ports.min(crate::stats::MAX_PORTS) => Ok((a.port, a.macs)),
        _ => Err(D::BadOutPort),
    };
    let header = |macs: [u8; 12], ethertype: u16| {
        let mut o = macs.to_vec();
        o.extend_from_slice(&ethertype.to_be_bytes());
        o
    };
    match end {
        // 4. MPLS out.
        End::Mpls { pipe, adj } => {
            if ttl_in <= 1 {
                return Err(D::TtlExpired);
            }
            let (port, macs) = out_port(adj)?;
            let mut o = header(macs, 0x8847);
            o.extend_from_slice(&f[off..]);
            if !pipe {
                o[14 + 3] = ttl_in - 1;
            }
            Ok((port, o))
        }
        // 3. IP at the bottom.
        End::Ip { af, pipe, adj, vrf } => {
            let fib = s.fib_of(vrf);
            let p = &f[off..];
            let version = p.first().map_or(0, |b| b >> 4);
            let v4 = match (version, af) {
                (4, Af::V4 | Af::Any) => true,
                (6, Af::V6 | Af::Any) => false,
                _ => return Err(D::PayloadMismatch),
            };
            if ttl_in <= 1 {
                return Err(D::TtlExpired);
            }
            let (ttl_at, route) = if v4 {
                if p.len() < 20 {
                    return Err(D::BadIpHeader);
                }
                let ihl = 4 * (p[0] & 15) as usize;
                let total = be16(p, 2) as usize;
                if ihl < 20 || ihl > total || total > p.len() {
                    return Err(D::BadIpHeader);
                }
                let dst = u32::from_be_bytes([p[16], p[17], p[18], p[19]]);
                (8, adj.or_else(|| fib.and_then(|f| f.lookup_v4(dst))))
            } else {
                if p.len() < 40 || 40 + be16(p, 4) as usize > p.len() {
                    return Err(D::BadIpHeader);
                }
                let dst = u128::from_be_bytes(p[24..40].try_into().unwrap());
                (7, adj.or_else(|| fib.and_then(|f| f.lookup_v6(dst))))
            };
            let new_ttl = if pipe {
                if p[ttl_at] <= 1 {
                    return Err(D::TtlExpired);
                }
                p[ttl_at] - 1
            } else {
                ttl_in - 1
            };
            let (port, macs) = out_port(route.ok_or(D::NoRoute)?)?;
            let mut o = header(macs, if v4 { 0x0800 } else { 0x86dd });
            o.extend_from_slice(p);
            let ip = &mut o[14..];
            if v4 {
                // RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), m the TTL/protocol word.
                let m = u32::from(be16(ip, 8));
                let m2 = u32::from(new_ttl) << 8 | u32::from(ip[9]);
                let hc = u32::from(be16(ip, 10));
                let mut sum = (!hc & 0xffff) + (!m & 0xffff) + m2;
                while sum >> 16 != 0 {
                    sum = (sum & 0xffff) + (sum >> 16);
                }
                ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
            }
            ip[ttl_at] = new_ttl;
            Ok((port, o))
        }
    }
}

// ---------------------------------------------------------------------------------
// Properties.

/// Runs `cases` cases of `test` over `strategy`; `test` returns whether the case
/// reached the property's assertion. Prints the reach ratio and fails below one half.
fn check<S: Strategy>(name: &str, cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<bool, TestCaseError>) {
    let reached = std::cell::Cell::new(0u64);
    let total = std::cell::Cell::new(0u64);
    let mut runner = TestRunner::new(RunnerConfig { cases, failure_persistence: None, ..RunnerConfig::default() });
    let r = runner.run(&strategy, |v| {
        total.set(total.get() + 1);
        let hit = test(v)?;
        reached.set(reached.get() + u64::from(hit));
        Ok(())
    });
    if let Err(e) = r {
        panic!("property {name}: {e}");
    }
    let (k, n) = (reached.get(), total.get());
    eprintln!("property {name}: {k}/{n} cases reached the assertion");
    assert!(k * 2 >= n, "property {name}: only {k}/{n} cases reached the assertion");
}

/// Whatever the fast path accepts, the general path decides the same way and rewrites
/// the frame to the same bytes.
#[test]
fn fast_path_agrees() {
    check("fast_path_agrees", 4000, frames(Shape::Fast), |g| {
        let mut reached = false;
        for (_, s) in all_snaps() {
            let (mut fast, mut slow) = (Plan::default(), Plan::default());
            if let Some((port, out)) = fast_path_frame(s, &g.frame, &mut fast) {
                prop_assert_eq!(classify_frame(s, &g.frame, &mut slow), Ok(port));
                prop_assert_eq!(fast, slow);
                prop_assert_eq!(out, apply_to(&g.frame, &slow));
                reached = true;
            }
        }
        Ok(reached)
    });
}

/// Frames of any shape never panic and every packet is accounted for: rx = tx + drops,
/// per reason and per port as the verdicts say, and a forwarded frame leaves on an
/// attached port with a whole Ethernet header of the ethertype of what follows it.
/// Reached: a burst in which at least half of the frames are forwarded.
#[test]
fn arbitrary_frames_are_accounted() {
    let burst = prop::collection::vec(frames(Shape::Any), 1..40);
    check("arbitrary_frames_are_accounted", 500, burst, |gens| {
        let frames: Vec<Vec<u8>> = gens.into_iter().map(|g| g.frame).collect();
        let mut forwarded = 0;
        for (_, s) in all_snaps() {
            let (outs, stats) = run(s, &frames);
            prop_assert_eq!(stats.rx_pkts, frames.len() as u64);
            let mut drops = [0u64; DropReason::COUNT];
            let mut tx = [0u64; crate::stats::MAX_PORTS];
            for (v, out) in &outs {
                match *v {
                    Verdict::Forward(p) => {
                        prop_assert!((p as usize) < s.ports);
                        tx[p as usize] += 1;
                        let t = u16::from_be_bytes([out[12], out[13]]);
                        let next = out.get(14).map_or(0, |b| b >> 4);
                        match t {
                            0x0800 => prop_assert_eq!(next, 4),
                            0x86dd => prop_assert_eq!(next, 6),
                            0x8847 => prop_assert!(out.len() >= 18),
                            _ => prop_assert!(false, "ethertype {:#x}", t),
                        }
                        forwarded += 1;
                    }
                    Verdict::Drop(r) => drops[r as usize] += 1,
                }
            }
            for r in DropReason::ALL {
                prop_assert_eq!(stats.drop_count(*r), drops[*r as usize], "{}", r);
            }
            prop_assert_eq!(&stats.port_tx_pkts[..], &tx[..]);
        }
        Ok(forwarded * 2 >= frames.len() * all_snaps().len())
    });
}

/// IPv4 under the config's labels: the TTL rewrite keeps a valid checksum valid and a
/// bad one bad, and leaves every other byte of the IP packet alone.
#[test]
fn mpls_like_frames_are_accounted() {
    check("mpls_like_frames_are_accounted", 3000, frames(Shape::V4), |g| {
        let f = &g.frame;
        let mut reached = false;
        for (_, s) in all_snaps() {
            let (outs, stats) = run(s, std::slice::from_ref(f));
            prop_assert!(stats.balanced());
            let (v, out) = &outs[0];
            if matches!(v, Verdict::Forward(_)) && out[12..14] == [0x08, 0x00] {
                let ip_out = &out[14..];
                let ip_in = &f[f.len() - ip_out.len()..];
                let ihl = 4 * (ip_in[0] & 15) as usize;
                prop_assert_eq!(rfc1071(&ip_out[..ihl]) == 0, rfc1071(&ip_in[..ihl]) == 0);
                prop_assert_eq!(&ip_out[..8], &ip_in[..8]);
                prop_assert_eq!(&ip_out[9..10], &ip_in[9..10]);
                prop_assert_eq!(&ip_out[12..], &ip_in[12..]);
                reached = true;
            }
        }
        Ok(reached)
    });
}

/// Frames per run of the oracle property: `ORACLE_CASES` bursts of `ORACLE_BURST`.
const ORACLE_BURST: usize = 64;
const ORACLE_CASES: u32 = 1600;

/// The data path agrees with the reference model on every generated frame, in every
/// snapshot: same verdict (port or drop reason), same output bytes. Reached: frames
/// forwarded by both (their bytes are compared).
#[test]
fn data_path_agrees_with_the_model() {
    let start = std::time::Instant::now();
    let frames_seen = std::cell::Cell::new(0u64);
    let edited = std::cell::Cell::new(0u64);
    let burst = prop::collection::vec(frames(Shape::Any), ORACLE_BURST);
    check("data_path_agrees_with_the_model", ORACLE_CASES, burst, |gens| {
        frames_seen.set(frames_seen.get() + gens.len() as u64);
        edited.set(edited.get() + gens.iter().filter(|g| g.edited).count() as u64);
        let frames: Vec<Vec<u8>> = gens.into_iter().map(|g| g.frame).collect();
        let mut forwarded = 0;
        for (name, s) in all_snaps() {
            let (outs, _) = run(s, &frames);
            for (f, (v, out)) in frames.iter().zip(outs) {
                let got = match v {
                    Verdict::Forward(p) => Ok((p, out)),
                    Verdict::Drop(r) => Err(r),
                };
                let want = model(s, f);
                prop_assert_eq!(&got, &want, "{}: frame {:02x?}", name, f);
                forwarded += usize::from(got.is_ok());
            }
        }
        Ok(forwarded * 2 >= frames.len() * all_snaps().len())
    });
    eprintln!(
        "property data_path_agrees_with_the_model: {} frames ({} edited) x {} snapshots in {:.1?}",
        frames_seen.get(),
        edited.get(),
        all_snaps().len(),
        start.elapsed()
    );
    assert!(frames_seen.get() >= 100_000);
}

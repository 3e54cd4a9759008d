//! `process_burst`: label disposition for a burst, in two passes.
//!
//! 1. **Classify**: parse L2 and the label stack, look the label up in the ILM (the
//!    slots of the whole burst are prefetched first so the lookups overlap), decide
//!    the out port and record a [`Plan`] of the rewrite. The frame is not touched.
//! 2. **Act**: apply each plan (TTL, pop, new Ethernet header) and count drops.
//!
//! Label processing follows RFC 3032 (stack encoding, explicit null 0/2), RFC 3443
//! (uniform/pipe TTL), RFC 4182 (explicit null anywhere in the stack), RFC 6790
//! (ELI 7 + entropy label are popped and never used to decide) and RFC 7274
//! (special-purpose labels 0-15).
//!
//! Per packet: no allocation, no locks, no syscalls, no panics (every read is
//! bounds-checked by the wire views; malformed input becomes a counted drop).

use super::Verdict;
use crate::ilm::{Af, IlmOp, Snapshot};
use crate::io::PacketMut;
use crate::stats::{DropReason, WorkerStats};
use crate::sys::prefetch::prefetch;
use crate::wire::ethernet::{
    emit_header_unchecked, Frame, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_MPLS, ETHERTYPE_MPLS_MC, ETH_HDR_BYTES,
};
use crate::wire::ip::{self, IPV4_TTL_OFFSET, IPV6_HOP_LIMIT_OFFSET};
use crate::wire::mpls::{
    LabelEntry, FIRST_UNRESERVED, LABEL_ELI, LABEL_IPV4_EXPLICIT_NULL, LABEL_IPV6_EXPLICIT_NULL, LSE_BYTES,
    LSE_TTL_OFFSET,
};

/// Default packets per burst: a DPDK-style batch that amortises per-burst work.
pub const BURST: usize = 32;
/// Largest burst `process_burst` accepts; longer slices are processed in chunks.
pub const MAX_BURST: usize = 256;
/// Label stack entries the data path pops in one pass (explicit nulls, ELI/EL pairs,
/// POP labels with more labels below). Deeper stacks are a counted drop.
pub const MAX_POPS: usize = 8;

/// How to rewrite a frame that is forwarded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// New Ethernet header: dst MAC then src MAC.
    macs: [u8; 12],
    /// Bytes removed from the front: old L2 header + popped labels - new L2 header.
    strip: u16,
    ethertype: u16,
    /// Offset in the original frame of the TTL byte to rewrite.
    ttl_at: u16,
    ttl: u8,
    ttl_kind: TtlKind,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum TtlKind {
    #[default]
    None,
    /// IPv4 TTL, with an incremental checksum update.
    Ipv4,
    /// A plain byte: IPv6 hop limit or the TTL of the label that becomes the top.
    Byte,
}

/// Per-worker scratch for one burst (allocated once; no per-burst allocation).
pub struct BurstCtx {
    plans: [Plan; MAX_BURST],
}

impl Default for BurstCtx {
    fn default() -> Self {
        BurstCtx { plans: [Plan::default(); MAX_BURST] }
    }
}

impl BurstCtx {
    pub fn new() -> Box<BurstCtx> {
        Box::default()
    }
}

/// Classifies and rewrites `pkts` in place, writing one verdict per packet into
/// `verdicts[..pkts.len()]`. Counts rx and drops; TX counting is the caller's (a
/// forwarded packet can still be dropped by a full TX ring).
pub fn process_burst<P: PacketMut>(
    snap: &Snapshot,
    pkts: &mut [P],
    verdicts: &mut [Verdict],
    ctx: &mut BurstCtx,
    stats: &mut WorkerStats,
) {
    assert!(verdicts.len() >= pkts.len(), "verdict array shorter than the burst");
    for (pkts, verdicts) in pkts.chunks_mut(MAX_BURST).zip(verdicts.chunks_mut(MAX_BURST)) {
        process_chunk(snap, pkts, verdicts, ctx, stats);
    }
}

#[inline(always)]
fn process_chunk<P: PacketMut>(
    snap: &Snapshot,
    pkts: &mut [P],
    verdicts: &mut [Verdict],
    ctx: &mut BurstCtx,
    stats: &mut WorkerStats,
) {
    let n = pkts.len();
    stats.bursts += 1;
    // Pass 0: start every ILM slot load of the burst so the lookups overlap.
    for p in pkts.iter() {
        prefetch_slot(snap, p.data());
    }
    // Pass 1: classify.
    for i in 0..n {
        let d = pkts[i].data();
        stats.rx_pkts += 1;
        stats.rx_bytes += d.len() as u64;
        verdicts[i] = match classify(snap, d) {
            Ok((port, plan)) => {
                ctx.plans[i] = plan;
                Verdict::Forward(port)
            }
            Err(r) => Verdict::Drop(r),
        };
    }
    // Pass 2: act.
    for i in 0..n {
        match verdicts[i] {
            Verdict::Forward(_) => apply(&mut pkts[i], &ctx.plans[i]),
            Verdict::Drop(r) => stats.count_drop(r),
        }
    }
}

/// Prefetches the ILM slot of the frame's top label, if it has one.
#[inline(always)]
fn prefetch_slot(snap: &Snapshot, d: &[u8]) {
    if let Ok(f) = Frame::new_checked(d) {
        if let Ok(lse) = LabelEntry::read(d, f.l2_bytes()) {
            prefetch(snap.ilm.slot_ptr(lse.label()));
        }
    }
}

/// Decides what happens to one frame: the out port and the rewrite plan.
#[inline(always)]
pub fn classify(snap: &Snapshot, d: &[u8]) -> Result<(u16, Plan), DropReason> {
    let frame = Frame::new_checked(d)?;
    match frame.ethertype() {
        ETHERTYPE_MPLS => {}
        ETHERTYPE_MPLS_MC => return Err(DropReason::MplsMulticast),
        _ => return Err(DropReason::NotMpls),
    }
    let mut off = frame.l2_bytes();
    let mut lse = LabelEntry::read(d, off)?;
    // RFC 3443: the TTL of the received top entry is the one decremented.
    let ttl_in = lse.ttl();
    let mut pops = 0;
    loop {
        pops += 1;
        if pops > MAX_POPS {
            return Err(DropReason::LabelStackTooDeep);
        }
        let label = lse.label();
        if label < FIRST_UNRESERVED {
            match label {
                LABEL_IPV4_EXPLICIT_NULL | LABEL_IPV6_EXPLICIT_NULL => {
                    off += LSE_BYTES;
                    if lse.bos() {
                        // RFC 3032 2.1: the payload is IP of the label's family; route it.
                        let af = if label == LABEL_IPV4_EXPLICIT_NULL { Af::V4 } else { Af::V6 };
                        return ip_plan(snap, d, off, af, ttl_in, snap.pipe, None);
                    }
                }
                LABEL_ELI => {
                    let (next, bos) = skip_entropy(d, off, lse)?;
                    if bos {
                        // Nothing left to decide on below the entropy label.
                        return Err(DropReason::EntropyMalformed);
                    }
                    off = next;
                }
                _ => return Err(on_reserved_label()),
            }
            lse = LabelEntry::read(d, off)?;
            continue;
        }
        let e = snap.ilm.lookup(label);
        let Some(op) = e.op() else { return Err(on_unknown_label()) };
        off += LSE_BYTES;
        // RFC 6790 4.2: ELI/EL pairs directly below the popped label go with it.
        let mut bos = lse.bos();
        while !bos {
            let next = LabelEntry::read(d, off)?;
            if next.label() != LABEL_ELI {
                break;
            }
            (off, bos) = skip_entropy(d, off, next)?;
        }
        match (op, bos) {
            (IlmOp::PopGo, true) => return ip_plan(snap, d, off, e.af(), ttl_in, e.pipe(), Some(e.adjacency())),
            (IlmOp::Pop, true) => return ip_plan(snap, d, off, e.af(), ttl_in, e.pipe(), None),
            (IlmOp::PopGo, false) => return mpls_plan(snap, off, ttl_in, e.pipe(), e.adjacency()),
            (IlmOp::Pop, false) => {
                // Pop and process the exposed label (RFC 3031 3.10).
                lse = LabelEntry::read(d, off)?;
            }
        }
    }
}

/// Skips an ELI at `off` and the entropy label below it. Returns the new offset and
/// the entropy label's bottom-of-stack bit.
#[inline(always)]
fn skip_entropy(d: &[u8], off: usize, eli: LabelEntry) -> Result<(usize, bool), DropReason> {
    if eli.bos() {
        return Err(DropReason::EntropyMalformed);
    }
    let el = LabelEntry::read(d, off + LSE_BYTES).map_err(|_| DropReason::EntropyMalformed)?;
    Ok((off + 2 * LSE_BYTES, el.bos()))
}

#[cold]
#[inline(never)]
fn on_reserved_label() -> DropReason {
    DropReason::ReservedLabel
}

#[cold]
#[inline(never)]
fn on_unknown_label() -> DropReason {
    DropReason::NoIlmEntry
}

#[cold]
#[inline(never)]
fn on_ttl_expired() -> DropReason {
    DropReason::TtlExpired
}

/// The label stack ended at `off`: the payload must be IP of family `af`.
#[inline(always)]
fn ip_plan(
    snap: &Snapshot,
    d: &[u8],
    off: usize,
    af: Af,
    ttl_in: u8,
    pipe: bool,
    adj: Option<u16>,
) -> Result<(u16, Plan), DropReason> {
    let p = &d[off..];
    // Control-word nibbles 0 and 1 (and anything else) are never IP.
    let (v4, ethertype) = match (ip::version(p), af) {
        (4, Af::V4 | Af::Any) => (true, ETHERTYPE_IPV4),
        (6, Af::V6 | Af::Any) => (false, ETHERTYPE_IPV6),
        _ => return Err(DropReason::PayloadMismatch),
    };
    if ttl_in <= 1 {
        return Err(on_ttl_expired());
    }
    let (ttl_at, ip_ttl, kind, dst_adj) = if v4 {
        ip::check_ipv4(p)?;
        let dst = adj.map_or_else(|| snap.fib.lookup_v4(ip::ipv4_dst(p)), Some);
        (off + IPV4_TTL_OFFSET, p[IPV4_TTL_OFFSET], TtlKind::Ipv4, dst)
    } else {
        ip::check_ipv6(p)?;
        let dst = adj.map_or_else(|| snap.fib.lookup_v6(ip::ipv6_dst(p)), Some);
        (off + IPV6_HOP_LIMIT_OFFSET, p[IPV6_HOP_LIMIT_OFFSET], TtlKind::Byte, dst)
    };
    let ttl = if pipe {
        // Pipe: the IP TTL is decremented on its own; the MPLS TTL is not copied.
        if ip_ttl <= 1 {
            return Err(on_ttl_expired());
        }
        ip_ttl - 1
    } else {
        // Uniform: the IP TTL becomes the incoming MPLS TTL - 1.
        ttl_in - 1
    };
    let adj = dst_adj.ok_or(DropReason::NoRoute)?;
    let (port, macs) = adjacency(snap, adj)?;
    Ok((
        port,
        Plan { macs, strip: (off - ETH_HDR_BYTES) as u16, ethertype, ttl_at: ttl_at as u16, ttl, ttl_kind: kind },
    ))
}

/// More labels remain below the popped one: the packet leaves as MPLS.
#[inline(always)]
fn mpls_plan(snap: &Snapshot, off: usize, ttl_in: u8, pipe: bool, adj: u16) -> Result<(u16, Plan), DropReason> {
    if ttl_in <= 1 {
        return Err(on_ttl_expired());
    }
    let (port, macs) = adjacency(snap, adj)?;
    // Uniform: the exposed label carries the decremented TTL; pipe leaves it alone.
    let ttl_kind = if pipe { TtlKind::None } else { TtlKind::Byte };
    Ok((
        port,
        Plan {
            macs,
            strip: (off - ETH_HDR_BYTES) as u16,
            ethertype: ETHERTYPE_MPLS,
            ttl_at: (off + LSE_TTL_OFFSET) as u16,
            ttl: ttl_in - 1,
            ttl_kind,
        },
    ))
}

#[inline(always)]
fn adjacency(snap: &Snapshot, adj: u16) -> Result<(u16, [u8; 12]), DropReason> {
    match snap.adjacencies.get(adj as usize) {
        Some(a) if (a.port as usize) < snap.ports => Ok((a.port, a.macs)),
        _ => Err(DropReason::BadOutPort),
    }
}

/// Rewrites a classified frame: TTL first (at its original offset), then the pop, then
/// the new untagged Ethernet header.
#[inline(always)]
fn apply<P: PacketMut>(pkt: &mut P, plan: &Plan) {
    let d = pkt.data_mut();
    let at = plan.ttl_at as usize;
    match plan.ttl_kind {
        TtlKind::None => {}
        TtlKind::Ipv4 => ip::ipv4_set_ttl(&mut d[at - IPV4_TTL_OFFSET..], plan.ttl),
        TtlKind::Byte => d[at] = plan.ttl,
    }
    pkt.pull_front(plan.strip as usize);
    emit_header_unchecked(pkt.data_mut(), &plan.macs, plan.ethertype);
}

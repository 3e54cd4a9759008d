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

use crate::ilm::{Af, IlmOp, Snapshot};
use crate::io::PacketMut;
use crate::io::{Verdict, MAX_BURST};
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

/// Top of a frame's label stack, parsed in pass 0: (L2 header bytes, top entry).
type Top = Result<(u8, LabelEntry), DropReason>;

/// Per-worker scratch for one burst (allocated once; no per-burst allocation).
pub struct BurstCtx {
    tops: [Top; MAX_BURST],
    plans: [Plan; MAX_BURST],
}

impl Default for BurstCtx {
    fn default() -> Self {
        BurstCtx { tops: [Err(DropReason::TooShort); MAX_BURST], plans: [Plan::default(); MAX_BURST] }
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
    let (tops, plans) = (&mut ctx.tops[..n], &mut ctx.plans[..n]);
    let verdicts = &mut verdicts[..n];
    stats.bursts += 1;
    stats.rx_pkts += n as u64;
    // Pass 0: parse L2 and the top label of every frame and start its ILM slot load, so
    // the lookups of the whole burst overlap instead of missing one after another.
    let mut rx_bytes = 0;
    for (p, top) in pkts.iter().zip(tops.iter_mut()) {
        let d = p.data();
        rx_bytes += d.len() as u64;
        *top = top_of_stack(d);
        if let Ok((_, lse)) = top {
            prefetch(snap.ilm.slot_ptr(lse.label()));
        }
    }
    stats.rx_bytes += rx_bytes;
    // Pass 1: classify (lookup + decide) into verdicts and plans.
    for i in 0..n {
        verdicts[i] = match tops[i] {
            Ok((l2, lse)) => {
                let d = pkts[i].data();
                let e = snap.ilm.lookup(lse.label());
                match fast_popgo_v4(snap, d, l2 as usize, lse, e, &mut plans[i]) {
                    Some(port) => Verdict::Forward(port),
                    None => match classify(snap, d, l2 as usize, lse, &mut plans[i]) {
                        Ok(port) => Verdict::Forward(port),
                        Err(r) => Verdict::Drop(r),
                    },
                }
            }
            Err(r) => Verdict::Drop(r),
        };
    }
    // Pass 2: act.
    for i in 0..n {
        match verdicts[i] {
            Verdict::Forward(_) => apply(&mut pkts[i], &plans[i]),
            Verdict::Drop(r) => stats.count_drop(r),
        }
    }
}

/// Parses the L2 header (0-2 tags) and reads the top label stack entry.
#[inline(always)]
fn top_of_stack(d: &[u8]) -> Top {
    let frame = Frame::new_checked(d)?;
    match frame.ethertype() {
        ETHERTYPE_MPLS => {}
        ETHERTYPE_MPLS_MC => return Err(DropReason::MplsMulticast),
        _ => return Err(DropReason::NotMpls),
    }
    let l2 = frame.l2_bytes();
    Ok((l2 as u8, LabelEntry::read(d, l2)?))
}

/// The common case in one go: a uniform-mode POPGO entry for IPv4, the label at the
/// bottom of the stack, a plain 20-byte IPv4 header that fits the frame, a live TTL and
/// a valid adjacency. Returns None for anything else, which `classify` then decides (with
/// the same result for the frames this accepts: see the `fast_path_agrees` test). It
/// exists because the general label-stack walk costs more instructions per packet than
/// the whole common case (measured with callgrind on the replay benchmark).
#[inline(always)]
fn fast_popgo_v4(
    snap: &Snapshot,
    d: &[u8],
    l2: usize,
    lse: LabelEntry,
    e: crate::ilm::IlmEntry,
    plan: &mut Plan,
) -> Option<u16> {
    if e.op() != Some(IlmOp::PopGo) || e.af() != Af::V4 || e.pipe() || !lse.bos() || lse.ttl() <= 1 {
        return None;
    }
    let off = l2 + LSE_BYTES;
    let ip = d.get(off..)?;
    let h = ip.first_chunk::<20>()?;
    let total = u16::from_be_bytes([h[2], h[3]]) as usize;
    if h[0] != 0x45 || total < 20 || total > ip.len() {
        return None;
    }
    let a = snap.adjacencies.get(e.adjacency() as usize)?;
    if a.port as usize >= snap.ports {
        return None;
    }
    *plan = Plan {
        macs: a.macs,
        strip: (off - ETH_HDR_BYTES) as u16,
        ethertype: ETHERTYPE_IPV4,
        ttl_at: (off + IPV4_TTL_OFFSET) as u16,
        ttl: lse.ttl() - 1,
        ttl_kind: TtlKind::Ipv4,
    };
    Some(a.port)
}

/// Decides what happens to one frame (whole frame `d`, top entry `lse` at `l2`): returns
/// the out port and fills `plan` with the rewrite. The frame is not modified.
#[inline(always)]
pub fn classify(snap: &Snapshot, d: &[u8], l2: usize, mut lse: LabelEntry, plan: &mut Plan) -> Result<u16, DropReason> {
    let mut off = l2;
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
                        return ip_plan(snap, d, off, af, ttl_in, snap.pipe, None, plan);
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
            (IlmOp::PopGo, true) => return ip_plan(snap, d, off, e.af(), ttl_in, e.pipe(), Some(e.adjacency()), plan),
            (IlmOp::Pop, true) => return ip_plan(snap, d, off, e.af(), ttl_in, e.pipe(), None, plan),
            (IlmOp::PopGo, false) => return mpls_plan(snap, off, ttl_in, e.pipe(), e.adjacency(), plan),
            (IlmOp::Pop, false) => {
                // Pop and process the exposed label (RFC 3031 3.10).
                lse = LabelEntry::read(d, off)?;
            }
        }
    }
}

/// The fast path on a whole frame (tests compare it with `classify_frame`).
#[cfg(test)]
pub(crate) fn fast_path_frame(snap: &Snapshot, d: &[u8], plan: &mut Plan) -> Option<u16> {
    let (l2, lse) = top_of_stack(d).ok()?;
    fast_popgo_v4(snap, d, l2 as usize, lse, snap.ilm.lookup(lse.label()), plan)
}

/// Classifies one whole frame (tools and tests; the burst path splits the parse).
pub fn classify_frame(snap: &Snapshot, d: &[u8], plan: &mut Plan) -> Result<u16, DropReason> {
    let (l2, lse) = top_of_stack(d)?;
    classify(snap, d, l2 as usize, lse, plan)
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
#[allow(clippy::too_many_arguments)] // all per-packet scalars; a struct would only add copies
fn ip_plan(
    snap: &Snapshot,
    d: &[u8],
    off: usize,
    af: Af,
    ttl_in: u8,
    pipe: bool,
    adj: Option<u16>,
    plan: &mut Plan,
) -> Result<u16, DropReason> {
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
    *plan = Plan { macs, strip: (off - ETH_HDR_BYTES) as u16, ethertype, ttl_at: ttl_at as u16, ttl, ttl_kind: kind };
    Ok(port)
}

/// More labels remain below the popped one: the packet leaves as MPLS.
#[inline(always)]
fn mpls_plan(
    snap: &Snapshot,
    off: usize,
    ttl_in: u8,
    pipe: bool,
    adj: u16,
    plan: &mut Plan,
) -> Result<u16, DropReason> {
    if ttl_in <= 1 {
        return Err(on_ttl_expired());
    }
    let (port, macs) = adjacency(snap, adj)?;
    // Uniform: the exposed label carries the decremented TTL; pipe leaves it alone.
    let ttl_kind = if pipe { TtlKind::None } else { TtlKind::Byte };
    *plan = Plan {
        macs,
        strip: (off - ETH_HDR_BYTES) as u16,
        ethertype: ETHERTYPE_MPLS,
        ttl_at: (off + LSE_TTL_OFFSET) as u16,
        ttl: ttl_in - 1,
        ttl_kind,
    };
    Ok(port)
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

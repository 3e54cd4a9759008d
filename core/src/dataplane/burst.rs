//! `process_burst`: label disposition for a burst, in two passes.
//!
//! 0. **Parse**: read L2 and the top label of every frame and prefetch its ILM slot,
//!    so the lookups of the whole burst overlap.
//! 1. **Decide and act**: the common case (uniform POPGO of IPv4 at the bottom of the
//!    stack) is checked and rewritten in one go (`fast_popgo_v4` + `pop_go_v4`);
//!    everything else is classified into a [`Plan`] (`classify`, the general
//!    label-stack walk), which is then applied. Drops are counted, forwarded packets
//!    tallied per port for the TX side.
//!
//! Label processing follows RFC 3032 (stack encoding, explicit null 0/2), RFC 3443
//! (uniform/pipe TTL), RFC 4182 (explicit null anywhere in the stack), RFC 6790
//! (ELI 7 + entropy label are popped and never used to decide) and RFC 7274
//! (special-purpose labels 0-15).
//!
//! Per packet: no allocation, no locks, no syscalls, no panics (every read is
//! bounds-checked by the wire views or within a fixed-size window of the frame;
//! malformed input becomes a counted drop).

use crate::ilm::{Adjacency, Af, IlmOp, Snapshot};
use crate::io::PacketMut;
use crate::io::{Verdict, MAX_BURST};
use crate::stats::lsp::{LspCounters, LspRow};
use crate::stats::{DropReason, TxTally, WorkerStats, MAX_PORTS};
use crate::sys::prefetch::prefetch;
use crate::wire::ethernet::{
    emit_header_unchecked, Frame, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_MPLS, ETHERTYPE_MPLS_MC, ETH_HDR_BYTES,
    VLAN_TAG_BYTES,
};
use crate::wire::ip::{self, IPV4_MIN_HDR_BYTES, IPV4_TTL_OFFSET, IPV6_HOP_LIMIT_OFFSET};
use crate::wire::mpls::{
    LabelEntry, FIRST_UNRESERVED, LABEL_ELI, LABEL_IPV4_EXPLICIT_NULL, LABEL_IPV6_EXPLICIT_NULL, LSE_BYTES,
    LSE_TTL_OFFSET,
};
use std::sync::Arc;

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
    /// The label whose ILM entry decided the forward (the one counted per LSP); for an
    /// explicit null at the bottom, that null label.
    label: u32,
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

/// Top of a frame's label stack, parsed in pass 0 and packed in one word: the top
/// entry in bits 0-31 and the L2 header length (14, 18 or 22) in bits 32-39; for a
/// frame that is already a drop, 0 there and the reason in bits 40-47.
#[derive(Clone, Copy, Debug)]
struct Top(u64);

impl Top {
    #[inline(always)]
    fn parse(d: &[u8]) -> Top {
        match top_of_stack(d) {
            Ok((l2, lse)) => Top(u64::from(lse.0) | u64::from(l2) << 32),
            Err(r) => Top((r as u64) << 40),
        }
    }

    /// The top label (0 for a drop: its ILM slot may be prefetched all the same).
    #[inline(always)]
    fn label(self) -> u32 {
        LabelEntry(self.0 as u32).label()
    }

    #[inline(always)]
    fn get(self) -> Result<(usize, LabelEntry), DropReason> {
        match (self.0 >> 32) as u8 {
            0 => Err(DropReason::ALL.get((self.0 >> 40) as u8 as usize).copied().unwrap_or(DropReason::TooShort)),
            l2 => Ok((l2 as usize, LabelEntry(self.0 as u32))),
        }
    }
}

/// Per-worker scratch for one burst (allocated once; no per-burst allocation).
pub struct BurstCtx {
    tops: [Top; MAX_BURST],
    /// Per-port packets and bytes forwarded by the last `process_burst`.
    tx: TxTally,
    /// Where forwarded packets are counted per LSP: the counters and this worker's rows
    /// (the one after its first table swap once `WorkerStats::ilm_swaps_seen` is set).
    lsps: Option<(Arc<LspCounters>, usize)>,
}

impl Default for BurstCtx {
    fn default() -> Self {
        BurstCtx { tops: [Top(0); MAX_BURST], tx: TxTally::default(), lsps: None }
    }
}

impl BurstCtx {
    pub fn new() -> Box<BurstCtx> {
        Box::default()
    }

    /// Counts every forwarded packet per LSP from now on, in row `worker` of `lsps`.
    pub fn count_lsps(&mut self, lsps: Arc<LspCounters>, worker: usize) {
        self.lsps = Some((lsps, worker));
    }

    /// Per-port packets and bytes that the last [`process_burst`] forwarded: what a TX
    /// path that sends every forwarded packet adds to its counters
    /// ([`WorkerStats::count_tx_tally`]).
    #[inline(always)]
    pub fn forwarded(&self) -> &TxTally {
        &self.tx
    }
}

/// Classifies and rewrites `pkts` in place, writing one verdict per packet into
/// `verdicts[..pkts.len()]`. Counts rx and drops, and tallies the forwarded packets per
/// port in `ctx` ([`BurstCtx::forwarded`]); TX counting is the caller's (a forwarded
/// packet can still be dropped by a full TX ring).
pub fn process_burst<P: PacketMut>(
    snap: &Snapshot,
    pkts: &mut [P],
    verdicts: &mut [Verdict],
    ctx: &mut BurstCtx,
    stats: &mut WorkerStats,
) {
    assert!(verdicts.len() >= pkts.len(), "verdict array shorter than the burst");
    let ports = snap.ports.min(MAX_PORTS);
    ctx.tx.reset(ports);
    for (pkts, verdicts) in pkts.chunks_mut(MAX_BURST).zip(verdicts.chunks_mut(MAX_BURST)) {
        process_chunk(snap, ports, pkts, verdicts, ctx, stats);
    }
}

#[inline(always)]
fn process_chunk<P: PacketMut>(
    snap: &Snapshot,
    ports: usize,
    pkts: &mut [P],
    verdicts: &mut [Verdict],
    ctx: &mut BurstCtx,
    stats: &mut WorkerStats,
) {
    let n = pkts.len();
    let BurstCtx { tops, tx, lsps } = ctx;
    let lsp = lsps.as_ref().and_then(|(c, w)| c.row(*w, stats.ilm_swaps_seen != 0));
    let tops = &mut tops[..n];
    let verdicts = &mut verdicts[..n];
    stats.bursts += 1;
    stats.rx_pkts += n as u64;
    // Pass 0: parse L2 and the top label of every frame and start its ILM slot load, so
    // the lookups of the whole burst overlap instead of missing one after another.
    let mut rx_bytes = 0;
    for (p, top) in pkts.iter().zip(tops.iter_mut()) {
        let d = p.data();
        rx_bytes += d.len() as u64;
        *top = Top::parse(d);
        prefetch(snap.ilm.slot_ptr(top.label()));
    }
    stats.rx_bytes += rx_bytes;
    // Pass 1: decide and act. The common case is decided and rewritten in one go; the
    // rest is classified into a plan that is then applied.
    for ((pkt, top), v) in pkts.iter_mut().zip(tops.iter()).zip(verdicts.iter_mut()) {
        *v = match top.get() {
            Ok((l2, lse)) => {
                let e = snap.ilm.lookup(lse.label());
                let d = pkt.data_mut();
                match fast_popgo_v4(snap, d, l2, lse, e, ports) {
                    Some(a) => {
                        let strip = pop_go_v4(d, l2, lse.ttl() - 1, &a.macs);
                        let out = d.len() - strip;
                        pkt.pull_front(strip);
                        tx.add(a.port as usize, out);
                        if let Some(lsp) = lsp {
                            lsp.add(lse.label(), out, a.port);
                        }
                        Verdict::Forward(a.port)
                    }
                    // The egress's own transport label over a POPGO VPN (or BGP) label,
                    // the usual L3VPN stack without PHP, in one go as well.
                    None => match fast_transport_popgo_v4(snap, d, l2, lse, e, ports) {
                        Some((a, label)) => {
                            let strip = pop_go_v4_at(d, l2, 2, lse.ttl() - 1, &a.macs);
                            let out = d.len() - strip;
                            pkt.pull_front(strip);
                            tx.add(a.port as usize, out);
                            if let Some(lsp) = lsp {
                                lsp.add(label, out, a.port);
                            }
                            Verdict::Forward(a.port)
                        }
                        None => general(snap, pkt, l2, lse, tx, lsp),
                    },
                }
            }
            Err(r) => Verdict::Drop(r),
        };
        if let Verdict::Drop(r) = *v {
            stats.count_drop(r);
        }
    }
}

/// Everything but the fast case: the label-stack walk into a plan, then the rewrite.
#[inline(never)]
fn general<P: PacketMut>(
    snap: &Snapshot,
    pkt: &mut P,
    l2: usize,
    lse: LabelEntry,
    tx: &mut TxTally,
    lsp: Option<&LspRow>,
) -> Verdict {
    let mut plan = Plan::default();
    match classify(snap, pkt.data(), l2, lse, &mut plan) {
        Ok(port) => {
            apply(pkt, &plan);
            tx.add(port as usize, pkt.data().len());
            if let Some(lsp) = lsp {
                lsp.add(plan.label, pkt.data().len(), port);
            }
            Verdict::Forward(port)
        }
        Err(r) => Verdict::Drop(r),
    }
}

/// Parses the L2 header (0-2 tags) and reads the top label stack entry.
#[inline(always)]
fn top_of_stack(d: &[u8]) -> Result<(u8, LabelEntry), DropReason> {
    // Untagged MPLS with a whole top entry, the common case, is decided first.
    if let Some(h) = d.first_chunk::<{ ETH_HDR_BYTES + LSE_BYTES }>() {
        if u16::from_be_bytes([h[12], h[13]]) == ETHERTYPE_MPLS {
            return Ok((ETH_HDR_BYTES as u8, LabelEntry(u32::from_be_bytes([h[14], h[15], h[16], h[17]]))));
        }
    }
    let frame = Frame::new_checked(d)?;
    match frame.ethertype() {
        ETHERTYPE_MPLS => {}
        ETHERTYPE_MPLS_MC => return Err(DropReason::MplsMulticast),
        _ => return Err(DropReason::NotMpls),
    }
    let l2 = frame.l2_bytes();
    Ok((l2 as u8, LabelEntry::read(d, l2)?))
}

/// Largest L2 header the data path parses: Ethernet with two VLAN tags.
const MAX_L2_BYTES: usize = ETH_HDR_BYTES + 2 * VLAN_TAG_BYTES;
/// The bytes the fast path reads and writes: the largest L2 header, one label and a
/// 20-byte IPv4 header. It works on this fixed-size window of the frame, so its reads
/// and writes need no bounds checks of their own; shorter frames take the general path.
const FAST_WINDOW: usize = MAX_L2_BYTES + LSE_BYTES + IPV4_MIN_HDR_BYTES;

/// The common case in one go: a uniform-mode POPGO entry for IPv4, the label at the
/// bottom of the stack, a plain 20-byte IPv4 header that fits the frame, a live TTL and
/// a valid adjacency. Returns the adjacency, or None for anything else, which
/// `classify` then decides (with the same result for the frames this accepts: see the
/// `fast_path_agrees` test). It exists because the general label-stack walk costs more
/// instructions per packet than the whole common case (measured with callgrind on the
/// replay benchmark). Reads `d` only.
#[inline(always)]
fn fast_popgo_v4<'s>(
    snap: &'s Snapshot,
    d: &[u8],
    l2: usize,
    lse: LabelEntry,
    e: crate::ilm::IlmEntry,
    ports: usize,
) -> Option<&'s Adjacency> {
    if !e.is_uniform_pop_go_v4() || !lse.bos() || lse.ttl() <= 1 {
        return None;
    }
    let w = d.first_chunk::<FAST_WINDOW>()?;
    // (l2 is 14, 18 or 22; the clamp lets the compiler see the window reads in bounds.)
    let off = l2.clamp(ETH_HDR_BYTES, MAX_L2_BYTES) + LSE_BYTES;
    if !plain_ipv4(&w[off..off + IPV4_MIN_HDR_BYTES], d.len() - off) {
        return None;
    }
    let a = snap.adjacencies.get(e.adjacency() as usize)?;
    if a.port as usize >= ports {
        return None;
    }
    Some(a)
}

/// The fast paths' IPv4 check: `h` (the first 20 bytes at the end of the labels) is a
/// header without options whose total length fits the `room` bytes left in the frame.
#[inline(always)]
fn plain_ipv4(h: &[u8], room: usize) -> bool {
    let total = u16::from_be_bytes([h[2], h[3]]) as usize;
    h[0] == 0x45 && total >= IPV4_MIN_HDR_BYTES && total <= room
}

/// The fast path's window with two labels.
const FAST_WINDOW2: usize = FAST_WINDOW + LSE_BYTES;

/// The two-label common case: a uniform-mode transport entry (static egress LSP) on top,
/// not at the bottom, with a live TTL, over a uniform-mode IPv4 POPGO entry at the
/// bottom, over a plain 20-byte IPv4 header that fits the frame. Returns the adjacency
/// and the POPGO label, or None for anything else (`classify` decides those, with the
/// same result for the frames this accepts: the data path agrees with the model on
/// these stacks). Reads `d` only.
#[inline(always)]
fn fast_transport_popgo_v4<'s>(
    snap: &'s Snapshot,
    d: &[u8],
    l2: usize,
    lse: LabelEntry,
    top: crate::ilm::IlmEntry,
    ports: usize,
) -> Option<(&'s Adjacency, u32)> {
    if !top.is_uniform_transport() || lse.bos() || lse.ttl() <= 1 {
        return None;
    }
    let w = d.first_chunk::<FAST_WINDOW2>()?;
    let at = l2.clamp(ETH_HDR_BYTES, MAX_L2_BYTES) + LSE_BYTES;
    let inner = LabelEntry(u32::from_be_bytes([w[at], w[at + 1], w[at + 2], w[at + 3]]));
    let e = snap.ilm.lookup(inner.label());
    if !e.is_uniform_pop_go_v4() || !inner.bos() {
        return None;
    }
    let off = at + LSE_BYTES;
    if !plain_ipv4(&w[off..off + IPV4_MIN_HDR_BYTES], d.len() - off) {
        return None;
    }
    let a = snap.adjacencies.get(e.adjacency() as usize)?;
    if a.port as usize >= ports {
        return None;
    }
    Some((a, inner.label()))
}

/// [`pop_go_v4`] under `labels` (1 or 2) label entries: IPv4 TTL := `ttl` with the
/// checksum update, then the new Ethernet header just before the IPv4 header. Returns
/// the bytes in front of the new header.
#[inline(always)]
fn pop_go_v4_at(d: &mut [u8], l2: usize, labels: usize, ttl: u8, macs: &[u8; 12]) -> usize {
    let l2 = l2.clamp(ETH_HDR_BYTES, MAX_L2_BYTES);
    let off = l2 + LSE_BYTES * labels.clamp(1, 2);
    if let Some(w) = d.first_chunk_mut::<FAST_WINDOW2>() {
        ip::ipv4_set_ttl(&mut w[off..], ttl);
        emit_header_unchecked(&mut w[off - ETH_HDR_BYTES..], macs, ETHERTYPE_IPV4);
    }
    off - ETH_HDR_BYTES
}

/// The fast path's rewrite of a frame it accepted (`d` is at least `FAST_WINDOW` long,
/// top label at `l2`): IPv4 TTL := `ttl` with the checksum update, then the new
/// Ethernet header just before the IPv4 header. Returns the bytes in front of the new
/// header, which the caller pulls from the frame.
#[inline(always)]
fn pop_go_v4(d: &mut [u8], l2: usize, ttl: u8, macs: &[u8; 12]) -> usize {
    let l2 = l2.clamp(ETH_HDR_BYTES, MAX_L2_BYTES);
    let off = l2 + LSE_BYTES;
    if let Some(w) = d.first_chunk_mut::<FAST_WINDOW>() {
        ip::ipv4_set_ttl(&mut w[off..], ttl);
        emit_header_unchecked(&mut w[off - ETH_HDR_BYTES..], macs, ETHERTYPE_IPV4);
    }
    off - ETH_HDR_BYTES
}

/// Decides what happens to one frame (whole frame `d`, top entry `lse` at `l2`): returns
/// the out port and fills `plan` with the rewrite. The frame is not modified.
#[inline(always)]
pub fn classify(snap: &Snapshot, d: &[u8], l2: usize, mut lse: LabelEntry, plan: &mut Plan) -> Result<u16, DropReason> {
    let mut off = l2;
    // RFC 3443: the TTL of the received top entry is the one decremented (a pipe-mode
    // transport label hands that role to the entry below it).
    let mut ttl_in = lse.ttl();
    let mut pops = 0;
    loop {
        pops += 1;
        if pops > MAX_POPS {
            return Err(DropReason::LabelStackTooDeep);
        }
        let label = lse.label();
        plan.label = label;
        if label < FIRST_UNRESERVED {
            match label {
                LABEL_IPV4_EXPLICIT_NULL | LABEL_IPV6_EXPLICIT_NULL => {
                    off += LSE_BYTES;
                    if lse.bos() {
                        // RFC 3032 2.1: the payload is IP of the label's family; route it.
                        let af = if label == LABEL_IPV4_EXPLICIT_NULL { Af::V4 } else { Af::V6 };
                        return ip_plan(snap, d, off, af, ttl_in, snap.pipe, Route::Lookup(0), plan);
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
            // Each pair is one more pop: the depth limit holds for them too.
            pops += 1;
            if pops > MAX_POPS {
                return Err(DropReason::LabelStackTooDeep);
            }
            (off, bos) = skip_entropy(d, off, next)?;
        }
        match (op, bos) {
            (IlmOp::PopGo, true) => {
                return ip_plan(snap, d, off, e.af(), ttl_in, e.pipe(), Route::Adjacency(e.adjacency()), plan)
            }
            (IlmOp::Pop, true) => return ip_plan(snap, d, off, e.af(), ttl_in, e.pipe(), Route::Lookup(e.vrf()), plan),
            (IlmOp::Transport, true) => {
                // A transport label at the bottom: route by IP in the public table.
                return ip_plan(snap, d, off, e.af(), ttl_in, e.pipe(), Route::Lookup(0), plan);
            }
            (IlmOp::PopGo, false) => return mpls_plan(snap, off, ttl_in, e.pipe(), e.adjacency(), plan),
            (IlmOp::Pop, false) => {
                // Pop and process the exposed label (RFC 3031 3.10).
                lse = LabelEntry::read(d, off)?;
            }
            (IlmOp::Transport, false) => {
                // This device's own transport label (static egress LSP): popped like an
                // explicit null. RFC 3443: in uniform mode the received TTL goes on to
                // decide; in pipe mode the transport LSP's TTL is its own (it must not
                // expire here), and the exposed label's TTL is the one that counts.
                lse = LabelEntry::read(d, off)?;
                if e.pipe() {
                    if ttl_in <= 1 {
                        return Err(on_ttl_expired());
                    }
                    ttl_in = lse.ttl();
                }
            }
        }
    }
}

/// The fast path on a whole frame, as the plan `classify` would make for it (tests
/// compare the two), with the rewritten frame.
#[cfg(test)]
pub(crate) fn fast_path_frame(snap: &Snapshot, d: &[u8], plan: &mut Plan) -> Option<(u16, Vec<u8>)> {
    let (l2, lse) = top_of_stack(d).ok()?;
    let l2 = l2 as usize;
    let a = fast_popgo_v4(snap, d, l2, lse, snap.ilm.lookup(lse.label()), snap.ports.min(MAX_PORTS))?;
    let off = l2 + LSE_BYTES;
    *plan = Plan {
        macs: a.macs,
        strip: (off - ETH_HDR_BYTES) as u16,
        ethertype: ETHERTYPE_IPV4,
        ttl_at: (off + IPV4_TTL_OFFSET) as u16,
        ttl: lse.ttl() - 1,
        ttl_kind: TtlKind::Ipv4,
        label: lse.label(),
    };
    let mut out = d.to_vec();
    let strip = pop_go_v4(&mut out, l2, lse.ttl() - 1, &a.macs);
    Some((a.port, out.split_off(strip)))
}

/// Applies `plan` to a copy of `d` (tests compare it with the fast path's rewrite).
#[cfg(test)]
pub(crate) fn apply_to(d: &[u8], plan: &Plan) -> Vec<u8> {
    let mut f = crate::io::mem::MemFrame::boxed_from(d);
    apply(&mut *f, plan);
    f.data().to_vec()
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

/// Where a packet whose label stack ended goes.
#[derive(Clone, Copy)]
enum Route {
    /// POPGO: the entry's adjacency, no IP lookup.
    Adjacency(u16),
    /// Longest match of the destination in the FIB of this VRF (0: public).
    Lookup(u16),
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
    route: Route,
    plan: &mut Plan,
) -> Result<u16, DropReason> {
    let p = &d[off..];
    let (adj, fib) = match route {
        Route::Adjacency(a) => (Some(a), None),
        Route::Lookup(vrf) => (None, snap.fib_of(vrf)),
    };
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
        let dst = adj.or_else(|| fib.and_then(|f| f.lookup_v4(ip::ipv4_dst(p))));
        (off + IPV4_TTL_OFFSET, p[IPV4_TTL_OFFSET], TtlKind::Ipv4, dst)
    } else {
        ip::check_ipv6(p)?;
        let dst = adj.or_else(|| fib.and_then(|f| f.lookup_v6(ip::ipv6_dst(p))));
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
    *plan = Plan {
        macs,
        strip: (off - ETH_HDR_BYTES) as u16,
        ethertype,
        ttl_at: ttl_at as u16,
        ttl,
        ttl_kind: kind,
        label: plan.label,
    };
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
        label: plan.label,
    };
    Ok(port)
}

#[inline(always)]
fn adjacency(snap: &Snapshot, adj: u16) -> Result<(u16, [u8; 12]), DropReason> {
    match snap.adjacencies.get(adj as usize) {
        Some(a) if (a.port as usize) < snap.ports.min(MAX_PORTS) => Ok((a.port, a.macs)),
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

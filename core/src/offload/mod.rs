//! XDP offload of the common POPGO case (`popgo run --offload xdp`): the XDP program
//! forwards it in the kernel, the control plane keeps the program's tables in step with
//! every published snapshot, and the program's counters join the workers'.
//!
//! What this module owns, and what it must not do:
//! - [`offload_program`]: the hand-assembled XDP program (listing on the function). It
//!   decides exactly as `dataplane::process_burst` does for the frames it takes, and
//!   sends everything else to the AF_XDP socket of the receiving queue unchanged, like
//!   `io::xdp::mpls_redirect_program`.
//! - [`Mirror`]: the label-indexed mirror of the ILM and the adjacency table behind it,
//!   updated before each snapshot is published, in an order that keeps every packet's
//!   verdict consistent with one generation (see "Update order" below).
//! - [`counters_to_stats`]: the program's per-CPU counters as a `WorkerStats` block.
//!
//! No `unsafe` here: the kernel objects (maps, mappings, programs) are in `io::xdp`.
//! Nothing here runs per packet in user space. It sits beside `dataplane` (it is the
//! data path's BPF twin and reads the ILM); `io` does not know it.
//!
//! Files: [`program`] (the program and its assembly helpers), [`mirror`] (the tables'
//! values and their update order); here: the value layout, the counters and the maps.
//!
//! # Tables
//! - `popgo_labels`: array of 2^20 `u32`, indexed by label, mmapped (`BPF_F_MMAPABLE`).
//!   0 = "not offloaded" (the frame goes to user space); otherwise
//!   `OFFLOAD | V4? | V6? | PIPE? | slot` where `slot` (17 bits) names an adjacency
//!   value. Only POPGO entries whose adjacency exists and whose port is attached have
//!   such a value; a transport entry (static egress LSP) has `TRANSPORT | PIPE?`, no
//!   slot: the program pops it when the label below is offloaded and at the bottom.
//!   Labels 0-15 are always 0.
//! - `popgo_adjs`: array of 2 x 65536 adjacency values of 16 bytes: the 12 MAC bytes
//!   of the new header (dst, src), the out port (u16), 2 zero bytes. Two halves: slot
//!   `half << 16 | adjacency index`.
//! - `popgo_ports`: devmap, port index -> ifindex, for the attached ports.
//! - `popgo_xstats`: per-CPU counters ([`counter_words`]).
//! - `popgo_lsps` (with per-LSP counting): per-CPU array of 2^20 x (packets, bytes),
//!   indexed by the label whose entry decided ([`OffloadLsps`]).
//!
//! # Update order
//! A packet's verdict in the program depends on one 32-bit label value (one aligned
//! load) and the adjacency value it names. User space writes label values with single
//! 32-bit atomic stores into the mapping, so a packet sees a label's old or new value,
//! never a mix of their bits. Adjacency values are 16 bytes and cannot be written
//! atomically, so a slot is written only while no label value names it and no program
//! run that could have read such a value is still running:
//! 1. if the snapshot's adjacency table changed (a full build): wait for an RCU grace
//!    period if the inactive half was in use since the last one
//!    (`io::xdp::wait_for_running_programs`), then write the whole new adjacency table
//!    into the inactive half: adjacency entries are written before any label uses them;
//! 2. write the label values that differ from the new snapshot's (those in ILM chunks
//!    the commit copied; every non-empty chunk after an adjacency change, which moves
//!    every label to the new half);
//! 3. the control plane publishes the snapshot to the workers (QSBR) and waits out its
//!    grace period. The old half is left as it is: it is reused only by a later
//!    adjacency change, after step 1's grace period, i.e. once no program run can
//!    still hold a label value that names it.
//!
//! So each packet in the kernel follows the label value it loaded, old or new, with the
//! adjacency of that same generation; a packet sent to user space follows the snapshot
//! the worker holds. Both are generations the control plane published, in order.

mod mirror;
mod program;

pub use mirror::{adjacency_value, label_value, KernelStore, Mirror, MirrorStats, MirrorStore};
pub use program::{offload_program, FrameLen, ProgramMaps};

use crate::io::xdp::{self, MmapArray, MplsRedirect, PerCpuArray, PerCpuCounters, XdpAttachment, XDP_PASS};
use crate::stats::{DropReason, WorkerStats, MAX_PORTS};
use libbpf_sys as sys;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

/// Label value bit: the entry is offloaded.
pub const OFFLOAD: u32 = 1 << 31;
/// Label value bit: an IPv4 payload is accepted.
pub const ALLOW_V4: u32 = 1 << 30;
/// Label value bit: an IPv6 payload is accepted.
pub const ALLOW_V6: u32 = 1 << 29;
/// Label value bit: RFC 3443 pipe mode.
pub const PIPE: u32 = 1 << 28;
/// Label value bit: a transport label (static egress LSP) the program pops when the
/// label below it is an offloaded POPGO label at the bottom of the stack. Such a value
/// has no OFFLOAD bit and names no slot (PIPE is its TTL mode).
pub const TRANSPORT: u32 = 1 << 27;
/// Label value bits naming the adjacency slot.
pub const SLOT_MASK: u32 = (1 << 17) - 1;
/// Adjacency slots per half: every `u16` adjacency index.
pub const HALF_SLOTS: u32 = 1 << 16;
/// Bytes of one adjacency value.
pub const ADJ_VALUE_BYTES: usize = 16;
/// Byte offset of the out port in an adjacency value.
const ADJ_PORT_OFFSET: i16 = 12;
/// Labels in the mirror: one per 20-bit label.
pub const LABELS: u32 = 1 << 20;
/// Largest IP total length / payload length the program takes (larger ones go to user
/// space): it bounds the packet offsets for the verifier; no Ethernet frame is longer.
const MAX_IP_BYTES: i32 = 16384;

// Per-CPU counter words (u64): rx bytes, rx packets per in port, tx packets and bytes
// per out port, drops per reason.
const W_RX_BYTES: usize = 0;
const W_PORT_RX: usize = 1;
const W_PORT_TX: usize = W_PORT_RX + MAX_PORTS;
const W_PORT_TX_BYTES: usize = W_PORT_TX + MAX_PORTS;
const W_DROPS: usize = W_PORT_TX_BYTES + MAX_PORTS;

/// Number of u64 counters per CPU.
pub const fn counter_words() -> usize {
    W_DROPS + DropReason::COUNT
}

const _: () = assert!(MAX_PORTS.is_power_of_two() && MAX_PORTS <= 64);

/// The program's counters (summed over CPUs) as a counter block: rx, tx and drops of
/// the packets the kernel handled itself.
pub fn counters_to_stats(w: &[u64]) -> WorkerStats {
    let mut s = WorkerStats::default();
    if w.len() < counter_words() {
        return s;
    }
    s.rx_bytes = w[W_RX_BYTES];
    s.port_rx_pkts.copy_from_slice(&w[W_PORT_RX..W_PORT_RX + MAX_PORTS]);
    s.port_tx_pkts.copy_from_slice(&w[W_PORT_TX..W_PORT_TX + MAX_PORTS]);
    s.port_tx_bytes.copy_from_slice(&w[W_PORT_TX_BYTES..W_PORT_TX_BYTES + MAX_PORTS]);
    s.rx_pkts = s.port_rx_pkts.iter().sum();
    s.tx_pkts = s.port_tx_pkts.iter().sum();
    s.tx_bytes = s.port_tx_bytes.iter().sum();
    for (d, v) in s.drops.iter_mut().zip(&w[W_DROPS..]) {
        *d = *v;
    }
    s
}

/// The shared maps of an offload run, before the mirror takes the table maps.
pub struct OffloadMaps {
    pub labels: MmapArray,
    pub adjs: MmapArray,
    pub ports: OwnedFd,
    pub counters: PerCpuCounters,
    /// Per-LSP counters, when counted (`--lsp-counters on`).
    pub lsps: Option<Arc<OffloadLsps>>,
    attached: u64,
}

/// The offload's per-LSP counters: packets and bytes per in label (the label whose
/// entry decided: the POPGO label under a transport label) of the frames the program
/// forwarded, in a per-CPU array indexed by label (16 bytes per label per possible
/// CPU: 16 MiB per CPU).
/// Only the blocks of labels the mirror ever gave an offloaded value are read (a bit
/// per label, set by the mirror before the value is written).
pub struct OffloadLsps {
    counts: PerCpuArray,
    pub(crate) offloaded: Box<[std::sync::atomic::AtomicU64]>,
}

impl OffloadLsps {
    fn new(counts: PerCpuArray) -> OffloadLsps {
        let offloaded = (0..LABELS / 64).map(|_| std::sync::atomic::AtomicU64::new(0)).collect();
        OffloadLsps { counts, offloaded }
    }

    /// Notes that `label` may be counted from now on.
    pub(crate) fn mark(&self, label: u32) {
        let (w, b) = ((label / 64) as usize, label % 64);
        if let Some(w) = self.offloaded.get(w) {
            w.fetch_or(1 << b, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Every label the program forwarded something for: `(label, packets, bytes)`, by
    /// label (batched reads of the blocks of 8192 labels that ever had an offloaded
    /// value: reports and scrapes only).
    pub fn read(&self) -> io::Result<Vec<(u32, u64, u64)>> {
        let mut out = Vec::new();
        let words = (xdp::LOOKUP_BATCH / 64) as usize;
        let wanted = |start: u32| {
            let w = (start / 64) as usize;
            self.offloaded[w..(w + words).min(self.offloaded.len())]
                .iter()
                .any(|x| x.load(std::sync::atomic::Ordering::Relaxed) != 0)
        };
        self.counts.for_each_nonzero(wanted, |label, w| out.push((label, w[0], w[1])))?;
        Ok(out)
    }
}

impl OffloadMaps {
    /// Creates the maps and fills the devmap with the attached ports `(index, ifname)`;
    /// with `count_lsps`, the per-LSP counters too.
    pub fn create(attached: &[(usize, String)], count_lsps: bool) -> io::Result<OffloadMaps> {
        let labels = MmapArray::create("popgo_labels", 4, LABELS)?;
        let adjs = MmapArray::create("popgo_adjs", ADJ_VALUE_BYTES as u32, 2 * HALF_SLOTS)?;
        let ports = xdp::create_map(sys::BPF_MAP_TYPE_DEVMAP, "popgo_ports", 4, 4, MAX_PORTS as u32)?;
        let counters = PerCpuCounters::create("popgo_xstats", counter_words())?;
        let lsps = match count_lsps {
            true => Some(Arc::new(OffloadLsps::new(PerCpuArray::create("popgo_lsps", 2, LABELS)?))),
            false => None,
        };
        let mut mask = 0u64;
        for (port, ifname) in attached {
            if *port >= MAX_PORTS {
                continue;
            }
            let ifindex = xdp::ifindex(ifname)?;
            xdp::map_update(&ports, &(*port as u32).to_ne_bytes(), &ifindex.to_ne_bytes())
                .map_err(|e| io::Error::new(e.kind(), format!("devmap entry for {ifname}: {e}")))?;
            mask |= 1 << port;
        }
        Ok(OffloadMaps { labels, adjs, ports, counters, lsps, attached: mask })
    }

    /// The fds a program for an interface with XSKMAP `xsks` refers to.
    pub fn program_maps(&self, xsks: RawFd) -> ProgramMaps {
        ProgramMaps {
            labels: self.labels.fd().as_raw_fd(),
            adjs: self.adjs.fd().as_raw_fd(),
            ports: self.ports.as_raw_fd(),
            counters: self.counters.fd().as_raw_fd(),
            xsks,
            lsps: self.lsps.as_ref().map(|l| l.counts.fd().as_raw_fd()),
        }
    }

    /// Splits into the mirror (for the control plane) and the counters (for the stats).
    pub fn into_parts(self) -> (Mirror<KernelStore>, PerCpuCounters) {
        let store = KernelStore { labels: self.labels, adjs: self.adjs, lsps: self.lsps };
        (Mirror::new(store, self.attached), self.counters)
    }
}

/// [`MplsRedirect::attach`] with the offload program for the port with index
/// `in_port`: it forwards the common POPGO case itself through the maps of `maps` and
/// redirects the rest of the MPLS frames like the plain redirect program.
pub fn attach(
    ifname: &str,
    try_native: bool,
    force: bool,
    in_port: usize,
    maps: &OffloadMaps,
) -> io::Result<MplsRedirect> {
    let xsks_map = xdp::create_xsks_map()?;
    let m = maps.program_maps(xsks_map.as_raw_fd());
    // The variant without a helper call needs CAP_PERFMON or CAP_SYS_ADMIN (pointer
    // subtraction); a loader without them gets the helper variant.
    let prog = match xdp::load_xdp_program("popgo_offload", &offload_program(&m, in_port, XDP_PASS, FrameLen::Subtract))
    {
        Ok(p) => p,
        Err(_) => xdp::load_xdp_program("popgo_offload", &offload_program(&m, in_port, XDP_PASS, FrameLen::Helper))?,
    };
    let attachment = XdpAttachment::attach(ifname, prog, try_native, force)?;
    Ok(MplsRedirect { attachment, xsks_map })
}

#[cfg(test)]
mod tests;

//! The incoming label map and everything a worker reads to forward a packet.
//!
//! A [`Snapshot`] (ILM + adjacencies + FIB) is immutable once built: the control
//! thread builds a whole new one and publishes it (see `swap`), workers only read.
//! A commit that changes a few routes does not rebuild everything: [`patch()`]
//! shares the previous snapshot's ILM chunks (copy-on-write, 16 KiB each: only the
//! chunks holding changed entries are copied), FIB shards, adjacency table and LSP
//! table chunks through `Arc`, copying only what changes.

pub mod build;
pub mod fib;
pub mod lsp;
pub mod patch;
pub mod table;

pub use build::{build, build_indexed, BuildError, BuildIndex};
pub use fib::Fib;
pub use lsp::{LabelOp, Lsp, LspRow, LspTable};
pub use patch::{patch, Delta, PatchSource};
pub use table::{Adjacency, Af, Ilm, IlmEntry, IlmOp, CHUNKS, CHUNK_SLOTS};

use std::net::IpAddr;
use std::sync::Arc;

/// Everything the data path reads, as one immutable unit.
pub struct Snapshot {
    pub ilm: Ilm,
    /// Shared with the previous snapshot when neighbors did not change (always, for
    /// commits from the control socket).
    pub adjacencies: Arc<Vec<Adjacency>>,
    /// The next hop (neighbor address) of each adjacency, for displays.
    pub next_hops: Arc<Vec<IpAddr>>,
    /// The public table's FIB. Shared with the previous snapshot when no static route
    /// changed.
    pub fib: Arc<Fib>,
    /// The FIBs of the VPN instances: VRF id `v` at index `v - 1` (each shared while
    /// its routes do not change).
    pub vrf_fibs: Arc<Vec<Arc<Fib>>>,
    /// Number of output ports (port indices are `0..ports`).
    pub ports: usize,
    /// The BGP LSP table (FEC and label per network), for `display mpls lsp protocol
    /// bgp` (control plane only; chunks are shared between snapshots). The rest of a
    /// row is read from the ILM and the FIB: [`Snapshot::lsp_rows`].
    pub lsps: Arc<LspTable>,
    /// Device-wide RFC 3443 pipe mode (explicit-null labels have no entry to carry it).
    pub pipe: bool,
    /// Counts publications; 0 for a table built at start.
    pub generation: u64,
}

/// A copy of the published tables outside user space (the XDP offload's maps, see
/// `offload`). The control plane calls [`TableMirror::update`] with every new
/// snapshot before publishing it to the workers.
pub trait TableMirror: Send {
    /// Brings the mirror to `next`, in an order that keeps every packet's verdict
    /// consistent with the previous snapshot or `next`.
    fn update(&mut self, next: &Snapshot);
    /// One line for `display popgo statistics`.
    fn summary(&self) -> String;
}

impl Snapshot {
    /// A snapshot of `ilm` and `adjs` over 3 ports, with no routes and no LSPs (tests of
    /// the label path).
    #[cfg(test)]
    pub(crate) fn bare(ilm: Ilm, adjs: Arc<Vec<Adjacency>>, generation: u64) -> Snapshot {
        Snapshot {
            ilm,
            next_hops: Arc::new(vec![std::net::Ipv4Addr::UNSPECIFIED.into(); adjs.len()]),
            adjacencies: adjs,
            fib: Arc::new(Fib::new()),
            vrf_fibs: Arc::new(Vec::new()),
            ports: 3,
            lsps: Arc::new(LspTable::new()),
            pipe: false,
            generation,
        }
    }

    /// A snapshot with the same tables, sharing all of them (2 KiB of ILM pointers and
    /// reference counts): the start-up publication of a table the caller built already,
    /// and self-contained views for displays that outlive the next commit.
    pub fn share(&self, generation: u64) -> Snapshot {
        Snapshot {
            ilm: self.ilm.clone_table(),
            adjacencies: Arc::clone(&self.adjacencies),
            next_hops: Arc::clone(&self.next_hops),
            fib: Arc::clone(&self.fib),
            vrf_fibs: Arc::clone(&self.vrf_fibs),
            ports: self.ports,
            lsps: Arc::clone(&self.lsps),
            pipe: self.pipe,
            generation,
        }
    }

    /// The FIB of VRF `vrf` (0: the public table); None for an unknown VRF.
    #[inline(always)]
    pub fn fib_of(&self, vrf: u16) -> Option<&Fib> {
        match vrf {
            0 => Some(&self.fib),
            v => self.vrf_fibs.get(v as usize - 1).map(|f| &**f),
        }
    }

    /// The display row of an LSP: its operation and out interface from the ILM entry of
    /// its label, its next hop from the route installed for its FEC.
    pub fn row_of(&self, l: &Lsp) -> LspRow {
        let e = self.ilm.lookup(l.in_label);
        let op = if e.op() == Some(IlmOp::PopGo) { LabelOp::PopGo } else { LabelOp::Pop };
        let out_port = if op == LabelOp::PopGo {
            self.adjacencies.get(e.adjacency() as usize).map(|a| a.port as usize)
        } else {
            None
        };
        let adj = self.fib_of(l.fec.vrf).and_then(|f| build::fib_get(f, l.fec));
        LspRow {
            fec: l.fec,
            in_label: l.in_label,
            out_port,
            next_hop: adj.and_then(|a| self.next_hops.get(a as usize).copied()),
            op,
        }
    }

    /// Row `i` of the LSP table (walks the chunk list: tests and reports).
    pub fn lsp_row(&self, i: usize) -> LspRow {
        self.row_of(&self.lsps[i])
    }

    /// The rows of `display mpls lsp protocol bgp`, in network order.
    pub fn lsp_rows(&self) -> impl Iterator<Item = LspRow> + '_ {
        self.lsps.iter().map(|l| self.row_of(l))
    }

    /// Bytes of heap per part: (ILM, FIBs of every table, LSP table), shared parts
    /// included (for the memory breakdown).
    pub fn heap_bytes(&self) -> (usize, usize, usize) {
        let ilm_chunks = if self.ilm.is_empty() { 0 } else { self.ilm.chunk_count() };
        let fibs = self.fib.heap_bytes() + self.vrf_fibs.iter().map(|f| f.heap_bytes()).sum::<usize>();
        (2048 + ilm_chunks * table::CHUNK_SLOTS * 4, fibs, self.lsps.heap_bytes())
    }
}

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
pub use lsp::{LabelOp, LspRow, LspTable};
pub use patch::{patch, Delta, PatchSource};
pub use table::{Adjacency, Af, Ilm, IlmEntry, IlmOp, CHUNKS, CHUNK_SLOTS};

use std::sync::Arc;

/// Everything the data path reads, as one immutable unit.
pub struct Snapshot {
    pub ilm: Ilm,
    /// Shared with the previous snapshot when neighbors did not change (always, for
    /// commits from the control socket).
    pub adjacencies: Arc<Vec<Adjacency>>,
    /// Shared with the previous snapshot when no static route changed.
    pub fib: Arc<Fib>,
    /// Number of output ports (port indices are `0..ports`).
    pub ports: usize,
    /// The BGP LSP table, for `display mpls lsp protocol bgp` (control plane only;
    /// chunks are shared between snapshots).
    pub lsps: LspTable,
    /// Device-wide RFC 3443 pipe mode (explicit-null labels have no entry to carry it).
    pub pipe: bool,
    /// Counts publications; 0 for a table built at start.
    pub generation: u64,
}

/// A copy of the published tables outside user space (the XDP offload's maps, see
/// `io::offload`). The control plane calls [`TableMirror::update`] with every new
/// snapshot before publishing it to the workers.
pub trait TableMirror: Send {
    /// Brings the mirror to `next`, in an order that keeps every packet's verdict
    /// consistent with the previous snapshot or `next`.
    fn update(&mut self, next: &Snapshot);
    /// One line for `display popgo statistics`.
    fn summary(&self) -> String;
}

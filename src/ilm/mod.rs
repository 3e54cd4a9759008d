//! The incoming label map and everything a worker reads to forward a packet.
//!
//! A [`Snapshot`] (ILM + adjacencies + FIB) is immutable once built: the control
//! thread builds a whole new one and publishes it (see `swap`), workers only read.

pub mod build;
pub mod fib;
pub mod swap;
pub mod table;

pub use build::{build, BuildError, LabelOp, LspRow};
pub use fib::Fib;
pub use table::{Adjacency, Af, Ilm, IlmEntry, IlmOp};

/// Everything the data path reads, as one immutable unit.
pub struct Snapshot {
    pub ilm: Ilm,
    pub adjacencies: Vec<Adjacency>,
    pub fib: Fib,
    /// Number of output ports (port indices are `0..ports`).
    pub ports: usize,
    /// The BGP LSP table, for `display mpls lsp protocol bgp`.
    pub lsps: Vec<LspRow>,
    /// Device-wide RFC 3443 pipe mode (explicit-null labels have no entry to carry it).
    pub pipe: bool,
    /// Counts publications; 0 for a table built at start.
    pub generation: u64,
}

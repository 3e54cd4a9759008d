//! Counters, latency histograms and reports.
//!
//! Owns: the one table of drop reasons, the per-worker counter block, per-worker
//! latency histograms, the per-LSP counters, and their merge into a report. Workers are the only writers of
//! their own blocks; merging happens only when a report is due.

pub mod board;
pub mod counters;
pub mod latency;
pub mod lsp;
pub mod report;

pub use counters::{DropReason, TxTally, WorkerStats, MAX_PORTS};
pub use latency::Latency;

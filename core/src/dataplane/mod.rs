//! The forwarding core: label disposition on bursts of frames, and the one worker loop.
//!
//! `burst::process_burst` turns a burst into verdicts (classify: parse + lookup) and
//! rewrites forwarded frames in place (act: TTL, pop, new L2 header). `worker::run`
//! is the poll loop around it, generic over the I/O backend (`io::RxQueue` +
//! `io::TxQueue`): replay, run, bench, diff and the tests all forward through it.

pub mod burst;
pub mod worker;

#[cfg(test)]
mod offload_tests;
#[cfg(test)]
mod tests;

pub use crate::io::{Verdict, BURST, MAX_BURST};
pub use burst::{process_burst, BurstCtx};
pub use worker::{SnapshotSource, WorkerLoop, WorkerResult};

//! The forwarding core: label disposition on bursts of frames.
//!
//! `burst::process_burst` turns a burst into verdicts (classify: parse + lookup) and
//! rewrites forwarded frames in place (act: TTL, pop, new L2 header). Workers and the
//! replay driver own the I/O around it.

pub mod burst;
pub mod verdict;

#[cfg(test)]
mod tests;

pub use burst::{process_burst, BurstCtx, BURST, MAX_BURST};
pub use verdict::Verdict;

//! Thin wrappers over the operating system and the CPU: core pinning and prefetch hints.

pub mod affinity;
pub mod prefetch;
pub mod rlimit;
pub mod signal;

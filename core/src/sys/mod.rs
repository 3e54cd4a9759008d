//! Thin wrappers over the operating system and the CPU: core pinning, a TSC clock,
//! prefetch hints,
//! signal flags (SIGINT/SIGTERM stop, SIGHUP reload) and RLIMIT_MEMLOCK.

pub mod affinity;
pub mod clock;
pub mod creds;
pub mod prefetch;
pub mod rlimit;
pub mod signal;

//! Thin wrappers over the operating system and the CPU: core pinning, a TSC clock,
//! prefetch hints,
//! signal flags (SIGINT/SIGTERM stop, SIGHUP reload), RLIMIT_MEMLOCK, zero-filled counter
//! tables that cost memory only where written, and interface facts
//! (rtnetlink, ethtool).

pub mod affinity;
pub mod clock;
pub mod creds;
pub mod netdev;
pub mod prefetch;
pub mod rlimit;
pub mod signal;
pub mod zeroed;

//! Thin wrappers over the operating system and the CPU: core pinning, a TSC clock,
//! prefetch hints,
//! signal flags (SIGINT/SIGTERM stop, SIGHUP reload), RLIMIT_MEMLOCK, zero-filled counter
//! tables that cost memory only where written, interface facts (rtnetlink, ethtool)
//! and BGP socket security (TCP MD5, GTSM).

pub mod affinity;
pub mod clock;
pub mod creds;
pub mod netdev;
pub mod prefetch;
pub mod rlimit;
pub mod signal;
pub mod tcpsec;
pub mod zeroed;

//! popgo: a poll-mode MPLS forwarder implementing the POPGO function of a BGP LSP
//! egress (`apply-label per-route pop-go`): a labeled packet is popped and sent
//! straight out of the interface recorded in the ILM, with no IP lookup.
//!
//! Layers, bottom up:
//!
//! ```text
//!   wire      zero-copy views: Ethernet (+VLAN), MPLS label stack, IPv4/IPv6 TTL
//!   ilm       Snapshot = ILM (2^20 slots) + adjacencies + FIB, built from a Config
//!   dataplane process_burst: classify (parse + lookup) then act (TTL, pop, L2)
//!   io        PacketMut trait; mem frames, pcap files (AF_XDP plugs in here)
//!   replay    the pcap replay driver (pinned workers)
//!   stats     drop-reason table, per-worker counters, latency histograms, reports
//! ```
//!
//! `unsafe` is denied crate-wide; only `io::pcap` (mmap), `io::afxdp`, `io::xdp`,
//! `ilm::swap` and `sys::*` opt back in, each with a `// SAFETY:` comment per block.
#![deny(unsafe_code)]

pub mod bench;
pub mod cli;
pub mod config;
pub mod control;
pub mod dataplane;
pub mod diff;
pub mod display;
pub mod gen;
pub mod ilm;
pub mod io;
pub mod profile;
pub mod replay;
pub mod run;
pub mod stats;
pub mod sys;
pub mod wire;

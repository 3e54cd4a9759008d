//! popgo-core: the forwarding core of popgo, a poll-mode MPLS forwarder implementing
//! the POPGO function of a BGP LSP egress (`apply-label per-route pop-go`): a labeled
//! packet is popped and sent straight out of the interface recorded in the ILM, with
//! no IP lookup.
//!
//! Layers, bottom up (a module uses only those below it):
//!
//! ```text
//!   wire, stats, sys   zero-copy header views; counters, latency, reports; pinning, signals
//!   config             the device configuration and the rules every edit follows
//!   qsbr               RCU-style publication of read-mostly tables to poll-mode workers
//!   ilm                Snapshot = ILM (2^20 slots) + adjacencies + FIB, built from a Config
//!   io                 PacketMut and the burst RX/TX traits; backends: memory, capture, AF_XDP
//!   traffic            frame builders, the seed scenario's frames, synthetic traffic profiles
//!   dataplane          process_burst (classify + act) and the one worker loop over any backend
//!   offload            the XDP offload: process_burst's BPF twin, its table mirror and counters
//! ```
//!
//! Nothing here parses a command line, draws a plot or serves a socket: the commands
//! (`popgo replay`, `run`, `bench`, `diff`, ...) live in the `popgo` crate on top.
//!
//! `unsafe` is denied crate-wide; only `io::pcap` (mmap), `io::afxdp`, `io::xdp`,
//! `qsbr` and `sys::*` opt back in, each with a `// SAFETY:` comment per block.
#![deny(unsafe_code)]

pub mod config;
pub mod dataplane;
pub mod ilm;
pub mod io;
pub mod offload;
pub mod qsbr;
pub mod stats;
pub mod sys;
#[doc(hidden)]
pub mod testkit;
pub mod traffic;
pub mod wire;

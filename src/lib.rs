//! popgo: the commands on top of the forwarding core (`popgo-core`).
//!
//! ```text
//!   popgo (binary)   cli: parses the command line and dispatches; nothing imports it
//!   commands         replay, run, bench, diff, display, gen, ctl, check: each its own
//!                    module with its own arguments
//!   engine           the lifecycle of a long-running mode: pinned workers, signals,
//!                    the stats board, the control socket and the final report
//!   control          the live control plane: VRP sessions, two-stage commit, socket
//!   popgo-core       wire, config, qsbr, ilm, io, dataplane, stats, traffic, sys
//! ```
//!
//! The core's modules are re-exported under their own names, so `popgo::ilm` is
//! `popgo_core::ilm`.
#![deny(unsafe_code)]

pub use popgo_core::{config, dataplane, ilm, io, offload, qsbr, stats, sys, testkit, traffic, wire};

pub mod bench;
pub mod bgp;
pub mod cmd;
pub mod control;
pub mod diff;
pub mod display;
pub mod engine;
pub mod gen;
pub mod live;
pub mod metrics;
pub mod metrics_ext;
pub mod replay;
pub mod run;

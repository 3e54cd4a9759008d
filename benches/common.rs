//! Shared fixtures for the criterion benches: synthetic 64-byte MPLS frames with labels
//! uniform over 100,000 POPGO entries and their tables.

#![allow(dead_code)] // each bench uses a subset

use popgo::config::Config;
use popgo::ilm::{build, Snapshot};
use popgo::traffic::synth::{synth_config, Synth};

pub const LABELS: u32 = 100_000;

pub fn frames(count: u64, size: usize) -> Vec<Vec<u8>> {
    let mut v = Vec::with_capacity(count as usize);
    Synth { count, labels: LABELS, size, ..Synth::default() }
        .generate(|_, f| v.push(f.to_vec()))
        .expect("valid synth parameters");
    v
}

pub fn snapshot() -> Snapshot {
    let cfg = Config::parse(&synth_config(16, LABELS, 4, 16, false)).expect("synthetic config parses");
    build(&cfg, 0).expect("synthetic config builds")
}

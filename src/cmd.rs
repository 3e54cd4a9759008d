//! What every command shares: errors that carry their exit code, and loading the
//! inputs (config, capture, tables) with messages that name the file.
//!
//! Usage, config and input errors exit 2; runtime failures exit 1; a regression found
//! by `popgo bench`'s gate exits 3, so that CI can tell "slower" from "broken".

use crate::config::Config;
use crate::io::pcap::Capture;
use anyhow::Context;
use clap::Args;
use std::path::Path;

/// An error with its exit code.
pub struct Failure {
    pub code: u8,
    pub err: anyhow::Error,
}

/// A usage, config or input error: exit code 2.
pub fn usage(err: impl Into<anyhow::Error>) -> Failure {
    Failure { code: 2, err: err.into() }
}

/// A runtime failure: exit code 1.
pub fn runtime(err: impl Into<anyhow::Error>) -> Failure {
    Failure { code: 1, err: err.into() }
}

/// Exit code of a performance regression found by a gate.
pub const EXIT_REGRESSION: u8 = 3;

/// A regression found by `popgo bench`'s gate: exit code 3.
pub fn regression(err: impl Into<anyhow::Error>) -> Failure {
    Failure { code: EXIT_REGRESSION, err: err.into() }
}

/// Loads and checks a config file. The message names the file once and the cause once.
pub fn load_config(path: &Path) -> Result<Config, Failure> {
    Config::load(path).map_err(|e| match e {
        // The error names the path already.
        crate::config::ConfigError::Read { .. } => usage(anyhow::anyhow!("config {e}")),
        _ => usage(anyhow::anyhow!("config {}: {e}", path.display())),
    })
}

/// Opens and indexes a capture. The message names the file once and the cause once.
pub fn load_capture(path: &Path) -> Result<Capture, Failure> {
    Capture::open(path).map_err(|e| match e {
        crate::io::pcap::Error::Io { source, .. } => usage(anyhow::anyhow!("input {}: {source}", path.display())),
        e => usage(anyhow::anyhow!("input {}: {e}", path.display())),
    })
}

pub fn build(cfg: &Config) -> Result<crate::ilm::Snapshot, Failure> {
    crate::ilm::build(cfg, 0).context("building tables from the config").map_err(usage)
}

/// Worker placement and burst size, shared by `replay` and `bench`.
#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    /// Worker threads, each pinned to a core (1..=256).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Cores to pin workers to, e.g. `0,1` or `0-1` (default: highest-numbered first).
    #[arg(long)]
    pub cores: Option<String>,
    /// Packets per burst (1..=256).
    #[arg(long, default_value_t = crate::dataplane::BURST)]
    pub burst: usize,
}

impl WorkerArgs {
    /// Checks the ranges and the cores; returns the core of each worker slot.
    pub fn check(&self) -> Result<Vec<usize>, Failure> {
        if self.workers == 0 || self.workers > 256 {
            return Err(usage(anyhow::anyhow!("--workers must be in 1..=256")));
        }
        if !(1..=crate::dataplane::MAX_BURST).contains(&self.burst) {
            return Err(usage(anyhow::anyhow!("--burst must be in 1..={}", crate::dataplane::MAX_BURST)));
        }
        let cores = match &self.cores {
            Some(c) => {
                let v = crate::sys::affinity::parse_core_list(c).map_err(|e| usage(anyhow::anyhow!("--cores: {e}")))?;
                crate::sys::affinity::check_cores(&v).map_err(|e| usage(anyhow::anyhow!("--cores: {e}")))?;
                v
            }
            None => crate::sys::affinity::default_cores(self.workers),
        };
        // Allowed (the results do not depend on it), but never silently.
        if let Some(w) = crate::sys::affinity::shared_core_warning(self.workers, &cores) {
            tracing::warn!("{w}");
        }
        Ok(cores)
    }
}

/// Replay pacing, as tcpreplay spells it. The default is --topspeed.
#[derive(Args, Debug, Default, Clone)]
pub struct PaceArgs {
    /// Packets per second (all workers together).
    #[arg(long, group = "pace")]
    pub pps: Option<f64>,
    /// Megabits per second of frame bytes.
    #[arg(long, group = "pace")]
    pub mbps: Option<f64>,
    /// Follow the capture's timestamps, scaled by X (2 = twice as fast).
    #[arg(long, group = "pace")]
    pub speed: Option<f64>,
    /// As fast as possible (the default).
    #[arg(long, group = "pace")]
    pub topspeed: bool,
}

impl PaceArgs {
    /// The pacing for a capture (`--mbps` is converted with the capture's mean frame size).
    pub fn resolve(&self, cap: &Capture) -> Result<Option<crate::io::capture::Pace>, Failure> {
        use crate::io::capture::Pace;
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(v)
            } else {
                Err(usage(anyhow::anyhow!("--{name} must be a positive number")))
            }
        };
        Ok(if let Some(p) = self.pps {
            Some(Pace::Pps(positive("pps", p)?))
        } else if let Some(m) = self.mbps {
            let bytes: u64 = cap.records().iter().map(|r| r.caplen as u64).sum();
            let mean = bytes as f64 / cap.len().max(1) as f64;
            Some(Pace::Pps(positive("mbps", m)? * 1e6 / 8.0 / mean.max(1.0)))
        } else if let Some(x) = self.speed {
            Some(Pace::Speed(positive("speed", x)?))
        } else {
            None
        })
    }
}

/// The FEC of each label in `counts` (a report's per-LSP part) that `table` knows.
pub fn lsp_fecs(
    table: &crate::ilm::lsp::LspTable,
    counts: &[crate::stats::lsp::LspCount],
) -> std::collections::HashMap<u32, String> {
    if counts.is_empty() {
        return Default::default();
    }
    // Counts come sorted by label.
    let counted = |l: u32| counts.binary_search_by_key(&l, |c| c.label).is_ok();
    table.iter().filter(|l| counted(l.in_label)).map(|l| (l.in_label, l.fec.to_string())).collect()
}

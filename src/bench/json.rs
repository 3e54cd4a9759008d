//! The `popgo bench` result document, schema `popgo.bench/1` (also the baseline file
//! format). `docs/bench-schema.json` is its JSON Schema; `tests/bench.rs` validates
//! real output against it.
//!
//! Versioning: fields may be added within `popgo.bench/1` (readers ignore unknown
//! fields); renaming, removing or changing the meaning of a field bumps the number.
//! A baseline is accepted only with the same major schema (`popgo.bench/1`).

use super::compare::CompareDoc;
use super::instr::InstrDoc;
use super::machine::{Build, Machine};
use super::verdict::{InstrVerdict, Spread, Verdict};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The schema identifier written to, and required of, every document.
pub const SCHEMA: &str = "popgo.bench/1";

/// One `popgo bench` result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchDoc {
    pub schema: String,
    pub popgo: Build,
    pub machine: Machine,
    pub workload: Workload,
    pub run: RunInfo,
    pub repetitions: Vec<Repetition>,
    pub summary: Summary,
    pub latency_ns: LatencyDoc,
    /// The comparison with `--baseline`, if one was given (wall clock, Mpps).
    pub verdict: Option<Verdict>,
    /// Instructions per packet under callgrind (`--metric instructions` or `both`).
    #[serde(default)]
    pub instructions: Option<InstrDoc>,
    /// The instructions comparison with `--baseline` (when instructions were measured).
    #[serde(default)]
    pub instructions_verdict: Option<InstrVerdict>,
    /// The interleaved comparison with another binary (`--compare`).
    #[serde(default)]
    pub compare: Option<CompareDoc>,
}

/// What was replayed, and how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// "pcap" or "profile".
    pub kind: String,
    /// The capture or profile path.
    pub source: String,
    /// The config path, or "generated" (from the profile).
    pub config: String,
    /// Records in the capture (one loop).
    pub records: u64,
    /// Frame bytes in one loop.
    pub bytes_per_loop: u64,
    /// Loops per repetition (from `--loops`, or calibrated for `--duration`).
    pub loops: u64,
    pub workers: usize,
    /// Cores the workers were placed on (`cores[w % len]`).
    pub cores: Vec<usize>,
    /// Whether every worker was pinned.
    pub pinned: bool,
    pub burst: usize,
    /// "topspeed", "pps:RATE" or "speed:X".
    pub pace: String,
    /// Extra passes over each burst's bytes (the `slow-hot-path` demonstration; 0
    /// for real measurements).
    pub extra_pass: u32,
    /// Extra work: links of a serial chain per burst (the small deliberate slowdown of
    /// the `slow-hot-path-3pct` demonstration; 0 for real measurements).
    #[serde(default)]
    pub extra_work: u32,
}

/// How the run was organised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Measured repetitions.
    pub repeat: usize,
    /// Unmeasured full-length repetitions before them.
    pub warmup: usize,
    /// Target seconds per repetition (`--duration`), if loops were calibrated.
    pub duration_s: Option<f64>,
    /// Seconds since the Unix epoch when measuring started.
    pub started_unix_s: u64,
    /// What the gate compares: "wall", "instructions" or "both" (`--metric`).
    #[serde(default = "wall")]
    pub metric: String,
}

fn wall() -> String {
    "wall".into()
}

/// One measured repetition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Repetition {
    pub packets: u64,
    pub bytes: u64,
    pub dropped: u64,
    pub bursts: u64,
    pub elapsed_ns: u64,
    /// Million packets per second (all workers).
    pub mpps: f64,
    /// Gigabits per second of frame bytes as captured (no FCS, preamble or gap).
    pub gbps: f64,
    /// Wall-clock nanoseconds per packet (elapsed / packets, all workers).
    pub ns_per_packet: f64,
}

/// Median, min and max of each repetition metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub mpps: Spread,
    pub gbps: Spread,
    pub ns_per_packet: Spread,
    /// (max - min) / median of Mpps, in percent.
    pub mpps_noise_pct: f64,
}

/// Latency percentiles over all measured repetitions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencyDoc {
    /// Processing time of each burst (the replay's hdrhistogram).
    pub per_burst: Percentiles,
    /// Amortised per packet: each burst's time divided by the mean burst size.
    pub per_packet: Percentiles,
}

/// Percentiles of a histogram, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub p9999: u64,
    pub max: u64,
    pub mean: f64,
    pub samples: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            p9999: h.value_at_quantile(0.9999),
            max: h.max(),
            mean: h.mean(),
            samples: h.len(),
        }
    }
}

/// A baseline file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("baseline {path}")]
    Io { path: String, source: std::io::Error },
    #[error("baseline {path}: not JSON")]
    NotJson { path: String, source: serde_json::Error },
    #[error("baseline {path}: schema is {found}, expected {SCHEMA} (save a new baseline with this popgo)")]
    Schema { path: String, found: String },
    #[error("baseline {path}: not a {SCHEMA} document")]
    Shape { path: String, source: serde_json::Error },
    #[error("baseline {path}: no repetitions with a positive Mpps")]
    Empty { path: String },
    #[error("baseline {path}: instructions per packet is {found}, not a positive number")]
    BadInstructions { path: String, found: f64 },
}

/// Reads a baseline saved with `--save-baseline` (or `--json`).
pub fn load_baseline(path: &Path) -> Result<BenchDoc, BaselineError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| BaselineError::Io { path: p.clone(), source })?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| BaselineError::NotJson { path: p.clone(), source })?;
    let found = match value.get("schema") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "missing".into(),
    };
    if found != SCHEMA {
        return Err(BaselineError::Schema { path: p, found });
    }
    let doc: BenchDoc =
        serde_json::from_value(value).map_err(|source| BaselineError::Shape { path: p.clone(), source })?;
    if doc.repetitions.is_empty() || doc.repetitions.iter().any(|r| !(r.mpps.is_finite() && r.mpps > 0.0)) {
        return Err(BaselineError::Empty { path: p });
    }
    if let Some(i) = &doc.instructions {
        if !(i.per_packet.is_finite() && i.per_packet > 0.0) {
            return Err(BaselineError::BadInstructions { path: p, found: i.per_packet });
        }
    }
    Ok(doc)
}

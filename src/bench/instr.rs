//! `--metric instructions`: instructions per packet of the worker threads, counted by
//! callgrind (valgrind) on popgo itself. Deterministic where wall-clock time is not.
//!
//! Method: popgo runs itself twice under
//! `valgrind --tool=callgrind --separate-threads=yes`, replaying the same workload
//! `1` and `1 + k` times (`popgo bench --loops L --repeat 1 --warmup 0`), and reads the
//! instruction totals of every thread except the main one (thread 1). The main thread
//! generates or maps the input, builds the tables and waits for the workers with a
//! timed sleep loop (its count grows with wall time, not packets), so it is left out;
//! the worker thread's own start-up (queues, pinning, the start barrier) is the same in
//! both runs and cancels in the difference:
//!
//! `instructions/packet = (I(1 + k) - I(1)) / (P(1 + k) - P(1))`
//!
//! Why not callgrind's client requests or `--toggle-collect` on the worker function:
//! client requests need `unsafe` inline assembly (the crate denies `unsafe`), and a
//! toggle pattern names a symbol that fat LTO may inline away in the next build (the
//! worker loop is generic and called from one place). Threads always exist.
//!
//! Measured repeatability on the gate profile (200,000 64-byte frames): the worker
//! thread's total over one loop moved by under 300 instructions in 65 million between
//! runs, and instructions per packet by 60 parts per million over 10 runs
//! (docs/bench.md). What varies is time-driven: the worker also publishes its counters
//! when the last publication is older than a fixed age, and callgrind slows time.

use super::child::{bench_args, ChildWorkload};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

/// Extra packets (k loops' worth) replayed by the second callgrind run, by default.
pub const DEFAULT_INSTR_PACKETS: u64 = 1_000_000;

/// The instructions-per-packet figure and how it was obtained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstrDoc {
    /// "callgrind".
    pub tool: String,
    /// `valgrind --version`.
    pub valgrind: String,
    /// Instructions per packet of the worker thread(s).
    pub per_packet: f64,
    /// Loops of the two runs: 1 and 1 + k.
    pub loops: [u64; 2],
    /// Packets each run replayed.
    pub packets: [u64; 2],
    /// Instructions executed by the worker thread(s) in each run.
    pub worker_instructions: [u64; 2],
}

/// Why the measurement could not be made.
#[derive(Debug, thiserror::Error)]
pub enum InstrError {
    #[error(
        "--metric instructions needs valgrind (callgrind), which was not found in PATH: install the Debian package `valgrind` (tools/setup.sh does)"
    )]
    Missing,
    #[error("valgrind --version failed: {0}")]
    Broken(String),
    #[error("callgrind run ({loops} loops): {msg}")]
    Run { loops: u64, msg: String },
    #[error("callgrind run ({loops} loops): no per-thread output in {dir}")]
    NoOutput { loops: u64, dir: String },
}

/// `valgrind --version`, or `Missing` when valgrind is not installed.
pub fn valgrind_version() -> Result<String, InstrError> {
    match Command::new("valgrind").arg("--version").output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(InstrError::Missing),
        Err(e) => Err(InstrError::Broken(e.to_string())),
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        Ok(o) => Err(InstrError::Broken(format!("{}: {}", o.status, String::from_utf8_lossy(&o.stderr).trim()))),
    }
}

/// The instruction totals in one callgrind output file: `(thread, instructions)`.
/// The file has a `thread: N` header with --separate-threads=yes and a `summary:` (or
/// `totals:`) line whose first number is the Ir event count.
pub fn parse_callgrind(text: &str) -> Option<(u32, u64)> {
    let mut thread = None;
    let mut total = None;
    for l in text.lines() {
        if let Some(v) = l.strip_prefix("thread:") {
            thread = v.trim().parse().ok();
        } else if let Some(v) = l.strip_prefix("summary:").or_else(|| l.strip_prefix("totals:")) {
            if total.is_none() {
                total = v.split_whitespace().next().and_then(|x| x.parse().ok());
            }
        }
    }
    Some((thread?, total?))
}

/// One callgrind run of `loops` loops: (packets replayed, worker instructions).
fn run_once(exe: &Path, w: &ChildWorkload, loops: u64, extra: &[OsString]) -> Result<(u64, u64), InstrError> {
    let run_err = |msg: String| InstrError::Run { loops, msg };
    let prefix = format!("callgrind.{loops}.");
    let out_file = w.dir.path().join(format!("{prefix}%p"));
    let mut args: Vec<OsString> = vec![
        "--tool=callgrind".into(),
        "--separate-threads=yes".into(),
        "--dump-line=no".into(),
        "--compress-strings=no".into(),
        {
            let mut o = OsString::from("--callgrind-out-file=");
            o.push(&out_file);
            o
        },
        exe.into(),
    ];
    args.extend(bench_args(w, loops, extra));
    let doc = super::child::run_json(Path::new("valgrind"), &args, "popgo bench under callgrind")
        .map_err(|e| run_err(format!("{e:#}")))?;
    let packets = doc["repetitions"][0]["packets"].as_u64().ok_or_else(|| run_err("no packet count".into()))?;
    let mut worker = 0u64;
    let mut files = 0;
    let entries = std::fs::read_dir(w.dir.path()).map_err(|e| run_err(e.to_string()))?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with(&prefix) {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).map_err(|e| run_err(format!("{name}: {e}")))?;
        // Read once: the next measurement in this directory (another binary, same
        // loops) must not count these again.
        std::fs::remove_file(e.path()).map_err(|e| run_err(format!("{name}: {e}")))?;
        if let Some((thread, ir)) = parse_callgrind(&text) {
            files += 1;
            if thread != 1 {
                worker += ir;
            }
        }
    }
    if files == 0 || worker == 0 {
        return Err(InstrError::NoOutput { loops, dir: w.dir.path().display().to_string() });
    }
    Ok((packets, worker))
}

/// Measures instructions per packet of `exe bench <workload> <extra>`: two callgrind
/// runs, 1 loop and 1 + k loops with k the fewest loops holding `extra_packets`.
pub fn measure(
    exe: &Path,
    w: &ChildWorkload,
    records: u64,
    extra_packets: u64,
    extra: &[OsString],
) -> Result<InstrDoc, InstrError> {
    let valgrind = valgrind_version()?;
    let k = extra_packets.div_ceil(records.max(1)).max(1);
    let loops = [1, 1 + k];
    let (pa, ia) = run_once(exe, w, loops[0], extra)?;
    let (pb, ib) = run_once(exe, w, loops[1], extra)?;
    if pb <= pa || ib <= ia {
        return Err(InstrError::Run {
            loops: loops[1],
            msg: format!("no growth over {} loops: {pa} -> {pb} packets, {ia} -> {ib} instructions", loops[0]),
        });
    }
    Ok(InstrDoc {
        tool: "callgrind".into(),
        valgrind,
        per_packet: (ib - ia) as f64 / (pb - pa) as f64,
        loops,
        packets: [pa, pb],
        worker_instructions: [ia, ib],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callgrind_totals() {
        let f = "# callgrind format\nversion: 1\ncreator: callgrind-3.24.0\npid: 20169\ncmd:  popgo bench\npart: 1\nthread: 2\n\ndesc: I1 cache: \npositions: line\nevents: Ir\nsummary: 129015805\n\nfn=(1) x\n3 4\ntotals: 129015805\n";
        assert_eq!(parse_callgrind(f), Some((2, 129015805)));
        assert_eq!(parse_callgrind("thread: 1\ntotals: 5 6\n"), Some((1, 5)));
        assert_eq!(parse_callgrind("summary: 5\n"), None, "no thread header");
        assert_eq!(parse_callgrind("thread: 3\n"), None, "no totals");
    }
}

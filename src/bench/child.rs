//! `popgo bench` run as a child process: the callgrind measurement (`instr`) and the
//! interleaved comparison (`compare`) both start `popgo bench --loops L --repeat 1
//! --warmup 0 --json` on one fixed workload and read its JSON.
//!
//! The workload is written once to a private temporary directory (the capture and
//! config generated from a profile; a capture given by path is used where it is), so
//! every child replays the same bytes and no child spends time generating traffic.

use anyhow::{anyhow, Context};
use serde_json::Value;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A private directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(what: &str) -> anyhow::Result<TempDir> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let p = std::env::temp_dir().join(format!("popgo-{what}-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&p).with_context(|| format!("creating {}", p.display()))?;
        Ok(TempDir(p))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The arguments naming one workload for a child `popgo bench`, and where it lives.
pub struct ChildWorkload {
    /// `--config FILE CAPTURE --workers N [--cores LIST] --burst N`.
    pub args: Vec<OsString>,
    pub dir: TempDir,
}

impl ChildWorkload {
    /// `capture` is the pcap to replay: `Some(path)` for a capture on disk, or `None`
    /// with `pcap_bytes` to write one. `config` likewise (path, or text to write).
    pub fn new(
        what: &str,
        capture: Result<&Path, &[u8]>,
        config: Result<&Path, &str>,
        w: &crate::cmd::WorkerArgs,
    ) -> anyhow::Result<ChildWorkload> {
        let dir = TempDir::new(what)?;
        let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let cap = match capture {
            Ok(p) => abs(p),
            Err(bytes) => {
                let p = dir.path().join("workload.pcap");
                std::fs::write(&p, bytes).with_context(|| p.display().to_string())?;
                p
            }
        };
        let cfg = match config {
            Ok(p) => abs(p),
            Err(text) => {
                let p = dir.path().join("workload-config.toml");
                std::fs::write(&p, text).with_context(|| p.display().to_string())?;
                p
            }
        };
        let mut args: Vec<OsString> = vec!["--config".into(), cfg.into(), cap.into()];
        args.extend(["--workers".into(), w.workers.to_string().into()]);
        if let Some(c) = &w.cores {
            args.extend(["--cores".into(), c.into()]);
        }
        args.extend(["--burst".into(), w.burst.to_string().into()]);
        Ok(ChildWorkload { args, dir })
    }
}

/// The `bench` arguments of one child repetition of `loops` loops.
pub fn bench_args(w: &ChildWorkload, loops: u64, extra: &[OsString]) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec!["bench".into()];
    v.extend(w.args.iter().cloned());
    v.extend(extra.iter().cloned());
    v.extend(["--loops".into(), loops.to_string().into(), "--repeat".into(), "1".into()]);
    v.extend(["--warmup".into(), "0".into(), "--json".into()]);
    v
}

/// Runs `program args...`, expects exit 0 and one JSON document on stdout.
pub fn run_json(program: &Path, args: &[OsString], what: &str) -> anyhow::Result<Value> {
    let out =
        Command::new(program).args(args).output().with_context(|| format!("{what}: starting {}", program.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(anyhow!("{what}: {} exited with {}: {}", program.display(), out.status, tail.join(" / ")));
    }
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("{what}: {} printed no popgo.bench JSON", program.display()))
}

/// The first repetition's Mpps of a child's document.
pub fn mpps_of(doc: &Value) -> Option<f64> {
    doc["repetitions"][0]["mpps"].as_f64().filter(|x| x.is_finite() && *x > 0.0)
}

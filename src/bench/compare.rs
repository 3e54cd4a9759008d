//! `--compare OTHER`: the baseline binary OTHER and this popgo (the candidate) measured
//! interleaved in one run, so that the machine's drift (other tenants, frequency,
//! thermal state) hits both alike.
//!
//! Both run as child processes (`popgo bench --loops L --repeat 1 --warmup 0 --json`)
//! on the same workload files, the same loops and the same cores: neither is measured
//! in a warmer process than the other. Pair i runs baseline then candidate when i is
//! even and candidate then baseline when odd (ABBA), so a steady drift within a pair
//! does not favour one side. The verdict is `verdict::compare_pairs` over the pairs'
//! Mpps ratios.

use super::child::{bench_args, mpps_of, run_json, ChildWorkload};
use super::machine::Build;
use super::verdict::{compare_pairs, PairVerdict};
use anyhow::{anyhow, Context};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::ffi::OsString;
use std::path::Path;

/// One interleaved pair.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    pub baseline_mpps: f64,
    pub candidate_mpps: f64,
    /// candidate / baseline (below 1 = the candidate is slower).
    pub ratio: f64,
    /// Which ran first: "baseline" or "candidate".
    pub first: String,
}

/// The comparison in the result document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareDoc {
    /// The baseline binary's path, as given.
    pub baseline_binary: String,
    /// The baseline binary's own build record (from its JSON).
    pub baseline_popgo: Build,
    /// Loops per child run.
    pub loops: u64,
    /// Unmeasured pairs before the measured ones.
    pub warmup_pairs: usize,
    pub pairs: Vec<Pair>,
    pub verdict: PairVerdict,
}

/// Loops per child run: the candidate calibrates itself to `duration_s` once (that run
/// also warms the page cache and the CPU for both).
pub fn calibrate(cand: &Path, w: &ChildWorkload, duration_s: f64, cand_extra: &[OsString]) -> anyhow::Result<u64> {
    let mut args: Vec<OsString> = vec!["bench".into()];
    args.extend(w.args.iter().cloned());
    args.extend(cand_extra.iter().cloned());
    args.extend(["--duration".into(), duration_s.to_string().into(), "--repeat".into(), "1".into()]);
    args.extend(["--warmup".into(), "0".into(), "--json".into()]);
    let doc = run_json(cand, &args, "calibrating the loops (candidate)")?;
    doc["workload"]["loops"].as_u64().filter(|l| *l > 0).ok_or_else(|| anyhow!("calibration: no loop count"))
}

/// What `run` returns: the comparison and the candidate's child documents (one per
/// measured pair, in order).
pub struct Compared {
    pub doc: CompareDoc,
    pub candidate_docs: Vec<Value>,
}

/// Runs `warmup` unmeasured and `pairs` measured interleaved pairs.
#[allow(clippy::too_many_arguments)]
pub fn run(
    cand: &Path,
    base: &Path,
    w: &ChildWorkload,
    loops: u64,
    warmup: usize,
    pairs: usize,
    cand_extra: &[OsString],
    max_regression_pct: f64,
) -> anyhow::Result<Compared> {
    let one = |exe: &Path, extra: &[OsString], what: &str| -> anyhow::Result<Value> {
        let doc = run_json(exe, &bench_args(w, loops, extra), what)?;
        mpps_of(&doc).ok_or_else(|| anyhow!("{what}: {} reported no Mpps", exe.display()))?;
        Ok(doc)
    };
    let mut measured = Vec::with_capacity(pairs);
    let mut cand_docs = Vec::with_capacity(pairs);
    let mut base_build = None;
    for i in 0..warmup + pairs {
        let base_first = i % 2 == 0;
        let (b, c) = if base_first {
            let b = one(base, &[], "baseline")?;
            (b, one(cand, cand_extra, "candidate")?)
        } else {
            let c = one(cand, cand_extra, "candidate")?;
            (one(base, &[], "baseline")?, c)
        };
        if base_build.is_none() {
            base_build =
                Some(serde_json::from_value::<Build>(b["popgo"].clone()).context("the baseline's build record")?);
        }
        if i < warmup {
            continue;
        }
        let (bm, cm) = (mpps_of(&b).unwrap_or(0.0), mpps_of(&c).unwrap_or(0.0));
        measured.push(Pair {
            baseline_mpps: bm,
            candidate_mpps: cm,
            ratio: cm / bm,
            first: if base_first { "baseline" } else { "candidate" }.into(),
        });
        cand_docs.push(c);
    }
    let bs: Vec<f64> = measured.iter().map(|p| p.baseline_mpps).collect();
    let cs: Vec<f64> = measured.iter().map(|p| p.candidate_mpps).collect();
    let verdict = compare_pairs(&bs, &cs, max_regression_pct);
    Ok(Compared {
        doc: CompareDoc {
            baseline_binary: base.display().to_string(),
            baseline_popgo: base_build.unwrap_or_default(),
            loops,
            warmup_pairs: warmup,
            pairs: measured,
            verdict,
        },
        candidate_docs: cand_docs,
    })
}

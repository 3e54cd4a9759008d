//! `popgo diff`: replays a capture twice, once with POPGO and once with the default
//! POP + longest-match lookup, and reports per FEC and label how many packets would
//! leave through a different port. This is the misforwarding the seed warns about,
//! shown on the user's own traffic. Both passes count per LSP as `replay` does, so the
//! report also says, per in label, what each one forwarded (packets, bytes, out ports)
//! and which labels gain or lose traffic without POPGO.

use crate::cmd::{load_capture, load_config, runtime, usage, Failure};
use crate::config::Config;
use crate::dataplane::worker::trace_on;
use crate::dataplane::{Verdict, BURST};
use crate::ilm::{build, BuildError, Snapshot};
use crate::io::pcap::Capture;
use crate::stats::board::StatsBoard;
use crate::stats::lsp::LspCount;
use crate::wire::ethernet::{Frame, ETHERTYPE_MPLS};
use crate::wire::mpls::{LabelStack, FIRST_UNRESERVED};
use anyhow::Context;
use clap::Args;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One (FEC, label) row of the diff.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct DiffRow {
    pub label: u32,
    pub fec: String,
    pub packets: u64,
    pub same: u64,
    pub different: u64,
    /// `"<popgo port> -> <pop port>"` to packet count; `dropped` stands for a drop.
    pub moves: BTreeMap<String, u64>,
}

/// What one pass forwarded for one in label (its per-LSP counters).
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct LspSide {
    pub packets: u64,
    pub bytes: u64,
    /// The ports its packets left by.
    pub ports: Vec<String>,
}

/// One in label's per-LSP counts with POPGO and without, and what changed:
/// `gained` or `lost` (more or fewer packets forwarded without POPGO), `moved` (as
/// many, through other ports) or `same`.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct LspDiff {
    pub label: u32,
    pub fec: String,
    pub popgo: LspSide,
    pub pop: LspSide,
    pub change: &'static str,
}

/// The whole diff.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DiffReport {
    pub packets: u64,
    pub different: u64,
    pub rows: Vec<DiffRow>,
    pub popgo: BTreeMap<String, u64>,
    pub pop: BTreeMap<String, u64>,
    /// Per in label that forwarded something in either pass, by label.
    pub lsps: Vec<LspDiff>,
}

/// The first non-special label of a frame, if it is MPLS.
fn deciding_label(d: &[u8]) -> Option<u32> {
    let f = Frame::new_checked(d).ok()?;
    if f.ethertype() != ETHERTYPE_MPLS {
        return None;
    }
    let st = LabelStack::new_checked(f.payload()).ok()?;
    let mut it = st.entries();
    while let Some(e) = it.next() {
        match e.label() {
            7 => {
                it.next();
            }
            l if l >= FIRST_UNRESERVED => return Some(l),
            _ => {}
        }
    }
    None
}

/// Each packet's fate (`port name` or `dropped:<reason>`) in input order, the totals,
/// and the per-LSP counts, from one pass of the worker loop over the capture.
fn run(snap: &Snapshot, cap: &Capture, names: &[String]) -> (Vec<String>, BTreeMap<String, u64>, Vec<LspCount>) {
    let board = StatsBoard::new(1);
    let (_, trace) = trace_on(snap, cap, BURST, false, Some(&board));
    // Frames that never reached the data path were dropped at RX: oversize.
    let mut out = vec!["dropped:oversize".to_string(); cap.len()];
    for (seq, v, _) in trace {
        out[seq as usize] = match v {
            Verdict::Forward(p) => names.get(p as usize).cloned().unwrap_or_else(|| format!("port{p}")),
            Verdict::Drop(r) => format!("dropped:{}", r.name()),
        };
    }
    let mut totals = BTreeMap::new();
    for o in &out {
        *totals.entry(o.clone()).or_insert(0) += 1;
    }
    (out, totals, board.lsp_counts())
}

/// The per-LSP part of the diff: both passes' counts side by side, by label.
fn lsp_diffs(a: &[LspCount], b: &[LspCount], names: &[String], fec_of: &BTreeMap<u32, String>) -> Vec<LspDiff> {
    let side = |c: Option<&LspCount>| match c {
        Some(c) => {
            LspSide { packets: c.packets, bytes: c.bytes, ports: port_names(c.before.ports | c.after.ports, names) }
        }
        None => LspSide::default(),
    };
    let mut labels: Vec<u32> = a.iter().chain(b).map(|c| c.label).collect();
    labels.sort_unstable();
    labels.dedup();
    let find = |v: &'_ [LspCount], l: u32| v.binary_search_by_key(&l, |c| c.label).ok().map(|i| v[i]);
    labels
        .into_iter()
        .map(|label| {
            let (popgo, pop) = (side(find(a, label).as_ref()), side(find(b, label).as_ref()));
            let change = match pop.packets.cmp(&popgo.packets) {
                std::cmp::Ordering::Greater => "gained",
                std::cmp::Ordering::Less => "lost",
                _ if pop.ports != popgo.ports => "moved",
                _ => "same",
            };
            LspDiff { label, fec: fec_of.get(&label).cloned().unwrap_or_else(|| "-".into()), popgo, pop, change }
        })
        .collect()
}

fn port_names(bits: u64, names: &[String]) -> Vec<String> {
    (0..64)
        .filter(|p| bits & 1 << p != 0)
        .map(|p| names.get(p).cloned().unwrap_or_else(|| format!("port{p}")))
        .collect()
}

/// Diffs POPGO against POP on `cap`. The config's own `pop_go` setting is ignored: both
/// are built from it.
pub fn diff(cfg: &Config, cap: &Capture) -> Result<DiffReport, BuildError> {
    let mut with = cfg.clone();
    let mut without = cfg.clone();
    if let (Some(a), Some(b)) = (with.bgp.as_mut(), without.bgp.as_mut()) {
        a.pop_go = true;
        b.pop_go = false;
    }
    let (sa, sb) = (build(&with, 0)?, build(&without, 0)?);
    let names: Vec<String> = cfg.ports.iter().map(|p| p.name.clone()).collect();
    let (a, ta, la) = run(&sa, cap, &names);
    let (b, tb, lb) = run(&sb, cap, &names);
    let fec_of: BTreeMap<u32, String> = sa.lsps.iter().map(|r| (r.in_label, r.fec.to_string())).collect();
    let mut rows: BTreeMap<u32, DiffRow> = BTreeMap::new();
    let lsps = lsp_diffs(&la, &lb, &names, &fec_of);
    let mut report = DiffReport { packets: cap.len() as u64, popgo: ta, pop: tb, lsps, ..Default::default() };
    for i in 0..cap.len() {
        let Some(label) = deciding_label(cap.packet(i)) else { continue };
        let row = rows.entry(label).or_insert_with(|| DiffRow {
            label,
            fec: fec_of.get(&label).cloned().unwrap_or_else(|| "-".into()),
            ..Default::default()
        });
        row.packets += 1;
        if a[i] == b[i] {
            row.same += 1;
        } else {
            row.different += 1;
            report.different += 1;
            *row.moves.entry(format!("{} -> {}", a[i], b[i])).or_insert(0) += 1;
        }
    }
    report.rows = rows.into_values().collect();
    Ok(report)
}

/// Human-readable diff.
pub fn text(r: &DiffReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<20} {:>8} {:>10} {:>10} {:>10}  moves (POPGO -> POP)",
        "FEC", "label", "packets", "same", "different"
    );
    for row in &r.rows {
        let moves: Vec<String> = row.moves.iter().map(|(k, v)| format!("{v} x {k}")).collect();
        let _ = writeln!(
            s,
            "{:<20} {:>8} {:>10} {:>10} {:>10}  {}",
            row.fec,
            row.label,
            row.packets,
            row.same,
            row.different,
            moves.join(", ")
        );
    }
    let _ = writeln!(s, "\n{} of {} packets leave through a different port without POPGO", r.different, r.packets);
    let fmt = |m: &BTreeMap<String, u64>| m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
    let _ = writeln!(s, "with POPGO:    {}", fmt(&r.popgo));
    let _ = writeln!(s, "without POPGO: {}", fmt(&r.pop));
    if !r.lsps.is_empty() {
        let _ = writeln!(s, "\nper LSP (packets, bytes, out ports)   with POPGO -> without POPGO");
        for l in &r.lsps {
            let name = format!("{} ({})", l.fec, l.label);
            let _ = writeln!(
                s,
                "  {name:<22} {:>8} {:>10} {:<12} -> {:>8} {:>10} {:<12} {}",
                l.popgo.packets,
                l.popgo.bytes,
                side_ports(&l.popgo),
                l.pop.packets,
                l.pop.bytes,
                side_ports(&l.pop),
                l.change
            );
        }
    }
    s
}

fn side_ports(s: &LspSide) -> String {
    if s.ports.is_empty() {
        "-".into()
    } else {
        s.ports.join(",")
    }
}

/// `popgo diff` arguments.
#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The device configuration (TOML); its `pop_go` setting is ignored: both are run.
    #[arg(long)]
    pub config: PathBuf,
    /// The report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// The capture to compare on (pcap or pcapng).
    pub input: PathBuf,
}

/// Entry point of `popgo diff`.
pub fn main(a: DiffArgs) -> Result<(), Failure> {
    let cfg = load_config(&a.config)?;
    let cap = load_capture(&a.input)?;
    let r = diff(&cfg, &cap).context("building tables").map_err(usage)?;
    if a.json {
        println!("{}", serde_json::to_string(&r).map_err(runtime)?);
    } else {
        print!("{}", text(&r));
    }
    Ok(())
}

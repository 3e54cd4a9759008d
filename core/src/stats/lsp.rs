//! Per-LSP counters: packets and bytes forwarded per in label (the label whose ILM entry
//! decided the forward), and the out ports they used, one row per worker, summed when
//! read.
//!
//! A row is a flat table indexed by the 20-bit label, three words per label (packets,
//! bytes, a bit per out port), so a label keeps its counts across table swaps (a commit
//! changes what a label does, not where it is counted) and counting is one indexed
//! update per packet with no lookup. Each worker has two rows: one for the packets it
//! forwarded with the tables it started with, one for those after its first table swap
//! (the worker picks the row once per burst), so a report can say where each FEC's
//! packets went before and after a commit. Rows are allocated zero-filled
//! ([`crate::sys::zeroed`]): 24 MiB of address space each, of which only the pages of
//! labels that carried traffic become resident (4 KiB per 170 neighbouring labels).
//!
//! The worker is the only writer of its row and uses relaxed loads and stores (plain
//! moves on x86-64 and aarch64, no locked instruction); readers may run at any time and
//! see each counter as some recent value, as with the stats board.

use std::sync::atomic::{AtomicU64, Ordering};

/// Labels a row counts: every 20-bit label.
pub const LABELS: usize = 1 << 20;

/// Words per label in a row: packets, bytes, out ports (bit `p` for port `p`).
const WORDS: usize = 3;

/// One worker's counters for one phase: label `l` at words `3l..3l + 3`.
pub struct LspRow(Box<[AtomicU64; WORDS * LABELS]>);

impl LspRow {
    fn new() -> LspRow {
        let words = crate::sys::zeroed::atomics(WORDS * LABELS);
        LspRow(words.try_into().unwrap_or_else(|_| unreachable!("allocated with WORDS * LABELS words")))
    }

    /// Counts one packet of `bytes` bytes forwarded out of `port` (`< 64`, as every
    /// port index is) against `label` (its low 20 bits). Worker only: no other thread
    /// writes this row.
    #[inline(always)]
    pub fn add(&self, label: u32, bytes: usize, port: u16) {
        let i = (label as usize & (LABELS - 1)) * WORDS;
        let (p, b, o) = (&self.0[i], &self.0[i + 1], &self.0[i + 2]);
        p.store(p.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        b.store(b.load(Ordering::Relaxed) + bytes as u64, Ordering::Relaxed);
        o.store(o.load(Ordering::Relaxed) | 1 << (port & 63), Ordering::Relaxed);
    }

    fn read(&self, label: usize) -> [u64; WORDS] {
        std::array::from_fn(|k| self.0[WORDS * label + k].load(Ordering::Relaxed))
    }
}

/// Packets forwarded for one label in one phase, and the out ports they left by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Phase {
    pub packets: u64,
    /// Bit `p` set: some packet left by port `p`.
    pub ports: u64,
}

/// Packets and bytes of one label, summed over the workers; and the packets and out
/// ports before and after each worker's first table swap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LspCount {
    pub label: u32,
    pub packets: u64,
    pub bytes: u64,
    pub before: Phase,
    pub after: Phase,
}

/// Per-label counts kept outside the workers' rows (the XDP offload's, in the kernel):
/// `(label, packets, bytes)` by label. Read with the rows; an error reads as nothing.
pub type ExtraLsps = Box<dyn Fn() -> Vec<(u32, u64, u64)> + Send + Sync>;

/// The per-LSP counters of every worker.
pub struct LspCounters {
    /// Per worker: the row before its first table swap, and the one after.
    rows: Vec<[LspRow; 2]>,
    /// Counts of packets forwarded elsewhere, added to the totals (not to the phases:
    /// they are not split at a table swap).
    extra: std::sync::OnceLock<ExtraLsps>,
}

impl LspCounters {
    /// Rows for `workers` workers (setup only: allocates address space, see above).
    pub fn new(workers: usize) -> LspCounters {
        LspCounters { rows: (0..workers).map(|_| [LspRow::new(), LspRow::new()]).collect(), extra: Default::default() }
    }

    /// Workers with rows (0 when nothing counts per LSP).
    pub fn workers(&self) -> usize {
        self.rows.len()
    }

    /// Adds the counts `extra` returns to every read (set once; a second call is
    /// ignored and returns false).
    pub fn set_extra(&self, extra: ExtraLsps) -> bool {
        self.extra.set(extra).is_ok()
    }

    /// Worker `w`'s row before (`swapped` false) or after its first table swap.
    #[inline(always)]
    pub fn row(&self, w: usize, swapped: bool) -> Option<&LspRow> {
        self.rows.get(w).map(|r| &r[usize::from(swapped)])
    }

    /// Every label that forwarded something, summed over the workers, by label (a scan
    /// of every row: a few milliseconds per worker; reports and scrapes only).
    pub fn read(&self) -> Vec<LspCount> {
        // Most labels never forward: one pass per row over the packet words finds the
        // others (a scrape of an unoptimised build stays well under a 1 s interval).
        let mut busy: Vec<usize> = Vec::new();
        for row in self.rows.iter().flatten() {
            busy.extend(
                row.0.iter().step_by(WORDS).enumerate().filter(|(_, p)| p.load(Ordering::Relaxed) != 0).map(|(l, _)| l),
            );
        }
        busy.sort_unstable();
        busy.dedup();
        let mut out = Vec::with_capacity(busy.len());
        for label in busy {
            let mut c = LspCount { label: label as u32, ..Default::default() };
            for [before, after] in &self.rows {
                for (row, phase) in [(before, &mut c.before), (after, &mut c.after)] {
                    let [p, b, o] = row.read(label);
                    c.packets += p;
                    c.bytes += b;
                    phase.packets += p;
                    phase.ports |= o;
                }
            }
            if c.packets != 0 {
                out.push(c);
            }
        }
        match self.extra.get() {
            Some(extra) => merge_extra(out, extra()),
            None => out,
        }
    }

    /// The `n` labels with the most packets (ties: lower label first), busiest first,
    /// and the sum of all the others (label 0 there means nothing).
    pub fn top(&self, n: usize) -> (Vec<LspCount>, LspCount) {
        top_of(self.read(), n)
    }
}

/// Counts by label plus `extra` (by label): packets and bytes added to the label's
/// totals, or a new count for a label only `extra` has.
fn merge_extra(counts: Vec<LspCount>, extra: Vec<(u32, u64, u64)>) -> Vec<LspCount> {
    let mut out = Vec::with_capacity(counts.len() + extra.len());
    let mut extra = extra.into_iter().filter(|e| e.1 != 0).peekable();
    for mut c in counts {
        while let Some(&(label, packets, bytes)) = extra.peek() {
            if label > c.label {
                break;
            }
            extra.next();
            if label == c.label {
                c.packets += packets;
                c.bytes += bytes;
            } else {
                out.push(LspCount { label, packets, bytes, ..Default::default() });
            }
        }
        out.push(c);
    }
    out.extend(extra.map(|(label, packets, bytes)| LspCount { label, packets, bytes, ..Default::default() }));
    out
}

/// [`LspCounters::top`] over counts already read.
pub fn top_of(mut all: Vec<LspCount>, n: usize) -> (Vec<LspCount>, LspCount) {
    let busiest = |a: &LspCount, b: &LspCount| b.packets.cmp(&a.packets).then(a.label.cmp(&b.label));
    // A selection, not a sort of every label: a scrape over a million busy labels
    // orders only the top n.
    if n < all.len() {
        all.select_nth_unstable_by(n, busiest);
    }
    let mut other = LspCount::default();
    for c in all.iter().skip(n) {
        other.packets += c.packets;
        other.bytes += c.bytes;
    }
    all.truncate(n);
    all.sort_unstable_by(busiest);
    (all, other)
}

/// Rows of the per-LSP part of a text report shown by default: the busiest labels.
pub const REPORT_TOP: usize = 10;

/// The per-LSP part of a report as JSON: every label that forwarded something, with
/// its FEC when `fec` knows it (`null` otherwise, e.g. an ILM-only static label).
pub fn to_json(counts: &[LspCount], fec: impl Fn(u32) -> Option<String>) -> serde_json::Value {
    counts
        .iter()
        .map(|c| serde_json::json!({"label": c.label, "fec": fec(c.label), "packets": c.packets, "bytes": c.bytes}))
        .collect()
}

/// The labels whose out ports changed when the tables did (packets both before and
/// after some worker's first table swap, through different ports), by label.
pub fn moved(counts: &[LspCount]) -> impl Iterator<Item = &LspCount> {
    counts.iter().filter(|c| c.before.packets > 0 && c.after.packets > 0 && c.before.ports != c.after.ports)
}

/// Port names of a port bit set.
fn port_names(bits: u64, ports: &[String]) -> Vec<String> {
    (0..64)
        .filter(|p| bits & 1 << p != 0)
        .map(|p| ports.get(p).cloned().unwrap_or_else(|| format!("port{p}")))
        .collect()
}

/// Where the packets of every label went before and after the first table swap, as
/// JSON: `[{label, fec, before: {packets, ports}, after: {packets, ports}}]` for the
/// labels [`moved`] lists.
pub fn moves_to_json(counts: &[LspCount], ports: &[String], fec: impl Fn(u32) -> Option<String>) -> serde_json::Value {
    let phase = |p: &Phase| serde_json::json!({"packets": p.packets, "ports": port_names(p.ports, ports)});
    moved(counts)
        .map(|c| serde_json::json!({"label": c.label, "fec": fec(c.label), "before": phase(&c.before), "after": phase(&c.after)}))
        .collect()
}

/// The same as text: one line per label whose out ports changed (the first `top`), e.g.
/// `10.1.1.0/24 (48122)  11 packets via to-A, to-B -> 13 via to-A`.
pub fn moves_to_text(counts: &[LspCount], ports: &[String], top: usize, fec: impl Fn(u32) -> Option<String>) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let all: Vec<&LspCount> = moved(counts).collect();
    if all.is_empty() {
        return s;
    }
    let _ = writeln!(s, "moved by the table change (per FEC: before the first swap -> after)");
    for c in all.iter().take(top) {
        let name = match fec(c.label) {
            Some(f) => format!("{f} ({})", c.label),
            None => format!("label {}", c.label),
        };
        let _ = writeln!(
            s,
            "  {:<22} {} packets via {} -> {} via {}",
            name,
            c.before.packets,
            port_names(c.before.ports, ports).join(", "),
            c.after.packets,
            port_names(c.after.ports, ports).join(", ")
        );
    }
    if all.len() > top {
        let _ = writeln!(s, "  ... and {} more labels (see --json)", all.len() - top);
    }
    s
}

/// The per-LSP part of a text report: the `top` busiest labels, then the rest in one
/// line, then the total (which is every forwarded packet).
pub fn to_text(counts: &[LspCount], top: usize, fec: impl Fn(u32) -> Option<String>) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    if counts.is_empty() {
        return s;
    }
    let total: (u64, u64) = counts.iter().fold((0, 0), |(p, b), c| (p + c.packets, b + c.bytes));
    let (busiest, other) = top_of(counts.to_vec(), top);
    let _ = writeln!(s, "{:<24} {:>14} {:>14}", "per LSP (in label)", "packets", "bytes");
    for c in &busiest {
        let name = match fec(c.label) {
            Some(f) => format!("{} {f}", c.label),
            None => c.label.to_string(),
        };
        let _ = writeln!(s, "  {:<22} {:>14} {:>14}", name, c.packets, c.bytes);
    }
    if other.packets > 0 {
        let rest = counts.len() - busiest.len();
        let _ = writeln!(s, "  {:<22} {:>14} {:>14}", format!("{rest} other labels"), other.packets, other.bytes);
    }
    let _ = writeln!(s, "  {:<22} {:>14} {:>14}", "all labels", total.0, total.1);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_sum_per_label_and_top_keeps_the_rest_as_other() {
        let c = LspCounters::new(2);
        let (r0, r1) = (c.row(0, false).unwrap(), c.row(1, false).unwrap());
        r0.add(48122, 60, 1);
        r1.add(48122, 100, 0);
        r1.add(16, 64, 0);
        r0.add((LABELS - 1) as u32, 1, 2);
        // Only the low 20 bits count.
        c.row(0, true).unwrap().add(LABELS as u32 + 16, 10, 1);
        for _ in 0..3 {
            r1.add(500, 1000, 2);
        }
        assert!(c.row(2, false).is_none());
        let all = c.read();
        let phase = |packets, ports| Phase { packets, ports };
        let none = Phase::default();
        assert_eq!(
            all,
            [
                LspCount { label: 16, packets: 2, bytes: 74, before: phase(1, 1), after: phase(1, 2) },
                LspCount { label: 500, packets: 3, bytes: 3000, before: phase(3, 4), after: none },
                LspCount { label: 48122, packets: 2, bytes: 160, before: phase(2, 3), after: none },
                LspCount { label: (LABELS - 1) as u32, packets: 1, bytes: 1, before: phase(1, 4), after: none },
            ]
        );
        let names = ["to-A".to_string(), "to-B".to_string()];
        assert_eq!(
            moves_to_text(&all, &names, 10, |_| None),
            "moved by the table change (per FEC: before the first swap -> after)\n  label 16               1 packets via to-A -> 1 via to-B\n"
        );
        assert_eq!(
            moves_to_json(&all, &names, |_| Some("10.0.0.16/32".into())),
            serde_json::json!([{"label": 16, "fec": "10.0.0.16/32",
                "before": {"packets": 1, "ports": ["to-A"]}, "after": {"packets": 1, "ports": ["to-B"]}}])
        );
        let (top, other) = c.top(2);
        assert_eq!(top.iter().map(|c| c.label).collect::<Vec<_>>(), [500, 16]);
        assert_eq!((other.packets, other.bytes), (3, 161));
        let (top, other) = c.top(10);
        assert_eq!((top.len(), other.packets), (4, 0));

        let fec = |l: u32| (l == 48122).then(|| "10.1.1.0/24".to_string());
        let text = to_text(&all, 1, fec);
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                "per LSP (in label)              packets          bytes",
                "  500                                 3           3000",
                "  3 other labels                      5            235",
                "  all labels                          8           3235",
            ]
        );
        assert!(
            to_text(&all, 10, fec).contains("  48122 10.1.1.0/24                   2            160\n"),
            "{}",
            to_text(&all, 10, fec)
        );
        assert_eq!(to_text(&[], 10, fec), "");
        let j = to_json(&all, fec);
        assert_eq!(j[2], serde_json::json!({"label": 48122, "fec": "10.1.1.0/24", "packets": 2, "bytes": 160}));
        assert_eq!(j[0]["fec"], serde_json::Value::Null);
    }

    #[test]
    fn counts_kept_elsewhere_join_the_totals_by_label() {
        let c = LspCounters::new(1);
        let r = c.row(0, false).unwrap();
        r.add(100, 60, 0);
        r.add(300, 60, 1);
        assert!(c.set_extra(Box::new(|| vec![(16, 2, 120), (100, 3, 180), (200, 1, 60), (300, 0, 0), (900, 4, 240)])));
        assert!(!c.set_extra(Box::new(Vec::new)), "set once");
        let got: Vec<(u32, u64, u64)> = c.read().iter().map(|c| (c.label, c.packets, c.bytes)).collect();
        assert_eq!(got, [(16, 2, 120), (100, 4, 240), (200, 1, 60), (300, 1, 60), (900, 4, 240)]);
        // The phases stay the workers' own: a kernel count is not split at a swap.
        let l100 = c.read()[1];
        assert_eq!((l100.before.packets, l100.after.packets), (1, 0));
    }
}

//! Per-LSP counters: packets and bytes forwarded per in label (the label whose ILM entry
//! decided the forward), one row per worker, summed when read.
//!
//! A row is a flat table indexed by the 20-bit label, two words per label, so a label
//! keeps its counts across table swaps (a commit changes what a label does, not where
//! it is counted) and counting is one indexed add per packet with no lookup. Rows are
//! allocated zero-filled ([`crate::sys::zeroed`]): 16 MiB of address space per worker,
//! of which only the pages of labels that carried traffic become resident (4 KiB per
//! 256 neighbouring labels).
//!
//! The worker is the only writer of its row and uses relaxed loads and stores (plain
//! moves on x86-64 and aarch64, no locked instruction); readers may run at any time and
//! see each counter as some recent value, as with the stats board.

use std::sync::atomic::{AtomicU64, Ordering};

/// Labels a row counts: every 20-bit label.
pub const LABELS: usize = 1 << 20;

/// One worker's counters: `[packets, bytes]` of label `l` at words `2l` and `2l + 1`.
pub struct LspRow(Box<[AtomicU64; 2 * LABELS]>);

impl LspRow {
    fn new() -> LspRow {
        let words = crate::sys::zeroed::atomics(2 * LABELS);
        LspRow(words.try_into().unwrap_or_else(|_| unreachable!("allocated with 2 * LABELS words")))
    }

    /// Counts one forwarded packet of `bytes` bytes against `label` (its low 20 bits).
    /// Worker only: no other thread writes this row.
    #[inline(always)]
    pub fn add(&self, label: u32, bytes: usize) {
        let i = (label as usize & (LABELS - 1)) * 2;
        let (p, b) = (&self.0[i], &self.0[i + 1]);
        p.store(p.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        b.store(b.load(Ordering::Relaxed) + bytes as u64, Ordering::Relaxed);
    }

    fn read(&self, label: usize) -> (u64, u64) {
        (self.0[2 * label].load(Ordering::Relaxed), self.0[2 * label + 1].load(Ordering::Relaxed))
    }
}

/// Packets and bytes of one label, summed over the workers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LspCount {
    pub label: u32,
    pub packets: u64,
    pub bytes: u64,
}

/// The per-LSP counters of every worker.
pub struct LspCounters {
    rows: Vec<LspRow>,
}

impl LspCounters {
    /// Rows for `workers` workers (setup only: allocates address space, see above).
    pub fn new(workers: usize) -> LspCounters {
        LspCounters { rows: (0..workers).map(|_| LspRow::new()).collect() }
    }

    /// Worker `w`'s row.
    pub fn row(&self, w: usize) -> Option<&LspRow> {
        self.rows.get(w)
    }

    /// Every label that forwarded something, summed over the workers, by label (a scan
    /// of every row: about a millisecond per worker; reports and scrapes only).
    pub fn read(&self) -> Vec<LspCount> {
        let mut out = Vec::new();
        for label in 0..LABELS {
            let mut c = LspCount { label: label as u32, packets: 0, bytes: 0 };
            for r in &self.rows {
                let (p, b) = r.read(label);
                c.packets += p;
                c.bytes += b;
            }
            if c.packets != 0 {
                out.push(c);
            }
        }
        out
    }

    /// The `n` labels with the most packets (ties: lower label first), busiest first,
    /// and the sum of all the others (label 0 there means nothing).
    pub fn top(&self, n: usize) -> (Vec<LspCount>, LspCount) {
        top_of(self.read(), n)
    }
}

/// [`LspCounters::top`] over counts already read.
pub fn top_of(mut all: Vec<LspCount>, n: usize) -> (Vec<LspCount>, LspCount) {
    all.sort_unstable_by(|a, b| b.packets.cmp(&a.packets).then(a.label.cmp(&b.label)));
    let mut other = LspCount::default();
    for c in all.iter().skip(n) {
        other.packets += c.packets;
        other.bytes += c.bytes;
    }
    all.truncate(n);
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
        let (r0, r1) = (c.row(0).unwrap(), c.row(1).unwrap());
        r0.add(48122, 60);
        r1.add(48122, 100);
        r1.add(16, 64);
        r0.add((LABELS - 1) as u32, 1);
        // Only the low 20 bits count.
        r0.add(LABELS as u32 + 16, 10);
        for _ in 0..3 {
            r1.add(500, 1000);
        }
        assert!(c.row(2).is_none());
        let all = c.read();
        assert_eq!(
            all,
            [
                LspCount { label: 16, packets: 2, bytes: 74 },
                LspCount { label: 500, packets: 3, bytes: 3000 },
                LspCount { label: 48122, packets: 2, bytes: 160 },
                LspCount { label: (LABELS - 1) as u32, packets: 1, bytes: 1 },
            ]
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
            to_text(&all, 10, fec).contains("  48122 10.1.1.0/24                 2            160\n"),
            "{}",
            to_text(&all, 10, fec)
        );
        assert_eq!(to_text(&[], 10, fec), "");
        let j = to_json(&all, fec);
        assert_eq!(j[2], serde_json::json!({"label": 48122, "fec": "10.1.1.0/24", "packets": 2, "bytes": 160}));
        assert_eq!(j[0]["fec"], serde_json::Value::Null);
    }
}

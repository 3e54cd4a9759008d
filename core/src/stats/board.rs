//! The stats board: where workers publish counter snapshots for the stats thread and
//! the control socket to read, without locks.
//!
//! Each worker owns one cache-padded row of relaxed `AtomicU64`s and copies its private
//! `WorkerStats` into it every `STATS_PUBLISH_EVERY` bursts (and when it stops). Readers
//! see each counter as some recent value; a row may mix values from two publications,
//! which is fine for monotonic counters (totals may be off by in-flight packets only).

use super::counters::{DropReason, WorkerStats, MAX_PORTS};
use super::latency::LAT_BUCKETS;
use super::lsp::LspCounters;
use crossbeam::utils::CachePadded;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bursts between two publications of a worker's counters.
pub const STATS_PUBLISH_EVERY: u64 = 1024;

/// Number of u64 words in a flattened `WorkerStats`.
pub const WORDS: usize = 5 + DropReason::COUNT + 3 * MAX_PORTS + 5 + LAT_BUCKETS + 1;

impl WorkerStats {
    /// Flattens the counters (stable order, used by the board only).
    pub fn to_words(&self, out: &mut [u64; WORDS]) {
        let mut i = 0;
        let mut put = |v: u64| {
            out[i] = v;
            i += 1;
        };
        for v in [self.rx_pkts, self.rx_bytes, self.tx_pkts, self.tx_bytes, self.bursts] {
            put(v);
        }
        self.drops.iter().for_each(|v| put(*v));
        self.port_rx_pkts.iter().for_each(|v| put(*v));
        self.port_tx_pkts.iter().for_each(|v| put(*v));
        self.port_tx_bytes.iter().for_each(|v| put(*v));
        for v in [self.empty_polls, self.rx_wakeups, self.tx_wakeups, self.fill_ring_starved, self.ilm_swaps_seen] {
            put(v);
        }
        self.lat_buckets.iter().for_each(|v| put(*v));
        put(self.lat_sum_ns);
    }

    /// Inverse of `to_words`.
    pub fn from_words(w: &[u64; WORDS]) -> WorkerStats {
        let mut it = w.iter().copied();
        let mut next = || it.next().unwrap_or(0);
        let mut s = WorkerStats {
            rx_pkts: next(),
            rx_bytes: next(),
            tx_pkts: next(),
            tx_bytes: next(),
            bursts: next(),
            ..Default::default()
        };
        s.drops.iter_mut().for_each(|v| *v = next());
        s.port_rx_pkts.iter_mut().for_each(|v| *v = next());
        s.port_tx_pkts.iter_mut().for_each(|v| *v = next());
        s.port_tx_bytes.iter_mut().for_each(|v| *v = next());
        s.empty_polls = next();
        s.rx_wakeups = next();
        s.tx_wakeups = next();
        s.fill_ring_starved = next();
        s.ilm_swaps_seen = next();
        s.lat_buckets.iter_mut().for_each(|v| *v = next());
        s.lat_sum_ns = next();
        s
    }
}

/// One row per worker, and one for the counters of the XDP offload (packets the
/// kernel forwarded or dropped itself), which `total` includes.
pub struct StatsBoard {
    rows: Vec<CachePadded<[AtomicU64; WORDS]>>,
    /// Per-LSP counters, one row per worker, written by the workers directly.
    lsps: std::sync::Arc<LspCounters>,
    /// Whether the workers count per LSP (see [`StatsBoard::with_lsp_counting`]).
    count_lsps: bool,
    offload: CachePadded<[AtomicU64; WORDS]>,
    has_offload: std::sync::atomic::AtomicBool,
}

impl StatsBoard {
    /// A board for `workers` workers that count per LSP (allocates: setup only).
    pub fn new(workers: usize) -> StatsBoard {
        Self::with_lsp_counting(workers, true)
    }

    /// A board for `workers` workers, counting per LSP or not. Without counting the
    /// workers skip the per-packet update of a label-indexed row, which costs a cache
    /// miss per packet over a big table (replay at 100k labels: about 0.55x the rate
    /// with it, docs/datapath.md), and no rows are mapped (24 MiB of address space per
    /// worker and phase otherwise: `bench --workers 256` under a 6 GiB address-space
    /// limit failed to allocate them).
    pub fn with_lsp_counting(workers: usize, count: bool) -> StatsBoard {
        StatsBoard {
            rows: (0..workers).map(|_| CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0)))).collect(),
            lsps: std::sync::Arc::new(LspCounters::new(if count { workers } else { 0 })),
            count_lsps: count,
            offload: CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0))),
            has_offload: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Publishes the XDP offload's counters (whoever reads them from the kernel).
    pub fn publish_offload(&self, s: &WorkerStats) {
        let mut words = [0u64; WORDS];
        s.to_words(&mut words);
        for (a, v) in self.offload.iter().zip(words) {
            a.store(v, Ordering::Relaxed);
        }
        self.has_offload.store(true, Ordering::Relaxed);
    }

    /// The XDP offload's last published counters, if an offload publishes any.
    pub fn offload(&self) -> Option<WorkerStats> {
        if !self.has_offload.load(Ordering::Relaxed) {
            return None;
        }
        let mut words = [0u64; WORDS];
        for (v, a) in words.iter_mut().zip(self.offload.iter()) {
            *v = a.load(Ordering::Relaxed);
        }
        Some(WorkerStats::from_words(&words))
    }

    /// The per-LSP counters of the workers that publish here.
    /// Whether the workers count per LSP.
    pub fn counts_lsps(&self) -> bool {
        self.count_lsps
    }

    pub fn lsps(&self) -> &std::sync::Arc<LspCounters> {
        &self.lsps
    }

    /// Packets and bytes per label over everything that publishes here, by label: what
    /// reports, `display mpls statistics lsp`, `display popgo statistics` and the
    /// metrics read: the workers' counters ([`LspCounters::read`]). Counts kept outside
    /// the workers (an XDP offload's per-label counts, packets the kernel forwarded)
    /// join them here or in that read, so that every reader sees them.
    pub fn lsp_counts(&self) -> Vec<super::lsp::LspCount> {
        self.lsps.read()
    }

    pub fn workers(&self) -> usize {
        self.rows.len()
    }

    /// Worker `w` publishes its counters (relaxed stores; no lock, no allocation).
    pub fn publish(&self, w: usize, s: &WorkerStats) {
        let mut words = [0u64; WORDS];
        s.to_words(&mut words);
        if let Some(row) = self.rows.get(w) {
            for (a, v) in row.iter().zip(words) {
                a.store(v, Ordering::Relaxed);
            }
        }
    }

    /// The last published counters of worker `w`.
    pub fn read(&self, w: usize) -> WorkerStats {
        let mut words = [0u64; WORDS];
        if let Some(row) = self.rows.get(w) {
            for (v, a) in words.iter_mut().zip(row.iter()) {
                *v = a.load(Ordering::Relaxed);
            }
        }
        WorkerStats::from_words(&words)
    }

    /// Sum over all workers and the offload.
    pub fn total(&self) -> WorkerStats {
        let mut t = WorkerStats::default();
        for w in 0..self.rows.len() {
            t.merge(&self.read(w));
        }
        if let Some(o) = self.offload() {
            t.merge(&o);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_board_sums() {
        let mut s = WorkerStats { rx_pkts: 10, rx_bytes: 640, bursts: 1, ilm_swaps_seen: 4, ..Default::default() };
        s.record_burst_ns(3_000);
        s.count_tx(MAX_PORTS - 1, 60);
        s.count_drop(DropReason::TxRingFull);
        s.port_rx_pkts[2] = 10;
        let mut w = [0u64; WORDS];
        s.to_words(&mut w);
        assert_eq!(WorkerStats::from_words(&w), s);
        let b = StatsBoard::new(2);
        b.publish(0, &s);
        b.publish(1, &s);
        b.publish(7, &s); // out of range: ignored
        let t = b.total();
        assert_eq!(t.rx_pkts, 20);
        assert_eq!(t.port_tx_pkts[MAX_PORTS - 1], 2);
        assert_eq!(t.drop_count(DropReason::TxRingFull), 2);
        assert_eq!(b.read(1), s);
        assert_eq!(b.offload(), None);
        let mut k = WorkerStats { rx_pkts: 5, rx_bytes: 300, ..Default::default() };
        k.port_rx_pkts[2] = 5;
        k.count_tx(0, 60);
        k.count_drop(DropReason::TtlExpired);
        b.publish_offload(&k);
        assert_eq!(b.offload(), Some(k));
        let t = b.total();
        assert_eq!((t.rx_pkts, t.port_tx_pkts[0], t.drop_count(DropReason::TtlExpired)), (25, 1, 1));
    }

    #[test]
    fn per_lsp_rows_only_when_counting() {
        let on = StatsBoard::with_lsp_counting(3, true);
        assert!(on.counts_lsps());
        assert_eq!(on.lsps().workers(), 3);
        // 256 workers without counting map no rows (with them: 12 GiB of address space).
        let off = StatsBoard::with_lsp_counting(256, false);
        assert!(!off.counts_lsps());
        assert_eq!(off.lsps().workers(), 0);
        assert!(off.lsp_counts().is_empty());
    }
}

//! The control plane's statistics: one [`ControlStats`], updated by the control thread
//! at each commit and shared with the metrics endpoint; `display popgo statistics` and
//! a scrape render the same figures.

use super::commit::{BuildKind, CommitReport};
use super::ControlPlane;
use std::sync::{Arc, Mutex, MutexGuard};

/// Commit counts and costs, the published generation and the retired snapshots.
#[derive(Clone, Debug)]
pub struct ControlStats {
    /// Generation of the published snapshot.
    pub generation: u64,
    pub commits: u64,
    pub incremental: u64,
    pub full: u64,
    pub failed: u64,
    pub last: Option<CommitReport>,
    /// The last full-table build and publication (at start, on reload, or a commit that
    /// could not be patched).
    pub last_full: Option<CommitReport>,
    /// Largest total commit time seen.
    pub max_total_ns: u64,
    /// Replaced snapshots still waiting for their grace period.
    pub retired: usize,
    /// Total times of incremental commits, in microseconds (1 us .. 1000 s, 3
    /// significant digits).
    pub incremental_us: hdrhistogram::Histogram<u64>,
}

impl ControlStats {
    pub(super) fn new(generation: u64) -> ControlStats {
        ControlStats {
            generation,
            commits: 0,
            incremental: 0,
            full: 0,
            failed: 0,
            last: None,
            last_full: None,
            max_total_ns: 0,
            retired: 0,
            incremental_us: hdrhistogram::Histogram::new_with_bounds(1, 1_000_000_000, 3)
                .expect("valid histogram bounds"),
        }
    }

    /// Accounts for a published commit.
    pub(super) fn record(&mut self, r: &CommitReport) {
        self.generation = r.generation;
        self.retired = r.pending_retired;
        self.commits += 1;
        match r.kind {
            BuildKind::Incremental => {
                self.incremental += 1;
                let _ = self.incremental_us.record((r.total_ns / 1000).max(1));
            }
            BuildKind::Full => {
                self.full += 1;
                self.last_full = Some(*r);
            }
        }
        self.max_total_ns = self.max_total_ns.max(r.total_ns);
        self.last = Some(*r);
    }
}

/// The [`ControlStats`] the control thread and the metrics endpoint share: the control
/// thread writes them at each commit and tick; a scrape reads them. Never touched by a
/// worker.
#[derive(Debug)]
pub struct ControlMetrics(Mutex<ControlStats>);

impl ControlMetrics {
    pub(super) fn new(generation: u64) -> ControlMetrics {
        ControlMetrics(Mutex::new(ControlStats::new(generation)))
    }

    /// The figures, locked while the guard lives.
    pub fn read(&self) -> MutexGuard<'_, ControlStats> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ControlPlane {
    /// The statistics the metrics endpoint reads (kept current by each commit and
    /// [`Self::tick`]).
    pub fn metrics(&self) -> Arc<ControlMetrics> {
        Arc::clone(&self.stats)
    }

    /// A copy of the statistics.
    pub fn stats(&self) -> ControlStats {
        self.stats.read().clone()
    }

    /// Counts a commit that failed.
    pub(super) fn count_failed(&self) {
        self.stats.read().failed += 1;
    }

    /// Brings the figures that change between commits up to date (retired snapshots).
    pub(super) fn sync_stats(&self) {
        self.stats.read().retired = self.publisher.pending_retired();
    }
}

//! The control plane's commit statistics and the figures the metrics endpoint reads.

use super::commit::{BuildKind, CommitReport};
use super::ControlPlane;
use std::sync::Arc;

/// Commit counters for `display popgo statistics`.
#[derive(Clone, Debug, Default)]
pub struct CommitStats {
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
}

/// The control plane's figures as the metrics endpoint shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ControlFigures {
    pub generation: u64,
    pub incremental: u64,
    pub full: u64,
    pub failed: u64,
    pub last_build_ns: u64,
    pub last_publish_ns: u64,
    pub last_grace_ns: u64,
    pub last_reclaim_ns: u64,
    pub last_total_ns: u64,
    pub max_total_ns: u64,
    /// Replaced snapshots still waiting for their grace period.
    pub retired: usize,
}

/// [`ControlFigures`] shared with the metrics endpoint: the control thread stores them
/// between commands; a scrape reads them. Never touched by a worker.
#[derive(Debug, Default)]
pub struct ControlMetrics(std::sync::Mutex<ControlFigures>);

impl ControlMetrics {
    pub fn read(&self) -> ControlFigures {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn store(&self, f: ControlFigures) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = f;
    }
}

pub(super) fn new_commit_histogram() -> hdrhistogram::Histogram<u64> {
    // 1 us .. 1000 s, 3 significant digits.
    hdrhistogram::Histogram::new_with_bounds(1, 1_000_000_000, 3).expect("valid histogram bounds")
}

impl ControlPlane {
    /// The figures the metrics endpoint reads (updated by [`Self::tick`]).
    pub fn metrics(&self) -> Arc<ControlMetrics> {
        self.sync_metrics();
        Arc::clone(&self.metrics)
    }

    pub(super) fn sync_metrics(&self) {
        let st = &self.stats;
        let last = st.last.unwrap_or(CommitReport {
            generation: self.generation,
            kind: BuildKind::Full,
            changes: 0,
            routes: 0,
            build_ns: 0,
            mirror_ns: 0,
            publish_ns: 0,
            grace_ns: 0,
            reclaim_ns: 0,
            total_ns: 0,
            grace_complete: true,
            pending_retired: 0,
        });
        self.metrics.store(ControlFigures {
            generation: self.generation,
            incremental: st.incremental,
            full: st.full,
            failed: st.failed,
            last_build_ns: last.build_ns,
            last_publish_ns: last.publish_ns,
            last_grace_ns: last.grace_ns,
            last_reclaim_ns: last.reclaim_ns,
            last_total_ns: last.total_ns,
            max_total_ns: st.max_total_ns,
            retired: self.publisher.pending_retired(),
        });
    }
}

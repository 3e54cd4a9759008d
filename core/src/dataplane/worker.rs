//! The worker loop: one pinned poll-mode core, written once over any I/O backend.
//!
//! Per iteration:
//!
//! ```text
//!   pace  ->  RX burst  ->  begin burst (QSBR quiescent point + one snapshot load)
//!         ->  process_burst  ->  TX burst  ->  backend housekeeping  ->  counters
//! ```
//!
//! The loop is generic over the backend (`io::RxQueue + io::TxQueue`) and over where
//! the tables come from ([`SnapshotSource`]): fixed tables for a plain replay, or a
//! QSBR [`Reader`] while a control thread publishes new ones. Both are monomorphised,
//! so the per-packet path has no dynamic dispatch.
//!
//! Per packet: no allocation, lock, syscall, log line or panic. Per burst: one TSC read
//! ([`BurstClock`]), one relaxed load of the stop flag, and the snapshot load. Counters
//! live in the worker's own `WorkerStats` and reach the shared [`StatsBoard`] every
//! [`STATS_PUBLISH_EVERY`] iterations or [`PUBLISH_MAX_AGE`], whichever comes first.
//! An idle worker (a live backend with nothing to receive) spins for a while, then
//! naps and goes offline for QSBR, so it never delays a table swap.

use crate::dataplane::{process_burst, BurstCtx};
use crate::ilm::Snapshot;
use crate::io::{Rx, TxQueue, Verdict, MAX_BURST};
use crate::qsbr::Reader;
use crate::stats::board::{StatsBoard, STATS_PUBLISH_EVERY};
use crate::stats::{Latency, WorkerStats};
use crate::sys::clock::BurstClock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Longest time a worker keeps its counters unpublished while it has a stats board
/// (slow or paced traffic), so `display popgo statistics` stays fresh.
pub const PUBLISH_MAX_AGE: Duration = Duration::from_millis(100);
/// Consecutive empty polls after which an idle worker starts napping. At ~100 ns per
/// empty poll this is ~1.6 ms of spinning.
pub const IDLE_SPINS: u32 = 1 << 14;
/// Nap length of an idle worker: bounds the extra latency of the first packet after an
/// idle period (a live backend keeps queueing meanwhile).
pub const IDLE_NAP: Duration = Duration::from_micros(50);

/// A paced worker that waits at least this long for its next packet parks (goes
/// offline for QSBR) meanwhile.
const PARK_AFTER: Duration = Duration::from_micros(200);
/// Longest single sleep of a paced wait: bounds how late the stop flag is seen.
const SLEEP_SLICE: Duration = Duration::from_millis(1);
/// The end of a paced wait is spun rather than slept (sleeps overshoot).
const SPIN_TAIL: Duration = Duration::from_micros(60);

/// Where a worker reads its tables from, once per burst.
pub trait SnapshotSource {
    /// Called once per iteration, after the RX burst. The snapshot stays valid until
    /// the next call (a [`Reader`] announces a quiescent state here, so the control
    /// thread may retire what the worker used before).
    fn begin_burst(&mut self) -> &Snapshot;
    /// The worker naps or stops: it must not delay the control thread meanwhile. The
    /// next `begin_burst` resumes.
    #[inline(always)]
    fn park(&mut self) {}
}

impl SnapshotSource for &Snapshot {
    #[inline(always)]
    fn begin_burst(&mut self) -> &Snapshot {
        self
    }
}

impl SnapshotSource for Reader<Snapshot> {
    #[inline(always)]
    fn begin_burst(&mut self) -> &Snapshot {
        self.quiescent();
        self.current()
    }

    fn park(&mut self) {
        self.offline();
    }
}

/// What one worker did.
pub struct WorkerResult {
    pub stats: WorkerStats,
    /// Burst latency: from the start of the RX burst to the end of the TX housekeeping.
    pub latency: Latency,
}

/// How a worker runs: its row on the stats board, its burst size, and when to stop.
#[derive(Clone, Copy)]
pub struct WorkerLoop<'a> {
    /// Worker index (its row on the board).
    pub id: usize,
    /// Packets asked of the backend per RX burst (`1..=MAX_BURST`).
    pub burst: usize,
    /// Checked once per iteration; the worker drains and returns once it is set.
    pub stop: &'a AtomicBool,
    /// Where the counters are published while the worker runs (and when it stops).
    pub board: Option<&'a StatsBoard>,
    /// The generation of the tables the worker was handed at start-up, when the caller
    /// knows it. A different generation at the worker's first burst counts as a swap:
    /// a commit that lands between start-up and the first burst (a slow or descheduled
    /// worker) is one the worker moved to, like any later one. `None`: the first
    /// snapshot the worker reads is its baseline.
    pub start_generation: Option<u64>,
}

impl WorkerLoop<'_> {
    /// Waits `wait` for a paced source's next packet, watching the stop flag; a long
    /// wait parks the worker (offline for QSBR, so a commit never waits for it).
    /// Returns false when the worker was stopped meanwhile.
    fn wait<S: SnapshotSource>(&self, wait: Duration, src: &mut S) -> bool {
        let until = Instant::now() + wait;
        if wait >= PARK_AFTER {
            src.park();
        }
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return false;
            }
            let now = Instant::now();
            let Some(left) = until.checked_duration_since(now).filter(|d| !d.is_zero()) else { return true };
            if left > SLEEP_SLICE + SPIN_TAIL {
                std::thread::sleep(SLEEP_SLICE);
            } else if left > SPIN_TAIL {
                std::thread::sleep(left - SPIN_TAIL);
            } else {
                std::hint::spin_loop();
            }
        }
    }

    /// Polls `q` until it reports the end of its input or `stop` is set, then drains
    /// it. Returns the worker's counters and latency histogram.
    pub fn run<Q: TxQueue, S: SnapshotSource>(&self, q: &mut Q, src: &mut S) -> WorkerResult {
        let mut r = WorkerResult { stats: WorkerStats::default(), latency: Latency::new() };
        let mut ctx = BurstCtx::new();
        if let Some(b) = self.board.filter(|b| b.counts_lsps()) {
            ctx.count_lsps(std::sync::Arc::clone(b.lsps()), self.id);
        }
        self.poll_loop(q, src, &mut ctx, &mut r);
        src.park();
        q.drain(&mut r.stats);
        q.export(&mut r.stats);
        if let Some(b) = self.board {
            b.publish(self.id, &r.stats);
        }
        r
    }

    #[inline(always)]
    fn poll_loop<Q: TxQueue, S: SnapshotSource>(
        &self,
        q: &mut Q,
        src: &mut S,
        ctx: &mut BurstCtx,
        r: &mut WorkerResult,
    ) {
        let stats = &mut r.stats;
        let burst = self.burst.clamp(1, MAX_BURST);
        let mut verdicts = [Verdict::default(); MAX_BURST];
        let mut generation = self.start_generation;
        let mut empty_run: u32 = 0;
        let mut iters: u64 = 0;
        let mut clock = BurstClock::new();
        let mut last = clock.anchor();
        // (A deadline rather than an age: one comparison per iteration.)
        let mut publish_by = last + PUBLISH_MAX_AGE;
        while !self.stop.load(Ordering::Relaxed) {
            if let Some(wait) = q.pace() {
                // A wait past the publishing deadline (a gap in a capture replayed at its
                // own pace, a low rate): publish first, or the board would show counts as
                // old as the wait, however long.
                if let Some(board) = self.board.filter(|_| last + wait >= publish_by) {
                    q.export(stats);
                    board.publish(self.id, stats);
                    publish_by = last + wait + PUBLISH_MAX_AGE;
                }
                if !wait.is_zero() && !self.wait(wait, src) {
                    break;
                }
                last = clock.anchor();
            }
            let t0 = last;
            let rx = q.rx_burst(burst, stats);
            let snap = src.begin_burst();
            if generation != Some(snap.generation) {
                if generation.is_some() {
                    stats.ilm_swaps_seen += 1;
                }
                generation = Some(snap.generation);
            }
            match rx {
                Rx::Burst(n) => {
                    let n = n.min(burst);
                    process_burst(snap, &mut q.burst()[..n], &mut verdicts[..n], ctx, stats);
                    q.tx_burst(&verdicts[..n], ctx.forwarded(), stats);
                    q.poll(false, t0, stats);
                    last = clock.now();
                    let ns = last.duration_since(t0).as_nanos() as u64;
                    r.latency.record(ns);
                    stats.record_burst_ns(ns);
                    empty_run = 0;
                }
                Rx::Empty => {
                    last = clock.now();
                    stats.empty_polls += 1;
                    q.poll(true, last, stats);
                    empty_run = empty_run.saturating_add(1);
                    if empty_run >= IDLE_SPINS && !q.busy() {
                        src.park();
                        std::thread::sleep(IDLE_NAP);
                        last = clock.anchor();
                    }
                }
                Rx::End => break,
            }
            iters += 1;
            if let Some(board) = self.board {
                // (STATS_PUBLISH_EVERY is a power of two.)
                if iters & (STATS_PUBLISH_EVERY - 1) == 0 || last >= publish_by {
                    q.export(stats);
                    board.publish(self.id, stats);
                    last = clock.anchor();
                    publish_by = last + PUBLISH_MAX_AGE;
                }
            }
        }
    }
}

/// Runs `cap` once through `snap` on the calling thread, in the worker loop, and
/// returns the counters and the trace in input order. For `diff` and tests.
pub fn trace(
    snap: &Snapshot,
    cap: &crate::io::pcap::Capture,
    burst: usize,
    with_bytes: bool,
) -> (WorkerStats, Vec<(u64, Verdict, Vec<u8>)>) {
    trace_on(snap, cap, burst, with_bytes, None)
}

/// [`trace`] as worker 0 of `board`, which then holds its counters and, when the board
/// counts per LSP, its per-LSP counts (`diff`'s per-label figures).
pub fn trace_on(
    snap: &Snapshot,
    cap: &crate::io::pcap::Capture,
    burst: usize,
    with_bytes: bool,
    board: Option<&StatsBoard>,
) -> (WorkerStats, Vec<(u64, Verdict, Vec<u8>)>) {
    let stop = std::sync::atomic::AtomicBool::new(false);
    let share = crate::io::capture::Share { w: 0, workers: 1, burst, loops: 1 };
    let mut q = crate::io::capture::CaptureQueue::new(
        cap,
        share,
        crate::io::capture::Trace { frames: Vec::with_capacity(cap.len()), with_bytes },
    );
    let lp = WorkerLoop { id: 0, burst, stop: &stop, board, start_generation: Some(snap.generation) };
    let r = lp.run(&mut q, &mut &*snap);
    let mut frames = q.sink.frames;
    frames.sort_by_key(|f| f.0);
    (r.stats, frames)
}

//! The capture backend: a memory-mapped capture replayed as RX bursts, with a
//! [`Sink`] as the wire the forwarded frames leave on.
//!
//! The capture is cut into bursts of `burst` records, and the bursts into blocks of up
//! to [`MAX_BLOCK_BURSTS`]. The workers of a replay claim blocks in order from a shared
//! [`BlockCursor`] (one atomic add per block), so a worker that another process slows
//! down takes fewer blocks and all of them finish together; without a cursor, worker
//! `w` of `workers` takes blocks `w, w + workers, ...` of every loop. Either way each
//! worker streams through runs of consecutive records, and its prefetches fetch its
//! own records rather than every other burst of the file.
//! Each burst is copied into a ring of 2 KiB [`MemFrame`]s (the "RX" of a NIC ring),
//! and every frame carries its input sequence number (`loop * records + index`), so
//! outputs can be merged back into input order whatever the worker count.
//!
//! Sinks: [`Count`] (counters only, the benchmark case), [`Keep`] (counters plus the
//! forwarded frames, for output files), or any other implementation (e.g. `diff`
//! records each packet's verdict).

use super::mem::{FrameRing, MemFrame};
use super::pcap::{Capture, Record, Span};
use super::{PacketMut, Rx, RxQueue, TxQueue, Verdict};
use crate::stats::{DropReason, TxTally, WorkerStats};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Frames in each worker's ring (or one burst, if larger), reused like an RX ring. Two
/// 32-packet bursts: a burst copies into the frames the burst before last used, whose
/// lines (one of metadata, one per 64 data bytes) are still in L1. A 512-frame ring
/// (1.1 MiB, a NIC ring's size) spills them to L2: 1-worker replay of 64-byte frames
/// ran about 10% slower with it.
pub const RING_FRAMES: usize = 64;
/// How far past the current burst the mapped capture and the record index are
/// prefetched.
const PREFETCH_AHEAD: usize = 8 << 10;
const CACHE_LINE: usize = 64;
/// Most bursts in a block (64 bursts of 32 64-byte records: 160 KiB of file).
pub const MAX_BLOCK_BURSTS: usize = 64;

/// Prefetches the lines of `base[..len]` from `from` (or from `*done`, where the last
/// call stopped, if that is further) up to `want`, and moves `*done` past them. Only
/// addresses are computed: a prefetch never dereferences (`sys::prefetch`).
#[inline(always)]
fn prefetch_lines(base: *const u8, len: usize, done: &mut usize, from: usize, want: usize) {
    let want = want.min(len);
    let mut at = (*done).max(from & !(CACHE_LINE - 1));
    while at < want {
        crate::sys::prefetch::prefetch(base.wrapping_add(at));
        at += CACHE_LINE;
    }
    *done = at;
}

/// How fast to replay.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// A fixed packet rate over the whole run (all workers together).
    Pps(f64),
    /// Follow the capture's own timestamps, scaled: 2.0 replays twice as fast.
    Speed(f64),
}

/// Where forwarded frames go: the "wire" of the capture backend. It takes every
/// forwarded frame (it never drops).
pub trait Sink {
    /// Takes a processed burst: one verdict per frame, and the forwarded packets and
    /// bytes per port. Counts what it transmits (all that was forwarded:
    /// `WorkerStats::count_tx_tally`); drops are already counted.
    fn sink(&mut self, frames: &[MemFrame], verdicts: &[Verdict], forwarded: &TxTally, stats: &mut WorkerStats);
}

/// Counts forwarded frames per port and lets them go.
#[derive(Default)]
pub struct Count;

impl Sink for Count {
    #[inline(always)]
    fn sink(&mut self, _frames: &[MemFrame], _verdicts: &[Verdict], forwarded: &TxTally, stats: &mut WorkerStats) {
        stats.count_tx_tally(forwarded);
    }
}

/// One forwarded frame kept by [`Keep`].
#[derive(Clone, Copy, Debug)]
pub struct OutRec {
    /// Input sequence number.
    pub seq: u64,
    pub port: u16,
    at: usize,
    len: u32,
}

/// Counts forwarded frames and keeps their bytes: metadata plus one byte arena
/// (amortised growth; no allocation per packet once warm).
#[derive(Default)]
pub struct Keep {
    recs: Vec<OutRec>,
    bytes: Vec<u8>,
}

impl Keep {
    /// The kept frames in the order they were forwarded: (record, bytes).
    pub fn frames(&self) -> impl Iterator<Item = (&OutRec, &[u8])> {
        self.recs.iter().map(|r| (r, &self.bytes[r.at..r.at + r.len as usize]))
    }
}

impl Sink for Keep {
    #[inline(always)]
    fn sink(&mut self, frames: &[MemFrame], verdicts: &[Verdict], forwarded: &TxTally, stats: &mut WorkerStats) {
        stats.count_tx_tally(forwarded);
        for (f, v) in frames.iter().zip(verdicts) {
            if let Verdict::Forward(port) = *v {
                let d = f.data();
                self.recs.push(OutRec { seq: f.seq, port, at: self.bytes.len(), len: d.len() as u32 });
                self.bytes.extend_from_slice(d);
            }
        }
    }
}

/// Records every processed frame's verdict by input sequence number, and the bytes of
/// forwarded frames when asked: what `diff` compares and what the pipeline tests
/// check. Frames dropped before processing (oversize) never reach a sink.
#[derive(Default)]
pub struct Trace {
    /// (sequence, verdict, bytes out: empty unless forwarded and `with_bytes`).
    pub frames: Vec<(u64, Verdict, Vec<u8>)>,
    pub with_bytes: bool,
}

impl Sink for Trace {
    fn sink(&mut self, frames: &[MemFrame], verdicts: &[Verdict], forwarded: &TxTally, stats: &mut WorkerStats) {
        stats.count_tx_tally(forwarded);
        for (f, v) in frames.iter().zip(verdicts) {
            let mut out = Vec::new();
            if let Verdict::Forward(_) = *v {
                if self.with_bytes {
                    out = f.data().to_vec();
                }
            }
            self.frames.push((f.seq, *v, out));
        }
    }
}

/// When each packet is due, relative to the start of the run (pacing).
#[derive(Clone, Copy, Debug)]
struct Schedule {
    pace: Pace,
    /// Timestamp of the first record and the capture's span (first to last + one mean gap).
    first_ts_ns: u64,
    span_ns: f64,
}

impl Schedule {
    fn new(recs: &[Record], pace: Pace) -> Schedule {
        let first = recs.first().map_or(0, |r| r.ts_ns);
        let last = recs.last().map_or(0, |r| r.ts_ns);
        let n = recs.len().max(1) as f64;
        // One mean inter-packet gap after the last record, so loops do not bunch up.
        let span = (last.saturating_sub(first)) as f64 * n / (n - 1.0).max(1.0);
        Schedule { pace, first_ts_ns: first, span_ns: span }
    }

    /// Nanoseconds after the start at which packet `seq` (a record of loop `lp` with
    /// timestamp `rec_ts_ns`) is due.
    #[inline]
    fn due_ns(&self, seq: u64, lp: u64, rec_ts_ns: u64) -> u64 {
        match self.pace {
            Pace::Pps(pps) => (seq as f64 * 1e9 / pps) as u64,
            Pace::Speed(x) => {
                let t = (rec_ts_ns.saturating_sub(self.first_ts_ns)) as f64 + lp as f64 * self.span_ns;
                (t / x) as u64
            }
        }
    }
}

/// Which part of the capture a worker replays, and how often.
#[derive(Clone, Copy, Debug)]
pub struct Share {
    /// This worker's index and the number of workers: it takes blocks of bursts
    /// `w, w + workers, ...`.
    pub w: usize,
    pub workers: usize,
    /// Records per burst (`1..=MAX_BURST`).
    pub burst: usize,
    /// Passes over the capture; 0 = until the worker is stopped.
    pub loops: u64,
}

/// The next block of a replay to take, shared by its workers: blocks are numbered
/// across loops (block `g` is block `g % blocks` of loop `g / blocks`).
#[derive(Debug, Default)]
pub struct BlockCursor(AtomicU64);

/// One worker's queue over a capture: its RX ring and its sink.
pub struct CaptureQueue<'a, K> {
    recs: &'a [Record],
    /// The same records packed for the copy loop (what an unpaced replay streams).
    spans: &'a [Span],
    data: &'a [u8],
    share: Share,
    /// Bursts in one pass over the capture.
    bursts: usize,
    /// Consecutive bursts a worker takes at a time.
    block: usize,
    /// Where the next block comes from (None: every `workers`-th block from `w`).
    cursor: Option<&'a BlockCursor>,
    /// The next block number this worker takes when it has no cursor.
    next_block: u64,
    /// Next burst index, the end of its block, and its loop.
    b: usize,
    block_end: usize,
    lp: u64,
    /// Records of burst `b` already taken (paced replays take the due ones only).
    off: usize,
    ring: FrameRing,
    /// Frames of the current burst: `ring[pos..pos + n]`.
    pos: usize,
    n: usize,
    /// Counted as the receiving port's rx.
    in_port: Option<usize>,
    /// Bytes of the capture and of the span index prefetched so far this loop.
    data_prefetched: usize,
    recs_prefetched: usize,
    schedule: Option<Schedule>,
    /// When pacing started: the first `pace` call.
    start: Option<Instant>,
    /// The sink the forwarded frames go to.
    pub sink: K,
}

impl<'a, K: Sink> CaptureQueue<'a, K> {
    /// A queue over `cap` for worker `share.w` (allocates its ring: setup only).
    pub fn new(cap: &'a Capture, share: Share, sink: K) -> Self {
        let burst = share.burst.clamp(1, super::MAX_BURST);
        let share = Share { burst, workers: share.workers.max(1), ..share };
        let bursts = cap.len().div_ceil(burst);
        // (Small captures get blocks of one burst, so that every worker has some.)
        let block = (bursts / (share.workers * 4)).clamp(1, MAX_BLOCK_BURSTS);
        CaptureQueue {
            recs: cap.records(),
            spans: cap.spans(),
            data: cap.data(),
            share,
            bursts,
            block,
            cursor: None,
            next_block: share.w as u64,
            // (No block yet: the first call claims one.)
            b: 0,
            block_end: 0,
            lp: 0,
            off: 0,
            ring: FrameRing::new(RING_FRAMES.max(burst)),
            pos: 0,
            n: 0,
            in_port: None,
            data_prefetched: 0,
            recs_prefetched: 0,
            schedule: None,
            start: None,
            sink,
        }
    }

    /// Counts every record as received on port `p`.
    pub fn in_port(mut self, p: Option<usize>) -> Self {
        self.in_port = p;
        self
    }

    /// Takes blocks from `cursor`, shared with the replay's other workers.
    pub fn claiming(mut self, cursor: &'a BlockCursor) -> Self {
        self.cursor = Some(cursor);
        self
    }

    /// Replays at `pace` (all workers together), measured from the first burst.
    pub fn paced(mut self, pace: Option<Pace>) -> Self {
        self.schedule = pace.map(|p| Schedule::new(self.recs, p));
        self
    }

    /// Moves to the next burst this worker owns, claiming a block when the last one is
    /// done; false when the replay is over.
    #[inline(always)]
    fn next_burst(&mut self) -> bool {
        self.b < self.block_end || self.claim()
    }

    /// Takes the next block (from the cursor, or this worker's next one); false when
    /// every loop is done.
    #[cold]
    fn claim(&mut self) -> bool {
        let g = match self.cursor {
            Some(c) => c.0.fetch_add(1, Ordering::Relaxed),
            None => {
                let g = self.next_block;
                self.next_block += self.share.workers as u64;
                g
            }
        };
        let blocks = self.bursts.div_ceil(self.block) as u64;
        if blocks == 0 {
            return false;
        }
        let (lp, k) = (g / blocks, (g % blocks) as usize);
        if self.share.loops != 0 && lp >= self.share.loops {
            // (Stay over: later calls claim again and end the same way.)
            self.block_end = 0;
            return false;
        }
        if lp != self.lp {
            // A new pass over the file: prefetching starts again from its front.
            (self.data_prefetched, self.recs_prefetched) = (0, 0);
        }
        self.lp = lp;
        self.b = k * self.block;
        self.block_end = (self.b + self.block).min(self.bursts);
        true
    }

    #[inline(always)]
    fn chunk(&self) -> &'a [Record] {
        let burst = self.share.burst;
        &self.recs[self.b * burst..((self.b + 1) * burst).min(self.recs.len())]
    }

    #[inline(always)]
    fn base_seq(&self) -> u64 {
        self.lp * self.recs.len() as u64 + (self.b * self.share.burst) as u64
    }
}

impl<K: Sink> RxQueue for CaptureQueue<'_, K> {
    type Pkt = MemFrame;

    fn pace(&mut self) -> Option<std::time::Duration> {
        let s = self.schedule?;
        if !self.next_burst() {
            return None;
        }
        let rec = self.chunk()[self.off];
        let due = s.due_ns(self.base_seq() + self.off as u64, self.lp, rec.ts_ns);
        let start = *self.start.get_or_insert_with(Instant::now);
        Some(std::time::Duration::from_nanos(due.saturating_sub(start.elapsed().as_nanos() as u64)))
    }

    /// Copies the next burst of records into frames. Oversize records are counted as
    /// received and dropped here (they never reach a buffer).
    #[inline(always)]
    fn rx_burst(&mut self, _max: usize, stats: &mut WorkerStats) -> Rx {
        if !self.next_burst() {
            return Rx::End;
        }
        // This burst's records: `first..first + count` of the capture.
        let (first, count) = match self.schedule {
            None => {
                let first = self.b * self.share.burst;
                self.b += 1;
                (first, self.share.burst.min(self.recs.len() - first))
            }
            Some(s) => {
                // Paced: only the records of this burst that are due by now (tcpreplay
                // paces every packet); the rest wait for the next call.
                let whole = self.chunk();
                let rest = &whole[self.off..];
                let base = self.base_seq() + self.off as u64;
                let now = self.start.get_or_insert_with(Instant::now).elapsed().as_nanos() as u64;
                let due = rest
                    .iter()
                    .enumerate()
                    .take_while(|(i, r)| s.due_ns(base + *i as u64, self.lp, r.ts_ns) <= now)
                    .count();
                if due == 0 {
                    return Rx::Empty;
                }
                let first = self.b * self.share.burst + self.off;
                self.off += due;
                if self.off == whole.len() {
                    self.off = 0;
                    self.b += 1;
                }
                (first, due)
            }
        };
        let base_seq = self.lp * self.recs.len() as u64 + first as u64;
        let chunk = &self.spans[first..first + count];
        if self.pos + self.n + count > self.ring.len() {
            self.pos = 0;
        } else {
            self.pos += self.n;
        }
        // Hardware prefetchers stop at 4 KiB page boundaries: ask for every line of the
        // source, and of the span index, up to PREFETCH_AHEAD bytes past this burst.
        let data = self.data;
        if let (Some(head), Some(last)) = (chunk.first(), chunk.last()) {
            let want = last.offset() + PREFETCH_AHEAD;
            prefetch_lines(data.as_ptr(), data.len(), &mut self.data_prefetched, head.offset(), want);
            let (spans, n) = (self.spans.as_ptr().cast::<u8>(), std::mem::size_of_val(self.spans));
            let i = first * std::mem::size_of::<Span>();
            let want = i + std::mem::size_of_val(chunk) + PREFETCH_AHEAD;
            prefetch_lines(spans, n, &mut self.recs_prefetched, i, want);
        }
        if let Some(p) = self.in_port {
            stats.port_rx_pkts[p] += count as u64;
        }
        let frames = &mut self.ring.frames_mut()[self.pos..self.pos + count];
        // Record i into frame i, until a record does not fit a frame.
        let mut k = chunk
            .iter()
            .zip(frames.iter_mut())
            .enumerate()
            .position(|(i, (sp, f))| !f.load_from(base_seq + i as u64, data, sp.offset(), sp.len()))
            .unwrap_or(count);
        if k < count {
            // (Rare.) From there on, one by one, leaving out the records that do not fit.
            for (i, sp) in chunk.iter().enumerate().skip(k) {
                if frames[k].load_from(base_seq + i as u64, data, sp.offset(), sp.len()) {
                    k += 1;
                } else {
                    stats.rx_pkts += 1;
                    // (The span's length may be saturated; the record has the real one.)
                    stats.rx_bytes += self.recs[first + i].caplen as u64;
                    stats.count_drop(DropReason::Oversize);
                }
            }
        }
        self.n = k;
        if k == 0 {
            // Only oversize records in this burst: nothing to process.
            return Rx::Empty;
        }
        Rx::Burst(k)
    }

    #[inline(always)]
    fn burst(&mut self) -> &mut [MemFrame] {
        &mut self.ring.frames_mut()[self.pos..self.pos + self.n]
    }
}

impl<K: Sink> TxQueue for CaptureQueue<'_, K> {
    #[inline(always)]
    fn tx_burst(&mut self, verdicts: &[Verdict], forwarded: &TxTally, stats: &mut WorkerStats) {
        let frames = &self.ring.frames_mut()[self.pos..self.pos + self.n];
        self.sink.sink(frames, verdicts, forwarded, stats);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::mem::MemFrame;

    fn capture(n: usize) -> Capture {
        let pkts: Vec<(u64, Vec<u8>)> = (0..n).map(|i| (i as u64 * 1000, vec![i as u8; 60])).collect();
        let mut w = crate::io::pcap::Writer::new(Vec::new()).unwrap();
        for (ts, p) in &pkts {
            w.write_packet(*ts, p).unwrap();
        }
        Capture::from_bytes(w.into_inner().unwrap()).unwrap()
    }

    /// Every record of every loop is received exactly once across the workers, with
    /// its sequence number, and the queues end.
    #[test]
    fn workers_share_every_record_of_every_loop() {
        let cap = capture(10);
        let mut seen = Vec::new();
        for w in 0..3 {
            let share = Share { w, workers: 3, burst: 2, loops: 2 };
            let mut q = CaptureQueue::new(&cap, share, Count);
            let mut stats = WorkerStats::default();
            loop {
                match q.rx_burst(2, &mut stats) {
                    Rx::Burst(n) => {
                        assert!(n <= 2);
                        seen.extend(q.burst().iter().map(|f: &MemFrame| (f.seq, f.data()[0])));
                    }
                    Rx::Empty => panic!("a capture queue is never empty"),
                    Rx::End => break,
                }
            }
        }
        seen.sort();
        let want: Vec<(u64, u8)> = (0..20).map(|s| (s, (s % 10) as u8)).collect();
        assert_eq!(seen, want);
    }

    /// Records larger than a frame are counted as received and dropped wherever they
    /// sit in a burst, with their whole length (also past what a span holds); the
    /// others keep their order and sequence numbers.
    #[test]
    fn oversize_records_are_left_out_of_their_burst() {
        let big = crate::io::mem::FRAME_DATA_BYTES + 1;
        let huge = crate::io::pcap::Span::LEN_MAX + 4465;
        let lens = [60, big, 70, 2000, huge, big, 64, 65, big];
        // A classic pcap by hand: the writer keeps to snaplen 65535, readers accept up to
        // MAX_CAPLEN whatever the header says.
        let mut file = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0];
        for (i, n) in lens.iter().enumerate() {
            file.extend_from_slice(&[0; 8]);
            file.extend_from_slice(&(*n as u32).to_le_bytes());
            file.extend_from_slice(&(*n as u32).to_le_bytes());
            file.extend(std::iter::repeat_n(i as u8, *n));
        }
        let cap = Capture::from_bytes(file).unwrap();
        for burst in [1, 2, 4, 9] {
            let mut q = CaptureQueue::new(&cap, Share { w: 0, workers: 1, burst, loops: 1 }, Count);
            let mut stats = WorkerStats::default();
            let mut seen = Vec::new();
            loop {
                match q.rx_burst(burst, &mut stats) {
                    Rx::Burst(_) => seen.extend(q.burst().iter().map(|f: &MemFrame| (f.seq, f.len(), f.data()[0]))),
                    Rx::Empty => {}
                    Rx::End => break,
                }
            }
            let want: Vec<(u64, usize, u8)> =
                (0..lens.len()).filter(|&i| lens[i] < big).map(|i| (i as u64, lens[i], i as u8)).collect();
            assert_eq!(seen, want, "burst {burst}");
            assert_eq!(stats.drop_count(DropReason::Oversize), 4, "burst {burst}");
            assert_eq!((stats.rx_pkts, stats.rx_bytes), (4, (3 * big + huge) as u64), "burst {burst}");
        }
    }

    /// A capture long enough for blocks of several bursts: each worker gets runs of
    /// consecutive records, and all of them together every record once per loop.
    #[test]
    fn workers_take_blocks_of_consecutive_bursts() {
        let cap = capture(1000);
        let mut seen = Vec::new();
        for w in 0..2 {
            let mut q = CaptureQueue::new(&cap, Share { w, workers: 2, burst: 4, loops: 2 }, Count);
            assert_eq!(q.block, 31);
            let mut mine = Vec::new();
            let mut stats = WorkerStats::default();
            while let Rx::Burst(_) = q.rx_burst(4, &mut stats) {
                mine.extend(q.burst().iter().map(|f: &MemFrame| f.seq));
            }
            // Runs of 31 bursts (124 records), then the other worker's block is skipped.
            let first_gap = mine.windows(2).position(|p| p[1] != p[0] + 1).unwrap();
            assert_eq!((mine[0], first_gap + 1), (w as u64 * 124, 124), "worker {w}");
            seen.extend(mine);
        }
        seen.sort();
        assert_eq!(seen, (0..2000).collect::<Vec<u64>>());
    }

    /// More workers than bursts: in a one-pass replay the extra workers end at once;
    /// in an endless one they take the blocks of later passes.
    #[test]
    fn more_workers_than_bursts_end_at_once_or_take_later_passes() {
        let cap = capture(2);
        let mut q = CaptureQueue::new(&cap, Share { w: 3, workers: 4, burst: 1, loops: 1 }, Count);
        assert_eq!(q.rx_burst(1, &mut WorkerStats::default()), Rx::End);
        let mut q = CaptureQueue::new(&cap, Share { w: 3, workers: 4, burst: 1, loops: 0 }, Count);
        assert_eq!(q.rx_burst(1, &mut WorkerStats::default()), Rx::Burst(1));
        // Block 3 is record 1 of the second pass.
        assert_eq!(q.burst()[0].seq, 3);
    }

    /// Workers claiming from one cursor: each block once per loop whoever takes it, and
    /// a worker that stops taking (a slow one) leaves the rest to the other.
    #[test]
    fn a_shared_cursor_hands_out_every_block_once() {
        let cap = capture(1000);
        let cursor = BlockCursor::default();
        let share = |w| Share { w, workers: 2, burst: 4, loops: 3 };
        let mut qs = [0, 1].map(|w| CaptureQueue::new(&cap, share(w), Count).claiming(&cursor));
        let mut seen: [Vec<u64>; 2] = Default::default();
        let mut stats = WorkerStats::default();
        // Worker 1 takes one burst for every ten of worker 0's, until both end.
        let mut ended = [false; 2];
        let mut turn = 0u64;
        while !ended.iter().all(|e| *e) {
            let w = usize::from(turn % 11 == 10);
            turn += 1;
            if ended[w] {
                continue;
            }
            match qs[w].rx_burst(4, &mut stats) {
                Rx::Burst(_) => seen[w].extend(qs[w].burst().iter().map(|f: &MemFrame| f.seq)),
                Rx::Empty => panic!("a capture queue is never empty"),
                Rx::End => ended[w] = true,
            }
        }
        assert!(seen[0].len() > 5 * seen[1].len(), "{} vs {}", seen[0].len(), seen[1].len());
        assert!(!seen[1].is_empty());
        let mut all: Vec<u64> = seen.concat();
        all.sort();
        assert_eq!(all, (0..3000).collect::<Vec<u64>>());
    }
}

//! pcap replay: the embedded default data path, with no NIC and no root.
//!
//! The capture is memory-mapped and indexed before timing starts. The input is cut
//! into bursts; burst `b` goes to worker `b % workers` (like RSS spreading flows over
//! queues). Each worker, pinned to its core, copies its records into a ring of 2 KiB
//! frames (the "RX"), runs `process_burst`, and hands forwarded frames to its sink
//! (the "TX"): counters always, plus an output arena when `--out-dir` is given. Outputs
//! are merged by input sequence number, so the files are byte-identical whatever the
//! worker count.

use crate::cmd::{build, load_capture, load_config, runtime, usage, Failure, PaceArgs, WorkerArgs};
use crate::config::Config;
use crate::dataplane::{process_burst, BurstCtx, Verdict, MAX_BURST};
use crate::ilm::Snapshot;
use crate::io::mem::{FrameRing, MemFrame};
use crate::io::pcap::{Capture, Record, Writer};
use crate::io::PacketMut;
use crate::qsbr::Reader;
use crate::stats::board::{StatsBoard, STATS_PUBLISH_EVERY};
use crate::stats::report;
use crate::stats::{DropReason, Latency, WorkerStats};
use anyhow::Context;
use clap::Args;
use serde_json::json;
use std::path::Path;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Instant;

/// How far ahead of the current burst the mapped capture is prefetched.
const SRC_PREFETCH_BYTES: usize = 8 << 10;

/// Longest time a worker keeps its counters unpublished while it has a stats board.
const PUBLISH_MAX_AGE: std::time::Duration = std::time::Duration::from_millis(100);

/// Frames in each worker's ring: reused like a real RX ring (about 1.1 MiB).
pub const RING_FRAMES: usize = 512;

/// Replay parameters.
#[derive(Clone, Debug)]
pub struct ReplayOpts {
    pub loops: u64,
    pub workers: usize,
    /// Core per worker (`cores[w % len]`); empty = do not pin.
    pub cores: Vec<usize>,
    pub burst: usize,
    /// Keep forwarded frames for output files.
    pub capture_output: bool,
    /// Pacing; `None` = top speed.
    pub pace: Option<Pace>,
    /// Set to stop early (checked once per burst); with `loops == 0` the replay runs
    /// until it is set.
    pub stop: Option<Arc<AtomicBool>>,
}

/// How fast to replay.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// A fixed packet rate over the whole run (all workers together).
    Pps(f64),
    /// Follow the capture's own timestamps, scaled: 2.0 replays twice as fast.
    Speed(f64),
}

impl Default for ReplayOpts {
    fn default() -> Self {
        ReplayOpts {
            loops: 1,
            workers: 1,
            cores: Vec::new(),
            burst: crate::dataplane::BURST,
            capture_output: false,
            pace: None,
            stop: None,
        }
    }
}

/// One forwarded frame kept for output.
#[derive(Clone, Copy, Debug)]
struct OutRec {
    seq: u64,
    port: u16,
    at: usize,
    len: u32,
}

/// Forwarded frames of one worker: metadata plus one byte arena (amortised growth; no
/// allocation per packet once warm).
#[derive(Default)]
struct Outputs {
    recs: Vec<OutRec>,
    bytes: Vec<u8>,
}

/// What one worker did.
pub struct WorkerResult {
    pub stats: WorkerStats,
    pub latency: Latency,
    pub core: Option<usize>,
    pub pinned: bool,
    outputs: Outputs,
}

/// The merged result of a replay.
pub struct ReplayResult {
    pub stats: WorkerStats,
    pub latency: Latency,
    pub elapsed_ns: u64,
    pub workers: Vec<WorkerResult>,
    /// Forwarded frames in input order: (sequence, port, bytes). Empty unless
    /// `capture_output` was set.
    pub outputs: Vec<(u64, u16, Vec<u8>)>,
}

impl ReplayResult {
    /// Million packets per second received (= processed).
    pub fn mpps(&self) -> f64 {
        if self.elapsed_ns == 0 {
            return 0.0;
        }
        self.stats.rx_pkts as f64 * 1e3 / self.elapsed_ns as f64
    }

    /// Writes `dir/<port>.pcap` for every port that transmitted, with input timestamps.
    pub fn write_outputs(&self, dir: &Path, port_names: &[String], cap: &Capture) -> Result<Vec<String>, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let recs = cap.records();
        let mut written = Vec::new();
        for (p, name) in port_names.iter().enumerate() {
            if self.stats.port_tx_pkts.get(p).copied().unwrap_or(0) == 0 {
                continue;
            }
            let path = dir.join(format!("{name}.pcap"));
            let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let mut w = Writer::new(std::io::BufWriter::new(file)).map_err(|e| format!("{}: {e}", path.display()))?;
            for (seq, _, bytes) in self.outputs.iter().filter(|o| o.1 as usize == p) {
                let ts = recs[(*seq % recs.len() as u64) as usize].ts_ns;
                w.write_packet(ts, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
            }
            w.into_inner().map_err(|e| format!("{}: {e}", path.display()))?;
            written.push(path.display().to_string());
        }
        Ok(written)
    }
}

/// Where a worker reads its tables from, once per burst.
pub trait SnapshotSource: Send {
    /// Called at the top of every burst. The snapshot stays valid until the next call
    /// (a `Reader` announces a quiescent state here, so the control thread may retire
    /// what the worker used before).
    fn begin_burst(&mut self) -> &Snapshot;
    /// The worker stops (or parks): it must not delay the control thread any more.
    fn finish(&mut self) {}
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

    fn finish(&mut self) {
        self.offline();
    }
}

/// Replays `cap` through `snap` (fixed tables).
pub fn replay(snap: &Snapshot, cap: &Capture, opts: &ReplayOpts) -> ReplayResult {
    replay_with(vec![snap; opts.workers.max(1)], cap, opts, None)
}

/// Replays `cap` with one snapshot source per worker (e.g. `Reader`s of a `Publisher`
/// that a control thread publishes to while traffic flows). Workers publish their
/// counters to `board` every `STATS_PUBLISH_EVERY` bursts and when they finish.
pub fn replay_with<S: SnapshotSource>(
    sources: Vec<S>,
    cap: &Capture,
    opts: &ReplayOpts,
    board: Option<&StatsBoard>,
) -> ReplayResult {
    let workers = sources.len().max(1);
    let burst = opts.burst.clamp(1, MAX_BURST);
    let barrier = Barrier::new(workers + 1);
    let mut start = Instant::now();
    let mut results: Vec<WorkerResult> = std::thread::scope(|s| {
        let handles: Vec<_> = sources
            .into_iter()
            .enumerate()
            .map(|(w, mut source)| {
                let core = (!opts.cores.is_empty()).then(|| opts.cores[w % opts.cores.len()]);
                let barrier = &barrier;
                std::thread::Builder::new()
                    .name(format!("popgo-w{w}"))
                    .spawn_scoped(s, move || {
                        let pinned = core.is_some_and(crate::sys::affinity::pin_current);
                        let mut ring = FrameRing::new(RING_FRAMES.max(burst));
                        let mut ctx = BurstCtx::new();
                        let mut r = WorkerResult {
                            stats: WorkerStats::default(),
                            latency: Latency::new(),
                            core,
                            pinned,
                            outputs: Outputs::default(),
                        };
                        let job = Job { cap, w, workers, burst, opts, board, schedule: Schedule::new(cap, opts.pace) };
                        barrier.wait();
                        run_worker(&job, &mut source, &mut ring, &mut ctx, &mut r);
                        source.finish();
                        if let Some(b) = board {
                            b.publish(w, &r.stats);
                        }
                        r
                    })
                    .expect("spawning a worker thread")
            })
            .collect();
        barrier.wait();
        start = Instant::now();
        handles.into_iter().map(|h| h.join().expect("worker panicked")).collect()
    });
    let elapsed_ns = start.elapsed().as_nanos() as u64;

    let mut stats = WorkerStats::default();
    let mut latency = Latency::new();
    for r in &results {
        stats.merge(&r.stats);
        latency.merge(&r.latency);
    }
    let mut outputs = Vec::new();
    if opts.capture_output {
        for r in &mut results {
            let o = std::mem::take(&mut r.outputs);
            outputs.extend(o.recs.iter().map(|x| (x.seq, x.port, o.bytes[x.at..x.at + x.len as usize].to_vec())));
        }
        outputs.sort_by_key(|o| o.0);
    }
    ReplayResult { stats, latency, elapsed_ns, workers: results, outputs }
}

/// What one worker replays.
struct Job<'a> {
    cap: &'a Capture,
    w: usize,
    workers: usize,
    burst: usize,
    opts: &'a ReplayOpts,
    board: Option<&'a StatsBoard>,
    schedule: Schedule,
}

/// When each packet is due, relative to the start of the run (pacing).
#[derive(Clone, Copy)]
struct Schedule {
    pace: Option<Pace>,
    /// Timestamp of the first record and the capture's span (first to last + one mean gap).
    first_ts_ns: u64,
    span_ns: f64,
}

impl Schedule {
    fn new(cap: &Capture, pace: Option<Pace>) -> Schedule {
        let recs = cap.records();
        let first = recs.first().map_or(0, |r| r.ts_ns);
        let last = recs.last().map_or(0, |r| r.ts_ns);
        let n = recs.len().max(1) as f64;
        // One mean inter-packet gap after the last record, so loops do not bunch up.
        let span = (last.saturating_sub(first)) as f64 * n / (n - 1.0).max(1.0);
        Schedule { pace, first_ts_ns: first, span_ns: span }
    }

    /// Nanoseconds after the start at which packet `seq` (record `rec` of loop `lp`) is due.
    #[inline]
    fn due_ns(&self, seq: u64, lp: u64, rec_ts_ns: u64) -> Option<u64> {
        match self.pace? {
            Pace::Pps(pps) => Some((seq as f64 * 1e9 / pps) as u64),
            Pace::Speed(x) => {
                let t = (rec_ts_ns.saturating_sub(self.first_ts_ns)) as f64 + lp as f64 * self.span_ns;
                Some((t / x) as u64)
            }
        }
    }
}

fn run_worker<S: SnapshotSource>(
    job: &Job<'_>,
    source: &mut S,
    ring: &mut FrameRing,
    ctx: &mut BurstCtx,
    r: &mut WorkerResult,
) {
    let Job { cap, w, workers, burst, opts, board, schedule } = *job;
    let recs = cap.records();
    let data = cap.data();
    let n = recs.len();
    let bursts = n.div_ceil(burst);
    let mut verdicts = [Verdict::default(); MAX_BURST];
    let ring_len = ring.len();
    let mut pos = 0;
    let mut generation = u64::MAX;
    let run_start = Instant::now();
    let mut t0 = run_start;
    let mut published = run_start;
    let stop = opts.stop.as_deref();
    let mut lp = 0;
    while opts.loops == 0 || lp < opts.loops {
        if stop.is_some_and(|s| s.load(Ordering::Relaxed)) || (opts.loops == 0 && stop.is_none()) {
            break;
        }
        let mut b = w;
        while b < bursts {
            if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                break;
            }
            let snap = source.begin_burst();
            if snap.generation != generation {
                generation = snap.generation;
                r.stats.ilm_swaps_seen += 1;
            }
            let chunk = &recs[b * burst..((b + 1) * burst).min(n)];
            if let Some(due) = schedule.due_ns(lp * n as u64 + (b * burst) as u64, lp, chunk[0].ts_ns) {
                // Paced: spin (no syscall) until the burst's first packet is due.
                while (run_start.elapsed().as_nanos() as u64) < due {
                    std::hint::spin_loop();
                }
                t0 = Instant::now();
            }
            if pos + chunk.len() > ring_len {
                pos = 0;
            }
            let frames = &mut ring.frames_mut()[pos..pos + chunk.len()];
            let base_seq = lp * n as u64 + (b * burst) as u64;
            let k = rx_burst(data, chunk, base_seq, frames, &mut r.stats);
            let frames = &mut frames[..k];
            process_burst(snap, frames, &mut verdicts[..k], ctx, &mut r.stats);
            sink_burst(frames, &verdicts[..k], opts.capture_output, &mut r.stats, &mut r.outputs);
            pos += chunk.len();
            let t1 = Instant::now();
            r.latency.record(t1.duration_since(t0).as_nanos() as u64);
            t0 = t1;
            b += workers;
            if let Some(board) = board {
                // Every STATS_PUBLISH_EVERY bursts, or at least every PUBLISH_MAX_AGE when
                // traffic is slow (paced), so `display popgo statistics` stays fresh.
                if r.stats.bursts.is_multiple_of(STATS_PUBLISH_EVERY) || t1.duration_since(published) >= PUBLISH_MAX_AGE
                {
                    board.publish(w, &r.stats);
                    published = t1;
                }
            }
        }
        lp += 1;
    }
}

/// Copies a burst of records into frames. Oversize records are counted as received and
/// dropped here (they never reach a buffer); the returned count is how many frames
/// were filled, compacted to the front.
#[inline(always)]
fn rx_burst(data: &[u8], chunk: &[Record], base_seq: u64, frames: &mut [MemFrame], stats: &mut WorkerStats) -> usize {
    // Hardware prefetchers stop at 4 KiB page boundaries of the mapping: ask for the
    // source a few pages ahead of this burst ourselves.
    if let Some(last) = chunk.last() {
        let ahead = last.offset as usize + SRC_PREFETCH_BYTES;
        if ahead < data.len() {
            crate::sys::prefetch::prefetch(data[ahead..].as_ptr());
            crate::sys::prefetch::prefetch(data[ahead.saturating_sub(4096).max(last.offset as usize)..].as_ptr());
        }
    }
    let mut k = 0;
    for (i, rec) in chunk.iter().enumerate() {
        if frames[k].load_from(base_seq + i as u64, data, rec.offset as usize, rec.caplen as usize) {
            k += 1;
        } else {
            stats.rx_pkts += 1;
            stats.rx_bytes += rec.caplen as u64;
            stats.count_drop(DropReason::Oversize);
        }
    }
    k
}

/// The replay "TX": counts forwarded frames per port and keeps them if asked.
#[inline(always)]
fn sink_burst(frames: &[MemFrame], verdicts: &[Verdict], keep: bool, stats: &mut WorkerStats, out: &mut Outputs) {
    for (f, v) in frames.iter().zip(verdicts) {
        if let Verdict::Forward(port) = *v {
            let d = f.data();
            stats.count_tx(port as usize, d.len());
            if keep {
                out.recs.push(OutRec { seq: f.seq, port, at: out.bytes.len(), len: d.len() as u32 });
                out.bytes.extend_from_slice(d);
            }
        }
    }
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    #[arg(long)]
    pub config: PathBuf,
    /// Port the capture arrives on (reported as its rx count).
    #[arg(long)]
    pub in_port: Option<String>,
    /// Write DIR/<port>.pcap for every port that transmitted.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Passes over the input (0 = until SIGINT/SIGTERM; needs --control).
    #[arg(long, default_value_t = 1)]
    pub loops: u64,
    #[command(flatten)]
    pub w: WorkerArgs,
    /// Serve the control socket at PATH while replaying: the ILM can be changed with
    /// `popgo ctl --socket PATH` (the seed procedure works verbatim); SIGHUP re-reads
    /// the config file.
    #[arg(long)]
    pub control: Option<PathBuf>,
    /// One JSON object on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub pace: PaceArgs,
    pub input: PathBuf,
}

/// Entry point of `popgo replay`.
pub fn main(a: ReplayArgs) -> Result<(), Failure> {
    let cores = a.w.check()?;
    if a.loops == 0 && a.control.is_none() {
        return Err(usage(anyhow::anyhow!("--loops must be at least 1 (0 = until stopped, with --control)")));
    }
    let cfg = load_config(&a.config)?;
    let in_port = match &a.in_port {
        Some(p) => Some(cfg.port_index(p).ok_or_else(|| usage(anyhow::anyhow!("--in-port: unknown port {p:?}")))?),
        None => None,
    };
    let snap = build(&cfg)?;
    let cap = load_capture(&a.input)?;
    let pace = a.pace.resolve(&cap)?;
    let opts = ReplayOpts {
        loops: a.loops,
        workers: a.w.workers,
        cores,
        burst: a.w.burst,
        capture_output: a.out_dir.is_some(),
        pace,
        stop: None,
    };
    let (mut res, cfg) = match &a.control {
        None => (replay(&snap, &cap, &opts), cfg),
        Some(path) => replay_controlled(path, &a.config, cfg, snap, &cap, opts)?,
    };
    if let Some(p) = in_port {
        res.stats.port_rx_pkts[p] = res.stats.rx_pkts;
    }
    let names: Vec<String> = cfg.ports.iter().map(|p| p.name.clone()).collect();
    let written = match &a.out_dir {
        Some(dir) => res.write_outputs(dir, &names, &cap).map_err(|e| runtime(anyhow::anyhow!(e)))?,
        None => Vec::new(),
    };
    let lat = res.latency.percentiles();
    if a.json {
        let v = json!({
            "schema": "popgo.replay/1",
            "input": a.input.display().to_string(),
            "in_port": a.in_port,
            "records": cap.len(),
            "loops": a.loops,
            "workers": a.w.workers,
            "burst": a.w.burst,
            "rx_packets": res.stats.rx_pkts,
            "rx_bytes": res.stats.rx_bytes,
            "tx_packets": report::tx_by_port(&res.stats, &names),
            "tx_bytes": res.stats.tx_bytes,
            "drops": report::drops_by_reason(&res.stats),
            "balanced": res.stats.balanced(),
            "elapsed_ns": res.elapsed_ns,
            "mpps": res.mpps(),
            "latency_ns": lat,
            "per_worker": res.workers.iter().map(|w| json!({
                "core": w.core, "pinned": w.pinned, "rx_packets": w.stats.rx_pkts, "tx_packets": w.stats.tx_pkts,
                "dropped": w.stats.dropped_pkts(),
            })).collect::<Vec<_>>(),
            "outputs": written,
        });
        println!("{v}");
    } else {
        println!(
            "popgo replay: {} ({} records x {} loops) through {} on {} worker(s)",
            a.input.display(),
            cap.len(),
            a.loops,
            cfg.device,
            a.w.workers
        );
        print!("{}", report::text_table(&res.stats, &names, res.elapsed_ns, &lat));
        for w in &written {
            println!("wrote {w}");
        }
    }
    if !res.stats.balanced() {
        return Err(runtime(anyhow::anyhow!("accounting mismatch: rx != tx + drops")));
    }
    Ok(())
}

/// Replay while a control thread serves `path`: workers read the tables through QSBR
/// readers, so commits take effect from the next burst on.
fn replay_controlled(
    path: &Path,
    config_path: &Path,
    cfg: Config,
    snap: crate::ilm::Snapshot,
    cap: &Capture,
    mut opts: ReplayOpts,
) -> Result<(crate::replay::ReplayResult, Config), Failure> {
    use crate::qsbr::Publisher;
    use crate::stats::board::StatsBoard;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    crate::sys::signal::install_handlers().context("installing signal handlers").map_err(runtime)?;
    let workers = opts.workers.max(1);
    let publisher = Publisher::new(Box::new(snap), workers + 1);
    let readers: Vec<_> = (0..workers).map(|_| publisher.register_reader()).collect();
    let board = Arc::new(StatsBoard::new(workers));
    let mut plane = crate::control::ControlPlane::new(cfg, publisher, Arc::clone(&board));
    plane.reload_on(config_path.to_path_buf(), crate::sys::signal::take_reload);
    let stop_ctl = Arc::new(AtomicBool::new(false));
    let handle = crate::control::server::serve(path, plane, Arc::clone(&stop_ctl))
        .with_context(|| format!("control socket {}", path.display()))
        .map_err(usage)?;
    eprintln!("popgo: control socket {} (popgo ctl --socket {})", path.display(), path.display());
    let stop = Arc::new(AtomicBool::new(false));
    opts.stop = Some(Arc::clone(&stop));
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::Acquire) {
                if crate::sys::signal::stop_requested() {
                    stop.store(true, Ordering::Release);
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        })
    };
    let res = crate::replay::replay_with(readers, cap, &opts, Some(&board));
    done.store(true, Ordering::Release);
    let _ = watcher.join();
    stop_ctl.store(true, Ordering::Release);
    let plane = handle.join().map_err(|_| runtime(anyhow::anyhow!("control thread panicked")))?;
    Ok((res, plane.running().clone()))
}

//! `popgo bench`: repeated, noise-aware replay measurements, latency distributions,
//! baselines and a regression gate; and `popgo gen profile`.
//!
//! A run: load (or generate from a traffic profile) the capture and config, calibrate
//! the loops per repetition for `--duration`, run `--warmup` unmeasured repetitions,
//! then `--repeat` measured ones through the engine (`engine::forward`, the loop every mode uses). Each repetition gives
//! Mpps, Gbit/s and ns/packet; the report gives their median, min and max, latency
//! percentiles (per burst from the replay's hdrhistogram, per packet amortised), and
//! where it ran. `--baseline` compares with a saved result (see `verdict`).
//!
//! Setup and reporting allocate freely; the timed part is the replay itself (plus, only
//! for the regression-gate demonstration, `ExtraPass`).

pub mod hgrm;
pub mod json;
pub mod machine;
pub mod plot;
pub mod verdict;

use crate::cmd::{runtime, usage, Failure, PaceArgs};
use crate::engine::{self, MakeQueue, Report, Tables};
use crate::ilm::Snapshot;
use crate::io::capture::{CaptureQueue, Count, Pace};
use crate::io::pcap::Capture;
use crate::io::{PacketMut, Rx, RxQueue, TxQueue, Verdict};
use crate::replay::{CaptureQueues, ReplayOpts};
use crate::stats::board::StatsBoard;
use crate::stats::{TxTally, WorkerStats};
use crate::traffic::profile::Profile;
use anyhow::{anyhow, Context};
use clap::Args;
use hdrhistogram::Histogram;
use json::{BenchDoc, LatencyDoc, Percentiles, Repetition, RunInfo, Summary, Workload, SCHEMA};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use verdict::Spread;

/// Seconds per repetition when neither `--loops` nor `--duration` is given.
pub const DEFAULT_DURATION_S: f64 = 1.0;
/// Calibration replays grow until one lasts this long (ms), then loops are scaled.
const CALIBRATE_MIN_MS: u64 = 50;
/// Runs longer than this show a progress line on a terminal.
const PROGRESS_AFTER: Duration = Duration::from_secs(2);
/// Progress line refresh interval.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// Histogram range: 1 ns to 10 s, 3 significant digits (as `stats::Latency`).
const HIST_MAX_NS: u64 = 10_000_000_000;

/// Extra passes over each burst's bytes in the default build: 0. The `slow-hot-path`
/// feature makes it 1, a deliberate slowdown to demonstrate the regression gate.
#[cfg(not(feature = "slow-hot-path"))]
pub const DEFAULT_EXTRA_PASS: u32 = 0;
#[cfg(feature = "slow-hot-path")]
pub const DEFAULT_EXTRA_PASS: u32 = 1;

/// `popgo bench` arguments.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Config to forward with (required for a pcap; generated from a --profile if omitted).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Traffic profile (TOML) generated in memory instead of INPUT.
    #[arg(long, conflicts_with = "input")]
    pub profile: Option<PathBuf>,
    /// Measured repetitions.
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Target seconds per repetition (loops are calibrated; default 1 s).
    #[arg(long, conflicts_with = "loops")]
    pub duration: Option<f64>,
    /// Unmeasured full-length repetitions first.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Loops over the input per repetition (instead of --duration).
    #[arg(long)]
    pub loops: Option<u64>,
    #[command(flatten)]
    pub w: crate::cmd::WorkerArgs,
    #[command(flatten)]
    pub pace: PaceArgs,
    /// One JSON document (schema popgo.bench/1) on stdout instead of the report.
    #[arg(long)]
    pub json: bool,
    /// Write the result (JSON, popgo.bench/1) to FILE for later --baseline runs.
    #[arg(long)]
    pub save_baseline: Option<PathBuf>,
    /// Compare with a saved result; exit 1 on a regression beyond the noise.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Allowed drop of the median Mpps, in percent (with --baseline).
    #[arg(long, default_value_t = 10.0)]
    pub max_regression: f64,
    /// Write the per-burst latency histogram as HdrHistogram percentile text (µs).
    #[arg(long)]
    pub hgrm: Option<PathBuf>,
    /// Draw latency percentiles and per-repetition throughput to an SVG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Test hook: N extra passes over every packet's bytes per burst, inside the
    /// timed loop (a deliberate slowdown; see the `slow-hot-path` feature).
    #[arg(long, hide = true, default_value_t = DEFAULT_EXTRA_PASS)]
    pub extra_pass: u32,
    /// The capture to replay (pcap or pcapng).
    #[arg(required_unless_present = "profile")]
    pub input: Option<PathBuf>,
}

/// `popgo gen profile` arguments.
#[derive(Args, Debug)]
pub struct GenProfileArgs {
    /// Traffic profile (TOML; see docs/bench.md).
    #[arg(long)]
    pub profile: PathBuf,
    /// The pcap file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write a config that forwards the profile's labels with POPGO.
    #[arg(long)]
    pub config_out: Option<PathBuf>,
}

fn load_profile(path: &Path) -> Result<Profile, Failure> {
    Profile::load(path).with_context(|| format!("profile {}", path.display())).map_err(usage)
}

/// Entry point of `popgo gen profile`.
pub fn gen_profile(a: GenProfileArgs) -> Result<(), Failure> {
    let p = load_profile(&a.profile)?;
    let file = std::fs::File::create(&a.out).with_context(|| a.out.display().to_string()).map_err(runtime)?;
    let mut w = crate::io::pcap::Writer::new(std::io::BufWriter::new(file)).map_err(runtime)?;
    let mut err = None;
    let s = p.generate(|ts, f| {
        if err.is_none() {
            err = w.write_packet(ts, f).err();
        }
    });
    if let Some(e) = err {
        return Err(runtime(anyhow!("{}: {e}", a.out.display())));
    }
    w.into_inner().map_err(runtime)?;
    println!(
        "wrote {}: {} frames, {} bytes: {} IPv4, {} IPv6, {} VLAN-tagged, {} explicit null, {} entropy, {} malformed",
        a.out.display(),
        s.packets,
        s.bytes,
        s.ipv4,
        s.ipv6,
        s.vlan_tagged,
        s.explicit_null,
        s.entropy,
        s.malformed()
    );
    if let Some(c) = &a.config_out {
        std::fs::write(c, p.config()).with_context(|| c.display().to_string()).map_err(runtime)?;
        println!("wrote {}", c.display());
    }
    Ok(())
}

/// The deliberate slowdown of the gate demonstration: after each RX burst, before
/// `process_burst`, it reads every byte of the burst's packets `passes` times (a serial
/// dependency chain, so it cannot be vectorised away). A queue wrapped around the
/// capture queue, so the worker loop itself is the one every mode uses.
struct ExtraPass<Q> {
    q: Q,
    passes: u32,
}

impl<Q: RxQueue> RxQueue for ExtraPass<Q> {
    type Pkt = Q::Pkt;

    fn rx_burst(&mut self, max: usize, stats: &mut WorkerStats) -> Rx {
        let rx = self.q.rx_burst(max, stats);
        if let Rx::Burst(_) = rx {
            let mut acc = 0u64;
            for _ in 0..self.passes {
                for p in self.q.burst().iter() {
                    for &b in p.data() {
                        acc = acc.rotate_left(5) ^ b as u64;
                    }
                }
            }
            std::hint::black_box(acc);
        }
        rx
    }

    fn burst(&mut self) -> &mut [Q::Pkt] {
        self.q.burst()
    }

    fn pace(&mut self) -> Option<std::time::Duration> {
        self.q.pace()
    }
}

impl<Q: TxQueue> TxQueue for ExtraPass<Q> {
    fn tx_burst(&mut self, verdicts: &[Verdict], forwarded: &TxTally, stats: &mut WorkerStats) {
        self.q.tx_burst(verdicts, forwarded, stats);
    }
}

/// The capture queues of a benchmark with the extra pass.
struct SlowQueues<'a> {
    inner: CaptureQueues<'a, Count>,
    passes: u32,
}

impl<'a> MakeQueue for SlowQueues<'a> {
    type Queue = ExtraPass<CaptureQueue<'a, Count>>;
    type Output = Count;

    fn make(&self, w: usize) -> Result<Self::Queue, Failure> {
        Ok(ExtraPass { q: self.inner.make(w)?, passes: self.passes })
    }

    fn finish(&self, q: Self::Queue) -> Count {
        q.q.sink
    }
}

/// What one replay needs.
struct Bench<'a> {
    snap: &'a Snapshot,
    cap: &'a Capture,
    opts: ReplayOpts,
    extra_pass: u32,
    board: &'a Arc<StatsBoard>,
}

impl Bench<'_> {
    fn replay(&self, loops: u64) -> Result<Report<Count>, Failure> {
        let opts = ReplayOpts { loops, ..self.opts.clone() };
        for w in 0..opts.workers.max(1) {
            self.board.publish(w, &Default::default());
        }
        let plan = crate::replay::plan(&opts);
        let inner = CaptureQueues { cap: self.cap, opts: &opts, sink: || Count };
        let (tables, board) = (Tables::Fixed(self.snap), Arc::clone(self.board));
        if self.extra_pass == 0 {
            engine::forward(&plan, tables, &inner, board, || {}, |_| {})
        } else {
            engine::forward(&plan, tables, &SlowQueues { inner, passes: self.extra_pass }, board, || {}, |_| {})
        }
    }
}

/// Shared with the progress thread.
#[derive(Default)]
struct Progress {
    /// Packets of finished replays.
    done: AtomicU64,
    /// Packets the whole run will replay; 0 while calibrating.
    total: AtomicU64,
    finished: AtomicBool,
}

fn progress_loop(p: &Progress, board: &StatsBoard, start: Instant) {
    let mut shown = false;
    while !p.finished.load(Ordering::Relaxed) {
        std::thread::sleep(PROGRESS_EVERY);
        let t = start.elapsed();
        if t < PROGRESS_AFTER || p.finished.load(Ordering::Relaxed) {
            continue;
        }
        let done = p.done.load(Ordering::Relaxed) + board.total().rx_pkts;
        let total = p.total.load(Ordering::Relaxed);
        let rate = done as f64 / t.as_secs_f64();
        let eta = if total == 0 || rate <= 0.0 {
            "calibrating".to_string()
        } else {
            format!("ETA {:.0} s", total.saturating_sub(done) as f64 / rate)
        };
        let of = if total == 0 { String::new() } else { format!(" / {:.1} M", total as f64 / 1e6) };
        eprint!("\r\x1b[2Kpopgo bench: {:.1} M{of} packets, {:.2} Mpps, {eta}", done as f64 / 1e6, rate / 1e6);
        let _ = std::io::stderr().flush();
        shown = true;
    }
    if shown {
        eprint!("\r\x1b[2K");
        let _ = std::io::stderr().flush();
    }
}

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_NS, 3).expect("static histogram bounds are valid")
}

fn check_args(a: &BenchArgs) -> Result<(), Failure> {
    let bad = |m: String| Err(usage(anyhow!(m)));
    if a.repeat == 0 || a.repeat > 1000 {
        return bad("--repeat must be in 1..=1000".into());
    }
    if a.loops == Some(0) {
        return bad("--loops must be at least 1".into());
    }
    if let Some(d) = a.duration {
        if !(d.is_finite() && d > 0.0 && d <= 3600.0) {
            return bad("--duration must be in (0, 3600] seconds".into());
        }
    }
    if !(a.max_regression.is_finite() && (0.0..100.0).contains(&a.max_regression)) {
        return bad("--max-regression must be a percentage in [0, 100)".into());
    }
    if a.input.is_some() && a.config.is_none() {
        return bad("--config is required with a capture (it is generated only for --profile)".into());
    }
    Ok(())
}

/// Entry point of `popgo bench`.
pub fn main(a: BenchArgs) -> Result<(), Failure> {
    check_args(&a)?;
    // A bad baseline is a usage error, found before anything is measured.
    let baseline = match &a.baseline {
        Some(p) => Some(json::load_baseline(p).map_err(usage)?),
        None => None,
    };
    let cores = a.w.check()?;
    let (cap, cfg, kind, source, config_name) = match (&a.profile, &a.input) {
        (Some(pp), _) => {
            let p = load_profile(pp)?;
            let (bytes, _) = p.to_pcap();
            let cap = Capture::from_bytes(bytes).context("generated capture").map_err(runtime)?;
            let (cfg, name) = match &a.config {
                Some(c) => (crate::cmd::load_config(c)?, c.display().to_string()),
                None => (
                    crate::config::Config::parse(&p.config())
                        .context("the config generated from the profile")
                        .map_err(runtime)?,
                    "generated".to_string(),
                ),
            };
            (cap, cfg, "profile", pp.display().to_string(), name)
        }
        (None, Some(input)) => {
            let c = a.config.as_ref().expect("checked in check_args");
            let cfg = crate::cmd::load_config(c)?;
            (crate::cmd::load_capture(input)?, cfg, "pcap", input.display().to_string(), c.display().to_string())
        }
        (None, None) => return Err(usage(anyhow!("give INPUT or --profile"))),
    };
    if cap.is_empty() {
        return Err(usage(anyhow!("{source}: no packets")));
    }
    let snap = crate::cmd::build(&cfg)?;
    let pace = a.pace.resolve(&cap)?;
    let opts = ReplayOpts {
        loops: 1,
        workers: a.w.workers,
        cores: cores.clone(),
        burst: a.w.burst,
        capture_output: false,
        pace,
        ..ReplayOpts::default()
    };
    let board = Arc::new(StatsBoard::new(a.w.workers));
    let bench = Bench { snap: &snap, cap: &cap, opts, extra_pass: a.extra_pass, board: &board };
    let progress = Progress::default();
    let start = Instant::now();
    let show_progress = std::io::stderr().is_terminal();

    let n = cap.len() as u64;
    let (loops, results, started_unix_s) = std::thread::scope(|s| {
        if show_progress {
            s.spawn(|| progress_loop(&progress, &board, start));
        }
        let finish = |r| {
            progress.finished.store(true, Ordering::Relaxed);
            r
        };
        let run = |loops: u64| {
            let r = bench.replay(loops)?;
            progress.done.fetch_add(r.stats.rx_pkts, Ordering::Relaxed);
            Ok::<_, Failure>(r)
        };
        // Loops per repetition: given, or calibrated to --duration.
        let loops = match a.loops {
            Some(l) => l,
            None => {
                let target = a.duration.unwrap_or(DEFAULT_DURATION_S);
                let mut l = 1u64;
                loop {
                    let r = match run(l) {
                        Ok(r) => r,
                        Err(f) => return finish(Err(f)),
                    };
                    let ms = r.elapsed_ns / 1_000_000;
                    if ms >= CALIBRATE_MIN_MS || l >= 1 << 40 {
                        let pps = r.stats.rx_pkts as f64 * 1e9 / r.elapsed_ns.max(1) as f64;
                        break ((target * pps / n as f64).round() as u64).max(1);
                    }
                    l = l.saturating_mul((CALIBRATE_MIN_MS * 2 / ms.max(1)).clamp(2, 1000));
                }
            }
        };
        let total = progress.done.load(Ordering::Relaxed) + (a.warmup + a.repeat) as u64 * loops * n;
        progress.total.store(total, Ordering::Relaxed);
        for _ in 0..a.warmup {
            if let Err(f) = run(loops) {
                return finish(Err(f));
            }
        }
        let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut results = Vec::with_capacity(a.repeat);
        for _ in 0..a.repeat {
            let r = match run(loops) {
                Ok(r) => r,
                Err(f) => return finish(Err(f)),
            };
            if !r.stats.balanced() {
                return finish(Err(runtime(anyhow!("accounting mismatch: rx != tx + drops"))));
            }
            results.push(r);
        }
        finish(Ok((loops, results, started)))
    })?;

    // Per-repetition numbers and the merged latency histograms.
    let mut burst_hist = new_hist();
    let mut reps = Vec::with_capacity(results.len());
    let (mut pkts, mut bursts) = (0u64, 0u64);
    for r in &results {
        let _ = burst_hist.add(r.latency.histogram());
        let st = &r.stats;
        pkts += st.rx_pkts;
        bursts += st.bursts;
        let el = r.elapsed_ns.max(1) as f64;
        reps.push(Repetition {
            packets: st.rx_pkts,
            bytes: st.rx_bytes,
            dropped: st.dropped_pkts(),
            bursts: st.bursts,
            elapsed_ns: r.elapsed_ns,
            mpps: st.rx_pkts as f64 * 1e3 / el,
            gbps: st.rx_bytes as f64 * 8.0 / el,
            ns_per_packet: el / st.rx_pkts.max(1) as f64,
        });
    }
    let mean_burst = if bursts == 0 { a.w.burst as f64 } else { pkts as f64 / bursts as f64 };
    let mut packet_hist = new_hist();
    for v in burst_hist.iter_recorded() {
        let ns = (v.value_iterated_to() as f64 / mean_burst).round() as u64;
        packet_hist.saturating_record_n(ns.clamp(1, HIST_MAX_NS), v.count_at_value());
    }
    let series = |f: fn(&Repetition) -> f64| reps.iter().map(f).collect::<Vec<f64>>();
    let mpps = series(|r| r.mpps);
    let summary = Summary {
        mpps: Spread::of(&mpps),
        gbps: Spread::of(&series(|r| r.gbps)),
        ns_per_packet: Spread::of(&series(|r| r.ns_per_packet)),
        mpps_noise_pct: Spread::of(&mpps).noise_pct(),
    };
    let pinned = results.first().is_some_and(|r| r.workers.iter().all(|w| w.pinned));
    let used: Vec<usize> = (0..a.w.workers).map(|w| cores[w % cores.len()]).collect();
    let mut doc = BenchDoc {
        schema: SCHEMA.into(),
        popgo: machine::Build::detect(),
        machine: machine::Machine::detect(),
        workload: Workload {
            kind: kind.into(),
            source,
            config: config_name,
            records: n,
            bytes_per_loop: cap.records().iter().map(|r| r.caplen as u64).sum(),
            loops,
            workers: a.w.workers,
            cores: used,
            pinned,
            burst: a.w.burst,
            pace: match pace {
                None => "topspeed".into(),
                Some(Pace::Pps(p)) => format!("pps:{p}"),
                Some(Pace::Speed(x)) => format!("speed:{x}"),
            },
            extra_pass: a.extra_pass,
        },
        run: RunInfo {
            repeat: a.repeat,
            warmup: a.warmup,
            duration_s: a.loops.is_none().then(|| a.duration.unwrap_or(DEFAULT_DURATION_S)),
            started_unix_s,
        },
        repetitions: reps,
        summary,
        latency_ns: LatencyDoc { per_burst: Percentiles::of(&burst_hist), per_packet: Percentiles::of(&packet_hist) },
        verdict: None,
    };
    let notes = baseline.as_ref().map(|b| differences(b, &doc)).unwrap_or_default();
    if let Some(b) = &baseline {
        let base: Vec<f64> = b.repetitions.iter().map(|r| r.mpps).collect();
        doc.verdict = Some(verdict::compare(&base, &mpps, a.max_regression));
    }

    if let Some(p) = &a.save_baseline {
        let text = serde_json::to_string_pretty(&doc).map_err(runtime)?;
        std::fs::write(p, text + "\n").with_context(|| p.display().to_string()).map_err(runtime)?;
    }
    if let Some(p) = &a.hgrm {
        std::fs::write(p, hgrm::percentile_distribution(&burst_hist, 1e3))
            .with_context(|| p.display().to_string())
            .map_err(runtime)?;
    }
    if let Some(p) = &a.plot {
        let title = format!("popgo bench: {} ({} worker(s), burst {})", doc.workload.source, a.w.workers, a.w.burst);
        let svg = plot::svg(&title, &burst_hist, &packet_hist, &mpps).map_err(|e| runtime(anyhow!(e)))?;
        std::fs::write(p, svg).with_context(|| p.display().to_string()).map_err(runtime)?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&doc).map_err(runtime)?);
        for n in &notes {
            tracing::warn!("bench: {n}");
        }
    } else {
        print!("{}", text_report(&doc, a.baseline.as_deref(), &notes));
        for (flag, p) in [("baseline", &a.save_baseline), ("hgrm", &a.hgrm), ("plot", &a.plot)] {
            if let Some(p) = p {
                println!("wrote {} ({flag})", p.display());
            }
        }
    }
    match &doc.verdict {
        Some(v) if v.is_regression() => Err(runtime(anyhow!("{}", v.reason))),
        _ => Ok(()),
    }
}

/// Ways a baseline was measured differently (printed as notes; they do not fail).
fn differences(b: &BenchDoc, c: &BenchDoc) -> Vec<String> {
    let mut v = Vec::new();
    let (bw, cw) = (&b.workload, &c.workload);
    let mut diff = |what: &str, x: String, y: String| {
        if x != y {
            v.push(format!("{what} differs: baseline {x}, now {y}"));
        }
    };
    diff("workload", format!("{} {}", bw.kind, bw.source), format!("{} {}", cw.kind, cw.source));
    diff("records", bw.records.to_string(), cw.records.to_string());
    diff("workers", bw.workers.to_string(), cw.workers.to_string());
    diff("burst", bw.burst.to_string(), cw.burst.to_string());
    diff("pacing", bw.pace.clone(), cw.pace.clone());
    diff("CPU", b.machine.cpu_model.clone(), c.machine.cpu_model.clone());
    if cw.pace != "topspeed" {
        v.push("a paced run measures the pacing, not the forwarder: compare --topspeed runs".into());
    }
    v
}

fn text_report(d: &BenchDoc, baseline: Option<&Path>, notes: &[String]) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let w = &d.workload;
    let pkts_per_rep = w.records * w.loops;
    let _ = writeln!(
        s,
        "popgo bench: {} {} ({} records x {} loops = {} packets per repetition)",
        w.kind, w.source, w.records, w.loops, pkts_per_rep
    );
    let _ = writeln!(
        s,
        "  config {}; {} worker(s) on core(s) {:?}{}; burst {}; {}{}",
        w.config,
        w.workers,
        w.cores,
        if w.pinned { " (pinned)" } else { " (not pinned)" },
        w.burst,
        w.pace,
        if w.extra_pass > 0 { format!("; EXTRA PASS x{} (deliberately slowed)", w.extra_pass) } else { String::new() }
    );
    let m = &d.machine;
    let _ = writeln!(
        s,
        "  machine: {}, {} logical CPUs, {} {} kernel {}, governor {}",
        m.cpu_model, m.logical_cpus, m.os, m.arch, m.kernel, m.governor
    );
    let _ = writeln!(s, "  popgo {} (git {})", d.popgo.version, d.popgo.git_commit);
    let _ = writeln!(s, "  {} warm-up + {} measured repetition(s)\n", d.run.warmup, d.run.repeat);
    let _ = writeln!(s, "{:>5} {:>10} {:>10} {:>10} {:>12}", "rep", "Mpps", "Gbit/s", "ns/pkt", "elapsed ms");
    for (i, r) in d.repetitions.iter().enumerate() {
        let _ = writeln!(
            s,
            "{:>5} {:>10.3} {:>10.3} {:>10.2} {:>12.1}",
            i + 1,
            r.mpps,
            r.gbps,
            r.ns_per_packet,
            r.elapsed_ns as f64 / 1e6
        );
    }
    let _ = writeln!(s, "\n{:>8} {:>10} {:>10} {:>10}", "", "median", "min", "max");
    for (name, sp, prec) in
        [("Mpps", &d.summary.mpps, 3), ("Gbit/s", &d.summary.gbps, 3), ("ns/pkt", &d.summary.ns_per_packet, 2)]
    {
        let _ = writeln!(s, "{name:>8} {:>10.prec$} {:>10.prec$} {:>10.prec$}", sp.median, sp.min, sp.max);
    }
    let _ = writeln!(s, "   noise {:>10.1}% (Mpps max-min over median)\n", d.summary.mpps_noise_pct);
    let _ = writeln!(
        s,
        "{:<16} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10}",
        "latency ns", "p50", "p90", "p99", "p99.9", "p99.99", "max", "samples"
    );
    for (name, p) in [("per burst", &d.latency_ns.per_burst), ("per packet", &d.latency_ns.per_packet)] {
        let _ = writeln!(
            s,
            "{:<16} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10}",
            name, p.p50, p.p90, p.p99, p.p999, p.p9999, p.max, p.samples
        );
    }
    for n in notes {
        let _ = writeln!(s, "note: {n}");
    }
    if let (Some(v), Some(b)) = (&d.verdict, baseline) {
        let _ = writeln!(
            s,
            "\nverdict vs {} (max regression {}%; noise: baseline {:.1}%, now {:.1}%):\n  {}",
            b.display(),
            v.max_regression_pct,
            v.baseline_noise_pct,
            v.current_noise_pct,
            v.reason
        );
    }
    s
}

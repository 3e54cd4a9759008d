//! Swap cost and throughput under churn, with a 100,000-route table.
//!
//! 1. Full build (`ilm::build_indexed`) of 100k routes; full build + publish through the
//!    control plane (the start-up commit).
//! 2. Single-route commits through `ControlPlane::exec` (the socket path minus the
//!    socket): a label's route flipped between two next hops on different ports,
//!    a network added then removed, pop-go toggled (rewrites all 100k entries).
//! 3. Throughput: workers loop over 64-byte frames of the 100k labels (copy into a
//!    frame ring like replay's RX, `process_burst` through a `qsbr::Reader`) while
//!    the control thread is idle (steady) or commits a route flip every 10 ms
//!    (100 commits/s). Phases alternate in the same run; medians and their ratio.
//!
//! `cargo bench --bench swap` (env: POPGO_SWAP_WORKERS=1, POPGO_SWAP_PHASE_MS=1000,
//! POPGO_SWAP_PHASES=5).

use popgo::config::Config;
use popgo::control::{CommitReport, ControlPlane};
use popgo::dataplane::{process_burst, BurstCtx, Verdict, BURST};
use popgo::ilm::{build, build_indexed};
use popgo::io::mem::MemFrame;
use popgo::io::PacketMut;
use popgo::qsbr::Publisher;
use popgo::stats::board::StatsBoard;
use popgo::stats::WorkerStats;
use popgo::traffic::synth::{synth_config, synth_v4_dst, Synth};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LABELS: u32 = 100_000;
const FIRST: u32 = 16;
const NEIGHBORS: u32 = 16;
const FRAMES: u64 = 16_384;
/// Commit period of the churn phase: 100 commits/s.
const COMMIT_EVERY: Duration = Duration::from_millis(10);

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn pct(v: &mut [u64], p: f64) -> u64 {
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p) as usize]
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1e3
}

fn summarize(what: &str, rs: &[CommitReport]) {
    let col = |f: fn(&CommitReport) -> u64| -> (u64, u64) {
        let mut v: Vec<u64> = rs.iter().map(f).collect();
        (pct(&mut v, 0.5), pct(&mut v, 0.99))
    };
    let kinds = rs.iter().filter(|r| r.kind.name() == "incremental").count();
    println!("{what}: {} commits ({} incremental); median / p99 in us", rs.len(), kinds);
    for (name, f) in [
        ("build", (|r: &CommitReport| r.build_ns) as fn(&CommitReport) -> u64),
        ("publish", |r| r.publish_ns),
        ("grace", |r| r.grace_ns),
        ("reclaim", |r| r.reclaim_ns),
        ("total", |r| r.total_ns),
    ] {
        let (m, p) = col(f);
        println!("  {name:<8} {:>10.1} {:>10.1}", us(m), us(p));
    }
}

/// Flips label `l`'s route between next hops on two different ports.
struct Flipper {
    state: Vec<bool>,
}

impl Flipper {
    fn lines(&mut self, i: usize) -> Vec<String> {
        let k = i % self.state.len();
        let l = FIRST + (k as u32 * 1543) % LABELS;
        let p = synth_v4_dst(l);
        let a = format!("192.168.{}.1", l % NEIGHBORS);
        let b = format!("192.168.{}.1", (l + 1) % NEIGHBORS);
        let (from, to) = if self.state[k] { (b, a) } else { (a, b) };
        self.state[k] = !self.state[k];
        vec![format!("ip route-static {p} 32 {to}"), format!("undo ip route-static {p} 32 {from}"), "commit".into()]
    }
}

fn run_lines(plane: &mut ControlPlane, s: &mut popgo::control::Session, lines: &[String]) -> CommitReport {
    for l in lines {
        let mut r = plane.exec(s, l);
        // Back-pressure, not a failure: on a loaded machine the worker may not yet have
        // passed a quiescent state for the last MAX_RETIRED commits; the commit is kept.
        while !r.ok && l == "commit" && r.text.contains("try again later") {
            std::thread::sleep(std::time::Duration::from_millis(1));
            plane.tick();
            r = plane.exec(s, l);
        }
        assert!(r.ok, "{l}: {}", r.text);
    }
    plane.stats().last.expect("a commit happened")
}

fn main() {
    let workers = env("POPGO_SWAP_WORKERS", 1) as usize;
    let phase = Duration::from_millis(env("POPGO_SWAP_PHASE_MS", 1000));
    let phases = env("POPGO_SWAP_PHASES", 5) as usize;
    let cfg = Config::parse(&synth_config(FIRST, LABELS, 4, NEIGHBORS as usize, false)).expect("synth config");

    // 1. Full build.
    let mut full_ms: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let s = build_indexed(&cfg, 0).expect("builds");
            let ms = t.elapsed().as_secs_f64() * 1e3;
            drop(s);
            ms
        })
        .collect();
    println!("full build_indexed, {LABELS} routes + networks: median {:.2} ms", median(&mut full_ms));

    let publisher = Publisher::new(Box::new(build(&cfg, 0).expect("builds")), workers + 1);
    let board = Arc::new(StatsBoard::new(workers));
    let mut plane = ControlPlane::new(cfg, publisher, Arc::clone(&board));
    let start = plane.stats().last_full.expect("start-up build");
    summarize("start-up full build + publish (no readers online)", &[start]);

    // 2. Commit costs, no traffic.
    let mut s = plane.new_session();
    assert!(plane.exec(&mut s, "system-view").ok);
    let mut flip = Flipper { state: vec![false; 64] };
    let rs: Vec<CommitReport> = (0..300).map(|i| run_lines(&mut plane, &mut s, &flip.lines(i))).collect();
    summarize("route flip (1 label moves port)", &rs);
    let mut rs = Vec::new();
    for i in 0..100 {
        let p = format!("10.200.{}.0", i % 200);
        let nh = "192.168.3.1";
        for l in [
            format!("ip route-static {p} 24 {nh}"),
            "bgp 100".into(),
            format!("network {p} 24 label {}", 200_000 + i),
            "commit".into(),
            format!("undo network {p} 24"),
            "quit".into(),
            format!("undo ip route-static {p} 24 {nh}"),
            "commit".into(),
        ] {
            let r = plane.exec(&mut s, &l);
            assert!(r.ok, "{l}: {}", r.text);
            if l == "commit" {
                rs.push(plane.stats().last.expect("commit"));
            }
        }
    }
    summarize("network + route add, then delete", &rs);
    let mut rs = Vec::new();
    assert!(plane.exec(&mut s, "bgp 100").ok);
    for i in 0..20 {
        let l = if i % 2 == 0 { "undo apply-label per-route pop-go" } else { "apply-label per-route pop-go" };
        rs.push(run_lines(&mut plane, &mut s, &[l.to_string(), "commit".into()]));
    }
    summarize("pop-go toggle (all 100k entries)", &rs);
    assert!(plane.exec(&mut s, "quit").ok, "back to the system view");

    // 3. Throughput, steady vs 100 commits/s.
    let mut frames = Vec::with_capacity(FRAMES as usize);
    Synth { count: FRAMES, labels: LABELS, first_label: FIRST, size: 64, ..Synth::default() }
        .generate(|_, f| frames.push(f.to_vec()))
        .expect("synth frames");
    let frames = Arc::new(frames);
    let stop = Arc::new(AtomicBool::new(false));
    let counters: Arc<Vec<AtomicU64>> = Arc::new((0..workers).map(|_| AtomicU64::new(0)).collect());
    let cores = core_ids();
    // The control thread (this one) on the first core, workers on the others (sharing
    // the first only when there are more workers than other cores).
    if let Some(c) = cores.first() {
        core_affinity::set_for_current(*c);
    }
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let mut reader = plane.publisher().register_reader();
            let (frames, stop, counters) = (Arc::clone(&frames), Arc::clone(&stop), Arc::clone(&counters));
            let core = cores.get((w + 1) % cores.len().max(1)).copied();
            std::thread::spawn(move || {
                if let Some(c) = core {
                    core_affinity::set_for_current(c);
                }
                let mut ring: Vec<MemFrame> = vec![MemFrame::default(); BURST];
                let mut verdicts = [Verdict::default(); BURST];
                let mut ctx = BurstCtx::new();
                let mut st = WorkerStats::default();
                let mut pos = 0;
                let mut bursts = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    reader.quiescent();
                    let snap = reader.current();
                    for f in ring.iter_mut() {
                        f.load(pos as u64, &frames[pos]);
                        pos = (pos + 1) % frames.len();
                    }
                    process_burst(snap, &mut ring, &mut verdicts, &mut ctx, &mut st);
                    for (f, v) in ring.iter().zip(&verdicts) {
                        if let Verdict::Forward(p) = v {
                            st.count_tx(*p as usize, f.data().len());
                        }
                    }
                    bursts += 1;
                    if bursts & 63 == 0 {
                        counters[w].store(st.rx_pkts, Ordering::Relaxed);
                    }
                }
                reader.offline();
                st
            })
        })
        .collect();
    let total = || counters.iter().map(|c| c.load(Ordering::Relaxed)).sum::<u64>();
    std::thread::sleep(Duration::from_millis(300)); // warm up
    let (mut steady, mut churn) = (Vec::new(), Vec::new());
    let mut churn_reports = Vec::new();
    let mut i = 10_000;
    for _ in 0..phases {
        let (t0, n0) = (Instant::now(), total());
        std::thread::sleep(phase);
        steady.push((total() - n0) as f64 / t0.elapsed().as_secs_f64() / 1e6);

        let (t0, n0) = (Instant::now(), total());
        let mut next = t0;
        while t0.elapsed() < phase {
            churn_reports.push(run_lines(&mut plane, &mut s, &flip.lines(i)));
            i += 1;
            next += COMMIT_EVERY;
            if let Some(d) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
        }
        churn.push((total() - n0) as f64 / t0.elapsed().as_secs_f64() / 1e6);
    }
    stop.store(true, Ordering::Relaxed);
    let mut all = WorkerStats::default();
    for h in handles {
        all.merge(&h.join().expect("worker"));
    }
    assert!(all.balanced(), "rx = tx + drops");
    assert_eq!(all.dropped_pkts(), 0, "every synth label is in the table");
    let commits_per_s = churn_reports.len() as f64 / (phases as f64 * phase.as_secs_f64());
    summarize("route flips under traffic", &churn_reports);
    let (ms, mc) = (median(&mut steady), median(&mut churn));
    println!(
        "throughput, {workers} worker(s), 64 B frames, {LABELS} labels: steady median {ms:.2} Mpps, \
         {commits_per_s:.0} commits/s median {mc:.2} Mpps, ratio {:.3}",
        mc / ms
    );
    println!("  steady phases: {steady:.2?}\n  churn phases:  {churn:.2?}");
}

fn core_ids() -> Vec<core_affinity::CoreId> {
    core_affinity::get_core_ids().unwrap_or_default()
}

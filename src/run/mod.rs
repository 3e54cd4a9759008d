//! `popgo run`: the forwarder on real interfaces over AF_XDP (issue 3).
//!
//! Owns the lifecycle: check the options and the interfaces, attach the MPLS-only XDP
//! program to every port's interface, start one pinned worker per queue set (each
//! creates and owns its sockets), print periodic stats, reload the config on SIGHUP,
//! and on SIGINT/SIGTERM (or `--duration`) stop the workers, drain TX, print the final
//! report and detach the programs.
//!
//! [`start`] returns a [`Running`] handle that keeps the QSBR [`Publisher`] on the
//! control thread, so a control plane can publish new snapshots while `run` runs.
//! No `unsafe` here: the FFI lives in `io::afxdp`, `io::xdp` and `sys::*`.

pub mod lab;
pub mod tx;
pub mod worker;

use crate::cmd::{load_config, runtime, usage, Failure};
use crate::config::Config;
use crate::dataplane::{BURST, MAX_BURST};
use crate::ilm::Snapshot;
use crate::io::afxdp::{self as xsk, BindMode, KickPolicy, PortConfig};
use crate::io::xdp::{MplsRedirect, XdpMode};
use crate::qsbr::{PublishReport, Publisher};
use crate::stats::board::StatsBoard;
use crate::stats::{report, DropReason, Latency, WorkerStats, MAX_PORTS};
use anyhow::anyhow;
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use worker::{Outcome, Setup, SocketInfo};

/// Default ring size (fill, completion, RX and TX; entries).
pub const DEFAULT_RING_SIZE: u32 = 2048;
/// How often the control thread looks at signals and the deadline.
const CONTROL_TICK: Duration = Duration::from_millis(20);
/// How long `start` waits for every worker to bind its sockets.
const SETUP_TIMEOUT: Duration = Duration::from_secs(20);

/// `popgo run` arguments.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    #[arg(long)]
    pub config: PathBuf,
    /// Worker threads (each owns queues `w, w+N, ...` of every port).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Cores to pin workers to, e.g. `1` or `0-1` (default: highest-numbered first).
    #[arg(long)]
    pub cores: Option<String>,
    /// RX queues per interface to bind (queue ids 0..N).
    #[arg(long, default_value_t = 1)]
    pub queues: u32,
    /// Packets per RX burst and TX batch (1..=256).
    #[arg(long, default_value_t = BURST)]
    pub batch: usize,
    /// Ring size for fill/completion/RX/TX rings (power of two, 64..=16384).
    #[arg(long, default_value_t = DEFAULT_RING_SIZE)]
    pub ring_size: u32,
    /// Require zero-copy AF_XDP (fails on drivers without it, e.g. veth).
    #[arg(long, conflicts_with = "copy")]
    pub zero_copy: bool,
    /// Force copy-mode AF_XDP.
    #[arg(long)]
    pub copy: bool,
    /// Attach the XDP program in generic (SKB) mode instead of native.
    #[arg(long)]
    pub xdp_generic: bool,
    /// Seconds between one-line stats (0 = none).
    #[arg(long, default_value_t = 1.0)]
    pub stats_interval: f64,
    /// Stats lines and the final report as JSON lines.
    #[arg(long)]
    pub json_stats: bool,
    /// Stop by itself after this many seconds.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Longest a partial TX batch waits, in µs.
    #[arg(long, default_value_t = tx::TX_DRAIN.as_micros() as u64)]
    pub tx_drain_us: u64,
    /// Raise the copy-mode TX frames per kick (`XDP_MAX_TX_SKB_BUDGET`, kernel >= 6.17).
    #[arg(long)]
    pub tx_budget: Option<u32>,
    /// TX wakeups: `always` (whenever frames are in flight) or `backlog`.
    #[arg(long, default_value = "always")]
    pub kick: String,
}

/// Checked options of a run (everything but the config).
#[derive(Clone, Debug)]
pub struct RunOpts {
    pub workers: usize,
    pub cores: Vec<usize>,
    pub queues: u32,
    pub batch: usize,
    pub ring_size: u32,
    pub mode: BindMode,
    pub xdp_native: bool,
    pub tx_drain: Duration,
    pub tx_budget: Option<u32>,
    pub kick: KickPolicy,
}

impl Default for RunOpts {
    fn default() -> Self {
        RunOpts {
            workers: 1,
            cores: crate::sys::affinity::default_cores(1),
            queues: 1,
            batch: BURST,
            ring_size: DEFAULT_RING_SIZE,
            mode: BindMode::Auto,
            xdp_native: true,
            tx_drain: tx::TX_DRAIN,
            tx_budget: None,
            kick: KickPolicy::Always,
        }
    }
}

fn bad(msg: String) -> Failure {
    usage(anyhow!(msg))
}

impl RunOpts {
    /// Checks the command-line options (usage errors exit 2).
    pub fn from_args(a: &RunArgs) -> Result<RunOpts, Failure> {
        if a.workers == 0 || a.workers > 64 {
            return Err(bad("--workers must be in 1..=64".into()));
        }
        if a.queues == 0 || a.queues > xsk_max_queues() {
            return Err(bad(format!("--queues must be in 1..={}", xsk_max_queues())));
        }
        if a.workers > a.queues as usize {
            return Err(bad(format!(
                "--workers {} > --queues {}: each worker needs its own queue on every port",
                a.workers, a.queues
            )));
        }
        if !(1..=MAX_BURST).contains(&a.batch) {
            return Err(bad(format!("--batch must be in 1..={MAX_BURST}")));
        }
        if !a.ring_size.is_power_of_two() || !(64..=16384).contains(&a.ring_size) {
            return Err(bad(format!("--ring-size {} is not a power of two in 64..=16384", a.ring_size)));
        }
        if !(a.stats_interval.is_finite() && a.stats_interval >= 0.0) {
            return Err(bad("--stats-interval must be a number of seconds >= 0".into()));
        }
        if let Some(d) = a.duration {
            if !(d.is_finite() && d > 0.0) {
                return Err(bad("--duration must be a positive number of seconds".into()));
            }
        }
        let kick = match a.kick.as_str() {
            "always" => KickPolicy::Always,
            "backlog" => KickPolicy::Backlog,
            k => return Err(bad(format!("--kick {k:?}: expected always or backlog"))),
        };
        let cores = match &a.cores {
            Some(c) => {
                let v = crate::sys::affinity::parse_core_list(c).map_err(|e| bad(format!("--cores: {e}")))?;
                crate::sys::affinity::check_cores(&v).map_err(|e| bad(format!("--cores: {e}")))?;
                v
            }
            None => crate::sys::affinity::default_cores(a.workers),
        };
        Ok(RunOpts {
            workers: a.workers,
            cores,
            queues: a.queues,
            batch: a.batch,
            ring_size: a.ring_size,
            mode: if a.zero_copy {
                BindMode::ZeroCopy
            } else if a.copy {
                BindMode::Copy
            } else {
                BindMode::Auto
            },
            xdp_native: !a.xdp_generic,
            tx_drain: Duration::from_micros(a.tx_drain_us),
            tx_budget: a.tx_budget,
            kick,
        })
    }
}

/// Queue ids must fit the XSKMAP.
fn xsk_max_queues() -> u32 {
    crate::io::xdp::XSKMAP_ENTRIES
}

/// A running data plane. Dropping it without [`Running::stop`] still stops the workers
/// and detaches the programs (without a report).
pub struct Running {
    /// Publishes new snapshots to the workers (control thread only).
    pub publisher: Publisher<Snapshot>,
    board: Arc<StatsBoard>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<Outcome>>,
    sockets: Vec<SocketInfo>,
    /// Detached after the workers (and their sockets) are gone: see `io::xdp` docs.
    xdp: Vec<MplsRedirect>,
    cfg: Config,
    started: Instant,
    generation: u64,
}

/// The final counters of a run.
pub struct RunReport {
    pub stats: WorkerStats,
    pub latency: Latency,
    pub elapsed_ns: u64,
    pub workers: Vec<Outcome>,
    /// Kernel socket counters read just before the stop: (socket, counters).
    pub kernel: Vec<(SocketInfo, xsk::XdpStatistics)>,
    /// Workers that panicked (their counters are missing from `stats`).
    pub panicked: usize,
}

fn failure_for(e: &std::io::Error, what: String) -> Failure {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        return bad(format!(
            "{what}: {e}: missing privileges (popgo run needs root, or CAP_NET_ADMIN + CAP_BPF + CAP_IPC_LOCK)"
        ));
    }
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => bad(format!(
            "{what}: {e}: missing privileges (popgo run needs root, or CAP_NET_ADMIN + CAP_BPF + CAP_IPC_LOCK)"
        )),
        Some(libc::ENODEV) | Some(libc::ENXIO) => bad(format!("{what}: {e}")),
        _ => runtime(anyhow!("{what}: {e}")),
    }
}

/// Checks the interfaces, attaches the XDP programs, starts the workers and waits
/// until every socket is bound.
pub fn start(cfg: Config, opts: &RunOpts) -> Result<Running, Failure> {
    if cfg.ports.len() > MAX_PORTS {
        return Err(bad(format!(
            "{} ports in the config; the data plane handles at most {MAX_PORTS}",
            cfg.ports.len()
        )));
    }
    let mut attached: Vec<(usize, String)> = Vec::new();
    for (i, p) in cfg.ports.iter().enumerate() {
        let Some(iface) = &p.iface else { continue };
        if let Some((j, _)) = attached.iter().find(|(_, f)| f == iface) {
            return Err(bad(format!("ports {:?} and {:?} both use interface {iface}", cfg.ports[*j].name, p.name)));
        }
        if crate::io::xdp::ifindex(iface).is_err() {
            return Err(bad(format!("port {:?}: interface {iface:?} does not exist", p.name)));
        }
        if let Some(n) = rx_queue_count(iface) {
            if n < opts.queues {
                return Err(bad(format!(
                    "port {:?}: interface {iface} has {n} RX queue(s), --queues is {}",
                    p.name, opts.queues
                )));
            }
        }
        attached.push((i, iface.clone()));
    }
    if attached.is_empty() {
        return Err(bad("no port in the config names an interface (`iface = ...`); nothing to run on".into()));
    }
    let snap = crate::cmd::build(&cfg)?;
    // Fails without CAP_SYS_RESOURCE (as in the lab) and is not needed when
    // CAP_IPC_LOCK is present (UMEM) and BPF maps are memcg-accounted (>= 5.11).
    let _ = crate::sys::rlimit::raise_memlock();

    // 1. XDP programs first: afxdp's libbpf would otherwise install its own
    //    redirect-everything program (io::xdp module docs).
    let mut xdp = Vec::new();
    for (i, iface) in &attached {
        let r = MplsRedirect::attach(iface, opts.xdp_native).map_err(|e| {
            failure_for(&e, format!("port {:?}: attaching the XDP program to {iface}", cfg.ports[*i].name))
        })?;
        xdp.push(r);
    }

    // 2. Workers: each creates its area and sockets, then reports.
    let board = Arc::new(StatsBoard::new(opts.workers));
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = Publisher::new(Box::new(snap), opts.workers);
    let port_cfg = PortConfig {
        ring_size: opts.ring_size,
        burst: opts.batch,
        tx_budget: opts.tx_budget,
        kick: opts.kick,
        mode: opts.mode,
    };
    let (tx, rx) = mpsc::channel();
    let mut workers = Vec::new();
    for w in 0..opts.workers {
        let setup = Setup {
            id: w,
            core: (!opts.cores.is_empty()).then(|| opts.cores[w % opts.cores.len()]),
            queues: (0..opts.queues).filter(|q| *q as usize % opts.workers == w).collect(),
            ports: attached.clone(),
            nports: cfg.ports.len(),
            port_cfg,
            batch: opts.batch,
            drain: opts.tx_drain,
        };
        let reader = publisher.register_reader();
        let (board, stop, tx) = (board.clone(), stop.clone(), tx.clone());
        let h = std::thread::Builder::new()
            .name(format!("popgo-w{w}"))
            .spawn(move || worker::run(setup, reader, board, stop, tx))
            .map_err(|e| runtime(anyhow!("spawning worker {w}: {e}")))?;
        workers.push(h);
    }
    drop(tx);
    let mut running = Running {
        publisher,
        board,
        stop,
        workers,
        sockets: Vec::new(),
        xdp,
        cfg,
        started: Instant::now(),
        generation: 0,
    };
    let deadline = Instant::now() + SETUP_TIMEOUT;
    for _ in 0..opts.workers {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Ok(infos)) => running.sockets.extend(infos),
            Ok(Err(e)) => {
                let what = e.to_string();
                let f = match e.errno() {
                    Some(n) => failure_for(&std::io::Error::from_raw_os_error(n), what),
                    None => runtime(anyhow!(what)),
                };
                running.shutdown();
                return Err(f);
            }
            Err(_) => {
                running.shutdown();
                return Err(runtime(anyhow!("a worker did not finish binding its sockets in {SETUP_TIMEOUT:?}")));
            }
        }
    }
    running.sockets.sort_by_key(|s| (s.port, s.queue));
    running.started = Instant::now();
    Ok(running)
}

/// Number of RX queues of `iface` as sysfs shows it (None if unreadable).
fn rx_queue_count(iface: &str) -> Option<u32> {
    let dir = std::fs::read_dir(format!("/sys/class/net/{iface}/queues")).ok()?;
    Some(dir.filter_map(Result::ok).filter(|e| e.file_name().to_string_lossy().starts_with("rx-")).count() as u32)
}

impl Running {
    /// The stats board the workers publish into.
    pub fn board(&self) -> &StatsBoard {
        &self.board
    }

    /// The bound sockets (port, queue, fd, mode).
    pub fn sockets(&self) -> &[SocketInfo] {
        &self.sockets
    }

    /// The config the data plane was started with (ports are fixed for a run).
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// XDP attachments: (interface, mode).
    pub fn xdp_modes(&self) -> Vec<(String, XdpMode)> {
        self.xdp.iter().map(|x| (x.attachment.ifname.clone(), x.attachment.mode)).collect()
    }

    /// Builds tables from `cfg` and publishes them to the workers. The ports must be
    /// the same as at start (names, interfaces, order): sockets are not rebound.
    pub fn reload(&mut self, cfg: Config) -> Result<PublishReport, Failure> {
        let same = cfg.ports.len() == self.cfg.ports.len()
            && cfg.ports.iter().zip(&self.cfg.ports).all(|(a, b)| a.name == b.name && a.iface == b.iface);
        if !same {
            return Err(bad("the new config changes the ports; restart popgo run to rebind".into()));
        }
        self.generation += 1;
        let snap = crate::ilm::build(&cfg, self.generation).map_err(|e| bad(format!("building tables: {e}")))?;
        let r = self.publisher.publish(Box::new(snap));
        self.cfg = cfg;
        Ok(r)
    }

    /// Kernel socket counters of every bound socket (while the workers run).
    pub fn kernel_stats(&self) -> Vec<(SocketInfo, xsk::XdpStatistics)> {
        self.sockets.iter().filter_map(|s| xsk::xdp_statistics(s.fd).ok().map(|k| (s.clone(), k))).collect()
    }

    /// Stops the workers (they drain TX), joins them, detaches the XDP programs and
    /// returns the final counters.
    pub fn stop(mut self) -> RunReport {
        let kernel = self.kernel_stats();
        let elapsed_ns = self.started.elapsed().as_nanos() as u64;
        let (workers, panicked) = self.shutdown();
        let mut stats = WorkerStats::default();
        let mut latency = Latency::new();
        for w in &workers {
            stats.merge(&w.stats);
            latency.merge(&w.latency);
        }
        RunReport { stats, latency, elapsed_ns, workers, kernel, panicked }
    }

    fn shutdown(&mut self) -> (Vec<Outcome>, usize) {
        self.stop.store(true, Ordering::Relaxed);
        let mut outs = Vec::new();
        let mut panicked = 0;
        for h in self.workers.drain(..) {
            match h.join() {
                Ok(o) => outs.push(o),
                Err(_) => panicked += 1,
            }
        }
        // Sockets are closed (workers dropped them): now detach.
        self.xdp.clear();
        (outs, panicked)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.workers.is_empty() || !self.xdp.is_empty() {
            self.shutdown();
        }
    }
}

/// Entry point of `popgo run`.
pub fn main(a: RunArgs) -> Result<(), Failure> {
    let opts = RunOpts::from_args(&a)?;
    let cfg = load_config(&a.config)?;
    crate::sys::signal::install_handlers().map_err(|e| runtime(anyhow!("installing signal handlers: {e}")))?;
    let names: Vec<String> = cfg.ports.iter().map(|p| p.name.clone()).collect();
    let device = cfg.device.clone();
    let mut running = start(cfg, &opts)?;
    print_start(&running, &opts, &device);

    let interval = (a.stats_interval > 0.0).then(|| Duration::from_secs_f64(a.stats_interval));
    let deadline = a.duration.map(|d| running.started + Duration::from_secs_f64(d));
    let mut next_stats = interval.map(|i| Instant::now() + i);
    let mut prev = (Instant::now(), WorkerStats::default());
    loop {
        std::thread::sleep(CONTROL_TICK);
        if crate::sys::signal::stop_requested() || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if running.workers.iter().any(|h| h.is_finished()) {
            eprintln!("popgo run: a worker stopped unexpectedly; shutting down");
            break;
        }
        if crate::sys::signal::take_reload() {
            match load_config(&a.config).and_then(|c| running.reload(c)) {
                Ok(r) => eprintln!(
                    "popgo run: reloaded {} (epoch {}, grace {} µs, complete: {})",
                    a.config.display(),
                    r.epoch,
                    r.grace_ns / 1000,
                    r.grace_complete
                ),
                Err(f) => eprintln!("popgo run: reload failed, keeping the current tables: {:#}", f.err),
            }
        }
        if let (Some(i), Some(at)) = (interval, next_stats) {
            let now = Instant::now();
            if now >= at {
                let cur = running.board.total();
                let kernel = running.kernel_stats();
                println!("{}", stats_line(&names, &prev, (now, &cur), &kernel, now - running.started, a.json_stats));
                prev = (now, cur);
                next_stats = Some(at + i);
            }
        }
    }
    let rep = running.stop();
    print_final(&rep, &names, &device, &opts, a.json_stats);
    if rep.panicked > 0 {
        return Err(runtime(anyhow!("{} worker(s) panicked; their counters are missing", rep.panicked)));
    }
    if !rep.stats.balanced() {
        return Err(runtime(anyhow!("accounting mismatch: rx != tx + drops")));
    }
    Ok(())
}

fn print_start(r: &Running, opts: &RunOpts, device: &str) {
    eprintln!(
        "popgo run: {device}: {} worker(s) on core(s) {:?}, {} queue(s) per port, batch {}, ring {}",
        opts.workers,
        &opts.cores[..opts.workers.min(opts.cores.len())],
        opts.queues,
        opts.batch,
        opts.ring_size
    );
    let modes = r.xdp_modes();
    for s in r.sockets() {
        let xdp = modes.iter().find(|(i, _)| *i == s.iface).map_or("?", |(_, m)| match m {
            XdpMode::Native => "native",
            XdpMode::Generic => "generic",
        });
        eprintln!(
            "popgo run:   port {:?} {} q{} (worker {}): XDP {xdp}, AF_XDP {} mode",
            r.cfg.ports[s.port].name,
            s.iface,
            s.queue,
            s.worker,
            if s.zero_copy { "zero-copy" } else { "copy" }
        );
    }
    eprintln!("popgo run: forwarding; SIGINT/SIGTERM to stop, SIGHUP to reload the config");
}

/// Sum of kernel counters over sockets.
fn kernel_sum(k: &[(SocketInfo, xsk::XdpStatistics)]) -> (u64, u64, u64) {
    k.iter().fold((0, 0, 0), |(a, b, c), (_, s)| (a + s.rx_ring_full, b + s.rx_fill_ring_empty_descs, c + s.rx_dropped))
}

fn stats_line(
    names: &[String],
    prev: &(Instant, WorkerStats),
    cur: (Instant, &WorkerStats),
    kernel: &[(SocketInfo, xsk::XdpStatistics)],
    t: Duration,
    as_json: bool,
) -> String {
    let dt = cur.0.duration_since(prev.0).as_secs_f64().max(1e-9);
    let (p, c) = (&prev.1, cur.1);
    let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / dt / 1e6;
    let drops: Vec<(DropReason, u64)> = DropReason::ALL
        .iter()
        .map(|r| (*r, c.drop_count(*r).saturating_sub(p.drop_count(*r))))
        .filter(|(_, n)| *n > 0)
        .collect();
    let (ring_full, fill_empty, kdropped) = kernel_sum(kernel);
    if as_json {
        let ports: serde_json::Map<String, serde_json::Value> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                (
                    n.clone(),
                    json!({"rx_mpps": rate(c.port_rx_pkts[i], p.port_rx_pkts[i]),
                           "tx_mpps": rate(c.port_tx_pkts[i], p.port_tx_pkts[i])}),
                )
            })
            .collect();
        let d: serde_json::Map<String, serde_json::Value> =
            drops.iter().map(|(r, n)| (r.name().to_string(), json!(n))).collect();
        return json!({
            "schema": "popgo.run.stats/1", "t_s": t.as_secs_f64(), "interval_s": dt,
            "rx_packets": c.rx_pkts, "tx_packets": c.tx_pkts, "dropped": c.dropped_pkts(),
            "ports": ports, "drops": d, "fill_ring_starved": c.fill_ring_starved,
            "kernel": {"rx_ring_full": ring_full, "rx_fill_ring_empty": fill_empty, "rx_dropped": kdropped},
        })
        .to_string();
    }
    use std::fmt::Write;
    let mut s = format!("t={:.1}s", t.as_secs_f64());
    for (i, n) in names.iter().enumerate() {
        let _ = write!(
            s,
            " | {n} rx {:.3} tx {:.3} Mpps",
            rate(c.port_rx_pkts[i], p.port_rx_pkts[i]),
            rate(c.port_tx_pkts[i], p.port_tx_pkts[i])
        );
    }
    s.push_str(" | drops");
    if drops.is_empty() {
        s.push_str(" 0");
    }
    for (r, n) in &drops {
        let _ = write!(s, " {r}={n}");
    }
    let _ = write!(s, " | fill_starved {} rx_ring_full {ring_full} fill_empty {fill_empty}", c.fill_ring_starved);
    s
}

fn print_final(rep: &RunReport, names: &[String], device: &str, opts: &RunOpts, as_json: bool) {
    let lat = rep.latency.percentiles();
    let (ring_full, fill_empty, kdropped) = kernel_sum(&rep.kernel);
    let rx_by_port: serde_json::Map<String, serde_json::Value> =
        names.iter().enumerate().map(|(i, n)| (n.clone(), json!(rep.stats.port_rx_pkts[i]))).collect();
    if as_json {
        let v = json!({
            "schema": "popgo.run/1",
            "device": device,
            "workers": opts.workers,
            "queues": opts.queues,
            "batch": opts.batch,
            "rx_packets": rep.stats.rx_pkts,
            "rx_bytes": rep.stats.rx_bytes,
            "rx_by_port": rx_by_port,
            "tx_packets": report::tx_by_port(&rep.stats, names),
            "tx_bytes": rep.stats.tx_bytes,
            "drops": report::drops_by_reason(&rep.stats),
            "balanced": rep.stats.balanced(),
            "elapsed_ns": rep.elapsed_ns,
            "mpps": if rep.elapsed_ns == 0 { 0.0 } else { rep.stats.rx_pkts as f64 * 1e3 / rep.elapsed_ns as f64 },
            "latency_ns": lat,
            "events": {
                "empty_polls": rep.stats.empty_polls, "rx_wakeups": rep.stats.rx_wakeups,
                "tx_wakeups": rep.stats.tx_wakeups, "fill_ring_starved": rep.stats.fill_ring_starved,
                "ilm_swaps_seen": rep.stats.ilm_swaps_seen,
            },
            "kernel": {"rx_ring_full": ring_full, "rx_fill_ring_empty": fill_empty, "rx_dropped": kdropped},
            "per_worker": rep.workers.iter().map(|w| json!({
                "core": w.core, "pinned": w.pinned, "rx_packets": w.stats.rx_pkts, "tx_packets": w.stats.tx_pkts,
                "dropped": w.stats.dropped_pkts(),
            })).collect::<Vec<_>>(),
        });
        println!("{v}");
    } else {
        println!("popgo run: {device}: final report ({} worker(s))", opts.workers);
        print!("{}", report::text_table(&rep.stats, names, rep.elapsed_ns, &lat));
        println!(
            "{:<24} rx_ring_full {ring_full}, fill_ring_empty {fill_empty}, fill_starved {}",
            "kernel/ring events", rep.stats.fill_ring_starved
        );
    }
}

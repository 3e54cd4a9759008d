//! The lifecycle of every forwarding mode, written once: `replay`, `run` and `bench`
//! start, supervise and stop their workers here.
//!
//! 1. **Tables.** Fixed (a plain replay or benchmark: the workers read one snapshot)
//!    or live: a QSBR [`Publisher`] whose readers the workers hold, owned by a
//!    [`ControlPlane`] on the control thread. The control thread serves the control
//!    socket when one is asked for, and re-reads the config file on SIGHUP through the
//!    same commit path as a VRP session.
//! 2. **Workers.** One scoped thread per worker, pinned to its core, creates its own
//!    backend queue (AF_XDP sockets must be created by the thread that polls them),
//!    reports ready, waits for the others, then runs [`WorkerLoop`].
//! 3. **Supervision.** The calling thread ticks every [`TICK`]: SIGINT/SIGTERM or the
//!    deadline stop the workers; a finite input ends when every worker is done; a
//!    worker of an endless mode that stops by itself (a panic) stops them all. A
//!    caller-supplied ticker prints interval stats from the stats board.
//! 4. **Stop.** The stop flag is set, each worker drains its backend and publishes its
//!    last counters, the control thread is stopped, and the merged counters come back
//!    with each worker's own.

use crate::cmd::{runtime, usage, Failure};
use crate::config::Config;
use crate::control::ControlPlane;
use crate::dataplane::{SnapshotSource, WorkerLoop};
use crate::ilm::Snapshot;
use crate::io::TxQueue;
use crate::qsbr::{Publisher, Reader};
use crate::stats::board::StatsBoard;
use crate::stats::{Latency, WorkerStats};
use anyhow::{anyhow, Context};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// How often the supervising thread looks at signals, the deadline and the workers.
pub const TICK: Duration = Duration::from_millis(20);
/// How long the engine waits for every worker to set up its backend.
const SETUP_TIMEOUT: Duration = Duration::from_secs(20);

/// Where the workers' tables come from.
// Built once per run and moved once: the size of the live variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Tables<'a> {
    /// One snapshot for the whole run.
    Fixed(&'a Snapshot),
    /// Published by a control plane.
    Live(Live),
}

/// A live control plane: the running config, the control socket, the file SIGHUP
/// re-reads.
pub struct Live {
    pub cfg: Config,
    pub socket: Option<PathBuf>,
    pub reload_from: Option<PathBuf>,
    /// A copy of the tables outside user space (the XDP offload), kept in step by the
    /// control plane.
    pub mirror: Option<Box<dyn crate::ilm::TableMirror>>,
}

/// How the workers run and when they stop.
pub struct Plan {
    pub workers: usize,
    /// Core per worker (`cores[w % len]`); empty: not pinned.
    pub cores: Vec<usize>,
    pub burst: usize,
    /// Finite input: the run ends when every worker has reached the end of its input.
    /// Endless: a worker that stops by itself stops the run.
    pub finite: bool,
    /// Stop after this long (measured from the moment every worker is ready).
    pub duration: Option<Duration>,
    /// SIGINT/SIGTERM stop the run, SIGHUP reloads (with live tables and a file).
    pub signals: bool,
    /// Serve Prometheus metrics at this address while the workers run.
    pub metrics: Option<String>,
    /// Per-LSP series the metrics serve (the busiest labels; the rest as "other").
    pub metrics_lsps: usize,
    /// Port names and device (for reports and metrics).
    pub ports: Vec<String>,
    pub device: String,
    /// `replay` or `run` (a metrics label).
    pub mode: &'static str,
}

/// One worker's share of the result.
pub struct WorkerReport<T> {
    pub stats: WorkerStats,
    pub latency: Latency,
    pub core: Option<usize>,
    pub pinned: bool,
    /// What the backend handed back when the worker stopped (e.g. kept frames).
    pub output: T,
}

/// What a run did.
pub struct Report<T> {
    /// Merged over the workers.
    pub stats: WorkerStats,
    pub latency: Latency,
    /// From the moment every worker was ready to the stop.
    pub elapsed_ns: u64,
    pub workers: Vec<WorkerReport<T>>,
    /// Workers that panicked: their counters are missing from `stats`.
    pub panicked: usize,
    /// The running config at the stop (live tables: after every commit).
    pub cfg: Option<Config>,
    /// Packets and bytes forwarded per in label over the whole run, by label (empty
    /// when the workers did not count per LSP: `lsp_counters` false).
    pub lsps: Vec<crate::stats::lsp::LspCount>,
    pub lsp_counters: bool,
    /// The FEC of each label in `lsps` that the final tables know.
    pub fecs: std::collections::HashMap<u32, String>,
}

impl<T> Report<T> {
    /// Million packets per second received (= processed).
    pub fn mpps(&self) -> f64 {
        if self.elapsed_ns == 0 {
            return 0.0;
        }
        self.stats.rx_pkts as f64 * 1e3 / self.elapsed_ns as f64
    }
}

/// What the supervising thread sees each tick.
pub struct Tick<'a> {
    pub board: &'a StatsBoard,
    /// Since every worker was ready.
    pub elapsed: Duration,
}

/// A joined worker: its report and when it stopped; `None` if it never ran (its setup
/// failed); `Err` if it panicked.
type Joined<T> = Result<Option<(WorkerReport<T>, Instant)>, ()>;

/// Builds a worker's backend queue inside the worker thread.
pub trait MakeQueue: Sync {
    type Queue: TxQueue;
    /// What the worker hands back when it stops (dropped inside the worker thread
    /// otherwise).
    type Output: Send;
    fn make(&self, worker: usize) -> Result<Self::Queue, Failure>;
    fn finish(&self, q: Self::Queue) -> Self::Output;
}

/// Runs `plan` over the queues `mk` makes, with `tables`, until it ends or is stopped.
/// `on_ready` runs once every worker's backend is up (start banners); `ticker` runs
/// every [`TICK`] while the workers forward.
pub fn forward<M: MakeQueue>(
    plan: &Plan,
    tables: Tables<'_>,
    mk: &M,
    board: Arc<StatsBoard>,
    on_ready: impl FnOnce(),
    ticker: impl FnMut(Tick<'_>),
) -> Result<Report<M::Output>, Failure> {
    if plan.signals {
        crate::sys::signal::install_handlers().context("installing signal handlers").map_err(runtime)?;
    }
    let workers = plan.workers.max(1);
    match tables {
        Tables::Fixed(snap) => {
            let _metrics = metrics_endpoint(plan, &board, None)?;
            let sources = vec![snap; workers];
            let mut r = supervise(plan, sources, Some(snap.generation), mk, &board, on_ready, ticker)?;
            r.fecs = crate::cmd::lsp_fecs(&snap.lsps, &r.lsps);
            Ok(r)
        }
        Tables::Live(live) => {
            let generation = 0;
            let t0 = std::time::Instant::now();
            let (snap, index) = crate::ilm::build_indexed(&live.cfg, generation)
                .context("building tables from the config")
                .map_err(usage)?;
            let build_ns = t0.elapsed().as_nanos() as u64;
            let publisher = Publisher::new(Box::new(snap), workers + 1);
            let readers: Vec<Reader<Snapshot>> = (0..workers).map(|_| publisher.register_reader()).collect();
            // The control plane publishes this table as its start-up commit, shared,
            // and keeps the config only as its indexed store.
            let mut plane = ControlPlane::adopt(live.cfg, publisher, index, build_ns, Arc::clone(&board), live.mirror);
            // The workers' baseline: the control socket opens before they run, so a
            // commit may land before a worker's first burst; it is still a swap.
            let start_generation = plane.current().generation;
            plane.pin_control_to(crate::sys::affinity::control_core(&plan.cores[..plan.cores.len().min(workers)]));
            if let (Some(path), true) = (live.reload_from, plan.signals) {
                plane.reload_on(path, crate::sys::signal::take_reload);
            }
            // The BGP speaker: started with the first peer, fed by the control thread
            // after every commit.
            plane.enable_bgp(crate::bgp::Options::default());
            let _metrics = metrics_endpoint(plan, &board, Some((plane.metrics(), plane.bgp_status())))?;
            let stop_ctl = Arc::new(AtomicBool::new(false));
            let handle = crate::control::server::serve(live.socket.as_deref(), plane, Arc::clone(&stop_ctl))
                .map_err(|e| usage(anyhow!("control socket: {e}")))?;
            if let Some(p) = &live.socket {
                tracing::info!("control socket {} (popgo ctl --socket {})", p.display(), p.display());
            }
            let r = supervise(plan, readers, Some(start_generation), mk, &board, on_ready, ticker);
            stop_ctl.store(true, Ordering::Release);
            let plane = handle.join().map_err(|_| runtime(anyhow!("the control thread panicked")))?;
            let mut r = r?;
            // Ports and names for the report (the routes are not needed there).
            r.cfg = Some(plane.running_head());
            r.fecs = crate::cmd::lsp_fecs(&plane.current().lsps, &r.lsps);
            Ok(r)
        }
    }
}

/// Starts the metrics endpoint when the plan asks for one (stopped when dropped).
fn metrics_endpoint(
    plan: &Plan,
    board: &Arc<StatsBoard>,
    control: Option<(Arc<crate::control::ControlMetrics>, Option<Arc<crate::bgp::Status>>)>,
) -> Result<Option<crate::metrics::Endpoint>, Failure> {
    let Some(addr) = &plan.metrics else { return Ok(None) };
    let (control, bgp) = match control {
        Some((c, b)) => (Some(c), b),
        None => (None, None),
    };
    let src = crate::metrics::Sources {
        board: Arc::clone(board),
        ports: plan.ports.clone(),
        control,
        bgp,
        lsps: plan.metrics_lsps,
        mode: plan.mode,
        device: plan.device.clone(),
    };
    let e = crate::metrics::serve(addr, src).map_err(|e| usage(anyhow!(e)))?;
    tracing::info!("metrics at http://{}/metrics", e.addr);
    Ok(Some(e))
}

/// Sets the flag when dropped.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs one worker per source over `mk`'s queues until they end or are stopped;
/// `start_generation` is the generation of the tables the sources hold at start-up
/// (see [`WorkerLoop::start_generation`]).
fn supervise<M: MakeQueue, S: SnapshotSource + Send>(
    plan: &Plan,
    sources: Vec<S>,
    start_generation: Option<u64>,
    mk: &M,
    board: &StatsBoard,
    on_ready: impl FnOnce(),
    mut ticker: impl FnMut(Tick<'_>),
) -> Result<Report<M::Output>, Failure> {
    let n = sources.len();
    // The workers' burst clock calibrates once per process (a few ms): before timing.
    popgo_core::sys::clock::calibrate();
    let stop = AtomicBool::new(false);
    // Released once every worker is set up, so they start together.
    let go = AtomicBool::new(false);
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), Failure>>();
    let mut start = Instant::now();
    let mut elapsed_ns = 0;
    let (outcomes, setup_err) = std::thread::scope(|s| {
        // Should anything below panic (a ticker, a callback), the workers are told to
        // stop as it unwinds: the scope waits for them before it resumes the panic.
        let _stop_on_unwind = StopOnDrop(&stop);
        let handles: Vec<_> = sources
            .into_iter()
            .enumerate()
            .map(|(w, mut source)| {
                let core = (!plan.cores.is_empty()).then(|| plan.cores[w % plan.cores.len()]);
                let (stop, go, ready) = (&stop, &go, ready_tx.clone());
                std::thread::Builder::new().name(format!("popgo-w{w}")).spawn_scoped(s, move || {
                    let pinned = core.is_some_and(crate::sys::affinity::pin_current);
                    let q = mk.make(w);
                    // The supervisor may have given up already; nothing to do then.
                    let _ = ready.send(
                        q.as_ref().map(|_| ()).map_err(|f| Failure { code: f.code, err: anyhow!("{:#}", f.err) }),
                    );
                    drop(ready);
                    while !go.load(Ordering::Acquire) {
                        std::thread::yield_now();
                    }
                    let mut q = q.ok()?;
                    let lp = WorkerLoop { id: w, burst: plan.burst, stop, board: Some(board), start_generation };
                    let r = lp.run(&mut q, &mut source);
                    let end = Instant::now();
                    Some((WorkerReport { stats: r.stats, latency: r.latency, core, pinned, output: mk.finish(q) }, end))
                })
            })
            .collect();
        drop(ready_tx);
        // Setup: every worker reports (or the timeout passes); then all start together.
        let deadline = Instant::now() + SETUP_TIMEOUT;
        let mut setup_err = None;
        let spawned = handles.iter().filter(|h| h.is_ok()).count();
        if spawned < n {
            setup_err = Some(runtime(anyhow!("could not spawn {} worker thread(s)", n - spawned)));
        }
        for _ in 0..spawned {
            match ready_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Ok(())) => {}
                Ok(Err(f)) => {
                    setup_err.get_or_insert(f);
                }
                Err(_) => {
                    setup_err.get_or_insert(runtime(anyhow!("a worker did not finish its setup in {SETUP_TIMEOUT:?}")));
                    break;
                }
            }
        }
        if setup_err.is_some() {
            stop.store(true, Ordering::Relaxed);
        }
        start = Instant::now();
        go.store(true, Ordering::Release);
        if setup_err.is_none() {
            on_ready();
            let handles = &handles;
            let deadline = plan.duration.and_then(|d| start.checked_add(d));
            loop {
                let all_done = handles.iter().all(|h| h.as_ref().is_ok_and(|h| h.is_finished()));
                let any_done = handles.iter().any(|h| h.as_ref().is_ok_and(|h| h.is_finished()));
                if all_done || (!plan.finite && any_done) {
                    if !plan.finite {
                        tracing::error!("a worker stopped unexpectedly; shutting down");
                    }
                    break;
                }
                if (plan.signals && crate::sys::signal::stop_requested())
                    || deadline.is_some_and(|d| Instant::now() >= d)
                {
                    break;
                }
                ticker(Tick { board, elapsed: start.elapsed() });
                std::thread::sleep(TICK);
            }
            elapsed_ns = start.elapsed().as_nanos() as u64;
        }
        stop.store(true, Ordering::Relaxed);
        let outcomes: Vec<Joined<M::Output>> = handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h.join().map_err(|_| ()),
                Err(_) => Err(()),
            })
            .collect();
        if elapsed_ns == 0 {
            elapsed_ns = start.elapsed().as_nanos() as u64;
        }
        (outcomes, setup_err)
    });
    if let Some(f) = setup_err {
        return Err(f);
    }
    let mut report = Report {
        stats: WorkerStats::default(),
        latency: Latency::new(),
        elapsed_ns,
        workers: Vec::new(),
        panicked: 0,
        cfg: None,
        lsps: Vec::new(),
        lsp_counters: false,
        fecs: Default::default(),
    };
    let mut last_end = 0;
    for o in outcomes {
        match o {
            Ok(Some((w, end))) => {
                if plan.finite {
                    // A finite input ends when its last worker does.
                    last_end = last_end.max(end.saturating_duration_since(start).as_nanos() as u64);
                }
                report.stats.merge(&w.stats);
                report.latency.merge(&w.latency);
                report.workers.push(w);
            }
            Ok(None) | Err(()) => report.panicked += 1,
        }
    }
    if plan.finite && last_end > 0 {
        report.elapsed_ns = last_end;
    }
    report.lsps = board.lsp_counts();
    report.lsp_counters = board.counts_lsps();
    Ok(report)
}

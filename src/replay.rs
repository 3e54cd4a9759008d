//! `popgo replay`: a capture through the forwarding core, with no NIC and no root.
//!
//! The capture is memory-mapped and indexed before timing starts. Each worker, pinned
//! to its core, replays its share of the bursts through the capture backend
//! (`io::capture`) in the one worker loop, started and stopped by the engine like
//! every other mode. Forwarded frames are counted, and kept when `--out-dir` is given;
//! outputs are merged by input sequence number, so the files are byte-identical
//! whatever the worker count.

use crate::cmd::{build, load_capture, load_config, runtime, usage, Failure, PaceArgs, WorkerArgs};
use crate::config::Config;
use crate::engine::{self, MakeQueue, Plan, Report, Tables};
use crate::io::capture::{BlockCursor, CaptureQueue, Count, Keep, Pace, Share, Sink};

use crate::io::pcap::{Capture, Writer};
use crate::live::Interval;
use crate::stats::board::StatsBoard;
use crate::stats::report;
use clap::Args;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Replay parameters.
#[derive(Clone, Debug)]
pub struct ReplayOpts {
    /// Passes over the input; 0 = until stopped.
    pub loops: u64,
    pub workers: usize,
    /// Core per worker (`cores[w % len]`); empty = do not pin.
    pub cores: Vec<usize>,
    pub burst: usize,
    /// Keep forwarded frames for output files.
    pub capture_output: bool,
    /// Pacing; `None` = top speed.
    pub pace: Option<Pace>,
    /// Port the capture arrives on (counted as its rx).
    pub in_port: Option<usize>,
    /// SIGINT/SIGTERM stop the replay early (and SIGHUP reloads live tables).
    pub signals: bool,
    /// Serve Prometheus metrics at this address while replaying.
    pub metrics: Option<String>,
    /// Labels served per LSP by the metrics (the busiest; the rest as "other").
    pub metrics_lsps: usize,
    /// Count packets and bytes per LSP (per-LSP report, `moves`, metrics series).
    pub lsp_counters: bool,
    /// Port names and device, for interval lines and metrics.
    pub ports: Vec<String>,
    pub device: String,
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
            in_port: None,
            signals: false,
            metrics: None,
            metrics_lsps: crate::metrics::DEFAULT_LSPS,
            lsp_counters: false,
            ports: Vec::new(),
            device: String::new(),
        }
    }
}

/// The merged result of a replay.
pub struct ReplayResult {
    pub report: Report<Option<Keep>>,
    /// Forwarded frames in input order: (sequence, port, bytes). Empty unless
    /// `capture_output` was set.
    pub outputs: Vec<(u64, u16, Vec<u8>)>,
}

impl ReplayResult {
    /// Writes `dir/<port>.pcap` for every port that transmitted, with input timestamps,
    /// in two phases so that the directory never describes two runs: every file is
    /// written in full to a temporary file in `dir` first (a failure, such as a full
    /// disk, removes them all and replaces nothing); then they are renamed into place.
    /// Ports that sent nothing get no file; with `remove_stale` an older file of theirs
    /// is removed. Should a rename or removal fail after the first rename, the error
    /// says which files are of this run and which of the previous one.
    pub fn write_outputs(
        &self,
        dir: &Path,
        port_names: &[String],
        cap: &Capture,
        remove_stale: bool,
    ) -> Result<Vec<String>, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("--out-dir {}: {e}", dir.display()))?;
        let recs = cap.records();
        // (temporary, final) per port that transmitted; the final paths of the others.
        let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
        let mut stale = Vec::new();
        for (p, name) in port_names.iter().enumerate() {
            let path = dir.join(format!("{name}.pcap"));
            if self.report.stats.port_tx_pkts.get(p).copied().unwrap_or(0) == 0 {
                if remove_stale && path.exists() {
                    stale.push(path);
                }
                continue;
            }
            let tmp = dir.join(format!(".{name}.pcap.tmp-{}", std::process::id()));
            let result = (|| {
                let file = std::fs::File::create(&tmp)?;
                let mut w = Writer::new(std::io::BufWriter::new(file)).map_err(std::io::Error::other)?;
                for (seq, _, bytes) in self.outputs.iter().filter(|o| o.1 as usize == p) {
                    let ts = recs[(*seq % recs.len() as u64) as usize].ts_ns;
                    w.write_packet(ts, bytes).map_err(std::io::Error::other)?;
                }
                let f = w.into_inner().map_err(std::io::Error::other)?.into_inner().map_err(|e| e.into_error())?;
                f.sync_all()
            })();
            staged.push((tmp, path));
            if let Err(e) = result {
                for (t, _) in &staged {
                    let _ = std::fs::remove_file(t);
                }
                let path = &staged.last().expect("just pushed").1;
                return Err(format!(
                    "--out-dir: writing {}: {e}; no output file was replaced ({} holds what it held before)",
                    path.display(),
                    dir.display()
                ));
            }
        }
        let mut done: Vec<String> = Vec::new();
        for (i, (tmp, path)) in staged.iter().enumerate() {
            if let Err(e) = std::fs::rename(tmp, path) {
                for (t, _) in &staged[i..] {
                    let _ = std::fs::remove_file(t);
                }
                let rest: Vec<String> = staged[i..].iter().map(|(_, p)| p.display().to_string()).collect();
                return Err(format!(
                    "--out-dir: renaming into {}: {e}; {} now mixes two runs: this run's {:?}, the previous run's \
                     files (if any) in place of {:?}",
                    path.display(),
                    dir.display(),
                    done,
                    rest
                ));
            }
            done.push(path.display().to_string());
        }
        for path in &stale {
            if let Err(e) = std::fs::remove_file(path) {
                return Err(format!(
                    "--out-dir: removing {} of a previous run: {e}; {} holds this run's {:?} beside it",
                    path.display(),
                    dir.display(),
                    done
                ));
            }
        }
        Ok(done)
    }
}

/// The capture queues of a replay, one per worker, each ending in a sink of type `K`.
pub struct CaptureQueues<'a, K> {
    pub cap: &'a Capture,
    pub opts: &'a ReplayOpts,
    /// Makes each worker's sink.
    pub sink: fn() -> K,
    /// The workers claim blocks of the capture from here (a fresh one per replay).
    pub cursor: &'a BlockCursor,
}

impl<'a, K: Sink + Send> MakeQueue for CaptureQueues<'a, K> {
    type Queue = CaptureQueue<'a, K>;
    type Output = K;

    fn make(&self, w: usize) -> Result<Self::Queue, Failure> {
        let o = self.opts;
        let share = Share { w, workers: o.workers.max(1), burst: o.burst, loops: o.loops };
        Ok(CaptureQueue::new(self.cap, share, (self.sink)()).claiming(self.cursor).in_port(o.in_port).paced(o.pace))
    }

    fn finish(&self, q: Self::Queue) -> K {
        q.sink
    }
}

/// The engine plan of a replay.
pub fn plan(opts: &ReplayOpts) -> Plan {
    Plan {
        workers: opts.workers.max(1),
        cores: opts.cores.clone(),
        burst: opts.burst,
        finite: opts.loops > 0,
        duration: None,
        signals: opts.signals,
        metrics: opts.metrics.clone(),
        metrics_lsps: opts.metrics_lsps,
        ports: opts.ports.clone(),
        device: opts.device.clone(),
        mode: "replay",
    }
}

/// Replays `cap` with `tables` (fixed, or live behind a control plane). `interval`
/// prints live stats lines while it runs.
pub fn replay(
    tables: Tables<'_>,
    cap: &Capture,
    opts: &ReplayOpts,
    mut interval: Option<Interval>,
) -> Result<ReplayResult, Failure> {
    let board = Arc::new(StatsBoard::with_lsp_counting(opts.workers.max(1), opts.lsp_counters));
    let plan = plan(opts);
    let ticker = |t: engine::Tick<'_>| {
        if let Some(line) = interval.as_mut().and_then(|i| i.tick(t.elapsed, t.board, &[])) {
            // A closed stdout (`| head`) must not end the replay without its report.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), format!("{line}\n").as_bytes());
        }
    };
    let report = if opts.capture_output {
        let mk = CaptureQueues { cap, opts, sink: Keep::default, cursor: &BlockCursor::default() };
        let r = engine::forward(&plan, tables, &mk, board, || {}, ticker)?;
        map_output(r, Some)
    } else {
        let mk = CaptureQueues { cap, opts, sink: || Count, cursor: &BlockCursor::default() };
        let r = engine::forward(&plan, tables, &mk, board, || {}, ticker)?;
        map_output(r, |_| None)
    };
    let mut outputs = Vec::new();
    for w in &report.workers {
        if let Some(k) = &w.output {
            outputs.extend(k.frames().map(|(r, bytes)| (r.seq, r.port, bytes.to_vec())));
        }
    }
    outputs.sort_by_key(|o| o.0);
    Ok(ReplayResult { report, outputs })
}

fn map_output<A, B>(r: Report<A>, f: impl Fn(A) -> B) -> Report<B> {
    Report {
        stats: r.stats,
        latency: r.latency,
        elapsed_ns: r.elapsed_ns,
        workers: r
            .workers
            .into_iter()
            .map(|w| engine::WorkerReport {
                stats: w.stats,
                latency: w.latency,
                core: w.core,
                pinned: w.pinned,
                output: f(w.output),
            })
            .collect(),
        panicked: r.panicked,
        cfg: r.cfg,
        lsps: r.lsps,
        lsp_counters: r.lsp_counters,
        fecs: r.fecs,
    }
}

/// `popgo replay` arguments.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The device configuration (TOML): ports, neighbors, routes, BGP networks.
    #[arg(long)]
    pub config: PathBuf,
    /// Port the capture arrives on: counted as that port's rx in the report.
    #[arg(long)]
    pub in_port: Option<String>,
    /// Write DIR/<port>.pcap for every port that transmitted (all or nothing: every
    /// file written to a temporary file first, then renamed into place). Existing files
    /// are refused unless --overwrite.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// With --out-dir: replace the pcap files of a previous run, and remove those of
    /// ports that send nothing this time (never the input capture).
    #[arg(long, requires = "out_dir")]
    pub overwrite: bool,
    /// Passes over the input (0 = until SIGINT/SIGTERM).
    #[arg(long, default_value_t = 1)]
    pub loops: u64,
    #[command(flatten)]
    pub w: WorkerArgs,
    /// Serve the control socket while replaying: the ILM can be changed with
    /// `popgo ctl` (the seed procedure works verbatim); SIGHUP re-reads the config
    /// file. Without a value: the default socket path.
    #[arg(long, num_args = 0..=1, default_missing_value = crate::control::DEFAULT_SOCKET)]
    pub control: Option<PathBuf>,
    /// One JSON object on stdout instead of the table (and JSON interval lines).
    #[arg(long)]
    pub json: bool,
    /// Print live stats every SECS seconds (0 = none; at least 0.02) while replaying: packet and bit rates,
    /// per port, drops by reason (as tcpreplay's and iperf3's interval lines).
    #[arg(long, value_name = "SECS")]
    pub stats: Option<f64>,
    /// Serve Prometheus metrics at ADDR:PORT (a bare PORT binds 127.0.0.1) while
    /// replaying: `GET /metrics`.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<String>,
    /// Per-LSP series in the metrics: the N labels with the most packets, the others
    /// summed as label="other" (bounds the series a scrape returns).
    #[arg(long, value_name = "N", default_value_t = crate::metrics::DEFAULT_LSPS)]
    pub metrics_lsps: usize,
    /// Count packets and bytes per LSP (the per-LSP report, `moves`, the per-LSP
    /// metrics). Default: on with --control or --metrics (a replay someone watches),
    /// off otherwise: over a big table the per-packet update of a label-indexed row
    /// costs a cache miss (about 0.55x the rate at 100k labels, see docs/datapath.md).
    #[arg(long, value_name = "on|off")]
    pub lsp_counters: Option<crate::cmd::OnOff>,
    #[command(flatten)]
    pub pace: PaceArgs,
    /// The capture to replay: pcap or pcapng, Ethernet or Linux cooked (tcpdump -i any).
    pub input: PathBuf,
}

/// Entry point of `popgo replay`.
pub fn main(a: ReplayArgs) -> Result<(), Failure> {
    let cores = a.w.check()?;
    let mut cfg = load_config(&a.config)?;
    let in_port = match &a.in_port {
        Some(p) => Some(cfg.port_index(p).ok_or_else(|| usage(anyhow::anyhow!("--in-port: unknown port {p:?}")))?),
        None => None,
    };
    let cap = load_capture(&a.input)?;
    let pace = a.pace.resolve(&cap)?;
    let every = match a.stats {
        Some(s) => crate::run::check_stats_secs("--stats", s).map_err(|m| usage(anyhow::anyhow!(m)))?,
        None => None,
    };
    let interval = every.map(|e| Interval::new(cfg.ports.iter().map(|p| p.name.clone()).collect(), e, a.json));
    let opts = ReplayOpts {
        loops: a.loops,
        workers: a.w.workers,
        cores,
        burst: a.w.burst,
        capture_output: a.out_dir.is_some(),
        pace,
        in_port,
        signals: true,
        metrics: a.metrics.clone(),
        metrics_lsps: a.metrics_lsps,
        lsp_counters: match a.lsp_counters {
            Some(s) => s == crate::cmd::OnOff::On,
            None => a.control.is_some() || a.metrics.is_some(),
        },
        ports: cfg.ports.iter().map(|p| p.name.clone()).collect(),
        device: cfg.device.clone(),
    };
    if let Some(dir) = &a.out_dir {
        check_out_dir(dir, &cfg, &a.input, a.overwrite)?;
        check_out_memory(&cap, a.loops)?;
        check_out_timestamps(&cap, &a.input)?;
    }
    let snap;
    let tables = match &a.control {
        None => {
            snap = build(&cfg)?;
            Tables::Fixed(&snap)
        }
        // The control plane takes the config over: a big table is not held twice.
        Some(path) => Tables::Live(engine::Live {
            mirror: None,
            cfg: {
                let head = cfg.head();
                std::mem::replace(&mut cfg, head)
            },
            socket: Some(path.clone()),
            reload_from: Some(a.config.clone()),
        }),
    };
    let res = replay(tables, &cap, &opts, interval)?;
    let cfg: Config = res.report.cfg.clone().unwrap_or(cfg);
    let stats = &res.report.stats;
    let names: Vec<String> = cfg.ports.iter().map(|p| p.name.clone()).collect();
    let written = match &a.out_dir {
        Some(dir) => res.write_outputs(dir, &names, &cap, a.overwrite).map_err(|e| runtime(anyhow::anyhow!(e)))?,
        None => Vec::new(),
    };
    let lat = res.report.latency.percentiles();
    let lsps = &res.report.lsps;
    let fec = |l: u32| res.report.fecs.get(&l).cloned();
    if a.json {
        let v = json!({
            "schema": "popgo.replay/1",
            "input": a.input.display().to_string(),
            "in_port": a.in_port,
            "records": cap.len(),
            "loops": a.loops,
            "workers": a.w.workers,
            "burst": a.w.burst,
            "rx_packets": stats.rx_pkts,
            "rx_bytes": stats.rx_bytes,
            "rx_by_port": report::rx_by_port(stats, &names),
            "tx_packets": report::tx_by_port(stats, &names),
            "tx_bytes": stats.tx_bytes,
            "drops": report::drops_by_reason(stats),
            "balanced": stats.balanced(),
            "elapsed_ns": res.report.elapsed_ns,
            "mpps": res.report.mpps(),
            "gbps": report::gbps(stats.rx_bytes, res.report.elapsed_ns),
            "latency_ns": lat,
            "lsp_counters": res.report.lsp_counters,
            "lsps": crate::stats::lsp::to_json(lsps, fec),
            "moves": crate::stats::lsp::moves_to_json(lsps, &names, fec),
            "per_worker": res.report.workers.iter().map(|w| json!({
                "core": w.core, "pinned": w.pinned, "rx_packets": w.stats.rx_pkts, "tx_packets": w.stats.tx_pkts,
                "dropped": w.stats.dropped_pkts(),
            })).collect::<Vec<_>>(),
            "outputs": written,
        });
        // A closed stdout (`| head`) loses the report, but is no panic.
        let _ = std::io::Write::write_all(&mut std::io::stdout(), format!("{v}\n").as_bytes());
    } else {
        let loops = match a.loops {
            0 => "looped until stopped".to_string(),
            n => format!("x {n} loops"),
        };
        let mut text = format!(
            "popgo replay: {} ({} records {loops}) through {} on {} worker(s)\n",
            a.input.display(),
            cap.len(),
            cfg.device,
            a.w.workers
        );
        text.push_str(&report::text_table(stats, &names, res.report.elapsed_ns, &lat));
        text.push_str(&crate::stats::lsp::to_text(lsps, crate::stats::lsp::REPORT_TOP, fec));
        text.push_str(&crate::stats::lsp::moves_to_text(lsps, &names, crate::stats::lsp::REPORT_TOP, fec));
        for w in &written {
            text.push_str(&format!("wrote {w}\n"));
        }
        let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
    }
    if res.report.panicked > 0 {
        return Err(runtime(anyhow::anyhow!("{} worker(s) panicked; their counters are missing", res.report.panicked)));
    }
    if !stats.balanced() {
        return Err(runtime(anyhow::anyhow!("accounting mismatch: rx != tx + drops")));
    }
    Ok(())
}

/// Checks the output files before anything runs: a `DIR/<port>.pcap` that exists is
/// refused unless `overwrite` (and then only if it is a pcap file, never the input
/// capture itself, whatever the flags say).
fn check_out_dir(dir: &Path, cfg: &Config, input: &Path, overwrite: bool) -> Result<(), Failure> {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata(dir).is_ok_and(|m| !m.is_dir()) {
        return Err(usage(anyhow::anyhow!("--out-dir {}: exists and is not a directory", dir.display())));
    }
    let id = |m: &std::fs::Metadata| (m.dev(), m.ino());
    let input_id = std::fs::metadata(input).ok().map(|m| id(&m));
    let mut existing = None;
    for p in &cfg.ports {
        let path = dir.join(format!("{}.pcap", p.name));
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        if Some(id(&meta)) == input_id {
            return Err(usage(anyhow::anyhow!(
                "--out-dir: {} is the input capture; refusing to overwrite it",
                path.display()
            )));
        }
        let mut magic = [0u8; 4];
        let pcap = std::fs::File::open(&path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic)).is_ok()
            && matches!(
                magic,
                [0xd4, 0xc3, 0xb2, 0xa1]
                    | [0xa1, 0xb2, 0xc3, 0xd4]
                    | [0x4d, 0x3c, 0xb2, 0xa1]
                    | [0xa1, 0xb2, 0x3c, 0x4d]
            );
        if !pcap {
            return Err(usage(anyhow::anyhow!(
                "--out-dir: {} exists and is not a pcap file; refusing to overwrite it",
                path.display()
            )));
        }
        existing.get_or_insert(path);
    }
    match existing {
        Some(path) if !overwrite => Err(usage(anyhow::anyhow!(
            "--out-dir: {} exists; --overwrite replaces the output files of a previous run",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// `--out-dir` keeps every forwarded frame in memory until the replay ends (outputs
/// are merged in input order across workers): refuse a replay whose outputs could not
/// fit, rather than fail half-way.
fn check_out_memory(cap: &Capture, loops: u64) -> Result<(), Failure> {
    if loops == 0 {
        return Err(usage(anyhow::anyhow!(
            "--out-dir needs a finite --loops: outputs are kept in memory until the end"
        )));
    }
    let per_loop: u64 = cap.records().iter().map(|r| r.caplen as u64).sum();
    let need = per_loop.saturating_mul(loops);
    let avail = mem_available().unwrap_or(4 << 30) / 2;
    if need > avail {
        return Err(usage(anyhow::anyhow!(
            "--out-dir: up to {} MiB of output frames would be kept in memory, more than half the available \
             memory ({} MiB); lower --loops",
            need >> 20,
            avail >> 20
        )));
    }
    Ok(())
}

/// The output files are classic pcap, whose record timestamps hold 32-bit seconds: an
/// input record stamped later (pcapng has 64 bits) cannot be written. Said before the
/// run, naming the record, rather than after it.
fn check_out_timestamps(cap: &Capture, input: &Path) -> Result<(), Failure> {
    match cap.records().iter().enumerate().find(|(_, r)| r.ts_ns > crate::io::pcap::MAX_TS_NS) {
        Some((i, r)) => Err(usage(anyhow::anyhow!(
            "{}: record {} (packet bytes at offset {}): timestamp {} ns is past the 32-bit seconds of the \
             pcap files --out-dir writes (year 2106)",
            input.display(),
            i + 1,
            r.offset,
            r.ts_ns
        ))),
        None => Ok(()),
    }
}

/// `MemAvailable` of /proc/meminfo, in bytes.
fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

//! Command line: clap `Args` as typed, checked into the library's options, and the
//! subcommands. Usage, config and input errors exit 2; runtime failures exit 1.

use crate::config::Config;
use crate::gen::{LabelDist, Synth};
use crate::io::pcap::Capture;
use crate::replay::{replay, ReplayOpts};
use crate::stats::report;
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "popgo", version, about = "Poll-mode MPLS forwarder: the POPGO function of a BGP LSP egress")]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Replay a pcap/pcapng through the forwarding core (no NIC, no root).
    Replay(ReplayArgs),
    /// VRP display commands, offline: `display mpls lsp protocol bgp [verbose]`,
    /// `display current-configuration`.
    Display {
        #[arg(long)]
        config: PathBuf,
        /// The display command words, e.g. `mpls lsp protocol bgp`.
        #[arg(required = true, num_args = 1..)]
        words: Vec<String>,
    },
    /// Replay INPUT with POPGO and with POP + IP lookup; report packets that change port.
    Diff {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        json: bool,
        input: PathBuf,
    },
    /// Check a config file and print a summary.
    Check {
        #[arg(long)]
        config: PathBuf,
    },
    /// Talk to a running instance's control socket (VRP commands).
    Ctl(crate::control::client::CtlArgs),
    /// Benchmark replay: repetitions, noise, latency, baselines and a regression gate.
    Bench(crate::bench::BenchArgs),
    /// Run the forwarder on real interfaces over AF_XDP (root).
    Run(crate::run::RunArgs),
    /// Generate captures: the seed scenario's, or synthetic benchmark traffic.
    Gen {
        #[command(subcommand)]
        what: GenCmd,
    },
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

/// Worker placement and burst size, shared by `replay` and `bench`.
#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Cores to pin workers to, e.g. `0,1` or `0-1` (default: highest-numbered first).
    #[arg(long)]
    pub cores: Option<String>,
    /// Packets per burst (1..=256).
    #[arg(long, default_value_t = crate::dataplane::BURST)]
    pub burst: usize,
}

impl WorkerArgs {
    /// Checks the ranges and the cores; returns the core of each worker slot.
    pub fn check(&self) -> Result<Vec<usize>, Failure> {
        if self.workers == 0 || self.workers > 256 {
            return Err(usage(anyhow::anyhow!("--workers must be in 1..=256")));
        }
        if !(1..=crate::dataplane::MAX_BURST).contains(&self.burst) {
            return Err(usage(anyhow::anyhow!("--burst must be in 1..={}", crate::dataplane::MAX_BURST)));
        }
        match &self.cores {
            Some(c) => {
                let v = crate::sys::affinity::parse_core_list(c).map_err(|e| usage(anyhow::anyhow!("--cores: {e}")))?;
                crate::sys::affinity::check_cores(&v).map_err(|e| usage(anyhow::anyhow!("--cores: {e}")))?;
                Ok(v)
            }
            None => Ok(crate::sys::affinity::default_cores(self.workers)),
        }
    }
}

/// Replay pacing, as tcpreplay spells it. The default is --topspeed.
#[derive(Args, Debug, Default, Clone)]
pub struct PaceArgs {
    /// Packets per second (all workers together).
    #[arg(long, group = "pace")]
    pub pps: Option<f64>,
    /// Megabits per second of frame bytes.
    #[arg(long, group = "pace")]
    pub mbps: Option<f64>,
    /// Follow the capture's timestamps, scaled by X (2 = twice as fast).
    #[arg(long, group = "pace")]
    pub speed: Option<f64>,
    /// As fast as possible (the default).
    #[arg(long, group = "pace")]
    pub topspeed: bool,
}

impl PaceArgs {
    /// The pacing for a capture (`--mbps` is converted with the capture's mean frame size).
    pub fn resolve(&self, cap: &Capture) -> Result<Option<crate::replay::Pace>, Failure> {
        use crate::replay::Pace;
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(v)
            } else {
                Err(usage(anyhow::anyhow!("--{name} must be a positive number")))
            }
        };
        Ok(if let Some(p) = self.pps {
            Some(Pace::Pps(positive("pps", p)?))
        } else if let Some(m) = self.mbps {
            let bytes: u64 = cap.records().iter().map(|r| r.caplen as u64).sum();
            let mean = bytes as f64 / cap.len().max(1) as f64;
            Some(Pace::Pps(positive("mbps", m)? * 1e6 / 8.0 / mean.max(1.0)))
        } else if let Some(x) = self.speed {
            Some(Pace::Speed(positive("speed", x)?))
        } else {
            None
        })
    }
}

#[derive(Subcommand, Debug)]
pub enum GenCmd {
    /// The seed capture (pcaps/seed.pcap): traffic to 10.1.1.1/.2/.3/.5 plus bad frames.
    Seed {
        #[arg(long)]
        out: PathBuf,
        /// Also print what each frame is.
        #[arg(long)]
        describe: bool,
    },
    /// Synthetic MPLS traffic, and optionally the config that forwards it.
    Synth {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        count: u64,
        /// Distinct labels, starting at --first-label.
        #[arg(long, default_value_t = 100_000)]
        labels: u32,
        #[arg(long, default_value_t = 16)]
        first_label: u32,
        /// uniform | single | zipf:EXPONENT
        #[arg(long, default_value = "uniform")]
        dist: String,
        /// Frame size in bytes (no FCS).
        #[arg(long, default_value_t = 64)]
        size: usize,
        #[arg(long, default_value_t = 0.0)]
        v6_share: f64,
        /// Label stack depth.
        #[arg(long, default_value_t = 1)]
        depth: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also write a config that forwards these labels with POPGO.
        #[arg(long)]
        config_out: Option<PathBuf>,
    },
    /// Traffic described by a profile (TOML), and optionally the config that forwards it.
    Profile(crate::bench::GenProfileArgs),
}

/// An error with its exit code.
pub struct Failure {
    pub code: u8,
    pub err: anyhow::Error,
}

/// A usage, config or input error: exit code 2.
pub fn usage(err: impl Into<anyhow::Error>) -> Failure {
    Failure { code: 2, err: err.into() }
}

/// A runtime failure: exit code 1.
pub fn runtime(err: impl Into<anyhow::Error>) -> Failure {
    Failure { code: 1, err: err.into() }
}

pub fn load_config(path: &Path) -> Result<Config, Failure> {
    Config::load(path).with_context(|| format!("config {}", path.display())).map_err(usage)
}

pub fn load_capture(path: &Path) -> Result<Capture, Failure> {
    Capture::open(path).with_context(|| format!("input {}", path.display())).map_err(usage)
}

pub fn build(cfg: &Config) -> Result<crate::ilm::Snapshot, Failure> {
    crate::ilm::build(cfg, 0).context("building tables from the config").map_err(usage)
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<(), Failure> {
    match cli.cmd {
        Cmd::Replay(a) => cmd_replay(a),
        Cmd::Display { config, words } => {
            let cfg = load_config(&config)?;
            let w: Vec<&str> = words.iter().map(String::as_str).collect();
            match w.as_slice() {
                ["mpls", "lsp", "protocol", "bgp"] => {
                    print!("{}", crate::display::mpls_lsp_bgp(&cfg, &build(&cfg)?, false))
                }
                ["mpls", "lsp", "protocol", "bgp", "verbose"] => {
                    print!("{}", crate::display::mpls_lsp_bgp(&cfg, &build(&cfg)?, true))
                }
                ["current-configuration"] => print!("{}", crate::display::current_configuration(&cfg)),
                _ => {
                    return Err(usage(anyhow::anyhow!(
                    "unknown display command {:?}; known: `mpls lsp protocol bgp [verbose]`, `current-configuration`",
                    words.join(" ")
                )))
                }
            }
            Ok(())
        }
        Cmd::Diff { config, json, input } => {
            let cfg = load_config(&config)?;
            let cap = load_capture(&input)?;
            let r = crate::diff::diff(&cfg, &cap).context("building tables").map_err(usage)?;
            if json {
                println!("{}", serde_json::to_string(&r).map_err(runtime)?);
            } else {
                print!("{}", crate::diff::text(&r));
            }
            Ok(())
        }
        Cmd::Check { config } => {
            let cfg = load_config(&config)?;
            let snap = build(&cfg)?;
            println!(
                "{}: ok: {} ports, {} neighbors, {} static routes, {} BGP LSPs, {} ILM entries",
                config.display(),
                cfg.ports.len(),
                cfg.neighbors.len(),
                cfg.static_routes.len(),
                snap.lsps.len(),
                snap.ilm.len()
            );
            Ok(())
        }
        Cmd::Run(a) => crate::run::main(a),
        Cmd::Bench(a) => crate::bench::main(a),
        Cmd::Ctl(a) => crate::control::client::ctl_main(a),
        Cmd::Gen { what } => cmd_gen(what),
    }
}

fn cmd_replay(a: ReplayArgs) -> Result<(), Failure> {
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
    use crate::ilm::swap::Publisher;
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

fn cmd_gen(what: GenCmd) -> Result<(), Failure> {
    match what {
        GenCmd::Profile(a) => crate::bench::gen_profile(a),
        GenCmd::Seed { out, describe } => {
            let frames = crate::gen::seed_frames();
            let pkts = frames.iter().enumerate().map(|(i, f)| (crate::gen::EPOCH_NS + i as u64 * 1_000_000, &f.frame));
            crate::io::pcap::write_file(&out, pkts).map_err(runtime)?;
            println!("wrote {}: {} frames", out.display(), frames.len());
            if describe {
                for (i, f) in frames.iter().enumerate() {
                    println!("{:>3}  {}", i + 1, f.what);
                }
            }
            Ok(())
        }
        GenCmd::Synth { out, count, labels, first_label, dist, size, v6_share, depth, seed, config_out } => {
            let dist = match dist.as_str() {
                "uniform" => LabelDist::Uniform,
                "single" => LabelDist::Single,
                z if z.starts_with("zipf:") => LabelDist::Zipf(
                    z[5..].parse().map_err(|_| usage(anyhow::anyhow!("--dist: bad zipf exponent in {z:?}")))?,
                ),
                other => return Err(usage(anyhow::anyhow!("--dist: {other:?} is not uniform, single or zipf:S"))),
            };
            let s = Synth { count, labels, first_label, dist, size, v6_share, depth, seed };
            s.check().map_err(|e| usage(anyhow::anyhow!(e)))?;
            let file = std::fs::File::create(&out).with_context(|| out.display().to_string()).map_err(runtime)?;
            let mut w = crate::io::pcap::Writer::new(std::io::BufWriter::new(file)).map_err(runtime)?;
            let mut err = None;
            s.generate(|i, f| {
                if err.is_none() {
                    err = w.write_packet(crate::gen::EPOCH_NS + i * 1000, f).err();
                }
            })
            .map_err(|e| usage(anyhow::anyhow!(e)))?;
            if let Some(e) = err {
                return Err(runtime(e));
            }
            w.into_inner().map_err(runtime)?;
            println!("wrote {}: {count} frames of {size} B, {labels} labels from {first_label}", out.display());
            if let Some(c) = config_out {
                let text = crate::gen::synth_config(first_label, labels, 4, 16, v6_share > 0.0);
                std::fs::write(&c, text).with_context(|| c.display().to_string()).map_err(runtime)?;
                println!("wrote {}", c.display());
            }
            Ok(())
        }
    }
}

/// Entry point used by `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("popgo: error: {:#}", f.err);
            ExitCode::from(f.code)
        }
    }
}

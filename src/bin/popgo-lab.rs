//! `popgo-lab`: AF_XDP traffic tools for the veth lab and the root tests (needs root).
//! `send` a pcap, `gen` 64-byte MPLS frames at full speed, `sink` (count and drop),
//! `dump-prog` (print the MPLS redirect program). Logic lives in `popgo::run::lab`.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "popgo-lab", version, about = "AF_XDP lab traffic tools for popgo (root)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Send the records of a pcap out of an interface.
    Send {
        #[arg(long)]
        iface: String,
        #[arg(long, default_value_t = 1)]
        repeat: u64,
        /// Microseconds between frames (0 = as fast as possible).
        #[arg(long, default_value_t = 0)]
        gap_us: u64,
        pcap: PathBuf,
    },
    /// Blast 64-byte MPLS frames (label --label, bottom of stack) out of an interface.
    Gen {
        #[arg(long)]
        iface: String,
        /// Destination MAC (the forwarder's port).
        #[arg(long)]
        dst: String,
        #[arg(long, default_value_t = 48122)]
        label: u32,
        #[arg(long, default_value_t = 16)]
        flows: u16,
        #[arg(long, default_value_t = 8.0)]
        secs: f64,
        #[arg(long, default_value_t = u64::MAX)]
        count: u64,
        #[arg(long)]
        core: Option<usize>,
        #[arg(long)]
        tx_budget: Option<u32>,
        /// Send from the kernel (XDP live frames: an XDP_TX program run by
        /// BPF_PROG_TEST_RUN), not from an AF_XDP socket: several times faster.
        #[arg(long)]
        live: bool,
    },
    /// Count and drop frames arriving on an interface (XDP), one line per second.
    Sink {
        #[arg(long)]
        iface: String,
        #[arg(long, default_value_t = 10)]
        secs: u64,
        /// Kernel name of the XDP program (15 bytes at most). popgo replaces only
        /// programs named `popgo_*`; another name stands for another application's.
        #[arg(long, default_value = "popgo_sink")]
        prog_name: String,
    },
    /// Forward every frame from --iface out of --to in the kernel (XDP, MACs
    /// rewritten, devmap redirect): the reference for `popgo run --offload xdp`.
    Redirect {
        #[arg(long)]
        iface: String,
        #[arg(long)]
        to: String,
        /// Destination MAC written into every frame.
        #[arg(long)]
        dst: String,
        /// Source MAC written into every frame (default: --to's own).
        #[arg(long)]
        src: Option<String>,
        #[arg(long, default_value_t = 10)]
        secs: u64,
    },
    /// The cost of per-LSP counting in the offload program: BPF_PROG_TEST_RUN
    /// durations of the program for --config's tables without and with it, over the
    /// frames of PCAP it forwards, interleaved (root; nothing is attached).
    ProgCost {
        #[arg(long)]
        config: std::path::PathBuf,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Runs of each forwarded frame per variant and round.
        #[arg(long, default_value_t = 20000)]
        samples: usize,
        pcap: std::path::PathBuf,
    },
    /// Print the MPLS redirect program listing (`--offload`: the offload program's).
    DumpProg {
        #[arg(long)]
        offload: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .try_init();
    if let Err(e) = popgo::sys::signal::install_handlers() {
        eprintln!("popgo-lab: error: signal handlers: {e}");
        return ExitCode::from(1);
    }
    let _ = popgo::sys::rlimit::raise_memlock();
    let r = match cli.cmd {
        Cmd::Send { iface, repeat, gap_us, pcap } => {
            popgo::run::lab::send(&iface, &pcap, repeat, Duration::from_micros(gap_us)).map(|_| ())
        }
        Cmd::Gen { iface, dst, label, flows, secs, count, core, tx_budget, live } => popgo::run::lab::parse_mac(&dst)
            .and_then(|dst| {
                popgo::run::lab::gen(&popgo::run::lab::GenOpts {
                    iface,
                    dst,
                    label,
                    flows,
                    secs,
                    count,
                    core,
                    tx_budget,
                    live,
                })
            })
            .map(|_| ()),
        Cmd::Sink { iface, secs, prog_name } => {
            popgo::run::lab::sink(&iface, secs, &prog_name, &AtomicBool::new(false)).map(|_| ())
        }
        Cmd::Redirect { iface, to, dst, src, secs } => (|| {
            let dst = popgo::run::lab::parse_mac(&dst)?;
            let src = match src {
                Some(s) => popgo::run::lab::parse_mac(&s)?,
                None => popgo::run::lab::iface_mac(&to)?,
            };
            popgo::run::lab::redirect(&iface, &to, dst, src, secs)
        })(),
        Cmd::ProgCost { config, rounds, samples, pcap } => popgo::run::lab::prog_cost(&config, &pcap, rounds, samples)
            .map(|c| {
                let ratios: Vec<String> = c.round_ratios.iter().map(|r| format!("{r:.3}")).collect();
                println!(
                    "offload program, {} runs per variant: without per-LSP counting {:.1} ns, with {:.1} ns \
                     (mean of the fastest 99%), ratio {:.3}; per round {}",
                    c.runs,
                    c.without_ns,
                    c.with_ns,
                    c.with_ns / c.without_ns.max(1.0),
                    ratios.join(", ")
                );
                println!("one read of the per-LSP counters: {:.1} ms ({} labels)", c.read_ms, c.read_labels);
            }),
        Cmd::DumpProg { offload } => {
            let p = if offload {
                let m = popgo::offload::ProgramMaps {
                    labels: -1,
                    adjs: -1,
                    ports: -1,
                    counters: -1,
                    xsks: -1,
                    lsps: Some(-1),
                };
                popgo::offload::offload_program(&m, 0, popgo::io::xdp::XDP_PASS, popgo::offload::FrameLen::Subtract)
            } else {
                popgo::io::xdp::mpls_redirect_program(-1, popgo::io::xdp::XDP_PASS)
            };
            print!("{}", popgo::io::xdp::listing(&p));
            Ok(())
        }
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("popgo-lab: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

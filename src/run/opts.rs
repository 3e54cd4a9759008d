//! `popgo run` options: the command line and its checked form.

use crate::cmd::{usage, Failure};
use crate::dataplane::{BURST, MAX_BURST};
use crate::io::afxdp::tx::TX_DRAIN;
use crate::io::afxdp::{BindMode, KickPolicy};
use anyhow::anyhow;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// Longest `--duration` and `--stats-interval` accepted: ten years, far inside what
/// `Duration` and `Instant` arithmetic can hold.
pub const MAX_SECS: f64 = 10.0 * 365.0 * 86400.0;
/// Shortest stats interval (`run --stats-interval`, `replay --stats`): the supervisor
/// looks at the board every [`crate::engine::TICK`], so shorter lines cannot come.
pub const MIN_STATS_SECS: f64 = 0.02;

/// `SECS` of a stats interval option: 0 (none) or in `MIN_STATS_SECS..=MAX_SECS`.
pub fn check_stats_secs(opt: &str, secs: f64) -> Result<Option<Duration>, String> {
    if secs == 0.0 {
        return Ok(None);
    }
    if !(secs.is_finite() && (MIN_STATS_SECS..=MAX_SECS).contains(&secs)) {
        return Err(format!("{opt} {secs}: want 0 (no interval lines) or seconds in {MIN_STATS_SECS}..={MAX_SECS}"));
    }
    Ok(Some(Duration::from_secs_f64(secs)))
}

/// Default ring size (fill, completion, RX and TX; entries).
pub const DEFAULT_RING_SIZE: u32 = 2048;
/// Default fill and RX ring size: deep enough to hold what a sender delivers while
/// the worker is busy transmitting or the sender pauses (on the veth lab 16384 forwards
/// 1.21x what 2048 does: docs/run.md).
pub const DEFAULT_RX_RING_SIZE: u32 = 16384;
/// Largest fill and RX ring size accepted (128 MiB of frames per socket).
const MAX_RX_RING_SIZE: u32 = 65536;

/// What `--offload` moves into the kernel.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offload {
    /// The XDP program forwards bottom-of-stack POPGO IPv4/IPv6 frames itself (label
    /// pop, TTL, checksum, new Ethernet header, devmap redirect) and sends the rest to
    /// the AF_XDP workers.
    Xdp,
}

/// `popgo run` arguments.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// The device configuration (TOML); every port with `iface = ...` is attached.
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
    /// TX and completion ring size per socket (power of two, 64..=16384).
    #[arg(long, default_value_t = DEFAULT_RING_SIZE)]
    pub ring_size: u32,
    /// Fill and RX ring size per socket (power of two, 64..=65536): frames the kernel
    /// can hand over while the worker is busy; each socket's memory area grows with it
    /// (2 KiB per frame).
    #[arg(long, default_value_t = DEFAULT_RX_RING_SIZE)]
    pub rx_ring_size: u32,
    /// Require zero-copy AF_XDP (fails on drivers without it, e.g. veth).
    #[arg(long, conflicts_with = "copy")]
    pub zero_copy: bool,
    /// Force copy-mode AF_XDP.
    #[arg(long)]
    pub copy: bool,
    /// Attach the XDP program in generic (SKB) mode instead of native.
    #[arg(long)]
    pub xdp_generic: bool,
    /// Forward the common case in the kernel: `xdp` (POPGO, bottom of stack, IPv4 or
    /// IPv6, live TTL); everything else still goes to the AF_XDP workers.
    #[arg(long, value_enum)]
    pub offload: Option<Offload>,
    /// Replace an XDP program that another application attached to a port's
    /// interface (without it, popgo replaces only its own programs and refuses).
    #[arg(long)]
    pub force: bool,
    /// Seconds between one-line stats (0 = none; at least 0.02).
    #[arg(long, default_value_t = 1.0)]
    pub stats_interval: f64,
    /// Stats lines and the final report as JSON lines.
    #[arg(long)]
    pub json_stats: bool,
    /// Stop by itself after this many seconds.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Longest a partial TX batch waits, in µs.
    #[arg(long, default_value_t = TX_DRAIN.as_micros() as u64)]
    pub tx_drain_us: u64,
    /// Raise the copy-mode TX frames per kick (`XDP_MAX_TX_SKB_BUDGET`, kernel >= 6.17).
    #[arg(long)]
    pub tx_budget: Option<u32>,
    /// TX wakeups: `always` (whenever frames are in flight) or `backlog`.
    #[arg(long, default_value = "always")]
    pub kick: String,
    /// Serve the control socket at PATH: `popgo ctl --socket PATH` changes labels,
    /// routes, networks and pop-go live (the seed procedure works verbatim). Without a
    /// value: /run/popgo/control.sock.
    #[arg(long, num_args = 0..=1, default_missing_value = crate::control::DEFAULT_SOCKET)]
    pub control: Option<PathBuf>,
    /// Serve Prometheus metrics at ADDR:PORT (a bare PORT binds 127.0.0.1):
    /// `GET /metrics`.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<String>,
    /// Per-LSP series in the metrics: the N labels with the most packets, the others
    /// summed as label="other" (bounds the series a scrape returns).
    #[arg(long, value_name = "N", default_value_t = crate::metrics::DEFAULT_LSPS)]
    pub metrics_lsps: usize,
    /// Count packets and bytes per LSP (the per-LSP report, `moves`, the per-LSP
    /// metrics); default on (its cost per packet is small next to an AF_XDP copy).
    #[arg(long, value_name = "on|off", default_value = "on")]
    pub lsp_counters: crate::cmd::OnOff,
}

/// Checked options of a run (everything but the config).
#[derive(Clone, Debug)]
pub struct RunOpts {
    pub workers: usize,
    pub cores: Vec<usize>,
    pub queues: u32,
    pub batch: usize,
    pub ring_size: u32,
    pub rx_ring_size: u32,
    pub mode: BindMode,
    pub xdp_native: bool,
    pub offload: Option<Offload>,
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
            rx_ring_size: DEFAULT_RX_RING_SIZE,
            mode: BindMode::Auto,
            xdp_native: true,
            offload: None,
            tx_drain: TX_DRAIN,
            tx_budget: None,
            kick: KickPolicy::Always,
        }
    }
}

pub(super) fn bad(msg: String) -> Failure {
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
        if !a.rx_ring_size.is_power_of_two() || !(64..=MAX_RX_RING_SIZE).contains(&a.rx_ring_size) {
            return Err(bad(format!(
                "--rx-ring-size {} is not a power of two in 64..={MAX_RX_RING_SIZE}",
                a.rx_ring_size
            )));
        }
        check_stats_secs("--stats-interval", a.stats_interval).map_err(bad)?;
        if let Some(d) = a.duration {
            if !(d.is_finite() && d > 0.0 && d <= MAX_SECS) {
                return Err(bad(format!("--duration must be a number of seconds in (0, {MAX_SECS}]")));
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
        if let Some(w) = crate::sys::affinity::shared_core_warning(a.workers, &cores) {
            tracing::warn!("{w}");
        }
        Ok(RunOpts {
            workers: a.workers,
            cores,
            queues: a.queues,
            batch: a.batch,
            ring_size: a.ring_size,
            rx_ring_size: a.rx_ring_size,
            mode: if a.zero_copy {
                BindMode::ZeroCopy
            } else if a.copy {
                BindMode::Copy
            } else {
                BindMode::Auto
            },
            xdp_native: !a.xdp_generic,
            offload: a.offload,
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

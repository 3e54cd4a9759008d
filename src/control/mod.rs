//! The live control plane: a VRP command subset with views and a two-stage commit,
//! driving RCU-style publication of the forwarding [`Snapshot`].
//!
//! The control thread owns the running [`Config`], the [`Publisher`] of snapshots and
//! a [`BuildIndex`]. Sessions (one per socket connection) edit a private candidate; the
//! data path does not change until `commit`, which applies the session's pending lines
//! to the running config as one unit, builds the new snapshot (incrementally through
//! `ilm::patch` when it can, in full otherwise), publishes it with one pointer swap,
//! waits out the grace period and frees the old snapshot on this thread. Workers never
//! lock, wait or free anything for this.
//!
//! It must not run on a worker core's hot path; it allocates freely.
//!
//! # Socket protocol (`popgo ctl`, or `socat - UNIX-CONNECT:PATH`)
//!
//! Line based, UTF-8, over a Unix stream socket (mode 0600).
//!
//! * Request: one command line, terminated by `\n` (at most [`MAX_LINE_BYTES`]).
//! * Reply: zero or more body lines, then exactly one **end line** that starts with a
//!   dot: `.ok PROMPT`, `.error PROMPT` or `.bye` (the server then closes the
//!   connection, after `quit` in the user view). A body line that itself starts with a
//!   dot is sent with one more leading dot (SMTP-style dot-stuffing), so the end line
//!   is unambiguous. `PROMPT` is the VRP prompt of the session's view after the
//!   command: `<DeviceC>`, `[DeviceC]` or `[DeviceC-bgp]`.
//! * On connect the server sends a greeting reply (`.ok <DeviceC>`).
//! * Error bodies start with `Error: line N` where N counts the lines this connection
//!   sent (from 1), followed by the line itself, so a scripted session knows which line
//!   failed. A failed line changes nothing.
//! * A peer that disconnects mid-line has its partial line discarded, unexecuted; its
//!   uncommitted lines are dropped with its session.

pub mod client;
mod commit;
mod error;
mod render;
pub mod server;
mod session;
mod stats;
mod store;
pub mod vrp;
mod vrp_vpn;

pub use crate::config::edit::Edit;
pub use client::{ctl_main, CtlArgs};
pub use commit::{BuildKind, CommitReport};
pub use error::CommitError;
pub use server::{serve, serve_with, ControlError, Limits};
pub use session::Session;
pub use stats::{ControlMetrics, ControlStats};
pub use vrp::{Cmd, Display, View};

use crate::config::Config;
use crate::ilm::{BuildIndex, Snapshot, TableMirror};
use crate::qsbr::Publisher;
use crate::stats::board::StatsBoard;
use std::cell::OnceCell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use store::Store;

/// Where `popgo run` / `popgo replay --control` listen and `popgo ctl` connects by
/// default.
pub const DEFAULT_SOCKET: &str = "/run/popgo/control.sock";

/// Replaced snapshots that may wait for their grace period at once; a commit past
/// that is refused (see `ControlPlane::room_to_retire`).
pub const MAX_RETIRED: usize = 8;

/// Longest request line accepted (bytes, without the newline): VRP lines are short;
/// the bound keeps a misbehaving peer from growing a buffer without limit.
pub const MAX_LINE_BYTES: usize = 4096;

/// The answer to one command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub ok: bool,
    pub text: String,
    /// The session ended (`quit` in the user view): the server closes the connection.
    pub close: bool,
    /// Body lines produced after the reply left the control thread (before `text`):
    /// a big display streamed by the connection thread (see [`ControlPlane::exec_stream`]).
    pub stream: Option<Stream>,
}

/// A body streamed line by line into a consumer: a display rendered from a shared
/// snapshot, so the control thread neither builds the text nor waits for the peer.
#[derive(Clone)]
pub struct Stream(Arc<StreamFn>);

type StreamFn = dyn Fn(&mut dyn FnMut(&str) -> std::io::Result<()>) -> std::io::Result<()> + Send + Sync;

impl Stream {
    /// Writes the body: each line (without its newline) to `out`.
    pub fn run(&self, out: &mut dyn FnMut(&str) -> std::io::Result<()>) -> std::io::Result<()> {
        (self.0)(out)
    }
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stream")
    }
}

impl PartialEq for Stream {
    fn eq(&self, o: &Stream) -> bool {
        Arc::ptr_eq(&self.0, &o.0)
    }
}

impl Eq for Stream {}

impl Reply {
    pub(super) fn ok(text: impl Into<String>) -> Reply {
        Reply { ok: true, text: text.into(), close: false, stream: None }
    }

    pub(super) fn err(text: impl Into<String>) -> Reply {
        Reply { ok: false, text: text.into(), close: false, stream: None }
    }

    /// The reply with its stream (if any) rendered into `text`.
    pub fn materialize(mut self) -> Reply {
        if let Some(st) = self.stream.take() {
            let mut body = String::new();
            let _ = st.run(&mut |l| {
                body.push_str(l);
                body.push('\n');
                Ok(())
            });
            body.push_str(&self.text);
            self.text = body;
        }
        self
    }
}

/// The control plane: running config, publication, stats. Single-threaded: one control
/// thread owns it (see [`serve`]) and runs every session's lines in arrival order.
pub struct ControlPlane {
    /// The running configuration, indexed (see `store`).
    running: Store,
    /// `running` as a `Config`, materialized on demand (`display`, [`Self::running`]).
    running_cfg: OnceCell<Config>,
    publisher: Publisher<Snapshot>,
    board: Arc<StatsBoard>,
    port_names: Vec<String>,
    index: BuildIndex,
    /// Generation of the running config == of the published snapshot.
    generation: u64,
    /// Commit statistics, shared with the metrics endpoint.
    stats: Arc<ControlMetrics>,
    next_session: AtomicU64,
    reload_from: Option<(PathBuf, ReloadCheck)>,
    /// The BGP speaker the commits feed (live modes), and whether it has the table
    /// (it gets it with the first peer, then each commit's changes).
    speaker: Option<crate::bgp::Speaker>,
    /// The speaker's settings and status when this mode runs BGP (see
    /// [`Self::enable_bgp`]).
    bgp: Option<(crate::bgp::Options, Arc<crate::bgp::Status>)>,
    /// The XDP offload's copy of the tables, updated before every publication.
    mirror: Option<Box<dyn TableMirror>>,
    /// The core the control thread pins itself to (see `sys::affinity::control_core`).
    pub(crate) control_core: Option<usize>,
}

/// Polled by the control thread: true when the config file should be re-read.
type ReloadCheck = Box<dyn FnMut() -> bool + Send>;

impl ControlPlane {
    /// Takes over `publisher` (whose readers the workers hold). Builds and publishes the
    /// full table of `cfg` once, which is measured and reported as the full-table cost;
    /// if `cfg` does not build, the published snapshot is left alone and the first
    /// commit fails until the config is fixed.
    pub fn new(cfg: Config, publisher: Publisher<Snapshot>, board: Arc<StatsBoard>) -> ControlPlane {
        Self::with_mirror(cfg, publisher, board, None)
    }

    /// [`Self::new`] with a mirror of the tables (the XDP offload) that every commit,
    /// the first one included, updates before the workers see the new snapshot.
    pub fn with_mirror(
        cfg: Config,
        publisher: Publisher<Snapshot>,
        board: Arc<StatsBoard>,
        mirror: Option<Box<dyn TableMirror>>,
    ) -> ControlPlane {
        let mut plane = ControlPlane::empty(&cfg, publisher, board, mirror);
        if let Err(e) = plane.install_full(cfg) {
            tracing::error!("control: initial build failed: {e}");
        }
        plane
    }

    /// Takes over `publisher`, whose current snapshot and `index` were built from `cfg`
    /// by the caller (in `build_ns`): publishes that table again as the start-up commit,
    /// sharing all of it, instead of building it a second time. The start-up of a big
    /// table then holds one table, not two (see docs/datapath.md, memory). `mirror` as
    /// in [`Self::with_mirror`].
    pub fn adopt(
        cfg: Config,
        publisher: Publisher<Snapshot>,
        index: BuildIndex,
        build_ns: u64,
        board: Arc<StatsBoard>,
        mirror: Option<Box<dyn TableMirror>>,
    ) -> ControlPlane {
        let mut plane = ControlPlane::empty(&cfg, publisher, board, mirror);
        let t0 = Instant::now();
        plane.running = Store::from_config(&cfg);
        drop(cfg);
        plane.index = index;
        let snap = plane.publisher.current().share(plane.generation + 1);
        let t0 = t0.checked_sub(std::time::Duration::from_nanos(build_ns)).unwrap_or(t0);
        plane.publish(snap, BuildKind::Full, 0, t0, build_ns);
        plane
    }

    /// A plane whose running config is `cfg` without routes and networks.
    fn empty(
        cfg: &Config,
        publisher: Publisher<Snapshot>,
        board: Arc<StatsBoard>,
        mirror: Option<Box<dyn TableMirror>>,
    ) -> ControlPlane {
        let generation = publisher.current().generation;
        ControlPlane {
            port_names: cfg.ports.iter().map(|p| p.name.clone()).collect(),
            running: Store::head_only(cfg),
            running_cfg: OnceCell::new(),
            publisher,
            board,
            index: BuildIndex::default(),
            generation,
            stats: Arc::new(ControlMetrics::new(generation)),
            next_session: AtomicU64::new(1),
            reload_from: None,
            speaker: None,
            bgp: None,
            mirror,
            control_core: None,
        }
    }

    /// Runs the control thread (and the connection threads it starts, which inherit its
    /// placement) on `core`, away from the workers' cores.
    pub fn pin_control_to(&mut self, core: Option<usize>) {
        self.control_core = core;
    }

    /// Re-reads `path` and commits it as one unit whenever `due()` returns true (the
    /// control thread polls it between commands, e.g. `crate::sys::signal::take_reload`
    /// for SIGHUP).
    pub fn reload_on(&mut self, path: PathBuf, due: impl FnMut() -> bool + Send + 'static) {
        self.reload_from = Some((path, Box::new(due)));
    }

    /// A new session in the user view.
    pub fn new_session(&self) -> Session {
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        Session { id, view: View::User, ctx: String::new(), lines: 0, pending: Vec::new(), candidate: None }
    }

    /// The running configuration (materialized from the index on first use after a
    /// commit: O(routes)).
    pub fn running(&self) -> &Config {
        self.running_cfg.get_or_init(|| self.running.to_config())
    }

    /// The running configuration without its routes and networks (device, ports,
    /// neighbors, BGP header and peers): cheap at any table size.
    pub fn running_head(&self) -> Config {
        self.running.head().clone()
    }

    /// The published snapshot.
    pub fn current(&self) -> &Snapshot {
        self.publisher.current()
    }

    /// The publisher (e.g. to register more readers).
    pub fn publisher(&self) -> &Publisher<Snapshot> {
        &self.publisher
    }

    /// The prompt of `s`'s view.
    pub fn prompt(&self, s: &Session) -> String {
        s.view.prompt_in(self.running.device(), &s.ctx)
    }

    /// The greeting sent when a connection opens.
    pub fn greeting(&self) -> Reply {
        Reply::ok(format!(
            "popgo control plane: {} (generation {}). Type system-view to configure; commit applies.",
            self.running.device(),
            self.generation
        ))
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_vpn;

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
pub mod server;
mod store;
pub mod vrp;
mod vrp_vpn;

use crate::config::edit as rules;
pub use crate::config::edit::Edit;
pub use client::{ctl_main, CtlArgs};
pub use server::{serve, serve_with, ControlError, Limits};
pub use vrp::{Cmd, Display, View};

use crate::config::edit::ConfigEdit;
use crate::config::{Config, Network};
use crate::ilm::{build_indexed, patch, BuildIndex, Snapshot, TableMirror};
use crate::qsbr::{PublishReport, Publisher};
use crate::stats::board::StatsBoard;
use crate::stats::report::flat_counters;
use std::cell::OnceCell;
use std::fmt::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use store::{Cand, Overlay, Store};

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
    fn ok(text: impl Into<String>) -> Reply {
        Reply { ok: true, text: text.into(), close: false, stream: None }
    }

    fn err(text: impl Into<String>) -> Reply {
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

/// How a commit built its snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildKind {
    /// `ilm::patch`: copy the ILM, patch entries, share the rest.
    Incremental,
    /// `ilm::build_indexed` over the whole config.
    Full,
}

impl BuildKind {
    pub fn name(self) -> &'static str {
        match self {
            BuildKind::Incremental => "incremental",
            BuildKind::Full => "full",
        }
    }
}

/// What one commit cost. Durations in nanoseconds, measured on the control thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitReport {
    /// Generation of the published snapshot.
    pub generation: u64,
    pub kind: BuildKind,
    /// Pending lines the commit applied.
    pub changes: usize,
    /// Routes and networks in the committed config (table size).
    pub routes: usize,
    /// Building the snapshot (patch or full build).
    pub build_ns: u64,
    /// Bringing the XDP offload's tables to the snapshot (0 without offload).
    pub mirror_ns: u64,
    /// Pointer swap + epoch bump + fence.
    pub publish_ns: u64,
    /// Waiting for the grace period of the replaced snapshot.
    pub grace_ns: u64,
    /// Freeing reclaimed snapshots.
    pub reclaim_ns: u64,
    /// Whole commit: apply, build, publish, grace, reclaim, bookkeeping.
    pub total_ns: u64,
    pub grace_complete: bool,
    pub pending_retired: usize,
}

impl CommitReport {
    fn line(&self) -> String {
        format!(
            "generation {}: {} change(s), {} build {:.1} us,{} publish {:.1} us, grace {:.1} us, reclaim {:.1} us, \
             total {:.1} us{}",
            self.generation,
            self.changes,
            self.kind.name(),
            us(self.build_ns),
            if self.mirror_ns > 0 { format!(" offload tables {:.1} us,", us(self.mirror_ns)) } else { String::new() },
            us(self.publish_ns),
            us(self.grace_ns),
            us(self.reclaim_ns),
            us(self.total_ns),
            if self.grace_complete { String::new() } else { format!(", {} retired pending", self.pending_retired) }
        )
    }
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1e3
}

/// Commit counters for `display popgo statistics`.
#[derive(Clone, Debug, Default)]
pub struct CommitStats {
    pub commits: u64,
    pub incremental: u64,
    pub full: u64,
    pub failed: u64,
    pub last: Option<CommitReport>,
    /// The last full-table build and publication (at start, on reload, or a commit that
    /// could not be patched).
    pub last_full: Option<CommitReport>,
    /// Largest total commit time seen.
    pub max_total_ns: u64,
}

/// The control plane's figures as the metrics endpoint shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ControlFigures {
    pub generation: u64,
    pub incremental: u64,
    pub full: u64,
    pub failed: u64,
    pub last_build_ns: u64,
    pub last_publish_ns: u64,
    pub last_grace_ns: u64,
    pub last_reclaim_ns: u64,
    pub last_total_ns: u64,
    pub max_total_ns: u64,
    /// Replaced snapshots still waiting for their grace period.
    pub retired: usize,
}

/// [`ControlFigures`] shared with the metrics endpoint: the control thread stores them
/// between commands; a scrape reads them. Never touched by a worker.
#[derive(Debug, Default)]
pub struct ControlMetrics(std::sync::Mutex<ControlFigures>);

impl ControlMetrics {
    pub fn read(&self) -> ControlFigures {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn store(&self, f: ControlFigures) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = f;
    }
}

/// One uncommitted line of a session.
#[derive(Clone, Debug)]
struct Pending {
    line: u64,
    text: String,
    edit: Edit,
    /// The line changes the candidate it was last checked against. A line that
    /// changes nothing (it matches the running config) is kept too: should another
    /// session's commit change that part first, it applies again at commit.
    effective: bool,
}

/// A connection's state: its view and its uncommitted lines.
#[derive(Debug)]
pub struct Session {
    id: u64,
    view: View,
    /// The VPN instance or interface the view is of (empty otherwise).
    ctx: String,
    lines: u64,
    pending: Vec<Pending>,
    /// `pending` as an overlay on the running config of generation `.0`, rebuilt
    /// lazily when another commit moved the running config on.
    candidate: Option<(u64, Overlay)>,
}

impl Session {
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn view(&self) -> View {
        self.view
    }

    /// Number of uncommitted lines that change the candidate.
    pub fn pending(&self) -> usize {
        self.pending.iter().filter(|p| p.effective).count()
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
    stats: CommitStats,
    next_session: AtomicU64,
    reload_from: Option<(PathBuf, ReloadCheck)>,
    metrics: Arc<ControlMetrics>,
    /// The BGP speaker the commits feed (live modes), and whether it has the table
    /// (it gets it with the first peer, then each commit's changes).
    speaker: Option<crate::bgp::Speaker>,
    speaker_fed: bool,
    /// The XDP offload's copy of the tables, updated before every publication.
    mirror: Option<Box<dyn TableMirror>>,
    /// Total times of incremental commits, in microseconds (percentiles in `display
    /// popgo statistics`).
    commit_us: hdrhistogram::Histogram<u64>,
    /// The core the control thread pins itself to (see `sys::affinity::control_core`).
    pub(crate) control_core: Option<usize>,
}

fn new_commit_histogram() -> hdrhistogram::Histogram<u64> {
    // 1 us .. 1000 s, 3 significant digits.
    hdrhistogram::Histogram::new_with_bounds(1, 1_000_000_000, 3).expect("valid histogram bounds")
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
            stats: CommitStats::default(),
            next_session: AtomicU64::new(1),
            reload_from: None,
            metrics: Arc::default(),
            speaker: None,
            speaker_fed: false,
            mirror,
            commit_us: new_commit_histogram(),
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

    /// Hands the BGP speaker to the plane: it advertises the running config now and
    /// after every commit.
    pub fn attach_speaker(&mut self, sp: crate::bgp::Speaker) {
        self.speaker = Some(sp);
        self.advertise(None);
    }

    /// The speaker's session status (for the metrics endpoint), if one runs.
    pub fn bgp_status(&self) -> Option<Arc<crate::bgp::Status>> {
        self.speaker.as_ref().map(crate::bgp::Speaker::status)
    }

    /// Tells the speaker what a commit changed: the peers and settings of the running
    /// config and the routes whose label differs between the `old` LSP table and the
    /// published one (O(changed chunks), see `LspTable::diff`). Until a peer is
    /// configured the speaker gets nothing (a peerless instance holds no second copy
    /// of the table); with the first one it gets the whole table.
    fn advertise(&mut self, old: Option<&crate::ilm::LspTable>) {
        let Some(sp) = &self.speaker else { return };
        let head = self.running.head();
        let lsps = &self.publisher.current().lsps;
        // VPN instances' routes go out as VPNv4/VPNv6 routes (their prefixes carry the
        // VRF: `Family::of`).
        let changes: crate::bgp::Changes = match old {
            Some(old) if self.speaker_fed => lsps.diff(old),
            _ => {
                if head.bgp.as_ref().is_none_or(|b| b.peers.is_empty()) {
                    return;
                }
                self.speaker_fed = true;
                lsps.iter().map(|r| (r.fec, Some(r.in_label))).collect()
            }
        };
        sp.update(crate::bgp::Adverts::of(head, changes));
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

    pub fn stats(&self) -> &CommitStats {
        &self.stats
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

    /// Housekeeping between commands: frees retired snapshots whose grace period has
    /// passed, and reloads the config file when asked to.
    pub fn tick(&mut self) {
        if self.publisher.pending_retired() > 0 {
            self.publisher.try_reclaim();
        }
        self.sync_metrics();
        let due = self.reload_from.as_mut().is_some_and(|(_, due)| due());
        if due {
            let path = self.reload_from.as_ref().map(|(p, _)| p.clone()).unwrap_or_default();
            // A FIFO or a device would block this thread in open() or never end.
            let regular = match std::fs::metadata(&path) {
                Ok(m) if !m.is_file() => Err(format!("{}: not a regular file", path.display())),
                _ => Ok(()),
            };
            match regular.and_then(|_| Config::load(&path).map_err(|e| e.to_string())).and_then(|c| self.reload(c)) {
                Ok(r) => tracing::info!("control: reloaded {}: {}", path.display(), r.line()),
                Err(e) => tracing::warn!("control: reload of {} failed, running config kept: {e}", path.display()),
            }
        }
    }

    /// Replaces the whole running config as one commit (SIGHUP). What VRP edits can
    /// express (routes, networks, labels, pop-go) goes through the incremental commit
    /// path; other changes rebuild the tables in full. Sessions keep their pending
    /// lines; they are re-applied onto the new config at their commit.
    pub fn reload(&mut self, cfg: Config) -> Result<CommitReport, String> {
        let ports = |c: &Config| c.ports.iter().map(|p| (p.name.clone(), p.iface.clone())).collect::<Vec<_>>();
        if ports(&cfg) != ports(self.running()) {
            return Err("the ports or their interfaces changed: restart popgo to change them (labels, routes, \
                        networks, neighbors and pop-go apply live)"
                .into());
        }
        match rules::edits_between(self.running(), &cfg) {
            // Labels, routes, networks and pop-go: the commit path of a VRP session.
            Some(edits) => {
                let mut ov = Overlay::default();
                for e in &edits {
                    rules::apply(&mut Cand { run: &self.running, ov: &mut ov }, e)?;
                }
                self.install_edits(&ov, edits)
            }
            // Neighbors, TTL mode, AS number, label base: a full build.
            None => self.install_full(cfg),
        }
    }

    /// Runs one line of session `s`; the reply carries all of its text.
    pub fn exec(&mut self, s: &mut Session, line: &str) -> Reply {
        self.exec_stream(s, line).materialize()
    }

    /// Runs one line of session `s`. A long display comes back as a [`Stream`] that the
    /// caller runs after this returns (on another thread if it likes): it reads a
    /// snapshot shared at this point, so later commits do not change it.
    pub fn exec_stream(&mut self, s: &mut Session, line: &str) -> Reply {
        s.lines += 1;
        let n = s.lines;
        let fail = |msg: &str| Reply::err(format!("Error: line {n} ({:?}): {msg}", line.trim()));
        // `display ... | include REGEX | count`: the filter goes with the display.
        let (line_cmd, filter) = match line.trim_start().get(..7) {
            Some(w) if w.eq_ignore_ascii_case("display") && line.contains('|') => {
                match crate::display::Filter::split(line) {
                    Ok(x) => x,
                    Err(e) => return fail(&e),
                }
            }
            _ => (line, crate::display::Filter::default()),
        };
        let cmd = match vrp::parse_in(s.view, &s.ctx, line_cmd) {
            Ok(c) => c,
            Err(e) => return fail(&e),
        };
        match cmd {
            Cmd::Nothing => Reply::ok(""),
            Cmd::SystemView => {
                s.view = View::System;
                Reply::ok("Enter system view, return user view with return command.")
            }
            Cmd::Family(v) => {
                s.view = v;
                Reply::ok("")
            }
            Cmd::Quit => match s.view {
                View::System => {
                    s.view = View::User;
                    Reply::ok(self.uncommitted_note(s))
                }
                View::User => Reply { ok: true, text: self.uncommitted_note(s), close: true, stream: None },
                v => {
                    s.view = v.up();
                    if !matches!(s.view, View::VpnInstance) {
                        s.ctx.clear();
                    }
                    Reply::ok("")
                }
            },
            Cmd::Return => {
                s.view = View::User;
                s.ctx.clear();
                Reply::ok(self.uncommitted_note(s))
            }
            Cmd::ClearCandidate => {
                let k = s.pending();
                s.pending.clear();
                s.candidate = None;
                Reply::ok(format!("Info: {k} uncommitted line(s) discarded."))
            }
            Cmd::Bgp(asn) => match self.edit(s, n, line, Edit::CreateBgp(asn)) {
                Ok(()) => {
                    s.view = View::Bgp;
                    Reply::ok("")
                }
                Err(e) => fail(&e),
            },
            Cmd::Edit(mut e) => {
                match &mut e {
                    Edit::AddNetwork(x) => x.line = n as usize,
                    Edit::AddRoute(x) => x.line = n as usize,
                    Edit::PeerAs { line, .. } => *line = n as usize,
                    _ => {}
                }
                match self.edit(s, n, line, e) {
                    Ok(()) => Reply::ok(""),
                    Err(e) => fail(&e),
                }
            }
            Cmd::Edits(es) => self.edits(s, n, line, es).map_or_else(|e| fail(&e), |_| Reply::ok("")),
            Cmd::EditEnter(e, v, ctx) => match self.edit(s, n, line, e) {
                Ok(()) => {
                    (s.view, s.ctx) = (v, ctx);
                    Reply::ok("")
                }
                Err(e) => fail(&e),
            },
            Cmd::Enter(v, ctx) => {
                let head = match self.candidate(s) {
                    Ok(ov) => Cand { run: &self.running, ov }.vpn_head(),
                    Err(e) => return fail(&e),
                };
                if v == View::Interface && self.running.head().port_index(&ctx).is_none() {
                    return fail(&format!("unknown interface {ctx}"));
                }
                if v == View::Mpls && head.mpls.is_none() {
                    return fail("configure the LSR ID first (`mpls lsr-id X`)");
                }
                (s.view, s.ctx) = (v, ctx);
                Reply::ok("")
            }
            Cmd::VpnRoute { name, prefix, next_hop, add } => {
                let edits = match self.vpn_route_edits(s, &name, prefix, next_hop, add) {
                    Ok(es) => es,
                    Err(e) => return fail(&e),
                };
                self.edits(s, n, line, edits).map_or_else(|e| fail(&e), |_| Reply::ok(""))
            }
            Cmd::VpnNetwork { name, prefix, add } => {
                let vrf = match self.candidate(s) {
                    Ok(ov) => Cand { run: &self.running, ov }
                        .vpn_head()
                        .instances
                        .iter()
                        .find(|v| v.name == name)
                        .map(|v| v.id),
                    Err(e) => return fail(&e),
                };
                let Some(vrf) = vrf else { return fail(&format!("VPN instance {name} does not exist")) };
                let p = prefix.in_vrf(vrf);
                let e = if add {
                    Edit::AddNetwork(Network { prefix: p, label: None, line: n as usize })
                } else {
                    Edit::DelNetwork(p)
                };
                self.edit(s, n, line, e).map_or_else(|e| fail(&e), |_| Reply::ok(""))
            }
            Cmd::UndoRoutes(p) => {
                let nhs: Vec<_> = match self.candidate(s) {
                    Ok(ov) => Cand { run: &self.running, ov }.next_hops(p),
                    Err(e) => return fail(&e),
                };
                if nhs.is_empty() {
                    return fail(&format!("no static route to {p}"));
                }
                // All or nothing: apply to a copy of the candidate's overlay first.
                let mut probe = match self.candidate(s) {
                    Ok(ov) => ov.clone(),
                    Err(e) => return fail(&e),
                };
                for nh in &nhs {
                    if let Err(e) =
                        rules::apply(&mut Cand { run: &self.running, ov: &mut probe }, &Edit::DelRoute(p, *nh))
                    {
                        return fail(&e);
                    }
                }
                for nh in nhs {
                    if let Err(e) = self.edit(s, n, line, Edit::DelRoute(p, nh)) {
                        return fail(&e);
                    }
                }
                Reply::ok("")
            }
            Cmd::Commit => match self.commit(s) {
                Ok(Some(r)) => Reply::ok(format!("Info: commit ok: {}", r.line())),
                Ok(None) => Reply::ok("Info: no uncommitted configuration."),
                Err(e) => Reply::err(e),
            },
            Cmd::Display(d) => self.display(s, d, filter),
        }
    }

    fn uncommitted_note(&self, s: &Session) -> String {
        if s.pending() == 0 {
            String::new()
        } else {
            format!(
                "Info: {} uncommitted line(s) kept in this session; commit them from the system view, or they are \
                 discarded when the session ends.",
                s.pending()
            )
        }
    }

    /// The overlay of the session's candidate config, (re)built from the pending lines
    /// if missing or based on an older generation.
    fn candidate<'a>(&self, s: &'a mut Session) -> Result<&'a mut Overlay, String> {
        if s.candidate.as_ref().is_none_or(|(g, _)| *g != self.generation) {
            let mut ov = Overlay::default();
            for p in &mut s.pending {
                p.effective = rules::apply(&mut Cand { run: &self.running, ov: &mut ov }, &p.edit).map_err(|e| {
                    format!(
                        "line {} ({:?}) no longer applies to the running configuration (generation {}): {e}",
                        p.line, p.text, self.generation
                    )
                })?;
            }
            s.candidate = Some((self.generation, ov));
        }
        Ok(&mut s.candidate.as_mut().expect("candidate set above").1)
    }

    /// The route edits of `[undo] ip route-static vpn-instance NAME ...`: the prefix in
    /// the instance's table; an undo without a next hop removes every route to it.
    fn vpn_route_edits(
        &self,
        s: &mut Session,
        name: &str,
        prefix: crate::config::Prefix,
        next_hop: Option<std::net::IpAddr>,
        add: bool,
    ) -> Result<Vec<Edit>, String> {
        let ov = self.candidate(s)?;
        let cand = Cand { run: &self.running, ov };
        let vrf = cand.vpn_head().instances.iter().find(|v| v.name == name).map(|v| v.id);
        let p = prefix.in_vrf(vrf.ok_or_else(|| format!("VPN instance {name} does not exist"))?);
        Ok(match (add, next_hop) {
            (true, Some(nh)) => {
                vec![Edit::AddRoute(crate::config::StaticRoute { prefix: p, next_hop: nh, line: s.lines as usize })]
            }
            (false, Some(nh)) => vec![Edit::DelRoute(p, nh)],
            (_, None) => {
                let nhs = cand.next_hops(p);
                if nhs.is_empty() {
                    return Err(format!("no static route to {prefix} in VPN instance {name}"));
                }
                nhs.into_iter().map(|nh| Edit::DelRoute(p, nh)).collect()
            }
        })
    }

    /// Checks `edits` in order against a copy of the candidate, then keeps them all as
    /// pending (all or nothing).
    fn edits(&self, s: &mut Session, n: u64, line: &str, edits: Vec<Edit>) -> Result<(), String> {
        let mut probe = self.candidate(s)?.clone();
        for e in &edits {
            rules::apply(&mut Cand { run: &self.running, ov: &mut probe }, e)?;
        }
        for e in edits {
            self.edit(s, n, line, e)?;
        }
        Ok(())
    }

    /// Checks `e` against the candidate and keeps it as pending.
    fn edit(&self, s: &mut Session, n: u64, line: &str, e: Edit) -> Result<(), String> {
        let ov = self.candidate(s)?;
        let effective = rules::apply(&mut Cand { run: &self.running, ov }, &e)?;
        s.pending.push(Pending { line: n, text: line.trim().to_string(), edit: e, effective });
        Ok(())
    }

    /// Commits the session's pending lines as one unit. `Ok(None)`: nothing to commit.
    pub fn commit(&mut self, s: &mut Session) -> Result<Option<CommitReport>, String> {
        if s.pending.is_empty() {
            return Ok(None);
        }
        let ov = match self.candidate(s) {
            Ok(_) => s.candidate.take().expect("candidate exists").1,
            Err(e) => {
                self.stats.failed += 1;
                return Err(format!("Error: commit failed: {e}; nothing was committed"));
            }
        };
        let pending = std::mem::take(&mut s.pending);
        let edits: Vec<Edit> = pending.iter().filter(|p| p.effective).map(|p| p.edit.clone()).collect();
        if edits.is_empty() {
            s.candidate = Some((self.generation, Overlay::default()));
            return Ok(None);
        }
        match self.install_edits(&ov, edits) {
            Ok(r) => {
                s.candidate = Some((self.generation, Overlay::default()));
                Ok(Some(r))
            }
            Err(e) => {
                self.stats.failed += 1;
                s.pending = pending;
                let first = s.pending.first().map_or(0, |p| p.line);
                Err(format!(
                    "Error: commit failed: {e}; nothing was committed (pending lines {first}..={} kept; \
                     `clear configuration candidate` drops them)",
                    s.lines
                ))
            }
        }
    }

    /// Builds and publishes the whole of `cfg` and makes it the running config (start,
    /// reload). On a build error nothing changes.
    fn install_full(&mut self, cfg: Config) -> Result<CommitReport, String> {
        self.room_to_retire()?;
        let t0 = Instant::now();
        let next_gen = self.generation + 1;
        let (snap, idx) = build_indexed(&cfg, next_gen).map_err(|e| e.to_string())?;
        self.index = idx;
        let build_ns = t0.elapsed().as_nanos() as u64;
        // The config is not kept: the store is the running config, and a big table is
        // held once (a `Config` is materialized again only when asked for).
        self.running = Store::from_config(&cfg);
        drop(cfg);
        self.running_cfg = OnceCell::new();
        Ok(self.publish(snap, BuildKind::Full, 0, t0, build_ns))
    }

    /// Applies the checked overlay `ov` (the session's `edits`) to the running config,
    /// builds the new snapshot (patched when it can be, in full otherwise) and publishes
    /// it. On a build error the running config is restored.
    fn install_edits(&mut self, ov: &Overlay, edits: Vec<Edit>) -> Result<CommitReport, String> {
        self.room_to_retire()?;
        let t0 = Instant::now();
        let next_gen = self.generation + 1;
        let undo = self.running.commit(ov);
        let delta = crate::ilm::Delta::of_edits(&edits);
        let patched = patch(self.publisher.current(), &mut self.index, &self.running, &delta, next_gen);
        let (snap, kind) = match patched {
            Some(snap) => (snap, BuildKind::Incremental),
            None => {
                let cfg = self.running.to_config();
                match build_indexed(&cfg, next_gen) {
                    Ok((snap, idx)) => {
                        self.index = idx;
                        (snap, BuildKind::Full)
                    }
                    Err(e) => {
                        self.running.undo(undo);
                        // The index may have been half-patched: rebuild it from the
                        // running config (rare: the candidate was checked line by line).
                        if let Ok((_, idx)) = build_indexed(self.running(), self.generation) {
                            self.index = idx;
                        }
                        return Err(e.to_string());
                    }
                }
            }
        };
        self.running_cfg = OnceCell::new();
        let build_ns = t0.elapsed().as_nanos() as u64;
        Ok(self.publish(snap, kind, edits.len(), t0, build_ns))
    }

    /// The figures the metrics endpoint reads (updated by [`Self::tick`]).
    pub fn metrics(&self) -> Arc<ControlMetrics> {
        self.sync_metrics();
        Arc::clone(&self.metrics)
    }

    fn sync_metrics(&self) {
        let st = &self.stats;
        let last = st.last.unwrap_or(CommitReport {
            generation: self.generation,
            kind: BuildKind::Full,
            changes: 0,
            routes: 0,
            build_ns: 0,
            mirror_ns: 0,
            publish_ns: 0,
            grace_ns: 0,
            reclaim_ns: 0,
            total_ns: 0,
            grace_complete: true,
            pending_retired: 0,
        });
        self.metrics.store(ControlFigures {
            generation: self.generation,
            incremental: st.incremental,
            full: st.full,
            failed: st.failed,
            last_build_ns: last.build_ns,
            last_publish_ns: last.publish_ns,
            last_grace_ns: last.grace_ns,
            last_reclaim_ns: last.reclaim_ns,
            last_total_ns: last.total_ns,
            max_total_ns: st.max_total_ns,
            retired: self.publisher.pending_retired(),
        });
    }

    /// Replaced snapshots wait for every worker to pass a quiescent state before they
    /// are freed. A stalled worker would let them pile up, one per commit: past
    /// [`MAX_RETIRED`] commits are refused until it moves again, so memory stays
    /// bounded.
    fn room_to_retire(&mut self) -> Result<(), String> {
        if self.publisher.pending_retired() >= MAX_RETIRED {
            self.publisher.try_reclaim();
        }
        if self.publisher.pending_retired() >= MAX_RETIRED {
            return Err(format!(
                "{} replaced tables still wait for a worker that has not passed a quiescent state (a stalled \
                 worker?); try again later",
                self.publisher.pending_retired()
            ));
        }
        Ok(())
    }

    /// Publishes `snap` (generation + 1), waits out the grace period, frees the old
    /// snapshot and accounts for the commit.
    fn publish(&mut self, snap: Snapshot, kind: BuildKind, changes: usize, t0: Instant, build_ns: u64) -> CommitReport {
        // The offload's tables first (offload, "Update order"): a packet the kernel
        // forwards follows the old or the new label value; one that reaches a worker
        // follows the snapshot the worker holds, old or new.
        let tm = Instant::now();
        if let Some(m) = self.mirror.as_mut() {
            m.update(&snap);
        }
        let mirror_ns = if self.mirror.is_some() { tm.elapsed().as_nanos() as u64 } else { 0 };
        let old_lsps = Arc::clone(&self.publisher.current().lsps);
        let pr: PublishReport = self.publisher.publish(Box::new(snap));
        self.generation += 1;
        // BGP: the changes go to the speaker's thread; counted in the commit's total.
        self.advertise(Some(&old_lsps));
        drop(old_lsps);
        let r = CommitReport {
            generation: self.generation,
            kind,
            changes,
            routes: self.running.size(),
            build_ns,
            mirror_ns,
            publish_ns: pr.publish_ns,
            grace_ns: pr.grace_ns,
            reclaim_ns: pr.reclaim_ns,
            total_ns: t0.elapsed().as_nanos() as u64,
            grace_complete: pr.grace_complete,
            pending_retired: pr.pending_retired,
        };
        self.stats.commits += 1;
        match kind {
            BuildKind::Incremental => {
                self.stats.incremental += 1;
                let _ = self.commit_us.record((r.total_ns / 1000).max(1));
            }
            BuildKind::Full => {
                self.stats.full += 1;
                self.stats.last_full = Some(r);
            }
        }
        self.stats.max_total_ns = self.stats.max_total_ns.max(r.total_ns);
        self.stats.last = Some(r);
        r
    }

    fn display(&mut self, s: &mut Session, d: Display, filter: crate::display::Filter) -> Reply {
        let text = |render: &dyn Fn(&mut crate::display::Lines<'_, std::convert::Infallible>)| {
            Reply::ok(crate::display::to_string(&filter, render))
        };
        match d {
            Display::MplsLspBgp { verbose } => {
                // Streamed from a snapshot shared now (reference counts, no copy).
                let snap = self.publisher.current().share(self.generation);
                let names = crate::display::Names::of(self.running.head());
                let stream = move |out: &mut dyn FnMut(&str) -> std::io::Result<()>| {
                    let mut lines = crate::display::Lines::new(&filter, out);
                    crate::display::write_mpls_lsp_bgp(&mut lines, &names, &snap, verbose);
                    lines.finish()
                };
                Reply { stream: Some(Stream(Arc::new(stream))), ..Reply::ok("") }
            }
            Display::CurrentConfiguration => {
                let run = &self.running;
                text(&|out| crate::display::write_current_configuration(out, run.head(), run.networks(), run.routes()))
            }
            Display::CandidateConfiguration => match self.candidate(s) {
                Ok(_) => {
                    // The running config with the pending lines applied (they were
                    // just checked to apply).
                    let mut c = self.running.to_config();
                    for p in &s.pending {
                        let _ = rules::apply(&mut c, &p.edit);
                    }
                    text(&|out| {
                        crate::display::write_current_configuration(
                            out,
                            &c,
                            c.bgp.iter().flat_map(|b| b.networks.iter().cloned()),
                            c.static_routes.iter().cloned(),
                        )
                    })
                }
                Err(e) => Reply::err(format!("Error: line {}: {e}", s.lines)),
            },
            Display::VpnInstance { verbose } => {
                let head = self.running.head();
                let routes: Vec<_> = self.running.routes().filter(|r| r.prefix.vrf != 0).collect();
                let mut c = head.clone();
                c.static_routes = routes;
                text(&|out| crate::display::write_vpn_instance(out, &c, verbose))
            }
            Display::StaticLsp => {
                let head = self.running.head();
                text(&|out| crate::display::write_static_lsp(out, head))
            }
            Display::LspStatistics { in_label } => {
                if !self.board.counts_lsps() {
                    return Reply::err("Error: per-LSP counting is off (--lsp-counters off)");
                }
                let snap = self.publisher.current().share(self.generation);
                let names = crate::display::Names::of(self.running.head());
                let q = crate::display::LspStatsQuery { in_label };
                let f = crate::display::lsp_statistics_stream(Arc::clone(&self.board), snap, names, q, filter);
                Reply { stream: Some(Stream(Arc::new(f))), ..Reply::ok("") }
            }
            Display::Statistics => {
                let st = self.statistics();
                text(&|out| {
                    let _ = out.write_str(&st);
                })
            }
            Display::BgpPeer => match &self.speaker {
                Some(sp) => {
                    let t = sp.status().display_peer();
                    text(&|out| {
                        let _ = out.write_str(&t);
                    })
                }
                None => Reply::err("Error: no BGP speaker runs in this mode"),
            },
            Display::BgpRoutingTableLabel(f) => match &self.speaker {
                Some(sp) => {
                    let t = sp.status().display_routing_table(f);
                    text(&|out| {
                        let _ = out.write_str(&t);
                    })
                }
                None => Reply::err("Error: no BGP speaker runs in this mode"),
            },
        }
    }

    /// `display popgo statistics`: data path counters from the stats board (per port,
    /// per drop reason, per worker) and the control plane's commit and swap costs.
    pub fn statistics(&self) -> String {
        let mut s = String::new();
        let total = self.board.total();
        let _ =
            writeln!(s, "Data path ({} worker(s), counters as last published by each worker)", self.board.workers());
        for (name, v) in flat_counters(&total, &self.port_names) {
            let _ = writeln!(s, "  {name:<32} {v:>16}");
        }
        let in_flight = total.rx_pkts as i128 - total.tx_pkts as i128 - total.dropped_pkts() as i128;
        let _ = writeln!(s, "  {:<32} {:>16}", "rx - tx - drops", in_flight);
        if let Some(o) = self.board.offload() {
            let _ =
                writeln!(s, "  xdp offload: rx_pkts {} tx_pkts {} dropped {}", o.rx_pkts, o.tx_pkts, o.dropped_pkts());
        }
        for w in 0..self.board.workers() {
            let ws = self.board.read(w);
            let _ = writeln!(
                s,
                "  worker.{w}: rx_pkts {} tx_pkts {} dropped {} bursts {} ilm_swaps_seen {}",
                ws.rx_pkts,
                ws.tx_pkts,
                ws.dropped_pkts(),
                ws.bursts,
                ws.ilm_swaps_seen
            );
        }
        // Live per-LSP counts (a scan of the workers' tables: milliseconds, not a commit's
        // microseconds; displays only), named by the published LSP table.
        let lsps = self.board.lsp_counts();
        let fecs = crate::cmd::lsp_fecs(&self.current().lsps, &lsps);
        let lsp_text = crate::stats::lsp::to_text(&lsps, crate::stats::lsp::REPORT_TOP, |l| fecs.get(&l).cloned());
        for line in lsp_text.lines() {
            let _ = writeln!(s, "  {line}");
        }
        let st = &self.stats;
        let _ = writeln!(s, "Control plane");
        let _ = writeln!(s, "  generation {}, epoch {}", self.generation, self.publisher.epoch());
        let _ = writeln!(
            s,
            "  commits {} (incremental {}, full {}), failed {}, max commit {:.1} us",
            st.commits,
            st.incremental,
            st.full,
            st.failed,
            us(st.max_total_ns)
        );
        let _ = writeln!(s, "  retired snapshots pending {}", self.publisher.pending_retired());
        if let Some(m) = &self.mirror {
            let _ = writeln!(s, "  {}", m.summary());
        }
        let mut row = |what: &str, r: Option<CommitReport>| {
            let Some(r) = r else {
                let _ = writeln!(s, "  {what}: none");
                return;
            };
            let _ = writeln!(s, "  {what}: {} ({} routes+networks)", r.line(), r.routes);
            for (k, v) in [
                ("build_ns", r.build_ns),
                ("mirror_ns", r.mirror_ns),
                ("publish_ns", r.publish_ns),
                ("grace_ns", r.grace_ns),
                ("reclaim_ns", r.reclaim_ns),
                ("total_ns", r.total_ns),
            ] {
                let _ = writeln!(s, "    {k:<14} {v:>12}");
            }
        };
        row("last commit", st.last);
        row("last full-table build", st.last_full);
        let h = &self.commit_us;
        if h.is_empty() {
            let _ = writeln!(s, "  incremental commit total: none");
        } else {
            let _ = writeln!(
                s,
                "  incremental commit total: p50 {} us, p99 {} us, max {} us ({} commits)",
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.max(),
                h.len()
            );
        }
        let snap = self.publisher.current();
        let (ilm, fib, lsp) = snap.heap_bytes();
        let (store, index) = (self.running.heap_bytes(), self.index.heap_bytes());
        let routes = self.running.size().max(1) / 2;
        let _ = writeln!(
            s,
            "  memory: config store {} KiB, build index {} KiB, ILM {} KiB, FIB {} KiB, LSP table {} KiB \
             ({} bytes per labelled route)",
            store / 1024,
            index / 1024,
            ilm / 1024,
            fib / 1024,
            lsp / 1024,
            (store + index + ilm + fib + lsp) / routes.max(1)
        );
        if let Some(sp) = &self.speaker {
            s.push_str(&sp.status().statistics());
        }
        s
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_vpn;

//! Commits: a session's pending lines, a reload or the start-up table applied to the
//! running config, built, published and accounted for; what each commit cost; the
//! changes handed to the BGP speaker.

use super::store::{Cand, Overlay, Store};
use super::{CommitError, ControlPlane, Edit, Session, MAX_RETIRED};
use crate::config::edit as rules;
use crate::config::Config;
use crate::ilm::{build_indexed, patch, Snapshot};
use crate::qsbr::PublishReport;
use std::cell::OnceCell;
use std::sync::Arc;
use std::time::Instant;

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
    /// The control thread's BGP work: the LSP tables' diff and the hand-off to the
    /// speaker (0 without a speaker). The speaker's own thread then applies the
    /// changes to its table (`display popgo statistics`, BGP speaker) and each
    /// session writes its UPDATEs: after the commit returns, so not in `total_ns`.
    pub bgp_ns: u64,
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
    pub(super) fn line(&self) -> String {
        format!(
            "generation {}: {} change(s), {} build {:.1} us,{} publish {:.1} us, grace {:.1} us, reclaim {:.1} us,{} \
             total {:.1} us{}",
            self.generation,
            self.changes,
            self.kind.name(),
            us(self.build_ns),
            if self.mirror_ns > 0 { format!(" offload tables {:.1} us,", us(self.mirror_ns)) } else { String::new() },
            us(self.publish_ns),
            us(self.grace_ns),
            us(self.reclaim_ns),
            if self.bgp_ns > 0 { format!(" bgp {:.1} us,", us(self.bgp_ns)) } else { String::new() },
            us(self.total_ns),
            if self.grace_complete { String::new() } else { format!(", {} retired pending", self.pending_retired) }
        )
    }
}

pub(super) fn us(ns: u64) -> f64 {
    ns as f64 / 1e3
}

impl ControlPlane {
    /// Lets the plane run a BGP speaker with `opts` (live modes): it starts with the
    /// first configured peer (now, or at the commit that adds one) and then advertises
    /// the running config and every commit's changes. Without a peer no speaker thread
    /// runs.
    pub fn enable_bgp(&mut self, opts: crate::bgp::Options) {
        self.bgp = Some((opts, Arc::default()));
        self.advertise(None);
    }

    /// The speaker's session status (for the metrics endpoint and the displays) when
    /// BGP is enabled, before the speaker starts too.
    pub fn bgp_status(&self) -> Option<Arc<crate::bgp::Status>> {
        self.bgp.as_ref().map(|(_, st)| Arc::clone(st))
    }

    /// Whether the speaker runs (a peer was configured).
    pub fn speaker_running(&self) -> bool {
        self.speaker.is_some()
    }

    /// Tells the speaker what a commit changed: the peers and settings of the running
    /// config and the routes whose label differs between the `old` LSP table and the
    /// published one (O(changed chunks), see `LspTable::diff`). Until a peer is
    /// configured no speaker runs (a peerless instance holds no second copy of the
    /// table and no thread); with the first one it starts and gets the whole table.
    /// Once started it runs until the plane is dropped.
    pub(super) fn advertise(&mut self, old: Option<(&crate::ilm::LspTable, BuildKind)>) {
        let Some((opts, status)) = &self.bgp else { return };
        let head = self.running.head();
        let lsps = &self.publisher.current().lsps;
        // VPN instances' routes go out as VPNv4/VPNv6 routes (their prefixes carry the
        // VRF: `Family::of`).
        let (sp, changes): (_, crate::bgp::Changes) = match (&self.speaker, old) {
            // A patched table kept its rows' order: the ordered walk, even when no
            // chunk is shared (a table of one chunk).
            (Some(sp), Some((old, BuildKind::Incremental))) => (sp, lsps.diff_patched(old)),
            (Some(sp), Some((old, BuildKind::Full))) => (sp, lsps.diff(old)),
            (Some(_), None) => return,
            (None, _) => {
                if head.bgp.as_ref().is_none_or(|b| b.peers.is_empty()) {
                    return;
                }
                match crate::bgp::Speaker::start_with(*opts, Arc::clone(status)) {
                    Ok(sp) => self.speaker = Some(sp),
                    Err(e) => {
                        tracing::error!("bgp: cannot start the speaker: {e}");
                        return;
                    }
                }
                let sp = self.speaker.as_ref().expect("started above");
                (sp, lsps.iter().map(|r| (r.fec, Some(r.in_label))).collect())
            }
        };
        sp.update(crate::bgp::Adverts::of(head, changes));
    }

    /// Housekeeping between commands: frees retired snapshots whose grace period has
    /// passed, and reloads the config file when asked to.
    pub fn tick(&mut self) {
        if self.publisher.pending_retired() > 0 {
            self.publisher.try_reclaim();
        }
        self.sync_stats();
        let due = self.reload_from.as_mut().is_some_and(|(_, due)| due());
        if due {
            let path = self.reload_from.as_ref().map(|(p, _)| p.clone()).unwrap_or_default();
            // A FIFO or a device would block this thread in open() or never end.
            let regular = match std::fs::metadata(&path) {
                Ok(m) if !m.is_file() => Err(format!("{}: not a regular file", path.display())),
                _ => Ok(()),
            };
            let loaded = regular.and_then(|_| Config::load(&path).map_err(|e| e.to_string()));
            match loaded.and_then(|c| self.reload(c).map_err(|e| e.to_string())) {
                Ok(r) => tracing::info!("control: reloaded {}: {}", path.display(), r.line()),
                Err(e) => tracing::warn!("control: reload of {} failed, running config kept: {e}", path.display()),
            }
        }
    }

    /// Replaces the whole running config as one commit (SIGHUP). What VRP edits can
    /// express (routes, networks, labels, pop-go) goes through the incremental commit
    /// path; other changes rebuild the tables in full. Sessions keep their pending
    /// lines; they are re-applied onto the new config at their commit.
    pub fn reload(&mut self, cfg: Config) -> Result<CommitReport, CommitError> {
        let ports = |c: &Config| c.ports.iter().map(|p| (p.name.clone(), p.iface.clone())).collect::<Vec<_>>();
        if ports(&cfg) != ports(self.running()) {
            return Err(CommitError::PortsChanged);
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

    /// Commits the session's pending lines as one unit. `Ok(None)`: nothing to commit.
    pub fn commit(&mut self, s: &mut Session) -> Result<Option<CommitReport>, CommitError> {
        if s.pending.is_empty() {
            return Ok(None);
        }
        let ov = match self.candidate(s) {
            Ok(_) => s.candidate.take().expect("candidate exists").1,
            Err(e) => {
                self.count_failed();
                return Err(e);
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
                self.count_failed();
                s.pending = pending;
                Err(e)
            }
        }
    }

    /// The reply text of a failed commit of `s`.
    pub(super) fn commit_failure(&self, s: &Session, e: &CommitError) -> String {
        match (e, s.pending.first()) {
            (CommitError::Stale { .. }, _) | (_, None) => format!("Error: commit failed: {e}; nothing was committed"),
            (_, Some(first)) => format!(
                "Error: commit failed: {e}; nothing was committed (pending lines {}..={} kept; `clear configuration \
                 candidate` drops them)",
                first.line, s.lines
            ),
        }
    }

    /// Builds and publishes the whole of `cfg` and makes it the running config (start,
    /// reload). On a build error nothing changes.
    pub(super) fn install_full(&mut self, cfg: Config) -> Result<CommitReport, CommitError> {
        self.room_to_retire()?;
        let t0 = Instant::now();
        let next_gen = self.generation + 1;
        let (snap, idx) = build_indexed(&cfg, next_gen)?;
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
    pub(super) fn install_edits(&mut self, ov: &Overlay, edits: Vec<Edit>) -> Result<CommitReport, CommitError> {
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
                        return Err(e.into());
                    }
                }
            }
        };
        self.running_cfg = OnceCell::new();
        let build_ns = t0.elapsed().as_nanos() as u64;
        Ok(self.publish(snap, kind, edits.len(), t0, build_ns))
    }

    /// Replaced snapshots wait for every worker to pass a quiescent state before they
    /// are freed. A stalled worker would let them pile up, one per commit: past
    /// [`MAX_RETIRED`] commits are refused until it moves again, so memory stays
    /// bounded.
    pub(super) fn room_to_retire(&mut self) -> Result<(), CommitError> {
        if self.publisher.pending_retired() >= MAX_RETIRED {
            self.publisher.try_reclaim();
        }
        if self.publisher.pending_retired() >= MAX_RETIRED {
            return Err(CommitError::Stalled { pending: self.publisher.pending_retired() });
        }
        Ok(())
    }

    /// Publishes `snap` (generation + 1), waits out the grace period, frees the old
    /// snapshot and accounts for the commit.
    pub(super) fn publish(
        &mut self,
        snap: Snapshot,
        kind: BuildKind,
        changes: usize,
        t0: Instant,
        build_ns: u64,
    ) -> CommitReport {
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
        let tb = Instant::now();
        self.advertise(Some((&old_lsps, kind)));
        let bgp_ns = if self.speaker.is_some() { tb.elapsed().as_nanos() as u64 } else { 0 };
        drop(old_lsps);
        let r = CommitReport {
            generation: self.generation,
            kind,
            changes,
            routes: self.running.size(),
            build_ns,
            mirror_ns,
            bgp_ns,
            publish_ns: pr.publish_ns,
            grace_ns: pr.grace_ns,
            reclaim_ns: pr.reclaim_ns,
            total_ns: t0.elapsed().as_nanos() as u64,
            grace_complete: pr.grace_complete,
            pending_retired: pr.pending_retired,
        };
        self.stats.read().record(&r);
        r
    }
}

//! One pinned poll-mode worker: owns its AF_XDP sockets (one per attached port for
//! each of its queues), one packet-buffer area shared by all of them, its TX staging
//! and its counters. Nothing is shared with other workers except the stats board row
//! it alone writes and the QSBR-published snapshot it only reads.
//!
//! Loop shape (STYLE §3): quiescent + one Acquire load of the snapshot per iteration;
//! per socket: reclaim completions, refill the fill ring, receive a burst, run
//! `process_burst`, stage forwarded frames per out port; then flush what is due and
//! kick TX while frames are in flight. Per packet: no allocation, no lock, no syscall,
//! no panic.

use super::tx::TxStage;
use crate::dataplane::{process_burst, BurstCtx, Verdict, MAX_BURST};
use crate::ilm::Snapshot;
use crate::io::afxdp::{new_pending, BindMode, Error, Frame, Pending, Port, PortConfig, SharedArea, XdpFrame};
use crate::qsbr::Reader;
use crate::stats::board::{StatsBoard, STATS_PUBLISH_EVERY};
use crate::stats::{DropReason, Latency, WorkerStats};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// UMEM chunk size in bytes (aligned mode allows 2048 or 4096; 2048 holds an MTU
/// frame after afxdp's 256 B of reserved headroom).
pub const FRAME_SIZE: usize = 2048;
/// Consecutive empty polls after which an idle worker starts napping (and goes
/// offline for QSBR while it naps). At ~100 ns per empty poll this is ~1 ms of spin.
const IDLE_SPINS: u32 = 1 << 14;
/// Nap length of an idle worker: bounds the extra latency of the first packet after
/// an idle period (the kernel keeps queueing into the RX ring meanwhile).
const IDLE_NAP: Duration = Duration::from_micros(50);
/// How long the shutdown drain waits for staged and in-flight frames to leave.
const STOP_DRAIN: Duration = Duration::from_millis(300);

/// What a worker is given.
pub struct Setup {
    pub id: usize,
    pub core: Option<usize>,
    /// Queue ids this worker owns on every attached port.
    pub queues: Vec<u32>,
    /// Attached ports: (config port index, interface name).
    pub ports: Vec<(usize, String)>,
    /// Number of ports in the config (port indices are `0..nports`).
    pub nports: usize,
    pub port_cfg: PortConfig,
    pub batch: usize,
    pub drain: Duration,
}

/// One socket as reported to the control thread at start.
#[derive(Clone, Debug)]
pub struct SocketInfo {
    pub worker: usize,
    pub port: usize,
    pub iface: String,
    pub queue: u32,
    pub fd: i32,
    pub zero_copy: bool,
}

/// What a worker hands back when it stops.
pub struct Outcome {
    pub stats: WorkerStats,
    pub latency: Latency,
    pub core: Option<usize>,
    pub pinned: bool,
}

/// The worker's I/O state. Field order is drop order (module docs of
/// `io::afxdp`): frame containers first, then the sockets, then the area.
struct Plane {
    rxq: Box<Pending>,
    burst: Vec<XdpFrame>,
    stages: Vec<TxStage>,
    /// `stage_of[port]`: index into `stages` for attached ports, None otherwise.
    stage_of: Vec<Option<usize>>,
    /// Config port index of each socket.
    port_of: Vec<usize>,
    sockets: Vec<Port>,
    area: SharedArea,
}

/// Frames in a worker's area: per socket, room for a full fill ring, a full RX
/// ring, staging and a full TX ring (the completion ring holds TX frames).
fn frames_for(sockets: usize, ring: u32) -> usize {
    sockets * ring as usize * 4
}

fn build_plane(s: &Setup) -> Result<(Plane, Vec<SocketInfo>), Error> {
    let nsock = s.queues.len() * s.ports.len();
    let area = SharedArea::new(frames_for(nsock, s.port_cfg.ring_size), FRAME_SIZE)?;
    let mut sockets = Vec::with_capacity(nsock);
    let mut port_of = Vec::with_capacity(nsock);
    let mut infos = Vec::with_capacity(nsock);
    for &q in &s.queues {
        for (p, iface) in &s.ports {
            let port = Port::new(&area, iface, q, s.port_cfg)?;
            let zero_copy = port.zero_copy().unwrap_or(false);
            if s.port_cfg.mode == BindMode::ZeroCopy && !zero_copy {
                return Err(Error::Port {
                    iface: iface.clone(),
                    queue: q,
                    step: "binding the socket",
                    errno: None,
                    msg: "zero-copy was asked for but the kernel bound in copy mode".into(),
                });
            }
            infos.push(SocketInfo { worker: s.id, port: *p, iface: iface.clone(), queue: q, fd: port.fd(), zero_copy });
            sockets.push(port);
            port_of.push(*p);
        }
    }
    // TX for port p goes out of the socket on this worker's first queue.
    let mut stage_of = vec![None; s.nports];
    let mut stages = Vec::new();
    for (i, (p, _)) in s.ports.iter().enumerate() {
        stage_of[*p] = Some(stages.len());
        stages.push(TxStage::new(*p, i, s.port_cfg.ring_size as usize));
    }
    let plane =
        Plane { rxq: new_pending(), burst: Vec::with_capacity(MAX_BURST), stages, stage_of, port_of, sockets, area };
    Ok((plane, infos))
}

/// The worker thread body. Reports its sockets (or the setup error) on `ready`, then
/// polls until `stop` is set, drains TX and returns its counters.
pub fn run(
    s: Setup,
    mut reader: Reader<Snapshot>,
    board: Arc<StatsBoard>,
    stop: Arc<AtomicBool>,
    ready: Sender<Result<Vec<SocketInfo>, Error>>,
) -> Outcome {
    let pinned = s.core.is_some_and(crate::sys::affinity::pin_current);
    let mut out = Outcome { stats: WorkerStats::default(), latency: Latency::new(), core: s.core, pinned };
    let mut plane = match build_plane(&s) {
        Ok((plane, infos)) => {
            // The control thread may have given up already; nothing to do then.
            let _ = ready.send(Ok(infos));
            plane
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return out;
        }
    };
    drop(ready);
    for sock in plane.sockets.iter_mut() {
        sock.refill(&mut plane.area.free);
    }
    poll_loop(&s, &mut plane, &mut reader, &board, &stop, &mut out);
    reader.offline();
    drain(&mut plane, &mut out.stats);
    add_port_events(&plane, &mut out.stats);
    board.publish(s.id, &out.stats);
    out
}

fn add_port_events(plane: &Plane, stats: &mut WorkerStats) {
    stats.rx_wakeups = plane.sockets.iter().map(|p| p.stats.rx_wakeups).sum();
    stats.tx_wakeups = plane.sockets.iter().map(|p| p.stats.tx_wakeups).sum();
    stats.fill_ring_starved = plane.sockets.iter().map(|p| p.stats.fill_ring_starved).sum();
}

fn poll_loop(
    s: &Setup,
    plane: &mut Plane,
    reader: &mut Reader<Snapshot>,
    board: &StatsBoard,
    stop: &AtomicBool,
    out: &mut Outcome,
) {
    let mut verdicts = [Verdict::default(); MAX_BURST];
    let mut ctx = BurstCtx::new();
    let stats = &mut out.stats;
    let batch = s.batch.clamp(1, MAX_BURST);
    let mut empty_run: u32 = 0;
    let mut iters: u64 = 0;
    let mut last_gen = u64::MAX;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        reader.quiescent();
        let snap = reader.current();
        if snap.generation != last_gen {
            if last_gen != u64::MAX {
                stats.ilm_swaps_seen += 1;
            }
            last_gen = snap.generation;
        }
        let mut got = 0;
        for si in 0..plane.sockets.len() {
            got += rx_one(plane, si, snap, batch, &mut verdicts, &mut ctx, stats);
        }
        let idle = got == 0;
        for st in plane.stages.iter_mut() {
            if st.due(batch, idle, now, s.drain) {
                st.flush(&mut plane.sockets[st.socket], stats, now);
            }
        }
        for sock in plane.sockets.iter_mut() {
            // Completions of frames sent out of this socket go back to the free list
            // (any socket's fill ring may use them: one area for all ports).
            sock.reclaim(&mut plane.area.free);
            sock.kick_tx_if_needed();
        }
        if idle {
            stats.empty_polls += 1;
            empty_run = empty_run.saturating_add(1);
            if empty_run >= IDLE_SPINS && plane.stages.iter().all(TxStage::is_empty) {
                // Parked workers must never stall a snapshot swap.
                reader.offline();
                std::thread::sleep(IDLE_NAP);
            }
        } else {
            empty_run = 0;
            // Burst latency: receive, process, stage and flush of this iteration.
            out.latency.record(now.elapsed().as_nanos() as u64);
        }
        iters += 1;
        if iters & (STATS_PUBLISH_EVERY - 1) == 0 {
            // (STATS_PUBLISH_EVERY is a power of two.)
            add_port_events(plane, stats);
            board.publish(s.id, stats);
        }
    }
}

/// Receives one burst on socket `si` and stages or drops every frame of it.
/// Returns the number of frames received.
#[inline(always)]
fn rx_one(
    plane: &mut Plane,
    si: usize,
    snap: &Snapshot,
    batch: usize,
    verdicts: &mut [Verdict; MAX_BURST],
    ctx: &mut BurstCtx,
    stats: &mut WorkerStats,
) -> usize {
    let sock = &mut plane.sockets[si];
    sock.refill(&mut plane.area.free);
    let n = sock.rx_burst(&mut plane.rxq, batch);
    if n == 0 {
        return 0;
    }
    stats.port_rx_pkts[plane.port_of[si]] += n as u64;
    plane.burst.clear();
    while let Some(f) = plane.rxq.pop_front() {
        // Within capacity (n <= batch <= MAX_BURST): no allocation.
        plane.burst.push(XdpFrame(f));
    }
    let n = plane.burst.len();
    process_burst(snap, &mut plane.burst[..], &mut verdicts[..n], ctx, stats);
    for (f, v) in plane.burst.drain(..).zip(verdicts.iter()) {
        let f: Frame = f.0;
        let back = match *v {
            Verdict::Forward(port) => match plane.stage_of.get(port as usize).copied().flatten() {
                Some(t) => match plane.stages[t].stage(f) {
                    Ok(()) => None,
                    Err(f) => {
                        stats.count_drop(DropReason::TxRingFull);
                        Some(f)
                    }
                },
                None => {
                    stats.count_drop(DropReason::BadOutPort);
                    Some(f)
                }
            },
            // Already counted by process_burst.
            Verdict::Drop(_) => Some(f),
        };
        if let Some(f) = back {
            // Capacity = all frames of the area: never reallocates.
            plane.area.free.push(f);
        }
    }
    n
}

/// Shutdown: submit everything staged, kick until nothing is in flight or
/// `STOP_DRAIN` passes; whatever is still staged then is counted `tx_ring_full`.
fn drain(plane: &mut Plane, stats: &mut WorkerStats) {
    let deadline = Instant::now() + STOP_DRAIN;
    loop {
        let now = Instant::now();
        for st in plane.stages.iter_mut() {
            if !st.is_empty() {
                st.flush(&mut plane.sockets[st.socket], stats, now);
            }
        }
        let mut in_flight = 0;
        for sock in plane.sockets.iter_mut() {
            sock.reclaim(&mut plane.area.free);
            sock.kick_tx_if_needed();
            in_flight += sock.tx_in_flight;
        }
        if (in_flight == 0 && plane.stages.iter().all(TxStage::is_empty)) || now >= deadline {
            break;
        }
        std::hint::spin_loop();
    }
    for st in plane.stages.iter_mut() {
        st.discard(&mut plane.area.free, stats);
    }
}

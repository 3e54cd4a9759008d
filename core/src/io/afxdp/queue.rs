//! The AF_XDP backend of the worker loop: one worker's sockets (one per attached port
//! for each of its queues), the one packet-buffer area they all share, and per out
//! port TX staging.
//!
//! RX polls the sockets round-robin and returns the first non-empty burst; `Empty`
//! means a whole round found nothing. TX stages forwarded frames on their out port
//! (a frame received on port A leaves on port B by address: one area, no copy) and
//! returns dropped frames to the free list. Housekeeping after every poll flushes the
//! stages that are due, moves TX completions back to the free list and kicks the
//! kernel while frames are in flight.
//!
//! The queue is created inside the worker thread that uses it and never leaves it.
//! Field order is drop order (see the parent module): frame containers first, then
//! the sockets, then the area.

use super::tx::TxStage;
use super::{new_pending, BindMode, Error, Frame, Pending, Port, PortConfig, SharedArea, XdpFrame};
use crate::io::{Rx, RxQueue, TxQueue, Verdict, MAX_BURST};
use crate::stats::{DropReason, TxTally, WorkerStats};
use std::time::{Duration, Instant};

/// UMEM chunk size in bytes (aligned mode allows 2048 or 4096; 2048 holds an MTU
/// frame after afxdp's 256 B of reserved headroom).
pub const FRAME_SIZE: usize = 2048;
/// How long the shutdown drain waits for staged and in-flight frames to leave.
const STOP_DRAIN: Duration = Duration::from_millis(300);

/// What one worker's queue is made of.
#[derive(Clone, Debug)]
pub struct QueueSetup {
    /// Worker index (reported with the sockets).
    pub worker: usize,
    /// Queue ids this worker owns on every attached port.
    pub queues: Vec<u32>,
    /// Attached ports: (config port index, interface name).
    pub ports: Vec<(usize, String)>,
    /// Number of ports in the config (port indices are `0..nports`).
    pub nports: usize,
    pub port_cfg: PortConfig,
    /// A stage is flushed once it holds this many frames.
    pub batch: usize,
    /// Longest a partial TX batch waits.
    pub drain: Duration,
}

/// One bound socket, as reported to the control thread.
#[derive(Clone, Debug)]
pub struct SocketInfo {
    pub worker: usize,
    pub port: usize,
    pub iface: String,
    pub queue: u32,
    pub fd: i32,
    pub zero_copy: bool,
}

/// A worker's AF_XDP queue set. Field order is drop order.
pub struct XskQueue {
    rxq: Box<Pending>,
    burst: Vec<XdpFrame>,
    stages: Vec<TxStage>,
    /// `stage_of[port]`: index into `stages` for attached ports, None otherwise.
    stage_of: Vec<Option<usize>>,
    /// Config port index of each socket.
    port_of: Vec<usize>,
    /// Socket the next RX poll starts with.
    next: usize,
    batch: usize,
    drain: Duration,
    sockets: Vec<Port>,
    area: SharedArea,
}

/// Frames in a worker's area: per socket, room for a full fill ring, a full RX ring,
/// staging and a full TX ring (the completion ring holds TX frames).
fn frames_for(sockets: usize, ring: u32) -> usize {
    sockets * ring as usize * 4
}

impl XskQueue {
    /// Creates the area and binds every socket (inside the worker thread), then fills
    /// the fill rings.
    pub fn new(s: &QueueSetup) -> Result<(XskQueue, Vec<SocketInfo>), Error> {
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
                infos.push(SocketInfo {
                    worker: s.worker,
                    port: *p,
                    iface: iface.clone(),
                    queue: q,
                    fd: port.fd(),
                    zero_copy,
                });
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
        let mut q = XskQueue {
            rxq: new_pending(),
            burst: Vec::with_capacity(MAX_BURST),
            stages,
            stage_of,
            port_of,
            next: 0,
            batch: s.batch.clamp(1, MAX_BURST),
            drain: s.drain,
            sockets,
            area,
        };
        for sock in q.sockets.iter_mut() {
            sock.refill(&mut q.area.free);
        }
        Ok((q, infos))
    }

    fn flush_staged(&mut self, stats: &mut WorkerStats, now: Instant) {
        for st in self.stages.iter_mut() {
            if !st.is_empty() {
                st.flush(&mut self.sockets[st.socket], stats, now);
            }
        }
    }
}

impl RxQueue for XskQueue {
    type Pkt = XdpFrame;

    #[inline(always)]
    fn rx_burst(&mut self, max: usize, stats: &mut WorkerStats) -> Rx {
        let nsock = self.sockets.len();
        for _ in 0..nsock {
            let si = self.next;
            self.next = if si + 1 == nsock { 0 } else { si + 1 };
            let sock = &mut self.sockets[si];
            sock.refill(&mut self.area.free);
            let n = sock.rx_burst(&mut self.rxq, max.min(MAX_BURST));
            if n == 0 {
                continue;
            }
            stats.port_rx_pkts[self.port_of[si]] += n as u64;
            self.burst.clear();
            while let Some(f) = self.rxq.pop_front() {
                // Within capacity (n <= MAX_BURST): no allocation.
                self.burst.push(XdpFrame(f));
            }
            return Rx::Burst(self.burst.len());
        }
        Rx::Empty
    }

    #[inline(always)]
    fn burst(&mut self) -> &mut [XdpFrame] {
        &mut self.burst
    }
}

impl TxQueue for XskQueue {
    #[inline(always)]
    fn tx_burst(&mut self, verdicts: &[Verdict], _forwarded: &TxTally, stats: &mut WorkerStats) {
        for (f, v) in self.burst.drain(..).zip(verdicts.iter()) {
            let f: Frame = f.0;
            let back = match *v {
                Verdict::Forward(port) => match self.stage_of.get(port as usize).copied().flatten() {
                    Some(t) => match self.stages[t].stage(f) {
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
                self.area.free.push(f);
            }
        }
    }

    #[inline(always)]
    fn poll(&mut self, idle: bool, now: Instant, stats: &mut WorkerStats) {
        for st in self.stages.iter_mut() {
            if st.due(self.batch, idle, now, self.drain) {
                st.flush(&mut self.sockets[st.socket], stats, now);
            }
        }
        for sock in self.sockets.iter_mut() {
            // Completions of frames sent out of this socket go back to the free list
            // (any socket's fill ring may use them: one area for all ports).
            sock.reclaim(&mut self.area.free);
            sock.kick_tx_if_needed();
        }
    }

    fn busy(&self) -> bool {
        !self.stages.iter().all(TxStage::is_empty)
    }

    fn export(&self, stats: &mut WorkerStats) {
        stats.rx_wakeups = self.sockets.iter().map(|p| p.stats.rx_wakeups).sum();
        stats.tx_wakeups = self.sockets.iter().map(|p| p.stats.tx_wakeups).sum();
        stats.fill_ring_starved = self.sockets.iter().map(|p| p.stats.fill_ring_starved).sum();
    }

    /// Submits everything staged and kicks until nothing is in flight or
    /// `STOP_DRAIN` passes; whatever is still staged then is counted `tx_ring_full`.
    fn drain(&mut self, stats: &mut WorkerStats) {
        let deadline = Instant::now() + STOP_DRAIN;
        loop {
            let now = Instant::now();
            self.flush_staged(stats, now);
            let mut in_flight = 0;
            for sock in self.sockets.iter_mut() {
                sock.reclaim(&mut self.area.free);
                sock.kick_tx_if_needed();
                in_flight += sock.tx_in_flight;
            }
            if (in_flight == 0 && !self.busy()) || now >= deadline {
                break;
            }
            std::hint::spin_loop();
        }
        for st in self.stages.iter_mut() {
            st.discard(&mut self.area.free, stats);
        }
    }
}

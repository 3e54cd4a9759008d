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
use super::{BindMode, Error, Port, PortConfig, SharedArea, XdpFrame};
use crate::io::{Rx, RxQueue, TxQueue, Verdict, MAX_BURST};
use crate::stats::{DropReason, TxTally, WorkerStats};
use std::time::{Duration, Instant};

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

/// Frames in a worker's area. Per socket: its fill ring's worth (a frame the kernel
/// took from the fill ring sits in the RX ring until the worker receives it, and the
/// worker then refills the slot), and two TX rings' worth (staged, and on the TX or
/// completion ring); plus one burst in the worker's hands.
fn frames_for(sockets: usize, rx_ring: u32, tx_ring: u32) -> usize {
    sockets * (rx_ring as usize + 2 * tx_ring as usize) + MAX_BURST
}

impl XskQueue {
    /// Creates the area and binds every socket (inside the worker thread), then fills
    /// the fill rings.
    pub fn new(s: &QueueSetup) -> Result<(XskQueue, Vec<SocketInfo>), Error> {
        let nsock = s.queues.len() * s.ports.len();
        let area = SharedArea::new(frames_for(nsock, s.port_cfg.rx_ring_size, s.port_cfg.ring_size))?;
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
            self.burst.clear();
            // Within capacity (n <= MAX_BURST): no allocation.
            let n = sock.rx_burst(&mut self.burst, max.min(MAX_BURST));
            if n == 0 {
                continue;
            }
            stats.port_rx_pkts[self.port_of[si]] += n as u64;
            return Rx::Burst(n);
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
                self.area.free.push(f.chunk());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::afxdp::KickPolicy;
    use crate::io::xdp::MplsRedirect;
    use std::process::Command;

    /// Ring size of the test socket: the smallest `popgo run --ring-size` accepts.
    const RING: usize = 64;
    /// A frame the peer's stack ignores (local experimental ethertype 0x88b5).
    const FRAME: [u8; 60] = {
        let mut f = [0u8; 60];
        f[0] = 0x02;
        f[5] = 0x01;
        f[6] = 0x02;
        f[11] = 0x02;
        f[12] = 0x88;
        f[13] = 0xb5;
        f
    };

    /// Runs `f` on a thread of its own in a fresh network namespace that holds the veth
    /// pair `xq0`/`xq1` (both up, IPv6 off, so the kernel sends nothing of its own).
    /// The namespace, the pair and anything bound in it go away when the thread ends,
    /// whatever `f` did. Returns false (after recording the skip) when this process may
    /// not create a network namespace.
    fn in_private_netns(test: &str, f: impl FnOnce() + Send + 'static) -> bool {
        if crate::sys::rlimit::euid() != 0 {
            crate::testkit::skip(test, "needs root (network namespaces, XDP, AF_XDP)");
            return false;
        }
        if !crate::testkit::have_tool(test, "ip", "-V") {
            return false;
        }
        let t = std::thread::spawn(move || {
            // SAFETY: plain flag argument; CLONE_NEWNET moves only this thread (the
            // namespace is per thread), which is ours and ends with the test.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            for p in ["all", "default"] {
                let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{p}/disable_ipv6"), "1");
            }
            // Children start in the spawning thread's namespace.
            for args in [
                &["link", "add", "xq0", "type", "veth", "peer", "name", "xq1"][..],
                &["link", "set", "xq0", "up"],
                &["link", "set", "xq1", "up"],
            ] {
                let o = Command::new("ip").args(args).output().expect("running ip");
                assert!(o.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&o.stderr));
            }
            f();
            Ok(())
        });
        match t.join() {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                crate::testkit::skip(test, &format!("cannot create a network namespace ({e})"));
                false
            }
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// (packets, bytes) `dev` received, from `ip -s` in the calling thread's namespace.
    fn rx_counters(dev: &str) -> (u64, u64) {
        let o = Command::new("ip").args(["-j", "-s", "link", "show", "dev", dev]).output().expect("running ip");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("ip -j output");
        let rx = &v[0]["stats64"]["rx"];
        (rx["packets"].as_u64().expect("rx packets"), rx["bytes"].as_u64().expect("rx bytes"))
    }

    /// Hands `n` frames to `tx_burst` as one received burst, with `verdicts`, and counts
    /// them as received (what `process_burst` does for a burst the queue received).
    fn burst(q: &mut XskQueue, verdicts: &[Verdict], stats: &mut WorkerStats) {
        q.burst.clear();
        for _ in verdicts {
            let chunk = q.area.free.pop().expect("a free frame");
            let mut f = q.area.frame(chunk);
            assert!(f.write(&FRAME));
            q.burst.push(f);
        }
        stats.rx_pkts += verdicts.len() as u64;
        q.tx_burst(verdicts, &TxTally::default(), stats);
    }

    /// A TX ring whose frames have not completed yet takes no more; staging then holds
    /// one ring's worth, and every frame beyond that is a `tx_ring_full` drop whose buffer
    /// goes back to the free list. Frames for a port this worker did not attach are
    /// `bad_out_port` drops. At shutdown the staged frames leave, and rx = tx + drops.
    #[test]
    fn a_full_tx_ring_counts_tx_ring_full_and_balances() {
        let test = "io::afxdp::queue::a_full_tx_ring_counts_tx_ring_full_and_balances";
        in_private_netns(test, || {
            let _xdp = MplsRedirect::attach("xq0", true, false).expect("attaching the XDP program to xq0");
            let setup = QueueSetup {
                worker: 0,
                queues: vec![0],
                ports: vec![(0, "xq0".into())],
                nports: 2,
                port_cfg: PortConfig {
                    ring_size: RING as u32,
                    rx_ring_size: RING as u32,
                    burst: RING,
                    tx_budget: None,
                    kick: KickPolicy::Always,
                    mode: BindMode::Auto,
                },
                batch: MAX_BURST,
                drain: Duration::from_secs(3600),
            };
            let (mut q, _) = XskQueue::new(&setup).expect("binding an AF_XDP socket to xq0");
            let frames = q.area.frames;
            let mut stats = WorkerStats::default();
            let to_xq0 = [Verdict::Forward(0); RING];

            // One ring's worth is staged, then submitted: the TX ring is full until its
            // completions are reclaimed, which only poll() and drain() do.
            burst(&mut q, &to_xq0, &mut stats);
            assert_eq!(q.stages[0].len(), RING);
            q.flush_staged(&mut stats, Instant::now());
            assert_eq!(stats.tx_pkts, RING as u64, "a ring's worth submitted");
            assert_eq!(q.sockets[0].tx_room(), 0, "the TX ring is full");
            // The next ring's worth waits in staging (cap = ring size).
            burst(&mut q, &to_xq0, &mut stats);
            q.flush_staged(&mut stats, Instant::now());
            assert_eq!(stats.tx_pkts, RING as u64, "nothing more fits in the TX ring");
            assert_eq!(q.stages[0].len(), RING);
            assert_eq!(stats.dropped_pkts(), 0);
            // Staging is full: 10 more frames for xq0 are dropped, and 3 for port 1,
            // which this worker has no socket for.
            let free_before = q.area.free.len();
            let mut mixed = [Verdict::Forward(0); 13];
            mixed[10..].fill(Verdict::Forward(1));
            burst(&mut q, &mixed, &mut stats);
            assert_eq!(stats.drop_count(DropReason::TxRingFull), 10, "{stats:?}");
            assert_eq!(stats.drop_count(DropReason::BadOutPort), 3, "{stats:?}");
            assert_eq!(stats.dropped_pkts(), 13, "{stats:?}");
            assert_eq!(q.area.free.len(), free_before, "dropped frames went back to the free list");
            assert_eq!(q.stages[0].len(), RING, "staging unchanged");

            // Shutdown: the completions come back, the staged ring's worth leaves too.
            q.drain(&mut stats);
            assert_eq!(stats.tx_pkts, 2 * RING as u64, "{stats:?}");
            assert_eq!(stats.port_tx_pkts[0], 2 * RING as u64);
            assert_eq!(stats.drop_count(DropReason::TxRingFull), 10, "nothing was left to discard: {stats:?}");
            assert_eq!(stats.rx_pkts, 2 * RING as u64 + 13);
            assert!(stats.balanced(), "rx = tx + drops: {stats:?}");
            assert_eq!(q.sockets[0].tx_in_flight, 0);
            // Every buffer is back: free, or in the fill ring (one ring's worth).
            assert_eq!(q.area.free.len(), frames - RING, "no buffer lost");
            // The peer received exactly the transmitted frames, byte counts included.
            assert_eq!(rx_counters("xq1"), (2 * RING as u64, 2 * RING as u64 * FRAME.len() as u64));
        });
    }

    /// An interface deleted under a running queue: the `sendto` kick gets ENXIO. The send
    /// must come back with the port marked failed, and every frame after it a counted
    /// drop: rx = tx + drops.
    #[test]
    fn a_deleted_interface_is_counted_not_a_panic() {
        let test = "io::afxdp::queue::a_deleted_interface_is_counted_not_a_panic";
        in_private_netns(test, || {
            let xdp = MplsRedirect::attach("xq0", true, false).expect("attaching the XDP program to xq0");
            let setup = QueueSetup {
                worker: 0,
                queues: vec![0],
                ports: vec![(0, "xq0".into())],
                nports: 1,
                port_cfg: PortConfig {
                    ring_size: RING as u32,
                    rx_ring_size: RING as u32,
                    burst: RING,
                    tx_budget: None,
                    kick: KickPolicy::Always,
                    mode: BindMode::Copy,
                },
                batch: MAX_BURST,
                drain: Duration::from_secs(3600),
            };
            let (mut q, _) = XskQueue::new(&setup).expect("binding an AF_XDP socket to xq0");
            let mut stats = WorkerStats::default();
            let o = Command::new("ip").args(["link", "del", "xq0"]).output().expect("running ip");
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            burst(&mut q, &[Verdict::Forward(0); 8], &mut stats);
            q.flush_staged(&mut stats, Instant::now());
            assert!(q.sockets[0].failed(), "the failed kick marks the port: {stats:?}");
            burst(&mut q, &[Verdict::Forward(0); 8], &mut stats);
            q.flush_staged(&mut stats, Instant::now());
            q.drain(&mut stats);
            assert_eq!(stats.rx_pkts, 16);
            // The first 8 were on the ring when the kick failed (submitted, so sent as
            // far as the ring goes); the 8 after the failure stay staged and are
            // discarded at shutdown as `tx_ring_full`.
            assert_eq!(stats.tx_pkts, 8, "{stats:?}");
            assert_eq!(stats.drop_count(DropReason::TxRingFull), 8, "{stats:?}");
            assert!(stats.balanced(), "rx = tx + drops: {stats:?}");
            drop(q);
            drop(xdp);
        });
    }

    /// The port's fd (libbpf's `xsk_socket__fd`) is an AF_XDP socket, bound (its XDP
    /// statistics answer), and the one the kernel transmits for: a frame submitted and
    /// kicked on it reaches the peer.
    #[test]
    fn the_port_fd_is_the_bound_socket() {
        let test = "io::afxdp::queue::the_port_fd_is_the_bound_socket";
        in_private_netns(test, || {
            let _xdp = MplsRedirect::attach("xq0", true, false).expect("attaching the XDP program to xq0");
            let setup = QueueSetup {
                worker: 0,
                queues: vec![0],
                ports: vec![(0, "xq0".into())],
                nports: 1,
                port_cfg: PortConfig {
                    ring_size: RING as u32,
                    rx_ring_size: RING as u32,
                    burst: RING,
                    tx_budget: None,
                    kick: KickPolicy::Always,
                    mode: BindMode::Auto,
                },
                batch: MAX_BURST,
                drain: Duration::from_secs(3600),
            };
            let (mut q, _) = XskQueue::new(&setup).expect("binding an AF_XDP socket to xq0");
            let fd = q.sockets[0].fd();
            const SO_DOMAIN: libc::c_int = 39;
            let mut domain: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: fd is the port's live socket; domain/len are writable locals of the size passed.
            let ret = unsafe {
                libc::getsockopt(fd, libc::SOL_SOCKET, SO_DOMAIN, (&mut domain as *mut libc::c_int).cast(), &mut len)
            };
            assert_eq!((ret, domain), (0, libc::AF_XDP));
            q.sockets[0].xdp_statistics().expect("XDP_STATISTICS on the port's fd");
            let before = rx_counters("xq1");
            let mut stats = WorkerStats::default();
            burst(&mut q, &[Verdict::Forward(0); 3], &mut stats);
            q.drain(&mut stats);
            assert_eq!(stats.tx_pkts, 3, "{stats:?}");
            assert_eq!(rx_counters("xq1").0 - before.0, 3, "the peer got the frames kicked on the fd");
        });
    }
}

//! Adapter over the `afxdp` 0.4 crate: one [`Port`] = one interface queue =
//! one AF_XDP socket with its own UMEM registration, its fill/completion
//! rings, and its RX/TX rings. All ports of a worker register the SAME
//! memory area ([`SharedArea`]), so a frame received on port A can be put on
//! port B's TX ring by address, without a copy.
//!
//! Hot-path methods ([`Port::rx_burst`], [`Port::tx_burst`], [`Port::reclaim`],
//! [`Port::refill`], [`Port::kick_tx_if_needed`]) do no allocation, take no lock
//! and make no syscall except ring wakeups (`poll`/`sendto`). The core never
//! sees this module: it works on [`XdpFrame`] through [`crate::io::PacketMut`].
//!
//! Gaps of afxdp 0.4 worked around here (the crate is used as published, never
//! patched or vendored):
//! - the frame start cannot be moved, so [`XdpFrame::pull_front`] moves the
//!   payload (a label pop costs a memmove of the rest of the frame);
//! - the socket fd is private: it is the fd of the port's own UMEM (see
//!   Invariants), which `Umem::get_ptr` + libbpf's `xsk_umem__fd` give;
//! - no XDP statistics / bind mode accessors: `getsockopt` on that fd
//!   ([`Port::xdp_statistics`], [`Port::zero_copy`]);
//! - no stand-alone TX kick: `sendto` on that fd ([`Port::kick_tx_if_needed`]);
//! - `SocketTx::try_send` panics on an unexpected `sendto` errno (anything but
//!   ENOBUFS/EAGAIN/EBUSY/ENETDOWN, e.g. ENXIO once the interface is deleted
//!   under a running forwarder). [`Port::tx_burst`] catches it, marks the port
//!   failed and sends nothing more on it: its frames end as drops.
//!
//! # Invariants
//! - **Memory**: `MmapArea` (anonymous mmap, owned by the crate, behind an
//!   `Arc`) is registered once per port with `XDP_UMEM_REG` (`Umem::new`).
//!   The kernel pins those pages until the umem socket is closed.
//!   `BufMmap<'static, _>` frames hold `&'static mut [u8]` slices into the
//!   area; the `'static` is a promise that every frame is dropped before the
//!   last `Arc<MmapArea>` (held by each `Umem` and by [`SharedArea`]). Owners
//!   (the `run` worker) declare frame containers *before* their ports and the
//!   area, so that drop order holds.
//! - **Rings**: libbpf keeps raw pointers to the `Box<xsk_ring_*>` structs
//!   owned by afxdp's `UmemFillQueue` / `UmemCompletionQueue` (libbpf's
//!   `ctx->fill` / `ctx->comp`) and reads them in `xsk_socket__delete`. So the
//!   socket must be deleted while the fill/completion queue owners are still
//!   alive. [`Port`]'s field order encodes this: `rx`, `tx`, `socket` (the
//!   last `Arc<Socket>` → `xsk_socket__delete`) drop before `fq`, `cq`,
//!   `umem` (→ `xsk_umem__delete`). Never move those fields out of `Port`.
//! - **Socket fd**: afxdp 0.4 keeps the fd private (`SocketRx::fd`,
//!   `SocketTx::fd` are private; `Socket::socket` is a private
//!   `Box<xsk_socket>`, so `xsk_socket__fd` cannot be reached). libbpf 0.3
//!   makes the FIRST socket of a umem reuse the umem's own fd (`xsk->fd =
//!   umem->fd` in `xsk_socket__create_shared`), and every [`Port`] registers
//!   its own umem with exactly one socket: so the socket fd is
//!   `xsk_umem__fd(Umem::get_ptr())` (`get_ptr` is public). The fd is owned by
//!   libbpf (closed by `xsk_umem__delete`); we only borrow it for
//!   `sendto`/`getsockopt`/`setsockopt`, never close it.
//! - **XSKMAP**: the XDP program (see `xdp.rs`) must be attached before
//!   `Port::new`, otherwise libbpf installs its redirect-everything program.
//! - Threads: ports and areas are created *inside* the worker thread that uses
//!   them and never leave it; nothing is shared between workers.
//!   No `unsafe impl Send` is needed or given.
#![allow(unsafe_code)]

pub mod queue;
pub mod tx;

use crate::io::PacketMut;
use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;

use ::afxdp::buf::Buf;
use ::afxdp::buf_mmap::BufMmap;
use ::afxdp::mmap_area::{MmapArea, MmapAreaOptions};
use ::afxdp::socket::{Socket, SocketOptions, SocketRx, SocketTx};
use ::afxdp::umem::{Umem, UmemCompletionQueue, UmemFillQueue};
use arraydeque::{ArrayDeque, Wrapping};

/// Per-frame user data carried by afxdp buffers. We carry none.
#[derive(Default, Clone, Copy, Debug)]
pub struct NoUser;

/// One packet buffer inside the shared area.
pub type Frame = BufMmap<'static, NoUser>;

/// afxdp's fixed-size staging queue type (`PENDING_LEN` = 4096 entries).
/// `try_recv` appends to one, `try_send` consumes from the front of one.
pub type Pending = ArrayDeque<[Frame; ::afxdp::PENDING_LEN], Wrapping>;

/// Capacity of a [`Pending`] queue.
pub const PENDING_LEN: usize = ::afxdp::PENDING_LEN;

/// Allocate a pending queue on the heap (it is ~128 KiB).
pub fn new_pending() -> Box<Pending> {
    Box::new(ArrayDeque::new())
}

/// `XDP_MAX_TX_SKB_BUDGET` (kernel >= 6.17, uapi if_xdp.h): frames the copy-mode
/// TX path sends per `sendto()` kick. Default 32 (`TX_BATCH_SIZE`); accepted
/// range 32..=tx ring size, otherwise EACCES.
const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;
/// `XDP_STATISTICS` socket option (uapi if_xdp.h).
const XDP_STATISTICS: libc::c_int = 7;
/// `XDP_OPTIONS` socket option (uapi if_xdp.h): `struct xdp_options { u32 flags }`.
const XDP_OPTIONS: libc::c_int = 8;
/// `XDP_OPTIONS_ZEROCOPY` flag in `struct xdp_options`.
const XDP_OPTIONS_ZEROCOPY: u32 = 1;

/// uapi `struct xdp_statistics`.
#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
pub struct XdpStatistics {
    /// dropped for reasons other than invalid desc (e.g. fill ring had no buffer)
    pub rx_dropped: u64,
    pub rx_invalid_descs: u64,
    pub tx_invalid_descs: u64,
    /// RX ring full: user space too slow
    pub rx_ring_full: u64,
    pub rx_fill_ring_empty_descs: u64,
    pub tx_ring_empty_descs: u64,
}

/// Errors of this module: which step failed, on which interface queue, and
/// the (positive) errno when there is one, so callers can classify it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("packet buffer area ({frames} frames of {frame_size} B): {msg}")]
    Area { frames: usize, frame_size: usize, msg: String },
    #[error("{iface} queue {queue}: {step}: {msg}")]
    Port { iface: String, queue: u32, step: &'static str, errno: Option<i32>, msg: String },
}

impl Error {
    /// The errno behind the failure, if any (always positive).
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Area { .. } => None,
            Error::Port { errno, .. } => *errno,
        }
    }
}

/// afxdp wraps libbpf's *negative* errno in `io::Error::from_raw_os_error`
/// (EBUSY prints as "os error -16"); normalise to a positive errno + message.
fn normalise(e: &io::Error) -> (Option<i32>, String) {
    match e.raw_os_error() {
        Some(n) => {
            let n = n.abs();
            (Some(n), io::Error::from_raw_os_error(n).to_string())
        }
        None => (None, e.to_string()),
    }
}

/// The memory area shared by all ports of one worker, plus its free list.
pub struct SharedArea {
    /// Free frames. Capacity = total frames, so `UmemCompletionQueue::service`
    /// (which caps at `capacity - len`) never refuses completions.
    /// Declared before `area` so frames drop first (see Invariants).
    pub free: Vec<Frame>,
    pub area: Arc<MmapArea<'static, NoUser>>,
    pub frame_size: usize,
    pub frames: usize,
}

impl SharedArea {
    /// `frames` buffers of `frame_size` bytes (2048 or 4096 in aligned mode).
    /// afxdp reserves the first 256 bytes of each frame (`AF_XDP_RESERVED` =
    /// the kernel's `XDP_PACKET_HEADROOM`): frame data starts at chunk + 256
    /// and has `frame_size - 256` bytes of room.
    pub fn new(frames: usize, frame_size: usize) -> Result<Self, Error> {
        let (area, free) = MmapArea::new(frames, frame_size, MmapAreaOptions { huge_tlb: false })
            .map_err(|e| Error::Area { frames, frame_size, msg: format!("{e:?}") })?;
        Ok(SharedArea { free, area, frame_size, frames })
    }
}

/// Which AF_XDP bind mode to ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BindMode {
    /// Let the kernel choose: zero-copy when the driver supports it, else copy.
    #[default]
    Auto,
    /// `XDP_ZEROCOPY`: fail if the driver cannot do it.
    ZeroCopy,
    /// `XDP_COPY`.
    Copy,
}

/// Sizes and switches for one port.
#[derive(Clone, Copy, Debug)]
pub struct PortConfig {
    /// fill, completion, RX and TX ring size (power of two)
    pub ring_size: u32,
    /// frames per RX/TX burst
    pub burst: usize,
    /// If set, raise the kernel's copy-mode TX budget per kick to this value
    /// (`XDP_MAX_TX_SKB_BUDGET`, clamped to `ring_size`).
    pub tx_budget: Option<u32>,
    /// When to issue TX wakeups for frames already in the ring.
    pub kick: KickPolicy,
    pub mode: BindMode,
}

/// TX wakeup policy for copy mode, where every `sendto()` moves at most the
/// per-kick budget (32 unless raised) from the TX ring into the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KickPolicy {
    /// Kick on every loop iteration while any frame is in flight (submitted
    /// but not completed). Simple, never strands frames, but with a large
    /// completion latency it issues many near-empty `sendto()` calls.
    Always,
    /// Track how many submitted frames no kick has covered yet
    /// (`tx_backlog`, decremented by the budget per kick) and kick only while
    /// it is positive. Safety net: if frames are in flight and no completion
    /// arrived for `STALL_ITERS` iterations, kick anyway.
    Backlog,
}

/// Loop iterations without a completion (while frames are in flight) after
/// which the `Backlog` policy kicks anyway.
const STALL_ITERS: u32 = 64;
/// Kernel default frames per copy-mode TX kick (`TX_BATCH_SIZE` in net/xdp/xsk.c).
const KERNEL_TX_BATCH: usize = 32;

/// Hot-path event counters of one port (single writer).
#[derive(Default, Clone, Copy, Debug)]
pub struct PortStats {
    pub rx_pkts: u64,
    pub tx_pkts: u64,
    pub rx_wakeups: u64,
    pub tx_wakeups: u64,
    pub fill_ring_starved: u64,
}

/// One AF_XDP socket on one interface queue. See the module Invariants for
/// why the field order matters.
pub struct Port {
    rx: SocketRx<'static, NoUser>,
    tx: SocketTx<'static, NoUser>,
    _socket: Arc<Socket<'static, NoUser>>,
    fq: UmemFillQueue<'static, NoUser>,
    cq: UmemCompletionQueue<'static, NoUser>,
    _umem: Arc<Umem<'static, NoUser>>,
    /// Borrowed from libbpf (see Invariants); never closed by us.
    fd: RawFd,
    pub ifname: String,
    pub queue: u32,
    cfg: PortConfig,
    /// fill-ring slots not yet given a buffer
    fq_deficit: usize,
    /// frames submitted to TX and not yet seen on the completion ring
    pub tx_in_flight: usize,
    /// frames submitted to the TX ring not yet covered by a kick (estimate)
    tx_backlog: usize,
    /// frames the kernel moves per kick (32, or the raised budget)
    tx_budget_eff: usize,
    /// iterations since the last completion while frames were in flight
    stall_iters: u32,
    /// `try_send` panicked (its kick failed: the interface is gone); nothing is
    /// handed to this socket any more.
    failed: bool,
    pub stats: PortStats,
}

impl Port {
    /// Create the umem registration + socket for `ifname`/`queue` over the
    /// shared area. The MPLS XDP program must already be attached to
    /// `ifname` (libbpf then inserts this socket into its `xsks_map`).
    pub fn new(area: &SharedArea, ifname: &str, queue: u32, cfg: PortConfig) -> Result<Self, Error> {
        let err = |step: &'static str, e: &io::Error| {
            let (errno, msg) = normalise(e);
            Error::Port { iface: ifname.to_string(), queue, step, errno, msg }
        };
        let other =
            |step: &'static str, msg: String| Error::Port { iface: ifname.to_string(), queue, step, errno: None, msg };
        let (umem, cq, fq) = match Umem::new(area.area.clone(), cfg.ring_size, cfg.ring_size) {
            Ok(x) => x,
            Err(::afxdp::umem::UmemNewError::Create(e)) => return Err(err("registering the UMEM", &e)),
            Err(e) => return Err(other("registering the UMEM", e.to_string())),
        };
        // SAFETY: `get_ptr` points at the libbpf umem that `umem` owns and keeps alive
        // for this call; `xsk_umem__fd` only reads its fd field.
        let fd = unsafe { libbpf_sys::xsk_umem__fd(umem.get_ptr()) };
        if fd < 0 {
            return Err(other("finding the socket fd", format!("xsk_umem__fd returned {fd}")));
        }
        let opts = SocketOptions {
            zero_copy_mode: cfg.mode == BindMode::ZeroCopy,
            copy_mode: cfg.mode == BindMode::Copy,
            rx_ring_size: cfg.ring_size,
            tx_ring_size: cfg.ring_size,
        };
        let (socket, rx, tx) =
            match Socket::new(umem.clone(), ifname, queue as usize, cfg.ring_size, cfg.ring_size, opts) {
                Ok(x) => x,
                Err(::afxdp::socket::SocketNewError::Create(e)) => return Err(err("binding the socket", &e)),
                Err(e) => return Err(other("binding the socket", e.to_string())),
            };
        let mut port = Port {
            rx,
            tx,
            _socket: socket,
            fq,
            cq,
            _umem: umem,
            fd,
            ifname: ifname.to_string(),
            queue,
            cfg,
            fq_deficit: cfg.ring_size as usize,
            tx_in_flight: 0,
            tx_backlog: 0,
            tx_budget_eff: KERNEL_TX_BATCH,
            stall_iters: 0,
            failed: false,
            stats: PortStats::default(),
        };
        if let Some(b) = cfg.tx_budget {
            let b = b.min(cfg.ring_size);
            port.set_tx_budget(b).map_err(|e| err("setting XDP_MAX_TX_SKB_BUDGET", &e))?;
            port.tx_budget_eff = b as usize;
        }
        Ok(port)
    }

    /// The socket fd (borrowed; for `poll` sets or socket options).
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// Whether the kernel bound this socket in zero-copy mode (`XDP_OPTIONS`).
    pub fn zero_copy(&self) -> io::Result<bool> {
        let mut flags: u32 = 0;
        let mut len = std::mem::size_of::<u32>() as libc::socklen_t;
        // SAFETY: fd is a live AF_XDP socket (see Invariants); flags is a
        // writable u32 local, the layout of uapi `struct xdp_options`.
        let ret =
            unsafe { libc::getsockopt(self.fd, libc::SOL_XDP, XDP_OPTIONS, (&mut flags as *mut u32).cast(), &mut len) };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(flags & XDP_OPTIONS_ZEROCOPY != 0)
    }

    /// Kernel-side socket counters; see [`xdp_statistics`].
    pub fn xdp_statistics(&self) -> io::Result<XdpStatistics> {
        xdp_statistics(self.fd)
    }

    /// Raise the per-kick copy-mode TX budget (kernel >= 6.17).
    pub fn set_tx_budget(&mut self, budget: u32) -> io::Result<()> {
        // SAFETY: fd is a live AF_XDP socket (see Invariants); budget is a
        // valid u32 local of the size passed.
        let ret = unsafe {
            libc::setsockopt(
                self.fd,
                libc::SOL_XDP,
                XDP_MAX_TX_SKB_BUDGET,
                (&budget as *const u32).cast(),
                std::mem::size_of::<u32>() as libc::socklen_t,
            )
        };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Give free frames to the fill ring until it is full (or `free` is empty).
    /// libbpf's reserve is all-or-nothing, so we ask for exactly the deficit.
    #[inline]
    pub fn refill(&mut self, free: &mut Vec<Frame>) {
        if self.fq_deficit == 0 {
            return;
        }
        let want = self.fq_deficit.min(free.len());
        if want == 0 {
            self.stats.fill_ring_starved += 1;
            return;
        }
        // UmemFillQueue::fill never returns Err in 0.4.
        if let Ok(n) = self.fq.fill(free, want) {
            self.fq_deficit -= n;
        }
    }

    /// Move completed TX frames back to `free`. Returns frames reclaimed.
    #[inline]
    pub fn reclaim(&mut self, free: &mut Vec<Frame>) -> usize {
        if self.tx_in_flight == 0 {
            return 0;
        }
        let n = self.cq.service(free, self.cfg.ring_size as usize).unwrap_or(0);
        self.tx_in_flight -= n;
        if n == 0 && self.tx_in_flight > 0 {
            self.stall_iters = self.stall_iters.saturating_add(1);
        } else {
            self.stall_iters = 0;
        }
        n
    }

    /// Receive up to `max` frames, appended to the back of `pending`.
    /// Honours need_wakeup: when nothing arrived and the kernel set the fill
    /// ring's need_wakeup flag, `poll()` the socket.
    #[inline]
    pub fn rx_burst(&mut self, pending: &mut Pending, max: usize) -> usize {
        let n = self.rx.try_recv(pending, max, NoUser).unwrap_or(0);
        if n == 0 {
            if self.fq.needs_wakeup() {
                self.stats.rx_wakeups += 1;
                self.rx.wake();
            }
        } else {
            self.fq_deficit += n;
            self.stats.rx_pkts += n as u64;
        }
        n
    }

    /// Free TX ring slots we may reserve without failing: the ring holds at
    /// most `tx_in_flight` of our frames (completed ones have left it).
    #[inline]
    pub fn tx_room(&self) -> usize {
        (self.cfg.ring_size as usize).saturating_sub(self.tx_in_flight)
    }

    /// Submit up to `max` frames from the front of `pending` to TX (bounded by
    /// [`Port::tx_room`], because libbpf's reserve is all-or-nothing).
    /// afxdp's `try_send` itself kicks (`sendto`) when the TX ring has
    /// need_wakeup set; returns (frames submitted, whether it kicked).
    ///
    /// `try_send` kicks with its own `sendto` and panics when that fails with an
    /// errno other than ENOBUFS/EAGAIN/EBUSY/ENETDOWN (ENXIO once the interface is
    /// deleted and the socket unbound). Its ring and fd are private and the kernel
    /// sets the need_wakeup flag, so the call cannot be made safe beforehand: the
    /// panic is caught here (no unwinding out of the worker), the frames it had
    /// already put on the ring count as submitted, and the port is marked failed
    /// ([`Port::failed`]): later calls submit nothing, so the caller's frames stay
    /// staged and end as drops. The cost on the normal path is none (no landing pad
    /// runs unless a panic happens).
    #[inline]
    pub fn tx_burst(&mut self, pending: &mut Pending, max: usize) -> (usize, bool) {
        let want = max.min(pending.len()).min(self.tx_room());
        if want == 0 || self.failed {
            return (0, false);
        }
        let kicked = self.tx.needs_wakeup();
        let before = pending.len();
        let tx = &mut self.tx;
        let n = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tx.try_send(pending, want))) {
            Ok(r) => r.unwrap_or(0),
            Err(_) => self.on_send_panic(before - pending.len()),
        };
        self.tx_in_flight += n;
        self.tx_backlog += n;
        self.stats.tx_pkts += n as u64;
        if kicked {
            self.stats.tx_wakeups += 1;
            self.tx_backlog = self.tx_backlog.saturating_sub(self.tx_budget_eff);
        }
        (n, kicked)
    }

    /// Whether a send failed for good (see [`Port::tx_burst`]).
    pub fn failed(&self) -> bool {
        self.failed
    }

    #[cold]
    #[inline(never)]
    fn on_send_panic(&mut self, submitted: usize) -> usize {
        self.failed = true;
        tracing::warn!(
            "afxdp: {} queue {}: the TX kick failed (interface gone?); nothing more is sent on this socket",
            self.ifname,
            self.queue
        );
        submitted
    }

    /// Kick TX for frames already in the ring, according to the policy.
    /// In copy mode the TX need_wakeup flag is always set and each kick sends
    /// at most the TX budget (32 by default), so a forwarder that kicks only
    /// when it queues new frames strands frames in the ring (LAB-NOTES).
    #[inline]
    pub fn kick_tx_if_needed(&mut self) {
        let want = match self.cfg.kick {
            KickPolicy::Always => self.tx_in_flight > 0,
            KickPolicy::Backlog => self.tx_backlog > 0 || (self.tx_in_flight > 0 && self.stall_iters >= STALL_ITERS),
        };
        if want && self.tx.needs_wakeup() {
            self.stats.tx_wakeups += 1;
            self.stall_iters = 0;
            if self.kick_tx() {
                self.tx_backlog = self.tx_backlog.saturating_sub(self.tx_budget_eff);
            }
        }
    }

    /// Returns false when the kernel said "try again" (budget exhausted with
    /// frames left, CQ full, or busy): the backlog is then kept.
    #[inline]
    fn kick_tx(&self) -> bool {
        // SAFETY: fd is a live AF_XDP socket (see Invariants); a zero-length
        // sendto with null buffers is the documented AF_XDP TX wakeup.
        let ret = unsafe { libc::sendto(self.fd, std::ptr::null(), 0, libc::MSG_DONTWAIT, std::ptr::null(), 0) };
        // EAGAIN: budget used up with frames left, or CQ full; EBUSY: another
        // sendto in progress; ENOBUFS: no skb; ENETDOWN: link down. All are
        // retried on a later iteration; nothing to report per packet.
        ret >= 0
    }
}

/// Kernel-side counters of an AF_XDP socket
/// (`getsockopt(SOL_XDP, XDP_STATISTICS)`): where frames were lost before user
/// space saw them. Takes a raw fd so that the stats printer can read sockets
/// owned by workers; on a closed or non-XDP fd it just fails.
pub fn xdp_statistics(fd: RawFd) -> io::Result<XdpStatistics> {
    let mut st = XdpStatistics::default();
    let mut len = std::mem::size_of::<XdpStatistics>() as libc::socklen_t;
    // SAFETY: getsockopt only writes `len` bytes into st, a writable repr(C)
    // struct matching uapi `struct xdp_statistics` (6 x u64, kernel >= 5.9);
    // an fd that is not (or no longer) an AF_XDP socket yields an error.
    let ret = unsafe {
        libc::getsockopt(fd, libc::SOL_XDP, XDP_STATISTICS, (&mut st as *mut XdpStatistics).cast(), &mut len)
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// A received frame as the core sees it ([`PacketMut`]).
#[repr(transparent)]
pub struct XdpFrame(pub Frame);

impl PacketMut for XdpFrame {
    #[inline(always)]
    fn data(&self) -> &[u8] {
        let len = (self.0.get_len() as usize).min(self.0.get_data().len());
        &self.0.get_data()[..len]
    }

    #[inline(always)]
    fn data_mut(&mut self) -> &mut [u8] {
        let len = (self.0.get_len() as usize).min(self.0.get_data().len());
        &mut self.0.get_data_mut()[..len]
    }

    /// afxdp 0.4 cannot move the frame start (`BufMmap::addr` is crate-private
    /// and TX sends `[addr, addr + len)`), so this moves the *remaining bytes*
    /// `n` towards the front: `len - n` bytes of memmove per pop (56 B for a
    /// 64 B frame, ~1.5 KB at MTU) instead of an O(1) `addr += n`. Known cost,
    /// see the module docs.
    #[inline(always)]
    fn pull_front(&mut self, n: usize) {
        let len = self.0.get_len() as usize;
        debug_assert!(n <= len, "pull_front({n}) on a {len}-byte frame");
        let n = n.min(len);
        self.0.get_data_mut().copy_within(n..len, 0);
        // len - n <= len, which fitted a u16 already.
        self.0.set_len((len - n) as u16);
    }
}

/// Frame helpers usable on afxdp buffers.
pub mod frame {
    use super::{Buf, Frame};

    /// Bytes of packet data in the frame.
    #[inline]
    pub fn bytes(f: &Frame) -> &[u8] {
        &f.get_data()[..f.get_len() as usize]
    }

    /// Copy `src` into the frame and set its length. Returns false (frame
    /// unchanged) when `src` does not fit.
    pub fn write(f: &mut Frame, src: &[u8]) -> bool {
        if src.len() > f.get_data().len() || src.len() > u16::MAX as usize {
            return false;
        }
        f.get_data_mut()[..src.len()].copy_from_slice(src);
        f.set_len(src.len() as u16);
        true
    }
}

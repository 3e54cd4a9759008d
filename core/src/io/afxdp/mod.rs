//! AF_XDP sockets for the worker loop, over libbpf's socket and UMEM set-up
//! (`libbpf-sys`) and an owned ring layer ([`ring`]). One [`Port`] = one interface
//! queue = one AF_XDP socket with its own UMEM registration, its fill/completion rings
//! and its RX/TX rings. All ports of a worker register the SAME memory area
//! ([`SharedArea`]), so a frame received on port A can be put on port B's TX ring by
//! address, without a copy.
//!
//! Hot-path methods ([`Port::rx_burst`], [`Port::tx_burst`], [`Port::reclaim`],
//! [`Port::refill`], [`Port::kick_tx_if_needed`]) do no allocation, take no lock
//! and make no syscall except ring wakeups (`poll`/`sendto`). The core never
//! sees this module: it works on [`XdpFrame`] through [`crate::io::PacketMut`].
//!
//! Why not the `afxdp` crate (0.4, used until the ring layer was written): its frame
//! type keeps the UMEM address private, so a label pop had to move the rest of the
//! frame instead of the frame's start; its socket fd is private (we derived it from
//! the UMEM's); its `try_send` panics on an unexpected `sendto` errno (ENXIO once the
//! interface is deleted), which we had to catch; and its ring operations are libbpf's
//! out-of-line wrappers, a function call per descriptor (`_xsk_ring_cons__peek` alone
//! was 3.6% of the forwarding core's samples on the veth lab, in a build that spun on
//! empty polls instead of napping). The socket and UMEM
//! are still created by the libbpf calls the crate made.
//!
//! # Invariants
//! - **Memory**: the area is an anonymous mapping behind an `Rc`, held by the
//!   [`SharedArea`] and by every [`Port`] registered on it (`XDP_UMEM_REG` pins its
//!   pages until the UMEM is deleted), so it outlives every socket using it whatever
//!   the drop order.
//! - **Frames**: a 2 KiB chunk of the area is owned by exactly one of: the free list,
//!   a fill ring, the kernel, an RX ring, one [`XdpFrame`], a TX stage, a TX ring, a
//!   completion ring. An [`XdpFrame`] is a pointer into its chunk with the UMEM
//!   address and length of its data; only its owner reads or writes those bytes.
//! - **Rings**: libbpf keeps raw pointers to the boxed `xsk_ring_*` structs (see
//!   [`ring`]) and reads them in `xsk_socket__delete`; [`Port`]'s `Drop` deletes the
//!   socket, then the UMEM, before its ring fields drop.
//! - **XSKMAP**: the XDP program (see `xdp.rs`) must be attached before
//!   `Port::new`, otherwise libbpf installs its redirect-everything program.
//! - Threads: ports and areas are created *inside* the worker thread that uses
//!   them and never leave it (raw pointers keep them `!Send`).
#![allow(unsafe_code)]

mod area;
pub mod queue;
pub mod ring;
pub mod tx;

pub use area::{SharedArea, XdpFrame, FRAME_SIZE, HEADROOM};

use area::Mem;
use ring::{Cons, Prod};
use std::collections::VecDeque;
use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::rc::Rc;

/// TX frames staged for one port, in order (a bounded deque: its owner never pushes
/// past the capacity it was made with, so it never reallocates).
pub type Pending = VecDeque<XdpFrame>;

/// A staging queue for `cap` frames.
pub fn new_pending(cap: usize) -> Pending {
    VecDeque::with_capacity(cap)
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

/// A libbpf return value (0 or a negative errno) as a step error.
fn libbpf_err(iface: &str, queue: u32, step: &'static str, ret: i32) -> Error {
    let errno = ret.abs();
    Error::Port {
        iface: iface.to_string(),
        queue,
        step,
        errno: Some(errno),
        msg: io::Error::from_raw_os_error(errno).to_string(),
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
    /// TX and completion ring size (power of two)
    pub ring_size: u32,
    /// fill and RX ring size (power of two)
    pub rx_ring_size: u32,
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

/// One AF_XDP socket on one interface queue, with its own UMEM registration of the
/// worker's area.
pub struct Port {
    fill: Prod,
    comp: Cons,
    rx: Cons,
    tx: Prod,
    /// Owned; deleted in `Drop` (before the rings drop, see Invariants).
    xsk: NonNull<libbpf_sys::xsk_socket>,
    umem: NonNull<libbpf_sys::xsk_umem>,
    /// Keeps the area registered by this socket mapped.
    mem: Rc<Mem>,
    /// The socket's fd (owned by libbpf, closed by `xsk_socket__delete`).
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
    /// A kick failed for good (the interface is gone): nothing more is submitted.
    failed: bool,
    pub stats: PortStats,
}

impl Drop for Port {
    fn drop(&mut self) {
        // SAFETY: `xsk` was created by `xsk_socket__create` in `Port::new` and is deleted
        // only here; the ring structs it points to are fields still alive.
        unsafe { libbpf_sys::xsk_socket__delete(self.xsk.as_ptr()) };
        // SAFETY: `umem` was created by `xsk_umem__create` in `Port::new`; its only
        // socket was deleted just above, so it is unused (`mem` still maps the area).
        unsafe { libbpf_sys::xsk_umem__delete(self.umem.as_ptr()) };
    }
}

impl Port {
    /// Registers the area as a UMEM and binds a socket to `ifname`/`queue`. The MPLS
    /// XDP program must already be attached to `ifname` (libbpf then inserts this
    /// socket into its `xsks_map`).
    pub fn new(area: &SharedArea, ifname: &str, queue: u32, cfg: PortConfig) -> Result<Self, Error> {
        let other =
            |step: &'static str, msg: String| Error::Port { iface: ifname.to_string(), queue, step, errno: None, msg };
        if !cfg.ring_size.is_power_of_two() || !cfg.rx_ring_size.is_power_of_two() {
            let sizes = format!("{} (TX) or {} (RX) is not a power of two", cfg.ring_size, cfg.rx_ring_size);
            return Err(other("sizing the rings", sizes));
        }
        let c_ifname = CString::new(ifname).map_err(|_| other("naming the interface", "contains NUL".into()))?;
        let (mut fill, mut comp, mut rx, mut tx) =
            (Prod::unmapped(), Cons::unmapped(), Cons::unmapped(), Prod::unmapped());
        let ucfg = libbpf_sys::xsk_umem_config {
            fill_size: cfg.rx_ring_size,
            comp_size: cfg.ring_size,
            frame_size: FRAME_SIZE as u32,
            frame_headroom: 0,
            flags: 0,
        };
        let mut umem: *mut libbpf_sys::xsk_umem = std::ptr::null_mut();
        let len = (area.frames * FRAME_SIZE) as u64;
        // SAFETY: the area is a live mapping of `len` bytes, kept mapped by `mem` for as
        // long as the UMEM exists; the ring structs are boxed (stable addresses) and
        // outlive the UMEM (deleted in Drop before the fields drop).
        let ret = unsafe {
            libbpf_sys::xsk_umem__create(
                &mut umem,
                area.mem.base.as_ptr().cast(),
                len,
                &mut *fill.0,
                &mut *comp.0,
                &ucfg,
            )
        };
        if ret != 0 {
            return Err(libbpf_err(ifname, queue, "registering the UMEM", ret));
        }
        let umem = NonNull::new(umem).ok_or_else(|| other("registering the UMEM", "libbpf returned null".into()))?;
        let mut bind_flags = libbpf_sys::XDP_USE_NEED_WAKEUP as u16;
        match cfg.mode {
            BindMode::Auto => {}
            BindMode::ZeroCopy => bind_flags |= libbpf_sys::XDP_ZEROCOPY as u16,
            BindMode::Copy => bind_flags |= libbpf_sys::XDP_COPY as u16,
        }
        let scfg = libbpf_sys::xsk_socket_config {
            rx_size: cfg.rx_ring_size,
            tx_size: cfg.ring_size,
            // libbpf looks up the attached program's `xsks_map` and inserts the socket.
            libbpf_flags: 0,
            xdp_flags: libbpf_sys::XDP_FLAGS_UPDATE_IF_NOEXIST,
            bind_flags,
        };
        let mut xsk: *mut libbpf_sys::xsk_socket = std::ptr::null_mut();
        // SAFETY: c_ifname is NUL-terminated; umem is live; rx/tx are boxed and outlive
        // the socket (Drop order).
        let ret = unsafe {
            libbpf_sys::xsk_socket__create(
                &mut xsk,
                c_ifname.as_ptr(),
                queue,
                umem.as_ptr(),
                &mut *rx.0,
                &mut *tx.0,
                &scfg,
            )
        };
        let Some(xsk) = NonNull::new(xsk).filter(|_| ret == 0) else {
            // SAFETY: the UMEM was created above and no socket uses it.
            unsafe { libbpf_sys::xsk_umem__delete(umem.as_ptr()) };
            return Err(libbpf_err(ifname, queue, "binding the socket", if ret == 0 { -libc::EINVAL } else { ret }));
        };
        // SAFETY: xsk is the live socket just created.
        let fd = unsafe { libbpf_sys::xsk_socket__fd(xsk.as_ptr()) };
        let mut port = Port {
            fill,
            comp,
            rx,
            tx,
            xsk,
            umem,
            mem: area.mem.clone(),
            fd,
            ifname: ifname.to_string(),
            queue,
            cfg,
            fq_deficit: cfg.rx_ring_size as usize,
            tx_in_flight: 0,
            tx_backlog: 0,
            tx_budget_eff: KERNEL_TX_BATCH,
            stall_iters: 0,
            failed: false,
            stats: PortStats::default(),
        };
        if fd < 0 {
            return Err(other("finding the socket fd", format!("xsk_socket__fd returned {fd}")));
        }
        if let Some(b) = cfg.tx_budget {
            let b = b.min(cfg.ring_size);
            port.set_tx_budget(b).map_err(|e| {
                let errno = e.raw_os_error();
                Error::Port {
                    iface: ifname.to_string(),
                    queue,
                    step: "setting XDP_MAX_TX_SKB_BUDGET",
                    errno,
                    msg: e.to_string(),
                }
            })?;
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

    /// Gives free chunks to the fill ring until every slot the kernel consumed is
    /// given back (or `free` is empty).
    #[inline]
    pub fn refill(&mut self, free: &mut Vec<u64>) {
        if self.fq_deficit == 0 {
            return;
        }
        let want = self.fq_deficit.min(free.len());
        if want == 0 {
            self.stats.fill_ring_starved += 1;
            return;
        }
        let (idx, n) = self.fill.reserve(want as u32);
        for i in 0..n {
            // n <= want <= free.len(): never None.
            if let Some(chunk) = free.pop() {
                self.fill.set_addr(idx.wrapping_add(i), chunk);
            }
        }
        self.fill.submit();
        self.fq_deficit -= n as usize;
    }

    /// Moves completed TX chunks back to `free`. Returns how many.
    #[inline]
    pub fn reclaim(&mut self, free: &mut Vec<u64>) -> usize {
        if self.tx_in_flight == 0 {
            return 0;
        }
        let (idx, n) = self.comp.peek(self.tx_in_flight as u32);
        for i in 0..n {
            // Completions carry the TX address, which may be past the chunk start (a
            // popped frame); the free list holds chunk starts. Capacity = all chunks.
            free.push(self.comp.addr(idx.wrapping_add(i)) & !(FRAME_SIZE as u64 - 1));
        }
        self.comp.release();
        let n = n as usize;
        self.tx_in_flight -= n;
        if n == 0 && self.tx_in_flight > 0 {
            self.stall_iters = self.stall_iters.saturating_add(1);
        } else {
            self.stall_iters = 0;
        }
        n
    }

    /// Receives up to `max` frames, appended to `out`. Honours need_wakeup: when
    /// nothing arrived and the kernel set the fill ring's need_wakeup flag, `poll()`s
    /// the socket.
    #[inline]
    pub fn rx_burst(&mut self, out: &mut Vec<XdpFrame>, max: usize) -> usize {
        let (idx, n) = self.rx.peek(max as u32);
        if n == 0 {
            if self.fill.needs_wakeup() {
                self.stats.rx_wakeups += 1;
                self.wake_rx();
            }
            return 0;
        }
        for i in 0..n {
            let (addr, len) = self.rx.desc(idx.wrapping_add(i));
            let mut f = XdpFrame::at(self.mem.base, addr, 0);
            // The kernel writes within the chunk; a longer length would be a kernel bug,
            // and is clamped (set_len) so that the frame never leaves its chunk.
            f.set_len(len as usize);
            out.push(f);
        }
        self.rx.release();
        let n = n as usize;
        self.fq_deficit += n;
        self.stats.rx_pkts += n as u64;
        n
    }

    #[cold]
    fn wake_rx(&self) {
        let mut pfd = libc::pollfd { fd: self.fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: pfd is a valid pollfd local; a zero timeout never blocks. Errors
        // (EINTR) only mean the wakeup is retried on the next empty poll.
        unsafe { libc::poll(&mut pfd, 1, 0) };
    }

    /// Free TX ring slots we may fill: the ring holds at most `tx_in_flight` of our
    /// frames (completed ones have left it).
    #[inline]
    pub fn tx_room(&self) -> usize {
        (self.cfg.ring_size as usize).saturating_sub(self.tx_in_flight)
    }

    /// Submits up to `max` frames from the front of `pending` to the TX ring, then
    /// kicks the kernel if it asked for it; returns (frames submitted, whether it
    /// kicked). A port whose kick failed for good (see [`Port::failed`]) takes nothing.
    #[inline]
    pub fn tx_burst(&mut self, pending: &mut Pending, max: usize) -> (usize, bool) {
        let want = max.min(pending.len()).min(self.tx_room());
        if want == 0 || self.failed {
            return (0, false);
        }
        let (idx, n) = self.tx.reserve(want as u32);
        for i in 0..n {
            // n <= want <= pending.len(): never None.
            if let Some(f) = pending.pop_front() {
                self.tx.set_desc(idx.wrapping_add(i), f.addr(), f.len() as u32);
            }
        }
        self.tx.submit();
        let n = n as usize;
        self.tx_in_flight += n;
        self.tx_backlog += n;
        self.stats.tx_pkts += n as u64;
        let kicked = self.tx.needs_wakeup();
        if kicked {
            self.stats.tx_wakeups += 1;
            if self.kick_tx() {
                self.tx_backlog = self.tx_backlog.saturating_sub(self.tx_budget_eff);
            }
        }
        (n, kicked)
    }

    /// Whether a kick failed for good: the socket is unusable (its interface was
    /// deleted); frames for it stay staged and end as drops.
    pub fn failed(&self) -> bool {
        self.failed
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
        if want && !self.failed && self.tx.needs_wakeup() {
            self.stats.tx_wakeups += 1;
            self.stall_iters = 0;
            if self.kick_tx() {
                self.tx_backlog = self.tx_backlog.saturating_sub(self.tx_budget_eff);
            }
        }
    }

    /// One TX wakeup. Returns false when the kernel said "try again" (budget used up
    /// with frames left, completion ring full, busy, no skb, link down): the backlog
    /// is then kept. Any other errno (ENXIO once the interface is deleted, EBADF) means
    /// the socket is unusable: the port is marked failed.
    #[inline]
    fn kick_tx(&mut self) -> bool {
        // SAFETY: fd is this port's live AF_XDP socket; a zero-length sendto with null
        // buffers is the documented AF_XDP TX wakeup.
        let ret = unsafe { libc::sendto(self.fd, std::ptr::null(), 0, libc::MSG_DONTWAIT, std::ptr::null(), 0) };
        if ret >= 0 {
            return true;
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS | libc::ENETDOWN | libc::EINTR) => false,
            errno => self.on_kick_failed(errno),
        }
    }

    #[cold]
    #[inline(never)]
    fn on_kick_failed(&mut self, errno: Option<i32>) -> bool {
        self.failed = true;
        let why = errno.map(|e| io::Error::from_raw_os_error(e).to_string()).unwrap_or_default();
        tracing::warn!(
            "afxdp: {} queue {}: the TX kick failed ({why}); nothing more is sent on this socket",
            self.ifname,
            self.queue
        );
        false
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

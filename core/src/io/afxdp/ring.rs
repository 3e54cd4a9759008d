//! The four rings of an AF_XDP socket (fill, completion, RX, TX) as the kernel's ABI
//! defines them: a power-of-two array of entries in memory shared with the kernel, a
//! producer and a consumer index (free-running `u32`s, masked on access) and a flags
//! word. libbpf maps them (`xsk_umem__create`, `xsk_socket__create`) and fills in an
//! `xsk_ring_prod` / `xsk_ring_cons` per ring; the operations on them are here, in
//! Rust, so they inline into the worker loop (libbpf's are `static inline` C, which
//! `libbpf-sys` exports as out-of-line functions: one call per descriptor).
//!
//! Memory ordering is the kernel's (Documentation/networking/af_xdp.rst, and
//! `xsk_queue.h`): the side that produces writes its entries, then publishes its index
//! with a release store; the side that consumes reads the other's index with an
//! acquire load before it reads the entries, and publishes its own index with a
//! release store once it has read them. Each side caches the other's index and reads
//! the shared one only when the cache does not cover the request.
//!
//! The `xsk_ring_*` structs are boxed: libbpf keeps pointers to the fill and
//! completion structs (and reads all four when it deletes the socket), so they must
//! not move, and must outlive the socket and UMEM (`Port` deletes both before its
//! fields drop).
#![allow(unsafe_code)]

use libbpf_sys::{xdp_desc, xsk_ring_cons, xsk_ring_prod, XDP_RING_NEED_WAKEUP};
use std::sync::atomic::{AtomicU32, Ordering};

/// A ring user space produces into: fill (addresses) or TX (descriptors).
pub struct Prod(pub(super) Box<xsk_ring_prod>);

/// A ring user space consumes from: completion (addresses) or RX (descriptors).
pub struct Cons(pub(super) Box<xsk_ring_cons>);

/// The shared `u32` at `p` (an index or the flags word of a mapped ring).
///
/// # Safety
/// `p` points into a ring mapping that stays mapped while the returned reference
/// lives, and is 4-byte aligned (libbpf sets these pointers from the kernel's
/// `XDP_MMAP_OFFSETS`).
#[inline(always)]
unsafe fn shared<'a>(p: *mut u32) -> &'a AtomicU32 {
    // SAFETY: per this function's contract; AtomicU32 has the layout of u32, and the
    // kernel accesses the word only atomically (READ_ONCE/WRITE_ONCE, acquire/release).
    unsafe { AtomicU32::from_ptr(p) }
}

impl Prod {
    /// A ring not yet mapped: libbpf fills it in.
    pub(super) fn unmapped() -> Prod {
        Prod(Box::default())
    }

    /// Ring size (entries).
    #[inline(always)]
    pub fn size(&self) -> u32 {
        self.0.size
    }

    /// Free entries, reading the kernel's consumer index only when the cached one shows
    /// fewer than `want`.
    #[inline(always)]
    pub fn free(&mut self, want: u32) -> u32 {
        let r = &mut *self.0;
        let free = r.cached_cons.wrapping_sub(r.cached_prod);
        if free >= want {
            return free;
        }
        // SAFETY: `consumer` points into this ring's mapping, alive while the socket is.
        let cons = unsafe { shared(r.consumer) }.load(Ordering::Acquire);
        r.cached_cons = cons.wrapping_add(r.size);
        r.cached_cons.wrapping_sub(r.cached_prod)
    }

    /// Reserves up to `want` entries: returns the index of the first and how many (all
    /// of them or as many as are free; unlike libbpf's reserve, never nothing when some
    /// are free). The entries are written with [`Prod::set_addr`] / [`Prod::set_desc`]
    /// and published with [`Prod::submit`].
    #[inline(always)]
    pub fn reserve(&mut self, want: u32) -> (u32, u32) {
        let n = self.free(want).min(want);
        let idx = self.0.cached_prod;
        self.0.cached_prod = idx.wrapping_add(n);
        (idx, n)
    }

    /// Writes a fill-ring entry (a UMEM address) at reserved index `idx`.
    #[inline(always)]
    pub fn set_addr(&mut self, idx: u32, addr: u64) {
        let slot = (idx & self.0.mask) as usize;
        let p = (self.0.ring as *mut u64).wrapping_add(slot);
        // SAFETY: a fill ring's entries are `size` u64s at `ring`, and slot < size
        // (masked); the entry was reserved, so the kernel does not read it until submit.
        unsafe { p.write(addr) }
    }

    /// Writes a TX descriptor at reserved index `idx`.
    #[inline(always)]
    pub fn set_desc(&mut self, idx: u32, addr: u64, len: u32) {
        let slot = (idx & self.0.mask) as usize;
        let d = xdp_desc { addr, len, options: 0 };
        let p = (self.0.ring as *mut xdp_desc).wrapping_add(slot);
        // SAFETY: a TX ring's entries are `size` xdp_descs at `ring`, and slot < size
        // (masked); the entry was reserved, so the kernel does not read it until submit.
        unsafe { p.write(d) }
    }

    /// Publishes every reserved entry to the kernel.
    #[inline(always)]
    pub fn submit(&mut self) {
        // SAFETY: `producer` points into this ring's mapping, alive while the socket is.
        unsafe { shared(self.0.producer) }.store(self.0.cached_prod, Ordering::Release);
    }

    /// Whether the kernel asked to be woken (`XDP_RING_NEED_WAKEUP`) to process this ring.
    #[inline(always)]
    pub fn needs_wakeup(&self) -> bool {
        // SAFETY: `flags` points into this ring's mapping, alive while the socket is.
        unsafe { shared(self.0.flags) }.load(Ordering::Relaxed) & XDP_RING_NEED_WAKEUP != 0
    }
}

impl Cons {
    /// A ring not yet mapped: libbpf fills it in.
    pub(super) fn unmapped() -> Cons {
        Cons(Box::default())
    }

    /// Takes up to `want` entries: returns the index of the first and how many. Reads
    /// the kernel's producer index only when the cached one shows fewer than `want`.
    /// The entries are read with [`Cons::addr`] / [`Cons::desc`] and given back with
    /// [`Cons::release`].
    #[inline(always)]
    pub fn peek(&mut self, want: u32) -> (u32, u32) {
        let r = &mut *self.0;
        let mut avail = r.cached_prod.wrapping_sub(r.cached_cons);
        if avail < want {
            // SAFETY: `producer` points into this ring's mapping, alive while the socket is.
            r.cached_prod = unsafe { shared(r.producer) }.load(Ordering::Acquire);
            avail = r.cached_prod.wrapping_sub(r.cached_cons);
        }
        let n = avail.min(want);
        let idx = r.cached_cons;
        r.cached_cons = idx.wrapping_add(n);
        (idx, n)
    }

    /// A completion-ring entry (a UMEM address) at peeked index `idx`.
    #[inline(always)]
    pub fn addr(&self, idx: u32) -> u64 {
        let slot = (idx & self.0.mask) as usize;
        let p = (self.0.ring as *const u64).wrapping_add(slot);
        // SAFETY: a completion ring's entries are `size` u64s at `ring`, slot < size
        // (masked); the entry was peeked, so the kernel does not write it until release.
        unsafe { p.read() }
    }

    /// An RX descriptor at peeked index `idx`: (address, length).
    #[inline(always)]
    pub fn desc(&self, idx: u32) -> (u64, u32) {
        let slot = (idx & self.0.mask) as usize;
        let p = (self.0.ring as *const xdp_desc).wrapping_add(slot);
        // SAFETY: an RX ring's entries are `size` xdp_descs at `ring`, slot < size
        // (masked); the entry was peeked, so the kernel does not write it until release.
        let d = unsafe { p.read() };
        (d.addr, d.len)
    }

    /// Gives every peeked entry back to the kernel.
    #[inline(always)]
    pub fn release(&mut self) {
        // SAFETY: `consumer` points into this ring's mapping, alive while the socket is.
        unsafe { shared(self.0.consumer) }.store(self.0.cached_cons, Ordering::Release);
    }
}

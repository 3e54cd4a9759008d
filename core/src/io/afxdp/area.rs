//! The packet memory of one worker: an anonymous mapping of 2 KiB chunks that every
//! socket of the worker registers as its UMEM, its free list, and the frame type the
//! core works on. See the parent module's Invariants for who owns a chunk when.
#![allow(unsafe_code)]

use super::Error;
use crate::io::PacketMut;
use std::ptr::NonNull;
use std::rc::Rc;

/// UMEM chunk size in bytes (aligned mode allows 2048 or 4096; 2048 holds an MTU
/// frame after the kernel's 256 B of headroom).
pub const FRAME_SIZE: usize = 2048;
/// Where frame data starts in a chunk: the kernel's `XDP_PACKET_HEADROOM` (the UMEM
/// is registered with no headroom of its own), so RX data and our own TX frames start
/// at the same offset.
pub const HEADROOM: usize = 256;

/// An anonymous mapping registered as UMEM by the ports of one worker.
pub(super) struct Mem {
    /// Start of the mapping (taken once; the mapping never moves).
    pub(super) base: NonNull<u8>,
    _map: memmap2::MmapMut,
}

/// The memory area shared by all ports of one worker, and its free list.
pub struct SharedArea {
    /// Free chunks (UMEM addresses of chunk starts). Capacity = all chunks, so
    /// returning one never allocates.
    pub free: Vec<u64>,
    pub(super) mem: Rc<Mem>,
    /// Chunks in the area (each [`FRAME_SIZE`] bytes).
    pub frames: usize,
}

impl SharedArea {
    /// `frames` chunks of [`FRAME_SIZE`] bytes, all free.
    pub fn new(frames: usize) -> Result<Self, Error> {
        let area_err = |msg: String| Error::Area { frames, frame_size: FRAME_SIZE, msg };
        if frames == 0 {
            return Err(area_err("an area needs at least one chunk".into()));
        }
        let len = frames.checked_mul(FRAME_SIZE).ok_or_else(|| area_err("too large".into()))?;
        let mut map = memmap2::MmapMut::map_anon(len).map_err(|e| area_err(e.to_string()))?;
        let base = NonNull::new(map.as_mut_ptr()).ok_or_else(|| area_err("mmap returned null".into()))?;
        let mem = Rc::new(Mem { base, _map: map });
        let free = (0..frames as u64).rev().map(|i| i * FRAME_SIZE as u64).collect();
        Ok(SharedArea { free, mem, frames })
    }

    /// The frame of free chunk `chunk` (a UMEM address taken from `free`): empty, its
    /// data starting at [`HEADROOM`]. The caller now owns the chunk.
    #[inline(always)]
    pub fn frame(&self, chunk: u64) -> XdpFrame {
        XdpFrame::at(self.mem.base, chunk + HEADROOM as u64, 0)
    }
}

/// A frame in the area as the core sees it ([`PacketMut`]): a pointer to its data,
/// the data's UMEM address and its length. Moving the start (a pop) is O(1): the TX
/// descriptor carries the new address, anywhere in the chunk.
pub struct XdpFrame {
    data: NonNull<u8>,
    addr: u64,
    len: u32,
}

impl XdpFrame {
    /// The frame whose data is at UMEM address `addr` of the area at `base`.
    #[inline(always)]
    pub(super) fn at(base: NonNull<u8>, addr: u64, len: u32) -> XdpFrame {
        // SAFETY: addr is an address inside the area (a chunk start plus at most the
        // chunk size: from the free list, or from the kernel's RX ring, which only
        // returns addresses of chunks we gave it).
        let data = unsafe { base.add(addr as usize) };
        XdpFrame { data, addr, len }
    }

    /// UMEM address of the first data byte.
    #[inline(always)]
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// UMEM address of the chunk the frame is in (what goes back to the free list).
    #[inline(always)]
    pub fn chunk(&self) -> u64 {
        self.addr & !(FRAME_SIZE as u64 - 1)
    }

    /// Bytes of data.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes from the data start to the end of the chunk.
    #[inline(always)]
    pub fn room(&self) -> usize {
        FRAME_SIZE - (self.addr as usize & (FRAME_SIZE - 1))
    }

    /// Sets the data length (at most [`XdpFrame::room`]; longer is clamped).
    #[inline(always)]
    pub fn set_len(&mut self, len: usize) {
        self.len = len.min(self.room()) as u32;
    }

    /// Copies `src` into the frame as its data. Returns false (frame unchanged) when it
    /// does not fit.
    pub fn write(&mut self, src: &[u8]) -> bool {
        if src.len() > self.room() {
            return false;
        }
        self.len = src.len() as u32;
        self.data_mut().copy_from_slice(src);
        true
    }
}

impl PacketMut for XdpFrame {
    #[inline(always)]
    fn data(&self) -> &[u8] {
        // SAFETY: data..data+len lies in the frame's chunk (len <= room, kept by every
        // constructor and setter), which this frame owns (module Invariants) and which
        // stays mapped while any socket or the area holds the mapping.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr(), self.len as usize) }
    }

    #[inline(always)]
    fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`; `&mut self` makes this the only view of the bytes.
        unsafe { std::slice::from_raw_parts_mut(self.data.as_ptr(), self.len as usize) }
    }

    /// O(1): the frame's start moves `n` bytes into the chunk.
    #[inline(always)]
    fn pull_front(&mut self, n: usize) {
        debug_assert!(n <= self.len as usize, "pull_front({n}) on a {}-byte frame", self.len);
        let n = n.min(self.len as usize);
        // SAFETY: n <= len, so the new start is still inside the frame's chunk.
        self.data = unsafe { self.data.add(n) };
        self.addr += n as u64;
        self.len -= n as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pop moves the frame's start, not its bytes: the data after the pop is the tail
    /// of the old data, at the same place in memory, with the UMEM address advanced.
    #[test]
    fn pull_front_moves_the_start_not_the_bytes() {
        let mut area = SharedArea::new(4).expect("an area");
        let chunk = area.free.pop().expect("a free chunk");
        let mut f = area.frame(chunk);
        assert_eq!((f.addr(), f.chunk(), f.room()), (chunk + HEADROOM as u64, chunk, FRAME_SIZE - HEADROOM));
        let src: Vec<u8> = (0..64).collect();
        assert!(f.write(&src));
        let tail = f.data()[4..].as_ptr();
        f.pull_front(4);
        assert_eq!(f.data(), &src[4..]);
        assert_eq!(f.data().as_ptr(), tail, "no byte moved");
        assert_eq!((f.addr(), f.chunk(), f.len()), (chunk + HEADROOM as u64 + 4, chunk, 60));
        assert!(!f.write(&vec![0; f.room() + 1]), "a write past the chunk is refused");
        f.set_len(FRAME_SIZE);
        assert_eq!(f.len(), f.room(), "a length past the chunk is clamped");
    }
}

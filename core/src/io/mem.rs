//! In-memory packet buffers: the replay ring and the test/bench backend.
//!
//! A [`MemFrame`] is one 2 KiB buffer with headroom, like a NIC RX descriptor's
//! buffer. Popping a label moves the frame start forward (O(1)).

use super::PacketMut;

/// Data bytes per frame: one 2 KiB buffer per packet, as in a typical NIC RX ring.
pub const FRAME_DATA_BYTES: usize = 2048;
/// Headroom in front of the data (as in DPDK mbufs). It also makes the frame stride
/// not a multiple of 2 KiB, so a burst of frames does not alias in the L1 cache.
pub const HEADROOM_BYTES: usize = 128;

/// One packet buffer.
#[derive(Clone)]
#[repr(C, align(64))]
pub struct MemFrame {
    /// Sequence number of the packet in the input (record index + loop * records).
    pub seq: u64,
    off: u16,
    len: u16,
    /// Fills the metadata's cache line, so that the data start (`buf` + headroom) is
    /// line-aligned: a minimum-size frame is then one line to copy, not two.
    _pad: [u8; 64 - 12],
    buf: [u8; HEADROOM_BYTES + FRAME_DATA_BYTES],
}

// The data start (after the headroom) is on a cache line in every frame.
const _: () = assert!((std::mem::offset_of!(MemFrame, buf) + HEADROOM_BYTES).is_multiple_of(64));
const _: () = assert!(std::mem::size_of::<MemFrame>().is_multiple_of(64));

impl Default for MemFrame {
    fn default() -> Self {
        MemFrame {
            seq: 0,
            off: HEADROOM_BYTES as u16,
            len: 0,
            _pad: [0; 64 - 12],
            buf: [0; HEADROOM_BYTES + FRAME_DATA_BYTES],
        }
    }
}

impl MemFrame {
    /// Copies `src` into the frame. Returns false (frame unchanged) when `src` is larger
    /// than a frame's data area.
    #[inline(always)]
    pub fn load(&mut self, seq: u64, src: &[u8]) -> bool {
        if src.len() > FRAME_DATA_BYTES {
            return false;
        }
        self.seq = seq;
        self.off = HEADROOM_BYTES as u16;
        self.len = src.len() as u16;
        self.buf[HEADROOM_BYTES..HEADROOM_BYTES + src.len()].copy_from_slice(src);
        true
    }

    /// Copies `data[at..at + len]` into the frame like `load`, but in 32-byte chunks that
    /// may read past the record (into the next one) when the source has room: a few
    /// vector moves instead of a `memcpy` call per packet. The bytes past `len` land in
    /// the frame's unused tail and are never read as packet data.
    #[inline(always)]
    pub fn load_from(&mut self, seq: u64, data: &[u8], at: usize, len: usize) -> bool {
        const SMALL: usize = 64;
        if len <= SMALL {
            // Minimum-size frames (the common benchmark case): one fixed 64-byte move,
            // checked once.
            if let Some(src) = data.get(at..).and_then(|s| s.first_chunk::<SMALL>()) {
                self.seq = seq;
                self.off = HEADROOM_BYTES as u16;
                self.len = len as u16;
                if let Some(d) = self.buf[HEADROOM_BYTES..].first_chunk_mut::<SMALL>() {
                    *d = *src;
                }
                return true;
            }
        }
        self.load_chunked(seq, data, at, len)
    }

    /// `load_from` for frames longer than 64 bytes (and the last record of the file):
    /// out of line, so that the inlined copy of a minimum-size frame stays one fixed move.
    #[inline(never)]
    fn load_chunked(&mut self, seq: u64, data: &[u8], at: usize, len: usize) -> bool {
        const CHUNK: usize = 32;
        if len > FRAME_DATA_BYTES {
            return false;
        }
        let padded = len.div_ceil(CHUNK) * CHUNK;
        match data.get(at..at + padded) {
            Some(src) => {
                self.seq = seq;
                self.off = HEADROOM_BYTES as u16;
                self.len = len as u16;
                let dst = &mut self.buf[HEADROOM_BYTES..];
                let (src, _) = src.as_chunks::<CHUNK>();
                let (dst, _) = dst.as_chunks_mut::<CHUNK>();
                for (d, s) in dst.iter_mut().zip(src) {
                    *d = *s;
                }
                true
            }
            // The last record of the file: copy exactly.
            None => data.get(at..at + len).is_some_and(|src| self.load(seq, src)),
        }
    }

    /// A frame holding `src` (tests and tools; allocates).
    pub fn boxed_from(src: &[u8]) -> Box<MemFrame> {
        let mut f = Box::<MemFrame>::default();
        assert!(f.load(0, src), "test frame larger than {FRAME_DATA_BYTES} bytes");
        f
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl PacketMut for MemFrame {
    #[inline(always)]
    fn data(&self) -> &[u8] {
        &self.buf[self.off as usize..self.off as usize + self.len as usize]
    }

    #[inline(always)]
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.off as usize..self.off as usize + self.len as usize]
    }

    #[inline(always)]
    fn pull_front(&mut self, n: usize) {
        debug_assert!(n <= self.len as usize);
        // (Clamped so that `off + len` never grows, whatever the caller passes.)
        let n = (n.min(u16::MAX as usize) as u16).min(self.len);
        self.off += n;
        self.len -= n;
    }
}

/// A ring of frames, reused burst after burst like an RX ring.
pub struct FrameRing {
    frames: Vec<MemFrame>,
}

impl FrameRing {
    /// `n` frames (allocates once, at setup).
    pub fn new(n: usize) -> FrameRing {
        FrameRing { frames: vec![MemFrame::default(); n.max(1)] }
    }

    pub fn frames_mut(&mut self) -> &mut [MemFrame] {
        &mut self.frames
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_pull_and_oversize() {
        let mut f = MemFrame::boxed_from(&[1, 2, 3, 4, 5]);
        assert_eq!(f.data(), &[1, 2, 3, 4, 5]);
        f.pull_front(2);
        assert_eq!(f.data(), &[3, 4, 5]);
        f.data_mut()[0] = 9;
        assert_eq!(f.data(), &[9, 4, 5]);
        assert!(!f.load(1, &[0; FRAME_DATA_BYTES + 1]));
        assert_eq!(f.data(), &[9, 4, 5]);
        assert!(f.load(2, &[7; FRAME_DATA_BYTES]));
        assert_eq!(f.len(), FRAME_DATA_BYTES);
        assert_eq!(f.seq, 2);
        // Chunked copy: exact bytes whether or not the source has room past the record.
        let src: Vec<u8> = (0..200u8).collect();
        for (at, len) in
            [(0, 0), (0, 1), (3, 64), (100, 100), (150, 50), (199, 1), (0, 200), (136, 64), (137, 63), (0, 65)]
        {
            assert!(f.load_from(9, &src, at, len));
            assert_eq!(f.data(), &src[at..at + len], "at {at} len {len}");
        }
        assert!(!f.load_from(9, &src, 190, 20), "past the end");
        assert!(!f.load_from(9, &vec![0; 4096], 0, FRAME_DATA_BYTES + 1));
    }
}

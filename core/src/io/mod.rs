//! Packet I/O: the buffer trait the data path works on, and the backends.
//!
//! The core (`wire`, `ilm`, `dataplane`, `stats`) depends only on [`PacketMut`]; the
//! backends (`mem` for tests and replay, `pcap` for files, AF_XDP for NICs) implement it.

pub mod afxdp;
pub mod mem;
pub mod pcap;
pub mod xdp;

/// A received frame that the data path may rewrite in place.
pub trait PacketMut {
    /// The frame's current bytes.
    fn data(&self) -> &[u8];
    /// The frame's current bytes, writable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Removes `n` bytes from the front of the frame. Callers guarantee
    /// `n <= data().len()`. A backend that can move the frame start does so in O(1);
    /// one that cannot moves the remaining bytes (and says so where it is implemented).
    fn pull_front(&mut self, n: usize);
}

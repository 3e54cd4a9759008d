//! Packet I/O: the buffer trait the data path works on, the burst RX/TX traits every
//! backend implements, and the backends.
//!
//! The one worker loop (`dataplane::worker`) is written once over [`RxQueue`] +
//! [`TxQueue`], as DPDK's l3fwd is written over `rte_eth_rx_burst`/`rte_eth_tx_burst`:
//!
//! * [`capture`]: bursts of an in-memory capture copied into [`mem`] frames, for
//!   `replay` and `bench`, with a [`capture::Sink`] as the "wire" (counting, keeping
//!   the output frames, or recording each packet's verdict for `diff`);
//! * [`afxdp`]: AF_XDP sockets on real interfaces, for `run`;
//! * [`mem`]: the frame type itself, for tests and benches.
//!
//! The loop is generic over the backend, so the hot path is monomorphised per backend:
//! no dynamic dispatch per packet or per burst.

pub mod afxdp;
pub mod capture;
pub mod mem;
pub mod pcap;
mod verdict;
pub mod veth;
pub mod xdp;

pub use verdict::Verdict;

use crate::stats::{TxTally, WorkerStats};
use std::time::Instant;

/// Default packets per burst: a DPDK-style batch that amortises per-burst work.
pub const BURST: usize = 32;
/// Largest burst a backend is asked for and `process_burst` takes in one chunk.
pub const MAX_BURST: usize = 256;

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

/// What one receive call found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rx {
    /// `n >= 1` packets are in [`RxQueue::burst`].
    Burst(usize),
    /// Nothing arrived; poll again.
    Empty,
    /// The source is exhausted (a finite capture): the worker stops.
    End,
}

/// The receive half of one queue.
pub trait RxQueue {
    /// The packet buffer type the data path rewrites.
    type Pkt: PacketMut;

    /// Receives up to `max` packets (`1..=MAX_BURST`). Counts per-port receive
    /// counters it knows of, and packets dropped before they reach a buffer (counted
    /// as received and dropped). Must not allocate, lock or log.
    fn rx_burst(&mut self, max: usize, stats: &mut WorkerStats) -> Rx;

    /// The `n` packets of the last `Rx::Burst(n)`.
    fn burst(&mut self) -> &mut [Self::Pkt];

    /// For a paced source: how long until its next packet is due (zero when one is
    /// due now). The worker waits that long before the next `rx_burst`, parked for QSBR
    /// and still watching its stop flag, and a paced `rx_burst` then returns only the
    /// packets already due. Free-running sources return `None`.
    #[inline(always)]
    fn pace(&mut self) -> Option<std::time::Duration> {
        None
    }
}

/// The transmit half of one queue: it takes the burst its [`RxQueue`] half received,
/// with one verdict per packet, so a forwarded buffer leaves without a copy (as an
/// mbuf goes from `rte_eth_rx_burst` to `rte_eth_tx_burst`).
pub trait TxQueue: RxQueue {
    /// Transmits the packets of the last burst whose verdict is `Forward`, and
    /// releases the others (already counted as drops by the data path). Counts
    /// transmitted packets, and drops it causes itself (e.g. a full TX ring).
    /// `forwarded` holds the burst's forwarded packets and bytes per port: a backend
    /// that sends every one of them counts them all at once with
    /// `WorkerStats::count_tx_tally`.
    fn tx_burst(&mut self, verdicts: &[Verdict], forwarded: &TxTally, stats: &mut WorkerStats);

    /// Housekeeping after every poll: flush due TX batches, reclaim completions,
    /// kick the kernel. `idle`: the poll found nothing.
    #[inline(always)]
    fn poll(&mut self, _idle: bool, _now: Instant, _stats: &mut WorkerStats) {}

    /// Whether frames are staged or in flight (an idle worker does not nap then).
    #[inline(always)]
    fn busy(&self) -> bool {
        false
    }

    /// Copies backend event counters (wakeups, ring events) into `stats` before the
    /// worker publishes them.
    #[inline(always)]
    fn export(&self, _stats: &mut WorkerStats) {}

    /// Shutdown: sends what is staged, waits (bounded) for frames in flight, and
    /// counts whatever could not leave as a drop, so rx = tx + drops still holds.
    fn drain(&mut self, _stats: &mut WorkerStats) {}
}

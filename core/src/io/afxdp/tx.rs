//! Per-output-port TX staging for one worker.
//!
//! Forwarded frames are staged per out port and handed to the port's TX ring when
//! a batch is full, when the oldest staged frame has waited [`TX_DRAIN`], or when the
//! worker found nothing to receive (no more frames are coming right now, so holding
//! would only add latency). In copy mode every submission costs a `sendto()`, which is
//! why a partial batch may wait a little for company.
//!
//! No allocation, no locks, no syscalls except the TX kicks done by `io::afxdp`.

use super::{new_pending, Pending, Port, XdpFrame};
use crate::io::MAX_BURST;
use crate::stats::{DropReason, WorkerStats};
use std::time::{Duration, Instant};

/// Longest a partial batch waits in staging.
pub const TX_DRAIN: Duration = Duration::from_micros(100);

/// Frames staged for one out port.
pub struct TxStage {
    /// Config port index (for the per-port counters).
    pub port: usize,
    /// Index of the worker's socket that transmits for this port.
    pub socket: usize,
    q: Pending,
    /// When the oldest frame now staged was staged (None: empty or not yet timed).
    since: Option<Instant>,
    /// Most frames staged at once; beyond this a frame is a `tx_ring_full` drop
    /// (the TX ring has not drained: the link or the peer is slower than RX).
    cap: usize,
}

impl TxStage {
    pub fn new(port: usize, socket: usize, cap: usize) -> TxStage {
        TxStage { port, socket, q: new_pending(cap), since: None, cap }
    }

    pub fn len(&self) -> usize {
        self.q.len()
    }

    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    /// Stages one forwarded frame, or gives it back when staging is full (the caller
    /// returns it to the free list and counts `tx_ring_full`).
    #[inline(always)]
    pub fn stage(&mut self, f: XdpFrame) -> Result<(), XdpFrame> {
        if self.q.len() >= self.cap {
            return Err(f);
        }
        // len < cap = the capacity the deque was made with: no reallocation.
        self.q.push_back(f);
        Ok(())
    }

    /// Whether the staged frames should go to the TX ring now.
    #[inline(always)]
    pub fn due(&mut self, batch: usize, idle: bool, now: Instant, drain: Duration) -> bool {
        let n = self.q.len();
        if n == 0 {
            return false;
        }
        if n >= batch || idle {
            return true;
        }
        match self.since {
            None => {
                self.since = Some(now);
                drain.is_zero()
            }
            Some(t) => now.duration_since(t) >= drain,
        }
    }

    /// Submits as many staged frames as the TX ring takes and counts them as sent.
    /// Returns how many were submitted.
    #[inline]
    pub fn flush(&mut self, port: &mut Port, stats: &mut WorkerStats, now: Instant) -> usize {
        let mut sent = 0;
        let mut lens = [0u16; MAX_BURST];
        while !self.q.is_empty() {
            let k = self.q.len().min(MAX_BURST).min(port.tx_room());
            if k == 0 {
                break;
            }
            for (l, f) in lens.iter_mut().zip(self.q.iter()).take(k) {
                *l = f.len() as u16;
            }
            let (n, _) = port.tx_burst(&mut self.q, k);
            for l in &lens[..n] {
                stats.count_tx(self.port, *l as usize);
            }
            sent += n;
            if n < k {
                break;
            }
        }
        self.since = if self.q.is_empty() { None } else { Some(now) };
        sent
    }

    /// Gives every staged frame back (shutdown after the drain deadline), counting
    /// each as `tx_ring_full`.
    pub fn discard(&mut self, free: &mut Vec<u64>, stats: &mut WorkerStats) {
        while let Some(f) = self.q.pop_front() {
            stats.count_drop(DropReason::TxRingFull);
            free.push(f.chunk());
        }
        self.since = None;
    }
}

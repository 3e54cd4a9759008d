//! A cheap clock for the worker's once-per-burst time reads.
//!
//! A worker reads the time once per burst: the burst latency histogram, its publishing
//! deadline and the TX flush timers of a live backend. `Instant::now()` is a vDSO call
//! (about 23 ns on the reference VM, several per cent of a replay worker's time at
//! 32-packet bursts); reading the TSC is one instruction (about 9 ns). [`BurstClock`]
//! reads the TSC where the kernel itself keeps time with it (x86_64, clocksource
//! `tsc`), and turns ticks into an [`Instant`] from an anchor, with a rate calibrated
//! once per process against `Instant`. Elsewhere it is `Instant::now()`.
//!
//! The two clocks drift apart by the calibration error (tens of ppm) and by NTP's slew
//! of the monotonic clock, so the worker re-anchors whenever it reads the real clock
//! anyway (at least every publishing interval, 100 ms): a tick-derived `Instant` is
//! then within a few microseconds of `Instant::now()`.
//!
//! **Invariants**: RDTSC reads a counter; it has no memory effects and cannot fault.
#![allow(unsafe_code)]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long the calibration compares the TSC with `Instant` (once per process).
const CALIBRATION: Duration = Duration::from_millis(5);

#[inline(always)]
fn rdtsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: RDTSC only reads the time-stamp counter (see the module invariants).
    unsafe {
        std::arch::x86_64::_rdtsc()
    }
    #[cfg(not(target_arch = "x86_64"))]
    0
}

/// Nanoseconds per TSC tick in 32.32 fixed point, or None where the TSC is not used.
fn rate() -> Option<u64> {
    static RATE: OnceLock<Option<u64>> = OnceLock::new();
    *RATE.get_or_init(|| {
        if !cfg!(target_arch = "x86_64") {
            return None;
        }
        // The kernel only keeps time with a TSC that is constant-rate and synchronised
        // across CPUs; otherwise it picks another clocksource, and so do we.
        let source = std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource");
        if source.ok()?.trim() != "tsc" {
            return None;
        }
        let (t0, c0) = (Instant::now(), rdtsc());
        let mut t = t0;
        while t.duration_since(t0) < CALIBRATION {
            t = Instant::now();
        }
        let ticks = rdtsc().wrapping_sub(c0);
        let ns = t.duration_since(t0).as_nanos() as u64;
        (ticks > 0).then(|| (u128::from(ns) << 32).div_ceil(u128::from(ticks)) as u64)
    })
}

/// Calibrates the TSC rate now, if it is used (about 5 ms, once per process), so that a
/// timed run does not pay for it.
pub fn calibrate() {
    let _ = rate();
}

/// A worker's clock: [`BurstClock::now`] is the cheap read, [`BurstClock::anchor`] the
/// real one.
#[derive(Clone, Copy, Debug)]
pub struct BurstClock {
    /// Nanoseconds per tick, 32.32 fixed point (None: `now` reads `Instant`).
    rate: Option<u64>,
    anchor: Instant,
    anchor_tsc: u64,
}

impl BurstClock {
    /// A clock anchored now (calibrates first if no one has yet).
    pub fn new() -> BurstClock {
        let rate = rate();
        BurstClock { rate, anchor: Instant::now(), anchor_tsc: rdtsc() }
    }

    /// Whether `now` reads the TSC.
    pub fn uses_tsc(&self) -> bool {
        self.rate.is_some()
    }

    /// The time, from the TSC where it is used.
    #[inline(always)]
    pub fn now(&self) -> Instant {
        match self.rate {
            Some(q) => {
                let ticks = rdtsc().wrapping_sub(self.anchor_tsc);
                // (A TSC read that looks earlier than the anchor, e.g. across CPUs on a
                // machine whose TSCs disagree, wraps to a huge value: clamp it to the
                // anchor rather than jump hours ahead.)
                let ticks = if ticks > u64::MAX / 2 { 0 } else { ticks };
                let ns = (u128::from(ticks) * u128::from(q)) >> 32;
                self.anchor + Duration::from_nanos(ns as u64)
            }
            None => Instant::now(),
        }
    }

    /// Reads the real clock and re-anchors the tick count to it.
    #[inline]
    pub fn anchor(&mut self) -> Instant {
        self.anchor_tsc = rdtsc();
        self.anchor = Instant::now();
        self.anchor
    }
}

impl Default for BurstClock {
    fn default() -> Self {
        BurstClock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tick-derived instants follow the real clock: over a 20 ms sleep, within 1%
    /// (the calibration is better than that; the bound leaves room for a busy machine).
    #[test]
    fn ticks_follow_the_real_clock() {
        let mut c = BurstClock::new();
        let a = c.anchor();
        std::thread::sleep(Duration::from_millis(20));
        let by_ticks = c.now().duration_since(a);
        let real = a.elapsed();
        let err = by_ticks.as_nanos().abs_diff(real.as_nanos()) as f64 / real.as_nanos() as f64;
        assert!(err < 0.01, "ticks {by_ticks:?} vs real {real:?} (tsc: {})", c.uses_tsc());
        // Monotonic between anchors.
        let (x, y) = (c.now(), c.now());
        assert!(y >= x);
    }
}

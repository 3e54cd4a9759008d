//! Per-worker latency histograms (nanoseconds), recorded once per burst.
//!
//! Each worker owns one; they are merged only when a report is due, never shared.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest value tracked: 10 s. Larger samples are clamped, never lost.
const MAX_TRACKED_NS: u64 = 10_000_000_000;

/// Buckets of the live burst-latency histogram that workers publish with their counters
/// (the Prometheus histogram): bucket `i < LAT_BUCKETS - 1` counts bursts of at most
/// `2^(LAT_FIRST_SHIFT + i)` ns (512 ns .. 67 ms, doubling), the last one the rest.
/// Powers of two, so a sample's bucket is one leading-zero count, not a search.
pub const LAT_BUCKETS: usize = 19;
/// log2 of the first bucket's upper bound in ns (512 ns: below any burst's cost).
pub const LAT_FIRST_SHIFT: u32 = 9;

/// The live histogram bucket of a sample of `ns` nanoseconds.
#[inline(always)]
pub fn lat_bucket(ns: u64) -> usize {
    let bits = 64 - ns.saturating_sub(1).leading_zeros();
    (bits.saturating_sub(LAT_FIRST_SHIFT) as usize).min(LAT_BUCKETS - 1)
}

/// Upper bound in ns of live bucket `i` (`None` for the last, unbounded one).
pub fn lat_bucket_le_ns(i: usize) -> Option<u64> {
    (i + 1 < LAT_BUCKETS).then(|| 1u64 << (LAT_FIRST_SHIFT as usize + i))
}

/// A worker's burst-latency histogram.
pub struct Latency {
    hist: Histogram<u64>,
}

/// Percentiles of a histogram, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub samples: u64,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// A histogram with 3 significant digits from 1 ns to 10 s (allocates: call at setup).
    pub fn new() -> Latency {
        let hist = Histogram::new_with_bounds(1, MAX_TRACKED_NS, 3).expect("static histogram bounds are valid");
        Latency { hist }
    }

    /// Records one sample; values outside the range are clamped (no allocation, no panic).
    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.hist.saturating_record(ns.clamp(1, MAX_TRACKED_NS));
    }

    /// Adds another histogram (report time only).
    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so `add` cannot fail.
        let _ = self.hist.add(&other.hist);
    }

    /// The underlying histogram, e.g. for percentile-distribution output.
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.hist
    }

    /// p50, p99, p99.9 and max.
    pub fn percentiles(&self) -> Percentiles {
        if self.hist.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            p50: self.hist.value_at_quantile(0.50),
            p99: self.hist.value_at_quantile(0.99),
            p999: self.hist.value_at_quantile(0.999),
            max: self.hist.max(),
            samples: self.hist.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_buckets_hold_samples_up_to_their_bound() {
        assert_eq!(lat_bucket(0), 0);
        assert_eq!(lat_bucket(512), 0);
        assert_eq!(lat_bucket(513), 1);
        assert_eq!(lat_bucket(1024), 1);
        assert_eq!(lat_bucket(1025), 2);
        for i in 0..LAT_BUCKETS - 1 {
            let le = lat_bucket_le_ns(i).unwrap();
            assert_eq!(lat_bucket(le), i, "le {le}");
            assert_eq!(lat_bucket(le + 1), i + 1, "le {le} + 1");
        }
        assert_eq!(lat_bucket_le_ns(LAT_BUCKETS - 2), Some(1 << 26));
        assert_eq!(lat_bucket_le_ns(LAT_BUCKETS - 1), None);
        assert_eq!(lat_bucket(u64::MAX), LAT_BUCKETS - 1);
    }

    #[test]
    fn percentiles_follow_samples_and_merge() {
        let mut a = Latency::new();
        for v in 1..=1000u64 {
            a.record(v * 100);
        }
        let p = a.percentiles();
        assert_eq!(p.samples, 1000);
        assert!((49_900..=50_100).contains(&p.p50), "{p:?}");
        assert!(p.max >= 100_000 && p.max <= 100_100);
        let mut b = Latency::new();
        b.record(u64::MAX);
        b.record(0);
        a.merge(&b);
        assert_eq!(a.percentiles().samples, 1002);
        assert!(a.percentiles().max >= MAX_TRACKED_NS);
        assert_eq!(Latency::new().percentiles(), Percentiles::default());
    }
}

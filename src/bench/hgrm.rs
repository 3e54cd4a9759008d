//! HdrHistogram's percentile-distribution text (`.hgrm`), as written by the Java
//! library's `outputPercentileDistribution` and read by its plotter and by tools such
//! as wrk2 and HdrHistogramVisualizer:
//!
//! ```text
//!        Value     Percentile TotalCount 1/(1-Percentile)
//!
//!        1.023 0.000000000000          1           1.00
//!        ...
//!       87.551 1.000000000000     100000
//! #[Mean    =        2.113, StdDeviation   =        1.004]
//! #[Max     =       87.551, Total count    =       100000]
//! #[Buckets =           24, SubBuckets     =         2048]
//! ```
//!
//! Values are scaled by `unit_ratio` (popgo records nanoseconds and writes
//! microseconds: ratio 1000), with three decimals.

use hdrhistogram::Histogram;
use std::fmt::Write;

/// Percentile steps per half-distance to 100% (the Java default).
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// The percentile distribution of `h`, values divided by `unit_ratio`.
pub fn percentile_distribution(h: &Histogram<u64>, unit_ratio: f64) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{:>12} {:>14} {:>10} {:>14}\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
            total += v.count_since_last_iteration();
            let value = v.value_iterated_to() as f64 / unit_ratio;
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                let _ = writeln!(s, "{value:12.3} {q:2.12} {total:10} {:14.2}", 1.0 / (1.0 - q));
            } else {
                let _ = writeln!(s, "{value:12.3} {q:2.12} {total:10}");
            }
        }
    }
    let (mean, stdev, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (h.mean() / unit_ratio, h.stdev() / unit_ratio, h.max() as f64 / unit_ratio)
    };
    let sub_buckets = (2.0 * 10f64.powi(h.sigfig() as i32)).log2().ceil().exp2() as u64;
    let _ = writeln!(s, "#[Mean    = {mean:12.3}, StdDeviation   = {stdev:12.3}]");
    let _ = writeln!(s, "#[Max     = {max:12.3}, Total count    = {:12}]", h.len());
    let _ = writeln!(s, "#[Buckets = {:12}, SubBuckets     = {sub_buckets:12}]", h.buckets());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_layout() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
        for v in 1..=10_000u64 {
            h.record(v * 10).unwrap();
        }
        let text = percentile_distribution(&h, 1000.0);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
        );
        assert_eq!(lines[1], "");
        let rows: Vec<Vec<f64>> = lines[2..lines.len() - 3]
            .iter()
            .map(|l| l.split_whitespace().map(|x| x.parse().unwrap()).collect())
            .collect();
        assert!(rows.len() > 20);
        // Monotonic values, percentiles and counts; the last row is 100% with every sample.
        for w in rows.windows(2) {
            assert!(w[0][0] <= w[1][0] && w[0][1] <= w[1][1] && w[0][2] <= w[1][2], "{w:?}");
        }
        let last = rows.last().unwrap();
        assert_eq!(last.len(), 3);
        assert_eq!(last[1], 1.0);
        assert_eq!(last[2], 10_000.0);
        assert!((last[0] - 100.0).abs() < 0.1, "{last:?}");
        assert!(lines[lines.len() - 3].starts_with("#[Mean    ="));
        assert!(lines[lines.len() - 2].contains("Total count    =        10000]"));
        assert!(lines[lines.len() - 1].contains("SubBuckets     =         2048]"));
    }
}

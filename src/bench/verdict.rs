//! The regression verdict: does a series of throughput measurements (Mpps, higher is
//! better) fall short of a baseline series by more than an allowance, beyond the noise
//! both series show?
//!
//! The rule (documented in the README), with B = baseline, C = current, PCT = the
//! allowed regression:
//!
//! - **regression** iff `median(C) < median(B) * (1 - PCT/100)` **and**
//!   `max(C) < min(B)`: the median dropped by more than PCT *and* every current
//!   repetition is slower than every baseline repetition (the min-max ranges do not
//!   overlap, so the drop is larger than the run-to-run noise measured in both runs).
//!   With 5 + 5 repetitions, non-overlap is a one-sided Mann-Whitney U test with
//!   U = 0, p = 1/252 ~ 0.004.
//! - **improvement**: the mirror image (`median(C) > median(B) * (1 + PCT/100)` and
//!   `min(C) > max(B)`).
//! - **unchanged** otherwise: within the allowance, or within the noise.
//!
//! Only a regression fails the gate. Pure functions, unit-tested on synthetic series.
//!
//! Two more comparisons share the outcome words:
//!
//! - `compare_instructions`: instructions per packet under callgrind (lower is better).
//!   The figure repeats to within tens of parts per million, so it is one number per run
//!   and the rule is a plain threshold: regression iff it grew by more than PCT.
//! - `compare_pairs`: interleaved runs of a baseline binary and the candidate
//!   (`--compare`). Each pair gives a ratio candidate/baseline; the log-ratios'
//!   mean and Student-t 95% confidence interval give the change and its uncertainty.
//!   Drift of the machine between pairs cancels in each ratio. Regression iff the
//!   whole interval lies below -PCT (slower by more than PCT with 95% confidence);
//!   improvement iff it lies above +PCT.

use serde::{Deserialize, Serialize};

/// Median, min and max of a series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// The series' median (mean of the middle two for an even count), min and max.
    /// An empty series gives zeros.
    pub fn of(xs: &[f64]) -> Spread {
        if xs.is_empty() {
            return Spread::default();
        }
        let mut v = xs.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        Spread { median, min: v[0], max: v[n - 1] }
    }

    /// (max - min) / median, in percent: the noise of the series.
    pub fn noise_pct(&self) -> f64 {
        if self.median == 0.0 {
            0.0
        } else {
            (self.max - self.min) / self.median * 100.0
        }
    }
}

/// What the comparison found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Regression,
    Unchanged,
    Improvement,
}

/// A verdict with the numbers behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub outcome: Outcome,
    /// The allowance PCT.
    pub max_regression_pct: f64,
    pub baseline: Spread,
    pub current: Spread,
    /// (median(C) - median(B)) / median(B), in percent (negative = slower).
    pub change_pct: f64,
    /// Noise of each series, (max - min) / median in percent.
    pub baseline_noise_pct: f64,
    pub current_noise_pct: f64,
    /// Whether the min-max ranges overlap.
    pub ranges_overlap: bool,
    /// One line: the outcome and why, with the numbers.
    pub reason: String,
}

impl Verdict {
    pub fn is_regression(&self) -> bool {
        self.outcome == Outcome::Regression
    }
}

/// Compares `current` with `baseline` (both throughput series, higher is better).
pub fn compare(baseline: &[f64], current: &[f64], max_regression_pct: f64) -> Verdict {
    let b = Spread::of(baseline);
    let c = Spread::of(current);
    let change_pct = if b.median == 0.0 { 0.0 } else { (c.median - b.median) / b.median * 100.0 };
    let below = c.max < b.min;
    let above = c.min > b.max;
    let pct = max_regression_pct;
    let nums = format!(
        "median {:.3} vs baseline {:.3} Mpps ({:+.1}%), range {:.3}..{:.3} vs {:.3}..{:.3}",
        c.median, b.median, change_pct, c.min, c.max, b.min, b.max
    );
    let (outcome, why) = if change_pct < -pct && below {
        (Outcome::Regression, format!("slower by more than {pct}% and the ranges do not overlap"))
    } else if change_pct > pct && above {
        (Outcome::Improvement, format!("faster by more than {pct}% and the ranges do not overlap"))
    } else if change_pct < -pct {
        (Outcome::Unchanged, format!("slower by more than {pct}%, but within the noise (the ranges overlap)"))
    } else if change_pct > pct {
        (Outcome::Unchanged, format!("faster by more than {pct}%, but within the noise (the ranges overlap)"))
    } else {
        (Outcome::Unchanged, format!("within the {pct}% allowance"))
    };
    let word = word(outcome);
    Verdict {
        outcome,
        max_regression_pct: pct,
        baseline: b,
        current: c,
        change_pct,
        baseline_noise_pct: b.noise_pct(),
        current_noise_pct: c.noise_pct(),
        ranges_overlap: !below && !above,
        reason: format!("{word}: {why}: {nums}"),
    }
}

/// Instructions per packet of a baseline and of this run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstrVerdict {
    pub outcome: Outcome,
    /// The allowance PCT (`--max-instr-regression`).
    pub max_regression_pct: f64,
    pub baseline_per_packet: f64,
    pub current_per_packet: f64,
    /// (current - baseline) / baseline, in percent (positive = more instructions).
    pub change_pct: f64,
    pub reason: String,
}

impl InstrVerdict {
    pub fn is_regression(&self) -> bool {
        self.outcome == Outcome::Regression
    }
}

fn word(o: Outcome) -> &'static str {
    match o {
        Outcome::Regression => "REGRESSION",
        Outcome::Unchanged => "unchanged",
        Outcome::Improvement => "improvement",
    }
}

/// Compares instructions per packet (lower is better) with an allowance of `pct` percent.
pub fn compare_instructions(baseline: f64, current: f64, pct: f64) -> InstrVerdict {
    let change_pct = if baseline > 0.0 { (current - baseline) / baseline * 100.0 } else { 0.0 };
    let (outcome, why) = if change_pct > pct {
        (Outcome::Regression, format!("more than {pct}% more instructions per packet"))
    } else if change_pct < -pct {
        (Outcome::Improvement, format!("more than {pct}% fewer instructions per packet"))
    } else {
        (Outcome::Unchanged, format!("within the {pct}% allowance"))
    };
    InstrVerdict {
        outcome,
        max_regression_pct: pct,
        baseline_per_packet: baseline,
        current_per_packet: current,
        change_pct,
        reason: format!(
            "{}: {why}: {current:.2} vs baseline {baseline:.2} instructions/packet ({change_pct:+.2}%)",
            word(outcome)
        ),
    }
}

/// Confidence level of the `--compare` interval.
pub const CONFIDENCE: f64 = 0.95;

/// Two-sided 95% Student-t quantile (t_{0.975}) for `df` degrees of freedom.
pub fn t975(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => T[df - 1],
        31..=60 => 2.000,
        61..=120 => 1.980,
        _ => 1.960,
    }
}

/// The comparison of interleaved pairs (candidate / baseline throughput).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairVerdict {
    pub outcome: Outcome,
    /// The allowance PCT (`--max-regression`).
    pub max_regression_pct: f64,
    pub pairs: usize,
    /// Geometric mean of the ratios candidate/baseline, minus 1, in percent
    /// (negative = the candidate is slower).
    pub change_pct: f64,
    /// The 95% confidence interval of `change_pct` (Student t over the log-ratios).
    pub ci_low_pct: f64,
    pub ci_high_pct: f64,
    /// Standard deviation of the log-ratios (the pair-to-pair noise, ~ relative).
    pub log_ratio_sd: f64,
    pub reason: String,
}

impl PairVerdict {
    pub fn is_regression(&self) -> bool {
        self.outcome == Outcome::Regression
    }
}

/// Compares paired throughputs (higher is better): `baseline[i]` and `candidate[i]`
/// were measured back to back. Needs at least two pairs for an interval.
pub fn compare_pairs(baseline: &[f64], candidate: &[f64], pct: f64) -> PairVerdict {
    let logs: Vec<f64> =
        baseline.iter().zip(candidate).filter(|(b, c)| **b > 0.0 && **c > 0.0).map(|(b, c)| (c / b).ln()).collect();
    let n = logs.len();
    let mean = if n == 0 { 0.0 } else { logs.iter().sum::<f64>() / n as f64 };
    let sd = if n < 2 {
        f64::INFINITY
    } else {
        (logs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    };
    let half = if n < 2 { f64::INFINITY } else { t975(n - 1) * sd / (n as f64).sqrt() };
    let pctof = |x: f64| (x.exp() - 1.0) * 100.0;
    let (change_pct, lo, hi) = (pctof(mean), pctof(mean - half), pctof(mean + half));
    let (outcome, why) = if hi < -pct {
        (Outcome::Regression, format!("slower by more than {pct}% with 95% confidence"))
    } else if lo > pct {
        (Outcome::Improvement, format!("faster by more than {pct}% with 95% confidence"))
    } else if n < 2 {
        (Outcome::Unchanged, "one pair gives no interval".to_string())
    } else {
        (Outcome::Unchanged, format!("the 95% interval reaches within the {pct}% allowance"))
    };
    PairVerdict {
        outcome,
        max_regression_pct: pct,
        pairs: n,
        change_pct,
        ci_low_pct: lo,
        ci_high_pct: hi,
        log_ratio_sd: if sd.is_finite() { sd } else { 0.0 },
        reason: format!(
            "{}: {why}: candidate/baseline {change_pct:+.2}% (95% CI {lo:+.2}% .. {hi:+.2}%) over {n} interleaved pairs",
            word(outcome)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A series around `center` with +-`jitter` relative noise (deterministic).
    fn series(center: f64, jitter: f64) -> Vec<f64> {
        [0.0, 1.0, -1.0, 0.5, -0.5, 0.8, -0.3].iter().map(|k| center * (1.0 + k * jitter)).collect()
    }

    #[test]
    fn spread_of_series() {
        assert_eq!(Spread::of(&[3.0, 1.0, 2.0]), Spread { median: 2.0, min: 1.0, max: 3.0 });
        assert_eq!(Spread::of(&[4.0, 1.0, 2.0, 3.0]).median, 2.5);
        assert_eq!(Spread::of(&[]), Spread::default());
        assert!((Spread::of(&[9.0, 10.0, 11.0]).noise_pct() - 20.0).abs() < 1e-9);
    }

    #[test]
    fn clear_regression_fails() {
        let v = compare(&series(10.0, 0.02), &series(6.0, 0.02), 10.0);
        assert_eq!(v.outcome, Outcome::Regression, "{}", v.reason);
        assert!(v.is_regression());
        assert!((v.change_pct + 40.0).abs() < 0.01);
        assert!(!v.ranges_overlap);
        assert!(v.reason.starts_with("REGRESSION"), "{}", v.reason);
    }

    #[test]
    fn pure_noise_passes() {
        // The same distribution, different draws and orders; 5% noise, 5% allowance.
        let a = series(10.0, 0.05);
        let mut b = a.clone();
        b.reverse();
        b[0] *= 0.97;
        for pct in [1.0, 5.0, 10.0] {
            let v = compare(&a, &b, pct);
            assert_eq!(v.outcome, Outcome::Unchanged, "{}", v.reason);
        }
        // A big median drop with overlapping ranges (a noisy run) is noise, not a regression.
        let noisy = [4.0, 5.0, 6.0, 11.0, 12.0];
        let v = compare(&series(10.0, 0.02), &noisy, 10.0);
        assert_eq!(v.outcome, Outcome::Unchanged, "{}", v.reason);
        assert!(v.ranges_overlap);
        // Non-overlapping but small: within the allowance.
        let v = compare(&series(10.0, 0.01), &series(9.6, 0.01), 10.0);
        assert_eq!(v.outcome, Outcome::Unchanged, "{}", v.reason);
        assert!(!v.ranges_overlap);
    }

    #[test]
    fn improvement_passes() {
        let v = compare(&series(10.0, 0.02), &series(14.0, 0.02), 10.0);
        assert_eq!(v.outcome, Outcome::Improvement, "{}", v.reason);
        assert!(!v.is_regression());
        assert!(v.change_pct > 39.0);
    }

    #[test]
    fn instructions_threshold() {
        let v = compare_instructions(300.0, 309.3, 1.0);
        assert!(v.is_regression(), "{}", v.reason);
        assert!((v.change_pct - 3.1).abs() < 1e-9);
        assert!(v.reason.starts_with("REGRESSION"), "{}", v.reason);
        // Tens of parts per million of run-to-run noise is far inside 1%.
        assert_eq!(compare_instructions(300.0, 300.001, 1.0).outcome, Outcome::Unchanged);
        assert_eq!(compare_instructions(300.0, 303.1, 1.0).outcome, Outcome::Regression);
        assert_eq!(compare_instructions(300.0, 302.9, 1.0).outcome, Outcome::Unchanged);
        assert_eq!(compare_instructions(300.0, 290.0, 1.0).outcome, Outcome::Improvement);
    }

    #[test]
    fn t_quantiles() {
        assert_eq!(t975(4), 2.776);
        assert_eq!(t975(30), 2.042);
        assert!(t975(0).is_infinite());
        assert_eq!(t975(1000), 1.96);
    }

    #[test]
    fn pairs_cancel_drift() {
        // The machine slows down 40% over the run; each pair sees the same speed, the
        // candidate is 1% slower (+-0.5% noise): no regression at 3%, and the interval
        // holds -1%.
        let base: Vec<f64> = (0..8).map(|i| 20.0 * (1.0 - 0.05 * i as f64)).collect();
        let jit = [0.005, -0.005, 0.003, -0.002, 0.0, 0.004, -0.004, 0.001];
        let cand: Vec<f64> = base.iter().zip(jit).map(|(b, j)| b * 0.99 * (1.0 + j)).collect();
        let v = compare_pairs(&base, &cand, 3.0);
        assert_eq!(v.outcome, Outcome::Unchanged, "{}", v.reason);
        assert!(v.ci_low_pct < -1.0 && v.ci_high_pct > -1.0, "{}", v.reason);
        assert_eq!(v.pairs, 8);
        // Unpaired, the same series' ranges overlap widely; paired, a 10% slowdown is clear.
        let slow: Vec<f64> = base.iter().zip(jit).map(|(b, j)| b * 0.90 * (1.0 + j)).collect();
        let v = compare_pairs(&base, &slow, 3.0);
        assert!(v.is_regression(), "{}", v.reason);
        assert!(v.ci_high_pct < -3.0 && (v.change_pct + 10.0).abs() < 0.5, "{}", v.reason);
        assert_eq!(compare(&base, &slow, 3.0).outcome, Outcome::Unchanged);
        // Faster: an improvement, not a regression.
        let fast: Vec<f64> = base.iter().zip(jit).map(|(b, j)| b * 1.2 * (1.0 + j)).collect();
        assert_eq!(compare_pairs(&base, &fast, 3.0).outcome, Outcome::Improvement);
        // One pair: no interval, never a verdict either way.
        let v = compare_pairs(&[10.0], &[5.0], 3.0);
        assert_eq!(v.outcome, Outcome::Unchanged, "{}", v.reason);
        // Noisy pairs widen the interval: a 5% mean drop with +-10% noise is not proven.
        let noisy = [0.85, 1.05, 0.9, 1.0, 0.95];
        let cand: Vec<f64> = base.iter().zip(noisy).map(|(b, k)| b * k).collect();
        let v = compare_pairs(&base[..5], &cand, 3.0);
        assert_eq!(v.outcome, Outcome::Unchanged, "{}", v.reason);
    }
}

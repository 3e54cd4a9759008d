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
    let word = match outcome {
        Outcome::Regression => "REGRESSION",
        Outcome::Unchanged => "unchanged",
        Outcome::Improvement => "improvement",
    };
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
}

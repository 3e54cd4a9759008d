//! How generated traffic draws its labels: the label distribution, the Zipf table
//! behind it, and the small deterministic PRNG every generator uses.

/// How labels are drawn: by rank, rank 0 being the first label of the set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LabelDist {
    /// Always the first label.
    Single,
    /// Uniform over the label set.
    Uniform,
    /// Zipf with exponent `s` (rank 0 most frequent).
    Zipf(f64),
}

impl LabelDist {
    /// A sampler of ranks in `0..labels` (`labels` > 0) following this distribution.
    pub fn sampler(self, labels: u32) -> RankSampler {
        match self {
            LabelDist::Single => RankSampler::Single,
            LabelDist::Uniform => RankSampler::Uniform(labels),
            LabelDist::Zipf(s) => RankSampler::Zipf(zipf_cdf(labels, s)),
        }
    }
}

/// Draws label ranks; built by [`LabelDist::sampler`].
#[derive(Clone, Debug)]
pub enum RankSampler {
    /// Rank 0, without a draw.
    Single,
    /// One [`Rng::below`] draw over this many labels.
    Uniform(u32),
    /// One [`Rng::unit`] draw, looked up in this cumulative distribution.
    Zipf(Vec<f64>),
}

impl RankSampler {
    /// The next rank.
    pub fn sample(&self, rng: &mut Rng) -> u32 {
        match self {
            RankSampler::Single => 0,
            RankSampler::Uniform(n) => rng.below(*n as u64) as u32,
            RankSampler::Zipf(cdf) => {
                let u = rng.unit();
                cdf.partition_point(|c| *c < u).min(cdf.len() - 1) as u32
            }
        }
    }
}

/// Inverse-CDF table for Zipf sampling over ranks 1..=n: entry k-1 is the probability
/// of a rank <= k.
fn zipf_cdf(n: u32, s: f64) -> Vec<f64> {
    let mut cdf = Vec::with_capacity(n as usize);
    let mut acc = 0.0;
    for k in 1..=n {
        acc += 1.0 / (k as f64).powf(s);
        cdf.push(acc);
    }
    cdf.iter_mut().for_each(|c| *c /= acc);
    cdf
}

/// A small deterministic PRNG (xorshift64*): the same arguments give the same file.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() >> 32) * n) >> 32
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samplers_stay_in_range_and_follow_their_distribution() {
        let mut rng = Rng::new(3);
        assert!((0..100).all(|_| LabelDist::Single.sampler(10).sample(&mut rng) == 0));
        let u = LabelDist::Uniform.sampler(10);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[u.sample(&mut rng) as usize] += 1;
        }
        assert!(seen.iter().all(|n| (800..1200).contains(n)), "{seen:?}");
        // Zipf 1 over 4 ranks: 1/(1 + 1/2 + 1/3 + 1/4) = 48% on rank 0.
        let z = LabelDist::Zipf(1.0).sampler(4);
        let mut seen = [0u32; 4];
        for _ in 0..10_000 {
            seen[z.sample(&mut rng) as usize] += 1;
        }
        assert!((4500..5100).contains(&seen[0]) && seen.windows(2).all(|w| w[0] > w[1]), "{seen:?}");
        let RankSampler::Zipf(cdf) = z else { panic!("a Zipf sampler") };
        assert_eq!(cdf.len(), 4);
        assert_eq!(cdf[3], 1.0);
    }
}

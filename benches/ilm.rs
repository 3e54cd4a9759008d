//! ILM lookup cost: hits and misses, sequential and random labels, over a table with
//! 100,000 POPGO entries (4 MiB, 2^20 slots).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use popgo::traffic::dist::Rng;

mod common;

fn lookups(c: &mut Criterion) {
    let snap = common::snapshot();
    let n = 4096;
    let mut rng = Rng::new(7);
    let seq_hit: Vec<u32> = (0..n).map(|i| 16 + i).collect();
    let rnd_hit: Vec<u32> = (0..n).map(|_| 16 + rng.below(common::LABELS as u64) as u32).collect();
    let rnd_miss: Vec<u32> = (0..n).map(|_| 200_000 + rng.below(800_000) as u32).collect();
    let mut g = c.benchmark_group("ilm");
    g.throughput(Throughput::Elements(n as u64));
    for (name, labels) in [("hit/sequential", &seq_hit), ("hit/random", &rnd_hit), ("miss/random", &rnd_miss)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut acc = 0u32;
                for l in labels {
                    let e = snap.ilm.lookup(black_box(*l));
                    acc = acc.wrapping_add(e.adjacency() as u32 + e.is_empty() as u32);
                }
                acc
            })
        });
    }
    g.finish();
}

criterion_group!(benches, lookups);
criterion_main!(benches);

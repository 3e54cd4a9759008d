//! Full burst cost: `process_burst` on 32-packet bursts (parse, lookup, pop, TTL,
//! checksum, L2 rewrite), reloading the frames before each burst like an RX ring.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use popgo::dataplane::{process_burst, BurstCtx, Verdict, BURST};
use popgo::io::mem::MemFrame;
use popgo::stats::WorkerStats;

mod common;

fn bursts(c: &mut Criterion) {
    let snap = common::snapshot();
    let frames = common::frames(BURST as u64 * 64, 64);
    let mut g = c.benchmark_group("burst");
    g.throughput(Throughput::Elements(BURST as u64));
    let mut ctx = BurstCtx::new();
    let mut stats = WorkerStats::default();
    let mut verdicts = [Verdict::default(); BURST];
    let mut which = 0usize;
    g.bench_function("process_burst/32x64B/100k_labels", |b| {
        b.iter_batched_ref(
            || {
                which = (which + 1) % 64;
                let mut v = vec![MemFrame::default(); BURST];
                for (f, src) in v.iter_mut().zip(&frames[which * BURST..(which + 1) * BURST]) {
                    f.load(0, src);
                }
                v
            },
            |pkts| process_burst(&snap, pkts, &mut verdicts, &mut ctx, &mut stats),
            BatchSize::SmallInput,
        )
    });
    g.finish();
    assert!(stats.tx_pkts == 0 && stats.dropped_pkts() == 0, "every synthetic frame is forwarded");
}

criterion_group!(benches, bursts);
criterion_main!(benches);

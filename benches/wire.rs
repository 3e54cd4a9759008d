//! Parse cost: Ethernet (+VLAN) and the top label stack entry, per packet.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use popgo::wire::ethernet::Frame;
use popgo::wire::mpls::{LabelEntry, LabelStack};

mod common;

fn parse(c: &mut Criterion) {
    let frames = common::frames(1024, 64);
    let mut g = c.benchmark_group("wire");
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function("ethernet+top_label/64B", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for f in &frames {
                if let Ok(fr) = Frame::new_checked(black_box(f)) {
                    if let Ok(e) = LabelEntry::read(f, fr.l2_bytes()) {
                        acc ^= e.label();
                    }
                }
            }
            acc
        })
    });
    g.bench_function("ethernet+label_stack/64B", |b| {
        b.iter(|| {
            let mut depth = 0;
            for f in &frames {
                if let Ok(fr) = Frame::new_checked(black_box(f)) {
                    depth += LabelStack::new_checked(fr.payload()).map_or(0, |s| s.depth());
                }
            }
            depth
        })
    });
    g.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);

//! The mirror's update order (a recording store, no kernel needed) and the lab's
//! reference program. The offload program itself is checked against `process_burst`
//! in `dataplane::offload_tests` (this module may not depend on the data path).

use super::*;
use crate::ilm::{Adjacency, Af, Ilm, IlmEntry, Snapshot};
use crate::testkit::Rng;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Records what the mirror writes and checks, at every adjacency write, that no label
/// value names the slot now and none did since the last grace period.
#[derive(Default)]
struct Recorder {
    labels: HashMap<u32, u32>,
    adjs: HashMap<u32, [u8; ADJ_VALUE_BYTES]>,
    /// Slots some label value named since the last grace period.
    hot: HashSet<u32>,
    graces: usize,
}

fn slot_of(v: u32) -> Option<u32> {
    (v & OFFLOAD != 0).then_some(v & SLOT_MASK)
}

impl MirrorStore for Recorder {
    fn label(&self, label: u32) -> u32 {
        self.labels.get(&label).copied().unwrap_or(0)
    }
    fn set_label(&mut self, label: u32, v: u32) {
        if let Some(s) = slot_of(v) {
            assert!(self.adjs.contains_key(&s), "label {label} names slot {s} before it was written");
            self.hot.insert(s);
        }
        self.labels.insert(label, v);
    }
    fn set_adjacency(&mut self, slot: u32, v: &[u8; ADJ_VALUE_BYTES]) {
        assert!(!self.hot.contains(&slot), "slot {slot} rewritten while a program may still read it");
        assert!(!self.labels.values().any(|l| slot_of(*l) == Some(slot)), "slot {slot} rewritten while named");
        self.adjs.insert(slot, *v);
    }
    fn grace(&mut self) {
        self.graces += 1;
        self.hot = self.labels.values().filter_map(|v| slot_of(*v)).collect();
    }
}

fn snapshot(ilm: Ilm, adjs: Arc<Vec<Adjacency>>, generation: u64) -> Snapshot {
    Snapshot::bare(ilm, adjs, generation)
}

fn adj(port: u16, x: u8) -> Adjacency {
    Adjacency { macs: [2, 0, 0, 0, port as u8, x, 2, 0, 0, 0, 0x0c, port as u8], port }
}

/// After every update each label's value is what the snapshot says, and names an
/// adjacency value equal to the snapshot's adjacency.
fn check_mirror(m: &Mirror<Recorder>, s: &Snapshot, labels: &[u32]) {
    for &l in labels {
        let v = m.store().label(l);
        let e = s.ilm.lookup(l);
        let want = label_value(l, e, s, (v >> 16) & 1, 0b011);
        assert_eq!(v, want, "label {l}: {e:?}");
        if let Some(slot) = slot_of(v) {
            let a = &s.adjacencies[e.adjacency() as usize];
            assert_eq!(m.store().adjs[&slot], adjacency_value(a), "label {l}: adjacency of slot {slot}");
        }
    }
}

#[test]
fn mirror_follows_commits_and_never_rewrites_a_live_adjacency() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let labels: Vec<u32> = (0..40).map(|i| if i < 30 { 16 + i * 997 } else { 900_000 + i }).collect();
    let mut m = Mirror::new(Recorder::default(), 0b011);
    let mut ilm = Ilm::new();
    let mut adjs = Arc::new(vec![adj(0, 1), adj(1, 1), adj(2, 1)]);
    let (mut full, mut incremental) = (0, 0);
    for generation in 1..400u64 {
        let mut next = ilm.clone_table();
        if rng.below(10) == 0 {
            // A full build: a new adjacency table (same or other contents, other length).
            let n = 2 + rng.below(5) as usize;
            adjs = Arc::new((0..n).map(|i| adj((i % 4) as u16, rng.below(3) as u8)).collect());
            full += 1;
        } else {
            incremental += 1;
        }
        for _ in 0..rng.below(4) + 1 {
            let l = rng.pick(&labels);
            let e = match rng.below(7) {
                0 => IlmEntry::EMPTY,
                6 => IlmEntry::transport(rng.below(2) == 0),
                1 => IlmEntry::pop(Af::V4, false),
                2 => IlmEntry::pop_go(Af::V6, rng.below(8) as u16, true),
                _ => IlmEntry::pop_go(rng.pick(&[Af::V4, Af::Any]), rng.below(6) as u16, rng.below(2) == 0),
            };
            next.set(l, e);
        }
        let s = snapshot(next.clone_table(), Arc::clone(&adjs), generation);
        m.apply(&s);
        check_mirror(&m, &s, &labels);
        ilm = next;
    }
    let st = m.stats();
    eprintln!("{full} full, {incremental} incremental updates: {st:?}, {} grace periods", m.store().graces);
    assert!(full > 20 && st.graces > 10, "the test exercised adjacency changes: {st:?}");
    assert!(st.label_writes > 300);
    // Incremental updates touch only the chunks the commit copied.
    let before = m.stats().label_writes;
    let mut next = ilm.clone_table();
    next.set(16, IlmEntry::pop_go(Af::V4, 0, false));
    m.apply(&snapshot(next, Arc::clone(&adjs), 1000));
    assert!(m.stats().label_writes - before <= 1);
}

#[test]
fn label_values_leave_out_what_the_kernel_does_not_forward() {
    let adjs = Arc::new(vec![adj(0, 1), adj(2, 1), adj(5, 1)]);
    let s = snapshot(Ilm::new(), adjs, 1);
    let v = |l, e| label_value(l, e, &s, 0, 0b011);
    assert_eq!(v(100, IlmEntry::pop_go(Af::V4, 0, false)), OFFLOAD | ALLOW_V4);
    assert_eq!(v(100, IlmEntry::pop_go(Af::Any, 0, true)), OFFLOAD | ALLOW_V4 | ALLOW_V6 | PIPE);
    assert_eq!(label_value(100, IlmEntry::pop_go(Af::V6, 0, false), &s, 1, 0b011), OFFLOAD | ALLOW_V6 | 1 << 16);
    assert_eq!(v(100, IlmEntry::pop(Af::V4, false)), 0, "POP needs the FIB: user space");
    assert_eq!(v(100, IlmEntry::pop_go(Af::V4, 1, false)), 0, "port 2 has no interface");
    assert_eq!(v(100, IlmEntry::pop_go(Af::V4, 2, false)), 0, "port 5 is past the ports");
    assert_eq!(v(100, IlmEntry::pop_go(Af::V4, 3, false)), 0, "no adjacency 3");
    assert_eq!(v(7, IlmEntry::pop_go(Af::V4, 0, false)), 0, "reserved labels stay in user space");
    assert_eq!(v(18, IlmEntry::transport(false)), TRANSPORT, "a transport label names no slot");
    assert_eq!(v(18, IlmEntry::transport(true)), TRANSPORT | PIPE);
    assert_eq!(v(7, IlmEntry::transport(false)), 0);
    assert_eq!(
        v(100, IlmEntry::pop_go(Af::V4, 0, false).in_vrf(3)),
        OFFLOAD | ALLOW_V4,
        "a VPN instance's POPGO label"
    );
    let c = counters_to_stats(&{
        let mut w = vec![0u64; counter_words()];
        w[W_PORT_RX + 2] = 5;
        w[W_RX_BYTES] = 320;
        w[W_PORT_TX] = 4;
        w[W_PORT_TX_BYTES] = 240;
        w[W_DROPS + DropReason::TtlExpired as usize] = 1;
        w
    });
    assert_eq!((c.rx_pkts, c.tx_pkts, c.tx_bytes, c.port_rx_pkts[2]), (5, 4, 240, 5));
    assert!(c.balanced());
}

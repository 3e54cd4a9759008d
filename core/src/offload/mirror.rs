//! The offload's tables as values, and the mirror that writes them in the update order
//! of the module documentation.

use super::{ADJ_VALUE_BYTES, ALLOW_V4, ALLOW_V6, HALF_SLOTS, OFFLOAD, PIPE, TRANSPORT};
use crate::ilm::{Adjacency, IlmEntry, IlmOp, Snapshot, TableMirror, CHUNK_SLOTS};
use crate::io::xdp::{self, MmapArray};
use crate::stats::MAX_PORTS;
use crate::wire::mpls::FIRST_UNRESERVED;
use std::sync::Arc;
use std::time::Duration;

/// The label value of entry `e` of `snap` (0: not offloaded), with its adjacency in
/// half `half`; `attached` has bit P set for every port P with an interface.
pub fn label_value(label: u32, e: IlmEntry, snap: &Snapshot, half: u32, attached: u64) -> u32 {
    if label < FIRST_UNRESERVED {
        return 0;
    }
    match e.op() {
        Some(IlmOp::PopGo) => {}
        Some(IlmOp::Transport) => return TRANSPORT | if e.pipe() { PIPE } else { 0 },
        _ => return 0,
    }
    let adj = e.adjacency();
    let Some(a) = snap.adjacencies.get(adj as usize) else { return 0 };
    let port = a.port as usize;
    if port >= snap.ports || port >= MAX_PORTS || attached & (1 << port) == 0 {
        return 0;
    }
    let af = match e.af() {
        crate::ilm::Af::V4 => ALLOW_V4,
        crate::ilm::Af::V6 => ALLOW_V6,
        crate::ilm::Af::Any => ALLOW_V4 | ALLOW_V6,
    };
    OFFLOAD | af | if e.pipe() { PIPE } else { 0 } | (half << 16) | u32::from(adj)
}

/// The 16-byte adjacency value.
pub fn adjacency_value(a: &Adjacency) -> [u8; ADJ_VALUE_BYTES] {
    let mut v = [0u8; ADJ_VALUE_BYTES];
    v[..12].copy_from_slice(&a.macs);
    v[12..14].copy_from_slice(&a.port.to_le_bytes());
    v
}

/// Where the mirror is written: the kernel maps, or a recording fake in tests.
pub trait MirrorStore {
    fn label(&self, label: u32) -> u32;
    fn set_label(&mut self, label: u32, v: u32);
    fn set_adjacency(&mut self, slot: u32, v: &[u8; ADJ_VALUE_BYTES]);
    /// Returns once no program run that started before the call is still running.
    fn grace(&mut self);
}

/// What the mirror did so far (for `display popgo statistics` and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MirrorStats {
    pub updates: u64,
    pub label_writes: u64,
    pub adjacency_writes: u64,
    pub graces: u64,
}

/// Keeps the offload tables equal to the last snapshot given to [`Mirror::apply`],
/// in the order described in the module documentation.
pub struct Mirror<S> {
    store: S,
    attached: u64,
    last: Option<(crate::ilm::Ilm, Arc<Vec<Adjacency>>, usize)>,
    /// Half the label values point into.
    half: u32,
    /// The other half may still be read by a program run (no grace period since the
    /// label values moved away from it).
    other_live: bool,
    stats: MirrorStats,
}

impl<S: MirrorStore> Mirror<S> {
    /// A mirror over `store` (all labels 0) for the ports in `attached`.
    pub fn new(store: S, attached: u64) -> Mirror<S> {
        Mirror { store, attached, last: None, half: 1, other_live: false, stats: MirrorStats::default() }
    }

    pub fn stats(&self) -> MirrorStats {
        self.stats
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Brings the tables to `next` (called before `next` is published).
    pub fn apply(&mut self, next: &Snapshot) {
        self.stats.updates += 1;
        let adj_changed = match &self.last {
            None => true,
            Some((_, adjs, ports)) => !Arc::ptr_eq(adjs, &next.adjacencies) || *ports != next.ports,
        };
        let mut chunks: Vec<usize> = Vec::new();
        if adj_changed {
            let target = 1 - self.half;
            if self.other_live {
                self.store.grace();
                self.stats.graces += 1;
            }
            for (i, a) in next.adjacencies.iter().enumerate().take(HALF_SLOTS as usize) {
                self.store.set_adjacency((target << 16) | i as u32, &adjacency_value(a));
                self.stats.adjacency_writes += 1;
            }
            self.half = target;
            self.other_live = self.last.is_some();
            for c in 0..crate::ilm::CHUNKS {
                let old_empty = self.last.as_ref().is_none_or(|(ilm, _, _)| ilm.chunk_is_empty(c));
                if !old_empty || !next.ilm.chunk_is_empty(c) {
                    chunks.push(c);
                }
            }
        } else if let Some((ilm, _, _)) = &self.last {
            chunks.extend(ilm.differing_chunks(&next.ilm));
        }
        for c in chunks {
            let first = (c * CHUNK_SLOTS) as u32;
            for label in first..first + CHUNK_SLOTS as u32 {
                let v = label_value(label, next.ilm.lookup(label), next, self.half, self.attached);
                if self.store.label(label) != v {
                    self.store.set_label(label, v);
                    self.stats.label_writes += 1;
                }
            }
        }
        self.last = Some((next.ilm.clone_table(), Arc::clone(&next.adjacencies), next.ports));
    }
}

/// The kernel maps as a [`MirrorStore`].
pub struct KernelStore {
    pub(super) labels: MmapArray,
    pub(super) adjs: MmapArray,
    /// The per-LSP counters, told of every label given an offloaded value.
    pub(super) lsps: Option<Arc<super::OffloadLsps>>,
}

/// Sleep used when the kernel refuses `membarrier` (nohz_full): far longer than any
/// XDP program run (microseconds).
const GRACE_FALLBACK: Duration = Duration::from_millis(50);

impl MirrorStore for KernelStore {
    fn label(&self, label: u32) -> u32 {
        self.labels.load_u32(label as usize)
    }
    fn set_label(&mut self, label: u32, v: u32) {
        if let (Some(l), true) = (&self.lsps, v & OFFLOAD != 0) {
            l.mark(label);
        }
        self.labels.store_u32(label as usize, v);
    }
    fn set_adjacency(&mut self, slot: u32, v: &[u8; ADJ_VALUE_BYTES]) {
        self.adjs.write_value(slot as usize, v);
    }
    fn grace(&mut self) {
        if !xdp::wait_for_running_programs() {
            std::thread::sleep(GRACE_FALLBACK);
        }
    }
}

impl TableMirror for Mirror<KernelStore> {
    fn update(&mut self, next: &Snapshot) {
        self.apply(next);
    }

    fn summary(&self) -> String {
        let s = self.stats;
        format!(
            "XDP offload mirror: {} update(s), {} label write(s), {} adjacency write(s), {} grace period(s)",
            s.updates, s.label_writes, s.adjacency_writes, s.graces
        )
    }
}

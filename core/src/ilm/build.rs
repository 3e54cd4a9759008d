//! Builds a complete [`Snapshot`] from a checked [`Config`]: adjacencies from the
//! neighbours, the FIB from the static routes, and one ILM entry per local BGP label.
//!
//! [`build_indexed`] also returns a [`BuildIndex`] (control-side maps: installed
//! route per prefix, label per network, the dynamic label allocator), which
//! [`patch`](super::patch()) uses to apply a small change without a full build; the
//! helpers that compute an entry, a row or a label are shared with it.
//!
//! Control plane only: allocates freely, never runs on a worker.

use super::lsp::{LabelOp, LspRow, LspTable};
use super::table::{Adjacency, Af, Ilm, IlmEntry};
use super::{Fib, Snapshot};
use crate::config::{Config, LabelMode, Prefix, TtlMode};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

/// Why tables could not be built from a config.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildError {
    #[error("line {line}: bgp.network: no static route for {prefix}")]
    NoRoute { prefix: Prefix, line: usize },
    #[error("line {line}: bgp.network: label {label} is used twice")]
    DuplicateLabel { label: u32, line: usize },
    #[error("bgp.label_base: the label range starting at {base} is exhausted (labels are 20 bits)")]
    LabelsExhausted { base: u32 },
    #[error("too many neighbors ({count}); at most 65535")]
    TooManyAdjacencies { count: usize },
}

/// Control-side maps kept next to the published snapshot so that [`patch`](super::patch()) can apply
/// a small change without a full build. Built by [`build_indexed`]; a declined patch
/// leaves it stale and the caller rebuilds it.
#[derive(Clone, Debug, Default)]
pub struct BuildIndex {
    pub(super) adj_of: HashMap<IpAddr, u16>,
    /// Prefix -> (adjacency, next hop) of the static route installed in the FIB.
    pub(super) installed: HashMap<Prefix, (u16, IpAddr)>,
    /// Network -> its local label.
    pub(super) label_of: HashMap<Prefix, u32>,
    /// Network -> the chunk of the LSP table holding its row.
    pub(super) lsp_chunk: HashMap<Prefix, u32>,
    /// Static labels of networks (the allocator skips them).
    pub(super) static_labels: HashSet<u32>,
    /// Labels in use (per-route: one per network).
    pub(super) used: HashSet<u32>,
    /// Next label the dynamic allocator tries (per-route).
    pub(super) next_dynamic: u32,
    /// BGP label mode, or None without a BGP instance.
    pub(super) mode: Option<LabelMode>,
    pub(super) label_base: u32,
    pub(super) pop_go: bool,
    pub(super) pipe: bool,
}

/// Builds tables from `cfg`. `generation` is stored in the snapshot.
pub fn build(cfg: &Config, generation: u64) -> Result<Snapshot, BuildError> {
    build_indexed(cfg, generation).map(|(s, _)| s)
}

/// The ILM entry and label operation of a network's label.
pub(super) fn entry_for(mode: LabelMode, pop_go: bool, af: Af, adj: u16, pipe: bool) -> (IlmEntry, LabelOp) {
    match mode {
        LabelMode::PerInstance => (IlmEntry::pop(Af::Any, pipe), LabelOp::Pop),
        _ if pop_go => (IlmEntry::pop_go(af, adj, pipe), LabelOp::PopGo),
        _ => (IlmEntry::pop(af, pipe), LabelOp::Pop),
    }
}

pub(super) fn af_of(p: Prefix) -> Af {
    if p.is_v4() {
        Af::V4
    } else {
        Af::V6
    }
}

pub(super) fn row_for(
    adjacencies: &[Adjacency],
    fec: Prefix,
    in_label: u32,
    adj: u16,
    nh: IpAddr,
    op: LabelOp,
) -> LspRow {
    let out_port = (op == LabelOp::PopGo).then_some(adjacencies[adj as usize].port as usize);
    LspRow { fec, in_label, out_port, next_hop: Some(nh), op }
}

pub(super) fn fib_insert(fib: &mut Fib, p: Prefix, adj: u16) {
    match p.addr {
        IpAddr::V4(a) => fib.insert_v4(u32::from(a), p.len, adj),
        IpAddr::V6(a) => fib.insert_v6(u128::from(a), p.len, adj),
    }
}

pub(super) fn fib_remove(fib: &mut Fib, p: Prefix) {
    match p.addr {
        IpAddr::V4(a) => fib.remove_v4(u32::from(a), p.len),
        IpAddr::V6(a) => fib.remove_v6(u128::from(a), p.len),
    };
}

/// The per-route dynamic allocator: the next label at or after `*next` that is not a
/// static label.
pub(super) fn alloc_label(next: &mut u32, static_labels: &HashSet<u32>, base: u32) -> Result<u32, BuildError> {
    while static_labels.contains(next) {
        *next += 1;
    }
    if *next > crate::wire::mpls::LABEL_MAX {
        return Err(BuildError::LabelsExhausted { base });
    }
    *next += 1;
    Ok(*next - 1)
}

/// Builds tables from `cfg`, plus the index [`patch`](super::patch()) needs.
pub fn build_indexed(cfg: &Config, generation: u64) -> Result<(Snapshot, BuildIndex), BuildError> {
    if cfg.neighbors.len() > u16::MAX as usize {
        return Err(BuildError::TooManyAdjacencies { count: cfg.neighbors.len() });
    }
    let pipe = cfg.ttl_mode == TtlMode::Pipe;
    let mut adjacencies = Vec::with_capacity(cfg.neighbors.len());
    let mut adj_of: HashMap<IpAddr, u16> = HashMap::new();
    for (i, n) in cfg.neighbors.iter().enumerate() {
        // Config checking guarantees the port exists.
        let port = cfg.port_index(&n.port).unwrap_or(0);
        let mut macs = [0u8; 12];
        macs[..6].copy_from_slice(&n.mac);
        macs[6..].copy_from_slice(&cfg.ports[port].mac);
        adjacencies.push(Adjacency { macs, port: port as u16 });
        adj_of.insert(n.ip, i as u16);
    }

    let mut fib = Fib::new();
    // The first route for a prefix wins (no ECMP); later ones with the same prefix are
    // kept in the config but not installed.
    let mut installed: HashMap<Prefix, (u16, IpAddr)> = HashMap::with_capacity(cfg.static_routes.len());
    for r in &cfg.static_routes {
        let Some(&adj) = adj_of.get(&r.next_hop) else { continue };
        if installed.contains_key(&r.prefix) {
            continue;
        }
        installed.insert(r.prefix, (adj, r.next_hop));
        fib_insert(&mut fib, r.prefix, adj);
    }

    let mut ilm = Ilm::new();
    let mut lsps = LspTable::new();
    let mut idx = BuildIndex { pipe, ..Default::default() };
    if let Some(bgp) = &cfg.bgp {
        let static_labels: HashSet<u32> = bgp.networks.iter().filter_map(|n| n.label).collect();
        let mut next = bgp.label_base;
        let mut used: HashSet<u32> = HashSet::with_capacity(bgp.networks.len());
        let mut label_of: HashMap<Prefix, u32> = HashMap::with_capacity(bgp.networks.len());
        let mut lsp_chunk: HashMap<Prefix, u32> = HashMap::with_capacity(bgp.networks.len());
        let mut per_nh: HashMap<IpAddr, u32> = HashMap::new();
        let mut instance_label = None;
        for n in &bgp.networks {
            let &(adj, nh) = installed.get(&n.prefix).ok_or(BuildError::NoRoute { prefix: n.prefix, line: n.line })?;
            let label = match bgp.label_mode {
                LabelMode::PerRoute => {
                    let label = match n.label {
                        Some(l) => l,
                        None => alloc_label(&mut next, &static_labels, bgp.label_base)?,
                    };
                    if !used.insert(label) {
                        return Err(BuildError::DuplicateLabel { label, line: n.line });
                    }
                    label
                }
                LabelMode::PerNexthop => match per_nh.get(&nh) {
                    Some(l) => *l,
                    None => {
                        let l = alloc_label(&mut next, &HashSet::new(), bgp.label_base)?;
                        per_nh.insert(nh, l);
                        l
                    }
                },
                LabelMode::PerInstance => match instance_label {
                    Some(l) => l,
                    None => {
                        let l = alloc_label(&mut next, &HashSet::new(), bgp.label_base)?;
                        instance_label = Some(l);
                        l
                    }
                },
            };
            let (entry, op) = entry_for(bgp.label_mode, bgp.pop_go, af_of(n.prefix), adj, pipe);
            ilm.set(label, entry);
            label_of.insert(n.prefix, label);
            lsp_chunk.insert(n.prefix, lsps.push(row_for(&adjacencies, n.prefix, label, adj, nh, op)));
        }
        idx.static_labels = static_labels;
        idx.used = used;
        idx.label_of = label_of;
        idx.lsp_chunk = lsp_chunk;
        idx.next_dynamic = next;
        idx.mode = Some(bgp.label_mode);
        idx.label_base = bgp.label_base;
        idx.pop_go = bgp.pop_go;
    }
    idx.adj_of = adj_of;
    idx.installed = installed;
    let snap = Snapshot {
        ilm,
        adjacencies: Arc::new(adjacencies),
        fib: Arc::new(fib),
        ports: cfg.ports.len(),
        lsps,
        pipe,
        generation,
    };
    Ok((snap, idx))
}

/// The first difference in forwarding behaviour between two snapshots, looking at every
/// ILM slot, the LSP rows, the adjacencies and the FIB answer for each of `cfg`'s static
/// routes; `None` when they forward alike. For tests and checks (it walks 2^20 slots).
pub fn first_difference(a: &Snapshot, b: &Snapshot, cfg: &Config) -> Option<String> {
    if let Some(l) = (0..=crate::wire::mpls::LABEL_MAX).find(|&l| a.ilm.lookup(l) != b.ilm.lookup(l)) {
        return Some(format!("ILM entry {l}: {:?} vs {:?}", a.ilm.lookup(l), b.ilm.lookup(l)));
    }
    if a.lsps.iter().ne(b.lsps.iter()) {
        return Some("LSP rows".into());
    }
    if a.fib.len() != b.fib.len() {
        return Some(format!("FIB size {} vs {}", a.fib.len(), b.fib.len()));
    }
    for r in &cfg.static_routes {
        let same = match r.prefix.addr {
            IpAddr::V4(x) => a.fib.lookup_v4(x.into()) == b.fib.lookup_v4(x.into()),
            IpAddr::V6(x) => a.fib.lookup_v6(x.into()) == b.fib.lookup_v6(x.into()),
        };
        if !same {
            return Some(format!("FIB answer for {}", r.prefix));
        }
    }
    if *a.adjacencies != *b.adjacencies {
        return Some("adjacencies".into());
    }
    if (a.ports, a.pipe) != (b.ports, b.pipe) {
        return Some("ports or TTL mode".into());
    }
    None
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::ilm::IlmOp;

    pub(in crate::ilm) fn seed() -> Config {
        Config::parse(include_str!("../../../pcaps/seed.toml")).unwrap()
    }

    #[test]
    fn seed_popgo_entry_points_at_device_a() {
        let s = build(&seed(), 0).unwrap();
        let e = s.ilm.lookup(48122);
        assert_eq!(e.op(), Some(IlmOp::PopGo));
        assert_eq!(e.af(), Af::V4);
        let adj = s.adjacencies[e.adjacency() as usize];
        assert_eq!(adj.port, 0, "to-A");
        assert_eq!(&adj.macs[..6], &[2, 0, 0, 0, 0, 0x0a]);
        assert_eq!(&adj.macs[6..], &[2, 0, 0, 0, 0x0c, 0x0a]);
        assert_eq!(s.lsps.len(), 1);
        assert_eq!(s.lsps[0].op, LabelOp::PopGo);
        assert_eq!(s.lsps[0].out_port, Some(0));
        assert_eq!(s.ilm.len(), 1);
        assert_eq!(s.fib.len(), 2);
    }

    #[test]
    fn without_pop_go_the_entry_is_pop() {
        let mut c = seed();
        c.bgp.as_mut().unwrap().pop_go = false;
        let s = build(&c, 0).unwrap();
        assert_eq!(s.ilm.lookup(48122).op(), Some(IlmOp::Pop));
        assert_eq!(s.lsps[0].op, LabelOp::Pop);
        assert_eq!(s.lsps[0].out_port, None);
    }

    #[test]
    fn dynamic_labels_skip_static_ones_and_modes_share_labels() {
        let mut c = seed();
        c.add_static_route(crate::config::StaticRoute {
            prefix: Prefix::parse("10.2.0.0/16").unwrap(),
            next_hop: "192.168.20.1".parse().unwrap(),
            line: 0,
        })
        .unwrap();
        c.add_static_route(crate::config::StaticRoute {
            prefix: Prefix::parse("10.3.0.0/16").unwrap(),
            next_hop: "192.168.20.1".parse().unwrap(),
            line: 0,
        })
        .unwrap();
        {
            let b = c.bgp.as_mut().unwrap();
            b.label_base = 48121;
        }
        for p in ["10.2.0.0/16", "10.3.0.0/16"] {
            c.add_network(crate::config::Network { prefix: Prefix::parse(p).unwrap(), label: None, line: 0 }).unwrap();
        }
        let s = build(&c, 0).unwrap();
        let labels: Vec<u32> = s.lsps.iter().map(|r| r.in_label).collect();
        assert_eq!(labels, [48122, 48121, 48123]);

        let mut nh = c.clone();
        let b = nh.bgp.as_mut().unwrap();
        b.label_mode = LabelMode::PerNexthop;
        for n in &mut b.networks {
            n.label = None;
        }
        let s = build(&nh, 0).unwrap();
        let labels: Vec<u32> = s.lsps.iter().map(|r| r.in_label).collect();
        assert_eq!(labels, [48121, 48122, 48122], "two networks via DeviceB share a label");
        assert_eq!(s.ilm.lookup(48122).op(), Some(IlmOp::PopGo));

        let mut inst = nh.clone();
        inst.bgp.as_mut().unwrap().label_mode = LabelMode::PerInstance;
        let s = build(&inst, 0).unwrap();
        assert!(s.lsps.iter().all(|r| r.in_label == 48121 && r.op == LabelOp::Pop));
        assert_eq!(s.ilm.lookup(48121).af(), Af::Any);
    }

    #[test]
    fn exhausted_label_range_is_an_error() {
        let mut c = seed();
        c.add_static_route(crate::config::StaticRoute {
            prefix: Prefix::parse("10.2.0.0/16").unwrap(),
            next_hop: "192.168.20.1".parse().unwrap(),
            line: 0,
        })
        .unwrap();
        let b = c.bgp.as_mut().unwrap();
        b.label_base = crate::wire::mpls::LABEL_MAX;
        b.networks[0].label = Some(crate::wire::mpls::LABEL_MAX);
        c.add_network(crate::config::Network { prefix: Prefix::parse("10.2.0.0/16").unwrap(), label: None, line: 9 })
            .unwrap();
        assert!(matches!(build(&c, 0), Err(BuildError::LabelsExhausted { .. })));
    }
}

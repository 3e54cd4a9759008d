//! Builds a complete [`Snapshot`] from a checked [`Config`]: adjacencies from the
//! neighbours, the FIB from the static routes, and one ILM entry per local BGP label.
//!
//! [`build_indexed`] also returns a [`BuildIndex`] (control-side maps: installed
//! route per prefix, label per network, the dynamic label allocator), which
//! [`patch`](super::patch()) uses to apply a small change without a full build; the
//! helpers that compute an entry, a row or a label are shared with it.
//!
//! Control plane only: allocates freely, never runs on a worker.

use super::lsp::{Lsp, LspTable};
use super::table::{Adjacency, Af, Ilm, IlmEntry};
use super::{Fib, Snapshot};
use crate::config::{Config, FastMap, LabelMode, LabelSet, Prefix, TtlMode};
use std::collections::HashMap;
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
    #[error("line {line}: mpls.static_lsp.in_label: label {label} is also a BGP label")]
    TransportLabelTaken { label: u32, line: usize },
}

/// Control-side maps kept next to the published snapshot so that [`patch`](super::patch()) can apply
/// a small change without a full build. Built by [`build_indexed`]; a declined patch
/// leaves it stale and the caller rebuilds it.
///
/// Per network it keeps one map entry (prefix -> the LSP table chunk holding its row,
/// 24 bytes); a network's label is in that row, its route in the FIB (an exact-match
/// lookup), and the label sets are bitmaps. See docs/datapath.md for the bytes per
/// route.
#[derive(Clone, Debug, Default)]
pub struct BuildIndex {
    /// (VRF, next hop) -> adjacency: neighbors are next hops of their port's table.
    pub(super) adj_of: HashMap<(u16, IpAddr), u16>,
    /// Network -> the chunk of the LSP table holding its row (and so its label).
    pub(super) lsp_chunk: FastMap<Prefix, u32>,
    /// Static labels of networks (the allocator skips them).
    pub(super) static_labels: LabelSet,
    /// Labels in use (per-route: one per network).
    pub(super) used: LabelSet,
    /// Next label the dynamic allocator tries (per-route).
    pub(super) next_dynamic: u32,
    /// BGP label mode, or None without a BGP instance.
    pub(super) mode: Option<LabelMode>,
    pub(super) label_base: u32,
    pub(super) pop_go: bool,
    pub(super) pop_go_v6: bool,
    pub(super) pipe: bool,
}

impl BuildIndex {
    /// Bytes of heap the index holds (for the memory breakdown in reports).
    pub fn heap_bytes(&self) -> usize {
        let map = crate::config::table_buckets(self.lsp_chunk.capacity()) * (std::mem::size_of::<(Prefix, u32)>() + 1);
        map + 2 * (crate::wire::mpls::LABEL_MAX as usize + 1) / 8
    }
}

/// Builds tables from `cfg`. `generation` is stored in the snapshot.
pub fn build(cfg: &Config, generation: u64) -> Result<Snapshot, BuildError> {
    build_indexed(cfg, generation).map(|(s, _)| s)
}

/// The ILM entry of a network's label. POP entries keep the route's adjacency too (the
/// data path ignores it), so a pop-go toggle only flips the operation bits.
pub(super) fn entry_for(mode: LabelMode, pop_go: bool, af: Af, adj: u16, pipe: bool) -> IlmEntry {
    match mode {
        LabelMode::PerInstance => IlmEntry::pop(Af::Any, pipe),
        _ if pop_go => IlmEntry::pop_go(af, adj, pipe),
        _ => IlmEntry::pop_via(af, adj, pipe),
    }
}

/// The FIB of VRF `vrf` among `fibs` (index 0: the public table), grown as needed.
pub(super) fn fib_mut(fibs: &mut Vec<Fib>, vrf: u16) -> &mut Fib {
    if fibs.len() <= vrf as usize {
        fibs.resize_with(vrf as usize + 1, Fib::new);
    }
    &mut fibs[vrf as usize]
}

/// The networks of `cfg` in label allocation order: its `network`s, then for each VPN
/// family with `import-route static` the first route of every prefix of that family
/// that is not a network already.
pub fn networks_of(cfg: &Config) -> Vec<crate::config::Network> {
    let Some(b) = &cfg.bgp else { return Vec::new() };
    let mut out = b.networks.clone();
    if b.vpn_families.iter().any(|f| f.import_static) {
        let mut seen: crate::config::FastSet<Prefix> = out.iter().map(|n| n.prefix).collect();
        for r in &cfg.static_routes {
            let p = r.prefix;
            if p.vrf != 0 && b.vpn_family(p.vrf, p.is_v4()).is_some_and(|f| f.import_static) && seen.insert(p) {
                out.push(crate::config::Network { prefix: p, label: None, line: r.line });
            }
        }
    }
    out
}

pub(super) fn af_of(p: Prefix) -> Af {
    if p.is_v4() {
        Af::V4
    } else {
        Af::V6
    }
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

/// The adjacency of the route installed for exactly `p`.
pub(super) fn fib_get(fib: &Fib, p: Prefix) -> Option<u16> {
    match p.addr {
        IpAddr::V4(a) => fib.get_v4(u32::from(a), p.len),
        IpAddr::V6(a) => fib.get_v6(u128::from(a), p.len),
    }
}

/// The per-route dynamic allocator: the next label at or after `*next` that is not a
/// static label.
pub(super) fn alloc_label(next: &mut u32, static_labels: &LabelSet, base: u32) -> Result<u32, BuildError> {
    while *next <= crate::wire::mpls::LABEL_MAX && static_labels.contains(*next) {
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
    let mut next_hops = Vec::with_capacity(cfg.neighbors.len());
    let mut adj_of: HashMap<(u16, IpAddr), u16> = HashMap::new();
    for (i, n) in cfg.neighbors.iter().enumerate() {
        // Config checking guarantees the port exists.
        let port = cfg.port_index(&n.port).unwrap_or(0);
        let mut macs = [0u8; 12];
        macs[..6].copy_from_slice(&n.mac);
        macs[6..].copy_from_slice(&cfg.ports[port].mac);
        adjacencies.push(Adjacency { macs, port: port as u16 });
        next_hops.push(n.ip);
        adj_of.insert((n.vrf, n.ip), i as u16);
    }

    // Size each prefix length's table once (a bulk load then neither rehashes nor
    // re-splits shards).
    let mut fib = Fib::new();
    let mut per_len = [[0usize; 129]; 2];
    for r in cfg.static_routes.iter().filter(|r| r.prefix.vrf == 0) {
        per_len[usize::from(!r.prefix.is_v4())][r.prefix.len.min(128) as usize] += 1;
    }
    for (len, n) in per_len[0].iter().enumerate().filter(|(_, n)| **n > 0) {
        fib.reserve_v4(len as u8, *n);
    }
    for (len, n) in per_len[1].iter().enumerate().filter(|(_, n)| **n > 0) {
        fib.reserve_v6(len as u8, *n);
    }
    // The first route for a prefix wins (no ECMP); later ones with the same prefix are
    // kept in the config but not installed.
    let mut fibs = vec![fib];
    for r in &cfg.static_routes {
        let Some(&adj) = adj_of.get(&(r.prefix.vrf, r.next_hop)) else { continue };
        let f = fib_mut(&mut fibs, r.prefix.vrf);
        if fib_get(f, r.prefix).is_none() {
            fib_insert(f, r.prefix, adj);
        }
    }
    fibs.resize_with(cfg.vpn_instances.iter().map(|v| v.id as usize + 1).max().unwrap_or(1).max(fibs.len()), Fib::new);

    let mut ilm = Ilm::new();
    let mut lsps = LspTable::new();
    let mut idx = BuildIndex { pipe, ..Default::default() };
    let transport = cfg.mpls.as_ref().map_or(&[][..], |m| &m.static_lsps[..]);
    for l in transport {
        ilm.set(l.in_label, IlmEntry::transport(pipe));
    }
    if let Some(bgp) = &cfg.bgp {
        let mut static_labels = LabelSet::default();
        for l in bgp.networks.iter().filter_map(|n| n.label) {
            static_labels.insert(l);
        }
        // The allocator skips the static LSPs' labels like the networks' static ones.
        for l in transport {
            if !static_labels.insert(l.in_label) {
                return Err(BuildError::TransportLabelTaken { label: l.in_label, line: l.line });
            }
        }
        let networks = networks_of(cfg);
        let mut next = bgp.label_base;
        let mut used = LabelSet::default();
        let mut lsp_chunk: FastMap<Prefix, u32> = FastMap::default();
        lsp_chunk.reserve(networks.len());
        let mut per_nh: HashMap<(u16, IpAddr), u32> = HashMap::new();
        let mut instance_label: HashMap<u16, u32> = HashMap::new();
        // Per-nexthop and per-instance labels come from the same range as per-route ones
        // and skip the static labels too (a VPN's share the range with the public ones).
        for n in &networks {
            let vrf = n.prefix.vrf;
            let adj =
                fib_get(&fibs[vrf as usize], n.prefix).ok_or(BuildError::NoRoute { prefix: n.prefix, line: n.line })?;
            let nh = next_hops[adj as usize];
            let (label_mode, pop_go) = cfg.label_params(vrf, n.prefix.is_v4());
            let label = match label_mode {
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
                LabelMode::PerNexthop => match per_nh.get(&(vrf, nh)) {
                    Some(l) => *l,
                    None => {
                        let l = alloc_label(&mut next, &static_labels, bgp.label_base)?;
                        per_nh.insert((vrf, nh), l);
                        l
                    }
                },
                LabelMode::PerInstance => match instance_label.get(&vrf) {
                    Some(l) => *l,
                    None => {
                        let l = alloc_label(&mut next, &static_labels, bgp.label_base)?;
                        instance_label.insert(vrf, l);
                        l
                    }
                },
            };
            ilm.set(label, entry_for(label_mode, pop_go, af_of(n.prefix), adj, pipe).in_vrf(vrf));
            lsp_chunk.insert(n.prefix, lsps.push(Lsp { fec: n.prefix, in_label: label }));
        }
        idx.static_labels = static_labels;
        idx.used = used;
        idx.lsp_chunk = lsp_chunk;
        idx.next_dynamic = next;
        idx.mode = Some(bgp.label_mode);
        idx.label_base = bgp.label_base;
        idx.pop_go = bgp.pop_go;
        idx.pop_go_v6 = bgp.pop_go_v6();
    }
    idx.adj_of = adj_of;
    let mut fibs = fibs.into_iter();
    let fib = fibs.next().unwrap_or_default();
    let snap = Snapshot {
        ilm,
        adjacencies: Arc::new(adjacencies),
        next_hops: Arc::new(next_hops),
        fib: Arc::new(fib),
        vrf_fibs: Arc::new(fibs.map(Arc::new).collect()),
        ports: cfg.ports.len(),
        lsps: Arc::new(lsps),
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
    if a.lsp_rows().ne(b.lsp_rows()) {
        return Some("LSP rows".into());
    }
    let size = |s: &Snapshot| (s.fib.len(), s.vrf_fibs.iter().map(|f| f.len()).collect::<Vec<_>>());
    if size(a) != size(b) {
        return Some(format!("FIB sizes {:?} vs {:?}", size(a), size(b)));
    }
    for r in &cfg.static_routes {
        let (fa, fb) = (a.fib_of(r.prefix.vrf), b.fib_of(r.prefix.vrf));
        let same = match r.prefix.addr {
            IpAddr::V4(x) => fa.and_then(|f| f.lookup_v4(x.into())) == fb.and_then(|f| f.lookup_v4(x.into())),
            IpAddr::V6(x) => fa.and_then(|f| f.lookup_v6(x.into())) == fb.and_then(|f| f.lookup_v6(x.into())),
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
    use crate::ilm::{IlmOp, LabelOp};

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
        assert_eq!(s.lsp_row(0).op, LabelOp::PopGo);
        assert_eq!(s.lsp_row(0).out_port, Some(0));
        assert_eq!(s.ilm.len(), 1);
        assert_eq!(s.fib.len(), 2);
    }

    #[test]
    fn without_pop_go_the_entry_is_pop() {
        let mut c = seed();
        c.bgp.as_mut().unwrap().pop_go = false;
        let s = build(&c, 0).unwrap();
        assert_eq!(s.ilm.lookup(48122).op(), Some(IlmOp::Pop));
        assert_eq!(s.lsp_row(0).op, LabelOp::Pop);
        assert_eq!(s.lsp_row(0).out_port, None);
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
        assert!(s.lsp_rows().all(|r| r.in_label == 48121 && r.op == LabelOp::Pop));
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

//! Builds a complete [`Snapshot`] from a checked [`Config`]: adjacencies from the
//! neighbours, the FIB from the static routes, and one ILM entry per local BGP label.
//!
//! [`build_indexed`] also returns a [`BuildIndex`] (control-side maps: installed
//! route per prefix, label per network, the dynamic label allocator), and [`patch`]
//! uses it to turn a small [`Delta`] into a new snapshot without a full build: share
//! the ILM, FIB and LSP table with the old snapshot and copy only the chunks (ILM),
//! shards (FIB) and chunks (LSP rows) whose entries change. `patch` gives the same tables as `build` on the new
//! config (tested by `patch_equals_build_on_random_edits`); when it cannot guarantee
//! that cheaply (label mode changes, per-nexthop next-hop moves, deleting a label the
//! dynamic allocator skipped, bulk edits) it declines and the caller builds in full.
//!
//! Control plane only: allocates freely, never runs on a worker.

use super::table::{Adjacency, Af, Ilm, IlmEntry};
use super::{Fib, Snapshot};
use crate::config::edit::Edit;
use crate::config::{Config, LabelMode, Network, Prefix, TtlMode};
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

/// Label operation shown in `display mpls lsp protocol bgp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelOp {
    PopGo,
    Pop,
}

impl LabelOp {
    pub fn name(self) -> &'static str {
        match self {
            LabelOp::PopGo => "POPGO",
            LabelOp::Pop => "POP",
        }
    }
}

/// One row of the BGP LSP table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LspRow {
    pub fec: Prefix,
    pub in_label: u32,
    /// Output port index (POPGO), or None when the FIB decides (POP).
    pub out_port: Option<usize>,
    /// Next hop of the route the label was allocated for.
    pub next_hop: Option<IpAddr>,
    pub op: LabelOp,
}

/// Rows per chunk of an [`LspTable`]: a one-route commit copies one chunk (~70 KiB).
const LSP_CHUNK: usize = 1024;

/// The BGP LSP table in network order, stored as `Arc`-shared chunks so that a commit
/// copies only the chunks it changes (the table is read by `display`, never by workers).
///
/// A row stays in the chunk it was pushed to (removals shift rows within their chunk
/// only and an emptied chunk is kept), so [`BuildIndex`] can record each FEC's chunk
/// and a commit finds a row by scanning one chunk.
#[derive(Clone, Debug, Default)]
pub struct LspTable {
    chunks: Vec<Arc<Vec<LspRow>>>,
    len: usize,
}

/// Iterator over the rows of an [`LspTable`].
pub struct LspIter<'a> {
    chunks: std::slice::Iter<'a, Arc<Vec<LspRow>>>,
    cur: std::slice::Iter<'a, LspRow>,
}

impl<'a> Iterator for LspIter<'a> {
    type Item = &'a LspRow;
    fn next(&mut self) -> Option<&'a LspRow> {
        loop {
            if let Some(r) = self.cur.next() {
                return Some(r);
            }
            self.cur = self.chunks.next()?.iter();
        }
    }
}

impl<'a> IntoIterator for &'a LspTable {
    type Item = &'a LspRow;
    type IntoIter = LspIter<'a>;
    fn into_iter(self) -> LspIter<'a> {
        self.iter()
    }
}

impl std::ops::Index<usize> for LspTable {
    type Output = LspRow;
    fn index(&self, i: usize) -> &LspRow {
        self.get(i).expect("LspTable index out of range")
    }
}

impl LspTable {
    pub fn new() -> LspTable {
        LspTable::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn iter(&self) -> LspIter<'_> {
        LspIter { chunks: self.chunks.iter(), cur: [].iter() }
    }

    /// Row `i` in network order (walks the chunk list: reports only).
    pub fn get(&self, mut i: usize) -> Option<&LspRow> {
        for c in &self.chunks {
            if i < c.len() {
                return c.get(i);
            }
            i -= c.len();
        }
        None
    }

    /// Appends a row; returns the chunk it went to.
    fn push(&mut self, r: LspRow) -> u32 {
        match self.chunks.last_mut() {
            Some(c) if c.len() < LSP_CHUNK => Arc::make_mut(c).push(r),
            _ => {
                let mut c = Vec::with_capacity(LSP_CHUNK);
                c.push(r);
                self.chunks.push(Arc::new(c));
            }
        }
        self.len += 1;
        (self.chunks.len() - 1) as u32
    }

    /// (chunk, index) of the first row whose FEC is `fec` (linear scan: tests).
    #[cfg(test)]
    fn position(&self, fec: Prefix) -> Option<(usize, usize)> {
        self.chunks.iter().enumerate().find_map(|(ci, c)| c.iter().position(|r| r.fec == fec).map(|i| (ci, i)))
    }

    /// (chunk, index) of the row of `fec`, which is in chunk `chunk`.
    fn position_in(&self, chunk: u32, fec: Prefix) -> Option<(usize, usize)> {
        let c = chunk as usize;
        self.chunks.get(c)?.iter().position(|r| r.fec == fec).map(|i| (c, i))
    }

    /// Removals left many chunks sparse: a full build packs them again.
    fn fragmented(&self) -> bool {
        self.chunks.len() > 2 * self.len.div_ceil(LSP_CHUNK) + 16
    }

    fn row_mut(&mut self, (c, i): (usize, usize)) -> &mut LspRow {
        &mut Arc::make_mut(&mut self.chunks[c])[i]
    }

    fn remove(&mut self, (c, i): (usize, usize)) -> LspRow {
        let r = Arc::make_mut(&mut self.chunks[c]).remove(i);
        self.len -= 1;
        r
    }

    fn for_each_mut(&mut self, mut f: impl FnMut(&mut LspRow)) {
        for c in &mut self.chunks {
            Arc::make_mut(c).iter_mut().for_each(&mut f);
        }
    }
}

/// Control-side maps kept next to the published snapshot so that [`patch`] can apply
/// a small change without a full build. Built by [`build_indexed`]; a declined patch
/// leaves it stale and the caller rebuilds it.
#[derive(Clone, Debug, Default)]
pub struct BuildIndex {
    adj_of: HashMap<IpAddr, u16>,
    /// Prefix -> (adjacency, next hop) of the static route installed in the FIB.
    installed: HashMap<Prefix, (u16, IpAddr)>,
    /// Network -> its local label.
    label_of: HashMap<Prefix, u32>,
    /// Network -> the chunk of the LSP table holding its row.
    lsp_chunk: HashMap<Prefix, u32>,
    /// Static labels of networks (the allocator skips them).
    static_labels: HashSet<u32>,
    /// Labels in use (per-route: one per network).
    used: HashSet<u32>,
    /// Next label the dynamic allocator tries (per-route).
    next_dynamic: u32,
    /// BGP label mode, or None without a BGP instance.
    mode: Option<LabelMode>,
    label_base: u32,
    pop_go: bool,
    pipe: bool,
}

/// What a commit changed, as [`patch`] needs it.
#[derive(Clone, Debug, Default)]
pub struct Delta {
    /// Prefixes whose static routes were added or removed.
    pub routes: Vec<Prefix>,
    /// Networks removed (`undo network`).
    pub networks_removed: Vec<Prefix>,
    /// Networks added, in the order they were appended to the config.
    pub networks_added: Vec<Network>,
    /// Something `patch` does not handle changed (BGP instance, label mode, label base,
    /// ports, neighbors, TTL mode): build in full.
    pub rebuild: bool,
}

/// Largest delta (routes + networks) `patch` takes on; each item may scan the config or
/// the LSP table once, so past this a full build is about as cheap.
/// What a list of applied edits means to `ilm::patch`.
impl Delta {
    pub fn of_edits<'a>(edits: impl IntoIterator<Item = &'a Edit>) -> Delta {
        let mut d = Delta::default();
        for e in edits {
            match e {
                Edit::CreateBgp(_) | Edit::LabelMode(_) => d.rebuild = true,
                Edit::PopGo(_) => {} // patch compares the final pop-go setting
                Edit::AddNetwork(n) => d.networks_added.push(n.clone()),
                Edit::DelNetwork(p) => d.networks_removed.push(*p),
                Edit::AddRoute(r) => d.routes.push(r.prefix),
                Edit::DelRoute(p, _) => d.routes.push(*p),
            }
        }
        d
    }
}

pub const PATCH_MAX_ITEMS: usize = 64;

/// Builds tables from `cfg`. `generation` is stored in the snapshot.
pub fn build(cfg: &Config, generation: u64) -> Result<Snapshot, BuildError> {
    build_indexed(cfg, generation).map(|(s, _)| s)
}

/// The ILM entry and label operation of a network's label.
fn entry_for(mode: LabelMode, pop_go: bool, af: Af, adj: u16, pipe: bool) -> (IlmEntry, LabelOp) {
    match mode {
        LabelMode::PerInstance => (IlmEntry::pop(Af::Any, pipe), LabelOp::Pop),
        _ if pop_go => (IlmEntry::pop_go(af, adj, pipe), LabelOp::PopGo),
        _ => (IlmEntry::pop(af, pipe), LabelOp::Pop),
    }
}

fn af_of(p: Prefix) -> Af {
    if p.is_v4() {
        Af::V4
    } else {
        Af::V6
    }
}

fn row_for(adjacencies: &[Adjacency], fec: Prefix, in_label: u32, adj: u16, nh: IpAddr, op: LabelOp) -> LspRow {
    let out_port = (op == LabelOp::PopGo).then_some(adjacencies[adj as usize].port as usize);
    LspRow { fec, in_label, out_port, next_hop: Some(nh), op }
}

fn fib_insert(fib: &mut Fib, p: Prefix, adj: u16) {
    match p.addr {
        IpAddr::V4(a) => fib.insert_v4(u32::from(a), p.len, adj),
        IpAddr::V6(a) => fib.insert_v6(u128::from(a), p.len, adj),
    }
}

fn fib_remove(fib: &mut Fib, p: Prefix) {
    match p.addr {
        IpAddr::V4(a) => fib.remove_v4(u32::from(a), p.len),
        IpAddr::V6(a) => fib.remove_v6(u128::from(a), p.len),
    };
}

/// The per-route dynamic allocator: the next label at or after `*next` that is not a
/// static label.
fn alloc_label(next: &mut u32, static_labels: &HashSet<u32>, base: u32) -> Result<u32, BuildError> {
    while static_labels.contains(next) {
        *next += 1;
    }
    if *next > crate::wire::mpls::LABEL_MAX {
        return Err(BuildError::LabelsExhausted { base });
    }
    *next += 1;
    Ok(*next - 1)
}

/// Builds tables from `cfg`, plus the index [`patch`] needs.
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

/// The parts of the new config [`patch`] reads: a [`Config`], or the control plane's
/// indexed running config (which answers `next_hops` without scanning every route).
pub trait PatchSource {
    /// TTL mode is pipe.
    fn pipe(&self) -> bool;
    /// (label mode, label base, pop-go) of the BGP instance, if any.
    fn bgp_params(&self) -> Option<(LabelMode, u32, bool)>;
    /// Next hops of the static routes for `p`, in config order.
    fn next_hops(&self, p: Prefix) -> Vec<IpAddr>;
}

impl PatchSource for Config {
    fn pipe(&self) -> bool {
        self.ttl_mode == TtlMode::Pipe
    }
    fn bgp_params(&self) -> Option<(LabelMode, u32, bool)> {
        self.bgp.as_ref().map(|b| (b.label_mode, b.label_base, b.pop_go))
    }
    fn next_hops(&self, p: Prefix) -> Vec<IpAddr> {
        self.static_routes.iter().filter(|r| r.prefix == p).map(|r| r.next_hop).collect()
    }
}

/// Applies `delta` to `old` (built from the config before the change, with `idx` its
/// index) giving the tables of `cfg` (the config after the change), without a full
/// build. Returns None when the delta is outside what it patches exactly; `idx` is then
/// stale and the caller must use [`build_indexed`]. On success `idx` describes the new
/// snapshot.
pub fn patch<C: PatchSource + ?Sized>(
    old: &Snapshot,
    idx: &mut BuildIndex,
    cfg: &C,
    delta: &Delta,
    generation: u64,
) -> Option<Snapshot> {
    let items = delta.routes.len() + delta.networks_removed.len() + delta.networks_added.len();
    if delta.rebuild || items > PATCH_MAX_ITEMS || cfg.pipe() != idx.pipe || old.lsps.fragmented() {
        return None;
    }
    let bgp = cfg.bgp_params();
    if bgp.map(|b| b.0) != idx.mode || bgp.is_some_and(|b| b.1 != idx.label_base) {
        return None;
    }
    let mode = idx.mode.unwrap_or_default();
    let pipe = idx.pipe;
    let adjs = &old.adjacencies;
    // Copy-on-write: the ILM, FIB and LSP table are cloned as pointer arrays; an ILM
    // chunk (16 KiB), FIB shard or LSP chunk is copied only when one of its entries
    // changes.
    let mut ilm: Option<Ilm> = None;
    let mut fib: Option<Fib> = None;
    let mut lsps = old.lsps.clone();
    macro_rules! ilm {
        () => {
            ilm.get_or_insert_with(|| old.ilm.clone_table())
        };
    }

    // 1. pop-go toggled: every label's entry changes operation.
    let pop_go = bgp.is_some_and(|b| b.2);
    if pop_go != idx.pop_go {
        idx.pop_go = pop_go;
        if mode != LabelMode::PerInstance && !lsps.is_empty() {
            let t = ilm!();
            let installed = &idx.installed;
            let mut missing = false;
            lsps.for_each_mut(|r| {
                let Some(&(adj, _)) = installed.get(&r.fec) else {
                    missing = true;
                    return;
                };
                let (e, op) = entry_for(mode, pop_go, af_of(r.fec), adj, pipe);
                t.set(r.in_label, e);
                r.op = op;
                r.out_port = (op == LabelOp::PopGo).then_some(adjs[adj as usize].port as usize);
            });
            if missing {
                return None;
            }
        }
    }

    // 2. Removed networks (per-route only: other modes share labels).
    for p in &delta.networks_removed {
        if mode != LabelMode::PerRoute {
            return None;
        }
        let label = idx.label_of.remove(p)?;
        let alloc_range = idx.label_base..idx.next_dynamic;
        if idx.static_labels.contains(&label) {
            // Freeing a static label the allocator already skipped would move every
            // later dynamic label in a full build.
            if alloc_range.contains(&label) {
                return None;
            }
            idx.static_labels.remove(&label);
        } else if label + 1 == idx.next_dynamic {
            // The last dynamic label: the allocator steps back.
            idx.next_dynamic = label;
        } else {
            return None;
        }
        idx.used.remove(&label);
        ilm!().set(label, IlmEntry::EMPTY);
        let chunk = idx.lsp_chunk.remove(p)?;
        let at = lsps.position_in(chunk, *p)?;
        lsps.remove(at);
    }

    // 3. Routes: the installed route of a prefix is the first of the config's routes
    //    for it whose next hop resolves (as in `build_indexed`).
    let mut touched: Vec<Prefix> = delta.routes.clone();
    touched.sort_unstable();
    touched.dedup();
    for p in touched {
        let now = cfg.next_hops(p).into_iter().find_map(|nh| idx.adj_of.get(&nh).map(|a| (*a, nh)));
        if idx.installed.get(&p).copied() == now {
            continue;
        }
        let f = fib.get_or_insert_with(|| (*old.fib).clone());
        match now {
            Some((adj, nh)) => {
                idx.installed.insert(p, (adj, nh));
                fib_insert(f, p, adj);
            }
            None => {
                idx.installed.remove(&p);
                fib_remove(f, p);
            }
        }
        let Some(&label) = idx.label_of.get(&p) else { continue };
        // A network's route changed next hop.
        let (adj, nh) = now?;
        if mode == LabelMode::PerNexthop {
            return None; // its label is the next hop's: labels move
        }
        let (e, op) = entry_for(mode, pop_go, af_of(p), adj, pipe);
        if mode == LabelMode::PerRoute {
            ilm!().set(label, e);
        }
        let at = lsps.position_in(*idx.lsp_chunk.get(&p)?, p)?;
        *lsps.row_mut(at) = row_for(adjs, p, label, adj, nh, op);
    }

    // 4. Added networks, appended in order.
    for n in &delta.networks_added {
        if mode != LabelMode::PerRoute || idx.label_of.contains_key(&n.prefix) {
            return None;
        }
        let &(adj, nh) = idx.installed.get(&n.prefix)?;
        let label = match n.label {
            Some(l) => {
                if idx.used.contains(&l) || (idx.label_base..idx.next_dynamic).contains(&l) {
                    return None; // a full build would skip it and move dynamic labels
                }
                idx.static_labels.insert(l);
                l
            }
            None => alloc_label(&mut idx.next_dynamic, &idx.static_labels, idx.label_base).ok()?,
        };
        idx.used.insert(label);
        idx.label_of.insert(n.prefix, label);
        let (e, op) = entry_for(mode, pop_go, af_of(n.prefix), adj, pipe);
        ilm!().set(label, e);
        idx.lsp_chunk.insert(n.prefix, lsps.push(row_for(adjs, n.prefix, label, adj, nh, op)));
    }

    Some(Snapshot {
        ilm: ilm.unwrap_or_else(|| old.ilm.clone_table()),
        adjacencies: Arc::clone(&old.adjacencies),
        fib: fib.map_or_else(|| Arc::clone(&old.fib), Arc::new),
        ports: old.ports,
        lsps,
        pipe,
        generation,
    })
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
pub(crate) mod tests {
    use super::*;
    use crate::ilm::IlmOp;

    fn seed() -> Config {
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

    /// Compares everything the data path and `display` read.
    pub(crate) fn assert_same_tables(a: &Snapshot, b: &Snapshot, cfg: &Config) {
        if let Some(d) = first_difference(a, b, cfg) {
            panic!("tables differ: {d}");
        }
    }

    #[test]
    fn patch_toggles_pop_go_and_adds_a_network() {
        let c0 = seed();
        let (s0, mut idx) = build_indexed(&c0, 0).unwrap();
        let mut c1 = c0.clone();
        c1.bgp.as_mut().unwrap().pop_go = false;
        let s1 = patch(&s0, &mut idx, &c1, &Delta::default(), 1).unwrap();
        assert_same_tables(&s1, &build(&c1, 1).unwrap(), &c1);
        assert!(Arc::ptr_eq(&s0.fib, &s1.fib), "no route changed: the FIB is shared");

        let mut c2 = c1.clone();
        let p = Prefix::parse("10.2.0.0/16").unwrap();
        c2.add_static_route(crate::config::StaticRoute {
            prefix: p,
            next_hop: "192.168.20.1".parse().unwrap(),
            line: 0,
        })
        .unwrap();
        let n = Network { prefix: p, label: None, line: 0 };
        c2.add_network(n.clone()).unwrap();
        let d = Delta { routes: vec![p], networks_added: vec![n], ..Default::default() };
        let s2 = patch(&s1, &mut idx, &c2, &d, 2).unwrap();
        assert_same_tables(&s2, &build(&c2, 2).unwrap(), &c2);
        assert_eq!(s2.lsps[1].in_label, 48000);

        // Removing the /24's only route while its network stays is declined (a full
        // build reports the error).
        let mut c3 = c2.clone();
        c3.static_routes.retain(|r| r.prefix != Prefix::parse("10.1.1.0/24").unwrap());
        let d = Delta { routes: vec![Prefix::parse("10.1.1.0/24").unwrap()], ..Default::default() };
        assert!(patch(&s2, &mut idx, &c3, &d, 3).is_none());
        assert!(matches!(build(&c3, 3), Err(BuildError::NoRoute { .. })));
    }

    #[test]
    fn lsp_table_chunks() {
        let mut t = LspTable::new();
        let row = |i: u32| LspRow {
            fec: Prefix::new(IpAddr::from(i.to_be_bytes()), 32).unwrap(),
            in_label: i,
            out_port: None,
            next_hop: None,
            op: LabelOp::Pop,
        };
        for i in 0..3000 {
            t.push(row(i));
        }
        assert_eq!(t.len(), 3000);
        assert_eq!(t[2500].in_label, 2500);
        let before = t.clone();
        let at = t.position(row(1500).fec).unwrap();
        assert_eq!(t.remove(at).in_label, 1500);
        assert_eq!(t.len(), 2999);
        assert_eq!(t[1500].in_label, 1501);
        assert_eq!(before[1500].in_label, 1500, "the copy is untouched");
        assert!(Arc::ptr_eq(&before.chunks[0], &t.chunks[0]), "untouched chunks are shared");
        assert_eq!(t.iter().count(), 2999);
    }
}

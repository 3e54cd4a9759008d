//! The control plane's indexed configuration: the running config kept as compact
//! record slabs with hash indexes, and a session's uncommitted changes as a small
//! [`Overlay`] on it.
//!
//! A [`Config`] keeps routes and networks in `Vec`s: finding, checking or removing one
//! scans (and shifts) the whole list, and a private candidate per session means cloning
//! it. Here a one-route edit is checked, applied and undone in O(1), a session's
//! candidate is the running [`Store`] plus its [`Overlay`] (no copy), and a [`Config`]
//! is materialized only for full builds (`display` streams from the store).
//!
//! Memory: a route is a 28-byte record (prefix, next-hop index, line), a network a
//! 28-byte record (prefix, static label, line), each in a slab of 4096-record chunks (a
//! growing table never copies itself), plus one 4-byte slot per index bucket:
//! routes by prefix, networks by prefix, networks by static label (hashbrown's
//! `HashTable<u32>`, keyed through the records). About 90 bytes per labelled route.
//!
//! Order is kept: records stay in their slot, slots are in insertion order, and the
//! slabs iterate in that order, which is the order of the equivalent `Config`'s lists
//! (a removed and re-added route goes to the end, as with `Vec::remove` + `push`). A
//! removal leaves a dead slot (so an undo restores it in place); the slabs are
//! compacted when dead slots outnumber live ones.

use crate::config::edit::{set_peer_in, BgpHead, ConfigEdit};
use crate::config::edit_vpn::VpnHead;
use crate::config::{Config, FastMap, LabelMode, MixHasher, Network, Peer, Prefix, StaticRoute, TtlMode};
use crate::ilm::PatchSource;
use hashbrown::HashTable;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault};
use std::net::{IpAddr, Ipv4Addr};

/// Records per slab chunk: a growing slab allocates 4096 records (112 KiB) at a time
/// and never moves the ones it has.
const SLAB_CHUNK: usize = 4096;

/// Records in insertion order, each in a fixed slot; removal only marks it dead.
#[derive(Debug)]
struct Slab<T> {
    chunks: Vec<Vec<T>>,
    live: Vec<u64>,
    slots: usize,
    live_count: usize,
}

impl<T> Slab<T> {
    fn with_capacity(n: usize) -> Slab<T> {
        Slab {
            chunks: Vec::with_capacity(n.div_ceil(SLAB_CHUNK)),
            live: Vec::with_capacity(n.div_ceil(64)),
            slots: 0,
            live_count: 0,
        }
    }

    fn push(&mut self, r: T) -> u32 {
        if self.slots.is_multiple_of(SLAB_CHUNK) {
            self.chunks.push(Vec::with_capacity(SLAB_CHUNK));
        }
        self.chunks.last_mut().expect("a chunk was pushed above").push(r);
        if self.slots.is_multiple_of(64) {
            self.live.push(0);
        }
        self.live[self.slots / 64] |= 1 << (self.slots % 64);
        self.slots += 1;
        self.live_count += 1;
        (self.slots - 1) as u32
    }

    #[inline]
    fn get(&self, slot: u32) -> &T {
        let s = slot as usize;
        &self.chunks[s / SLAB_CHUNK][s % SLAB_CHUNK]
    }

    fn set_live(&mut self, slot: u32, on: bool) {
        let s = slot as usize;
        let bit = 1 << (s % 64);
        if (self.live[s / 64] & bit != 0) != on {
            self.live[s / 64] ^= bit;
            if on {
                self.live_count += 1;
            } else {
                self.live_count -= 1;
            }
        }
    }

    /// Marks `slot` dead; the last slot is dropped instead (an undone append).
    fn kill(&mut self, slot: u32) {
        self.set_live(slot, false);
        if slot as usize + 1 == self.slots {
            self.slots -= 1;
            let c = self.chunks.last_mut().expect("the slot is in the last chunk");
            c.pop();
            if c.is_empty() {
                self.chunks.pop();
            }
            if self.slots.is_multiple_of(64) {
                self.live.pop();
            }
        }
    }

    fn len(&self) -> usize {
        self.live_count
    }

    fn dead(&self) -> usize {
        self.slots - self.live_count
    }

    /// Live records with their slots, in slot order.
    fn iter(&self) -> impl Iterator<Item = (u32, &T)> + '_ {
        self.chunks
            .iter()
            .flat_map(|c| c.iter())
            .enumerate()
            .filter(|(i, _)| self.live[i / 64] & (1 << (i % 64)) != 0)
            .map(|(i, r)| (i as u32, r))
    }

    fn heap_bytes(&self) -> usize {
        self.chunks.len() * SLAB_CHUNK * std::mem::size_of::<T>()
            + self.live.capacity() * 8
            + self.chunks.capacity() * 24
    }
}

/// A static route as the store keeps it.
#[derive(Clone, Copy, Debug)]
struct RouteRec {
    prefix: Prefix,
    /// Index into `Store::nhs`.
    nh: u32,
    line: u32,
}

/// A network as the store keeps it.
#[derive(Clone, Copy, Debug)]
struct NetRec {
    prefix: Prefix,
    /// Static label, 0 for none (labels below 16 are reserved).
    label: u32,
    line: u32,
}

impl NetRec {
    fn network(&self) -> Network {
        Network { prefix: self.prefix, label: (self.label != 0).then_some(self.label), line: self.line as usize }
    }
}

fn hash_of<K: std::hash::Hash>(k: K) -> u64 {
    BuildHasherDefault::<MixHasher>::default().hash_one(k)
}

/// The running configuration, indexed.
#[derive(Debug)]
pub(crate) struct Store {
    /// Everything but the routes and networks (its lists are empty).
    head: Config,
    /// Next hops of routes, interned (a route keeps a 4-byte index).
    nhs: Vec<IpAddr>,
    nh_ix: HashMap<IpAddr, u32>,
    routes: Slab<RouteRec>,
    /// Per prefix, the slot of its first live route.
    first_route: HashTable<u32>,
    /// Prefixes with two or more live routes: all their slots, ascending (rare).
    more_routes: FastMap<Prefix, Vec<u32>>,
    nets: Slab<NetRec>,
    /// Per prefix, the slot of its network.
    net_ix: HashTable<u32>,
    /// Per static label, the slot of its network.
    label_ix: HashTable<u32>,
    /// IPv6 networks (a peer's default families depend on whether there are any).
    v6_networks: usize,
}

/// What [`Store::commit`] changed, to take it back with [`Store::undo`].
#[derive(Debug, Default)]
pub(crate) struct Undo {
    head: Option<Option<BgpHead>>,
    peers: Option<Vec<Peer>>,
    vpn: Option<VpnHead>,
    routes_removed: Vec<u32>,
    routes_added: Vec<u32>,
    nets_removed: Vec<u32>,
    nets_added: Vec<u32>,
}

impl Store {
    pub fn from_config(cfg: &Config) -> Store {
        let nets = cfg.bgp.as_ref().map_or(0, |b| b.networks.len());
        let mut s = Store::empty(head_of(cfg), cfg.static_routes.len(), nets);
        for r in &cfg.static_routes {
            if !s.has_route(r.prefix, r.next_hop) {
                s.insert_route(None, r.prefix, r.next_hop, line32(r.line));
            }
        }
        for n in cfg.bgp.iter().flat_map(|b| &b.networks) {
            s.insert_network(None, NetRec { prefix: n.prefix, label: n.label.unwrap_or(0), line: line32(n.line) });
        }
        s
    }

    /// A store with `cfg`'s head and no routes or networks.
    pub fn head_only(cfg: &Config) -> Store {
        Store::empty(head_of(cfg), 0, 0)
    }

    fn empty(head: Config, routes: usize, nets: usize) -> Store {
        let mut s = Store {
            nhs: Vec::new(),
            nh_ix: HashMap::new(),
            routes: Slab::with_capacity(routes),
            first_route: HashTable::with_capacity(routes),
            more_routes: FastMap::default(),
            nets: Slab::with_capacity(nets),
            net_ix: HashTable::with_capacity(nets),
            label_ix: HashTable::new(),
            v6_networks: 0,
            head,
        };
        // Next hops are interned in neighbor order first (most routes use one).
        for n in s.head.neighbors.clone() {
            s.nh_id(n.ip);
        }
        s
    }

    /// Renumbers the slots (dropping dead ones) once they outnumber the live ones, so
    /// that a long run of commits does not grow the slabs without bound. O(routes).
    fn compact(&mut self) {
        if self.routes.dead() + self.nets.dead() <= (self.size() + SLAB_CHUNK).max(2 * SLAB_CHUNK) {
            return;
        }
        let mut s = Store::empty(head_of(&self.head), self.routes.len(), self.nets.len());
        for (_, r) in self.routes.iter() {
            s.insert_route(None, r.prefix, self.nhs[r.nh as usize], r.line);
        }
        for (_, n) in self.nets.iter() {
            s.insert_network(None, *n);
        }
        *self = s;
    }

    fn nh_id(&mut self, ip: IpAddr) -> u32 {
        if let Some(i) = self.nh_ix.get(&ip) {
            return *i;
        }
        self.nhs.push(ip);
        self.nh_ix.insert(ip, (self.nhs.len() - 1) as u32);
        (self.nhs.len() - 1) as u32
    }

    /// The equivalent `Config` (O(n): full builds).
    pub fn to_config(&self) -> Config {
        let mut c = self.head.clone();
        c.static_routes = self.routes().collect();
        if let Some(b) = &mut c.bgp {
            b.networks = self.networks().collect();
        }
        c
    }

    /// The static routes in config order.
    pub fn routes(&self) -> impl Iterator<Item = StaticRoute> + '_ {
        self.routes.iter().map(|(_, r)| StaticRoute {
            prefix: r.prefix,
            next_hop: self.nhs[r.nh as usize],
            line: r.line as usize,
        })
    }

    /// The networks in config order.
    pub fn networks(&self) -> impl Iterator<Item = Network> + '_ {
        self.nets.iter().map(|(_, n)| n.network())
    }

    /// Everything but the routes and networks (cheap: the BGP speaker's settings).
    pub fn head(&self) -> &Config {
        &self.head
    }

    pub fn device(&self) -> &str {
        &self.head.device
    }

    /// Routes plus networks.
    pub fn size(&self) -> usize {
        self.routes.len() + self.nets.len()
    }

    /// Bytes of heap the store holds (records, slabs and indexes).
    pub fn heap_bytes(&self) -> usize {
        let table = |n: usize| crate::config::table_buckets(n) * 5;
        self.routes.heap_bytes()
            + self.nets.heap_bytes()
            + table(self.first_route.capacity())
            + table(self.net_ix.capacity())
            + table(self.label_ix.capacity())
            + self.more_routes.capacity() * 48
    }

    fn bgp(&self) -> Option<BgpHead> {
        self.head.bgp.as_ref().map(BgpHead::of)
    }

    fn set_bgp(&mut self, h: Option<BgpHead>) {
        match h {
            Some(h) => self.head.set_bgp_head(h),
            None => self.head.bgp = None,
        }
    }

    fn first_route_slot(&self, p: Prefix) -> Option<u32> {
        self.first_route.find(hash_of(p), |&s| self.routes.get(s).prefix == p).copied()
    }

    /// Slots of the live routes for `p`, ascending.
    fn route_slots(&self, p: Prefix) -> impl Iterator<Item = u32> + '_ {
        let more = self.more_routes.get(&p);
        let first = if more.is_some() { None } else { self.first_route_slot(p) };
        more.into_iter().flatten().copied().chain(first)
    }

    fn route_slot(&self, p: Prefix, nh: IpAddr) -> Option<u32> {
        let id = *self.nh_ix.get(&nh)?;
        self.route_slots(p).find(|s| self.routes.get(*s).nh == id)
    }

    fn has_route(&self, p: Prefix, nh: IpAddr) -> bool {
        self.route_slot(p, nh).is_some()
    }

    fn next_hops_iter(&self, p: Prefix) -> impl Iterator<Item = IpAddr> + '_ {
        self.route_slots(p).map(|s| self.nhs[self.routes.get(s).nh as usize])
    }

    /// Indexes route slot `slot` (live, not indexed yet) under its prefix.
    fn index_route(&mut self, slot: u32) {
        let p = self.routes.get(slot).prefix;
        let h = hash_of(p);
        let Store { first_route, routes, more_routes, .. } = self;
        match first_route.find_mut(h, |&s| routes.get(s).prefix == p) {
            Some(first) => {
                let v = more_routes.entry(p).or_insert_with(|| vec![*first]);
                let at = v.partition_point(|s| *s < slot);
                v.insert(at, slot);
                *first = v[0];
            }
            None => {
                first_route.insert_unique(h, slot, |&s| hash_of(routes.get(s).prefix));
            }
        }
    }

    /// Removes route slot `slot` (live, indexed) from the index.
    fn unindex_route(&mut self, slot: u32) {
        let p = self.routes.get(slot).prefix;
        let h = hash_of(p);
        let Store { first_route, routes, more_routes, .. } = self;
        if let Some(v) = more_routes.get_mut(&p) {
            v.retain(|s| *s != slot);
            let first = v[0];
            if v.len() == 1 {
                more_routes.remove(&p);
            }
            if let Some(f) = first_route.find_mut(h, |&s| routes.get(s).prefix == p) {
                *f = first;
            }
        } else if let Ok(e) = first_route.find_entry(h, |&s| s == slot) {
            e.remove();
        }
    }

    fn insert_route(&mut self, slot: Option<u32>, prefix: Prefix, nh: IpAddr, line: u32) -> u32 {
        let slot = match slot {
            Some(s) => {
                self.routes.set_live(s, true);
                s
            }
            None => {
                let nh = self.nh_id(nh);
                self.routes.push(RouteRec { prefix, nh, line })
            }
        };
        self.index_route(slot);
        slot
    }

    fn remove_route(&mut self, p: Prefix, nh: IpAddr) -> Option<u32> {
        let slot = self.route_slot(p, nh)?;
        self.unindex_route(slot);
        self.routes.set_live(slot, false);
        Some(slot)
    }

    fn net_slot(&self, p: Prefix) -> Option<u32> {
        self.net_ix.find(hash_of(p), |&s| self.nets.get(s).prefix == p).copied()
    }

    fn has_network(&self, p: Prefix) -> bool {
        self.net_slot(p).is_some()
    }

    fn network_with_label(&self, l: u32) -> Option<Prefix> {
        self.label_ix.find(hash_of(l), |&s| self.nets.get(s).label == l).map(|&s| self.nets.get(s).prefix)
    }

    fn index_network(&mut self, slot: u32) {
        let n = *self.nets.get(slot);
        let Store { net_ix, label_ix, nets, .. } = self;
        net_ix.insert_unique(hash_of(n.prefix), slot, |&s| hash_of(nets.get(s).prefix));
        if n.label != 0 {
            label_ix.insert_unique(hash_of(n.label), slot, |&s| hash_of(nets.get(s).label));
        }
        self.v6_networks += usize::from(is_public_v6(n.prefix));
    }

    fn insert_network(&mut self, slot: Option<u32>, n: NetRec) -> u32 {
        let slot = match slot {
            Some(s) => {
                self.nets.set_live(s, true);
                s
            }
            None => self.nets.push(n),
        };
        self.index_network(slot);
        slot
    }

    fn remove_network(&mut self, p: Prefix) -> Option<u32> {
        let slot = self.net_slot(p)?;
        let n = *self.nets.get(slot);
        if let Ok(e) = self.net_ix.find_entry(hash_of(p), |&s| s == slot) {
            e.remove();
        }
        if n.label != 0 {
            if let Ok(e) = self.label_ix.find_entry(hash_of(n.label), |&s| s == slot) {
                e.remove();
            }
        }
        self.v6_networks -= usize::from(is_public_v6(p));
        self.nets.set_live(slot, false);
        Some(slot)
    }

    /// The first network in config order that has a static label (a scan: only a
    /// label-mode change asks).
    fn labelled_network(&self, skip: impl Fn(&Prefix) -> bool) -> Option<Prefix> {
        self.nets.iter().find(|(_, n)| n.label != 0 && !skip(&n.prefix)).map(|(_, n)| n.prefix)
    }

    /// Makes `ov` part of the running config. `ov` was checked against this store.
    pub fn commit(&mut self, ov: &Overlay) -> Undo {
        self.compact();
        let mut u = Undo::default();
        if let Some(h) = ov.head {
            u.head = Some(self.bgp());
            self.set_bgp(Some(h));
        }
        if let (Some(peers), Some(b)) = (&ov.peers, self.head.bgp.as_mut()) {
            u.peers = Some(std::mem::replace(&mut b.peers, peers.clone()));
        }
        if let Some(h) = &ov.vpn {
            u.vpn = Some(VpnHead::of(&self.head));
            h.apply_to(&mut self.head);
        }
        for &(p, nh) in &ov.routes_del {
            u.routes_removed.extend(self.remove_route(p, nh));
        }
        for r in &ov.routes_add {
            u.routes_added.push(self.insert_route(None, r.prefix, r.next_hop, line32(r.line)));
        }
        for p in &ov.nets_del {
            u.nets_removed.extend(self.remove_network(*p));
        }
        for n in &ov.nets_add {
            let rec = NetRec { prefix: n.prefix, label: n.label.unwrap_or(0), line: line32(n.line) };
            u.nets_added.push(self.insert_network(None, rec));
        }
        u
    }

    /// Takes back a [`Store::commit`], restoring the previous order.
    pub fn undo(&mut self, u: Undo) {
        for slot in u.nets_added.into_iter().rev() {
            let p = self.nets.get(slot).prefix;
            self.remove_network(p);
            self.nets.kill(slot);
        }
        for slot in u.nets_removed {
            self.insert_network(Some(slot), *self.nets.get(slot));
        }
        for slot in u.routes_added.into_iter().rev() {
            self.unindex_route(slot);
            self.routes.set_live(slot, false);
            self.routes.kill(slot);
        }
        for slot in u.routes_removed {
            self.routes.set_live(slot, true);
            self.index_route(slot);
        }
        if let (Some(peers), Some(b)) = (u.peers, self.head.bgp.as_mut()) {
            b.peers = peers;
        }
        if let Some(h) = u.head {
            self.set_bgp(h);
        }
        if let Some(h) = u.vpn {
            h.apply_to(&mut self.head);
        }
    }

    fn peers(&self) -> &[Peer] {
        self.head.bgp.as_ref().map_or(&[], |b| &b.peers)
    }
}

/// Line numbers are kept as `u32` (a config of more than 4 billion lines saturates).
/// An IPv6 network of the public table (6PE; VPN networks do not count).
fn is_public_v6(p: Prefix) -> bool {
    !p.is_v4() && p.vrf == 0
}

fn line32(l: usize) -> u32 {
    u32::try_from(l).unwrap_or(u32::MAX)
}

impl PatchSource for Store {
    fn pipe(&self) -> bool {
        self.head.ttl_mode == TtlMode::Pipe
    }
    fn bgp_params(&self) -> Option<(LabelMode, u32, bool, bool)> {
        self.bgp().map(|b| (b.label_mode, b.label_base, b.pop_go, b.pop_go_v6.unwrap_or(b.pop_go)))
    }
    fn next_hops(&self, p: Prefix) -> Vec<IpAddr> {
        self.next_hops_iter(p).collect()
    }
    fn vrf_params(&self, vrf: u16, v4: bool) -> (LabelMode, bool, bool) {
        crate::ilm::patch::vrf_params_of(&self.head, vrf, v4)
    }
}

/// A session's uncommitted changes relative to the running [`Store`]: small, cheap to
/// clone and check against.
#[derive(Clone, Debug, Default)]
pub(crate) struct Overlay {
    /// The BGP header after the changes, if they touch it.
    head: Option<BgpHead>,
    /// Running routes removed.
    routes_del: HashSet<(Prefix, IpAddr)>,
    /// Routes appended, in order.
    routes_add: Vec<StaticRoute>,
    nets_del: HashSet<Prefix>,
    nets_add: Vec<Network>,
    /// The whole peer list after the changes, if they touch it (peers are few).
    peers: Option<Vec<Peer>>,
    /// The VPN head after the changes, if they touch it.
    vpn: Option<VpnHead>,
}

/// The candidate configuration of a session: the running store seen through its
/// overlay. Changes go to the overlay.
pub(crate) struct Cand<'a> {
    pub run: &'a Store,
    pub ov: &'a mut Overlay,
}

impl Cand<'_> {
    /// Next hops of the candidate's routes for `p`, in order.
    pub fn next_hops(&self, p: Prefix) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> =
            self.run.next_hops_iter(p).filter(|nh| !self.ov.routes_del.contains(&(p, *nh))).collect();
        v.extend(self.ov.routes_add.iter().filter(|r| r.prefix == p).map(|r| r.next_hop));
        v
    }

    fn run_has_network(&self, p: Prefix) -> bool {
        self.run.has_network(p) && !self.ov.nets_del.contains(&p)
    }
}

impl ConfigEdit for Cand<'_> {
    fn bgp_head(&self) -> Option<BgpHead> {
        self.ov.head.or_else(|| self.run.bgp())
    }
    fn set_bgp_head(&mut self, h: BgpHead) {
        self.ov.head = Some(h);
    }
    fn labelled_network(&self) -> Option<Prefix> {
        // The first in config order: running networks, then added ones.
        (self.run.labelled_network(|p| self.ov.nets_del.contains(p)))
            .or_else(|| self.ov.nets_add.iter().find(|n| n.label.is_some()).map(|n| n.prefix))
    }
    fn network_with_label(&self, l: u32) -> Option<Prefix> {
        self.run
            .network_with_label(l)
            .filter(|p| !self.ov.nets_del.contains(p))
            .or_else(|| self.ov.nets_add.iter().find(|n| n.label == Some(l)).map(|n| n.prefix))
    }
    fn has_network(&self, p: Prefix) -> bool {
        self.bgp_head().is_some() && (self.run_has_network(p) || self.ov.nets_add.iter().any(|n| n.prefix == p))
    }
    fn push_network(&mut self, n: Network) {
        self.ov.nets_add.push(n);
    }
    fn remove_network(&mut self, p: Prefix) -> bool {
        if let Some(at) = self.ov.nets_add.iter().position(|n| n.prefix == p) {
            self.ov.nets_add.remove(at);
            true
        } else if self.run_has_network(p) {
            self.ov.nets_del.insert(p);
            true
        } else {
            false
        }
    }
    fn has_route(&self, p: Prefix, nh: IpAddr) -> bool {
        (self.run.has_route(p, nh) && !self.ov.routes_del.contains(&(p, nh)))
            || self.ov.routes_add.iter().any(|r| r.prefix == p && r.next_hop == nh)
    }
    fn route_count(&self, p: Prefix) -> usize {
        self.run.next_hops_iter(p).filter(|nh| !self.ov.routes_del.contains(&(p, *nh))).count()
            + self.ov.routes_add.iter().filter(|r| r.prefix == p).count()
    }
    fn check_route(&self, p: Prefix, nh: IpAddr) -> Result<(), crate::config::edit::EditError> {
        match &self.ov.vpn {
            // Bindings in this candidate move neighbors between tables.
            Some(h) => {
                let mut c = self.run.head.clone();
                h.apply_to(&mut c);
                c.check_static_route(p, nh)
            }
            None => self.run.head.check_static_route(p, nh),
        }
    }
    fn push_route(&mut self, r: StaticRoute) {
        self.ov.routes_add.push(r);
    }
    fn remove_route(&mut self, p: Prefix, nh: IpAddr) {
        if let Some(at) = self.ov.routes_add.iter().position(|r| r.prefix == p && r.next_hop == nh) {
            self.ov.routes_add.remove(at);
        } else {
            self.ov.routes_del.insert((p, nh));
        }
    }
    fn peer(&self, a: Ipv4Addr) -> Option<Peer> {
        self.ov.peers.as_deref().unwrap_or(self.run.peers()).iter().find(|p| p.address == a).cloned()
    }
    fn set_peer(&mut self, p: Peer) {
        let run = self.run.peers();
        set_peer_in(self.ov.peers.get_or_insert_with(|| run.to_vec()), p);
    }
    fn remove_peer(&mut self, a: Ipv4Addr) -> bool {
        let run = self.run.peers();
        let peers = self.ov.peers.get_or_insert_with(|| run.to_vec());
        let n = peers.len();
        peers.retain(|p| p.address != a);
        peers.len() != n
    }
    fn has_v6_network(&self) -> bool {
        let deleted = self.ov.nets_del.iter().filter(|p| is_public_v6(**p)).count();
        self.run.v6_networks > deleted || self.ov.nets_add.iter().any(|n| is_public_v6(n.prefix))
    }
    fn vpn_head(&self) -> VpnHead {
        self.ov.vpn.clone().unwrap_or_else(|| VpnHead::of(&self.run.head))
    }
    fn set_vpn_head(&mut self, h: VpnHead) {
        self.ov.vpn = Some(h);
    }
    fn vrf_in_use(&self, vrf: u16) -> bool {
        self.run
            .routes
            .iter()
            .any(|(_, r)| r.prefix.vrf == vrf && !self.ov.routes_del.contains(&(r.prefix, self.run.nhs[r.nh as usize])))
            || self.ov.routes_add.iter().any(|r| r.prefix.vrf == vrf)
            || self.run.nets.iter().any(|(_, n)| n.prefix.vrf == vrf && !self.ov.nets_del.contains(&n.prefix))
            || self.ov.nets_add.iter().any(|n| n.prefix.vrf == vrf)
    }
    fn port_names(&self) -> Vec<String> {
        self.run.head.ports.iter().map(|p| p.name.clone()).collect()
    }
}

/// `Config::clone` without copying the route and network lists.
fn head_of(c: &Config) -> Config {
    c.head()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::edit::{apply, Edit};

    #[test]
    fn overlay_matches_config_edits_and_commit_undo_round_trips() {
        let cfg = Config::parse(include_str!("../../pcaps/seed.toml")).unwrap();
        let p = |s: &str| Prefix::parse(s).unwrap();
        let nh1: IpAddr = "192.168.10.1".parse().unwrap();
        let nh2: IpAddr = "192.168.20.1".parse().unwrap();
        let edits = [
            Edit::AddRoute(StaticRoute { prefix: p("10.2.0.0/16"), next_hop: nh2, line: 3 }),
            Edit::AddRoute(StaticRoute { prefix: p("10.2.0.0/16"), next_hop: nh1, line: 4 }),
            Edit::AddNetwork(Network { prefix: p("10.2.0.0/16"), label: Some(5000), line: 5 }),
            Edit::DelRoute(p("10.2.0.0/16"), nh2),
            Edit::PopGo(false),
            Edit::DelNetwork(p("10.1.1.0/24")),
            Edit::AddNetwork(Network { prefix: p("10.1.1.0/24"), label: None, line: 8 }),
            Edit::DelRoute(p("10.2.0.0/16"), nh1), // imported, last route: refused
            Edit::AddNetwork(Network { prefix: p("10.1.1.0/30"), label: Some(5000), line: 9 }), // label taken
            Edit::LabelMode(LabelMode::PerNexthop), // a static label exists: refused
            Edit::PeerAs { address: "198.18.0.1".parse().unwrap(), asn: 200, line: 10 },
            Edit::PeerFamily {
                address: "198.18.0.1".parse().unwrap(),
                family: crate::config::Family::Ipv6LabeledUnicast,
                on: true,
            },
            Edit::RouterId(Some("192.0.2.3".parse().unwrap())),
            Edit::PeerAs { address: "198.18.0.5".parse().unwrap(), asn: 300, line: 11 },
            Edit::DelPeer("198.18.0.5".parse().unwrap()),
            Edit::DelPeer("198.18.0.5".parse().unwrap()), // gone already: refused
        ];
        let mut want = cfg.clone();
        let store = Store::from_config(&cfg);
        assert_eq!(store.to_config(), cfg);
        let mut ov = Overlay::default();
        for e in &edits {
            let a = apply(&mut want, e);
            let b = apply(&mut Cand { run: &store, ov: &mut ov }, e);
            assert_eq!(a, b, "{e:?}");
        }
        let mut store = store;
        let u = store.commit(&ov);
        assert_eq!(store.to_config(), want);
        store.undo(u);
        assert_eq!(store.to_config(), cfg);
    }

    /// A long run of commits that each move a route leaves dead slots behind; the
    /// store compacts them and keeps the order of the equivalent `Config`.
    #[test]
    fn dead_slots_are_compacted_and_order_is_kept() {
        let mut want = Config::parse(include_str!("../../pcaps/seed.toml")).unwrap();
        let mut store = Store::from_config(&want);
        let p = Prefix::parse("10.1.1.0/30").unwrap();
        let hops: [IpAddr; 2] = ["192.168.20.1".parse().unwrap(), "192.168.10.1".parse().unwrap()];
        let mut most = 0;
        for i in 0..30_000usize {
            let (from, to) = (hops[i % 2], hops[(i + 1) % 2]);
            let mut ov = Overlay::default();
            let edits = [Edit::AddRoute(StaticRoute { prefix: p, next_hop: to, line: i }), Edit::DelRoute(p, from)];
            for e in &edits {
                apply(&mut Cand { run: &store, ov: &mut ov }, e).unwrap();
                apply(&mut want, e).unwrap();
            }
            store.commit(&ov);
            most = most.max(store.routes.slots);
        }
        assert_eq!(store.to_config(), want);
        assert!(most < 3 * SLAB_CHUNK, "slots stay bounded: {most}");
    }
}

//! The control plane's indexed configuration: the running config kept as ordered maps
//! with hash indexes, and a session's uncommitted changes as a small [`Overlay`] on it.
//!
//! A [`Config`] keeps routes and networks in `Vec`s: finding, checking or removing one
//! scans (and shifts) the whole list, and a private candidate per session means cloning
//! it. With 100,000 routes that is several linear passes over megabytes per commit. Here
//! a one-route edit is checked, applied and undone in O(log n), a session's candidate
//! is the running [`Store`] plus its [`Overlay`] (no copy), and a [`Config`] is
//! materialized only for full builds and `display`.
//!
//! Order is kept: every route and network has a sequence number, and the maps iterate
//! in that order, which is the order of the equivalent `Config`'s lists (a removed and
//! re-added route goes to the end, as with `Vec::remove` + `push`).

use crate::config::edit::{set_peer_in, BgpHead, ConfigEdit};
use crate::config::{Bgp, Config, LabelMode, Network, Peer, Prefix, StaticRoute, TtlMode};
use crate::ilm::PatchSource;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

/// The running configuration, indexed.
#[derive(Debug)]
pub(crate) struct Store {
    /// Everything but the routes and networks (its lists are empty).
    head: Config,
    routes: BTreeMap<u64, StaticRoute>,
    route_seq: HashMap<(Prefix, IpAddr), u64>,
    /// Sequence numbers of each prefix's routes, ascending.
    by_prefix: HashMap<Prefix, Vec<u64>>,
    networks: BTreeMap<u64, Network>,
    net_seq: HashMap<Prefix, u64>,
    /// Static label -> network.
    labels: HashMap<u32, Prefix>,
    /// IPv6 networks (a peer's default families depend on whether there are any).
    v6_networks: usize,
    next: u64,
}

/// What [`Store::commit`] changed, to take it back with [`Store::undo`].
#[derive(Debug, Default)]
pub(crate) struct Undo {
    head: Option<Option<BgpHead>>,
    peers: Option<Vec<Peer>>,
    routes_removed: Vec<(u64, StaticRoute)>,
    routes_added: Vec<u64>,
    nets_removed: Vec<(u64, Network)>,
    nets_added: Vec<u64>,
}

impl Store {
    pub fn from_config(cfg: &Config) -> Store {
        let mut s = Store {
            head: head_of(cfg),
            routes: BTreeMap::new(),
            route_seq: HashMap::with_capacity(cfg.static_routes.len()),
            by_prefix: HashMap::with_capacity(cfg.static_routes.len()),
            networks: BTreeMap::new(),
            net_seq: HashMap::new(),
            labels: HashMap::new(),
            v6_networks: 0,
            next: 0,
        };
        for r in &cfg.static_routes {
            if !s.route_seq.contains_key(&(r.prefix, r.next_hop)) {
                s.insert_route(None, r.clone());
            }
        }
        for n in cfg.bgp.iter().flat_map(|b| &b.networks) {
            s.insert_network(None, n.clone());
        }
        s
    }

    /// The equivalent `Config` (O(n): full builds and `display`).
    pub fn to_config(&self) -> Config {
        let mut c = self.head.clone();
        c.static_routes = self.routes.values().cloned().collect();
        if let Some(b) = &mut c.bgp {
            b.networks = self.networks.values().cloned().collect();
        }
        c
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
        self.routes.len() + self.networks.len()
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

    fn has_route(&self, p: Prefix, nh: IpAddr) -> bool {
        self.route_seq.contains_key(&(p, nh))
    }

    fn route_seqs(&self, p: Prefix) -> &[u64] {
        self.by_prefix.get(&p).map_or(&[], Vec::as_slice)
    }

    fn next_hops_iter(&self, p: Prefix) -> impl Iterator<Item = IpAddr> + '_ {
        self.route_seqs(p).iter().map(|s| self.routes[s].next_hop)
    }

    fn insert_route(&mut self, seq: Option<u64>, r: StaticRoute) -> u64 {
        let seq = seq.unwrap_or_else(|| {
            self.next += 1;
            self.next - 1
        });
        self.route_seq.insert((r.prefix, r.next_hop), seq);
        let v = self.by_prefix.entry(r.prefix).or_default();
        let at = v.partition_point(|s| *s < seq);
        v.insert(at, seq);
        self.routes.insert(seq, r);
        seq
    }

    fn remove_route(&mut self, p: Prefix, nh: IpAddr) -> Option<(u64, StaticRoute)> {
        let seq = self.route_seq.remove(&(p, nh))?;
        if let Some(v) = self.by_prefix.get_mut(&p) {
            v.retain(|s| *s != seq);
            if v.is_empty() {
                self.by_prefix.remove(&p);
            }
        }
        self.routes.remove(&seq).map(|r| (seq, r))
    }

    fn insert_network(&mut self, seq: Option<u64>, n: Network) -> u64 {
        let seq = seq.unwrap_or_else(|| {
            self.next += 1;
            self.next - 1
        });
        self.net_seq.insert(n.prefix, seq);
        self.v6_networks += usize::from(!n.prefix.is_v4());
        if let Some(l) = n.label {
            self.labels.insert(l, n.prefix);
        }
        self.networks.insert(seq, n);
        seq
    }

    fn remove_network(&mut self, p: Prefix) -> Option<(u64, Network)> {
        let seq = self.net_seq.remove(&p)?;
        let n = self.networks.remove(&seq)?;
        self.v6_networks -= usize::from(!n.prefix.is_v4());
        if let Some(l) = n.label {
            self.labels.remove(&l);
        }
        Some((seq, n))
    }

    /// Makes `ov` part of the running config. `ov` was checked against this store.
    pub fn commit(&mut self, ov: &Overlay) -> Undo {
        let mut u = Undo::default();
        if let Some(h) = ov.head {
            u.head = Some(self.bgp());
            self.set_bgp(Some(h));
        }
        if let (Some(peers), Some(b)) = (&ov.peers, self.head.bgp.as_mut()) {
            u.peers = Some(std::mem::replace(&mut b.peers, peers.clone()));
        }
        for &(p, nh) in &ov.routes_del {
            u.routes_removed.extend(self.remove_route(p, nh));
        }
        for r in &ov.routes_add {
            u.routes_added.push(self.insert_route(None, r.clone()));
        }
        for p in &ov.nets_del {
            u.nets_removed.extend(self.remove_network(*p));
        }
        for n in &ov.nets_add {
            u.nets_added.push(self.insert_network(None, n.clone()));
        }
        u
    }

    /// Takes back a [`Store::commit`], restoring the previous order.
    pub fn undo(&mut self, u: Undo) {
        for seq in u.nets_added.into_iter().rev() {
            if let Some(p) = self.networks.get(&seq).map(|n| n.prefix) {
                self.remove_network(p);
            }
        }
        for (seq, n) in u.nets_removed {
            self.insert_network(Some(seq), n);
        }
        for seq in u.routes_added.into_iter().rev() {
            if let Some(r) = self.routes.get(&seq).map(|r| (r.prefix, r.next_hop)) {
                self.remove_route(r.0, r.1);
            }
        }
        for (seq, r) in u.routes_removed {
            self.insert_route(Some(seq), r);
        }
        if let (Some(peers), Some(b)) = (u.peers, self.head.bgp.as_mut()) {
            b.peers = peers;
        }
        if let Some(h) = u.head {
            self.set_bgp(h);
        }
    }

    fn peers(&self) -> &[Peer] {
        self.head.bgp.as_ref().map_or(&[], |b| &b.peers)
    }
}

impl PatchSource for Store {
    fn pipe(&self) -> bool {
        self.head.ttl_mode == TtlMode::Pipe
    }
    fn bgp_params(&self) -> Option<(LabelMode, u32, bool)> {
        self.bgp().map(|b| (b.label_mode, b.label_base, b.pop_go))
    }
    fn next_hops(&self, p: Prefix) -> Vec<IpAddr> {
        self.next_hops_iter(p).collect()
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
        self.run.net_seq.contains_key(&p) && !self.ov.nets_del.contains(&p)
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
        (self.run.labels.values().filter(|p| !self.ov.nets_del.contains(p)))
            .min_by_key(|p| self.run.net_seq.get(p))
            .copied()
            .or_else(|| self.ov.nets_add.iter().find(|n| n.label.is_some()).map(|n| n.prefix))
    }
    fn network_with_label(&self, l: u32) -> Option<Prefix> {
        self.run
            .labels
            .get(&l)
            .filter(|p| !self.ov.nets_del.contains(p))
            .copied()
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
    fn check_route(&self, p: Prefix, nh: IpAddr) -> Result<(), String> {
        self.run.head.check_static_route(p, nh)
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
        let deleted = self.ov.nets_del.iter().filter(|p| !p.is_v4()).count();
        self.run.v6_networks > deleted || self.ov.nets_add.iter().any(|n| !n.prefix.is_v4())
    }
}

/// `Config::clone` without copying the route and network lists.
fn head_of(c: &Config) -> Config {
    Config {
        device: c.device.clone(),
        ttl_mode: c.ttl_mode,
        ports: c.ports.clone(),
        neighbors: c.neighbors.clone(),
        static_routes: Vec::new(),
        bgp: c.bgp.as_ref().map(|b| Bgp {
            asn: b.asn,
            label_mode: b.label_mode,
            pop_go: b.pop_go,
            label_base: b.label_base,
            router_id: b.router_id,
            networks: Vec::new(),
            peers: b.peers.clone(),
        }),
    }
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
}

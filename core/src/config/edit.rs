//! Configuration edits and the rules they follow: the one place that decides whether a
//! change (a VRP line, a config-file entry, an API call) is allowed.
//!
//! [`apply`] checks everything before it mutates, so a rejected edit leaves the
//! configuration exactly as it was. It works over [`ConfigEdit`], implemented by
//! [`Config`] here and by the control plane's indexed candidate, so both follow the
//! same rules.

pub use super::edit_error::EditError;
use super::{
    Bgp, Config, Families, Family, LabelMode, Network, Password, Peer, Prefix, RouteLimit, StaticRoute,
    DEFAULT_LABEL_BASE,
};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};

/// A change to the candidate configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edit {
    /// `bgp <as>` when no BGP instance exists yet.
    CreateBgp(u32),
    /// `apply-label per-route pop-go` / `undo apply-label per-route pop-go`.
    PopGo(bool),
    /// The same in `ipv6-family unicast` (6PE); `None`: follow the BGP view's switch.
    PopGoV6(Option<bool>),
    /// `apply-label per-route | per-nexthop | per-instance`.
    LabelMode(LabelMode),
    /// `network <prefix> <len> [label N]`.
    AddNetwork(Network),
    /// `undo network <prefix> <len>`.
    DelNetwork(Prefix),
    /// `ip route-static <prefix> <len> <next-hop>`.
    AddRoute(StaticRoute),
    /// `undo ip route-static <prefix> <len> <next-hop>`.
    DelRoute(Prefix, IpAddr),
    /// `router-id A.B.C.D` / `undo router-id`.
    RouterId(Option<Ipv4Addr>),
    /// `peer X as-number N`: creates the peer (default families) or changes its AS.
    PeerAs { address: Ipv4Addr, asn: u32, line: usize },
    /// `peer X enable` / `peer X label-route-capability` in a family view (on), and
    /// their `undo` (off). A peer on default families starts from its defaults.
    PeerFamily { address: Ipv4Addr, family: Family, on: bool },
    /// `undo peer X as-number N` (or `undo peer X`).
    DelPeer(Ipv4Addr),
    /// `peer X route-limit ...` / `undo peer X route-limit`.
    PeerRouteLimit { address: Ipv4Addr, limit: Option<RouteLimit> },
    /// `peer X password simple|cipher KEY` / `undo peer X password`.
    PeerPassword { address: Ipv4Addr, password: Option<Password> },
    /// `peer X valid-ttl-hops [N]` / `undo peer X valid-ttl-hops`.
    PeerTtlHops { address: Ipv4Addr, hops: Option<u8> },
    /// A whole peer as the config file has it (config reload).
    SetPeer(Peer),
    /// VPN instances, bindings, the MPLS instance and the BGP VPN families.
    Vpn(super::edit_vpn::VpnEdit),
}

/// The header of a BGP instance (everything but its networks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BgpHead {
    pub asn: u32,
    pub label_mode: LabelMode,
    pub pop_go: bool,
    pub pop_go_v6: Option<bool>,
    pub label_base: u32,
    pub router_id: Option<Ipv4Addr>,
}

impl BgpHead {
    pub fn of(b: &Bgp) -> BgpHead {
        BgpHead {
            asn: b.asn,
            label_mode: b.label_mode,
            pop_go: b.pop_go,
            pop_go_v6: b.pop_go_v6,
            label_base: b.label_base,
            router_id: b.router_id,
        }
    }
}

/// The queries and primitive changes [`apply`] makes to a configuration: implemented by
/// [`Config`] (linear scans) and by the control plane's indexed candidate
/// (`store::Cand`, hash lookups), so both follow exactly the same rules.
pub trait ConfigEdit {
    fn bgp_head(&self) -> Option<BgpHead>;
    /// Sets the BGP header, creating an instance without networks if there is none.
    fn set_bgp_head(&mut self, h: BgpHead);
    /// A network with a static label, if any.
    fn labelled_network(&self) -> Option<Prefix>;
    /// The network using static label `l`, if any.
    fn network_with_label(&self, l: u32) -> Option<Prefix>;
    fn has_network(&self, p: Prefix) -> bool;
    fn push_network(&mut self, n: Network);
    /// Removes network `p`; false if there is none.
    fn remove_network(&mut self, p: Prefix) -> bool;
    fn has_route(&self, p: Prefix, nh: IpAddr) -> bool;
    /// Number of static routes for `p`.
    fn route_count(&self, p: Prefix) -> usize;
    /// Checks that `nh` is a neighbor of the family of `p` (see `Config::check_static_route`).
    fn check_route(&self, p: Prefix, nh: IpAddr) -> Result<(), EditError>;
    /// Appends a route (not present yet).
    fn push_route(&mut self, r: StaticRoute);
    /// Removes the (present) route `p` via `nh`.
    fn remove_route(&mut self, p: Prefix, nh: IpAddr);
    fn peer(&self, a: Ipv4Addr) -> Option<Peer>;
    /// Replaces the peer with `p.address`, or appends `p`.
    fn set_peer(&mut self, p: Peer);
    /// Removes peer `a`; false if there is none.
    fn remove_peer(&mut self, a: Ipv4Addr) -> bool;
    /// Whether any network is IPv6 (a peer's default families depend on it).
    fn has_v6_network(&self) -> bool;
    /// VPN instances, MPLS and port bindings ([`super::edit_vpn::VpnHead`]).
    fn vpn_head(&self) -> super::edit_vpn::VpnHead;
    fn set_vpn_head(&mut self, h: super::edit_vpn::VpnHead);
    /// Whether a static route or a network of VRF `vrf` exists (a scan: only `undo ip
    /// vpn-instance` asks).
    fn vrf_in_use(&self, vrf: u16) -> bool;
    /// The port names, in port order.
    fn port_names(&self) -> Vec<String>;
}

impl ConfigEdit for Config {
    fn bgp_head(&self) -> Option<BgpHead> {
        self.bgp.as_ref().map(BgpHead::of)
    }
    fn set_bgp_head(&mut self, h: BgpHead) {
        let b = self.bgp.get_or_insert_with(|| Bgp {
            asn: h.asn,
            label_mode: h.label_mode,
            pop_go: h.pop_go,
            pop_go_v6: h.pop_go_v6,
            label_base: h.label_base,
            router_id: h.router_id,
            listen: None,
            networks: Vec::new(),
            peers: Vec::new(),
            vpn_families: Vec::new(),
        });
        (b.asn, b.label_mode, b.pop_go, b.pop_go_v6, b.label_base, b.router_id) =
            (h.asn, h.label_mode, h.pop_go, h.pop_go_v6, h.label_base, h.router_id);
    }
    fn labelled_network(&self) -> Option<Prefix> {
        self.bgp.as_ref()?.networks.iter().find(|n| n.label.is_some()).map(|n| n.prefix)
    }
    fn network_with_label(&self, l: u32) -> Option<Prefix> {
        self.bgp.as_ref()?.networks.iter().find(|n| n.label == Some(l)).map(|n| n.prefix)
    }
    fn has_network(&self, p: Prefix) -> bool {
        self.bgp.as_ref().is_some_and(|b| b.networks.iter().any(|n| n.prefix == p))
    }
    fn push_network(&mut self, n: Network) {
        if let Some(b) = self.bgp.as_mut() {
            b.networks.push(n);
        }
    }
    fn remove_network(&mut self, p: Prefix) -> bool {
        let Some(b) = self.bgp.as_mut() else { return false };
        match b.networks.iter().position(|n| n.prefix == p) {
            Some(at) => {
                b.networks.remove(at);
                true
            }
            None => false,
        }
    }
    fn has_route(&self, p: Prefix, nh: IpAddr) -> bool {
        self.static_routes.iter().any(|r| r.prefix == p && r.next_hop == nh)
    }
    fn route_count(&self, p: Prefix) -> usize {
        self.static_routes.iter().filter(|r| r.prefix == p).count()
    }
    fn check_route(&self, p: Prefix, nh: IpAddr) -> Result<(), EditError> {
        self.check_static_route(p, nh)
    }
    fn push_route(&mut self, r: StaticRoute) {
        self.static_routes.push(r);
    }
    fn remove_route(&mut self, p: Prefix, nh: IpAddr) {
        if let Some(at) = self.static_routes.iter().position(|r| r.prefix == p && r.next_hop == nh) {
            self.static_routes.remove(at);
        }
    }
    fn peer(&self, a: Ipv4Addr) -> Option<Peer> {
        self.bgp.as_ref()?.peers.iter().find(|p| p.address == a).cloned()
    }
    fn set_peer(&mut self, p: Peer) {
        if let Some(b) = self.bgp.as_mut() {
            set_peer_in(&mut b.peers, p);
        }
    }
    fn remove_peer(&mut self, a: Ipv4Addr) -> bool {
        let Some(b) = self.bgp.as_mut() else { return false };
        let n = b.peers.len();
        b.peers.retain(|p| p.address != a);
        b.peers.len() != n
    }
    fn has_v6_network(&self) -> bool {
        self.bgp.as_ref().is_some_and(Bgp::has_v6_networks)
    }
    fn vpn_head(&self) -> super::edit_vpn::VpnHead {
        super::edit_vpn::VpnHead::of(self)
    }
    fn set_vpn_head(&mut self, h: super::edit_vpn::VpnHead) {
        h.apply_to(self);
    }
    fn vrf_in_use(&self, vrf: u16) -> bool {
        self.static_routes.iter().any(|r| r.prefix.vrf == vrf)
            || self.bgp.as_ref().is_some_and(|b| b.networks.iter().any(|n| n.prefix.vrf == vrf))
    }
    fn port_names(&self) -> Vec<String> {
        self.ports.iter().map(|p| p.name.clone()).collect()
    }
}

/// Replaces the peer with `p.address` in `peers`, or appends `p`.
pub fn set_peer_in(peers: &mut Vec<Peer>, p: Peer) {
    match peers.iter_mut().find(|q| q.address == p.address) {
        Some(q) => *q = p,
        None => peers.push(p),
    }
}

/// Two peers are the same configuration (line numbers aside).
pub fn same_peer(a: &Peer, b: &Peer) -> bool {
    (a.address, a.asn, a.source, a.families, a.route_limit, &a.password, a.ttl_hops)
        == (b.address, b.asn, b.source, b.families, b.route_limit, &b.password, b.ttl_hops)
}

/// Applies `e` to `cfg`, or leaves `cfg` untouched and says why not. `Ok(false)` means
/// the edit changes nothing (e.g. re-entering an existing route) and need not be kept.
pub fn apply<C: ConfigEdit + ?Sized>(cfg: &mut C, e: &Edit) -> Result<bool, EditError> {
    match e {
        Edit::CreateBgp(asn) => match cfg.bgp_head() {
            Some(b) if b.asn == *asn => Ok(false),
            Some(b) => Err(EditError::AsFixed { running: b.asn }),
            None => {
                cfg.set_bgp_head(BgpHead {
                    asn: *asn,
                    label_mode: LabelMode::PerRoute,
                    pop_go: false,
                    pop_go_v6: None,
                    label_base: DEFAULT_LABEL_BASE,
                    router_id: None,
                });
                Ok(true)
            }
        },
        Edit::PopGo(on) => {
            let mut b = cfg.bgp_head().ok_or(EditError::NoBgp)?;
            let changed = b.pop_go != *on;
            b.pop_go = *on;
            cfg.set_bgp_head(b);
            Ok(changed)
        }
        Edit::PopGoV6(on) => {
            let mut b = cfg.bgp_head().ok_or(EditError::NoBgp)?;
            let changed = b.pop_go_v6 != *on;
            b.pop_go_v6 = *on;
            cfg.set_bgp_head(b);
            Ok(changed)
        }
        Edit::LabelMode(m) => {
            let mut b = cfg.bgp_head().ok_or(EditError::NoBgp)?;
            if *m != LabelMode::PerRoute {
                if let Some(p) = cfg.labelled_network() {
                    return Err(EditError::StaticLabelNeedsPerRoute(p));
                }
            }
            let changed = b.label_mode != *m;
            b.label_mode = *m;
            cfg.set_bgp_head(b);
            Ok(changed)
        }
        Edit::AddNetwork(n) => {
            if cfg.route_count(n.prefix) == 0 {
                return Err(EditError::NetworkWithoutRoute(n.prefix));
            }
            let bgp = cfg.bgp_head().ok_or(EditError::NoBgp)?;
            if cfg.has_network(n.prefix) {
                return Err(EditError::DuplicateNetwork(n.prefix));
            }
            if let Some(l) = n.label {
                if bgp.label_mode != LabelMode::PerRoute {
                    return Err(EditError::LabelModeNotPerRoute(n.prefix));
                }
                if let Some(o) = cfg.network_with_label(l) {
                    return Err(EditError::DuplicateLabel { label: l, network: o });
                }
            }
            cfg.push_network(n.clone());
            Ok(true)
        }
        Edit::DelNetwork(p) => {
            cfg.bgp_head().ok_or(EditError::NoBgp)?;
            if !cfg.remove_network(*p) {
                return Err(EditError::NoSuchNetwork(*p));
            }
            Ok(true)
        }
        Edit::AddRoute(r) => {
            if cfg.has_route(r.prefix, r.next_hop) {
                return Ok(false);
            }
            cfg.check_route(r.prefix, r.next_hop)?;
            cfg.push_route(r.clone());
            Ok(true)
        }
        Edit::DelRoute(p, nh) => {
            if !cfg.has_route(*p, *nh) {
                return Err(EditError::NoSuchRoute(*p, *nh));
            }
            if cfg.has_network(*p) && cfg.route_count(*p) <= 1 {
                return Err(EditError::RouteNeededByNetwork { p: *p });
            }
            cfg.remove_route(*p, *nh);
            Ok(true)
        }
        Edit::RouterId(id) => {
            let mut b = cfg.bgp_head().ok_or(EditError::NoBgp)?;
            if id.is_some_and(|a| a.is_unspecified()) {
                return Err(EditError::ZeroRouterId);
            }
            let changed = b.router_id != *id;
            b.router_id = *id;
            cfg.set_bgp_head(b);
            Ok(changed)
        }
        Edit::PeerAs { address, asn, line } => {
            cfg.bgp_head().ok_or(EditError::NoBgp)?;
            check_peer_address(*address)?;
            if *asn == 0 {
                return Err(EditError::ZeroAs);
            }
            match cfg.peer(*address) {
                Some(p) if p.asn == *asn => Ok(false),
                Some(mut p) => {
                    p.asn = *asn;
                    cfg.set_peer(p);
                    Ok(true)
                }
                None => {
                    cfg.set_peer(Peer {
                        address: *address,
                        asn: *asn,
                        source: None,
                        families: None,
                        route_limit: None,
                        password: None,
                        ttl_hops: None,
                        line: *line,
                    });
                    Ok(true)
                }
            }
        }
        Edit::PeerFamily { address, family, on } => {
            cfg.bgp_head().ok_or(EditError::NoBgp)?;
            let mut p = cfg.peer(*address).ok_or(EditError::NoSuchPeer(*address))?;
            let now: Families = p.effective_families(cfg.has_v6_network()).with(*family, *on);
            if p.families == Some(now) {
                return Ok(false);
            }
            p.families = Some(now);
            cfg.set_peer(p);
            Ok(true)
        }
        Edit::PeerRouteLimit { address, limit } => {
            cfg.bgp_head().ok_or(EditError::NoBgp)?;
            let mut p = cfg.peer(*address).ok_or(EditError::NoSuchPeer(*address))?;
            if p.route_limit == *limit {
                return Ok(false);
            }
            p.route_limit = *limit;
            cfg.set_peer(p);
            Ok(true)
        }
        Edit::PeerPassword { address, password } => {
            cfg.bgp_head().ok_or(EditError::NoBgp)?;
            let mut p = cfg.peer(*address).ok_or(EditError::NoSuchPeer(*address))?;
            if p.password == *password {
                return Ok(false);
            }
            p.password = password.clone();
            cfg.set_peer(p);
            Ok(true)
        }
        Edit::PeerTtlHops { address, hops } => {
            cfg.bgp_head().ok_or(EditError::NoBgp)?;
            let mut p = cfg.peer(*address).ok_or(EditError::NoSuchPeer(*address))?;
            if p.ttl_hops == *hops {
                return Ok(false);
            }
            p.ttl_hops = *hops;
            cfg.set_peer(p);
            Ok(true)
        }
        Edit::DelPeer(a) => {
            cfg.bgp_head().ok_or(EditError::NoBgp)?;
            if !cfg.remove_peer(*a) {
                return Err(EditError::NoSuchPeer(*a));
            }
            Ok(true)
        }
        Edit::SetPeer(p) => {
            cfg.bgp_head().ok_or(EditError::NoBgp)?;
            check_peer_address(p.address)?;
            if cfg.peer(p.address).is_some_and(|q| same_peer(&q, p)) {
                return Ok(false);
            }
            cfg.set_peer(p.clone());
            Ok(true)
        }
        Edit::Vpn(v) => super::edit_vpn::apply_vpn(cfg, v),
    }
}

/// A peer needs a unicast address.
fn check_peer_address(a: Ipv4Addr) -> Result<(), EditError> {
    if a.is_unspecified() || a.is_broadcast() || a.is_multicast() {
        return Err(EditError::NotUnicastPeer(a));
    }
    Ok(())
}

/// The edits that turn `old` into `new`, in an order [`apply`] accepts (removals first,
/// then the BGP header, then additions), or `None` when the difference is outside what
/// edits express (device name, TTL mode, ports, neighbors, AS number, label base, BGP
/// listen address, or removing BGP): such a change needs a full rebuild. Used to reload
/// a config file through the same incremental commit path as a VRP session.
pub fn edits_between(old: &Config, new: &Config) -> Option<Vec<Edit>> {
    if old.device != new.device || old.ttl_mode != new.ttl_mode || old.ports != new.ports {
        return None;
    }
    if old.neighbors != new.neighbors || old.vpn_instances != new.vpn_instances || old.mpls != new.mpls {
        return None;
    }
    let vpn_families = |c: &Config| c.bgp.as_ref().map(|b| b.vpn_families.clone()).unwrap_or_default();
    if vpn_families(old) != vpn_families(new) {
        return None;
    }
    let mut edits = Vec::new();
    let no_networks: &[Network] = &[];
    let (old_nets, new_nets) = (
        old.bgp.as_ref().map_or(no_networks, |b| &b.networks[..]),
        new.bgp.as_ref().map_or(no_networks, |b| &b.networks[..]),
    );
    // Hash sets keep this linear in the table size (a full-table reload compares
    // hundreds of thousands of entries).
    let nets = |ns: &[Network]| ns.iter().map(|n| (n.prefix, n.label)).collect::<HashSet<_>>();
    let (old_set, new_set) = (nets(old_nets), nets(new_nets));
    for n in old_nets.iter().filter(|n| !new_set.contains(&(n.prefix, n.label))) {
        edits.push(Edit::DelNetwork(n.prefix));
    }
    let routes = |c: &Config| c.static_routes.iter().map(|r| (r.prefix, r.next_hop)).collect::<HashSet<_>>();
    let (old_routes, new_routes) = (routes(old), routes(new));
    for r in old.static_routes.iter().filter(|r| !new_routes.contains(&(r.prefix, r.next_hop))) {
        edits.push(Edit::DelRoute(r.prefix, r.next_hop));
    }
    let no_peers: &[Peer] = &[];
    let (old_peers, new_peers) =
        (old.bgp.as_ref().map_or(no_peers, |b| &b.peers[..]), new.bgp.as_ref().map_or(no_peers, |b| &b.peers[..]));
    for p in old_peers.iter().filter(|p| !new_peers.iter().any(|q| q.address == p.address)) {
        edits.push(Edit::DelPeer(p.address));
    }
    match (&old.bgp, &new.bgp) {
        (_, None) if old.bgp.is_some() => return None,
        (Some(a), Some(b)) if a.asn != b.asn || a.label_base != b.label_base || a.listen != b.listen => return None,
        (None, Some(b)) if b.label_base != DEFAULT_LABEL_BASE || b.listen.is_some() => return None,
        (None, Some(b)) => {
            edits.push(Edit::CreateBgp(b.asn));
            edits.push(Edit::LabelMode(b.label_mode));
        }
        (Some(a), Some(b)) if a.label_mode != b.label_mode => edits.push(Edit::LabelMode(b.label_mode)),
        _ => {}
    }
    for r in new.static_routes.iter().filter(|r| !old_routes.contains(&(r.prefix, r.next_hop))) {
        edits.push(Edit::AddRoute(r.clone()));
    }
    for n in new_nets.iter().filter(|n| !old_set.contains(&(n.prefix, n.label))) {
        edits.push(Edit::AddNetwork(n.clone()));
    }
    let router_id = |c: &Config| c.bgp.as_ref().and_then(|b| b.router_id);
    if router_id(old) != router_id(new) {
        edits.push(Edit::RouterId(router_id(new)));
    }
    for p in new_peers.iter().filter(|p| !old_peers.iter().any(|q| same_peer(p, q))) {
        edits.push(Edit::SetPeer(p.clone()));
    }
    let pop_go = |c: &Config| c.bgp.as_ref().is_some_and(|b| b.pop_go);
    if pop_go(old) != pop_go(new) {
        edits.push(Edit::PopGo(pop_go(new)));
    }
    let pop_go_v6 = |c: &Config| c.bgp.as_ref().and_then(|b| b.pop_go_v6);
    if pop_go_v6(old) != pop_go_v6(new) {
        edits.push(Edit::PopGoV6(pop_go_v6(new)));
    }
    Some(edits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejected_edit_leaves_the_config_untouched() {
        let cfg = Config::parse(include_str!("../../../pcaps/seed.toml")).unwrap();
        let p = |s: &str| Prefix::parse(s).unwrap();
        let bad = [
            Edit::AddNetwork(Network { prefix: p("10.9.0.0/16"), label: None, line: 1 }),
            Edit::AddNetwork(Network { prefix: p("10.1.1.0/30"), label: Some(48122), line: 1 }),
            Edit::DelNetwork(p("10.9.0.0/16")),
            Edit::AddRoute(StaticRoute {
                prefix: p("10.9.0.0/16"),
                next_hop: "192.168.99.1".parse().unwrap(),
                line: 1,
            }),
            Edit::DelRoute(p("10.1.1.0/24"), "192.168.10.1".parse().unwrap()),
            Edit::DelRoute(p("10.1.1.0/24"), "192.168.20.1".parse().unwrap()),
            Edit::LabelMode(LabelMode::PerNexthop),
            Edit::CreateBgp(200),
        ];
        for e in bad {
            let mut c = cfg.clone();
            assert!(apply(&mut c, &e).is_err(), "{e:?}");
            assert_eq!(c, cfg, "{e:?} changed the config");
        }
        let mut c = cfg.clone();
        assert_eq!(apply(&mut c, &Edit::CreateBgp(100)), Ok(false));
        assert_eq!(apply(&mut c, &Edit::PopGo(true)), Ok(false));
        assert_eq!(apply(&mut c, &Edit::PopGo(false)), Ok(true));
    }

    fn seed() -> Config {
        Config::parse(include_str!("../../../pcaps/seed.toml")).unwrap()
    }

    /// Applying the computed edits to the old config gives the new one (up to line
    /// numbers), for additions, removals, a relabelled network and pop-go.
    #[test]
    fn edits_between_reproduce_the_new_config() {
        let old = seed();
        let mut new = old.clone();
        let p = |s: &str| Prefix::parse(s).unwrap();
        let nh: IpAddr = "192.168.20.1".parse().unwrap();
        new.static_routes.push(StaticRoute { prefix: p("10.2.0.0/16"), next_hop: nh, line: 0 });
        let b = new.bgp.as_mut().unwrap();
        b.pop_go = !b.pop_go;
        b.networks.push(Network { prefix: p("10.2.0.0/16"), label: Some(50000), line: 0 });
        let edits = edits_between(&old, &new).unwrap();
        let mut c = old.clone();
        for e in &edits {
            apply(&mut c, e).unwrap();
        }
        let strip = |c: &Config| {
            let mut c = c.clone();
            c.static_routes.iter_mut().for_each(|r| r.line = 0);
            if let Some(b) = c.bgp.as_mut() {
                b.networks.iter_mut().for_each(|n| n.line = 0);
            }
            c
        };
        assert_eq!(strip(&c), strip(&new));
        // And back again, removals included.
        let back = edits_between(&new, &old).unwrap();
        assert!(back.iter().any(|e| matches!(e, Edit::DelNetwork(_))), "{back:?}");
        for e in &back {
            apply(&mut c, e).unwrap();
        }
        assert_eq!(strip(&c), strip(&old));
        assert_eq!(edits_between(&old, &old), Some(vec![]));
        let mut other = old.clone();
        other.device = "DeviceX".into();
        assert_eq!(edits_between(&old, &other), None);
    }

    /// Peers and the router ID travel as edits too: added, changed, removed.
    #[test]
    fn edits_between_carry_peers() {
        let old = seed();
        let mut new = old.clone();
        let a: Ipv4Addr = "198.18.0.1".parse().unwrap();
        let b = new.bgp.as_mut().unwrap();
        b.router_id = Some("192.0.2.3".parse().unwrap());
        b.peers.push(Peer {
            address: a,
            asn: 200,
            source: None,
            families: None,
            route_limit: None,
            password: None,
            ttl_hops: None,
            line: 0,
        });
        let strip = |c: &Config| {
            let mut c = c.clone();
            if let Some(b) = c.bgp.as_mut() {
                b.peers.iter_mut().for_each(|p| p.line = 0);
            }
            c
        };
        let mut c = old.clone();
        for e in edits_between(&old, &new).unwrap() {
            apply(&mut c, &e).unwrap();
        }
        assert_eq!(strip(&c), strip(&new));
        // VRP: 6PE on for the peer starts from its defaults (IPv4 labeled unicast).
        apply(&mut c, &Edit::PeerFamily { address: a, family: Family::Ipv6LabeledUnicast, on: true }).unwrap();
        let fams = c.bgp.as_ref().unwrap().peers[0].families.unwrap();
        assert!(fams.contains(Family::Ipv4LabeledUnicast) && fams.contains(Family::Ipv6LabeledUnicast));
        assert_eq!(apply(&mut c, &Edit::PeerAs { address: a, asn: 200, line: 9 }), Ok(false));
        assert_eq!(apply(&mut c, &Edit::PeerAs { address: a, asn: 300, line: 9 }), Ok(true));
        let back = edits_between(&c, &old).unwrap();
        assert!(back.contains(&Edit::DelPeer(a)) && back.contains(&Edit::RouterId(None)), "{back:?}");
        for e in &back {
            apply(&mut c, e).unwrap();
        }
        assert_eq!(strip(&c), strip(&old));
        assert_eq!(apply(&mut c, &Edit::DelPeer(a)), Err(EditError::NoSuchPeer(a)));
        let e = apply(&mut c, &Edit::PeerFamily { address: a, family: Family::Ipv4LabeledUnicast, on: true });
        assert!(e.unwrap_err().to_string().contains("as-number"));
    }
}

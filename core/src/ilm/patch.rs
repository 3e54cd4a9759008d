//! Incremental commits: [`patch`] turns a small [`Delta`] into a new snapshot without a
//! full build. It shares the ILM, FIB and LSP table with the old snapshot and copies
//! only the chunks (ILM), shards (FIB) and chunks (LSP rows) whose entries change.
//! `patch` gives the same tables as `build` on the new config (tested by
//! `incremental_commits_equal_full_builds` in the control plane); when it cannot
//! guarantee that cheaply (label mode changes, per-nexthop next-hop moves, deleting a
//! label the dynamic allocator skipped, bulk edits) it declines and the caller builds
//! in full.
//!
//! Control plane only: allocates freely, never runs on a worker.

use super::build::{af_of, alloc_label, entry_for, fib_get, fib_insert, fib_remove, BuildIndex};
use super::lsp::Lsp;
use super::table::IlmOp;
use super::table::{Ilm, IlmEntry};
use super::{Fib, Snapshot};
use crate::config::edit::Edit;
use crate::config::{Config, LabelMode, Network, Prefix, TtlMode};
use std::net::IpAddr;
use std::sync::Arc;

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

/// What a list of applied edits means to [`patch`].
impl Delta {
    pub fn of_edits<'a>(edits: impl IntoIterator<Item = &'a Edit>) -> Delta {
        let mut d = Delta::default();
        for e in edits {
            match e {
                Edit::CreateBgp(_) | Edit::LabelMode(_) => d.rebuild = true,
                Edit::PopGo(_) | Edit::PopGoV6(_) => {} // patch compares the final settings
                Edit::AddNetwork(n) => d.networks_added.push(n.clone()),
                Edit::DelNetwork(p) => d.networks_removed.push(*p),
                Edit::AddRoute(r) => d.routes.push(r.prefix),
                Edit::DelRoute(p, _) => d.routes.push(*p),
                // The BGP speaker's settings: nothing in the forwarding tables.
                Edit::RouterId(_)
                | Edit::PeerAs { .. }
                | Edit::PeerFamily { .. }
                | Edit::DelPeer(_)
                | Edit::PeerRouteLimit { .. }
                | Edit::PeerPassword { .. }
                | Edit::PeerTtlHops { .. }
                | Edit::SetPeer(_) => {}
                // VPN instances, bindings, MPLS: labels and tables move.
                Edit::Vpn(_) => d.rebuild = true,
            }
        }
        d
    }
}

/// Largest delta (routes + networks) `patch` takes on; each item may scan the config or
/// the LSP table once, so past this a full build is about as cheap.
pub const PATCH_MAX_ITEMS: usize = 64;

/// The parts of the new config [`patch`] reads: a [`Config`], or the control plane's
/// indexed running config (which answers `next_hops` without scanning every route).
pub trait PatchSource {
    /// TTL mode is pipe.
    fn pipe(&self) -> bool;
    /// (label mode, label base, pop-go, 6PE pop-go) of the BGP instance, if any.
    fn bgp_params(&self) -> Option<(LabelMode, u32, bool, bool)>;
    /// Next hops of the static routes for `p`, in config order.
    fn next_hops(&self, p: Prefix) -> Vec<IpAddr>;
    /// (label mode, pop-go, import-route static) of the networks of VPN instance `vrf`
    /// (not 0) in family `v4` (true) or IPv6.
    fn vrf_params(&self, vrf: u16, v4: bool) -> (LabelMode, bool, bool);
}

impl PatchSource for Config {
    fn pipe(&self) -> bool {
        self.ttl_mode == TtlMode::Pipe
    }
    fn bgp_params(&self) -> Option<(LabelMode, u32, bool, bool)> {
        self.bgp.as_ref().map(|b| (b.label_mode, b.label_base, b.pop_go, b.pop_go_v6()))
    }
    fn next_hops(&self, p: Prefix) -> Vec<IpAddr> {
        self.static_routes.iter().filter(|r| r.prefix == p).map(|r| r.next_hop).collect()
    }
    fn vrf_params(&self, vrf: u16, v4: bool) -> (LabelMode, bool, bool) {
        vrf_params_of(self, vrf, v4)
    }
}

/// [`PatchSource::vrf_params`] of a config head (the networks are not read).
pub fn vrf_params_of(cfg: &Config, vrf: u16, v4: bool) -> (LabelMode, bool, bool) {
    let (mode, pop_go) = cfg.label_params(vrf, v4);
    let import = cfg.bgp.as_ref().and_then(|b| b.vpn_family(vrf, v4)).is_some_and(|f| f.import_static);
    (mode, pop_go, import)
}

/// Applies `delta` to `old` (built from the config before the change, with `idx` its
/// index) giving the tables of `cfg` (the config after the change), without a full
/// build. Returns None when the delta is outside what it patches exactly; `idx` is then
/// stale and the caller must use [`build_indexed`](super::build_indexed). On success `idx` describes the new
/// snapshot.
///
/// Cost: a copy of the ILM's, the FIB's and the LSP table's pointer arrays (2 KiB, 8
/// bytes per FIB shard and per 2048 networks), plus per changed route one ILM chunk
/// (16 KiB), one FIB shard (at most 4096 routes) and one LSP chunk (48 KiB). A pop-go
/// toggle rewrites every non-empty ILM chunk (at most 256 x 16 KiB, whatever the number
/// of routes) and nothing else.
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
    // Copy-on-write: the ILM, FIB and LSP table are cloned as pointer arrays; an ILM
    // chunk (16 KiB), FIB shard or LSP chunk is copied only when one of its entries
    // changes.
    let mut ilm: Option<Ilm> = None;
    let mut fib: Option<Fib> = None;
    let (pop_go, pop_go_v6) = bgp.map_or((false, false), |b| (b.2, b.3));
    // The VPN instances' FIBs that change, by VRF id.
    let mut vrf_fibs: Vec<(u16, Fib)> = Vec::new();
    // A VPN network's label settings; the public table's are the BGP instance's.
    let params = |p: Prefix| -> (LabelMode, bool, bool) {
        if p.vrf == 0 {
            (mode, if p.is_v4() { pop_go } else { pop_go_v6 }, false)
        } else {
            cfg.vrf_params(p.vrf, p.is_v4())
        }
    };
    // Shared until a network is added or removed (a route change leaves it alone).
    let mut lsps = Arc::clone(&old.lsps);
    macro_rules! ilm {
        () => {
            ilm.get_or_insert_with(|| old.ilm.clone_table())
        };
    }

    // 1. pop-go toggled (the BGP view's for IPv4, 6PE's for IPv6): every public label's
    //    entry of that family changes operation. POP entries keep their route's
    //    adjacency, so this flips the operation bits of every entry.
    if (pop_go, pop_go_v6) != (idx.pop_go, idx.pop_go_v6) {
        (idx.pop_go, idx.pop_go_v6) = (pop_go, pop_go_v6);
        if mode != LabelMode::PerInstance && !lsps.is_empty() {
            ilm!().map_entries(|e| {
                if e.vrf() != 0 || e.op() == Some(IlmOp::Transport) {
                    e
                } else {
                    e.with_pop_go(if e.af() == crate::ilm::Af::V6 { pop_go_v6 } else { pop_go })
                }
            });
        }
    }

    // 2. Removed networks (per-route only: other modes share labels).
    for p in &delta.networks_removed {
        if params(*p).0 != LabelMode::PerRoute || params(*p).2 {
            return None;
        }
        let chunk = idx.lsp_chunk.remove(p)?;
        let at = lsps.position_in(chunk, *p)?;
        let label = lsps.at(at).in_label;
        let alloc_range = idx.label_base..idx.next_dynamic;
        if idx.static_labels.contains(label) {
            // Freeing a static label the allocator already skipped would move every
            // later dynamic label in a full build.
            if alloc_range.contains(&label) {
                return None;
            }
            idx.static_labels.remove(label);
        } else if label + 1 == idx.next_dynamic {
            // The last dynamic label: the allocator steps back.
            idx.next_dynamic = label;
        } else {
            return None;
        }
        idx.used.remove(label);
        ilm!().set(label, IlmEntry::EMPTY);
        Arc::make_mut(&mut lsps).remove(at);
    }

    // 3. Routes: the installed route of a prefix is the first of the config's routes
    //    for it whose next hop resolves (as in `build_indexed`).
    let mut touched: Vec<Prefix> = delta.routes.clone();
    touched.sort_unstable();
    touched.dedup();
    for p in touched {
        let (p_mode, p_pop_go, import) = params(p);
        if import {
            return None; // the instance's networks follow its routes
        }
        let now = cfg.next_hops(p).into_iter().find_map(|nh| idx.adj_of.get(&(p.vrf, nh)).copied());
        let f = if p.vrf == 0 {
            if fib_get(&old.fib, p) == now {
                continue;
            }
            fib.get_or_insert_with(|| (*old.fib).clone())
        } else {
            let old_f = old.fib_of(p.vrf)?;
            let at = match vrf_fibs.iter().position(|(v, _)| *v == p.vrf) {
                Some(at) => at,
                None => {
                    if fib_get(old_f, p) == now {
                        continue;
                    }
                    vrf_fibs.push((p.vrf, old_f.clone()));
                    vrf_fibs.len() - 1
                }
            };
            &mut vrf_fibs[at].1
        };
        match now {
            Some(adj) => fib_insert(f, p, adj),
            None => fib_remove(f, p),
        }
        let Some(&chunk) = idx.lsp_chunk.get(&p) else { continue };
        // A network's route changed next hop.
        let adj = now?;
        if p_mode == LabelMode::PerNexthop {
            return None; // its label is the next hop's: labels move
        }
        if p_mode == LabelMode::PerRoute {
            let label = lsps.at(lsps.position_in(chunk, p)?).in_label;
            ilm!().set(label, entry_for(p_mode, p_pop_go, af_of(p), adj, pipe).in_vrf(p.vrf));
        }
    }

    // 4. Added networks, appended in order.
    for n in &delta.networks_added {
        let (n_mode, n_pop_go, import) = params(n.prefix);
        if n_mode != LabelMode::PerRoute || import || idx.lsp_chunk.contains_key(&n.prefix) {
            return None;
        }
        let vrf = n.prefix.vrf;
        let adj = match (vrf, &fib, vrf_fibs.iter().find(|(v, _)| *v == vrf)) {
            (0, Some(f), _) | (_, _, Some((_, f))) => fib_get(f, n.prefix),
            _ => fib_get(old.fib_of(vrf)?, n.prefix),
        }?;
        let label = match n.label {
            Some(l) => {
                if idx.used.contains(l) || (idx.label_base..idx.next_dynamic).contains(&l) {
                    return None; // a full build would skip it and move dynamic labels
                }
                idx.static_labels.insert(l);
                l
            }
            None => alloc_label(&mut idx.next_dynamic, &idx.static_labels, idx.label_base).ok()?,
        };
        idx.used.insert(label);
        ilm!().set(label, entry_for(n_mode, n_pop_go, af_of(n.prefix), adj, pipe).in_vrf(vrf));
        idx.lsp_chunk.insert(n.prefix, Arc::make_mut(&mut lsps).push(Lsp { fec: n.prefix, in_label: label }));
    }

    Some(Snapshot {
        ilm: ilm.unwrap_or_else(|| old.ilm.clone_table()),
        adjacencies: Arc::clone(&old.adjacencies),
        next_hops: Arc::clone(&old.next_hops),
        fib: fib.map_or_else(|| Arc::clone(&old.fib), Arc::new),
        vrf_fibs: if vrf_fibs.is_empty() {
            Arc::clone(&old.vrf_fibs)
        } else {
            let mut all: Vec<Arc<Fib>> = old.vrf_fibs.to_vec();
            for (v, f) in vrf_fibs {
                all[v as usize - 1] = Arc::new(f);
            }
            Arc::new(all)
        },
        ports: old.ports,
        lsps,
        pipe,
        generation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ilm::build::tests::seed;
    use crate::ilm::build::{build, build_indexed, first_difference};
    use crate::ilm::BuildError;

    /// Compares everything the data path and `display` read.
    fn assert_same_tables(a: &Snapshot, b: &Snapshot, cfg: &Config) {
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
        assert_eq!(s2.lsp_row(1).next_hop, Some("192.168.20.1".parse().unwrap()));

        // Removing the /24's only route while its network stays is declined (a full
        // build reports the error).
        let mut c3 = c2.clone();
        c3.static_routes.retain(|r| r.prefix != Prefix::parse("10.1.1.0/24").unwrap());
        let d = Delta { routes: vec![Prefix::parse("10.1.1.0/24").unwrap()], ..Default::default() };
        assert!(patch(&s2, &mut idx, &c3, &d, 3).is_none());
        assert!(matches!(build(&c3, 3), Err(BuildError::NoRoute { .. })));
    }
}

//! Builds a complete [`Snapshot`] from a checked [`Config`]: adjacencies from the
//! neighbours, the FIB from the static routes, and one ILM entry per local BGP label.
//!
//! Control plane only: allocates freely, never runs on a worker.

use super::table::{Adjacency, Af, Ilm, IlmEntry};
use super::{Fib, Snapshot};
use crate::config::{Config, LabelMode, Prefix, TtlMode};
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LspRow {
    pub fec: Prefix,
    pub in_label: u32,
    /// Output port index (POPGO), or None when the FIB decides (POP).
    pub out_port: Option<usize>,
    /// Next hop of the route the label was allocated for.
    pub next_hop: Option<IpAddr>,
    pub op: LabelOp,
}

/// Builds tables from `cfg`. `generation` is stored in the snapshot.
pub fn build(cfg: &Config, generation: u64) -> Result<Snapshot, BuildError> {
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
    let mut installed: HashMap<Prefix, (u16, IpAddr)> = HashMap::new();
    for r in &cfg.static_routes {
        let Some(&adj) = adj_of.get(&r.next_hop) else { continue };
        if installed.contains_key(&r.prefix) {
            continue;
        }
        installed.insert(r.prefix, (adj, r.next_hop));
        match r.prefix.addr {
            IpAddr::V4(a) => fib.insert_v4(u32::from(a), r.prefix.len, adj),
            IpAddr::V6(a) => fib.insert_v6(u128::from(a), r.prefix.len, adj),
        }
    }

    let mut ilm = Ilm::new();
    let mut lsps = Vec::new();
    if let Some(bgp) = &cfg.bgp {
        let static_labels: BTreeSet<u32> = bgp.networks.iter().filter_map(|n| n.label).collect();
        let mut next = bgp.label_base;
        let mut alloc = || -> Result<u32, BuildError> {
            while static_labels.contains(&next) {
                next += 1;
            }
            if next > crate::wire::mpls::LABEL_MAX {
                return Err(BuildError::LabelsExhausted { base: bgp.label_base });
            }
            next += 1;
            Ok(next - 1)
        };
        let mut used: HashMap<u32, usize> = HashMap::new();
        let mut per_nh: HashMap<IpAddr, u32> = HashMap::new();
        let mut instance_label = None;
        for n in &bgp.networks {
            let &(adj, nh) = installed.get(&n.prefix).ok_or(BuildError::NoRoute { prefix: n.prefix, line: n.line })?;
            let af = if n.prefix.is_v4() { Af::V4 } else { Af::V6 };
            let (label, entry, op) = match bgp.label_mode {
                LabelMode::PerRoute => {
                    let label = match n.label {
                        Some(l) => l,
                        None => alloc()?,
                    };
                    if let Some(_first) = used.insert(label, n.line) {
                        return Err(BuildError::DuplicateLabel { label, line: n.line });
                    }
                    if bgp.pop_go {
                        (label, IlmEntry::pop_go(af, adj, pipe), LabelOp::PopGo)
                    } else {
                        (label, IlmEntry::pop(af, pipe), LabelOp::Pop)
                    }
                }
                LabelMode::PerNexthop => {
                    let label = match per_nh.get(&nh) {
                        Some(l) => *l,
                        None => {
                            let l = alloc()?;
                            per_nh.insert(nh, l);
                            l
                        }
                    };
                    if bgp.pop_go {
                        (label, IlmEntry::pop_go(af, adj, pipe), LabelOp::PopGo)
                    } else {
                        (label, IlmEntry::pop(af, pipe), LabelOp::Pop)
                    }
                }
                LabelMode::PerInstance => {
                    let label = match instance_label {
                        Some(l) => l,
                        None => {
                            let l = alloc()?;
                            instance_label = Some(l);
                            l
                        }
                    };
                    (label, IlmEntry::pop(Af::Any, pipe), LabelOp::Pop)
                }
            };
            ilm.set(label, entry);
            let out_port = (op == LabelOp::PopGo).then_some(adjacencies[adj as usize].port as usize);
            lsps.push(LspRow { fec: n.prefix, in_label: label, out_port, next_hop: Some(nh), op });
        }
    }

    Ok(Snapshot { ilm, adjacencies, fib, ports: cfg.ports.len(), lsps, pipe, generation })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ilm::IlmOp;

    fn seed() -> Config {
        Config::parse(include_str!("../../pcaps/seed.toml")).unwrap()
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

//! Displays of the L3VPN egress: `display ip vpn-instance [verbose]`, `display mpls
//! static-lsp`, and the VPN parts of `display current-configuration` (`ip
//! vpn-instance`, `mpls lsr-id`/`mpls`, `ip binding vpn-instance`, the BGP VPN families,
//! `ip route-static vpn-instance`, `static-lsp egress`).
//!
//! The layouts follow VRP's as far as its documentation shows them; columns popgo has
//! no value for (create date, up time, tunnel policy) are left out rather than
//! invented.

use crate::config::{Config, LabelMode, Network, VpnAf};
use std::fmt;

/// `display ip vpn-instance [verbose]`.
pub fn write_vpn_instance(s: &mut impl fmt::Write, cfg: &Config, verbose: bool) {
    let v = &cfg.vpn_instances;
    let _ = writeln!(s, " Total VPN-Instances configured      : {}", v.len());
    let _ = writeln!(s, " Total IPv4 VPN-Instances configured : {}", v.iter().filter(|i| i.v4.is_some()).count());
    let _ = writeln!(s, " Total IPv6 VPN-Instances configured : {}", v.iter().filter(|i| i.v6.is_some()).count());
    let _ = writeln!(s);
    if !verbose {
        let _ = writeln!(s, "  {:<31} {:<21} Address-family", "VPN-Instance Name", "RD");
        for i in v {
            let fams = [("IPv4", &i.v4), ("IPv6", &i.v6)];
            let mut any = false;
            for (name, af) in fams {
                if let Some(af) = af {
                    let rd = af.rd.map_or("-".to_string(), |r| r.to_string());
                    let _ = writeln!(s, "  {:<31} {:<21} {name}", i.name, rd);
                    any = true;
                }
            }
            if !any {
                let _ = writeln!(s, "  {:<31} {:<21} -", i.name, "-");
            }
        }
        return;
    }
    for i in v {
        let _ = writeln!(s, " VPN-Instance Name and ID : {}, {}", i.name, i.id);
        let ports: Vec<&str> = cfg.ports.iter().filter(|p| p.vrf == i.id).map(|p| p.name.as_str()).collect();
        let _ = writeln!(s, "  Interfaces : {}", if ports.is_empty() { "-".into() } else { ports.join(", ") });
        for (name, af) in [("ipv4", &i.v4), ("ipv6", &i.v6)] {
            let Some(af) = af else { continue };
            let _ = writeln!(s, " Address family {name}");
            let _ = writeln!(s, "  Route Distinguisher : {}", af.rd.map_or("-".into(), |r| r.to_string()));
            let list = |t: &[crate::config::RouteTarget]| t.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(" ");
            let _ = writeln!(s, "  Export VPN Targets :  {}", list(&af.export));
            let _ = writeln!(s, "  Import VPN Targets :  {}", list(&af.import));
            let _ = writeln!(s, "  Label Policy : {}", label_policy(af));
            let routes =
                cfg.static_routes.iter().filter(|r| r.prefix.vrf == i.id && r.prefix.is_v4() == (name == "ipv4"));
            let _ = writeln!(s, "  Static Routes : {}", routes.count());
        }
        let _ = writeln!(s);
    }
}

/// "label per route", "label per nexthop" or "label per instance", with ", pop-go".
fn label_policy(af: &VpnAf) -> String {
    let mode = match af.label_mode {
        LabelMode::PerRoute => "label per route",
        LabelMode::PerNexthop => "label per nexthop",
        LabelMode::PerInstance => "label per instance",
    };
    if af.pop_go && af.label_mode != LabelMode::PerInstance {
        format!("{mode}, pop-go")
    } else {
        mode.to_string()
    }
}

/// `display mpls static-lsp`: this device's static egress LSPs.
pub fn write_static_lsp(s: &mut impl fmt::Write, cfg: &Config) {
    let lsps = cfg.mpls.as_ref().map_or(&[][..], |m| &m.static_lsps[..]);
    let _ = writeln!(s, "TOTAL                : {} STATIC LSP(S)", lsps.len());
    let _ = writeln!(s, "UP                   : {} STATIC LSP(S)", lsps.len());
    let _ = writeln!(s, "DOWN                 : 0 STATIC LSP(S)");
    let _ = writeln!(s, "{:<20} {:<18} {:<12} {:<27} Status", "Name", "FEC", "I/O Label", "I/O If");
    for l in lsps {
        let label = format!("{}/NULL", l.in_label);
        let io = format!("{}/-", l.in_port.as_deref().unwrap_or("-"));
        let _ = writeln!(s, "{:<20} {:<18} {:<12} {:<27} Up", l.name, "-/-", label, io);
    }
}

/// The VPN instances and the MPLS instance, before the interfaces in `display
/// current-configuration`.
pub(super) fn write_head(s: &mut impl fmt::Write, cfg: &Config) {
    for i in &cfg.vpn_instances {
        let _ = writeln!(s, "#\nip vpn-instance {}", i.name);
        for (view, af) in [("ipv4-family", &i.v4), ("ipv6-family", &i.v6)] {
            let Some(af) = af else { continue };
            let _ = writeln!(s, " {view}");
            if let Some(rd) = af.rd {
                let _ = writeln!(s, "  route-distinguisher {rd}");
            }
            match (af.label_mode, af.pop_go) {
                (LabelMode::PerRoute, false) => {}
                (LabelMode::PerInstance, _) => {
                    let _ = writeln!(s, "  apply-label per-instance");
                }
                (m, pop_go) => {
                    let _ = writeln!(s, "  apply-label {}{}", m.name(), if pop_go { " pop-go" } else { "" });
                }
            }
            for t in &af.export {
                let _ = writeln!(s, "  vpn-target {t} export-extcommunity");
            }
            for t in &af.import {
                let _ = writeln!(s, "  vpn-target {t} import-extcommunity");
            }
        }
    }
    if let Some(m) = &cfg.mpls {
        let _ = writeln!(s, "#\nmpls lsr-id {}\n#\nmpls", m.lsr_id);
    }
}

/// The BGP VPN families with their networks (`ipv4-family vpn-instance NAME`), at the
/// end of the `bgp` block.
pub(super) fn write_bgp_families(s: &mut impl fmt::Write, cfg: &Config, nets: &[Network]) {
    let Some(b) = &cfg.bgp else { return };
    for f in &b.vpn_families {
        let view = if f.v4 { "ipv4-family" } else { "ipv6-family" };
        let _ = writeln!(s, " #\n {view} vpn-instance {}", cfg.vrf_name(f.vrf));
        if f.import_static {
            let _ = writeln!(s, "  import-route static");
        }
        for n in nets.iter().filter(|n| n.prefix.vrf == f.vrf && n.prefix.is_v4() == f.v4) {
            let _ = writeln!(s, "  network {} {}", n.prefix.addr, n.prefix.len);
        }
    }
}

/// The static egress LSPs, after the static routes.
pub(super) fn write_tail(s: &mut impl fmt::Write, cfg: &Config) {
    for l in cfg.mpls.iter().flat_map(|m| &m.static_lsps) {
        let _ = write!(s, "#\nstatic-lsp egress {}", l.name);
        if let Some(p) = &l.in_port {
            let _ = write!(s, " incoming-interface {p}");
        }
        let _ = writeln!(s, " in-label {}", l.in_label);
    }
}

//! `display mpls lsp protocol bgp [verbose]` and `display current-configuration`:
//! the seed's verification commands, rendered from the built tables and the config.

use crate::cmd::{build, load_config, usage, Failure};
use crate::config::{Config, Family, LabelMode, TtlMode};
use crate::ilm::Snapshot;
use crate::wire::ethernet::format_mac;
use clap::Args;
use std::fmt::Write;
use std::path::PathBuf;

const RULE: &str = "-------------------------------------------------------------------------------";

/// The BGP LSP table. Label Operation is POPGO or POP.
pub fn mpls_lsp_bgp(cfg: &Config, snap: &Snapshot, verbose: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{RULE}\n                 LSP Information: BGP  LSP\n{RULE}");
    let port = |p: Option<usize>| p.and_then(|i| cfg.ports.get(i)).map_or("-".to_string(), |p| p.name.clone());
    if !verbose {
        let _ =
            writeln!(s, "{:<20} {:<16} {:<16} {:<16} Label Operation", "FEC", "In/Out Label", "In/Out IF", "Next Hop");
        for r in &snap.lsps {
            let _ = writeln!(
                s,
                "{:<20} {:<16} {:<16} {:<16} {}",
                r.fec.to_string(),
                format!("{}/NULL", r.in_label),
                format!("-/{}", port(r.out_port)),
                r.next_hop.map_or("-".into(), |n| n.to_string()),
                r.op.name()
            );
        }
    } else {
        for (i, r) in snap.lsps.iter().enumerate() {
            let _ = writeln!(s, " No                  :  {}", i + 1);
            let _ = writeln!(s, " VrfIndex            :  ");
            let _ = writeln!(s, " Fec                 :  {}", r.fec);
            let _ = writeln!(s, " Nexthop             :  {}", r.next_hop.map_or("-".into(), |n| n.to_string()));
            let _ = writeln!(s, " In-Label            :  {}", r.in_label);
            let _ = writeln!(s, " Out-Label           :  NULL");
            let _ = writeln!(s, " In-Interface        :  ----------");
            let _ = writeln!(s, " OutInterface        :  {}", port(r.out_port));
            let _ = writeln!(s, " LspIndex            :  {}", i);
            let _ = writeln!(s, " Label Operation     :  {}", r.op.name());
            let _ = writeln!(s, " Mpls-Mtu            :  ------\n");
        }
    }
    let _ = writeln!(s, "{RULE}\nTotal: {} LSP(s)", snap.lsps.len());
    s
}

/// The configuration in VRP syntax (what `display current-configuration` prints).
pub fn current_configuration(cfg: &Config) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "#\n sysname {}", cfg.device);
    if cfg.ttl_mode == TtlMode::Pipe {
        let _ = writeln!(s, "#\n mpls\n  undo ttl propagate");
    }
    for p in &cfg.ports {
        let _ = writeln!(s, "#\ninterface {}", p.name);
        if let Some(i) = &p.iface {
            let _ = writeln!(s, " description os-interface {i}");
        }
        let _ = writeln!(s, " mac-address {}", format_mac(&p.mac));
    }
    for n in &cfg.neighbors {
        let kw = if n.ip.is_ipv4() { "arp static" } else { "ipv6 neighbor" };
        let _ = writeln!(s, "#\n{kw} {} {} interface {}", n.ip, format_mac(&n.mac), n.port);
    }
    if let Some(b) = &cfg.bgp {
        let _ = writeln!(s, "#\nbgp {}", b.asn);
        if let Some(id) = b.router_id {
            let _ = writeln!(s, " router-id {id}");
        }
        for p in &b.peers {
            let _ = writeln!(s, " peer {} as-number {}", p.address, p.asn);
            if let Some(src) = p.source {
                let _ = writeln!(s, " # peer {} source {src} (config file only)", p.address);
            }
        }
        match (b.label_mode, b.pop_go) {
            (LabelMode::PerRoute, true) => {
                let _ = writeln!(s, " apply-label per-route pop-go");
            }
            (LabelMode::PerRoute, false) => {}
            (m, true) => {
                let _ = writeln!(s, " apply-label {}\n apply-label per-route pop-go", m.name());
            }
            (m, false) => {
                let _ = writeln!(s, " apply-label {}", m.name());
            }
        }
        for n in &b.networks {
            match n.label {
                Some(l) => {
                    let _ = writeln!(s, " network {} {} label {l}", n.prefix.addr, n.prefix.len);
                }
                None => {
                    let _ = writeln!(s, " network {} {}", n.prefix.addr, n.prefix.len);
                }
            }
        }
        // Peers with explicit families; the others run the defaults (IPv4 labeled
        // unicast, plus 6PE when there are IPv6 networks).
        for (view, fam) in
            [("ipv4-family unicast", Family::Ipv4LabeledUnicast), ("ipv6-family unicast", Family::Ipv6LabeledUnicast)]
        {
            let explicit: Vec<_> = b.peers.iter().filter_map(|p| Some((p.address, p.families?))).collect();
            if explicit.is_empty() {
                continue;
            }
            let _ = writeln!(s, " #\n {view}");
            for (a, f) in explicit {
                if f.contains(fam) {
                    let _ = writeln!(s, "  peer {a} enable\n  peer {a} label-route-capability");
                } else if fam == Family::Ipv4LabeledUnicast {
                    let _ = writeln!(s, "  undo peer {a} enable");
                }
            }
        }
    }
    let _ = writeln!(s, "#");
    for r in &cfg.static_routes {
        let kw = if r.prefix.is_v4() { "ip route-static" } else { "ipv6 route-static" };
        let _ = writeln!(s, "{kw} {} {} {}", r.prefix.addr, r.prefix.len, r.next_hop);
    }
    let _ = writeln!(s, "#\nreturn");
    s
}

/// `popgo display` arguments.
#[derive(Args, Debug)]
pub struct DisplayArgs {
    /// The device configuration (TOML).
    #[arg(long)]
    pub config: PathBuf,
    /// The display command words, e.g. `mpls lsp protocol bgp`.
    #[arg(required = true, num_args = 1..)]
    pub words: Vec<String>,
}

/// Entry point of `popgo display`.
pub fn main(a: DisplayArgs) -> Result<(), Failure> {
    let cfg = load_config(&a.config)?;
    let w: Vec<&str> = a.words.iter().map(String::as_str).collect();
    match w.as_slice() {
        ["mpls", "lsp", "protocol", "bgp"] => print!("{}", mpls_lsp_bgp(&cfg, &build(&cfg)?, false)),
        ["mpls", "lsp", "protocol", "bgp", "verbose"] => print!("{}", mpls_lsp_bgp(&cfg, &build(&cfg)?, true)),
        ["current-configuration"] => print!("{}", current_configuration(&cfg)),
        _ => {
            return Err(usage(anyhow::anyhow!(
                "unknown display command {:?}; known: `mpls lsp protocol bgp [verbose]`, `current-configuration`",
                a.words.join(" ")
            )))
        }
    }
    Ok(())
}

/// `popgo check` arguments.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The device configuration (TOML) to load and build tables from.
    #[arg(long)]
    pub config: PathBuf,
}

/// Entry point of `popgo check`: loads the config, builds the tables, prints a summary.
pub fn check_main(a: CheckArgs) -> Result<(), Failure> {
    let cfg = load_config(&a.config)?;
    let snap = build(&cfg)?;
    println!(
        "{}: ok: {} ports, {} neighbors, {} static routes, {} BGP LSPs, {} ILM entries",
        a.config.display(),
        cfg.ports.len(),
        cfg.neighbors.len(),
        cfg.static_routes.len(),
        snap.lsps.len(),
        snap.ilm.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_table_shows_popgo_then_pop() {
        let mut cfg = Config::parse(include_str!("../pcaps/seed.toml")).unwrap();
        let t = mpls_lsp_bgp(&cfg, &crate::ilm::build(&cfg, 0).unwrap(), false);
        let row = t.lines().find(|l| l.starts_with("10.1.1.0/24")).expect(&t);
        assert!(row.contains("48122/NULL") && row.contains("-/to-A") && row.ends_with("POPGO"), "{row}");
        assert!(t.contains("Label Operation"));
        cfg.bgp.as_mut().unwrap().pop_go = false;
        let t = mpls_lsp_bgp(&cfg, &crate::ilm::build(&cfg, 0).unwrap(), true);
        assert!(t.contains(" Label Operation     :  POP\n"), "{t}");
        assert!(!t.contains("POPGO"));
        let c = current_configuration(&cfg);
        assert!(c.contains("bgp 100\n network 10.1.1.0 24 label 48122\n"), "{c}");
        assert!(c.contains("ip route-static 10.1.1.0 30 192.168.20.1"));
    }
}

//! The L3VPN egress's VRP commands on a control plane: the configuration guide's
//! procedure inside a VPN instance, an instance built from nothing, static egress LSPs,
//! and the errors of bad input.

use super::tests::{err, ok, plane};
use super::*;
use crate::ilm::IlmOp;
use crate::stats::DropReason;

const L3VPN: &str = include_str!("../../pcaps/l3vpn.toml");

/// Where a frame with `labels` over 10.1.1.`host` goes in the published tables.
fn verdict(p: &ControlPlane, labels: &[(u32, u8)], host: u8) -> Result<u16, DropReason> {
    let ip = crate::traffic::frames::ipv4_udp("172.16.0.1".parse().unwrap(), [10, 1, 1, host].into(), 64, 46);
    let f = crate::traffic::frames::seed_mpls(labels, &ip);
    crate::dataplane::burst::classify_frame(p.current(), &f, &mut Default::default())
}

#[test]
fn the_procedure_inside_one_instance_changes_only_that_instance() {
    let cfg = Config::parse(&L3VPN.replace("pop_go = true", "pop_go = false")).unwrap();
    let mut p = plane(cfg);
    let mut s = p.new_session();
    // Without pop-go each instance looks 10.1.1.1 up in its own table: its /30, CE B.
    assert_eq!(verdict(&p, &[(18, 64), (16, 255)], 1), Ok(1), "vpna -> to-b1");
    assert_eq!(verdict(&p, &[(18, 64), (17, 255)], 1), Ok(3), "vpnb -> to-b2");
    ok(&mut p, &mut s, "system-view");
    ok(&mut p, &mut s, "ip vpn-instance vpna");
    assert_eq!(p.prompt(&s), "[DeviceC-vpn-instance-vpna]");
    ok(&mut p, &mut s, "ipv4-family");
    assert_eq!(p.prompt(&s), "[DeviceC-vpn-instance-vpna-af-ipv4]");
    ok(&mut p, &mut s, "apply-label per-route pop-go");
    let c = ok(&mut p, &mut s, "commit");
    assert!(c.contains("commit ok"), "{c}");
    assert_eq!(verdict(&p, &[(18, 64), (16, 255)], 1), Ok(0), "vpna POPGO -> to-a1");
    assert_eq!(verdict(&p, &[(16, 64)], 2), Ok(0));
    assert_eq!(verdict(&p, &[(18, 64), (17, 255)], 1), Ok(3), "vpnb unchanged");
    let t = ok(&mut p, &mut s, "display mpls lsp protocol bgp");
    let rows: Vec<&str> = t.lines().filter(|l| l.starts_with("10.1.1.0/24")).collect();
    assert!(rows[0].contains("POPGO") && rows[0].ends_with("vpna"), "{t}");
    assert!(rows[1].contains(" POP ") && rows[1].ends_with("vpnb"), "{t}");
    let v = ok(&mut p, &mut s, "display ip vpn-instance verbose");
    assert!(v.contains("Label Policy : label per route, pop-go") && v.contains("Interfaces : to-a1, to-b1"), "{v}");
    let c = ok(&mut p, &mut s, "display current-configuration");
    assert!(
        c.contains("ip vpn-instance vpna\n ipv4-family\n  route-distinguisher 100:1\n  apply-label per-route pop-go\n"),
        "{c}"
    );
    assert!(c.contains("ip route-static vpn-instance vpnb 10.1.1.0 30 192.168.20.1\n"), "{c}");
    assert!(c.contains("static-lsp egress from-ingress in-label 18\n"), "{c}");
    // And back.
    ok(&mut p, &mut s, "undo apply-label per-route pop-go");
    ok(&mut p, &mut s, "commit");
    assert_eq!(verdict(&p, &[(16, 64)], 1), Ok(1), "per-instance: a lookup in vpna's table, its /30");
    assert_eq!(verdict(&p, &[(16, 64)], 9), Ok(0), "per-instance: a lookup in vpna's table, its /24");
    assert_eq!((p.current().ilm.lookup(16).op(), p.current().ilm.lookup(16).vrf()), (Some(IlmOp::Pop), 1));
    let t = ok(&mut p, &mut s, "display mpls lsp protocol bgp");
    assert!(t.lines().filter(|l| l.ends_with("vpna")).all(|l| l.contains(" POP ")), "{t}");
    ok(&mut p, &mut s, "quit");
    assert_eq!(p.prompt(&s), "[DeviceC-vpn-instance-vpna]");
    ok(&mut p, &mut s, "quit");
    assert_eq!(p.prompt(&s), "[DeviceC]");
}

#[test]
fn an_instance_from_nothing_and_a_static_lsp() {
    // The seed's public config: add an instance on to-D, with a route, a VPN network
    // and a transport label, all typed.
    let mut p = plane(Config::parse(super::tests::SEED).unwrap());
    let mut s = p.new_session();
    for l in [
        "system-view",
        "ip vpn-instance cust",
        "ipv4-family",
        "route-distinguisher 100:9",
        "vpn-target 100:9 both",
        "apply-label per-route pop-go",
        "quit",
        "quit",
        "interface to-B",
        "ip binding vpn-instance cust",
        "quit",
        "ip route-static vpn-instance cust 10.1.1.0 24 192.168.20.1",
        "mpls lsr-id 3.3.3.3",
        "mpls",
        "quit",
        "static-lsp egress core in-label 20",
        "bgp 100",
        "ipv4-family vpn-instance cust",
        "network 10.1.1.0 24",
    ] {
        ok(&mut p, &mut s, l);
    }
    assert_eq!(p.prompt(&s), "[DeviceC-bgp-cust]");
    let c = ok(&mut p, &mut s, "commit");
    assert!(c.contains("commit ok") && c.contains("full"), "{c}");
    let row = p.current().lsp_rows().find(|r| r.fec.vrf != 0).expect("a VPN LSP");
    assert_eq!(p.current().ilm.lookup(row.in_label).op(), Some(IlmOp::PopGo));
    // to-B now belongs to cust: its neighbor is cust's next hop, not the public /30's.
    assert_eq!(verdict(&p, &[(20, 64), (row.in_label, 64)], 1), Ok(1));
    assert_eq!(verdict(&p, &[(48122, 64)], 1), Ok(0), "the public POPGO label still goes to to-A");
    assert!(ok(&mut p, &mut s, "display mpls static-lsp").contains("core                 -/-                20/NULL"));
}

#[test]
fn bad_vpn_input_is_refused_with_a_reason() {
    let mut p = plane(Config::parse(L3VPN).unwrap());
    let mut s = p.new_session();
    ok(&mut p, &mut s, "system-view");
    let e = err(&mut p, &mut s, "ip route-static vpn-instance nosuch 10.1.1.0 24 192.168.10.1");
    assert!(e.contains("VPN instance nosuch does not exist"), "{e}");
    ok(&mut p, &mut s, "ip vpn-instance vpnc");
    ok(&mut p, &mut s, "ipv4-family");
    let e = err(&mut p, &mut s, "apply-label per-route pop-go");
    assert!(e.contains("configure the route-distinguisher"), "{e}");
    let e = err(&mut p, &mut s, "route-distinguisher 100:1");
    assert!(e.contains("duplicate RD 100:1 (already used by VPN instance vpna)"), "{e}");
    ok(&mut p, &mut s, "route-distinguisher 100:3");
    let e = err(&mut p, &mut s, "route-distinguisher 100:4");
    assert!(e.contains("undo route-distinguisher"), "{e}");
    ok(&mut p, &mut s, "quit");
    ok(&mut p, &mut s, "quit");
    ok(&mut p, &mut s, "interface to-a1");
    let e = err(&mut p, &mut s, "ip binding vpn-instance vpnc");
    assert!(e.contains("bound to another VPN instance"), "{e}");
    ok(&mut p, &mut s, "quit");
    let e = err(&mut p, &mut s, "interface to-nowhere");
    assert!(e.contains("unknown interface"), "{e}");
    let e = err(&mut p, &mut s, "undo ip vpn-instance vpna");
    assert!(e.contains("bound to an interface"), "{e}");
    let e = err(&mut p, &mut s, "static-lsp egress x in-label 18");
    assert!(e.contains("label 18 is already the in-label of static LSP from-ingress"), "{e}");
    // The candidate is still good: commit it (vpnc with its RD); nothing else moved.
    let c = ok(&mut p, &mut s, "commit");
    assert!(c.contains("commit ok"), "{c}");
    assert_eq!(verdict(&p, &[(18, 64), (16, 255)], 1), Ok(0));
    assert!(ok(&mut p, &mut s, "display ip vpn-instance").contains("vpnc                            100:3"));
}

/// Commits of routes and networks in two instances and the public table, with pop-go
/// toggles in one instance: each published snapshot forwards exactly as a full build of
/// the running config, and route/network commits inside the per-route instances are
/// patched, not rebuilt.
#[test]
fn vpn_commits_equal_full_builds() {
    let mut text = L3VPN.replacen("pop_go = true", "pop_go = false", 1);
    // A public table beside the instances: DeviceD's neighbor on to-pe.
    text.push_str("\n[[neighbor]]\nip = \"192.168.99.1\"\nmac = \"02:00:00:00:00:99\"\nport = \"to-pe\"\n");
    let mut p = plane(Config::parse(&text).unwrap());
    let mut s = p.new_session();
    ok(&mut p, &mut s, "system-view");
    let mut x = 11u64;
    let mut next = |n: u64| {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (x >> 33) % n
    };
    let (mut incremental, mut route_commits) = (0, 0);
    for round in 0..150 {
        let vrf = ["vpna", "vpnb"][next(2) as usize];
        let pfx = format!("10.{}.0.0 16", 100 + next(10));
        let nh = ["192.168.10.1", "192.168.20.1"][next(2) as usize];
        let kind = next(8);
        let lines: Vec<String> = match kind {
            0 | 1 => vec![format!("ip route-static vpn-instance {vrf} {pfx} {nh}")],
            2 => vec![format!("undo ip route-static vpn-instance {vrf} {pfx} {nh}")],
            3 => vec!["bgp 100".into(), format!("ipv4-family vpn-instance {vrf}"), format!("network {pfx}")],
            4 => vec!["bgp 100".into(), format!("ipv4-family vpn-instance {vrf}"), format!("undo network {pfx}")],
            5 => vec![format!("ip route-static {pfx} 192.168.99.1"), "bgp 100".into(), format!("network {pfx}")],
            6 => vec!["ip vpn-instance vpna".into(), "ipv4-family".into(), "apply-label per-route pop-go".into()],
            _ => vec!["ip vpn-instance vpna".into(), "ipv4-family".into(), "apply-label per-route".into()],
        };
        for l in &lines {
            p.exec(&mut s, l);
        }
        ok(&mut p, &mut s, "return");
        ok(&mut p, &mut s, "system-view");
        let r = p.exec(&mut s, "commit");
        assert!(r.ok, "round {round}: {}", r.text);
        if kind <= 5 && r.text.contains("commit ok") {
            route_commits += 1;
            incremental += usize::from(r.text.contains("incremental"));
        }
        let full = crate::ilm::build(p.running(), 0).unwrap();
        assert_eq!(crate::ilm::build::first_difference(p.current(), &full, p.running()), None, "round {round}");
    }
    assert!(incremental * 2 > route_commits, "most route commits are patched ({incremental}/{route_commits})");
}

/// 6PE has its own switch in `ipv6-family unicast`, as on the device: turning it off
/// leaves the IPv4 labels POPGO; without it, 6PE follows the BGP view's.
#[test]
fn six_pe_pop_go_is_its_own_view_s() {
    let cfg = Config::parse(include_str!("../../examples/6pe.toml")).unwrap();
    let mut p = plane(cfg);
    let mut s = p.new_session();
    let ops = |p: &ControlPlane| {
        let mut v: Vec<(bool, crate::ilm::LabelOp)> = p.current().lsp_rows().map(|r| (r.fec.is_v4(), r.op)).collect();
        v.sort_by_key(|x| !x.0);
        v
    };
    use crate::ilm::LabelOp::{Pop, PopGo};
    assert_eq!(ops(&p), [(true, PopGo), (false, PopGo), (false, PopGo)]);
    for l in ["system-view", "bgp 65002", "ipv6-family unicast", "undo apply-label per-route pop-go"] {
        ok(&mut p, &mut s, l);
    }
    let c = ok(&mut p, &mut s, "commit");
    assert!(c.contains("incremental"), "{c}");
    assert_eq!(ops(&p), [(true, PopGo), (false, Pop), (false, Pop)]);
    let full = crate::ilm::build(p.running(), 0).unwrap();
    assert_eq!(crate::ilm::build::first_difference(p.current(), &full, p.running()), None);
    let conf = ok(&mut p, &mut s, "display current-configuration");
    assert!(conf.contains(" ipv6-family unicast\n  undo apply-label per-route pop-go\n"), "{conf}");
    // The BGP view's switch no longer moves 6PE.
    for l in ["quit", "undo apply-label per-route pop-go", "commit"] {
        ok(&mut p, &mut s, l);
    }
    assert_eq!(ops(&p), [(true, Pop), (false, Pop), (false, Pop)]);
    for l in ["ipv6-family unicast", "apply-label per-route pop-go", "commit"] {
        ok(&mut p, &mut s, l);
    }
    assert_eq!(ops(&p), [(true, Pop), (false, PopGo), (false, PopGo)]);
    // And the config file says the same (pop_go_ipv6).
    let again = Config::parse(&p.running().to_toml()).unwrap();
    assert_eq!(again.bgp.as_ref().unwrap().pop_go_v6, Some(true));
}

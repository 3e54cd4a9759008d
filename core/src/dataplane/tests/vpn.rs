//! VPN instances and transport labels through the data path: overlapping prefixes in
//! two tables, POPGO and per-instance lookups inside an instance, per-nexthop label
//! sharing, and the egress's own transport label on top (RFC 3443 TTL modes).

use super::{check_v4_out, config, one, run, snap, v4, TRANSPORT_LABEL, VPN_LABEL};
use crate::config::{Config, TtlMode};
use crate::ilm::{build, IlmOp};
use crate::io::Verdict;
use crate::stats::DropReason;
use crate::traffic::frames::{seed_mpls, SEED_LABEL};

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 0x0a];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 0x0b];
const PORT_A: [u8; 6] = [2, 0, 0, 0, 0x0c, 0x0a];
const PORT_B: [u8; 6] = [2, 0, 0, 0, 0x0c, 0x0b];
/// vpna's CEs (both on port to-CE, index 3): at DeviceA's address 192.168.10.1 (the /24)
/// and at 192.168.30.1 (the /30).
const CE_24: [u8; 6] = [2, 0, 0, 0, 1, 0x0a];
const CE_30: [u8; 6] = [2, 0, 0, 0, 1, 0x0b];
const PORT_CE: [u8; 6] = [2, 0, 0, 0, 0x0c, 0x0e];

#[test]
fn the_same_destination_leaves_by_each_table_s_own_route() {
    // POPGO: the public label goes to DeviceA, the VPN label to the CE of the VPN's /24.
    let ip = v4(1, 64);
    let (v, out) = one(snap(true), seed_mpls(&[(SEED_LABEL, 64)], &ip));
    assert_eq!(v, Verdict::Forward(0));
    check_v4_out(&out, MAC_A, PORT_A, 63, &ip);
    let (v, out) = one(snap(true), seed_mpls(&[(VPN_LABEL, 64)], &ip));
    assert_eq!(v, Verdict::Forward(3));
    check_v4_out(&out, CE_24, PORT_CE, 63, &ip);
    // POP: each label is looked up in its own table; 10.1.1.1 matches each table's /30.
    let (v, out) = one(snap(false), seed_mpls(&[(SEED_LABEL, 64)], &ip));
    assert_eq!(v, Verdict::Forward(1));
    check_v4_out(&out, MAC_B, PORT_B, 63, &ip);
    let (v, out) = one(snap(false), seed_mpls(&[(VPN_LABEL, 64)], &ip));
    assert_eq!(v, Verdict::Forward(3));
    check_v4_out(&out, CE_30, PORT_CE, 63, &ip);
    // Outside the VPN's routes there is no route in its table, though the public table
    // has none either: no leak to the public default or anything else.
    let (v, _) = one(
        snap(false),
        seed_mpls(
            &[(VPN_LABEL, 64)],
            &crate::traffic::frames::ipv4_udp("172.16.0.1".parse().unwrap(), "10.9.9.9".parse().unwrap(), 64, 46),
        ),
    );
    assert_eq!(v, Verdict::Drop(DropReason::NoRoute));
}

#[test]
fn a_transport_label_on_top_is_popped_and_the_vpn_label_decides() {
    let ip = v4(2, 200);
    for pop_go in [true, false] {
        let s = snap(pop_go);
        let alone = one(s, seed_mpls(&[(VPN_LABEL, 64)], &ip));
        let stacked = one(s, seed_mpls(&[(TRANSPORT_LABEL, 64), (VPN_LABEL, 255)], &ip));
        assert_eq!(stacked, alone, "uniform: the received TTL (64) decides, pop-go {pop_go}");
        assert!(matches!(alone.0, Verdict::Forward(3)));
    }
    // Transport over the public BGP label too.
    let (v, out) = one(snap(true), seed_mpls(&[(TRANSPORT_LABEL, 9), (SEED_LABEL, 64)], &ip));
    assert_eq!(v, Verdict::Forward(0));
    check_v4_out(&out, MAC_A, PORT_A, 8, &ip);
    // At the bottom of the stack: routed by IP in the public table (10.1.1.2 -> the /30).
    let (v, out) = one(snap(true), seed_mpls(&[(TRANSPORT_LABEL, 30)], &ip));
    assert_eq!(v, Verdict::Forward(1));
    check_v4_out(&out, MAC_B, PORT_B, 29, &ip);
}

#[test]
fn transport_label_ttl_follows_the_mode() {
    let ip = v4(5, 100);
    // Uniform: the top TTL is the one decremented, wherever it is popped.
    let (v, out) = one(snap(true), seed_mpls(&[(TRANSPORT_LABEL, 20), (VPN_LABEL, 1)], &ip));
    assert_eq!(v, Verdict::Forward(3));
    check_v4_out(&out, CE_24, PORT_CE, 19, &ip);
    for t in [0, 1] {
        let (v, _) = one(snap(true), seed_mpls(&[(TRANSPORT_LABEL, t), (VPN_LABEL, 64)], &ip));
        assert_eq!(v, Verdict::Drop(DropReason::TtlExpired), "uniform, transport TTL {t}");
    }
    // Pipe: the transport TTL must not expire here; then the VPN label's TTL counts and
    // the IP TTL is decremented on its own.
    let pipe = build(&config(true, TtlMode::Pipe), 0).unwrap();
    let (v, out) = one(&pipe, seed_mpls(&[(TRANSPORT_LABEL, 2), (VPN_LABEL, 64)], &ip));
    assert_eq!(v, Verdict::Forward(3));
    check_v4_out(&out, CE_24, PORT_CE, 99, &ip);
    let (v, _) = one(&pipe, seed_mpls(&[(TRANSPORT_LABEL, 1), (VPN_LABEL, 64)], &ip));
    assert_eq!(v, Verdict::Drop(DropReason::TtlExpired), "pipe, transport TTL 1");
    let (v, _) = one(&pipe, seed_mpls(&[(TRANSPORT_LABEL, 64), (VPN_LABEL, 1)], &ip));
    assert_eq!(v, Verdict::Drop(DropReason::TtlExpired), "pipe, VPN TTL 1 under a live transport TTL");
}

/// The test config with vpna's IPv4 family in `mode`, pop-go on, and a second VPN
/// network behind the /24's CE.
fn with_mode(mode: &str) -> Config {
    let mut text = format!(
        "{}\n{}",
        include_str!("../../../../pcaps/seed.toml"),
        super::VPN.replace(
            "vpn_target_import = [\"100:1\"]",
            &format!("vpn_target_import = [\"100:1\"]\nlabel_mode = \"{mode}\"\npop_go = true")
        )
    );
    text.push_str(
        "[[static_route]]\nvpn_instance = \"vpna\"\nprefix = \"10.2.0.0/16\"\nnext_hop = \"192.168.10.1\"\n\
         [[bgp.network]]\nvpn_instance = \"vpna\"\nprefix = \"10.2.0.0/16\"\n\
         [[bgp.network]]\nvpn_instance = \"vpna\"\nprefix = \"10.1.1.0/30\"\n",
    );
    Config::parse(&text).unwrap()
}

#[test]
fn per_nexthop_shares_a_label_per_ce_and_per_instance_looks_up_the_vrf() {
    // per-nexthop pop-go: 10.1.1.0/24 and 10.2.0.0/16 (CE 192.168.10.1) share a label,
    // 10.1.1.0/30 (CE 192.168.30.1) has its own.
    let s = build(&with_mode("per-nexthop"), 0).unwrap();
    let rows: Vec<_> = s.lsp_rows().filter(|r| r.fec.vrf == 1).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].in_label, rows[1].in_label, "{rows:?}");
    assert_ne!(rows[0].in_label, rows[2].in_label);
    assert_eq!(s.ilm.lookup(rows[0].in_label).op(), Some(IlmOp::PopGo));
    let ip = v4(1, 64);
    let (v, out) = one(&s, seed_mpls(&[(rows[0].in_label, 64)], &ip));
    assert_eq!(v, Verdict::Forward(3));
    check_v4_out(&out, CE_24, PORT_CE, 63, &ip);
    let (v, out) = one(&s, seed_mpls(&[(rows[2].in_label, 64)], &ip));
    assert_eq!(v, Verdict::Forward(3));
    check_v4_out(&out, CE_30, PORT_CE, 63, &ip);
    // per-instance: one label for the instance, a POP entry that looks up vpna's FIB.
    let s = build(&with_mode("per-instance"), 0).unwrap();
    let labels: std::collections::BTreeSet<u32> = s.lsp_rows().filter(|r| r.fec.vrf == 1).map(|r| r.in_label).collect();
    assert_eq!(labels.len(), 1);
    let l = *labels.iter().next().unwrap();
    assert_eq!((s.ilm.lookup(l).op(), s.ilm.lookup(l).vrf()), (Some(IlmOp::Pop), 1));
    let frames = [v4(1, 64), v4(9, 64)].map(|ip| seed_mpls(&[(l, 64)], &ip));
    let (outs, stats) = run(&s, &frames);
    assert_eq!(outs[0].0, Verdict::Forward(3));
    assert_eq!(&outs[0].1[..6], &CE_30, "10.1.1.1 matches vpna's /30");
    assert_eq!(&outs[1].1[..6], &CE_24, "10.1.1.9 matches vpna's /24");
    assert_eq!(stats.tx_pkts, 2);
    // The public label is untouched by the instance's mode.
    assert_eq!(s.ilm.lookup(SEED_LABEL).op(), Some(IlmOp::PopGo));
}

/// `gen synth --transport-label` traffic through the config it writes: every frame is
/// forwarded (the static egress LSP pops the transport label, the service label decides).
#[test]
fn synth_transport_traffic_is_forwarded_by_its_config() {
    use crate::traffic::synth::{synth_config, Synth};
    let s = Synth { count: 300, labels: 10, first_label: 100, transport_label: Some(18), ..Synth::default() };
    let mut frames = Vec::new();
    s.generate(|_, f| frames.push(f.to_vec())).unwrap();
    let mut cfg = synth_config(100, 10, 4, 16, false);
    cfg.push_str(&crate::traffic::profile::transport_toml(18));
    let snap = build(&Config::parse(&cfg).unwrap(), 0).unwrap();
    let (outs, stats) = run(&snap, &frames);
    assert!(outs.iter().all(|(v, _)| matches!(v, Verdict::Forward(_))), "{:?}", stats);
    assert_eq!(stats.tx_pkts, 300);
}

//! Pipeline tests: frames through `process_burst` over `io::mem`, asserting output
//! bytes (checked independently with etherparse) and counters.

use super::*;
use crate::config::{Config, TtlMode};
use crate::ilm::{build, Snapshot};
use crate::io::pcap::Capture;
use crate::stats::{DropReason, WorkerStats};
use crate::traffic::frames::{frame, ipv4_udp, ipv6_udp, seed_frames, seed_mpls, SEED_LABEL};
use crate::wire::ethernet::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_MPLS, ETHERTYPE_VLAN};
use crate::wire::mpls::{LabelEntry, LABEL_ELI, LABEL_GAL, LABEL_IPV4_EXPLICIT_NULL, LABEL_IPV6_EXPLICIT_NULL};
use etherparse::{NetSlice, SlicedPacket};
use std::net::{Ipv4Addr, Ipv6Addr};

const SEED: &str = include_str!("../../../pcaps/seed.toml");
const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 0x0a];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 0x0b];
const PORT_A: [u8; 6] = [2, 0, 0, 0, 0x0c, 0x0a];
const PORT_B: [u8; 6] = [2, 0, 0, 0, 0x0c, 0x0b];

/// The test config's VPN instance `vpna` (VRF 1): a port `to-CE` bound to it with two
/// CEs, one of them at DeviceA's address (another table), the seed's two routes inside
/// it and the /24 as a VPN network (first dynamic label, 48000); and label 18 as a
/// static egress LSP.
pub(crate) const VPN: &str = r#"
[[vpn_instance]]
name = "vpna"
[vpn_instance.ipv4]
route_distinguisher = "100:1"
vpn_target_export = ["100:1"]
vpn_target_import = ["100:1"]
[[port]]
name = "to-CE"
mac = "02:00:00:00:0c:0e"
vpn_instance = "vpna"
[[neighbor]]
ip = "192.168.10.1"
mac = "02:00:00:00:01:0a"
port = "to-CE"
[[neighbor]]
ip = "192.168.30.1"
mac = "02:00:00:00:01:0b"
port = "to-CE"
[[static_route]]
vpn_instance = "vpna"
prefix = "10.1.1.0/24"
next_hop = "192.168.10.1"
[[static_route]]
vpn_instance = "vpna"
prefix = "10.1.1.0/30"
next_hop = "192.168.30.1"
[[bgp.network]]
vpn_instance = "vpna"
prefix = "10.1.1.0/24"
[mpls]
lsr_id = "3.3.3.3"
[[mpls.static_lsp]]
name = "self"
in_label = 18
"#;

/// The VPN label of vpna's 10.1.1.0/24 and the static egress LSP's label.
pub(crate) const VPN_LABEL: u32 = 48000;
pub(crate) const TRANSPORT_LABEL: u32 = 18;

/// The seed config plus an IPv6 (6PE) network 2001:db8:1::/48 via DeviceB with label
/// 48200, and [`VPN`]; pop-go on or off in both the BGP view and the VPN instance.
fn config(pop_go: bool, ttl: TtlMode) -> Config {
    let text = format!("{SEED}\n[[neighbor]]\nip = \"fd00::b\"\nmac = \"02:00:00:00:00:0b\"\nport = \"to-B\"\n{VPN}");
    // Neighbors must precede the routes that use them in the file; splice the v6 route
    // and network in through the API instead.
    let mut c = Config::parse(&text).unwrap();
    c.add_static_route(crate::config::StaticRoute {
        prefix: crate::config::Prefix::parse("2001:db8:1::/48").unwrap(),
        next_hop: "fd00::b".parse().unwrap(),
        line: 0,
    })
    .unwrap();
    c.add_network(crate::config::Network {
        prefix: crate::config::Prefix::parse("2001:db8:1::/48").unwrap(),
        label: Some(48200),
        line: 0,
    })
    .unwrap();
    let b = c.bgp.as_mut().unwrap();
    b.pop_go = pop_go;
    c.vpn_instances[0].v4.as_mut().unwrap().pop_go = pop_go;
    c.ttl_mode = ttl;
    c
}

/// Built once per mode: a snapshot holds a 4 MiB ILM.
fn snap(pop_go: bool) -> &'static Snapshot {
    static SNAPS: std::sync::OnceLock<[Snapshot; 2]> = std::sync::OnceLock::new();
    &SNAPS.get_or_init(|| {
        [build(&config(false, TtlMode::Uniform), 0).unwrap(), build(&config(true, TtlMode::Uniform), 0).unwrap()]
    })[pop_go as usize]
}

/// Runs frames through the worker loop (capture backend, bursts of `MAX_BURST`);
/// returns (verdict, output bytes) per frame in input order, and the counters. Dropped
/// frames come back with no bytes.
fn run(s: &Snapshot, frames: &[Vec<u8>]) -> (Vec<(Verdict, Vec<u8>)>, WorkerStats) {
    let mut w = crate::io::pcap::Writer::new(Vec::new()).unwrap();
    for f in frames {
        w.write_packet(0, f).unwrap();
    }
    let cap = Capture::from_bytes(w.into_inner().unwrap()).unwrap();
    let (stats, trace) = crate::dataplane::worker::trace(s, &cap, MAX_BURST, true);
    assert!(stats.balanced(), "rx = tx + drops");
    let mut outs = vec![(Verdict::Drop(DropReason::Oversize), Vec::new()); frames.len()];
    for (seq, v, bytes) in trace {
        outs[seq as usize] = (v, bytes);
    }
    (outs, stats)
}

fn one(s: &Snapshot, f: Vec<u8>) -> (Verdict, Vec<u8>) {
    run(s, &[f]).0.remove(0)
}

fn v4(host: u8, ttl: u8) -> Vec<u8> {
    ipv4_udp(Ipv4Addr::new(172, 16, 0, 1), Ipv4Addr::new(10, 1, 1, host), ttl, 46)
}

fn v6(ttl: u8) -> Vec<u8> {
    ipv6_udp("2001:db8:d::1".parse().unwrap(), "2001:db8:1::7".parse::<Ipv6Addr>().unwrap(), ttl, 60)
}

/// Checks an IPv4 output frame with etherparse: MACs, ethertype, TTL, valid checksum,
/// and that the IP packet is the input's apart from TTL and checksum.
fn check_v4_out(out: &[u8], dst: [u8; 6], src: [u8; 6], ttl: u8, ip_in: &[u8]) {
    let p = SlicedPacket::from_ethernet(out).unwrap();
    let eth = p.link.clone().unwrap().to_header().unwrap();
    let eth = match eth {
        etherparse::LinkHeader::Ethernet2(e) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(eth.destination, dst);
    assert_eq!(eth.source, src);
    assert_eq!(eth.ether_type.0, ETHERTYPE_IPV4);
    assert!(p.vlan().is_none(), "tags removed");
    let Some(NetSlice::Ipv4(ip)) = p.net else { panic!("not IPv4") };
    let h = ip.header().to_header();
    assert_eq!(h.time_to_live, ttl);
    assert_eq!(h.header_checksum, h.calc_header_checksum(), "checksum verifies");
    assert_eq!(out.len(), 14 + ip_in.len());
    let mut expect = ip_in.to_vec();
    expect[8] = ttl;
    expect[10..12].copy_from_slice(&out[14 + 10..14 + 12]);
    assert_eq!(&out[14..], &expect[..]);
}

#[test]
fn seed_popgo_sends_every_10_1_1_packet_to_device_a() {
    let s = snap(true);
    for host in [1, 2, 3, 5] {
        let ip = v4(host, 64);
        let (v, out) = one(s, seed_mpls(&[(SEED_LABEL, 64)], &ip));
        assert_eq!(v, Verdict::Forward(0), "10.1.1.{host} -> to-A");
        check_v4_out(&out, MAC_A, PORT_A, 63, &ip);
    }
}

#[test]
fn seed_without_popgo_longest_match_sends_0_to_3_to_device_b() {
    let s = snap(false);
    for (host, port, dst, src) in
        [(1, 1, MAC_B, PORT_B), (2, 1, MAC_B, PORT_B), (3, 1, MAC_B, PORT_B), (5, 0, MAC_A, PORT_A)]
    {
        let ip = v4(host, 64);
        let (v, out) = one(s, seed_mpls(&[(SEED_LABEL, 64)], &ip));
        assert_eq!(v, Verdict::Forward(port), "10.1.1.{host}");
        check_v4_out(&out, dst, src, 63, &ip);
    }
}

#[test]
fn uniform_ttl_copies_mpls_ttl_and_pipe_decrements_ip_ttl() {
    let ip = v4(1, 200);
    let (_, out) = one(snap(true), seed_mpls(&[(SEED_LABEL, 10)], &ip));
    check_v4_out(&out, MAC_A, PORT_A, 9, &ip);
    let pipe = build(&config(true, TtlMode::Pipe), 0).unwrap();
    let (_, out) = one(&pipe, seed_mpls(&[(SEED_LABEL, 10)], &ip));
    check_v4_out(&out, MAC_A, PORT_A, 199, &ip);
    // Pipe: IP TTL 1 expires even with a healthy MPLS TTL.
    let (v, _) = one(&pipe, seed_mpls(&[(SEED_LABEL, 10)], &v4(1, 1)));
    assert_eq!(v, Verdict::Drop(DropReason::TtlExpired));
    // Uniform: MPLS TTL 1 and 0 expire whatever the IP TTL.
    for t in [0, 1] {
        let (v, _) = one(snap(true), seed_mpls(&[(SEED_LABEL, t)], &v4(1, 64)));
        assert_eq!(v, Verdict::Drop(DropReason::TtlExpired));
    }
}

#[test]
fn ipv6_6pe_popgo_sets_hop_limit() {
    let ip = v6(64);
    let (v, out) = one(snap(true), seed_mpls(&[(48200, 30)], &ip));
    assert_eq!(v, Verdict::Forward(1));
    assert_eq!(&out[..6], &MAC_B);
    assert_eq!(u16::from_be_bytes([out[12], out[13]]), ETHERTYPE_IPV6);
    let p = SlicedPacket::from_ethernet(&out).unwrap();
    let Some(NetSlice::Ipv6(h)) = p.net else { panic!() };
    assert_eq!(h.header().hop_limit(), 29);
    assert_eq!(&out[14 + 8..], &ip[8..]);
    // An IPv4 payload under a v6 label is a family mismatch.
    let (v, _) = one(snap(true), seed_mpls(&[(48200, 30)], &v4(1, 64)));
    assert_eq!(v, Verdict::Drop(DropReason::PayloadMismatch));
    // The v6 FIB is used for POP.
    let (v, _) = one(snap(false), seed_mpls(&[(48200, 30)], &ip));
    assert_eq!(v, Verdict::Forward(1));
}

#[test]
fn more_labels_below_leave_as_mpls_with_ttl_propagated() {
    let ip = v4(1, 64);
    let f = seed_mpls(&[(SEED_LABEL, 40), (3000, 255)], &ip);
    let (v, out) = one(snap(true), f);
    assert_eq!(v, Verdict::Forward(0));
    assert_eq!(u16::from_be_bytes([out[12], out[13]]), ETHERTYPE_MPLS);
    let e = LabelEntry::read(&out, 14).unwrap();
    assert_eq!((e.label(), e.bos(), e.ttl()), (3000, true, 39));
    assert_eq!(&out[18..], &ip[..], "IP untouched under the remaining label");
    // Pipe leaves the exposed label's TTL alone.
    let pipe = build(&config(true, TtlMode::Pipe), 0).unwrap();
    let (_, out) = one(&pipe, seed_mpls(&[(SEED_LABEL, 40), (3000, 255)], &ip));
    assert_eq!(LabelEntry::read(&out, 14).unwrap().ttl(), 255);
}

#[test]
fn explicit_null_entropy_and_vlans_are_stripped() {
    let s = snap(true);
    let ip = v4(3, 64);
    let cases = [
        seed_mpls(&[(LABEL_IPV4_EXPLICIT_NULL, 64), (SEED_LABEL, 64)], &ip),
        seed_mpls(&[(SEED_LABEL, 64), (LABEL_ELI, 64), (0x12345, 64)], &ip),
        seed_mpls(&[(LABEL_ELI, 64), (0x54321, 64), (SEED_LABEL, 64)], &ip),
        frame([9; 6], [8; 6], &[ETHERTYPE_VLAN], ETHERTYPE_MPLS, &[(SEED_LABEL, 64)], &ip),
        frame([9; 6], [8; 6], &[0x88a8, ETHERTYPE_VLAN], ETHERTYPE_MPLS, &[(SEED_LABEL, 64)], &ip),
    ];
    let (outs, _) = run(s, &cases);
    for (v, out) in outs {
        assert_eq!(v, Verdict::Forward(0));
        check_v4_out(&out, MAC_A, PORT_A, 63, &ip);
    }
}

#[test]
fn explicit_null_at_bottom_routes_by_ip() {
    let s = snap(true);
    let (v, out) = one(s, seed_mpls(&[(LABEL_IPV4_EXPLICIT_NULL, 64)], &v4(2, 64)));
    assert_eq!(v, Verdict::Forward(1), "10.1.1.2 matches the /30 via DeviceB");
    check_v4_out(&out, MAC_B, PORT_B, 63, &v4(2, 64));
    let (v, _) = one(s, seed_mpls(&[(LABEL_IPV6_EXPLICIT_NULL, 64)], &v4(2, 64)));
    assert_eq!(v, Verdict::Drop(DropReason::PayloadMismatch));
    let (v, _) = one(s, seed_mpls(&[(LABEL_IPV4_EXPLICIT_NULL, 64)], &v4(99, 64)));
    assert_eq!(v, Verdict::Forward(0), "10.1.1.99 matches the /24");
    let far = ipv4_udp(Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(192, 0, 2, 1), 64, 46);
    let (v, _) = one(s, seed_mpls(&[(LABEL_IPV4_EXPLICIT_NULL, 64)], &far));
    assert_eq!(v, Verdict::Drop(DropReason::NoRoute));
}

#[test]
fn drop_reasons_for_bad_frames() {
    let s = snap(true);
    let ip = v4(1, 64);
    let mut bad_ihl = ip.clone();
    bad_ihl[0] = 0x4f;
    let cases: Vec<(Vec<u8>, DropReason)> = vec![
        (seed_mpls(&[(1, 64), (SEED_LABEL, 64)], &ip), DropReason::ReservedLabel),
        (seed_mpls(&[(LABEL_GAL, 64)], &ip), DropReason::ReservedLabel),
        (seed_mpls(&[(3, 64)], &ip), DropReason::ReservedLabel),
        (seed_mpls(&[(15, 64), (SEED_LABEL, 64)], &ip), DropReason::ReservedLabel),
        (seed_mpls(&[(SEED_LABEL, 64), (LABEL_ELI, 64)], &ip), DropReason::EntropyMalformed),
        (seed_mpls(&[(LABEL_ELI, 64), (5, 64)], &ip), DropReason::EntropyMalformed),
        (seed_mpls(&[(40000, 64)], &ip), DropReason::NoIlmEntry),
        (seed_mpls(&[(SEED_LABEL, 64)], &[0x10, 0, 0, 0]), DropReason::PayloadMismatch),
        (seed_mpls(&[(SEED_LABEL, 64)], &[]), DropReason::PayloadMismatch),
        (seed_mpls(&[(SEED_LABEL, 64)], &ip[..19]), DropReason::BadIpHeader),
        (seed_mpls(&[(SEED_LABEL, 64)], &bad_ihl), DropReason::BadIpHeader),
        (seed_mpls(&[(0, 64); 9], &ip), DropReason::LabelStackTooDeep),
        (
            frame([1; 6], [2; 6], &[0x8100, 0x8100, 0x8100], ETHERTYPE_MPLS, &[(SEED_LABEL, 64)], &ip),
            DropReason::VlanTooDeep,
        ),
    ];
    let frames: Vec<Vec<u8>> = cases.iter().map(|c| c.0.clone()).collect();
    let (outs, stats) = run(s, &frames);
    for (i, ((v, _), (_, want))) in outs.iter().zip(&cases).enumerate() {
        assert_eq!(*v, Verdict::Drop(*want), "case {i}");
    }
    assert_eq!(stats.drop_count(DropReason::ReservedLabel), 4);
    assert_eq!(stats.dropped_pkts(), cases.len() as u64);
}

#[test]
fn every_truncation_of_a_good_frame_is_a_counted_drop() {
    let s = snap(true);
    let f = frame([1; 6], [2; 6], &[0x8100], ETHERTYPE_MPLS, &[(SEED_LABEL, 64), (LABEL_ELI, 9), (77, 9)], &v4(1, 64));
    let frames: Vec<Vec<u8>> = (0..f.len()).map(|n| f[..n].to_vec()).collect();
    let (outs, stats) = run(s, &frames);
    assert!(outs.iter().all(|(v, _)| matches!(v, Verdict::Drop(_))));
    assert_eq!(stats.dropped_pkts(), f.len() as u64);
    assert_eq!(one(s, f).0, Verdict::Forward(0));
}

#[test]
fn pop_with_more_labels_looks_up_the_next_label() {
    let s = snap(false);
    let (v, out) = one(s, seed_mpls(&[(SEED_LABEL, 64), (48200, 64)], &v6(64)));
    assert_eq!(v, Verdict::Forward(1), "48122 popped, 48200 (v6) decides");
    assert_eq!(u16::from_be_bytes([out[12], out[13]]), ETHERTYPE_IPV6);
}

/// Entropy-label pairs below a popped label count against the pop depth limit: up to
/// `MAX_POPS` pops in all the frame is forwarded, one more and it is a counted drop.
#[test]
fn entropy_pairs_below_a_popped_label_count_as_pops() {
    use crate::dataplane::burst::MAX_POPS;
    let s = snap(true);
    let with_pairs = |pairs: usize| {
        let mut labels = vec![(SEED_LABEL, 64)];
        for i in 0..pairs {
            labels.push((LABEL_ELI, 64));
            labels.push((0x12345 + i as u32, 64));
        }
        seed_mpls(&labels, &v4(1, 64))
    };
    assert_eq!(one(s, with_pairs(MAX_POPS - 1)).0, Verdict::Forward(0), "{} pops", MAX_POPS);
    assert_eq!(one(s, with_pairs(MAX_POPS)).0, Verdict::Drop(DropReason::LabelStackTooDeep));
    assert_eq!(one(s, with_pairs(20)).0, Verdict::Drop(DropReason::LabelStackTooDeep));
}

#[test]
fn long_bursts_are_split_and_all_counted() {
    let s = snap(true);
    let frames: Vec<Vec<u8>> =
        (0..MAX_BURST + 37).map(|i| seed_mpls(&[(SEED_LABEL, 64)], &v4((i % 250) as u8, 64))).collect();
    let (outs, stats) = run(s, &frames);
    assert!(outs.iter().all(|(v, _)| *v == Verdict::Forward(0)));
    assert_eq!(stats.rx_pkts, frames.len() as u64);
    assert_eq!(stats.bursts, 2);
}

#[test]
fn seed_pcap_fixture_counts() {
    // The shipped capture gives the documented counts.
    let cap = Capture::open(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../pcaps/seed.pcap"))).unwrap();
    assert_eq!(cap.len(), seed_frames().len());
    let frames: Vec<Vec<u8>> = (0..cap.len()).map(|i| cap.packet(i).to_vec()).collect();
    for (f, g) in frames.iter().zip(seed_frames()) {
        assert_eq!(f, &g.frame, "pcaps/seed.pcap is what `popgo gen seed` makes: {}", g.what);
    }
    let (_, with) = run(snap(true), &frames);
    assert_eq!((with.port_tx_pkts[0], with.port_tx_pkts[1], with.dropped_pkts()), (8, 0, 8));
    let (_, without) = run(snap(false), &frames);
    assert_eq!((without.port_tx_pkts[0], without.port_tx_pkts[1], without.dropped_pkts()), (2, 6, 8));
}

#[test]
fn fast_path_takes_the_common_case_only() {
    use crate::dataplane::burst::{fast_path_frame, Plan};
    let mut p = Plan::default();
    let port = |r: Option<(u16, Vec<u8>)>| r.map(|r| r.0);
    assert_eq!(port(fast_path_frame(snap(true), &seed_mpls(&[(SEED_LABEL, 64)], &v4(1, 64)), &mut p)), Some(0));
    assert_eq!(port(fast_path_frame(snap(false), &seed_mpls(&[(SEED_LABEL, 64)], &v4(1, 64)), &mut p)), None, "POP");
    assert_eq!(port(fast_path_frame(snap(true), &seed_mpls(&[(48200, 64)], &v6(64)), &mut p)), None, "IPv6");
    let pipe = build(&config(true, TtlMode::Pipe), 0).unwrap();
    assert_eq!(port(fast_path_frame(&pipe, &seed_mpls(&[(SEED_LABEL, 64)], &v4(1, 64)), &mut p)), None, "pipe");
}

/// Table swaps a worker counts when its tables come from a QSBR reader: a commit
/// published after start-up but before the worker's first burst is a swap when the
/// worker knows the generation it started with, and is not one without it.
#[test]
fn a_commit_before_the_first_burst_counts_as_a_swap_from_the_start_generation() {
    use crate::dataplane::worker::WorkerLoop;
    use crate::io::capture::{CaptureQueue, Share, Trace};
    let mut w = crate::io::pcap::Writer::new(Vec::new()).unwrap();
    for f in seed_frames() {
        w.write_packet(0, &f.frame).unwrap();
    }
    let cap = Capture::from_bytes(w.into_inner().unwrap()).unwrap();
    let cfg = config(true, TtlMode::Uniform);
    let mut publisher = crate::qsbr::Publisher::new(Box::new(build(&cfg, 1).unwrap()), 1);
    let mut reader = publisher.register_reader();
    // The commit lands before the worker reads any table.
    assert!(publisher.publish(Box::new(build(&cfg, 2).unwrap())).grace_complete);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut swaps = |start_generation| {
        let share = Share { w: 0, workers: 1, burst: MAX_BURST, loops: 1 };
        let mut q = CaptureQueue::new(&cap, share, Trace::default());
        let lp = WorkerLoop { id: 0, burst: MAX_BURST, stop: &stop, board: None, start_generation };
        let r = lp.run(&mut q, &mut reader);
        assert_eq!(r.stats.rx_pkts, cap.len() as u64);
        r.stats.ilm_swaps_seen
    };
    assert_eq!(swaps(Some(1)), 1, "started on generation 1, forwarded on 2");
    assert_eq!(swaps(Some(2)), 0, "started on the table it forwarded on");
    assert_eq!(swaps(None), 0, "no baseline: the first table read is the baseline");
}

mod structured;
mod vpn;

/// Generated traffic through the data path: the traffic module builds frames and
/// configs, the data path must forward them.
mod generated {
    #[test]
    fn generated_config_forwards_everything_but_the_malformed() {
        let p = crate::traffic::profile::Profile::parse(crate::traffic::profile::tests::FULL).unwrap();
        let (bytes, sum) = p.to_pcap();
        let cap = crate::io::pcap::Capture::from_bytes(bytes).unwrap();
        assert_eq!(cap.len() as u64, sum.packets);
        let cfg = crate::config::Config::parse(&p.config()).unwrap();
        let snap = crate::ilm::build(&cfg, 0).unwrap();
        let (stats, _) = crate::dataplane::worker::trace(&snap, &cap, crate::io::BURST, false);
        use crate::stats::DropReason as D;
        assert_eq!(stats.tx_pkts, sum.packets - sum.malformed());
        assert_eq!(stats.drop_count(D::TooShort), sum.runt);
        assert_eq!(stats.drop_count(D::TruncatedLabelStack), sum.truncated_stack);
        assert_eq!(stats.drop_count(D::PayloadMismatch), sum.bad_payload);
        assert_eq!(stats.dropped_pkts(), sum.malformed());
    }

    #[test]
    fn synth_config_loads_and_forwards_both_families() {
        let c = crate::config::Config::parse(&crate::traffic::synth::synth_config(16, 50, 4, 16, false)).unwrap();
        assert_eq!(c.bgp.unwrap().networks.len(), 50);
        let c = crate::config::Config::parse(&crate::traffic::synth::synth_config(16, 50, 4, 16, true)).unwrap();
        let snap = crate::ilm::build(&c, 0).unwrap();
        assert_eq!(snap.lsps.len(), 100);
        let s = crate::traffic::synth::Synth {
            count: 400,
            labels: 50,
            v6_share: 0.5,
            size: 96,
            ..crate::traffic::synth::Synth::default()
        };
        let mut plan = Default::default();
        s.generate(|_, f| {
            let v = crate::dataplane::burst::classify_frame(&snap, f, &mut plan);
            assert!(v.is_ok(), "{v:?}");
        })
        .unwrap();
    }
}

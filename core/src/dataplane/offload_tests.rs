//! The XDP offload program (`offload`) against `process_burst`: the kernel's
//! verifier and `BPF_PROG_TEST_RUN` (root; skipped with a note otherwise).

use crate::dataplane::{process_burst, BurstCtx};
use crate::ilm::{Adjacency, Af, Ilm, IlmEntry, Snapshot};
use crate::io::mem::MemFrame;
use crate::io::xdp::{self, XDP_DROP, XDP_PASS, XDP_REDIRECT};
use crate::io::{PacketMut, Verdict};
use crate::offload::{counters_to_stats, offload_program, FrameLen, OffloadMaps};
use crate::stats::lsp::LspCounters;
use crate::stats::{DropReason, WorkerStats};
use crate::testkit::Rng;
use crate::traffic::frames::{frame, ipv4_udp, ipv6_udp};
use crate::wire::ethernet::{ETHERTYPE_IPV4, ETHERTYPE_MPLS, ETHERTYPE_MPLS_MC, ETHERTYPE_QINQ, ETHERTYPE_VLAN};
use libbpf_sys as sys;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::sync::Arc;

fn adj(port: u16, x: u8) -> Adjacency {
    Adjacency { macs: [2, 0, 0, 0, port as u8, x, 2, 0, 0, 0, 0x0c, port as u8], port }
}

fn snapshot(ilm: Ilm, adjs: Arc<Vec<Adjacency>>, generation: u64) -> Snapshot {
    Snapshot::bare(ilm, adjs, generation)
}

const IN_PORT: usize = 2;
/// What the test program returns for "to user space" (an XSKMAP miss), distinct from
/// every action the program returns itself.
const PUNT: i32 = xdp::XDP_TX;

/// The test's tables: POPGO v4 uniform (100), v6 pipe (101), any family uniform (102),
/// v4 pipe (103), POP (104), POPGO toward an unattached port (105), to a missing
/// adjacency (106), transport labels (static egress LSP) in uniform (200) and pipe
/// (201) mode; ports 0 and 1 attached, 2 not.
fn test_snapshot() -> Snapshot {
    let mut ilm = Ilm::new();
    ilm.set(100, IlmEntry::pop_go(Af::V4, 0, false));
    ilm.set(101, IlmEntry::pop_go(Af::V6, 1, true));
    ilm.set(102, IlmEntry::pop_go(Af::Any, 1, false));
    ilm.set(103, IlmEntry::pop_go(Af::V4, 0, true));
    ilm.set(104, IlmEntry::pop(Af::V4, false));
    ilm.set(105, IlmEntry::pop_go(Af::V4, 2, false));
    ilm.set(106, IlmEntry::pop_go(Af::V4, 9, false));
    ilm.set(200, IlmEntry::transport(false));
    ilm.set(201, IlmEntry::transport(true));
    snapshot(ilm, Arc::new(vec![adj(0, 0xa), adj(1, 0xb), adj(2, 0xc)]), 1)
}

/// A random frame near the common case, often broken in one place, and whether a
/// transport label is on top.
fn random_frame(rng: &mut Rng) -> (Vec<u8>, bool) {
    let tags: &[u16] = match rng.below(8) {
        0 => &[ETHERTYPE_VLAN],
        1 => &[ETHERTYPE_QINQ, ETHERTYPE_VLAN],
        2 => &[ETHERTYPE_VLAN, ETHERTYPE_VLAN, ETHERTYPE_VLAN],
        _ => &[],
    };
    let ethertype = match rng.below(20) {
        0 => ETHERTYPE_IPV4,
        1 => ETHERTYPE_MPLS_MC,
        _ => ETHERTYPE_MPLS,
    };
    let label = rng.pick(&[100, 100, 101, 102, 102, 103, 104, 105, 106, 107, 0, 3, 7, 200]);
    let mpls_ttl = rng.pick(&[0u8, 1, 2, 64, 255]);
    let ip_ttl = rng.pick(&[0u8, 1, 2, 64, 255]);
    let dst = Ipv4Addr::new(10, 1, 1, rng.below(250) as u8);
    let mut payload = match rng.below(10) {
        0..=4 => ipv4_udp(Ipv4Addr::new(192, 0, 2, 1), dst, ip_ttl, 28 + rng.below(40) as usize),
        5..=7 => ipv6_udp(
            "2001:db8::1".parse().unwrap(),
            "2001:db8:1::7".parse().unwrap(),
            ip_ttl,
            48 + rng.below(40) as usize,
        ),
        8 => vec![0x10 * rng.below(16) as u8; 30],
        _ => Vec::new(),
    };
    let mut labels = vec![(label, mpls_ttl)];
    if rng.below(8) == 0 {
        labels.push((rng.pick(&[100, 0, 7, 2000, 201]), 64));
    }
    // The L3VPN egress stack: this device's transport label over the service label.
    let transport = rng.below(3) == 0;
    if transport {
        labels.insert(0, (rng.pick(&[200, 201]), rng.pick(&[0u8, 1, 2, 64, 255])));
    }
    match rng.below(12) {
        0 if payload.len() > 4 => payload[0] = 0x46, // IPv4 with options (IHL 6)
        1 if payload.len() > 4 => payload[3] = payload[3].wrapping_add(1 + rng.below(30) as u8), // length past the end
        2 if payload.len() > 4 => payload[3] = 10,   // total < 20
        3 if payload.len() > 6 => payload[5] = payload[5].wrapping_add(1), // IPv6 length
        _ => {}
    }
    let mut f = frame([2, 0, 0, 0, 0x0c, 0x0d], [2, 0, 0, 0, 0, 0x0d], tags, ethertype, &labels, &payload);
    match rng.below(10) {
        0 => f.truncate(14 + rng.below(f.len() as u64 - 13) as usize),
        1 => f.extend_from_slice(&[0u8; 6]), // Ethernet padding
        _ => {}
    }
    (f, transport)
}

/// The program decides as `process_burst` does: every frame it forwards leaves with
/// the bytes and out port `process_burst` gives it, every frame it drops is a
/// `ttl_expired` drop there, every other MPLS frame reaches user space unchanged, and
/// its counters add up to exactly what it handled.
#[test]
fn program_agrees_with_process_burst() {
    let attached = [(0usize, "lo".to_string()), (1, "lo".to_string())];
    let maps = match OffloadMaps::create(&attached, true) {
        Ok(m) => m,
        Err(e) => {
            crate::testkit::skip("offload::program_agrees_with_process_burst", &format!("cannot create maps ({e})"));
            return;
        }
    };
    let xsks = xdp::create_map(sys::BPF_MAP_TYPE_XSKMAP, "xsks_map", 4, 4, 4).expect("XSKMAP");
    let m = maps.program_maps(xsks.as_raw_fd());
    let progs: Vec<_> = [FrameLen::Subtract, FrameLen::Helper]
        .into_iter()
        .map(|len| {
            xdp::load_xdp_program("t_offload", &offload_program(&m, IN_PORT, PUNT, len))
                .unwrap_or_else(|e| panic!("the verifier accepts the offload program ({len:?}): {e}"))
        })
        .collect();
    // The production variants load too.
    for len in [FrameLen::Subtract, FrameLen::Helper] {
        xdp::load_xdp_program("t_offload2", &offload_program(&m, 0, XDP_PASS, len)).expect("verifier");
    }
    let lsps = maps.lsps.clone().expect("per-LSP counters asked for");
    let (mut mirror, counters) = maps.into_parts();
    let snap = test_snapshot();
    mirror.apply(&snap);

    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut want = WorkerStats::default();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut ctx = BurstCtx::new();
    // The workers' per-LSP counting, given the frames the kernel forwarded.
    let want_lsps = Arc::new(LspCounters::new(1));
    let mut lsp_ctx = BurstCtx::new();
    lsp_ctx.count_lsps(Arc::clone(&want_lsps), 0);
    for _ in 0..9000 {
        let (f, transport) = random_frame(&mut rng);
        if f.len() < 14 {
            continue; // BPF_PROG_TEST_RUN needs an Ethernet header
        }
        let mut pkt = [*MemFrame::boxed_from(&f)];
        let mut verdict = [Verdict::Drop(DropReason::TooShort)];
        let mut st = WorkerStats::default();
        process_burst(&snap, &mut pkt, &mut verdict, &mut ctx, &mut st);
        // Both variants (frame length by subtraction or by helper) decide the same.
        for prog in &progs {
            let (act, out) = xdp::test_run_out(prog.as_raw_fd(), &f).expect("test run");
            match act as i32 {
                XDP_REDIRECT => {
                    let Verdict::Forward(port) = verdict[0] else {
                        panic!("kernel forwarded, user space {verdict:?}: {f:02x?}")
                    };
                    assert_eq!(out, pkt[0].data(), "bytes out of the kernel and of process_burst: {f:02x?}");
                    want.port_rx_pkts[IN_PORT] += 1;
                    want.rx_bytes += f.len() as u64;
                    want.count_tx(port as usize, out.len());
                    // Per LSP: counted as the workers count it.
                    let mut again = [*MemFrame::boxed_from(&f)];
                    process_burst(&snap, &mut again, &mut verdict, &mut lsp_ctx, &mut WorkerStats::default());
                    *seen.entry(if transport { "forwarded under transport" } else { "forwarded" }).or_default() += 1;
                }
                XDP_DROP => {
                    assert_eq!(verdict[0], Verdict::Drop(DropReason::TtlExpired), "kernel drop: {f:02x?}");
                    assert_eq!(out, f);
                    want.port_rx_pkts[IN_PORT] += 1;
                    want.rx_bytes += f.len() as u64;
                    want.count_drop(DropReason::TtlExpired);
                    *seen.entry(if transport { "dropped under transport" } else { "dropped" }).or_default() += 1;
                }
                PUNT => {
                    assert_eq!(out, f, "a frame for user space leaves the kernel unchanged");
                    *seen
                        .entry(if matches!(verdict[0], Verdict::Forward(_)) { "user forward" } else { "user drop" })
                        .or_default() += 1;
                }
                XDP_PASS => {
                    assert!(
                        matches!(
                            verdict[0],
                            Verdict::Drop(
                                DropReason::NotMpls
                                    | DropReason::MplsMulticast
                                    | DropReason::VlanTooDeep
                                    | DropReason::TooShort
                            )
                        ),
                        "passed to the kernel, user space says {verdict:?}"
                    );
                    *seen.entry("passed").or_default() += 1;
                }
                other => panic!("action {other} for {f:02x?}"),
            }
        }
    }
    want.rx_pkts = want.port_rx_pkts.iter().sum();
    eprintln!("program vs process_burst: {seen:?}");
    for k in [
        "forwarded",
        "forwarded under transport",
        "dropped",
        "dropped under transport",
        "user forward",
        "user drop",
        "passed",
    ] {
        assert!(seen.get(k).copied().unwrap_or(0) >= 40, "{k}: {seen:?}");
    }
    let got = counters_to_stats(&counters.read().expect("counters"));
    assert_eq!(got, want, "the program's counters");
    let got_lsps: Vec<(u32, u64, u64)> = lsps.read().expect("per-LSP counters");
    let want_lsps: Vec<(u32, u64, u64)> = want_lsps.read().iter().map(|c| (c.label, c.packets, c.bytes)).collect();
    assert_eq!(got_lsps, want_lsps, "the program's per-LSP counters");
    assert!(want_lsps.len() >= 3, "{want_lsps:?}");
}

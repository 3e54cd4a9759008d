//! The assembler's encoding and the programs run in the kernel (`BPF_PROG_TEST_RUN`;
//! skipped without the privilege).

use super::*;
use libbpf_sys as sys;
use std::os::fd::AsRawFd;

fn frame(ethertypes: &[u16]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    for (i, et) in ethertypes.iter().enumerate() {
        f.extend_from_slice(&et.to_be_bytes());
        if i + 1 < ethertypes.len() {
            f.extend_from_slice(&[0x00, 0x64]); // VLAN TCI
        }
    }
    f.resize(64, 0xab);
    f
}

#[test]
fn encoding_of_known_instructions() {
    let mut a = Asm::default();
    a.mov64_reg(Reg::R6, Reg::R1).ldx_h(Reg::R5, Reg::R2, 12).ld_map_fd(Reg::R1, 7).exit();
    let v = a.finish();
    assert_eq!(v[0], Insn { code: 0xbf, regs: 0x16, off: 0, imm: 0 });
    assert_eq!(v[1], Insn { code: 0x69, regs: 0x25, off: 12, imm: 0 });
    assert_eq!(v[2], Insn { code: 0x18, regs: 0x11, off: 0, imm: 7 });
    assert_eq!(v[3], Insn { code: 0, regs: 0, off: 0, imm: 0 });
    assert_eq!(v[4], Insn { code: 0x95, regs: 0, off: 0, imm: 0 });
}

#[test]
fn jump_offsets_resolve_forward() {
    let mut a = Asm::default();
    a.ja("end").mov64_imm(Reg::R0, 1).label("end").exit();
    assert_eq!(a.finish()[0].off, 1);
}

/// Loads the real program into the kernel and runs it over frames.
/// Skips (passes) when not privileged.
#[test]
fn mpls_program_classifies() {
    let map = match create_map(sys::BPF_MAP_TYPE_XSKMAP, "xsks_map", 4, 4, 4) {
        Ok(m) => m,
        Err(e) => {
            crate::testkit::skip("io::xdp::mpls_program_classifies", &format!("cannot create an XSKMAP ({e})"));
            return;
        }
    };
    // empty XSKMAP + miss_action DROP => "would redirect" shows up as DROP
    let prog = load_xdp_program("t_mpls", &mpls_redirect_program(map.as_raw_fd(), XDP_DROP))
        .expect("verifier accepts the program");
    let act = |ets: &[u16]| test_run(prog.as_raw_fd(), &frame(ets)).expect("test_run");
    assert_eq!(act(&[0x8847]), XDP_DROP as u32, "MPLS -> redirect");
    assert_eq!(act(&[0x8100, 0x8847]), XDP_DROP as u32, "VLAN+MPLS -> redirect");
    assert_eq!(act(&[0x88a8, 0x8100, 0x8847]), XDP_DROP as u32, "QinQ+MPLS -> redirect");
    assert_eq!(act(&[0x0800]), XDP_PASS as u32, "IPv4 -> pass");
    assert_eq!(act(&[0x0806]), XDP_PASS as u32, "ARP -> pass");
    assert_eq!(act(&[0x8100, 0x0800]), XDP_PASS as u32, "VLAN+IPv4 -> pass");
    assert_eq!(act(&[0x8100, 0x8100, 0x8100, 0x8847]), XDP_PASS as u32, "3 tags -> pass");
    assert_eq!(act(&[0x8848]), XDP_PASS as u32, "MPLS multicast -> pass");
    // Truncated inside the tag: a VLAN header whose inner ethertype is cut off (16
    // bytes, above the kernel's 14-byte test-run minimum, so the program runs and
    // its bounds check must pass the frame to the kernel).
    let short = &frame(&[0x8100, 0x8847])[..16];
    assert_eq!(test_run(prog.as_raw_fd(), short).expect("test_run"), XDP_PASS as u32, "truncated tag -> pass");
    let short = &frame(&[0x8100, 0x8847])[..18];
    assert_eq!(
        test_run(prog.as_raw_fd(), short).expect("test_run"),
        XDP_DROP as u32,
        "tag + MPLS ethertype -> redirect"
    );
    // production variant (miss = PASS) also loads
    load_xdp_program("t_mpls2", &mpls_redirect_program(map.as_raw_fd(), XDP_PASS)).expect("loads");
}

#[test]
fn sink_program_counts() {
    let map = match create_map(sys::BPF_MAP_TYPE_PERCPU_ARRAY, "t_counts", 4, 8, 2) {
        Ok(m) => m,
        Err(e) => {
            crate::testkit::skip("io::xdp::sink_program_counts", &format!("cannot create a map ({e})"));
            return;
        }
    };
    let prog = load_xdp_program("t_sink", &count_drop_program(map.as_raw_fd())).expect("verifier");
    assert_eq!(test_run(prog.as_raw_fd(), &frame(&[0x8847])).unwrap(), XDP_DROP as u32);
    assert_eq!(test_run(prog.as_raw_fd(), &frame(&[0x0800])).unwrap(), XDP_DROP as u32);
    assert_eq!(test_run(prog.as_raw_fd(), &frame(&[0x0806])).unwrap(), XDP_PASS as u32);
    assert_eq!(test_run(prog.as_raw_fd(), &frame(&[0x86dd])).unwrap(), XDP_PASS as u32);
}

/// The lab's reference forwarder rewrites both MACs and redirects (and loads).
#[test]
fn redirect_reference_rewrites_and_redirects() {
    let devmap = match create_map(sys::BPF_MAP_TYPE_DEVMAP, "t_redir", 4, 4, 1) {
        Ok(m) => m,
        Err(e) => {
            crate::testkit::skip("io::xdp::redirect_reference_rewrites_and_redirects", &format!("no map ({e})"));
            return;
        }
    };
    map_update(&devmap, &0u32.to_ne_bytes(), &ifindex("lo").unwrap().to_ne_bytes()).unwrap();
    let (dst, src) = ([2, 0, 0, 0, 0, 0x0a], [2, 0, 0, 0, 0x0c, 0x0a]);
    let prog = load_xdp_program("t_redir", &redirect_rewrite_program(devmap.as_raw_fd(), dst, src)).unwrap();
    let mut f = vec![9u8; 6];
    f.extend_from_slice(&[8; 6]);
    f.extend_from_slice(&[0x88, 0x47, 0x00, 0x06, 0x41, 0x40]);
    f.extend_from_slice(&[0x45; 30]);
    let (act, out) = test_run_out(prog.as_raw_fd(), &f).unwrap();
    assert_eq!(act as i32, XDP_REDIRECT);
    assert_eq!((&out[..6], &out[6..12], &out[12..]), (&dst[..], &src[..], &f[12..]));
}

//! The programs other than the offload: the MPLS-only redirect (`popgo run`), the
//! lab's count-and-drop sink and its in-kernel forwarding reference.

use std::os::fd::RawFd;

use libbpf_sys as sys;

use super::asm::*;
use crate::wire::ethernet::{ETHERTYPE_OFFSET, ETH_HDR_BYTES, MACS_BYTES};

/// The L2 parse every MPLS program starts with: `r6 = ctx`, `r2 = data`, `r3 =
/// data_end`, then the Ethernet header and up to two 802.1Q / 802.1ad tags, each
/// bounds-checked before its ethertype is read (as `wire::ethernet::Frame` parses).
/// MPLS unicast after no tag jumps to `mpls_at[0]`, after one tag to `mpls_at[1]`;
/// after two tags the code assembled next runs. Anything else (another ethertype, a
/// third tag, a frame shorter than the header it announces) jumps to `not_mpls`.
/// Clobbers r4 and r5; defines the labels `vlan1` and `vlan2`.
pub fn parse_l2_mpls(a: &mut Asm, mpls_at: [&'static str; 2], not_mpls: &'static str) {
    use Reg::*;
    a.mov64_reg(R6, R1)
        .ldx_w(R2, R6, XDP_MD_DATA)
        .ldx_w(R3, R6, XDP_MD_DATA_END)
        .mov64_reg(R4, R2)
        .add64_imm(R4, imm(l2_bytes(0)))
        .jgt_reg(R4, R3, not_mpls)
        .ldx_h(R5, R2, off(ethertype_offset(0)))
        .jeq_imm(R5, ETH_P_MPLS_UC, mpls_at[0])
        .jeq_imm(R5, ETH_P_8021Q, "vlan1")
        .jne_imm(R5, ETH_P_8021AD, not_mpls)
        .label("vlan1")
        .mov64_reg(R4, R2)
        .add64_imm(R4, imm(l2_bytes(1)))
        .jgt_reg(R4, R3, not_mpls)
        .ldx_h(R5, R2, off(ethertype_offset(1)))
        .jeq_imm(R5, ETH_P_MPLS_UC, mpls_at[1])
        .jeq_imm(R5, ETH_P_8021Q, "vlan2")
        .jne_imm(R5, ETH_P_8021AD, not_mpls)
        .label("vlan2")
        .mov64_reg(R4, R2)
        .add64_imm(R4, imm(l2_bytes(2)))
        .jgt_reg(R4, R3, not_mpls)
        .ldx_h(R5, R2, off(ethertype_offset(2)))
        .jne_imm(R5, ETH_P_MPLS_UC, not_mpls);
}

/// The MPLS-only redirect program.
///
/// ```text
///   r6 = r1                       ; ctx
///   r2 = *(u32*)(r6+0)            ; data
///   r3 = *(u32*)(r6+4)            ; data_end
///   r4 = r2 ; r4 += 14
///   if r4 > r3 goto pass          ; need a full Ethernet header
///   r5 = *(u16*)(r2+12)           ; ethertype (wire order)
///   if r5 == 0x8847 goto redirect
///   if r5 == 0x8100 goto vlan1
///   if r5 != 0x88a8 goto pass
/// vlan1:
///   r4 = r2 ; r4 += 18
///   if r4 > r3 goto pass
///   r5 = *(u16*)(r2+16)           ; ethertype after one tag
///   if r5 == 0x8847 goto redirect
///   if r5 == 0x8100 goto vlan2
///   if r5 != 0x88a8 goto pass
/// vlan2:
///   r4 = r2 ; r4 += 22
///   if r4 > r3 goto pass
///   r5 = *(u16*)(r2+20)           ; ethertype after two tags
///   if r5 != 0x8847 goto pass
/// redirect:
///   r2 = *(u32*)(r6+16)           ; ctx->rx_queue_index
///   r1 = map xsks_map             ; ld_imm64 pseudo map fd
///   r3 = miss_action              ; XDP_PASS: returned if no socket at that key
///   call bpf_redirect_map         ; helper 51
///   exit
/// pass:
///   r0 = XDP_PASS
///   exit
/// ```
///
/// `miss_action` is what `bpf_redirect_map` returns when the XSKMAP has no
/// socket at `rx_queue_index` (the low bits of its `flags` argument, since
/// kernel 5.3). Production uses `XDP_PASS`; the unit test uses `XDP_DROP` so that
/// "would redirect" and "pass" are distinguishable under `BPF_PROG_TEST_RUN`.
pub fn mpls_redirect_program(xsks_map_fd: RawFd, miss_action: i32) -> Vec<Insn> {
    use Reg::*;
    let mut a = Asm::default();
    parse_l2_mpls(&mut a, ["redirect", "redirect"], "pass");
    a.label("redirect")
        .ldx_w(R2, R6, XDP_MD_RX_QUEUE_INDEX)
        .ld_map_fd(R1, xsks_map_fd)
        .mov64_imm(R3, miss_action)
        .call(sys::BPF_FUNC_redirect_map)
        .exit()
        .label("pass")
        .mov64_imm(R0, XDP_PASS)
        .exit();
    a.finish()
}

/// Lab sink: count and drop every frame except ARP and IPv6 (those pass, so
/// neighbour discovery keeps working). Per-CPU array `counts`:
/// key 0 = non-MPLS frames (what the forwarder emits after popping the
/// bottom-of-stack label), key 1 = frames still carrying ethertype 0x8847.
///
/// ```text
///   r2 = *(u32*)(r1+0) ; r3 = *(u32*)(r1+4)
///   r4 = r2 ; r4 += 14 ; if r4 > r3 goto pass
///   r5 = *(u16*)(r2+12)
///   if r5 == 0x0806 goto pass ; if r5 == 0x86dd goto pass
///   *(u32*)(r10-4) = 0
///   if r5 != 0x8847 goto lookup
///   *(u32*)(r10-4) = 1
/// lookup:
///   r2 = r10 ; r2 += -4 ; r1 = map counts ; call bpf_map_lookup_elem
///   if r0 == 0 goto drop
///   r1 = *(u64*)(r0+0) ; r1 += 1 ; *(u64*)(r0+0) = r1   ; per-CPU: no atomics
/// drop:  r0 = XDP_DROP ; exit
/// pass:  r0 = XDP_PASS ; exit
/// ```
pub fn count_drop_program(counts_map_fd: RawFd) -> Vec<Insn> {
    use Reg::*;
    let mut a = Asm::default();
    a.ldx_w(R2, R1, XDP_MD_DATA)
        .ldx_w(R3, R1, XDP_MD_DATA_END)
        .mov64_reg(R4, R2)
        .add64_imm(R4, imm(ETH_HDR_BYTES))
        .jgt_reg(R4, R3, "pass")
        .ldx_h(R5, R2, off(ETHERTYPE_OFFSET))
        .jeq_imm(R5, ETH_P_ARP, "pass")
        .jeq_imm(R5, ETH_P_IPV6, "pass")
        .st_w(R10, -4, 0)
        .jne_imm(R5, ETH_P_MPLS_UC, "lookup")
        .st_w(R10, -4, 1)
        .label("lookup")
        .mov64_reg(R2, R10)
        .add64_imm(R2, -4)
        .ld_map_fd(R1, counts_map_fd)
        .call(sys::BPF_FUNC_map_lookup_elem)
        .jeq_imm(R0, 0, "drop")
        .ldx_dw(R1, R0, 0)
        .add64_imm(R1, 1)
        .stx_dw(R0, 0, R1)
        .label("drop")
        .mov64_imm(R0, XDP_DROP)
        .exit()
        .label("pass")
        .mov64_imm(R0, XDP_PASS)
        .exit();
    a.finish()
}

/// The lab's reference for in-kernel forwarding: rewrite both MACs and redirect every
/// frame of at least 14 bytes through devmap key 0 (`popgo-lab redirect`).
pub fn redirect_rewrite_program(devmap: RawFd, dst: [u8; 6], src: [u8; 6]) -> Vec<Insn> {
    use Reg::*;
    let mut a = Asm::default();
    let mut macs = [0u8; MACS_BYTES];
    macs[..6].copy_from_slice(&dst);
    macs[6..].copy_from_slice(&src);
    a.ldx_w(R2, R1, XDP_MD_DATA)
        .ldx_w(R3, R1, XDP_MD_DATA_END)
        .mov64_reg(R4, R2)
        .add64_imm(R4, imm(ETH_HDR_BYTES))
        .jgt_reg(R4, R3, "pass");
    for i in 0..3 {
        let w = i32::from_le_bytes([macs[4 * i], macs[4 * i + 1], macs[4 * i + 2], macs[4 * i + 3]]);
        a.st_w(R2, (4 * i) as i16, w);
    }
    a.ld_map_fd(R1, devmap)
        .mov64_imm(R2, 0)
        .mov64_imm(R3, 0)
        .call(sys::BPF_FUNC_redirect_map)
        .exit()
        .label("pass")
        .mov64_imm(R0, XDP_PASS)
        .exit();
    a.finish()
}

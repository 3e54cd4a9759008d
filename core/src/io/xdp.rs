//! XDP side of the AF_XDP data path: a hand-assembled eBPF program that
//! redirects **only MPLS** (ethertype 0x8847, optionally behind one or two
//! 802.1Q / 802.1ad tags) to the AF_XDP socket bound on the receiving queue and
//! `XDP_PASS`es everything else (ARP, IPv4/IPv6, BGP, ssh stay with the kernel).
//! Also: the XSKMAP it redirects into, attach/detach to an interface, and a
//! tiny count-and-drop "sink" program used by the lab to count frames.
//!
//! Setup-time code only: nothing here runs per packet in user space. Used by
//! `popgo run` (redirect program) and the lab tool `popgo-lab` (sink program).
//!
//! Why hand-assembled: it avoids a clang/LLVM BPF toolchain at build time and an
//! ELF object at run time. The program is ~30 instructions; the listing is in
//! [`mpls_redirect_program`] (`popgo-lab dump-prog` prints it).
//!
//! # Invariants
//! - Every kernel object is owned through an `OwnedFd` (map, program). The
//!   kernel keeps its own references: an attached program keeps itself and its
//!   map alive even after our fds are closed, which is why [`XdpAttachment`]
//!   detaches explicitly in `Drop`.
//! - How AF_XDP sockets get into the XSKMAP: the `afxdp` 0.4 crate always lets
//!   libbpf (0.3, via libbpf-sys 0.3.0-1) run its "setup XDP program" step
//!   (`libbpf_flags` is hard-wired to 0, so `XSK_LIBBPF_FLAGS__INHIBIT_PROG_LOAD`
//!   cannot be passed). That step first asks the kernel which program is
//!   attached to the interface; if one is, libbpf does NOT load its own
//!   redirect-everything program: it looks for a map called `xsks_map` among
//!   the attached program's maps and inserts the new socket's fd at key
//!   `queue_id`. On `xsk_socket__delete` it deletes that key again. So the
//!   contract is: **attach this program (its map is named `xsks_map`) before
//!   creating any afxdp `Socket` on that interface**. If the attach step is
//!   skipped, libbpf silently installs its own program, which steals ARP/ssh/BGP.
//! - Teardown order: sockets first (libbpf removes their map entries), then
//!   `XdpAttachment` (detaches the program), then the map/program fds.
//! - One program + one XSKMAP per interface: the key is `rx_queue_index`, which
//!   is 0 on every veth, so a map shared by two interfaces would collide.
//! - [`MmapArray`] (the XDP offload's tables) maps a `BPF_F_MMAPABLE` array into this
//!   process: the mapping is unmapped in `Drop` before the map fd closes, and no
//!   reference into it outlives the struct. The kernel side of the mapping stays valid
//!   while any loaded program still holds the map.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use libbpf_sys as sys;

// ---------------------------------------------------------------------------
// A minimal eBPF assembler
// ---------------------------------------------------------------------------

/// One eBPF instruction, laid out exactly like the kernel's `struct bpf_insn`
/// (`code:u8, dst_reg:4 | src_reg:4, off:s16, imm:s32`, little-endian host).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    /// low nibble = dst register, high nibble = src register
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}
// `Insn` is handed to libbpf as `*const bpf_insn`; both must be 8 bytes.
const _: () = assert!(std::mem::size_of::<Insn>() == std::mem::size_of::<sys::bpf_insn>());
const _: () = assert!(std::mem::size_of::<Insn>() == 8);

// Opcode pieces (include/uapi/linux/bpf.h, bpf_common.h).
const BPF_LD: u8 = 0x00;
const BPF_LDX: u8 = 0x01;
const BPF_ST: u8 = 0x02;
const BPF_STX: u8 = 0x03;
const BPF_ALU: u8 = 0x04;
const BPF_JMP: u8 = 0x05;
const BPF_ALU64: u8 = 0x07;
const BPF_W: u8 = 0x00;
const BPF_H: u8 = 0x08;
const BPF_B: u8 = 0x10;
const BPF_DW: u8 = 0x18;
const BPF_IMM: u8 = 0x00;
const BPF_MEM: u8 = 0x60;
const BPF_K: u8 = 0x00;
const BPF_X: u8 = 0x08;
const BPF_ADD: u8 = 0x00;
const BPF_SUB: u8 = 0x10;
const BPF_OR: u8 = 0x40;
const BPF_AND: u8 = 0x50;
const BPF_LSH: u8 = 0x60;
const BPF_RSH: u8 = 0x70;
const BPF_XOR: u8 = 0xa0;
const BPF_MOV: u8 = 0xb0;
const BPF_END: u8 = 0xd0;
/// `BPF_END` source bit: convert to big-endian (a byte swap on this little-endian host).
const BPF_TO_BE: u8 = 0x08;
const BPF_JA: u8 = 0x00;
const BPF_JEQ: u8 = 0x10;
const BPF_JGT: u8 = 0x20;
const BPF_JGE: u8 = 0x30;
const BPF_JNE: u8 = 0x50;
const BPF_JLT: u8 = 0xa0;
const BPF_JLE: u8 = 0xb0;
const BPF_CALL: u8 = 0x80;
const BPF_EXIT: u8 = 0x90;
/// `src_reg` value of a 64-bit immediate load meaning "imm is a map fd".
const BPF_PSEUDO_MAP_FD: u8 = 1;

/// Registers. R0 = return value, R1-R5 = helper args (clobbered by calls),
/// R6-R9 callee-saved, R10 = read-only frame pointer.
#[derive(Clone, Copy, Debug)]
#[repr(u8)]
pub enum Reg {
    R0 = 0,
    R1,
    R2,
    R3,
    R4,
    R5,
    R6,
    R7,
    R8,
    R9,
    R10,
}

/// XDP actions (enum xdp_action).
pub const XDP_ABORTED: i32 = 0;
pub const XDP_DROP: i32 = 1;
pub const XDP_PASS: i32 = 2;
pub const XDP_TX: i32 = 3;
pub const XDP_REDIRECT: i32 = 4;

/// `struct xdp_md` field offsets (uapi, stable ABI).
pub(crate) const XDP_MD_DATA: i16 = 0;
pub(crate) const XDP_MD_DATA_END: i16 = 4;
pub(crate) const XDP_MD_RX_QUEUE_INDEX: i16 = 16;

/// Helper ids (`enum bpf_func_id`, uapi, stable) that libbpf-sys 0.3 predates.
pub(crate) const BPF_FUNC_XDP_GET_BUFF_LEN: u32 = 188;

/// Ethertypes as they appear when the two wire bytes are loaded with a
/// little-endian 16-bit load (`ldxh`): network order 0x8847 reads as 0x4788.
pub(crate) const fn wire_u16(ethertype: u16) -> i32 {
    ethertype.swap_bytes() as i32
}
pub(crate) const ETH_P_MPLS_UC: i32 = wire_u16(0x8847);
pub(crate) const ETH_P_8021Q: i32 = wire_u16(0x8100);
pub(crate) const ETH_P_8021AD: i32 = wire_u16(0x88a8);
const ETH_P_ARP: i32 = wire_u16(0x0806);
pub(crate) const ETH_P_IPV6: i32 = wire_u16(0x86dd);
pub(crate) const ETH_P_IP: i32 = wire_u16(0x0800);

/// Label-based assembler: jumps name a label; offsets are resolved by
/// [`Asm::finish`]. Small on purpose: only the forms the two programs use.
#[derive(Default)]
pub struct Asm {
    insns: Vec<Insn>,
    /// (instruction index, label) of jumps whose `off` is still unresolved
    fixups: Vec<(usize, &'static str)>,
    labels: Vec<(&'static str, usize)>,
}

impl Asm {
    fn raw(&mut self, code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> &mut Self {
        self.insns.push(Insn { code, regs: (dst as u8) | ((src as u8) << 4), off, imm });
        self
    }
    /// `dst = src` (64-bit)
    pub fn mov64_reg(&mut self, dst: Reg, src: Reg) -> &mut Self {
        self.raw(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0)
    }
    /// `dst = imm` (64-bit, imm sign-extended)
    pub fn mov64_imm(&mut self, dst: Reg, imm: i32) -> &mut Self {
        self.raw(BPF_ALU64 | BPF_MOV | BPF_K, dst, Reg::R0, 0, imm)
    }
    /// `dst += imm`
    pub fn add64_imm(&mut self, dst: Reg, imm: i32) -> &mut Self {
        self.raw(BPF_ALU64 | BPF_ADD | BPF_K, dst, Reg::R0, 0, imm)
    }
    /// `dst += src`
    pub fn add64_reg(&mut self, dst: Reg, src: Reg) -> &mut Self {
        self.raw(BPF_ALU64 | BPF_ADD | BPF_X, dst, src, 0, 0)
    }
    /// `dst -= src`
    pub fn sub64_reg(&mut self, dst: Reg, src: Reg) -> &mut Self {
        self.raw(BPF_ALU64 | BPF_SUB | BPF_X, dst, src, 0, 0)
    }
    /// `dst &= imm`
    pub fn and64_imm(&mut self, dst: Reg, imm: i32) -> &mut Self {
        self.raw(BPF_ALU64 | BPF_AND | BPF_K, dst, Reg::R0, 0, imm)
    }
    /// `dst |= src`
    pub fn or64_reg(&mut self, dst: Reg, src: Reg) -> &mut Self {
        self.raw(BPF_ALU64 | BPF_OR | BPF_X, dst, src, 0, 0)
    }
    /// `dst ^= imm`
    pub fn xor64_imm(&mut self, dst: Reg, imm: i32) -> &mut Self {
        self.raw(BPF_ALU64 | BPF_XOR | BPF_K, dst, Reg::R0, 0, imm)
    }
    /// `dst <<= imm`
    pub fn lsh64_imm(&mut self, dst: Reg, imm: i32) -> &mut Self {
        self.raw(BPF_ALU64 | BPF_LSH | BPF_K, dst, Reg::R0, 0, imm)
    }
    /// `dst >>= imm` (logical)
    pub fn rsh64_imm(&mut self, dst: Reg, imm: i32) -> &mut Self {
        self.raw(BPF_ALU64 | BPF_RSH | BPF_K, dst, Reg::R0, 0, imm)
    }
    /// `dst = be16(dst)` / `be32(dst)`: network to host order of the low `bits` bits
    /// (a byte swap here), the upper bits cleared.
    pub fn be(&mut self, dst: Reg, bits: i32) -> &mut Self {
        self.raw(BPF_ALU | BPF_END | BPF_TO_BE, dst, Reg::R0, 0, bits)
    }
    /// `dst = *(u8 *)(src + off)`
    pub fn ldx_b(&mut self, dst: Reg, src: Reg, off: i16) -> &mut Self {
        self.raw(BPF_LDX | BPF_MEM | BPF_B, dst, src, off, 0)
    }
    /// `*(u8 *)(dst + off) = src`
    pub fn stx_b(&mut self, dst: Reg, off: i16, src: Reg) -> &mut Self {
        self.raw(BPF_STX | BPF_MEM | BPF_B, dst, src, off, 0)
    }
    /// `*(u16 *)(dst + off) = src`
    pub fn stx_h(&mut self, dst: Reg, off: i16, src: Reg) -> &mut Self {
        self.raw(BPF_STX | BPF_MEM | BPF_H, dst, src, off, 0)
    }
    /// `*(u32 *)(dst + off) = src`
    pub fn stx_w(&mut self, dst: Reg, off: i16, src: Reg) -> &mut Self {
        self.raw(BPF_STX | BPF_MEM | BPF_W, dst, src, off, 0)
    }
    /// `*(u16 *)(dst + off) = imm`
    pub fn st_h(&mut self, dst: Reg, off: i16, imm: i32) -> &mut Self {
        self.raw(BPF_ST | BPF_MEM | BPF_H, dst, Reg::R0, off, imm)
    }
    /// `dst = *(u32 *)(src + off)`
    pub fn ldx_w(&mut self, dst: Reg, src: Reg, off: i16) -> &mut Self {
        self.raw(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0)
    }
    /// `dst = *(u16 *)(src + off)`
    pub fn ldx_h(&mut self, dst: Reg, src: Reg, off: i16) -> &mut Self {
        self.raw(BPF_LDX | BPF_MEM | BPF_H, dst, src, off, 0)
    }
    /// `dst = *(u64 *)(src + off)`
    pub fn ldx_dw(&mut self, dst: Reg, src: Reg, off: i16) -> &mut Self {
        self.raw(BPF_LDX | BPF_MEM | BPF_DW, dst, src, off, 0)
    }
    /// `*(u64 *)(dst + off) = src`
    pub fn stx_dw(&mut self, dst: Reg, off: i16, src: Reg) -> &mut Self {
        self.raw(BPF_STX | BPF_MEM | BPF_DW, dst, src, off, 0)
    }
    /// `*(u32 *)(dst + off) = imm`
    pub fn st_w(&mut self, dst: Reg, off: i16, imm: i32) -> &mut Self {
        self.raw(BPF_ST | BPF_MEM | BPF_W, dst, Reg::R0, off, imm)
    }
    /// `dst = map_fd` as a pseudo 64-bit immediate (two instruction slots);
    /// the verifier replaces it by the map pointer.
    pub fn ld_map_fd(&mut self, dst: Reg, map_fd: RawFd) -> &mut Self {
        self.raw(BPF_LD | BPF_DW | BPF_IMM, dst, Reg::R0, 0, map_fd);
        self.insns.last_mut().expect("just pushed").regs |= BPF_PSEUDO_MAP_FD << 4;
        self.raw(0, Reg::R0, Reg::R0, 0, 0)
    }
    fn jmp(&mut self, code: u8, dst: Reg, src: Reg, imm: i32, label: &'static str) -> &mut Self {
        self.fixups.push((self.insns.len(), label));
        self.raw(code, dst, src, 0, imm)
    }
    /// `if dst > src goto label` (unsigned)
    pub fn jgt_reg(&mut self, dst: Reg, src: Reg, label: &'static str) -> &mut Self {
        self.jmp(BPF_JMP | BPF_JGT | BPF_X, dst, src, 0, label)
    }
    /// `if dst == imm goto label`
    pub fn jeq_imm(&mut self, dst: Reg, imm: i32, label: &'static str) -> &mut Self {
        self.jmp(BPF_JMP | BPF_JEQ | BPF_K, dst, Reg::R0, imm, label)
    }
    /// `if dst != imm goto label`
    pub fn jne_imm(&mut self, dst: Reg, imm: i32, label: &'static str) -> &mut Self {
        self.jmp(BPF_JMP | BPF_JNE | BPF_K, dst, Reg::R0, imm, label)
    }
    /// `if dst > imm goto label` (unsigned)
    pub fn jgt_imm(&mut self, dst: Reg, imm: i32, label: &'static str) -> &mut Self {
        self.jmp(BPF_JMP | BPF_JGT | BPF_K, dst, Reg::R0, imm, label)
    }
    /// `if dst >= imm goto label` (unsigned)
    pub fn jge_imm(&mut self, dst: Reg, imm: i32, label: &'static str) -> &mut Self {
        self.jmp(BPF_JMP | BPF_JGE | BPF_K, dst, Reg::R0, imm, label)
    }
    /// `if dst < imm goto label` (unsigned)
    pub fn jlt_imm(&mut self, dst: Reg, imm: i32, label: &'static str) -> &mut Self {
        self.jmp(BPF_JMP | BPF_JLT | BPF_K, dst, Reg::R0, imm, label)
    }
    /// `if dst <= imm goto label` (unsigned)
    pub fn jle_imm(&mut self, dst: Reg, imm: i32, label: &'static str) -> &mut Self {
        self.jmp(BPF_JMP | BPF_JLE | BPF_K, dst, Reg::R0, imm, label)
    }
    /// `goto label`
    pub fn ja(&mut self, label: &'static str) -> &mut Self {
        self.jmp(BPF_JMP | BPF_JA, Reg::R0, Reg::R0, 0, label)
    }
    /// `call helper_id`
    pub fn call(&mut self, helper: u32) -> &mut Self {
        self.raw(BPF_JMP | BPF_CALL, Reg::R0, Reg::R0, 0, helper as i32)
    }
    /// `exit` (returns R0)
    pub fn exit(&mut self) -> &mut Self {
        self.raw(BPF_JMP | BPF_EXIT, Reg::R0, Reg::R0, 0, 0)
    }
    /// Define `label` at the next instruction.
    pub fn label(&mut self, label: &'static str) -> &mut Self {
        assert!(!self.labels.iter().any(|(l, _)| *l == label), "duplicate label {label}");
        self.labels.push((label, self.insns.len()));
        self
    }
    /// Resolve jump offsets (relative to the instruction after the jump).
    /// Panics on an unknown label: that is a bug in the program text.
    pub fn finish(mut self) -> Vec<Insn> {
        for &(at, label) in &self.fixups {
            let target =
                self.labels.iter().find(|(l, _)| *l == label).unwrap_or_else(|| panic!("undefined label {label}")).1;
            let off = target as isize - (at as isize + 1);
            self.insns[at].off = i16::try_from(off).expect("jump too far");
        }
        self.insns
    }
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
    a.mov64_reg(R6, R1)
        .ldx_w(R2, R6, XDP_MD_DATA)
        .ldx_w(R3, R6, XDP_MD_DATA_END)
        .mov64_reg(R4, R2)
        .add64_imm(R4, 14)
        .jgt_reg(R4, R3, "pass")
        .ldx_h(R5, R2, 12)
        .jeq_imm(R5, ETH_P_MPLS_UC, "redirect")
        .jeq_imm(R5, ETH_P_8021Q, "vlan1")
        .jne_imm(R5, ETH_P_8021AD, "pass")
        .label("vlan1")
        .mov64_reg(R4, R2)
        .add64_imm(R4, 18)
        .jgt_reg(R4, R3, "pass")
        .ldx_h(R5, R2, 16)
        .jeq_imm(R5, ETH_P_MPLS_UC, "redirect")
        .jeq_imm(R5, ETH_P_8021Q, "vlan2")
        .jne_imm(R5, ETH_P_8021AD, "pass")
        .label("vlan2")
        .mov64_reg(R4, R2)
        .add64_imm(R4, 22)
        .jgt_reg(R4, R3, "pass")
        .ldx_h(R5, R2, 20)
        .jne_imm(R5, ETH_P_MPLS_UC, "pass")
        .label("redirect")
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
        .add64_imm(R4, 14)
        .jgt_reg(R4, R3, "pass")
        .ldx_h(R5, R2, 12)
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

/// Render a listing (used by `popgo-lab dump-prog`).
pub fn listing(insns: &[Insn]) -> String {
    let mut s = String::new();
    for (i, x) in insns.iter().enumerate() {
        s.push_str(&format!(
            "{i:3}: code=0x{:02x} dst=r{} src=r{} off={:4} imm={}\n",
            x.code,
            x.regs & 0xf,
            x.regs >> 4,
            x.off,
            x.imm
        ));
    }
    s
}

// ---------------------------------------------------------------------------
// Kernel objects: maps, programs, attachment
// ---------------------------------------------------------------------------

/// libbpf 0.3 returns `-1` with `errno` set (bpf(2) style) for the map/prog
/// calls and `-errno` for the netlink ones. Normalize both.
fn check_fd(ret: i32, what: &str) -> io::Result<OwnedFd> {
    if ret < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    // SAFETY: ret >= 0 is a fresh fd returned by the bpf(2) syscall for us and
    // owned by nobody else; OwnedFd closes it exactly once.
    Ok(unsafe { OwnedFd::from_raw_fd(ret) })
}

fn check_neg_errno(ret: i32, what: &str) -> io::Result<()> {
    if ret < 0 {
        let e = io::Error::from_raw_os_error(-ret);
        return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(())
}

/// Create a BPF map with a kernel-visible name (libbpf looks the XSKMAP up by
/// the name `xsks_map`).
pub fn create_map(
    map_type: sys::bpf_map_type,
    name: &str,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
) -> io::Result<OwnedFd> {
    let cname = CString::new(name).expect("map name has no NUL");
    // SAFETY: cname is a valid NUL-terminated string that outlives the call;
    // the other arguments are plain integers.
    let ret = unsafe {
        sys::bpf_create_map_name(map_type, cname.as_ptr(), key_size as i32, value_size as i32, max_entries as i32, 0)
    };
    check_fd(ret, "bpf_create_map_name")
}

/// Load an XDP program. On failure the verifier log is included in the error.
pub fn load_xdp_program(name: &str, insns: &[Insn]) -> io::Result<OwnedFd> {
    let cname = CString::new(name).expect("prog name has no NUL");
    let license = CString::new("GPL").expect("static");
    let mut log = vec![0u8; 64 * 1024];
    let attr = sys::bpf_load_program_attr {
        prog_type: sys::BPF_PROG_TYPE_XDP,
        name: cname.as_ptr(),
        insns: insns.as_ptr().cast::<sys::bpf_insn>(),
        insns_cnt: insns.len() as sys::size_t,
        license: license.as_ptr(),
        log_level: 0, // libbpf retries with log_level 1 on failure when a buffer is given
        ..Default::default()
    };
    // SAFETY: attr points at insns/name/license that all outlive the call;
    // `Insn` has the layout of `bpf_insn` (static asserts above); log is a
    // writable buffer of the length we pass.
    let ret = unsafe { sys::bpf_load_program_xattr(&attr, log.as_mut_ptr().cast(), log.len() as sys::size_t) };
    if ret < 0 {
        let e = io::Error::last_os_error();
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        return Err(io::Error::new(
            e.kind(),
            format!("bpf_load_program({name}): {e}\nverifier log:\n{}", String::from_utf8_lossy(&log[..end])),
        ));
    }
    check_fd(ret, "bpf_load_program_xattr")
}

/// Like [`create_map`], with `map_flags` (e.g. `BPF_F_MMAPABLE`).
pub fn create_map_flags(
    map_type: sys::bpf_map_type,
    name: &str,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
) -> io::Result<OwnedFd> {
    let cname = CString::new(name).expect("map name has no NUL");
    let attr = sys::bpf_create_map_attr {
        name: cname.as_ptr(),
        map_type,
        map_flags,
        key_size,
        value_size,
        max_entries,
        ..Default::default()
    };
    // SAFETY: attr is fully initialized and points at cname, which outlives the call.
    let ret = unsafe { sys::bpf_create_map_xattr(&attr) };
    check_fd(ret, "bpf_create_map_xattr")
}

/// Writes one element of a map (`BPF_ANY`). `key` and `value` must be the map's key
/// and value sizes.
pub fn map_update(map: &OwnedFd, key: &[u8], value: &[u8]) -> io::Result<()> {
    // SAFETY: both buffers are valid for the sizes the map was created with (the
    // caller's contract above; the kernel reads exactly key_size and value_size bytes)
    // and outlive the call.
    let ret = unsafe { sys::bpf_map_update_elem(map.as_raw_fd(), key.as_ptr().cast(), value.as_ptr().cast(), 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Number of possible CPUs (the number of slots a per-CPU map value has).
pub fn possible_cpus() -> io::Result<usize> {
    // SAFETY: no arguments; reads /sys/devices/system/cpu/possible.
    let n = unsafe { sys::libbpf_num_possible_cpus() };
    if n <= 0 {
        return Err(io::Error::other("libbpf_num_possible_cpus failed"));
    }
    Ok(n as usize)
}

/// Waits until every XDP program run that had started when this was called has
/// returned: an RCU grace period. XDP programs run inside RCU read-side sections, and
/// `membarrier(MEMBARRIER_CMD_GLOBAL)` is documented to wait for one (`man 2
/// membarrier`: "all running threads ... pass through a state where ... [it] calls
/// synchronize_rcu()" in the kernel). Returns false if the kernel refused (nohz_full);
/// the caller then falls back to a generous sleep.
pub fn wait_for_running_programs() -> bool {
    const MEMBARRIER_CMD_GLOBAL: libc::c_long = 1;
    // SAFETY: membarrier takes plain integers and touches no memory of ours.
    let ret =
        unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0 as libc::c_long, 0 as libc::c_long) };
    ret == 0
}

/// A BPF array map created with `BPF_F_MMAPABLE` and mapped into this process, so
/// that user space can update 32-bit words with single atomic stores that an XDP
/// program's 32-bit load sees whole (a `bpf_map_update_elem` copies the value with
/// `memcpy`, which may tear).
///
/// The kernel stores element `i` at byte `i * round_up(value_size, 8)` (the stride of
/// its inlined array lookup), so a 4-byte value takes 8 bytes of the mapping.
///
/// Invariants: the mapping (`len` bytes, page-aligned, shared with the kernel) is
/// created in [`MmapArray::create`] and unmapped in `Drop` before `fd` closes; only
/// this struct has its address. The kernel keeps the map alive while a program uses
/// it, so the memory stays valid for as long as this struct exists.
pub struct MmapArray {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
    value_size: usize,
    /// Bytes between two elements.
    stride: usize,
    entries: usize,
    fd: OwnedFd,
}

// SAFETY: the mapping is owned by this struct alone (no other Rust value holds its
// address) and is plain shared memory, valid on any thread; moving the owner between
// threads moves the only handle. Not Sync: `write_value` relies on one writer.
unsafe impl Send for MmapArray {}

impl MmapArray {
    /// Creates an array of `entries` values of `value_size` bytes (a multiple of 4)
    /// and maps it read-write. Every value starts zeroed.
    pub fn create(name: &str, value_size: u32, entries: u32) -> io::Result<MmapArray> {
        assert!(value_size.is_multiple_of(4) && value_size > 0, "value size {value_size} is not a multiple of 4");
        let fd = create_map_flags(sys::BPF_MAP_TYPE_ARRAY, name, 4, value_size, entries, sys::BPF_F_MMAPABLE)?;
        // SAFETY: no arguments.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        let stride = (value_size as usize).next_multiple_of(8);
        let bytes = stride * entries as usize;
        let len = bytes.div_ceil(page) * page;
        // SAFETY: a fresh shared mapping of the map's data at offset 0 (what the kernel
        // offers for BPF_F_MMAPABLE arrays); fd is valid; no existing memory is touched.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("mmap of BPF map {name}: {e}")));
        }
        let ptr = std::ptr::NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(MmapArray { ptr, len, value_size: value_size as usize, stride, entries: entries as usize, fd })
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    pub fn entries(&self) -> usize {
        self.entries
    }

    fn word(&self, index: usize) -> &std::sync::atomic::AtomicU32 {
        assert!(index < self.stride * self.entries / 4, "word {index} outside the map");
        // SAFETY: index < len / 4 (checked above), so the offset stays inside the mapping.
        let p = unsafe { self.ptr.as_ptr().add(index * 4) };
        // SAFETY: p is inside the mapping, which is page-aligned, so 4-byte aligned; it
        // lives as long as &self. The kernel side only reads or writes it with aligned
        // 32-bit accesses.
        unsafe { std::sync::atomic::AtomicU32::from_ptr(p.cast()) }
    }

    /// Atomically stores the first 32-bit word of element `slot` (Release: everything
    /// written before, e.g. the adjacency a label entry points at, is visible first).
    pub fn store_u32(&self, slot: usize, v: u32) {
        assert!(slot < self.entries, "element {slot} outside the map");
        self.word(slot * self.stride / 4).store(v, std::sync::atomic::Ordering::Release);
    }

    /// Loads the first 32-bit word of element `slot`.
    pub fn load_u32(&self, slot: usize) -> u32 {
        assert!(slot < self.entries, "element {slot} outside the map");
        self.word(slot * self.stride / 4).load(std::sync::atomic::Ordering::Acquire)
    }

    /// Writes value `slot` with 32-bit stores. A reader running at the same time could
    /// see a mix of old and new words: callers write only slots no program can reach
    /// (see `io::offload`, the update order).
    pub fn write_value(&mut self, slot: usize, value: &[u8]) {
        assert!(slot < self.entries && value.len() == self.value_size, "slot {slot} or value size");
        for (i, w) in value.chunks_exact(4).enumerate() {
            let v = u32::from_ne_bytes([w[0], w[1], w[2], w[3]]);
            self.word(slot * self.stride / 4 + i).store(v, std::sync::atomic::Ordering::Relaxed);
        }
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
    }

    /// Reads value `slot`.
    pub fn read_value(&self, slot: usize, out: &mut [u8]) {
        assert!(slot < self.entries && out.len() == self.value_size, "slot {slot} or value size");
        for (i, w) in out.chunks_exact_mut(4).enumerate() {
            let v = self.word(slot * self.stride / 4 + i).load(std::sync::atomic::Ordering::Acquire);
            w.copy_from_slice(&v.to_ne_bytes());
        }
    }
}

impl Drop for MmapArray {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly the mapping made in `create`, unmapped once here;
        // no reference into it outlives &self.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// A per-CPU array map of `u64` counters, read summed over the CPUs.
pub struct PerCpuCounters {
    fd: OwnedFd,
    words: usize,
    ncpus: usize,
}

impl PerCpuCounters {
    /// One element (key 0) of `words` u64 counters per CPU, zeroed.
    pub fn create(name: &str, words: usize) -> io::Result<PerCpuCounters> {
        let fd = create_map(sys::BPF_MAP_TYPE_PERCPU_ARRAY, name, 4, (words * 8) as u32, 1)?;
        Ok(PerCpuCounters { fd, words, ncpus: possible_cpus()? })
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// The counters summed over every CPU.
    pub fn read(&self) -> io::Result<Vec<u64>> {
        let key = 0u32;
        let mut vals = vec![0u64; self.words * self.ncpus];
        // SAFETY: vals holds ncpus * words * 8 bytes, what the kernel writes for a
        // per-CPU map whose value size (a multiple of 8) is words * 8; key outlives it.
        let ret = unsafe {
            sys::bpf_map_lookup_elem(self.fd.as_raw_fd(), (&key as *const u32).cast(), vals.as_mut_ptr().cast())
        };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut sum = vec![0u64; self.words];
        for cpu in vals.chunks_exact(self.words) {
            for (s, v) in sum.iter_mut().zip(cpu) {
                *s += v;
            }
        }
        Ok(sum)
    }
}

pub fn ifindex(ifname: &str) -> io::Result<u32> {
    let c = CString::new(ifname).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: c is a valid NUL-terminated string for the duration of the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("if_nametoindex({ifname}): {e}")));
    }
    Ok(idx)
}

/// XDP attach mode actually obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpMode {
    /// native / driver mode (`XDP_FLAGS_DRV_MODE`); veth supports it
    Native,
    /// generic / SKB mode (`XDP_FLAGS_SKB_MODE`), the fallback
    Generic,
}

impl XdpMode {
    fn flag(self) -> u32 {
        match self {
            XdpMode::Native => sys::XDP_FLAGS_DRV_MODE,
            XdpMode::Generic => sys::XDP_FLAGS_SKB_MODE,
        }
    }
}

/// Query what is attached (ids are 0 when nothing is).
pub fn query(ifindex: u32) -> io::Result<sys::xdp_link_info> {
    let mut info = sys::xdp_link_info::default();
    // SAFETY: info is a valid, writable xdp_link_info of the size we pass.
    let ret = unsafe {
        sys::bpf_get_link_xdp_info(
            ifindex as i32,
            &mut info,
            std::mem::size_of::<sys::xdp_link_info>() as sys::size_t,
            0,
        )
    };
    check_neg_errno(ret, "bpf_get_link_xdp_info")?;
    Ok(info)
}

/// Remove whatever XDP program is attached in `mode` (no-op if none).
pub fn detach_any(ifindex: u32, mode: XdpMode) -> io::Result<()> {
    // SAFETY: plain integers; fd -1 means "detach".
    let ret = unsafe { sys::bpf_set_link_xdp_fd(ifindex as i32, -1, mode.flag()) };
    check_neg_errno(ret, "bpf_set_link_xdp_fd(detach)")
}

/// An XDP program attached to one interface. Detaches on drop, but only if our
/// program is still the one attached (`XDP_FLAGS_REPLACE` + expected fd), so a
/// newer instance that replaced us is not torn down by our exit.
pub struct XdpAttachment {
    pub ifname: String,
    pub ifindex: u32,
    pub mode: XdpMode,
    /// kernel id of our program (to recognise it in `query` results)
    pub prog_id: u32,
    prog: OwnedFd,
}

/// Kernel id of a loaded program.
pub fn prog_id(prog: &OwnedFd) -> io::Result<u32> {
    let mut info = sys::bpf_prog_info::default();
    let mut len = std::mem::size_of::<sys::bpf_prog_info>() as u32;
    // SAFETY: prog is a valid program fd; info is writable for `len` bytes
    // (the kernel writes at most `len` and updates it).
    let ret = unsafe {
        sys::bpf_obj_get_info_by_fd(prog.as_raw_fd(), (&mut info as *mut sys::bpf_prog_info).cast(), &mut len)
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info.id)
}

/// Name prefix of every program popgo loads: a program with it that is attached
/// already is popgo's own (a SIGKILLed run's) and may be replaced.
pub const OWN_PREFIX: &str = "popgo_";

/// The kernel name of a loaded program (at most 15 bytes).
pub fn prog_name(id: u32) -> io::Result<String> {
    // SAFETY: plain integer; returns a new fd or a negative errno.
    let fd = check_fd(unsafe { sys::bpf_prog_get_fd_by_id(id) }, "bpf_prog_get_fd_by_id")?;
    let mut info = sys::bpf_prog_info::default();
    let mut len = std::mem::size_of::<sys::bpf_prog_info>() as u32;
    // SAFETY: fd is a valid program fd; info is writable for `len` bytes (the kernel
    // writes at most `len` and updates it).
    let ret =
        unsafe { sys::bpf_obj_get_info_by_fd(fd.as_raw_fd(), (&mut info as *mut sys::bpf_prog_info).cast(), &mut len) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let bytes: Vec<u8> = info.name.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

impl XdpAttachment {
    /// Attach `prog` to `ifname`: native mode first, generic as fallback.
    ///
    /// A program attached already is replaced only when it is popgo's own (its name
    /// starts with [`OWN_PREFIX`]: left by a SIGKILLed run) or with `force`;
    /// anything else (another application's program) is an `AlreadyExists` error.
    /// An attach without `XDP_FLAGS_UPDATE_IF_NOEXIST` atomically replaces a program
    /// attached in the same mode; one attached in the *other* mode is detached first
    /// (the kernel refuses native + generic at once with EEXIST).
    pub fn attach(ifname: &str, prog: OwnedFd, try_native: bool, force: bool) -> io::Result<Self> {
        let ifindex = ifindex(ifname)?;
        let info = query(ifindex)?;
        for id in [info.drv_prog_id, info.skb_prog_id, info.hw_prog_id] {
            if id == 0 || force {
                continue;
            }
            let name = prog_name(id).unwrap_or_else(|_| "?".into());
            if !name.starts_with(OWN_PREFIX) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "{ifname} has XDP program {name:?} (id {id}) attached, which is not popgo's; \
                         --force replaces it"
                    ),
                ));
            }
        }
        let modes: &[XdpMode] = if try_native { &[XdpMode::Native, XdpMode::Generic] } else { &[XdpMode::Generic] };
        let mut last_err = None;
        for &mode in modes {
            let other_attached = match mode {
                XdpMode::Native => info.skb_prog_id != 0,
                XdpMode::Generic => info.drv_prog_id != 0,
            };
            if other_attached {
                let other = if mode == XdpMode::Native { XdpMode::Generic } else { XdpMode::Native };
                tracing::info!("xdp: {ifname}: removing stale program attached in {other:?} mode");
                detach_any(ifindex, other)?;
            }
            // SAFETY: prog is a valid XDP program fd owned by us; plain integers.
            let ret = unsafe { sys::bpf_set_link_xdp_fd(ifindex as i32, prog.as_raw_fd(), mode.flag()) };
            match check_neg_errno(ret, "bpf_set_link_xdp_fd(attach)") {
                Ok(()) => {
                    let prog_id = prog_id(&prog)?;
                    return Ok(XdpAttachment { ifname: ifname.to_string(), ifindex, mode, prog_id, prog });
                }
                Err(e) => {
                    tracing::warn!("xdp: {ifname}: {mode:?} attach failed: {e}");
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.expect("at least one mode tried"))
    }

    pub fn prog_fd(&self) -> RawFd {
        self.prog.as_raw_fd()
    }

    /// Detach now (also done by Drop). Only removes our own program:
    /// first with `XDP_FLAGS_REPLACE` + our fd as the expected old program
    /// (atomic in the kernel); if that is refused for any reason other than
    /// "someone else's program is attached" (EEXIST), fall back to query +
    /// compare prog id + plain detach.
    pub fn detach(&mut self) -> io::Result<()> {
        // `sz` must be offsetofend(old_fd) = 12, not size_of (16): libbpf
        // rejects a struct whose bytes past the last known field are not zero,
        // and Rust leaves the trailing padding uninitialized.
        let opts = sys::bpf_xdp_set_link_opts {
            sz: (std::mem::offset_of!(sys::bpf_xdp_set_link_opts, old_fd) + std::mem::size_of::<i32>()) as sys::size_t,
            old_fd: self.prog.as_raw_fd(),
        };
        // SAFETY: opts is initialized up to `sz` bytes; fd -1 = detach; libbpf
        // adds XDP_FLAGS_REPLACE because old_fd is present.
        let ret = unsafe { sys::bpf_set_link_xdp_fd_opts(self.ifindex as i32, -1, self.mode.flag(), &opts) };
        if ret == -libc::EEXIST {
            return check_neg_errno(ret, "detach: another program is attached now, left alone");
        }
        match check_neg_errno(ret, "bpf_set_link_xdp_fd_opts(detach)") {
            Ok(()) => Ok(()),
            Err(e) => {
                let info = query(self.ifindex)?;
                let attached = match self.mode {
                    XdpMode::Native => info.drv_prog_id,
                    XdpMode::Generic => info.skb_prog_id,
                };
                if attached == self.prog_id {
                    detach_any(self.ifindex, self.mode)
                } else {
                    Err(io::Error::new(e.kind(), format!("{e}; attached id {attached} is not ours ({})", self.prog_id)))
                }
            }
        }
    }
}

impl Drop for XdpAttachment {
    fn drop(&mut self) {
        match self.detach() {
            Ok(()) => tracing::info!("xdp: {}: detached ({:?})", self.ifname, self.mode),
            // EEXIST: someone else's program is attached now; leave it alone.
            Err(e) => tracing::warn!("xdp: {}: detach: {e}", self.ifname),
        }
    }
}

/// The MPLS redirect program + its XSKMAP, attached to one interface.
/// Create this BEFORE the afxdp sockets on `ifname` (see module docs).
pub struct MplsRedirect {
    // Field order = drop order: detach first, then close the map.
    pub attachment: XdpAttachment,
    pub xsks_map: OwnedFd,
}

/// Number of XSKMAP slots = max queue id + 1 we can serve. veth in the lab has 1
/// queue; 64 covers real NICs' usual channel counts.
pub const XSKMAP_ENTRIES: u32 = 64;

impl MplsRedirect {
    /// Loads the program and attaches it (`force`: also over another application's
    /// program; see [`XdpAttachment::attach`]).
    pub fn attach(ifname: &str, try_native: bool, force: bool) -> io::Result<Self> {
        let xsks_map = create_map(sys::BPF_MAP_TYPE_XSKMAP, "xsks_map", 4, 4, XSKMAP_ENTRIES)?;
        let insns = mpls_redirect_program(xsks_map.as_raw_fd(), XDP_PASS);
        let prog = load_xdp_program("popgo_mpls", &insns)?;
        let attachment = XdpAttachment::attach(ifname, prog, try_native, force)?;
        Ok(MplsRedirect { attachment, xsks_map })
    }

    /// Like [`MplsRedirect::attach`], with the offload program of `io::offload` for the
    /// port with index `in_port`: it forwards the common POPGO case itself through the
    /// maps of `maps` and redirects the rest of the MPLS frames like `attach`'s.
    pub fn attach_offload(
        ifname: &str,
        try_native: bool,
        force: bool,
        in_port: usize,
        maps: &crate::io::offload::OffloadMaps,
    ) -> io::Result<Self> {
        use crate::io::offload::{offload_program, FrameLen};
        let xsks_map = create_map(sys::BPF_MAP_TYPE_XSKMAP, "xsks_map", 4, 4, XSKMAP_ENTRIES)?;
        let m = maps.program_maps(xsks_map.as_raw_fd());
        // The variant without a helper call needs CAP_PERFMON or CAP_SYS_ADMIN (pointer
        // subtraction); a loader without them gets the helper variant.
        let prog = match load_xdp_program("popgo_offload", &offload_program(&m, in_port, XDP_PASS, FrameLen::Subtract))
        {
            Ok(p) => p,
            Err(_) => load_xdp_program("popgo_offload", &offload_program(&m, in_port, XDP_PASS, FrameLen::Helper))?,
        };
        let attachment = XdpAttachment::attach(ifname, prog, try_native, force)?;
        Ok(MplsRedirect { attachment, xsks_map })
    }

    /// Insert an AF_XDP socket fd at `queue` ourselves. Not needed with afxdp
    /// 0.4 (libbpf does it during `Socket::new`, see module docs), kept for a
    /// future socket layer that inhibits libbpf's program step.
    pub fn insert_socket(&self, queue: u32, xsk_fd: RawFd) -> io::Result<()> {
        let key = queue;
        let val = xsk_fd as u32;
        // SAFETY: key and val are valid u32s matching the map's 4-byte
        // key/value sizes and outlive the call.
        let ret = unsafe {
            sys::bpf_map_update_elem(
                self.xsks_map.as_raw_fd(),
                (&key as *const u32).cast(),
                (&val as *const u32).cast(),
                0,
            )
        };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Count-and-drop sink (lab only).
pub struct CountSink {
    pub attachment: XdpAttachment,
    pub counts: OwnedFd,
    ncpus: usize,
}

impl CountSink {
    /// Loads the sink under the program name `name` and attaches it (replacing only
    /// popgo's own programs).
    pub fn attach(ifname: &str, try_native: bool, name: &str) -> io::Result<Self> {
        let counts = create_map(sys::BPF_MAP_TYPE_PERCPU_ARRAY, "sink_counts", 4, 8, 2)?;
        let insns = count_drop_program(counts.as_raw_fd());
        let prog = load_xdp_program(name, &insns)?;
        let attachment = XdpAttachment::attach(ifname, prog, try_native, false)?;
        // SAFETY: no arguments; reads /sys/devices/system/cpu/possible.
        let n = unsafe { sys::libbpf_num_possible_cpus() };
        if n <= 0 {
            return Err(io::Error::other("libbpf_num_possible_cpus failed"));
        }
        Ok(CountSink { attachment, counts, ncpus: n as usize })
    }

    /// (non-MPLS frames, MPLS frames) summed over CPUs.
    pub fn read(&self) -> io::Result<(u64, u64)> {
        let mut out = [0u64; 2];
        for key in 0u32..2 {
            // per-CPU values: one 8-byte slot per possible CPU
            let mut vals = vec![0u64; self.ncpus];
            // SAFETY: vals has ncpus * 8 bytes, which is what the kernel writes
            // for a per-CPU map with 8-byte values; key outlives the call.
            let ret = unsafe {
                sys::bpf_map_lookup_elem(self.counts.as_raw_fd(), (&key as *const u32).cast(), vals.as_mut_ptr().cast())
            };
            if ret < 0 {
                return Err(io::Error::last_os_error());
            }
            out[key as usize] = vals.iter().sum();
        }
        Ok((out[0], out[1]))
    }
}

/// `union bpf_attr` as `BPF_PROG_TEST_RUN` reads it (uapi, stable), with the fields
/// libbpf-sys 0.3 predates (`flags`, `cpu`, `batch_size`).
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

/// `struct xdp_md` as a test-run context.
#[repr(C)]
#[derive(Default)]
struct XdpMd {
    data: u32,
    data_end: u32,
    data_meta: u32,
    ingress_ifindex: u32,
    rx_queue_index: u32,
    egress_ifindex: u32,
}

/// A program that writes `frame` (a multiple of 4 bytes) over the packet and returns
/// `XDP_TX`: with [`xdp_live_frames`] it transmits it out of the given interface. The
/// write is needed because live frames are recycled without resetting their bytes:
/// a receiver that rewrites a frame in place (a label pop, say) would otherwise get
/// its own output back as the next frame.
pub fn xdp_tx_program(frame: &[u8]) -> Vec<Insn> {
    assert!(frame.len().is_multiple_of(4) && frame.len() <= 256, "frame of {} bytes", frame.len());
    use Reg::*;
    let mut a = Asm::default();
    a.ldx_w(R2, R1, XDP_MD_DATA)
        .ldx_w(R3, R1, XDP_MD_DATA_END)
        .mov64_reg(R4, R2)
        .add64_imm(R4, frame.len() as i32)
        .jgt_reg(R4, R3, "tx");
    for (i, w) in frame.chunks_exact(4).enumerate() {
        a.st_w(R2, (4 * i) as i16, i32::from_le_bytes([w[0], w[1], w[2], w[3]]));
    }
    a.label("tx").mov64_imm(R0, XDP_TX).exit();
    a.finish()
}

/// Runs `prog_fd` `repeat` times over `frame` in the kernel's live-frames mode
/// (`BPF_F_TEST_XDP_LIVE_FRAMES`, kernel >= 5.18): each run gets a fresh frame from a
/// page pool, and what the program returns is carried out, so an `XDP_TX` program
/// sends `repeat` frames out of `ifindex` (to a veth's peer) without a socket or an
/// skb. Lab generator only; runs on the calling thread's CPU.
pub fn xdp_live_frames(prog_fd: RawFd, frame: &[u8], ifindex: u32, repeat: u32, batch: u32) -> io::Result<()> {
    const BPF_PROG_TEST_RUN: libc::c_long = 10;
    const BPF_F_TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;
    let ctx = XdpMd { data_end: frame.len() as u32, ingress_ifindex: ifindex, ..Default::default() };
    let attr = TestRunAttr {
        prog_fd: prog_fd as u32,
        data_size_in: frame.len() as u32,
        data_in: frame.as_ptr() as u64,
        repeat,
        ctx_size_in: std::mem::size_of::<XdpMd>() as u32,
        ctx_in: (&ctx as *const XdpMd) as u64,
        flags: BPF_F_TEST_XDP_LIVE_FRAMES,
        batch_size: batch,
        ..Default::default()
    };
    // SAFETY: attr is a fully initialized bpf_attr prefix of the size passed; the
    // frame and ctx buffers it points at outlive the call and are only read.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &attr as *const TestRunAttr,
            std::mem::size_of::<TestRunAttr>() as libc::c_long,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Run a loaded program once over `frame` with `BPF_PROG_TEST_RUN`; returns
/// the XDP action. Used by the unit tests (needs root / CAP_BPF).
pub fn test_run(prog_fd: RawFd, frame: &[u8]) -> io::Result<u32> {
    test_run_out(prog_fd, frame).map(|(action, _)| action)
}

/// Like [`test_run`], also returning the frame as the program left it.
pub fn test_run_out(prog_fd: RawFd, frame: &[u8]) -> io::Result<(u32, Vec<u8>)> {
    let mut out = vec![0u8; frame.len() + 256];
    let mut attr = sys::bpf_prog_test_run_attr {
        prog_fd,
        repeat: 1,
        data_in: frame.as_ptr().cast(),
        data_size_in: frame.len() as u32,
        data_out: out.as_mut_ptr().cast(),
        data_size_out: out.len() as u32,
        ..Default::default()
    };
    // SAFETY: attr's buffers are valid for the sizes given and outlive the call.
    let ret = unsafe { sys::bpf_prog_test_run_xattr(&mut attr) };
    if ret < 0 {
        // libbpf 0.3 returns -1/errno here (bpf(2) style)
        return Err(io::Error::last_os_error());
    }
    let n = (attr.data_size_out as usize).min(out.len());
    out.truncate(n);
    Ok((attr.retval, out))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

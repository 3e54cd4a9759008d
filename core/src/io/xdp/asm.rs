//! A minimal eBPF assembler, the uapi constants the programs use, and the L2 parse
//! every MPLS program starts with. Pure code: no kernel calls.

use std::os::fd::RawFd;

use libbpf_sys as sys;

use crate::wire::ethernet::{
    ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_MPLS, ETHERTYPE_OFFSET, ETHERTYPE_QINQ, ETHERTYPE_VLAN,
    ETH_HDR_BYTES, VLAN_TAG_BYTES,
};

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
pub(crate) const ETH_P_MPLS_UC: i32 = wire_u16(ETHERTYPE_MPLS);
pub(crate) const ETH_P_8021Q: i32 = wire_u16(ETHERTYPE_VLAN);
pub(crate) const ETH_P_8021AD: i32 = wire_u16(ETHERTYPE_QINQ);
pub(crate) const ETH_P_ARP: i32 = wire_u16(ETHERTYPE_ARP);
pub(crate) const ETH_P_IPV6: i32 = wire_u16(ETHERTYPE_IPV6);
pub(crate) const ETH_P_IP: i32 = wire_u16(ETHERTYPE_IPV4);

/// A byte offset or length from the wire views as an instruction's `off` field.
pub(crate) const fn off(bytes: usize) -> i16 {
    bytes as i16
}

/// A byte offset or length from the wire views as an instruction's immediate.
pub(crate) const fn imm(bytes: usize) -> i32 {
    bytes as i32
}

/// Bytes of an Ethernet header with `tags` VLAN tags.
pub(crate) const fn l2_bytes(tags: usize) -> usize {
    ETH_HDR_BYTES + tags * VLAN_TAG_BYTES
}

/// Offset of the ethertype after `tags` VLAN tags.
pub(crate) const fn ethertype_offset(tags: usize) -> usize {
    ETHERTYPE_OFFSET + tags * VLAN_TAG_BYTES
}

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

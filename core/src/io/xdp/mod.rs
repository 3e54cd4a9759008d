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
//! Files: [`asm`] (the assembler, uapi constants, the shared L2 parse), [`programs`]
//! (the redirect, sink and lab reference programs), [`maps`] (map and program
//! objects, the mmapped array, per-CPU counters), [`attach`] (attach/detach, the
//! redirect and sink attachments), [`test_run`] (`BPF_PROG_TEST_RUN`: unit tests and
//! the lab's live-frames generator).
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

pub mod asm;
pub mod attach;
pub mod maps;
pub mod programs;
pub mod test_run;

pub use asm::*;
pub use attach::*;
pub use maps::*;
pub use programs::*;
pub use test_run::*;

#[cfg(test)]
mod tests;

//! `BPF_PROG_TEST_RUN`: one run over a frame (unit tests) and the kernel's
//! live-frames mode (the lab's generator).

use std::io;
use std::os::fd::RawFd;

use libbpf_sys as sys;

use super::asm::*;

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

/// Runs a loaded program once over `frame` with `BPF_PROG_TEST_RUN`; returns the XDP
/// action and the kernel's duration of the run in ns (with its two clock reads: compare
/// programs by medians over many runs, not one figure). One run, because the kernel
/// does not reset the frame between repeats, and a program that pops would see the
/// popped frame on the second.
pub fn test_run_ns(prog_fd: RawFd, frame: &[u8]) -> io::Result<(u32, u32)> {
    let mut attr = sys::bpf_prog_test_run_attr {
        prog_fd,
        repeat: 1,
        data_in: frame.as_ptr().cast(),
        data_size_in: frame.len() as u32,
        ..Default::default()
    };
    // SAFETY: attr's input buffer is valid for the size given and outlives the call;
    // no output buffer is given.
    let ret = unsafe { sys::bpf_prog_test_run_xattr(&mut attr) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((attr.retval, attr.duration))
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

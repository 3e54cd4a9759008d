//! `RLIMIT_MEMLOCK` and privilege checks for the AF_XDP data plane.
//!
//! # Invariants
//! - Only plain-data structs (`rlimit`) cross the FFI boundary, by pointer for
//!   the duration of one call; the C side keeps nothing.
#![allow(unsafe_code)]

use std::io;

/// Tries to lift `RLIMIT_MEMLOCK` (UMEM registration and, on kernels before
/// 5.11, BPF maps are charged to it). Fails without `CAP_SYS_RESOURCE`; that
/// is fine when `CAP_IPC_LOCK` is present (UMEM accounting is skipped) and BPF
/// maps are memcg-accounted, so callers treat an error as a warning.
pub fn raise_memlock() -> io::Result<()> {
    let r = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: `r` is a valid rlimit that outlives the call; the kernel copies it.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &r) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Effective user id (0 = root).
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

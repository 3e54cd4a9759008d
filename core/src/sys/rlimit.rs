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

/// Sets the calling thread's timer slack (`PR_SET_TIMERSLACK`, Linux): how much later
/// than asked the kernel may end its sleeps. The default, 50 us, turns the 20 us naps of
/// a grace-period wait into 60-100 us; the control thread sets 1 us so that a commit
/// whose grace period needs one nap stays near 25 us (measured with tools/scale.py).
pub fn set_timer_slack_ns(ns: u64) -> io::Result<()> {
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument by value and touches no
    // memory of ours.
    if unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns as libc::c_ulong) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Puts the calling thread in the `SCHED_BATCH` class (Linux): still a fair share of the
/// CPU, but its wake-ups no longer preempt the thread that is running. The BGP speaker's
/// threads use it: woken by a commit's hand-off on a busy machine, they preempted the
/// control thread in the middle of the commit it was timing (at 1M routes the BGP share
/// of a one-route commit had p99 639 us; 61 us with the speaker in this class,
/// tools/bgp-scale.py).
pub fn set_batch_scheduling() -> io::Result<()> {
    let p = libc::sched_param { sched_priority: 0 };
    // SAFETY: `p` is a valid sched_param that outlives the call (the kernel copies it);
    // pid 0 is the calling thread.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &p) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Effective user id (0 = root).
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

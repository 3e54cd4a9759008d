//! Process signals for `popgo run`: SIGINT/SIGTERM request a stop, SIGHUP a
//! config reload. The handlers only set flags; the control thread polls them.
//!
//! # Invariants
//! - The handlers are async-signal-safe: each does one relaxed atomic store
//!   into a `static` and nothing else (no allocation, no locks, no I/O).
//! - The flags are process-global `static`s, so a handler can never observe
//!   freed memory; installing twice just reinstalls the same handlers.
//! - Nothing here keeps a pointer into Rust-owned memory: `sigaction` copies
//!   the struct it is given.
#![allow(unsafe_code)]

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);
static HUP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_sig: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

extern "C" fn on_hup(_sig: libc::c_int) {
    HUP.store(true, Ordering::Relaxed);
}

/// What SIGBUS means in popgo: a memory-mapped input shrank under it.
const SIGBUS_MESSAGE: &[u8] = b"popgo: error: a memory-mapped input file was truncated while in use (SIGBUS); \
captures larger than the copy threshold are mapped, not copied: do not modify them while popgo runs\n";

extern "C" fn on_sigbus(_sig: libc::c_int) {
    // SAFETY: write(2) and _exit(2) are async-signal-safe; the message is a static
    // byte string, valid for its length.
    unsafe {
        libc::write(2, SIGBUS_MESSAGE.as_ptr().cast(), SIGBUS_MESSAGE.len());
    }
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(1) }
}

fn install(sig: libc::c_int, handler: extern "C" fn(libc::c_int)) -> io::Result<()> {
    // SAFETY: an all-zero `sigaction` is a valid value (empty mask, no flags,
    // handler set below); the struct is plain data.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = handler as *const () as libc::sighandler_t;
    sa.sa_flags = libc::SA_RESTART;
    // SAFETY: `sa` is initialised, the handler is async-signal-safe (module
    // Invariants) with the C ABI `void (*)(int)`, and a null old-action
    // pointer is allowed; the kernel copies `sa`.
    let ret = unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Installs the SIGBUS report: a mapped file that shrinks ends the process with one
/// clear line and exit code 1 instead of a crash (see `io::pcap`).
pub fn install_sigbus_report() -> io::Result<()> {
    install(libc::SIGBUS, on_sigbus)
}

/// Installs the SIGINT/SIGTERM (stop) and SIGHUP (reload) handlers.
pub fn install_handlers() -> io::Result<()> {
    install(libc::SIGINT, on_stop)?;
    install(libc::SIGTERM, on_stop)?;
    install(libc::SIGHUP, on_hup)
}

/// True once SIGINT or SIGTERM has arrived (stays true).
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// True if SIGHUP arrived since the last call (clears the flag).
pub fn take_reload() -> bool {
    HUP.swap(false, Ordering::Relaxed)
}

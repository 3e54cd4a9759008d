//! Peer credentials of a connected Unix socket (`SO_PEERCRED`), for the control
//! socket's access check.
//!
//! # Invariants
//! - Only a plain-data struct (`ucred`) crosses the FFI boundary, by pointer for the
//!   duration of one call; the kernel keeps nothing.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsRawFd;

/// The user id of the process at the other end of `sock`.
pub fn peer_uid(sock: &impl AsRawFd) -> io::Result<u32> {
    let mut cred = libc::ucred { pid: 0, uid: u32::MAX, gid: u32::MAX };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes for the duration of the call and
    // `len` holds the size of `cred`; the kernel writes at most `len` bytes.
    let r = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred.uid)
}

#[cfg(test)]
mod tests {
    #[test]
    fn peer_of_a_socket_pair_is_us() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_eq!(super::peer_uid(&a).unwrap(), crate::sys::rlimit::euid());
    }
}

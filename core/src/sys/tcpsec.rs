//! BGP session security on a TCP socket: the TCP MD5 signature option (RFC 2385,
//! Linux `TCP_MD5SIG`) and GTSM (RFC 5082: send with TTL 255, drop what arrives with
//! a TTL below `IP_MINTTL`).
//!
//! # Invariants
//! - Only plain-data values (a `TcpMd5Sig`, an `int`) cross the FFI boundary, by
//!   pointer for the duration of one `setsockopt` call; the kernel copies them and
//!   keeps nothing of ours.
#![allow(unsafe_code)]

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

/// `struct tcp_md5sig` of `<linux/tcp.h>`: a `__kernel_sockaddr_storage` (128 octets,
/// pointer-aligned), flags, prefix length, key length, interface index, key.
#[repr(C, align(8))]
struct TcpMd5Sig {
    addr: [u8; 128],
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: libc::c_int,
    key: [u8; libc::TCP_MD5SIG_MAXKEYLEN],
}

fn setsockopt<T>(sock: &impl AsRawFd, level: libc::c_int, name: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: `v` points to a live, initialized `T` for the duration of the call and
    // the length passed is its size; the kernel only reads it.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (v as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Signs and checks every segment to and from `peer` on `sock` with `key` (RFC 2385);
/// an empty key removes it. On a listening socket it applies to connections from
/// `peer`; on a connecting one, set it before `connect`. A key longer than 80 octets
/// is refused (`InvalidInput`).
pub fn set_md5sig(sock: &impl AsRawFd, peer: Ipv4Addr, key: &[u8]) -> io::Result<()> {
    if key.len() > libc::TCP_MD5SIG_MAXKEYLEN {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "TCP MD5 key longer than 80 octets"));
    }
    let mut sig = TcpMd5Sig {
        addr: [0; 128],
        flags: 0,
        prefixlen: 0,
        keylen: key.len() as u16,
        ifindex: 0,
        key: [0; libc::TCP_MD5SIG_MAXKEYLEN],
    };
    // struct sockaddr_in: family (host order), port 0, address (network order).
    sig.addr[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
    sig.addr[4..8].copy_from_slice(&peer.octets());
    sig.key[..key.len()].copy_from_slice(key);
    setsockopt(sock, libc::IPPROTO_TCP, libc::TCP_MD5SIG, &sig)
}

/// GTSM (RFC 5082 section 3): packets leave with TTL 255 and only those arriving with
/// TTL 256 - `hops` or more are accepted.
pub fn set_gtsm(sock: &impl AsRawFd, hops: u8) -> io::Result<()> {
    let ttl: libc::c_int = 255;
    setsockopt(sock, libc::IPPROTO_IP, libc::IP_TTL, &ttl)?;
    let min: libc::c_int = 256 - libc::c_int::from(hops.max(1));
    setsockopt(sock, libc::IPPROTO_IP, libc::IP_MINTTL, &min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_kernel() {
        assert_eq!(std::mem::size_of::<TcpMd5Sig>(), 216);
        assert_eq!(std::mem::offset_of!(TcpMd5Sig, keylen), 130);
        assert_eq!(std::mem::offset_of!(TcpMd5Sig, key), 136);
    }

    #[test]
    fn keys_and_ttls_are_set_on_a_tcp_socket() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        set_md5sig(&l, Ipv4Addr::LOCALHOST, b"secret").unwrap();
        set_md5sig(&l, Ipv4Addr::LOCALHOST, b"").unwrap();
        assert_eq!(set_md5sig(&l, Ipv4Addr::LOCALHOST, &[b'x'; 81]).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        set_gtsm(&l, 1).unwrap();
    }
}

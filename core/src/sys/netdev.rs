//! Facts about a network interface for start-up checks: one rtnetlink `RTM_GETLINK`
//! request (name, link kind, linked ifindex, whether the linked device is in another
//! network namespace) and the ethtool ioctl that reads GRO.
//!
//! The syscalls are here; the message layout is built and parsed in safe code
//! ([`getlink_request`], [`parse_getlink`]) and tested without a kernel.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

// uapi constants (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/ethtool.h).
const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const RTM_GETLINK: u16 = 18;
const RTM_NEWLINK: u16 = 16;
const NLM_F_REQUEST: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_LINK: u16 = 5;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_LINK_NETNSID: u16 = 37;
/// Attribute type bits (the top two are the nested and byte-order flags).
const NLA_TYPE_MASK: u16 = 0x3fff;
const ETHTOOL_GGRO: u32 = 0x2b;
/// Sequence number of the one request a socket sends.
const SEQ: u32 = 1;

/// What rtnetlink reports about one interface.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    /// `IFLA_INFO_KIND` ("veth", "bridge", ...); None for a device without one (a NIC).
    pub kind: Option<String>,
    /// `IFLA_LINK`: for a veth, the peer's ifindex, in the namespace `link_netnsid`
    /// names when that is set.
    pub link: Option<u32>,
    /// `IFLA_LINK_NETNSID`: present only when the linked device is in another network
    /// namespace.
    pub link_netnsid: Option<i32>,
}

/// The `RTM_GETLINK` request for one ifindex: `nlmsghdr` + `ifinfomsg`.
pub fn getlink_request(ifindex: u32) -> Vec<u8> {
    let len = (NLMSG_HDRLEN + IFINFOMSG_LEN) as u32;
    let mut m = Vec::with_capacity(len as usize);
    m.extend_from_slice(&len.to_ne_bytes());
    m.extend_from_slice(&RTM_GETLINK.to_ne_bytes());
    m.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    m.extend_from_slice(&SEQ.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
    m.extend_from_slice(&[0, 0]); // ifi_family AF_UNSPEC, padding
    m.extend_from_slice(&0u16.to_ne_bytes()); // ifi_type
    m.extend_from_slice(&(ifindex as i32).to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // ifi_flags
    m.extend_from_slice(&0u32.to_ne_bytes()); // ifi_change
    m
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

/// The attributes of `b` as (type, payload); stops at the first malformed one.
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = u16_at(b, 0)? as usize;
        let ty = u16_at(b, 2)? & NLA_TYPE_MASK;
        if len < 4 || len > b.len() {
            return None;
        }
        let payload = &b[4..len];
        b = &b[((len + 3) & !3).min(b.len())..];
        Some((ty, payload))
    })
}

/// A string attribute without its NUL terminator.
fn attr_str(p: &[u8]) -> String {
    String::from_utf8_lossy(p.split(|c| *c == 0).next().unwrap_or_default()).into_owned()
}

fn malformed(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("malformed rtnetlink answer: {what}"))
}

/// Parses the kernel's answer to [`getlink_request`]: one `RTM_NEWLINK`, or an
/// `NLMSG_ERROR` carrying a negative errno.
pub fn parse_getlink(b: &[u8]) -> io::Result<Link> {
    let len = u32_at(b, 0).ok_or_else(|| malformed("short header"))? as usize;
    let ty = u16_at(b, 4).ok_or_else(|| malformed("short header"))?;
    if len < NLMSG_HDRLEN || len > b.len() {
        return Err(malformed("bad length"));
    }
    let b = &b[..len];
    if ty == NLMSG_ERROR {
        let errno = u32_at(b, NLMSG_HDRLEN).ok_or_else(|| malformed("short error"))? as i32;
        return Err(io::Error::from_raw_os_error(-errno));
    }
    if ty != RTM_NEWLINK || len < NLMSG_HDRLEN + IFINFOMSG_LEN {
        return Err(malformed("not a link message"));
    }
    let mut link = Link::default();
    for (t, p) in attrs(&b[NLMSG_HDRLEN + IFINFOMSG_LEN..]) {
        match t {
            IFLA_IFNAME => link.name = attr_str(p),
            IFLA_LINK => link.link = u32_at(p, 0),
            IFLA_LINK_NETNSID => link.link_netnsid = u32_at(p, 0).map(|v| v as i32),
            IFLA_LINKINFO => {
                link.kind = attrs(p).find(|(t, _)| *t == IFLA_INFO_KIND).map(|(_, k)| attr_str(k));
            }
            _ => {}
        }
    }
    Ok(link)
}

/// What rtnetlink reports about interface `ifindex` of this network namespace.
pub fn link(ifindex: u32) -> io::Result<Link> {
    // SAFETY: plain integer arguments; returns a new descriptor or -1.
    let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let req = getlink_request(ifindex);
    // SAFETY: req is readable for req.len() bytes during the call; an unconnected
    // netlink socket sends to the kernel.
    let n = unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // One link message is a few KiB (most of it statistics).
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: buf is writable for buf.len() bytes during the call.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    parse_getlink(&buf)
}

/// `struct ethtool_value`.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// `struct ifreq` with the `ifr_data` member (40 bytes on 64-bit Linux).
#[repr(C)]
struct IfreqData {
    name: [u8; libc::IFNAMSIZ],
    data: *mut EthtoolValue,
    _pad: [u8; 16],
}

/// Whether GRO is on for `ifname` (`ethtool -k IF` shows it as `generic-receive-offload`).
pub fn gro(ifname: &str) -> io::Result<bool> {
    if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ || ifname.contains('\0') {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("bad interface name {ifname:?}")));
    }
    let mut value = EthtoolValue { cmd: ETHTOOL_GGRO, data: 0 };
    let mut req = IfreqData { name: [0; libc::IFNAMSIZ], data: &mut value, _pad: [0; 16] };
    req.name[..ifname.len()].copy_from_slice(ifname.as_bytes());
    // SAFETY: plain integer arguments; returns a new descriptor or -1.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: req is a valid ifreq whose name is NUL-terminated and whose data points
    // at `value`, which outlives the call; the kernel writes only `value.data`.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCETHTOOL as _, &mut req as *mut IfreqData) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value.data != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(ty: u16, payload: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&ty.to_ne_bytes());
        a.extend_from_slice(payload);
        while a.len() % 4 != 0 {
            a.push(0);
        }
        a
    }

    fn message(ty: u16, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn request_is_a_getlink_for_the_index() {
        let r = getlink_request(7);
        assert_eq!(r.len(), 32);
        assert_eq!(u32_at(&r, 0), Some(32));
        assert_eq!(u16_at(&r, 4), Some(RTM_GETLINK));
        assert_eq!(u32_at(&r, 20), Some(7));
    }

    #[test]
    fn parses_a_veth_with_a_peer_elsewhere() {
        let mut body = vec![0u8; IFINFOMSG_LEN];
        body.extend(attr(IFLA_IFNAME, b"c-to-a\0"));
        body.extend(attr(99, &[1, 2, 3])); // unknown: skipped
        body.extend(attr(IFLA_LINK, &5u32.to_ne_bytes()));
        body.extend(attr(IFLA_LINKINFO | 0x8000, &attr(IFLA_INFO_KIND, b"veth\0")));
        body.extend(attr(IFLA_LINK_NETNSID, &3i32.to_ne_bytes()));
        let l = parse_getlink(&message(RTM_NEWLINK, &body)).unwrap();
        assert_eq!(l, Link { name: "c-to-a".into(), kind: Some("veth".into()), link: Some(5), link_netnsid: Some(3) });
    }

    #[test]
    fn errors_and_garbage_are_errors() {
        let e = parse_getlink(&message(NLMSG_ERROR, &(-libc::ENODEV).to_ne_bytes())).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV));
        assert!(parse_getlink(&[]).is_err());
        assert!(parse_getlink(&message(RTM_NEWLINK, &[0; 4])).is_err());
        let mut m = message(RTM_NEWLINK, &[0; IFINFOMSG_LEN]);
        m[0] = 200; // longer than the buffer
        assert!(parse_getlink(&m).is_err());
        // A truncated attribute ends the list without a panic.
        let mut body = vec![0u8; IFINFOMSG_LEN];
        body.extend(attr(IFLA_IFNAME, b"x\0"));
        body.extend_from_slice(&[60, 0, 5, 0, 1, 2]);
        assert_eq!(parse_getlink(&message(RTM_NEWLINK, &body)).unwrap().name, "x");
    }
}

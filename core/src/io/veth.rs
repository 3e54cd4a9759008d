//! Whether a veth takes the frames an XDP program redirects into it.
//!
//! A frame that native XDP redirects into a veth is handed to `veth_xdp_xmit`, which
//! queues it on the *peer's* receive ring, and that ring exists only while the peer
//! runs NAPI: when the peer has an XDP program attached in native mode or GRO on.
//! Otherwise the kernel drops the frame after the redirect succeeded, so the program
//! that redirected it has already counted it as sent. (Generic XDP redirects through
//! the ordinary transmit path and does not depend on this.)
//!
//! [`redirect_target`] looks the peer up once; the peer's settings may change later.
//! No `unsafe` here: the syscalls are in `sys::netdev` and `io::xdp`.

use crate::io::xdp;
use crate::sys::netdev;
use std::io;

/// What [`redirect_target`] found out about an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Not a veth: nothing to check here.
    NotVeth,
    /// A veth whose peer (in this namespace) has a native XDP program or GRO on.
    Ready { peer: String },
    /// A veth whose peer (in this namespace) has neither: redirected frames are dropped.
    NoNapi { peer: String },
    /// A veth whose peer is in another network namespace and cannot be inspected from here.
    PeerElsewhere { peer_ifindex: u32 },
}

/// Checks the interface `ifname` of this network namespace.
pub fn redirect_target(ifname: &str) -> io::Result<Target> {
    let me = netdev::link(xdp::ifindex(ifname)?)?;
    if me.kind.as_deref() != Some("veth") {
        return Ok(Target::NotVeth);
    }
    let Some(peer_ifindex) = me.link else {
        return Err(io::Error::other(format!("{ifname} is a veth without a peer")));
    };
    if me.link_netnsid.is_some() {
        return Ok(Target::PeerElsewhere { peer_ifindex });
    }
    let peer = netdev::link(peer_ifindex)?.name;
    let has_xdp = xdp::query(peer_ifindex)?.drv_prog_id != 0;
    if has_xdp || netdev::gro(&peer)? {
        Ok(Target::Ready { peer })
    } else {
        Ok(Target::NoNapi { peer })
    }
}

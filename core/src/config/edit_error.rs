//! Why an edit was refused: [`EditError`], one variant per rule of
//! [`super::edit::apply`] and [`super::edit_vpn::apply_vpn`], carrying what was wrong.
//! It becomes text only at the edge (a VRP error line, a config file's `line N: key:`
//! message).

use super::vpn::Rd;
use super::Prefix;
use std::net::{IpAddr, Ipv4Addr};

fn fam(v4: &bool) -> &'static str {
    if *v4 {
        "IPv4"
    } else {
        "IPv6"
    }
}

fn family_cmd(v4: &bool) -> &'static str {
    if *v4 {
        "ipv4-family"
    } else {
        "ipv6-family"
    }
}

/// An edit the rules refuse; the configuration is left as it was.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("no BGP instance")]
    NoBgp,
    #[error("BGP is already running with AS {running}; the AS number cannot be changed here")]
    AsFixed { running: u32 },
    #[error("AS number 0 is outside 1..=4294967295")]
    ZeroAs,
    #[error("router ID 0.0.0.0 is not valid (RFC 4271: a non-zero BGP identifier)")]
    ZeroRouterId,
    #[error("network {0} has a static label, which needs apply-label per-route (undo it first)")]
    StaticLabelNeedsPerRoute(Prefix),
    #[error("a static label is only valid with label_mode = \"per-route\" (network {0})")]
    LabelModeNotPerRoute(Prefix),
    #[error("no static route for {0} (a network must match a static route's prefix)")]
    NetworkWithoutRoute(Prefix),
    #[error("duplicate network {0}")]
    DuplicateNetwork(Prefix),
    #[error("duplicate label {label} (already used by network {network})")]
    DuplicateLabel { label: u32, network: Prefix },
    #[error("network {0} does not exist")]
    NoSuchNetwork(Prefix),
    #[error("static route {0} via {1} does not exist")]
    NoSuchRoute(Prefix, IpAddr),
    #[error(
        "network {p} is imported into BGP and needs this route; run `undo network {} {}` in the bgp view first",
        p.addr,
        p.len
    )]
    RouteNeededByNetwork { p: Prefix },
    #[error("next hop {next_hop} is not of the family of {prefix}")]
    NextHopFamily { next_hop: IpAddr, prefix: Prefix },
    #[error("next hop {0} is not a known neighbor (add a [[neighbor]] for it)")]
    NextHopNotNeighbor(IpAddr),
    #[error("next hop {next_hop} is not a neighbor on a port bound to VPN instance {instance}")]
    NextHopNotInInstance { next_hop: IpAddr, instance: String },
    #[error("{0} is not a unicast peer address")]
    NotUnicastPeer(Ipv4Addr),
    #[error("peer {0} does not exist (create it with `peer {0} as-number <as>` in the bgp view)")]
    NoSuchPeer(Ipv4Addr),
    /// A name outside 1 to 31 characters of `[A-Za-z0-9._-]`: what it names, and it.
    #[error("{what} {name:?} must be 1 to 31 characters of [A-Za-z0-9._-]")]
    BadName { what: &'static str, name: String },
    #[error("VPN instance {0} does not exist (create it with `ip vpn-instance {0}`)")]
    NoSuchInstance(String),
    #[error("at most {0} VPN instances are supported")]
    TooManyInstances(u16),
    #[error("VPN instance {0} is bound to an interface (undo ip binding vpn-instance first)")]
    InstanceBound(String),
    #[error("VPN instance {0} has a BGP family (undo ipv4-family vpn-instance {0} first)")]
    InstanceInBgp(String),
    #[error("VPN instance {0} has static routes (undo ip route-static vpn-instance first)")]
    InstanceHasRoutes(String),
    #[error("VPN instance {0}'s family is in BGP (undo its BGP family first)")]
    FamilyInBgp(String),
    #[error("VPN instance {0}'s family is in BGP: its RD stays (undo the BGP family first)")]
    RdInBgp(String),
    #[error("VPN instance {name} has no {} family (enter it with `{}`)", fam(v4), family_cmd(v4))]
    NoFamily { name: String, v4: bool },
    #[error("configure the route-distinguisher of VPN instance {name}'s {} family first", fam(v4))]
    RdFirst { name: String, v4: bool },
    #[error(
        "VPN instance {name} has no {} route distinguisher (configure it in ip vpn-instance {name} first)",
        fam(v4)
    )]
    NoRdForBgp { name: String, v4: bool },
    #[error("duplicate RD {rd} (already used by VPN instance {instance})")]
    DuplicateRd { rd: Rd, instance: String },
    #[error("the RD is {0} already; run `undo route-distinguisher` first")]
    RdSet(Rd),
    #[error("unknown interface {0}")]
    UnknownInterface(String),
    #[error("interface {0} is bound to another VPN instance (undo ip binding vpn-instance first)")]
    InterfaceBound(String),
    #[error("static LSPs need the MPLS instance (undo static-lsp egress first)")]
    MplsNeeded,
    #[error("MPLS is not enabled (run `mpls lsr-id X` and `mpls` first)")]
    MplsOff,
    #[error("label {label} is already the static label of network {network}")]
    LabelOfNetwork { label: u32, network: Prefix },
    #[error("label {label} is already the in-label of static LSP {lsp}")]
    LabelOfLsp { label: u32, lsp: String },
    #[error("static LSP {0} does not exist")]
    NoSuchStaticLsp(String),
    #[error("no BGP family for VPN instance {0}")]
    NoBgpFamily(String),
}

//! The VRP command subset: views and parsing one line into a [`Cmd`]. Parsing never
//! touches any state; the edits it yields are checked and applied by
//! `config::edit::apply`.

use crate::config::edit::Edit;
use crate::config::{Family, LabelMode, Network, Prefix, StaticRoute};
use crate::display::Filter;
use std::net::{IpAddr, Ipv4Addr};

/// The command view a session is in (VRP: user view `<Dev>`, system view `[Dev]`,
/// BGP view `[Dev-bgp]`, and inside it the address family views `ipv4-family unicast`
/// `[Dev-bgp-af-ipv4]` and `ipv6-family unicast` `[Dev-bgp-af-ipv6]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    User,
    System,
    Bgp,
    BgpIpv4,
    BgpIpv6,
    /// `ip vpn-instance NAME` (the session keeps the name).
    VpnInstance,
    /// Its `ipv4-family` / `ipv6-family` views.
    VpnAf4,
    VpnAf6,
    /// `interface NAME`.
    Interface,
    /// `mpls`.
    Mpls,
    /// `ipv4-family vpn-instance NAME` / `ipv6-family vpn-instance NAME` in the BGP view.
    BgpVpn4,
    BgpVpn6,
    /// `ipv4-family vpnv4` / `ipv6-family vpnv6` in the BGP view (the peers' VPN families).
    BgpVpnv4,
    BgpVpnv6,
}

impl View {
    pub fn name(self) -> &'static str {
        match self {
            View::User => "user",
            View::System => "system",
            View::Bgp => "bgp",
            View::BgpIpv4 => "bgp-af-ipv4",
            View::BgpIpv6 => "bgp-af-ipv6",
            View::VpnInstance => "vpn-instance",
            View::VpnAf4 => "vpn-instance-af-ipv4",
            View::VpnAf6 => "vpn-instance-af-ipv6",
            View::Interface => "interface",
            View::Mpls => "mpls",
            View::BgpVpn4 => "bgp-vpn-instance-ipv4",
            View::BgpVpn6 => "bgp-vpn-instance-ipv6",
            View::BgpVpnv4 => "bgp-af-vpnv4",
            View::BgpVpnv6 => "bgp-af-vpnv6",
        }
    }

    /// The VRP prompt for device `dev` in a view named `ctx` (VPN instance, interface).
    pub fn prompt_in(self, dev: &str, ctx: &str) -> String {
        match self {
            View::VpnInstance => format!("[{dev}-vpn-instance-{ctx}]"),
            View::VpnAf4 => format!("[{dev}-vpn-instance-{ctx}-af-ipv4]"),
            View::VpnAf6 => format!("[{dev}-vpn-instance-{ctx}-af-ipv6]"),
            View::Interface => format!("[{dev}-{ctx}]"),
            View::Mpls => format!("[{dev}-mpls]"),
            View::BgpVpn4 => format!("[{dev}-bgp-{ctx}]"),
            View::BgpVpn6 => format!("[{dev}-bgp-6-{ctx}]"),
            View::BgpVpnv4 => format!("[{dev}-bgp-af-vpnv4]"),
            View::BgpVpnv6 => format!("[{dev}-bgp-af-vpnv6]"),
            v => v.prompt(dev),
        }
    }

    /// The view `quit` returns to.
    pub fn up(self) -> View {
        match self {
            View::BgpIpv4 | View::BgpIpv6 | View::BgpVpn4 | View::BgpVpn6 | View::BgpVpnv4 | View::BgpVpnv6 => {
                View::Bgp
            }
            View::VpnAf4 | View::VpnAf6 => View::VpnInstance,
            View::Bgp | View::VpnInstance | View::Interface | View::Mpls => View::System,
            View::System | View::User => View::User,
        }
    }

    /// The VRP prompt for device `dev`.
    pub fn prompt(self, dev: &str) -> String {
        match self {
            View::User => format!("<{dev}>"),
            View::System => format!("[{dev}]"),
            View::Bgp => format!("[{dev}-bgp]"),
            View::BgpIpv4 => format!("[{dev}-bgp-af-ipv4]"),
            View::BgpIpv6 => format!("[{dev}-bgp-af-ipv6]"),
            v => v.prompt_in(dev, ""),
        }
    }

    /// The BGP view or one of its family views.
    pub fn in_bgp(self) -> bool {
        matches!(
            self,
            View::Bgp | View::BgpIpv4 | View::BgpIpv6 | View::BgpVpn4 | View::BgpVpn6 | View::BgpVpnv4 | View::BgpVpnv6
        )
    }
}

/// A `display` command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Display {
    MplsLspBgp {
        verbose: bool,
    },
    CurrentConfiguration,
    /// `display configuration candidate`: the running config plus this session's
    /// uncommitted lines.
    CandidateConfiguration,
    Statistics,
    /// `display bgp peer`.
    BgpPeer,
    /// `display bgp [ipv6] routing-table label`.
    BgpRoutingTableLabel(Family),
    /// `display ip vpn-instance [verbose]`.
    VpnInstance {
        verbose: bool,
    },
    /// `display mpls static-lsp`.
    StaticLsp,
    /// `display mpls statistics lsp [all | in-label LABEL]`: per-LSP packets and bytes.
    LspStatistics {
        in_label: Option<u32>,
    },
}

/// One parsed line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// Empty line or `#` comment.
    Nothing,
    SystemView,
    Quit,
    Return,
    Commit,
    /// `clear configuration candidate`: drop this session's uncommitted lines.
    ClearCandidate,
    /// `bgp <as>`: enter the BGP view (creating the instance if needed).
    Bgp(u32),
    /// `ipv4-family unicast` / `ipv6-family unicast` in the BGP view.
    Family(View),
    Edit(Edit),
    /// Several edits from one line, checked in order (all or nothing).
    Edits(Vec<Edit>),
    /// An edit that also enters a view named by the string (`ip vpn-instance NAME`).
    EditEnter(Edit, View, String),
    /// Enters a view named by the string (`interface NAME`, `mpls`).
    Enter(View, String),
    /// `[undo] ip route-static vpn-instance NAME ...`: the instance is resolved against
    /// the candidate; without a next hop (undo), every route to the prefix.
    VpnRoute {
        name: String,
        prefix: Prefix,
        next_hop: Option<IpAddr>,
        add: bool,
    },
    /// `[undo] network` in a BGP VPN family view.
    VpnNetwork {
        name: String,
        prefix: Prefix,
        add: bool,
    },
    /// `undo ip route-static <prefix> <len>`: every route to the prefix.
    UndoRoutes(Prefix),
    /// A display and its output filter (`| include REGEX`, `| count`).
    Display(Display, Filter),
}

/// Parses a prefix given as `ADDRESS LENGTH` or, for IPv4, `ADDRESS DOTTED-MASK`.
pub fn parse_prefix(addr: &str, mask: &str, v6_only: bool) -> Result<Prefix, String> {
    let a: IpAddr = addr.parse().map_err(|_| format!("{addr:?} is not an IP address"))?;
    if v6_only && a.is_ipv4() {
        return Err(format!("{addr} is not an IPv6 address"));
    }
    let len = match mask.parse::<u8>() {
        Ok(l) => l,
        Err(_) => match (a, mask.parse::<std::net::Ipv4Addr>()) {
            (IpAddr::V4(_), Ok(m)) => {
                let m = u32::from(m);
                if m.leading_ones() + m.trailing_zeros() != 32 {
                    return Err(format!("{mask} is not a contiguous mask"));
                }
                m.leading_ones() as u8
            }
            _ => return Err(format!("{mask:?} is not a mask length")),
        },
    };
    Prefix::new(a, len)
}

/// Parses one line in `view`. Errors are the message only (the caller names the line).
pub fn parse(view: View, line: &str) -> Result<Cmd, String> {
    parse_in(view, "", line)
}

/// Parses one line in `view`, whose VPN instance or interface is `ctx`.
pub fn parse_in(view: View, ctx: &str, line: &str) -> Result<Cmd, String> {
    // `display ... | include REGEX | count`: the filter is cut off before the words are
    // lowered (a regular expression keeps its case).
    let (line, filter) = match line.trim_start().get(..7) {
        Some(w) if w.eq_ignore_ascii_case("display") && line.contains('|') => Filter::split(line)?,
        _ => (line, Filter::default()),
    };
    let w: Vec<&str> = line.split_whitespace().collect();
    if w.is_empty() || w[0].starts_with('#') {
        return Ok(Cmd::Nothing);
    }
    let lower: Vec<String> = w.iter().map(|s| s.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();
    if l[0] == "display" {
        return parse_display(&l[1..]).map(|d| Cmd::Display(d, filter));
    }
    if let Some(c) = super::vrp_vpn::parse(view, ctx, &l, &w) {
        return c;
    }
    let unknown = || format!("unrecognized command {:?} in {} view", w[0], view.name());
    let wrong_args = |usage: &str| format!("incomplete or wrong arguments; usage: {usage}");
    match (view, l.as_slice()) {
        (_, ["quit"]) => Ok(Cmd::Quit),
        (_, ["return"]) => Ok(Cmd::Return),
        (View::User, ["system-view"]) => Ok(Cmd::SystemView),
        (v, ["commit"]) if v != View::User => Ok(Cmd::Commit),
        (v, ["clear", "configuration", "candidate"]) if v != View::User => Ok(Cmd::ClearCandidate),
        (View::Bgp | View::BgpIpv4 | View::BgpIpv6 | View::BgpVpnv4 | View::BgpVpnv6, ["ipv4-family", rest @ ..]) => {
            match rest {
                // The labeled-unicast view is the public family's: popgo's IPv4 routes
                // are all labeled.
                ["unicast"] | ["labeled-unicast"] => Ok(Cmd::Family(View::BgpIpv4)),
                ["vpnv4"] => Ok(Cmd::Family(View::BgpVpnv4)),
                _ => Err(wrong_args("ipv4-family unicast | labeled-unicast | vpnv4 | vpn-instance <name>")),
            }
        }
        (View::Bgp | View::BgpIpv4 | View::BgpIpv6 | View::BgpVpnv4 | View::BgpVpnv6, ["ipv6-family", rest @ ..]) => {
            match rest {
                ["unicast"] => Ok(Cmd::Family(View::BgpIpv6)),
                ["vpnv6"] => Ok(Cmd::Family(View::BgpVpnv6)),
                _ => Err(wrong_args("ipv6-family unicast | vpnv6 | vpn-instance <name>")),
            }
        }
        (View::Bgp, ["router-id", rest @ ..]) => match rest {
            [a] => Ok(Cmd::Edit(Edit::RouterId(Some(crate::config::check_router_id(a)?)))),
            _ => Err(wrong_args("router-id <A.B.C.D>")),
        },
        (View::Bgp, ["undo", "router-id"]) => Ok(Cmd::Edit(Edit::RouterId(None))),
        (View::Bgp, ["peer", a, "as-number", n]) => {
            Ok(Cmd::Edit(Edit::PeerAs { address: peer_address(a)?, asn: as_number(n)?, line: 0 }))
        }
        (View::Bgp, ["undo", "peer", a] | ["undo", "peer", a, "as-number"] | ["undo", "peer", a, "as-number", _]) => {
            Ok(Cmd::Edit(Edit::DelPeer(peer_address(a)?)))
        }
        (View::Bgp | View::BgpIpv4 | View::BgpIpv6, ["peer", a, "route-limit", rest @ ..]) => {
            let limit = Some(crate::config::RouteLimit::parse(rest)?);
            Ok(Cmd::Edit(Edit::PeerRouteLimit { address: peer_address(a)?, limit }))
        }
        (View::Bgp | View::BgpIpv4 | View::BgpIpv6, ["undo", "peer", a, "route-limit", ..]) => {
            Ok(Cmd::Edit(Edit::PeerRouteLimit { address: peer_address(a)?, limit: None }))
        }
        (View::Bgp, ["peer", a, "password", rest @ ..]) => match rest {
            [kind @ ("simple" | "cipher"), key] => {
                let password = Some(crate::config::Password::new(key, *kind == "cipher")?);
                Ok(Cmd::Edit(Edit::PeerPassword { address: peer_address(a)?, password }))
            }
            _ => Err(wrong_args("peer <ipv4> password simple|cipher <key>")),
        },
        (View::Bgp, ["undo", "peer", a, "password", ..]) => {
            Ok(Cmd::Edit(Edit::PeerPassword { address: peer_address(a)?, password: None }))
        }
        (View::Bgp, ["peer", a, "valid-ttl-hops", rest @ ..]) => {
            let hops = match rest {
                [] => 255,
                [n] => n.parse::<u8>().ok().filter(|n| *n >= 1).ok_or_else(|| wrong_args("valid-ttl-hops 1..255"))?,
                _ => return Err(wrong_args("peer <ipv4> valid-ttl-hops [1..255]")),
            };
            Ok(Cmd::Edit(Edit::PeerTtlHops { address: peer_address(a)?, hops: Some(hops) }))
        }
        (View::Bgp, ["undo", "peer", a, "valid-ttl-hops", ..]) => {
            Ok(Cmd::Edit(Edit::PeerTtlHops { address: peer_address(a)?, hops: None }))
        }
        (View::Bgp | View::BgpIpv4 | View::BgpIpv6 | View::BgpVpnv4 | View::BgpVpnv6, ["peer" | "undo", ..])
            if is_family_cmd(&l) =>
        {
            let on = l[0] == "peer";
            let w = if on { &l[1..] } else { &l[2..] };
            let family = match view {
                View::BgpIpv6 => Family::Ipv6LabeledUnicast,
                View::BgpVpnv4 => Family::Vpnv4,
                View::BgpVpnv6 => Family::Vpnv6,
                _ => Family::Ipv4LabeledUnicast,
            };
            if view == View::Bgp && w[1] == "enable" {
                return Err("peer enable is a command of the ipv4-family unicast and ipv6-family unicast views".into());
            }
            Ok(Cmd::Edit(Edit::PeerFamily { address: peer_address(w[0])?, family, on }))
        }
        (View::System, ["bgp", rest @ ..]) => match rest {
            [asn] => Ok(Cmd::Bgp(as_number(asn)?)),
            _ => Err(wrong_args("bgp <as-number>")),
        },
        (View::System, ["ip" | "ipv6", "route-static", rest @ ..]) => {
            let v6 = l[0] == "ipv6";
            let usage = if v6 {
                "ipv6 route-static <prefix> <length> <next-hop>"
            } else {
                "ip route-static <prefix> <mask-length|mask> <next-hop>"
            };
            let [p, m, nh] = rest else { return Err(wrong_args(usage)) };
            let prefix = parse_prefix(p, m, v6)?;
            let next_hop: IpAddr = nh.parse().map_err(|_| format!("{nh:?} is not a next-hop IP address"))?;
            Ok(Cmd::Edit(Edit::AddRoute(StaticRoute { prefix, next_hop, line: 0 })))
        }
        (View::System, ["undo", "ip" | "ipv6", "route-static", rest @ ..]) => {
            let v6 = l[1] == "ipv6";
            match rest {
                [p, m] => Ok(Cmd::UndoRoutes(parse_prefix(p, m, v6)?)),
                [p, m, nh] => {
                    let prefix = parse_prefix(p, m, v6)?;
                    let next_hop: IpAddr = nh.parse().map_err(|_| format!("{nh:?} is not a next-hop IP address"))?;
                    Ok(Cmd::Edit(Edit::DelRoute(prefix, next_hop)))
                }
                _ => Err(wrong_args("undo ip route-static <prefix> <mask-length> [<next-hop>]")),
            }
        }
        (View::BgpIpv6, ["apply-label", "per-route", "pop-go"]) => Ok(Cmd::Edit(Edit::PopGoV6(Some(true)))),
        (View::BgpIpv6, ["undo", "apply-label", "per-route", "pop-go"]) => Ok(Cmd::Edit(Edit::PopGoV6(Some(false)))),
        (View::Bgp | View::BgpIpv4 | View::BgpIpv6, ["apply-label", rest @ ..]) => match rest {
            ["per-route", "pop-go"] => Ok(Cmd::Edit(Edit::PopGo(true))),
            ["per-route"] => Ok(Cmd::Edit(Edit::LabelMode(LabelMode::PerRoute))),
            ["per-nexthop"] => Ok(Cmd::Edit(Edit::LabelMode(LabelMode::PerNexthop))),
            ["per-instance"] => Ok(Cmd::Edit(Edit::LabelMode(LabelMode::PerInstance))),
            _ => Err(wrong_args("apply-label per-route [pop-go] | per-nexthop | per-instance")),
        },
        (View::Bgp | View::BgpIpv4 | View::BgpIpv6, ["undo", "apply-label", rest @ ..]) => match rest {
            ["per-route", "pop-go"] => Ok(Cmd::Edit(Edit::PopGo(false))),
            ["per-nexthop" | "per-instance"] => Ok(Cmd::Edit(Edit::LabelMode(LabelMode::PerRoute))),
            _ => Err(wrong_args("undo apply-label per-route pop-go | per-nexthop | per-instance")),
        },
        (View::Bgp | View::BgpIpv4 | View::BgpIpv6, ["network", rest @ ..]) => {
            let (p, m, label) = match rest {
                [p, m] => (p, m, None),
                [p, m, "label", n] => (p, m, Some(n)),
                _ => return Err(wrong_args("network <prefix> <mask-length> [label <16..1048575>]")),
            };
            let prefix = parse_prefix(p, m, view == View::BgpIpv6)?;
            if view == View::BgpIpv4 && !prefix.is_v4() {
                return Err(format!("{prefix} is not an IPv4 prefix (IPv6 networks go in ipv6-family unicast)"));
            }
            let label = match label {
                None => None,
                Some(n) => {
                    let v: i64 = n.parse().map_err(|_| format!("label {n:?} is not a number"))?;
                    Some(crate::config::check_label(v)?)
                }
            };
            Ok(Cmd::Edit(Edit::AddNetwork(Network { prefix, label, line: 0 })))
        }
        (View::Bgp | View::BgpIpv4 | View::BgpIpv6, ["undo", "network", rest @ ..]) => match rest {
            [p, m] => Ok(Cmd::Edit(Edit::DelNetwork(parse_prefix(p, m, false)?))),
            _ => Err(wrong_args("undo network <prefix> <mask-length>")),
        },
        _ => Err(unknown()),
    }
}

/// `peer X enable` / `peer X label-route-capability` and their `undo`.
fn is_family_cmd(l: &[&str]) -> bool {
    matches!(
        l,
        ["peer", _, "enable" | "label-route-capability"] | ["undo", "peer", _, "enable" | "label-route-capability"]
    )
}

fn peer_address(a: &str) -> Result<Ipv4Addr, String> {
    crate::config::parse_v4(a, "peer address")
}

fn as_number(n: &str) -> Result<u32, String> {
    let v: u64 = n.parse().map_err(|_| format!("{n:?} is not an AS number"))?;
    match u32::try_from(v) {
        Ok(a) if a > 0 => Ok(a),
        _ => Err(format!("AS number {v} is outside 1..=4294967295")),
    }
}

fn parse_display(w: &[&str]) -> Result<Display, String> {
    match w {
        ["bgp", "peer"] => Ok(Display::BgpPeer),
        ["bgp", "routing-table", "label"] => Ok(Display::BgpRoutingTableLabel(Family::Ipv4LabeledUnicast)),
        ["bgp", "vpnv4", "all", "routing-table", "label"] => Ok(Display::BgpRoutingTableLabel(Family::Vpnv4)),
        ["bgp", "vpnv6", "all", "routing-table", "label"] => Ok(Display::BgpRoutingTableLabel(Family::Vpnv6)),
        ["bgp", "ipv6", "routing-table", "label"] => Ok(Display::BgpRoutingTableLabel(Family::Ipv6LabeledUnicast)),
        ["mpls", "lsp", "protocol", "bgp"] => Ok(Display::MplsLspBgp { verbose: false }),
        ["mpls", "lsp", "protocol", "bgp", "verbose"] => Ok(Display::MplsLspBgp { verbose: true }),
        ["current-configuration"] => Ok(Display::CurrentConfiguration),
        ["configuration", "candidate"] => Ok(Display::CandidateConfiguration),
        ["popgo", "statistics"] => Ok(Display::Statistics),
        ["ip", "vpn-instance"] => Ok(Display::VpnInstance { verbose: false }),
        ["ip", "vpn-instance", "verbose"] => Ok(Display::VpnInstance { verbose: true }),
        ["mpls", "static-lsp"] => Ok(Display::StaticLsp),
        ["mpls", "statistics", "lsp", rest @ ..] => match rest {
            [] | ["all"] => Ok(Display::LspStatistics { in_label: None }),
            ["in-label", l] => match l.parse::<u32>() {
                Ok(v) if v < 1 << 20 => Ok(Display::LspStatistics { in_label: Some(v) }),
                _ => Err(format!("in-label {l:?} is not a label (0..=1048575)")),
            },
            _ => Err("usage: display mpls statistics lsp [all | in-label LABEL]".into()),
        },
        _ => Err(format!(
            "unrecognized display command {:?}; known: mpls lsp protocol bgp [verbose], current-configuration, \
             configuration candidate, popgo statistics, bgp peer, bgp [ipv6] routing-table label, \
             ip vpn-instance [verbose], mpls static-lsp, mpls statistics lsp [all | in-label LABEL]",
            w.join(" ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_seed_procedure() {
        assert_eq!(parse(View::User, "system-view"), Ok(Cmd::SystemView));
        assert_eq!(parse(View::System, "bgp 100"), Ok(Cmd::Bgp(100)));
        assert_eq!(parse(View::Bgp, "apply-label per-route pop-go"), Ok(Cmd::Edit(Edit::PopGo(true))));
        assert_eq!(parse(View::Bgp, "  Commit "), Ok(Cmd::Commit));
        assert_eq!(parse(View::Bgp, "undo apply-label per-route pop-go"), Ok(Cmd::Edit(Edit::PopGo(false))));
        assert_eq!(
            parse(View::Bgp, "display mpls lsp protocol bgp"),
            Ok(Cmd::Display(Display::MplsLspBgp { verbose: false }, Filter::default()))
        );
        let (d, f) = (Display::MplsLspBgp { verbose: true }, Filter::parse("include Pop|Go | count").unwrap());
        assert_eq!(
            parse(View::User, "DISPLAY mpls lsp protocol bgp verbose | include Pop|Go | count"),
            Ok(Cmd::Display(d, f))
        );
        assert!(parse(View::User, "display current-configuration | grep x")
            .unwrap_err()
            .contains("unknown output filter"));
        // A `|` outside a display is no filter.
        assert!(parse(View::Bgp, "peer 1.1.1.1 | count").is_err());
    }

    #[test]
    fn prefixes_masks_and_labels() {
        let p = |s: &str| Prefix::parse(s).unwrap();
        assert_eq!(parse_prefix("10.1.1.0", "24", false), Ok(p("10.1.1.0/24")));
        assert_eq!(parse_prefix("10.1.1.0", "255.255.255.252", false), Ok(p("10.1.1.0/30")));
        assert!(parse_prefix("10.1.1.0", "255.0.255.0", false).unwrap_err().contains("contiguous"));
        assert!(parse_prefix("10.1.1.1", "24", false).unwrap_err().contains("host bits"));
        assert!(parse_prefix("10.1.1.0", "33", false).unwrap_err().contains("longer than 32"));
        let e = parse(View::Bgp, "network 10.1.1.0 24 label 1048576").unwrap_err();
        assert!(e.contains("outside 16..=1048575"), "{e}");
        assert!(parse(View::Bgp, "network 10.1.1.0 24 label 15").unwrap_err().contains("reserved"));
        assert!(parse(View::Bgp, "network 10.1.1.0 24 label x").unwrap_err().contains("not a number"));
        assert_eq!(
            parse(View::System, "ip route-static 10.2.0.0 16 192.168.20.1"),
            Ok(Cmd::Edit(Edit::AddRoute(StaticRoute {
                prefix: p("10.2.0.0/16"),
                next_hop: "192.168.20.1".parse().unwrap(),
                line: 0
            })))
        );
        assert_eq!(parse(View::System, "undo ip route-static 10.2.0.0 16"), Ok(Cmd::UndoRoutes(p("10.2.0.0/16"))));
    }

    #[test]
    fn views_gate_commands() {
        assert!(parse(View::User, "bgp 100").unwrap_err().contains("in user view"));
        assert!(parse(View::System, "network 10.1.1.0 24").unwrap_err().contains("in system view"));
        assert!(parse(View::Bgp, "ip route-static 10.1.1.0 24 1.1.1.1").unwrap_err().contains("in bgp view"));
        assert!(parse(View::User, "commit").is_err());
        assert!(parse(View::System, "bgp 0").unwrap_err().contains("outside"));
        assert!(parse(View::System, "bgp 4294967296").unwrap_err().contains("outside"));
        assert!(parse(View::Bgp, "apply-label per-vrf").unwrap_err().contains("usage"));
        assert!(parse(View::User, "display foo").unwrap_err().contains("unrecognized display"));
        assert_eq!(parse(View::User, "# comment"), Ok(Cmd::Nothing));
    }

    #[test]
    fn peers_and_family_views() {
        let a: Ipv4Addr = "198.18.0.1".parse().unwrap();
        assert_eq!(parse(View::Bgp, "ipv6-family unicast"), Ok(Cmd::Family(View::BgpIpv6)));
        assert_eq!(parse(View::BgpIpv6, "ipv4-family unicast"), Ok(Cmd::Family(View::BgpIpv4)));
        assert_eq!(
            parse(View::Bgp, "peer 198.18.0.1 as-number 4200000000"),
            Ok(Cmd::Edit(Edit::PeerAs { address: a, asn: 4_200_000_000, line: 0 }))
        );
        assert_eq!(parse(View::Bgp, "undo peer 198.18.0.1 as-number 200"), Ok(Cmd::Edit(Edit::DelPeer(a))));
        assert_eq!(parse(View::Bgp, "undo peer 198.18.0.1"), Ok(Cmd::Edit(Edit::DelPeer(a))));
        let fam = |family, on| Ok(Cmd::Edit(Edit::PeerFamily { address: a, family, on }));
        assert_eq!(parse(View::Bgp, "peer 198.18.0.1 label-route-capability"), fam(Family::Ipv4LabeledUnicast, true));
        assert_eq!(parse(View::BgpIpv4, "peer 198.18.0.1 enable"), fam(Family::Ipv4LabeledUnicast, true));
        assert_eq!(parse(View::BgpIpv6, "peer 198.18.0.1 enable"), fam(Family::Ipv6LabeledUnicast, true));
        assert_eq!(
            parse(View::BgpIpv6, "undo peer 198.18.0.1 label-route-capability"),
            fam(Family::Ipv6LabeledUnicast, false)
        );
        assert!(parse(View::Bgp, "peer 198.18.0.1 enable").unwrap_err().contains("family"));
        assert!(parse(View::Bgp, "peer 2001:db8::1 as-number 200").unwrap_err().contains("IPv4"));
        assert!(parse(View::Bgp, "peer 198.18.0.1 as-number 0").unwrap_err().contains("outside"));
        assert!(parse(View::BgpIpv6, "peer 198.18.0.1 as-number 200").unwrap_err().contains("bgp-af-ipv6"));
        assert!(parse(View::System, "peer 198.18.0.1 as-number 200").is_err());
        assert!(parse(View::Bgp, "router-id 0.0.0.0").unwrap_err().contains("0.0.0.0"));
        assert_eq!(
            parse(View::Bgp, "router-id 192.0.2.3"),
            Ok(Cmd::Edit(Edit::RouterId(Some("192.0.2.3".parse().unwrap()))))
        );
        assert!(parse(View::BgpIpv4, "network 2001:db8:: 32").unwrap_err().contains("ipv6-family"));
        assert!(parse(View::BgpIpv6, "network 10.0.0.0 8").unwrap_err().contains("IPv6"));
        assert_eq!(parse(View::BgpIpv6, "commit"), Ok(Cmd::Commit));
        assert_eq!(parse(View::User, "display bgp peer"), Ok(Cmd::Display(Display::BgpPeer, Filter::default())));
        let stats = |in_label| Ok(Cmd::Display(Display::LspStatistics { in_label }, Filter::default()));
        assert_eq!(parse(View::User, "display mpls statistics lsp"), stats(None));
        assert_eq!(parse(View::Bgp, "display mpls statistics lsp all"), stats(None));
        assert_eq!(parse(View::User, "display mpls statistics lsp in-label 48122"), stats(Some(48122)));
        assert!(parse(View::User, "display mpls statistics lsp in-label 1048576").unwrap_err().contains("not a label"));
        assert!(parse(View::User, "display mpls statistics lsp foo").unwrap_err().contains("usage"));
        assert_eq!(
            parse(View::User, "display bgp ipv6 routing-table label"),
            Ok(Cmd::Display(Display::BgpRoutingTableLabel(Family::Ipv6LabeledUnicast), Filter::default()))
        );
    }

    #[test]
    fn peer_route_limit() {
        use crate::config::{LimitAction, RouteLimit};
        let a: Ipv4Addr = "198.18.0.1".parse().unwrap();
        let lim = |limit, percent, action| {
            Ok(Cmd::Edit(Edit::PeerRouteLimit { address: a, limit: Some(RouteLimit { limit, percent, action }) }))
        };
        assert_eq!(parse(View::BgpIpv4, "peer 198.18.0.1 route-limit 1000"), lim(1000, 75, LimitAction::Restart));
        assert_eq!(
            parse(View::Bgp, "peer 198.18.0.1 route-limit 1000 80 alert-only"),
            lim(1000, 80, LimitAction::AlertOnly)
        );
        assert_eq!(
            parse(View::BgpIpv6, "peer 198.18.0.1 route-limit 10 idle-forever"),
            lim(10, 75, LimitAction::IdleForever)
        );
        assert_eq!(
            parse(View::Bgp, "peer 198.18.0.1 route-limit 10 90 idle-timeout 5"),
            lim(10, 90, LimitAction::IdleTimeout(5))
        );
        assert_eq!(
            parse(View::Bgp, "undo peer 198.18.0.1 route-limit"),
            Ok(Cmd::Edit(Edit::PeerRouteLimit { address: a, limit: None }))
        );
        assert!(parse(View::Bgp, "peer 198.18.0.1 route-limit 0").unwrap_err().contains("route limit \"0\""));
        assert!(parse(View::Bgp, "peer 198.18.0.1 route-limit 10 101").unwrap_err().contains("percent"));
        assert!(parse(View::Bgp, "peer 198.18.0.1 route-limit 10 idle-timeout").unwrap_err().contains("usage"));
        assert!(parse(View::Bgp, "peer 198.18.0.1 route-limit").unwrap_err().contains("LIMIT"));
        let r = RouteLimit { limit: 10, percent: 90, action: LimitAction::IdleTimeout(5) };
        assert_eq!(r.words(), "10 90 idle-timeout 5");
        let w: Vec<&str> = r.words().leak().split_whitespace().collect();
        assert_eq!(RouteLimit::parse(&w), Ok(r));
    }

    #[test]
    fn peer_password_and_gtsm() {
        use crate::config::Password;
        let a: Ipv4Addr = "198.18.0.1".parse().unwrap();
        let pw = |k: &str, cipher| {
            Ok(Cmd::Edit(Edit::PeerPassword { address: a, password: Some(Password::new(k, cipher).unwrap()) }))
        };
        assert_eq!(parse(View::Bgp, "peer 198.18.0.1 password simple s3cret"), pw("s3cret", false));
        assert_eq!(parse(View::Bgp, "peer 198.18.0.1 password cipher s3cret"), pw("s3cret", true));
        assert_eq!(
            parse(View::Bgp, "undo peer 198.18.0.1 password"),
            Ok(Cmd::Edit(Edit::PeerPassword { address: a, password: None }))
        );
        assert!(parse(View::Bgp, "peer 198.18.0.1 password s3cret").unwrap_err().contains("simple|cipher"));
        let long = format!("peer 198.18.0.1 password simple {}", "k".repeat(81));
        assert!(parse(View::Bgp, &long).unwrap_err().contains("1..=80"));
        let hops = |h| Ok(Cmd::Edit(Edit::PeerTtlHops { address: a, hops: h }));
        assert_eq!(parse(View::Bgp, "peer 198.18.0.1 valid-ttl-hops"), hops(Some(255)));
        assert_eq!(parse(View::Bgp, "peer 198.18.0.1 valid-ttl-hops 1"), hops(Some(1)));
        assert_eq!(parse(View::Bgp, "undo peer 198.18.0.1 valid-ttl-hops"), hops(None));
        assert!(parse(View::Bgp, "peer 198.18.0.1 valid-ttl-hops 0").is_err());
        assert!(parse(View::Bgp, "peer 198.18.0.1 valid-ttl-hops 256").is_err());
    }
}

//! The VRP commands of the L3VPN egress: `ip vpn-instance` and its family views,
//! `interface` with `ip binding vpn-instance`, `mpls lsr-id`/`mpls`, `static-lsp
//! egress`, `ip route-static vpn-instance`, and the BGP view's `ipv4-family
//! vpn-instance` with `import-route static` and `network`. Like [`super::vrp`], parsing
//! touches no state: names are resolved when the edit is checked.

use super::vrp::{parse_prefix, Cmd, View};
use crate::config::edit::Edit;
use crate::config::edit_vpn::VpnEdit;
use crate::config::{LabelMode, Rd, RouteTarget, StaticLsp};
use std::net::IpAddr;

/// Parses a line of the VPN command set in `view` (whose instance, interface or family
/// name is `ctx`). `None`: not one of these commands (the caller tries the rest).
pub fn parse(view: View, ctx: &str, l: &[&str], w: &[&str]) -> Option<Result<Cmd, String>> {
    let vpn = |e: VpnEdit| Ok(Cmd::Edit(Edit::Vpn(e)));
    let wrong = |usage: &str| Err(format!("incomplete or wrong arguments; usage: {usage}"));
    // Names keep their case (VRP's are case-sensitive); keywords do not.
    let name = |i: usize| w[i].to_string();
    Some(match (view, l) {
        (View::System, ["ip", "vpn-instance", _]) => {
            Ok(Cmd::EditEnter(Edit::Vpn(VpnEdit::Instance(name(2))), View::VpnInstance, name(2)))
        }
        (View::System, ["undo", "ip", "vpn-instance", _]) => vpn(VpnEdit::DelInstance(name(3))),
        (View::System, ["ip" | "ipv6", "route-static", "vpn-instance", ..]) => route(l, w, false),
        (View::System, ["undo", "ip" | "ipv6", "route-static", "vpn-instance", ..]) => route(l, w, true),
        (View::System, ["interface", _]) => Ok(Cmd::Enter(View::Interface, name(1))),
        (View::System, ["mpls", "lsr-id", a]) => match a.parse::<std::net::Ipv4Addr>() {
            Ok(a) if !a.is_unspecified() => vpn(VpnEdit::LsrId(Some(a))),
            _ => Err(format!("{a:?} is not an LSR ID (a non-zero IPv4 address)")),
        },
        (View::System, ["undo", "mpls", "lsr-id", ..]) => vpn(VpnEdit::LsrId(None)),
        (View::System, ["mpls"]) => Ok(Cmd::Enter(View::Mpls, String::new())),
        (View::System, ["static-lsp", "egress", ..]) => static_lsp(l, w),
        (View::System, ["undo", "static-lsp", "egress", _]) => vpn(VpnEdit::DelStaticLsp(name(3))),
        (View::VpnInstance, [f @ ("ipv4-family" | "ipv6-family")]) => {
            let (v4, v) = if *f == "ipv4-family" { (true, View::VpnAf4) } else { (false, View::VpnAf6) };
            Ok(Cmd::EditEnter(Edit::Vpn(VpnEdit::Family { name: ctx.into(), v4 }), v, ctx.into()))
        }
        (View::VpnInstance, ["undo", f @ ("ipv4-family" | "ipv6-family")]) => {
            vpn(VpnEdit::DelFamily { name: ctx.into(), v4: *f == "ipv4-family" })
        }
        (View::VpnAf4 | View::VpnAf6, _) => return af(view == View::VpnAf4, ctx, l, w),
        (View::Interface, ["ip", "binding", "vpn-instance", _]) => {
            vpn(VpnEdit::Binding { port: ctx.into(), vrf: Some(name(3)) })
        }
        (View::Interface, ["undo", "ip", "binding", "vpn-instance", ..]) => {
            vpn(VpnEdit::Binding { port: ctx.into(), vrf: None })
        }
        (View::Bgp, [f @ ("ipv4-family" | "ipv6-family"), "vpn-instance", _]) => {
            let (v4, v) = if *f == "ipv4-family" { (true, View::BgpVpn4) } else { (false, View::BgpVpn6) };
            Ok(Cmd::EditEnter(Edit::Vpn(VpnEdit::BgpFamily { name: name(2), v4 }), v, name(2)))
        }
        (View::BgpVpn4 | View::BgpVpn6, ["import-route", "static"]) => {
            vpn(VpnEdit::ImportStatic { name: ctx.into(), v4: view == View::BgpVpn4, on: true })
        }
        (View::BgpVpn4 | View::BgpVpn6, ["undo", "import-route", "static"]) => {
            vpn(VpnEdit::ImportStatic { name: ctx.into(), v4: view == View::BgpVpn4, on: false })
        }
        (View::BgpVpn4 | View::BgpVpn6, ["network", rest @ ..] | ["undo", "network", rest @ ..]) => {
            let [p, m] = rest else { return Some(wrong("network <prefix> <mask-length>")) };
            match parse_prefix(p, m, view == View::BgpVpn6) {
                Ok(prefix) if prefix.is_v4() != (view == View::BgpVpn4) => {
                    Err(format!("{prefix} is not of this family's address family"))
                }
                Ok(prefix) => Ok(Cmd::VpnNetwork { name: ctx.into(), prefix, add: l[0] == "network" }),
                Err(e) => Err(e),
            }
        }
        _ => return None,
    })
}

/// The family views of a VPN instance.
fn af(v4: bool, name: &str, l: &[&str], w: &[&str]) -> Option<Result<Cmd, String>> {
    let vpn = |e: VpnEdit| Ok(Cmd::Edit(Edit::Vpn(e)));
    let name = name.to_string();
    Some(match l {
        ["route-distinguisher", _] => match Rd::parse(w[1]) {
            Ok(rd) => vpn(VpnEdit::Rd { name, v4, rd: Some(rd) }),
            Err(e) => Err(e),
        },
        ["undo", "route-distinguisher", ..] => vpn(VpnEdit::Rd { name, v4, rd: None }),
        ["vpn-target", rest @ ..] | ["undo", "vpn-target", rest @ ..] => {
            let on = l[0] == "vpn-target";
            let (values, dir) = match rest.last().copied() {
                Some(d @ ("export-extcommunity" | "import-extcommunity" | "both")) => (&rest[..rest.len() - 1], d),
                _ => (rest, "both"),
            };
            if values.is_empty() {
                return Some(Err(
                    "incomplete or wrong arguments; usage: vpn-target <value>... [export-extcommunity | \
                     import-extcommunity | both]"
                        .into(),
                ));
            }
            let (export, import) = (dir != "import-extcommunity", dir != "export-extcommunity");
            // One edit per value: the candidate takes them in order.
            let mut edits = Vec::new();
            for v in values {
                match RouteTarget::parse(v) {
                    Ok(rt) => edits.push(Edit::Vpn(VpnEdit::Target { name: name.clone(), v4, rt, export, import, on })),
                    Err(e) => return Some(Err(e)),
                }
            }
            Ok(Cmd::Edits(edits))
        }
        ["apply-label", rest @ ..] => match rest {
            ["per-route", "pop-go"] => vpn(VpnEdit::Label { name, v4, mode: LabelMode::PerRoute, pop_go: true }),
            ["per-nexthop", "pop-go"] => vpn(VpnEdit::Label { name, v4, mode: LabelMode::PerNexthop, pop_go: true }),
            ["per-route"] => vpn(VpnEdit::Label { name, v4, mode: LabelMode::PerRoute, pop_go: false }),
            ["per-nexthop"] => vpn(VpnEdit::Label { name, v4, mode: LabelMode::PerNexthop, pop_go: false }),
            ["per-instance"] => vpn(VpnEdit::Label { name, v4, mode: LabelMode::PerInstance, pop_go: false }),
            _ => Err("incomplete or wrong arguments; usage: apply-label per-route [pop-go] | per-nexthop [pop-go] \
                      | per-instance"
                .into()),
        },
        // VRP's default for a VPN instance is one label per instance.
        ["undo", "apply-label", ..] => vpn(VpnEdit::Label { name, v4, mode: LabelMode::PerInstance, pop_go: false }),
        _ => return None,
    })
}

/// `[undo] ip|ipv6 route-static vpn-instance NAME PREFIX MASK [NEXT-HOP]`.
fn route(l: &[&str], w: &[&str], undo: bool) -> Result<Cmd, String> {
    let at = usize::from(undo);
    let v6 = l[at] == "ipv6";
    let rest = &w[at + 3..];
    let usage = "ip route-static vpn-instance <name> <prefix> <mask-length|mask> <next-hop>";
    let (name, p, m, nh) = match rest {
        [n, p, m, nh] => (n, p, m, Some(nh)),
        [n, p, m] if undo => (n, p, m, None),
        _ => return Err(format!("incomplete or wrong arguments; usage: {}{usage}", if undo { "undo " } else { "" })),
    };
    let prefix = parse_prefix(p, m, v6)?;
    let next_hop = match nh {
        Some(nh) => Some(nh.parse::<IpAddr>().map_err(|_| format!("{nh:?} is not a next-hop IP address"))?),
        None => None,
    };
    Ok(Cmd::VpnRoute { name: name.to_string(), prefix, next_hop, add: !undo })
}

/// `static-lsp egress NAME [incoming-interface PORT] in-label L`.
fn static_lsp(l: &[&str], w: &[&str]) -> Result<Cmd, String> {
    let usage =
        "incomplete or wrong arguments; usage: static-lsp egress <name> [incoming-interface <port>] in-label <label>";
    let (in_port, label) = match l {
        [_, _, _, "in-label", n] => (None, n),
        [_, _, _, "incoming-interface", _, "in-label", n] => (Some(w[4].to_string()), n),
        _ => return Err(usage.into()),
    };
    let v: i64 = label.parse().map_err(|_| format!("label {label:?} is not a number"))?;
    let in_label = crate::config::check_label(v)?;
    Ok(Cmd::Edit(Edit::Vpn(VpnEdit::StaticLsp(StaticLsp { name: w[2].to_string(), in_label, in_port, line: 0 }))))
}

//! The VRP command subset: views, parsing one line into a [`Cmd`], and applying a
//! configuration [`Edit`] to a candidate [`Config`].
//!
//! Parsing never touches any state; [`apply`] checks everything before it mutates, so
//! a rejected line leaves the candidate exactly as it was (a bad line never
//! half-applies).

use crate::config::{Bgp, Config, LabelMode, Network, Prefix, StaticRoute, DEFAULT_LABEL_BASE};
use crate::ilm::Delta;
use std::net::IpAddr;

/// The command view a session is in (VRP: user view `<Dev>`, system view `[Dev]`,
/// BGP view `[Dev-bgp]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    User,
    System,
    Bgp,
}

impl View {
    pub fn name(self) -> &'static str {
        match self {
            View::User => "user",
            View::System => "system",
            View::Bgp => "bgp",
        }
    }

    /// The VRP prompt for device `dev`.
    pub fn prompt(self, dev: &str) -> String {
        match self {
            View::User => format!("<{dev}>"),
            View::System => format!("[{dev}]"),
            View::Bgp => format!("[{dev}-bgp]"),
        }
    }
}

/// A change to the candidate configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edit {
    /// `bgp <as>` when no BGP instance exists yet.
    CreateBgp(u32),
    /// `apply-label per-route pop-go` / `undo apply-label per-route pop-go`.
    PopGo(bool),
    /// `apply-label per-route | per-nexthop | per-instance`.
    LabelMode(LabelMode),
    /// `network <prefix> <len> [label N]`.
    AddNetwork(Network),
    /// `undo network <prefix> <len>`.
    DelNetwork(Prefix),
    /// `ip route-static <prefix> <len> <next-hop>`.
    AddRoute(StaticRoute),
    /// `undo ip route-static <prefix> <len> <next-hop>`.
    DelRoute(Prefix, IpAddr),
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
    Edit(Edit),
    /// `undo ip route-static <prefix> <len>`: every route to the prefix.
    UndoRoutes(Prefix),
    Display(Display),
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
    let w: Vec<&str> = line.split_whitespace().collect();
    if w.is_empty() || w[0].starts_with('#') {
        return Ok(Cmd::Nothing);
    }
    let lower: Vec<String> = w.iter().map(|s| s.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();
    if l[0] == "display" {
        return parse_display(&l[1..]).map(Cmd::Display);
    }
    let unknown = || format!("unrecognized command {:?} in {} view", w[0], view.name());
    let wrong_args = |usage: &str| format!("incomplete or wrong arguments; usage: {usage}");
    match (view, l.as_slice()) {
        (_, ["quit"]) => Ok(Cmd::Quit),
        (_, ["return"]) => Ok(Cmd::Return),
        (View::User, ["system-view"]) => Ok(Cmd::SystemView),
        (View::System | View::Bgp, ["commit"]) => Ok(Cmd::Commit),
        (View::System | View::Bgp, ["clear", "configuration", "candidate"]) => Ok(Cmd::ClearCandidate),
        (View::System, ["bgp", rest @ ..]) => match rest {
            [asn] => {
                let v: u64 = asn.parse().map_err(|_| format!("{asn:?} is not an AS number"))?;
                match u32::try_from(v) {
                    Ok(a) if a > 0 => Ok(Cmd::Bgp(a)),
                    _ => Err(format!("AS number {v} is outside 1..=4294967295")),
                }
            }
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
        (View::Bgp, ["apply-label", rest @ ..]) => match rest {
            ["per-route", "pop-go"] => Ok(Cmd::Edit(Edit::PopGo(true))),
            ["per-route"] => Ok(Cmd::Edit(Edit::LabelMode(LabelMode::PerRoute))),
            ["per-nexthop"] => Ok(Cmd::Edit(Edit::LabelMode(LabelMode::PerNexthop))),
            ["per-instance"] => Ok(Cmd::Edit(Edit::LabelMode(LabelMode::PerInstance))),
            _ => Err(wrong_args("apply-label per-route [pop-go] | per-nexthop | per-instance")),
        },
        (View::Bgp, ["undo", "apply-label", rest @ ..]) => match rest {
            ["per-route", "pop-go"] => Ok(Cmd::Edit(Edit::PopGo(false))),
            ["per-nexthop" | "per-instance"] => Ok(Cmd::Edit(Edit::LabelMode(LabelMode::PerRoute))),
            _ => Err(wrong_args("undo apply-label per-route pop-go | per-nexthop | per-instance")),
        },
        (View::Bgp, ["network", rest @ ..]) => {
            let (p, m, label) = match rest {
                [p, m] => (p, m, None),
                [p, m, "label", n] => (p, m, Some(n)),
                _ => return Err(wrong_args("network <prefix> <mask-length> [label <16..1048575>]")),
            };
            let prefix = parse_prefix(p, m, false)?;
            let label = match label {
                None => None,
                Some(n) => {
                    let v: i64 = n.parse().map_err(|_| format!("label {n:?} is not a number"))?;
                    Some(crate::config::check_label(v)?)
                }
            };
            Ok(Cmd::Edit(Edit::AddNetwork(Network { prefix, label, line: 0 })))
        }
        (View::Bgp, ["undo", "network", rest @ ..]) => match rest {
            [p, m] => Ok(Cmd::Edit(Edit::DelNetwork(parse_prefix(p, m, false)?))),
            _ => Err(wrong_args("undo network <prefix> <mask-length>")),
        },
        _ => Err(unknown()),
    }
}

fn parse_display(w: &[&str]) -> Result<Display, String> {
    match w {
        ["mpls", "lsp", "protocol", "bgp"] => Ok(Display::MplsLspBgp { verbose: false }),
        ["mpls", "lsp", "protocol", "bgp", "verbose"] => Ok(Display::MplsLspBgp { verbose: true }),
        ["current-configuration"] => Ok(Display::CurrentConfiguration),
        ["configuration", "candidate"] => Ok(Display::CandidateConfiguration),
        ["popgo", "statistics"] => Ok(Display::Statistics),
        _ => Err(format!(
            "unrecognized display command {:?}; known: mpls lsp protocol bgp [verbose], current-configuration, \
             configuration candidate, popgo statistics",
            w.join(" ")
        )),
    }
}

/// The header of a BGP instance (everything but its networks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BgpHead {
    pub asn: u32,
    pub label_mode: LabelMode,
    pub pop_go: bool,
    pub label_base: u32,
}

impl BgpHead {
    pub fn of(b: &Bgp) -> BgpHead {
        BgpHead { asn: b.asn, label_mode: b.label_mode, pop_go: b.pop_go, label_base: b.label_base }
    }
}

/// The queries and primitive changes [`apply`] makes to a configuration: implemented by
/// [`Config`] (linear scans) and by the control plane's indexed candidate
/// (`store::Cand`, hash lookups), so both follow exactly the same rules.
pub trait ConfigEdit {
    fn bgp_head(&self) -> Option<BgpHead>;
    /// Sets the BGP header, creating an instance without networks if there is none.
    fn set_bgp_head(&mut self, h: BgpHead);
    /// A network with a static label, if any.
    fn labelled_network(&self) -> Option<Prefix>;
    /// The network using static label `l`, if any.
    fn network_with_label(&self, l: u32) -> Option<Prefix>;
    fn has_network(&self, p: Prefix) -> bool;
    fn push_network(&mut self, n: Network);
    /// Removes network `p`; false if there is none.
    fn remove_network(&mut self, p: Prefix) -> bool;
    fn has_route(&self, p: Prefix, nh: IpAddr) -> bool;
    /// Number of static routes for `p`.
    fn route_count(&self, p: Prefix) -> usize;
    /// Checks that `nh` is a neighbor of the family of `p` (see `Config::check_static_route`).
    fn check_route(&self, p: Prefix, nh: IpAddr) -> Result<(), String>;
    /// Appends a route (not present yet).
    fn push_route(&mut self, r: StaticRoute);
    /// Removes the (present) route `p` via `nh`.
    fn remove_route(&mut self, p: Prefix, nh: IpAddr);
}

impl ConfigEdit for Config {
    fn bgp_head(&self) -> Option<BgpHead> {
        self.bgp.as_ref().map(BgpHead::of)
    }
    fn set_bgp_head(&mut self, h: BgpHead) {
        let b = self.bgp.get_or_insert_with(|| Bgp {
            asn: h.asn,
            label_mode: h.label_mode,
            pop_go: h.pop_go,
            label_base: h.label_base,
            networks: Vec::new(),
        });
        (b.asn, b.label_mode, b.pop_go, b.label_base) = (h.asn, h.label_mode, h.pop_go, h.label_base);
    }
    fn labelled_network(&self) -> Option<Prefix> {
        self.bgp.as_ref()?.networks.iter().find(|n| n.label.is_some()).map(|n| n.prefix)
    }
    fn network_with_label(&self, l: u32) -> Option<Prefix> {
        self.bgp.as_ref()?.networks.iter().find(|n| n.label == Some(l)).map(|n| n.prefix)
    }
    fn has_network(&self, p: Prefix) -> bool {
        self.bgp.as_ref().is_some_and(|b| b.networks.iter().any(|n| n.prefix == p))
    }
    fn push_network(&mut self, n: Network) {
        if let Some(b) = self.bgp.as_mut() {
            b.networks.push(n);
        }
    }
    fn remove_network(&mut self, p: Prefix) -> bool {
        let Some(b) = self.bgp.as_mut() else { return false };
        match b.networks.iter().position(|n| n.prefix == p) {
            Some(at) => {
                b.networks.remove(at);
                true
            }
            None => false,
        }
    }
    fn has_route(&self, p: Prefix, nh: IpAddr) -> bool {
        self.static_routes.iter().any(|r| r.prefix == p && r.next_hop == nh)
    }
    fn route_count(&self, p: Prefix) -> usize {
        self.static_routes.iter().filter(|r| r.prefix == p).count()
    }
    fn check_route(&self, p: Prefix, nh: IpAddr) -> Result<(), String> {
        self.check_static_route(p, nh)
    }
    fn push_route(&mut self, r: StaticRoute) {
        self.static_routes.push(r);
    }
    fn remove_route(&mut self, p: Prefix, nh: IpAddr) {
        if let Some(at) = self.static_routes.iter().position(|r| r.prefix == p && r.next_hop == nh) {
            self.static_routes.remove(at);
        }
    }
}

/// Applies `e` to `cfg`, or leaves `cfg` untouched and says why not. `Ok(false)` means
/// the edit changes nothing (e.g. re-entering an existing route) and need not be kept.
pub fn apply<C: ConfigEdit + ?Sized>(cfg: &mut C, e: &Edit) -> Result<bool, String> {
    match e {
        Edit::CreateBgp(asn) => match cfg.bgp_head() {
            Some(b) if b.asn == *asn => Ok(false),
            Some(b) => Err(format!("BGP is already running with AS {}; the AS number cannot be changed here", b.asn)),
            None => {
                cfg.set_bgp_head(BgpHead {
                    asn: *asn,
                    label_mode: LabelMode::PerRoute,
                    pop_go: false,
                    label_base: DEFAULT_LABEL_BASE,
                });
                Ok(true)
            }
        },
        Edit::PopGo(on) => {
            let mut b = cfg.bgp_head().ok_or("no BGP instance")?;
            let changed = b.pop_go != *on;
            b.pop_go = *on;
            cfg.set_bgp_head(b);
            Ok(changed)
        }
        Edit::LabelMode(m) => {
            let mut b = cfg.bgp_head().ok_or("no BGP instance")?;
            if *m != LabelMode::PerRoute {
                if let Some(p) = cfg.labelled_network() {
                    return Err(format!(
                        "network {p} has a static label, which needs apply-label per-route (undo it first)"
                    ));
                }
            }
            let changed = b.label_mode != *m;
            b.label_mode = *m;
            cfg.set_bgp_head(b);
            Ok(changed)
        }
        Edit::AddNetwork(n) => {
            if cfg.route_count(n.prefix) == 0 {
                return Err(format!("no static route for {} (a network must match a static route's prefix)", n.prefix));
            }
            let bgp = cfg.bgp_head().ok_or("no [bgp] instance")?;
            if cfg.has_network(n.prefix) {
                return Err(format!("duplicate network {}", n.prefix));
            }
            if let Some(l) = n.label {
                if bgp.label_mode != LabelMode::PerRoute {
                    return Err(format!(
                        "a static label is only valid with label_mode = \"per-route\" (network {})",
                        n.prefix
                    ));
                }
                if let Some(o) = cfg.network_with_label(l) {
                    return Err(format!("duplicate label {l} (already used by network {o})"));
                }
            }
            cfg.push_network(n.clone());
            Ok(true)
        }
        Edit::DelNetwork(p) => {
            cfg.bgp_head().ok_or("no BGP instance")?;
            if !cfg.remove_network(*p) {
                return Err(format!("network {p} does not exist"));
            }
            Ok(true)
        }
        Edit::AddRoute(r) => {
            if cfg.has_route(r.prefix, r.next_hop) {
                return Ok(false);
            }
            cfg.check_route(r.prefix, r.next_hop)?;
            cfg.push_route(r.clone());
            Ok(true)
        }
        Edit::DelRoute(p, nh) => {
            if !cfg.has_route(*p, *nh) {
                return Err(format!("static route {p} via {nh} does not exist"));
            }
            if cfg.has_network(*p) && cfg.route_count(*p) <= 1 {
                return Err(format!(
                    "network {p} is imported into BGP and needs this route; run `undo network {} {}` in the bgp view first",
                    p.addr, p.len
                ));
            }
            cfg.remove_route(*p, *nh);
            Ok(true)
        }
    }
}

/// What a list of applied edits means to `ilm::patch`.
pub fn delta_of<'a>(edits: impl IntoIterator<Item = &'a Edit>) -> Delta {
    let mut d = Delta::default();
    for e in edits {
        match e {
            Edit::CreateBgp(_) | Edit::LabelMode(_) => d.rebuild = true,
            Edit::PopGo(_) => {} // patch compares the final pop-go setting
            Edit::AddNetwork(n) => d.networks_added.push(n.clone()),
            Edit::DelNetwork(p) => d.networks_removed.push(*p),
            Edit::AddRoute(r) => d.routes.push(r.prefix),
            Edit::DelRoute(p, _) => d.routes.push(*p),
        }
    }
    d
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
            Ok(Cmd::Display(Display::MplsLspBgp { verbose: false }))
        );
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
    fn a_rejected_edit_leaves_the_config_untouched() {
        let cfg = Config::parse(include_str!("../../pcaps/seed.toml")).unwrap();
        let p = |s: &str| Prefix::parse(s).unwrap();
        let bad = [
            Edit::AddNetwork(Network { prefix: p("10.9.0.0/16"), label: None, line: 1 }),
            Edit::AddNetwork(Network { prefix: p("10.1.1.0/30"), label: Some(48122), line: 1 }),
            Edit::DelNetwork(p("10.9.0.0/16")),
            Edit::AddRoute(StaticRoute {
                prefix: p("10.9.0.0/16"),
                next_hop: "192.168.99.1".parse().unwrap(),
                line: 1,
            }),
            Edit::DelRoute(p("10.1.1.0/24"), "192.168.10.1".parse().unwrap()),
            Edit::DelRoute(p("10.1.1.0/24"), "192.168.20.1".parse().unwrap()),
            Edit::LabelMode(LabelMode::PerNexthop),
            Edit::CreateBgp(200),
        ];
        for e in bad {
            let mut c = cfg.clone();
            assert!(apply(&mut c, &e).is_err(), "{e:?}");
            assert_eq!(c, cfg, "{e:?} changed the config");
        }
        let mut c = cfg.clone();
        assert_eq!(apply(&mut c, &Edit::CreateBgp(100)), Ok(false));
        assert_eq!(apply(&mut c, &Edit::PopGo(true)), Ok(false));
        assert_eq!(apply(&mut c, &Edit::PopGo(false)), Ok(true));
    }
}

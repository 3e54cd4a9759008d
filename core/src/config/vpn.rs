//! VPN instances (VRFs) and the egress's own transport labels.
//!
//! - A **VPN instance** (VRP `ip vpn-instance NAME`, RFC 4364) has an IPv4 and an IPv6
//!   address family, each with a route distinguisher, route targets and the label
//!   settings of its VPN routes (`apply-label per-route [pop-go] | per-nexthop [pop-go] |
//!   per-instance`). Ports bound to it (`ip binding vpn-instance`), their neighbors and
//!   its static routes (`ip route-static vpn-instance`) form its own routing table:
//!   prefixes may overlap between instances and never leak across them.
//! - A **static egress LSP** (VRP `static-lsp egress NAME in-label L`) is a label of this
//!   device's own transport LSP: on top of the stack it is popped and processing goes on
//!   with the label below (the VPN label, or a BGP label); at the bottom of the stack the
//!   packet is routed by IP in the public table.
//!
//! Inside the tables an instance is a small number, its *VRF id* (0 is the public
//! table): [`Prefix::vrf`](super::Prefix) carries it, so that static routes, networks
//! and LSPs of different instances are different keys everywhere.

use super::{check_label, invalid, parse_v4, Config, ConfigError, LabelMode, Lines};
use serde::Deserialize;
use std::fmt;
use std::net::Ipv4Addr;
use toml::Spanned;

/// The VRF id of the public (global) routing table.
pub const PUBLIC: u16 = 0;

/// Largest VRF id: the ILM entry has 11 bits for it.
pub const MAX_VRF: u16 = 2047;

/// An RFC 4364 route distinguisher, as its 8 bytes on the wire (type, then value).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rd(pub [u8; 8]);

/// An RFC 4360 route-target extended community, as its 8 bytes on the wire (type,
/// sub-type 0x02, value).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteTarget(pub [u8; 8]);

/// The 6 value bytes and the type of `ADMIN:NUMBER`, in the three forms RFC 4364 and
/// RFC 4360 share: a 2-byte AS with a 4-byte number (type 0), an IPv4 address with a
/// 2-byte number (type 1), a 4-byte AS (above 65535, or written `X.Y`) with a 2-byte
/// number (type 2).
fn admin_number(s: &str, what: &str) -> Result<(u8, [u8; 6]), String> {
    let bad = || format!("{s:?} is not a {what} (want AS:NUMBER, IPv4:NUMBER or AS.AS:NUMBER)");
    let (a, n) = s.rsplit_once(':').ok_or_else(bad)?;
    let mut v = [0u8; 6];
    if let Ok(ip) = a.parse::<Ipv4Addr>() {
        let n: u16 = n.parse().map_err(|_| format!("{s}: the number after an IPv4 address is 0..=65535"))?;
        v[..4].copy_from_slice(&ip.octets());
        v[4..].copy_from_slice(&n.to_be_bytes());
        return Ok((1, v));
    }
    let asn: u32 = match a.split_once('.') {
        Some((hi, lo)) => {
            let hi: u16 = hi.parse().map_err(|_| bad())?;
            let lo: u16 = lo.parse().map_err(|_| bad())?;
            (u32::from(hi) << 16) | u32::from(lo)
        }
        None => a.parse().map_err(|_| bad())?,
    };
    if asn <= 0xffff && !a.contains('.') {
        let n: u32 = n.parse().map_err(|_| format!("{s}: the number after a 2-byte AS is 0..=4294967295"))?;
        v[..2].copy_from_slice(&(asn as u16).to_be_bytes());
        v[2..].copy_from_slice(&n.to_be_bytes());
        Ok((0, v))
    } else {
        let n: u16 = n.parse().map_err(|_| format!("{s}: the number after a 4-byte AS is 0..=65535"))?;
        v[..4].copy_from_slice(&asn.to_be_bytes());
        v[4..].copy_from_slice(&n.to_be_bytes());
        Ok((2, v))
    }
}

fn fmt_admin_number(f: &mut fmt::Formatter<'_>, kind: u8, v: &[u8]) -> fmt::Result {
    match kind {
        0 => write!(f, "{}:{}", u16::from_be_bytes([v[0], v[1]]), u32::from_be_bytes([v[2], v[3], v[4], v[5]])),
        1 => write!(f, "{}:{}", Ipv4Addr::new(v[0], v[1], v[2], v[3]), u16::from_be_bytes([v[4], v[5]])),
        2 => {
            let asn = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
            write!(f, "{}.{}:{}", asn >> 16, asn & 0xffff, u16::from_be_bytes([v[4], v[5]]))
        }
        _ => write!(f, "type{kind}:{}", v.iter().map(|b| format!("{b:02x}")).collect::<String>()),
    }
}

impl Rd {
    pub fn parse(s: &str) -> Result<Rd, String> {
        let (kind, v) = admin_number(s, "route distinguisher")?;
        let mut b = [0u8; 8];
        b[1] = kind;
        b[2..].copy_from_slice(&v);
        Ok(Rd(b))
    }
}

impl fmt::Display for Rd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_admin_number(f, self.0[1], &self.0[2..])
    }
}

impl RouteTarget {
    pub fn parse(s: &str) -> Result<RouteTarget, String> {
        let (kind, v) = admin_number(s, "VPN target")?;
        let mut b = [kind, 0x02, 0, 0, 0, 0, 0, 0];
        b[2..].copy_from_slice(&v);
        Ok(RouteTarget(b))
    }
}

impl fmt::Display for RouteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_admin_number(f, self.0[0], &self.0[2..])
    }
}

/// One address family of a VPN instance (VRP `ipv4-family` / `ipv6-family` inside `ip
/// vpn-instance`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct VpnAf {
    /// `route-distinguisher`: required before targets and labels (as on the device).
    pub rd: Option<Rd>,
    /// `vpn-target X export-extcommunity` (or `both`).
    pub export: Vec<RouteTarget>,
    /// `vpn-target X import-extcommunity` (or `both`).
    pub import: Vec<RouteTarget>,
    /// `apply-label per-route | per-nexthop | per-instance`; VRP's default for a VPN
    /// instance is per-route.
    pub label_mode: LabelMode,
    /// `apply-label per-route pop-go` / `apply-label per-nexthop pop-go`.
    pub pop_go: bool,
}

/// `ip vpn-instance NAME`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VpnInstance {
    pub name: String,
    /// The VRF id (1..=2047): stable while the instance exists.
    pub id: u16,
    pub v4: Option<VpnAf>,
    pub v6: Option<VpnAf>,
    pub line: usize,
}

impl VpnInstance {
    /// The address family `v4` (true) or IPv6.
    pub fn af(&self, v4: bool) -> Option<&VpnAf> {
        if v4 {
            self.v4.as_ref()
        } else {
            self.v6.as_ref()
        }
    }

    pub fn af_mut(&mut self, v4: bool) -> &mut Option<VpnAf> {
        if v4 {
            &mut self.v4
        } else {
            &mut self.v6
        }
    }
}

/// `static-lsp egress NAME [incoming-interface PORT] in-label L`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticLsp {
    pub name: String,
    pub in_label: u32,
    /// Shown and kept; the data path accepts the label on every port (a burst does not
    /// know its input port on every backend).
    pub in_port: Option<String>,
    pub line: usize,
}

/// `mpls lsr-id X` + `mpls`: the MPLS instance and its static egress LSPs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mpls {
    pub lsr_id: Ipv4Addr,
    pub static_lsps: Vec<StaticLsp>,
}

/// `ipv4-family vpn-instance NAME` / `ipv6-family vpn-instance NAME` in the BGP view:
/// the instance's routes that BGP advertises as VPN routes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BgpVpnFamily {
    pub vrf: u16,
    pub v4: bool,
    /// `import-route static`: every static route of the instance (of this family) is
    /// a network.
    pub import_static: bool,
    pub line: usize,
}

// ---- TOML ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVpnInstance {
    name: Spanned<String>,
    ipv4: Option<Spanned<RawVpnAf>>,
    ipv6: Option<Spanned<RawVpnAf>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVpnAf {
    route_distinguisher: Option<Spanned<String>>,
    #[serde(default)]
    vpn_target_export: Vec<Spanned<String>>,
    #[serde(default)]
    vpn_target_import: Vec<Spanned<String>>,
    label_mode: Option<Spanned<String>>,
    pop_go: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBgpVpn {
    name: Spanned<String>,
    family: Spanned<String>,
    import_static: Option<bool>,
    table: Option<Spanned<String>>,
}

/// The `table` key of a `[[bgp.vpn_instance]]`.
pub(super) fn table_key(r: &Spanned<RawBgpVpn>) -> Option<&Spanned<String>> {
    r.get_ref().table.as_ref()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMpls {
    lsr_id: Spanned<String>,
    #[serde(default)]
    static_lsp: Vec<Spanned<RawStaticLsp>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStaticLsp {
    name: Spanned<String>,
    in_label: Spanned<i64>,
    incoming_interface: Option<Spanned<String>>,
}

/// Checks a VPN instance or static LSP name: VRP allows 1 to 31 characters without
/// spaces; popgo also keeps it to `[A-Za-z0-9._-]` (it names files and metrics labels).
pub fn check_name(name: &str, what: &'static str) -> Result<(), super::edit::EditError> {
    if name.is_empty() || name.len() > 31 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(super::edit::EditError::BadName { what, name: name.to_string() });
    }
    Ok(())
}

/// Parses a label mode name (`per-route`, `per-nexthop`, `per-instance`).
pub fn label_mode(s: &str) -> Option<LabelMode> {
    match s {
        "per-route" => Some(LabelMode::PerRoute),
        "per-nexthop" => Some(LabelMode::PerNexthop),
        "per-instance" => Some(LabelMode::PerInstance),
        _ => None,
    }
}

/// `[[vpn_instance]]`: the instances with VRF ids 1, 2, ... in file order.
pub(super) fn instances(raw: &[Spanned<RawVpnInstance>], lines: &Lines) -> Result<Vec<VpnInstance>, ConfigError> {
    let mut out: Vec<VpnInstance> = Vec::with_capacity(raw.len());
    let mut rds: Vec<(Rd, String)> = Vec::new();
    for r in raw {
        let line = lines.of(r);
        let r = r.get_ref();
        let name = r.name.get_ref().clone();
        check_name(&name, "VPN instance")
            .map_err(|m| invalid(lines.of(&r.name), "vpn_instance.name", m.to_string()))?;
        if out.iter().any(|v| v.name == name) {
            return Err(invalid(lines.of(&r.name), "vpn_instance.name", format!("duplicate VPN instance {name:?}")));
        }
        if out.len() >= MAX_VRF as usize {
            return Err(invalid(line, "vpn_instance", format!("at most {MAX_VRF} VPN instances are supported")));
        }
        let mut inst = VpnInstance { name, id: out.len() as u16 + 1, v4: None, v6: None, line };
        for (v4, af) in [(true, &r.ipv4), (false, &r.ipv6)] {
            let Some(af) = af else { continue };
            let key = if v4 { "vpn_instance.ipv4" } else { "vpn_instance.ipv6" };
            let af_line = lines.of(af);
            let af = af.get_ref();
            let rd = af.route_distinguisher.as_ref().ok_or_else(|| {
                invalid(af_line, &format!("{key}.route_distinguisher"), "missing: a VPN address family needs an RD")
            })?;
            let rd_key = format!("{key}.route_distinguisher");
            let rd_v = Rd::parse(rd.get_ref()).map_err(|m| invalid(lines.of(rd), &rd_key, m))?;
            if let Some((_, other)) = rds.iter().find(|(x, _)| *x == rd_v) {
                return Err(invalid(lines.of(rd), &rd_key, format!("duplicate RD {rd_v} (already used by {other})")));
            }
            rds.push((rd_v, format!("VPN instance {}", inst.name)));
            let targets = |list: &[Spanned<String>], k: &str| -> Result<Vec<RouteTarget>, ConfigError> {
                list.iter()
                    .map(|t| {
                        RouteTarget::parse(t.get_ref()).map_err(|m| invalid(lines.of(t), &format!("{key}.{k}"), m))
                    })
                    .collect()
            };
            let mode = match &af.label_mode {
                None => LabelMode::PerRoute,
                Some(m) => label_mode(m.get_ref()).ok_or_else(|| {
                    invalid(
                        lines.of(m),
                        &format!("{key}.label_mode"),
                        format!("{:?} is not per-route, per-nexthop or per-instance", m.get_ref()),
                    )
                })?,
            };
            *inst.af_mut(v4) = Some(VpnAf {
                rd: Some(rd_v),
                export: targets(&af.vpn_target_export, "vpn_target_export")?,
                import: targets(&af.vpn_target_import, "vpn_target_import")?,
                label_mode: mode,
                pop_go: af.pop_go.unwrap_or(false),
            });
        }
        out.push(inst);
    }
    Ok(out)
}

/// The VRF id a `vpn_instance = NAME` key names (0 without the key).
pub(super) fn vrf_of(
    instances: &[VpnInstance],
    key: Option<&Spanned<String>>,
    lines: &Lines,
    what: &str,
) -> Result<u16, ConfigError> {
    let Some(k) = key else { return Ok(PUBLIC) };
    instances
        .iter()
        .find(|v| v.name == *k.get_ref())
        .map(|v| v.id)
        .ok_or_else(|| invalid(lines.of(k), what, format!("unknown VPN instance {:?}", k.get_ref())))
}

/// `[[bgp.vpn_instance]]`.
pub(super) fn bgp_families(
    raw: &[Spanned<RawBgpVpn>],
    cfg: &Config,
    lines: &Lines,
) -> Result<Vec<BgpVpnFamily>, ConfigError> {
    let mut out: Vec<BgpVpnFamily> = Vec::new();
    for r in raw {
        let line = lines.of(r);
        let r = r.get_ref();
        let inst = cfg.vpn_instance_named(r.name.get_ref()).ok_or_else(|| {
            invalid(lines.of(&r.name), "bgp.vpn_instance.name", format!("unknown VPN instance {:?}", r.name.get_ref()))
        })?;
        let v4 = match r.family.get_ref().as_str() {
            "ipv4" => true,
            "ipv6" => false,
            other => {
                return Err(invalid(
                    lines.of(&r.family),
                    "bgp.vpn_instance.family",
                    format!("{other:?} is not \"ipv4\" or \"ipv6\""),
                ))
            }
        };
        if inst.af(v4).is_none() {
            return Err(invalid(
                line,
                "bgp.vpn_instance",
                format!(
                    "VPN instance {} has no {} family (configure its route_distinguisher first)",
                    inst.name,
                    if v4 { "ipv4" } else { "ipv6" }
                ),
            ));
        }
        if out.iter().any(|f| f.vrf == inst.id && f.v4 == v4) {
            return Err(invalid(line, "bgp.vpn_instance", format!("duplicate family of VPN instance {}", inst.name)));
        }
        out.push(BgpVpnFamily { vrf: inst.id, v4, import_static: r.import_static.unwrap_or(false), line });
    }
    Ok(out)
}

/// `[mpls]` and its `[[mpls.static_lsp]]`s.
pub(super) fn mpls(raw: Option<&RawMpls>, cfg: &Config, lines: &Lines) -> Result<Option<Mpls>, ConfigError> {
    let Some(m) = raw else { return Ok(None) };
    let lsr_id = parse_v4(m.lsr_id.get_ref(), "LSR ID").map_err(|e| invalid(lines.of(&m.lsr_id), "mpls.lsr_id", e))?;
    let mut out = Mpls { lsr_id, static_lsps: Vec::new() };
    for s in &m.static_lsp {
        let line = lines.of(s);
        let s = s.get_ref();
        let name = s.name.get_ref().clone();
        check_name(&name, "static LSP")
            .map_err(|e| invalid(lines.of(&s.name), "mpls.static_lsp.name", e.to_string()))?;
        if out.static_lsps.iter().any(|x| x.name == name) {
            return Err(invalid(lines.of(&s.name), "mpls.static_lsp.name", format!("duplicate static LSP {name:?}")));
        }
        let in_label = check_label(*s.in_label.get_ref())
            .map_err(|e| invalid(lines.of(&s.in_label), "mpls.static_lsp.in_label", e))?;
        if let Some(other) = out.static_lsps.iter().find(|x| x.in_label == in_label) {
            return Err(invalid(
                lines.of(&s.in_label),
                "mpls.static_lsp.in_label",
                format!("label {in_label} is already the in-label of static LSP {}", other.name),
            ));
        }
        if let Some(n) = cfg.bgp.as_ref().and_then(|b| b.networks.iter().find(|n| n.label == Some(in_label))) {
            return Err(invalid(
                lines.of(&s.in_label),
                "mpls.static_lsp.in_label",
                format!("label {in_label} is already the static label of network {}", n.prefix),
            ));
        }
        let in_port = match &s.incoming_interface {
            None => None,
            Some(p) if cfg.port_index(p.get_ref()).is_some() => Some(p.get_ref().clone()),
            Some(p) => {
                return Err(invalid(
                    lines.of(p),
                    "mpls.static_lsp.incoming_interface",
                    format!("unknown port {:?}", p.get_ref()),
                ))
            }
        };
        out.static_lsps.push(StaticLsp { name, in_label, in_port, line });
    }
    Ok(Some(out))
}

/// The `[[vpn_instance]]` sections of [`Config::to_toml`].
pub(super) fn instances_toml(cfg: &Config, s: &mut String) {
    use std::fmt::Write;
    for v in &cfg.vpn_instances {
        let _ = writeln!(s, "\n[[vpn_instance]]\nname = {:?}", v.name);
        for (v4, af) in [(true, &v.v4), (false, &v.v6)] {
            let Some(af) = af else { continue };
            let _ = writeln!(s, "[vpn_instance.{}]", if v4 { "ipv4" } else { "ipv6" });
            if let Some(rd) = af.rd {
                let _ = writeln!(s, "route_distinguisher = \"{rd}\"");
            }
            let list = |t: &[RouteTarget]| t.iter().map(|x| format!("\"{x}\"")).collect::<Vec<_>>().join(", ");
            let _ = writeln!(s, "vpn_target_export = [{}]", list(&af.export));
            let _ = writeln!(s, "vpn_target_import = [{}]", list(&af.import));
            let _ = writeln!(s, "label_mode = {:?}\npop_go = {}", af.label_mode.name(), af.pop_go);
        }
    }
}

/// The `[mpls]` section of [`Config::to_toml`].
pub(super) fn mpls_toml(cfg: &Config, s: &mut String) {
    use std::fmt::Write;
    let Some(m) = &cfg.mpls else { return };
    let _ = writeln!(s, "\n[mpls]\nlsr_id = \"{}\"", m.lsr_id);
    for l in &m.static_lsps {
        let _ = writeln!(s, "\n[[mpls.static_lsp]]\nname = {:?}\nin_label = {}", l.name, l.in_label);
        if let Some(p) = &l.in_port {
            let _ = writeln!(s, "incoming_interface = {p:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rd_and_targets_round_trip_in_three_forms() {
        for (s, kind) in [("100:1", 0u8), ("65535:4294967295", 0), ("1.1.1.1:7", 1), ("70000:3", 2), ("1.4464:3", 2)] {
            let rd = Rd::parse(s).unwrap();
            assert_eq!(rd.0[..2], [0, kind], "{s}");
            let back = rd.to_string();
            assert_eq!(Rd::parse(&back).unwrap(), rd, "{s} -> {back}");
            let rt = RouteTarget::parse(s).unwrap();
            assert_eq!(rt.0[..2], [kind, 2], "{s}");
            assert_eq!(RouteTarget::parse(&rt.to_string()).unwrap(), rt);
        }
        assert_eq!(Rd::parse("100:1").unwrap().0, [0, 0, 0, 100, 0, 0, 0, 1]);
        assert_eq!(RouteTarget::parse("1.1.1.1:7").unwrap().0, [1, 2, 1, 1, 1, 1, 0, 7]);
        assert_eq!(Rd::parse("70000:3").unwrap().to_string(), "1.4464:3");
        for bad in ["100", "x:1", "1.1.1.1:70000", "70000:65536", "100:-1", ":1"] {
            assert!(Rd::parse(bad).is_err(), "{bad}");
        }
    }
}

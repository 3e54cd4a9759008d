//! The edit rules of the L3VPN egress's configuration: VPN instances and their
//! address families, port bindings, the MPLS instance with its static egress LSPs, and
//! the BGP VPN families. They change the *VPN head* ([`VpnHead`]): the part of the
//! configuration beside routes and networks that these commands touch. A commit that
//! changes it rebuilds the tables in full (they are rare, and move labels).

use super::edit::{ConfigEdit, EditError};
use super::vpn::{check_name, MAX_VRF};
use super::{BgpVpnFamily, Config, LabelMode, Mpls, Rd, RouteTarget, StaticLsp, VpnAf, VpnInstance};
use std::net::Ipv4Addr;

/// The VPN head of a configuration.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct VpnHead {
    pub instances: Vec<VpnInstance>,
    pub mpls: Option<Mpls>,
    /// The VRF of each port, in port order.
    pub port_vrfs: Vec<u16>,
    pub families: Vec<BgpVpnFamily>,
}

impl VpnHead {
    pub fn of(cfg: &Config) -> VpnHead {
        VpnHead {
            instances: cfg.vpn_instances.clone(),
            mpls: cfg.mpls.clone(),
            port_vrfs: cfg.ports.iter().map(|p| p.vrf).collect(),
            families: cfg.bgp.as_ref().map(|b| b.vpn_families.clone()).unwrap_or_default(),
        }
    }

    /// Writes the head into `cfg` (neighbors follow their port's VRF).
    pub fn apply_to(&self, cfg: &mut Config) {
        cfg.vpn_instances = self.instances.clone();
        cfg.mpls = self.mpls.clone();
        for (p, v) in cfg.ports.iter_mut().zip(&self.port_vrfs) {
            p.vrf = *v;
        }
        let vrf_of: Vec<(String, u16)> = cfg.ports.iter().map(|p| (p.name.clone(), p.vrf)).collect();
        for n in &mut cfg.neighbors {
            n.vrf = vrf_of.iter().find(|(p, _)| *p == n.port).map_or(0, |x| x.1);
        }
        if let Some(b) = cfg.bgp.as_mut() {
            b.vpn_families = self.families.clone();
        }
    }

    fn instance(&mut self, name: &str) -> Result<&mut VpnInstance, EditError> {
        self.instances.iter_mut().find(|v| v.name == name).ok_or_else(|| EditError::NoSuchInstance(name.to_string()))
    }

    fn id_of(&self, name: &str) -> Result<u16, EditError> {
        self.instances
            .iter()
            .find(|v| v.name == name)
            .map(|v| v.id)
            .ok_or_else(|| EditError::NoSuchInstance(name.to_string()))
    }
}

/// A change to the VPN head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VpnEdit {
    /// `ip vpn-instance NAME` (creates it if needed).
    Instance(String),
    /// `undo ip vpn-instance NAME`: only when nothing uses it any more.
    DelInstance(String),
    /// `ipv4-family` / `ipv6-family` in the instance view (creates the family).
    Family { name: String, v4: bool },
    /// `undo ipv4-family` / `undo ipv6-family`.
    DelFamily { name: String, v4: bool },
    /// `route-distinguisher X` (`None`: `undo route-distinguisher`).
    Rd { name: String, v4: bool, rd: Option<Rd> },
    /// `vpn-target X [export-extcommunity | import-extcommunity | both]` and its undo.
    Target { name: String, v4: bool, rt: RouteTarget, export: bool, import: bool, on: bool },
    /// `apply-label per-route [pop-go] | per-nexthop [pop-go] | per-instance`.
    Label { name: String, v4: bool, mode: LabelMode, pop_go: bool },
    /// `ip binding vpn-instance NAME` in an interface view (`None`: the undo).
    Binding { port: String, vrf: Option<String> },
    /// `mpls lsr-id X` (`None`: `undo mpls lsr-id`, only without static LSPs).
    LsrId(Option<Ipv4Addr>),
    /// `static-lsp egress NAME [incoming-interface PORT] in-label L`.
    StaticLsp(StaticLsp),
    /// `undo static-lsp egress NAME`.
    DelStaticLsp(String),
    /// `ipv4-family vpn-instance NAME` / `ipv6-family vpn-instance NAME` in the BGP view.
    BgpFamily { name: String, v4: bool },
    /// `import-route static` / `undo import-route static` in that view.
    ImportStatic { name: String, v4: bool, on: bool },
}

/// Applies a VPN edit, or leaves `cfg` untouched and says why not (the words of
/// [`super::edit::apply`]). `Ok(false)`: nothing changes.
pub fn apply_vpn<C: ConfigEdit + ?Sized>(cfg: &mut C, e: &VpnEdit) -> Result<bool, EditError> {
    let mut h = cfg.vpn_head();
    let before = h.clone();
    match e {
        VpnEdit::Instance(name) => {
            check_name(name, "VPN instance")?;
            if h.instances.iter().all(|v| v.name != *name) {
                let id = (1..=MAX_VRF)
                    .find(|i| h.instances.iter().all(|v| v.id != *i))
                    .ok_or(EditError::TooManyInstances(MAX_VRF))?;
                h.instances.push(VpnInstance { name: name.clone(), id, v4: None, v6: None, line: 0 });
            }
        }
        VpnEdit::DelInstance(name) => {
            let id = h.id_of(name)?;
            if h.port_vrfs.contains(&id) {
                return Err(EditError::InstanceBound(name.clone()));
            }
            if h.families.iter().any(|f| f.vrf == id) {
                return Err(EditError::InstanceInBgp(name.clone()));
            }
            if cfg.vrf_in_use(id) {
                return Err(EditError::InstanceHasRoutes(name.clone()));
            }
            h.instances.retain(|v| v.name != *name);
        }
        VpnEdit::Family { name, v4 } => {
            let af = h.instance(name)?.af_mut(*v4);
            if af.is_none() {
                *af = Some(VpnAf { label_mode: LabelMode::PerInstance, ..VpnAf::default() });
            }
        }
        VpnEdit::DelFamily { name, v4 } => {
            let id = h.id_of(name)?;
            if h.families.iter().any(|f| f.vrf == id && f.v4 == *v4) {
                return Err(EditError::FamilyInBgp(name.clone()));
            }
            *h.instance(name)?.af_mut(*v4) = None;
        }
        VpnEdit::Rd { name, v4, rd } => {
            let id = h.id_of(name)?;
            if let Some(r) = rd {
                if let Some(o) = h
                    .instances
                    .iter()
                    .find(|v| [&v.v4, &v.v6].iter().any(|a| a.as_ref().and_then(|a| a.rd) == Some(*r)) && v.id != id)
                {
                    return Err(EditError::DuplicateRd { rd: *r, instance: o.name.clone() });
                }
            } else if h.families.iter().any(|f| f.vrf == id && f.v4 == *v4) {
                return Err(EditError::RdInBgp(name.clone()));
            }
            let af = family(&mut h, name, *v4)?;
            match (af.rd, rd) {
                (Some(old), Some(new)) if old != *new => return Err(EditError::RdSet(old)),
                _ => af.rd = *rd,
            }
            if rd.is_none() {
                af.export.clear();
                af.import.clear();
            }
        }
        VpnEdit::Target { name, v4, rt, export, import, on } => {
            let af = with_rd(&mut h, name, *v4)?;
            for (set, list) in [(*export, &mut af.export), (*import, &mut af.import)] {
                if !set {
                    continue;
                }
                match (on, list.contains(rt)) {
                    (true, false) => list.push(*rt),
                    (false, true) => list.retain(|x| x != rt),
                    _ => {}
                }
            }
        }
        VpnEdit::Label { name, v4, mode, pop_go } => {
            let af = with_rd(&mut h, name, *v4)?;
            af.label_mode = *mode;
            af.pop_go = *pop_go && *mode != LabelMode::PerInstance;
        }
        VpnEdit::Binding { port, vrf } => {
            let at = cfg
                .port_names()
                .iter()
                .position(|p| p == port)
                .ok_or_else(|| EditError::UnknownInterface(port.clone()))?;
            let id = match vrf {
                Some(n) => h.id_of(n)?,
                None => 0,
            };
            if id != 0 && h.port_vrfs[at] != 0 && h.port_vrfs[at] != id {
                return Err(EditError::InterfaceBound(port.clone()));
            }
            h.port_vrfs[at] = id;
        }
        VpnEdit::LsrId(id) => match (id, &mut h.mpls) {
            (Some(a), Some(m)) => m.lsr_id = *a,
            (Some(a), None) => h.mpls = Some(Mpls { lsr_id: *a, static_lsps: Vec::new() }),
            (None, Some(m)) if !m.static_lsps.is_empty() => return Err(EditError::MplsNeeded),
            (None, _) => h.mpls = None,
        },
        VpnEdit::StaticLsp(l) => {
            check_name(&l.name, "static LSP")?;
            if let Some(p) = &l.in_port {
                if !cfg.port_names().contains(p) {
                    return Err(EditError::UnknownInterface(p.clone()));
                }
            }
            if let Some(o) = cfg.network_with_label(l.in_label) {
                return Err(EditError::LabelOfNetwork { label: l.in_label, network: o });
            }
            let m = h.mpls.as_mut().ok_or(EditError::MplsOff)?;
            if let Some(o) = m.static_lsps.iter().find(|o| o.in_label == l.in_label && o.name != l.name) {
                return Err(EditError::LabelOfLsp { label: l.in_label, lsp: o.name.clone() });
            }
            match m.static_lsps.iter_mut().find(|o| o.name == l.name) {
                Some(o) => {
                    let line = o.line;
                    *o = StaticLsp { line, ..l.clone() };
                }
                None => m.static_lsps.push(l.clone()),
            }
        }
        VpnEdit::DelStaticLsp(name) => {
            let m = h.mpls.as_mut().ok_or_else(|| EditError::NoSuchStaticLsp(name.clone()))?;
            let n = m.static_lsps.len();
            m.static_lsps.retain(|l| l.name != *name);
            if m.static_lsps.len() == n {
                return Err(EditError::NoSuchStaticLsp(name.clone()));
            }
        }
        VpnEdit::BgpFamily { name, v4 } => {
            cfg.bgp_head().ok_or(EditError::NoBgp)?;
            let id = h.id_of(name)?;
            let inst = h.instances.iter().find(|v| v.id == id).expect("found above");
            if inst.af(*v4).and_then(|a| a.rd).is_none() {
                return Err(EditError::NoRdForBgp { name: name.clone(), v4: *v4 });
            }
            if !h.families.iter().any(|f| f.vrf == id && f.v4 == *v4) {
                h.families.push(BgpVpnFamily { vrf: id, v4: *v4, import_static: false, line: 0 });
            }
        }
        VpnEdit::ImportStatic { name, v4, on } => {
            let id = h.id_of(name)?;
            let f = h
                .families
                .iter_mut()
                .find(|f| f.vrf == id && f.v4 == *v4)
                .ok_or_else(|| EditError::NoBgpFamily(name.clone()))?;
            f.import_static = *on;
        }
    }
    if h == before {
        return Ok(false);
    }
    cfg.set_vpn_head(h);
    Ok(true)
}

fn family<'a>(h: &'a mut VpnHead, name: &str, v4: bool) -> Result<&'a mut VpnAf, EditError> {
    h.instance(name)?.af_mut(v4).as_mut().ok_or_else(|| EditError::NoFamily { name: name.to_string(), v4 })
}

/// The family, which must have its RD (VRP refuses targets and labels before it).
fn with_rd<'a>(h: &'a mut VpnHead, name: &str, v4: bool) -> Result<&'a mut VpnAf, EditError> {
    let af = family(h, name, v4)?;
    if af.rd.is_none() {
        return Err(EditError::RdFirst { name: name.to_string(), v4 });
    }
    Ok(af)
}

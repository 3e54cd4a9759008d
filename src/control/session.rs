//! Sessions: one per connection, its view and its uncommitted lines; running a line
//! (views, edits checked against the session's candidate).

use super::store::{Cand, Overlay};
use super::vrp::{self, Cmd, View};
use super::CommitError;
use super::{ControlPlane, Edit, Reply};
use crate::config::edit::{self as rules, ConfigEdit, EditError};
use crate::config::Network;

/// One uncommitted line of a session.
#[derive(Clone, Debug)]
pub(super) struct Pending {
    pub(super) line: u64,
    pub(super) text: String,
    pub(super) edit: Edit,
    /// The line changes the candidate it was last checked against. A line that
    /// changes nothing (it matches the running config) is kept too: should another
    /// session's commit change that part first, it applies again at commit.
    pub(super) effective: bool,
}

/// A connection's state: its view and its uncommitted lines.
#[derive(Debug)]
pub struct Session {
    pub(super) id: u64,
    pub(super) view: View,
    /// The VPN instance or interface the view is of (empty otherwise).
    pub(super) ctx: String,
    pub(super) lines: u64,
    pub(super) pending: Vec<Pending>,
    /// `pending` as an overlay on the running config of generation `.0`, rebuilt
    /// lazily when another commit moved the running config on.
    pub(super) candidate: Option<(u64, Overlay)>,
}

impl Session {
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn view(&self) -> View {
        self.view
    }

    /// Number of uncommitted lines that change the candidate.
    pub fn pending(&self) -> usize {
        self.pending.iter().filter(|p| p.effective).count()
    }
}

impl ControlPlane {
    /// Runs one line of session `s`; the reply carries all of its text.
    pub fn exec(&mut self, s: &mut Session, line: &str) -> Reply {
        self.exec_stream(s, line).materialize()
    }

    /// Runs one line of session `s`. A long display comes back as a [`Stream`] that the
    /// caller runs after this returns (on another thread if it likes): it reads a
    /// snapshot shared at this point, so later commits do not change it.
    pub fn exec_stream(&mut self, s: &mut Session, line: &str) -> Reply {
        s.lines += 1;
        let n = s.lines;
        let fail = |msg: &dyn std::fmt::Display| Reply::err(format!("Error: line {n} ({:?}): {msg}", line.trim()));
        let cmd = match vrp::parse_in(s.view, &s.ctx, line) {
            Ok(c) => c,
            Err(e) => return fail(&e),
        };
        match cmd {
            Cmd::Nothing => Reply::ok(""),
            Cmd::SystemView => {
                s.view = View::System;
                Reply::ok("Enter system view, return user view with return command.")
            }
            Cmd::Family(v) => {
                s.view = v;
                Reply::ok("")
            }
            Cmd::Quit => match s.view {
                View::System => {
                    s.view = View::User;
                    Reply::ok(self.uncommitted_note(s))
                }
                View::User => Reply { ok: true, text: self.uncommitted_note(s), close: true, stream: None },
                v => {
                    s.view = v.up();
                    if !matches!(s.view, View::VpnInstance) {
                        s.ctx.clear();
                    }
                    Reply::ok("")
                }
            },
            Cmd::Return => {
                s.view = View::User;
                s.ctx.clear();
                Reply::ok(self.uncommitted_note(s))
            }
            Cmd::ClearCandidate => {
                let k = s.pending();
                s.pending.clear();
                s.candidate = None;
                Reply::ok(format!("Info: {k} uncommitted line(s) discarded."))
            }
            Cmd::Bgp(asn) => match self.edit(s, n, line, Edit::CreateBgp(asn)) {
                Ok(()) => {
                    s.view = View::Bgp;
                    Reply::ok("")
                }
                Err(e) => fail(&e),
            },
            Cmd::Edit(mut e) => {
                match &mut e {
                    Edit::AddNetwork(x) => x.line = n as usize,
                    Edit::AddRoute(x) => x.line = n as usize,
                    Edit::PeerAs { line, .. } => *line = n as usize,
                    _ => {}
                }
                match self.edit(s, n, line, e) {
                    Ok(()) => Reply::ok(""),
                    Err(e) => fail(&e),
                }
            }
            Cmd::Edits(es) => self.edits(s, n, line, es).map_or_else(|e| fail(&e), |_| Reply::ok("")),
            Cmd::EditEnter(e, v, ctx) => match self.edit(s, n, line, e) {
                Ok(()) => {
                    (s.view, s.ctx) = (v, ctx);
                    Reply::ok("")
                }
                Err(e) => fail(&e),
            },
            Cmd::Enter(v, ctx) => {
                let head = match self.candidate(s) {
                    Ok(ov) => Cand { run: &self.running, ov }.vpn_head(),
                    Err(e) => return fail(&e),
                };
                if v == View::Interface && self.running.head().port_index(&ctx).is_none() {
                    return fail(&EditError::UnknownInterface(ctx));
                }
                if v == View::Mpls && head.mpls.is_none() {
                    return fail(&"configure the LSR ID first (`mpls lsr-id X`)");
                }
                (s.view, s.ctx) = (v, ctx);
                Reply::ok("")
            }
            Cmd::VpnRoute { name, prefix, next_hop, add } => {
                let edits = match self.vpn_route_edits(s, &name, prefix, next_hop, add) {
                    Ok(es) => es,
                    Err(e) => return fail(&e),
                };
                self.edits(s, n, line, edits).map_or_else(|e| fail(&e), |_| Reply::ok(""))
            }
            Cmd::VpnNetwork { name, prefix, add } => {
                let vrf = match self.candidate(s) {
                    Ok(ov) => Cand { run: &self.running, ov }
                        .vpn_head()
                        .instances
                        .iter()
                        .find(|v| v.name == name)
                        .map(|v| v.id),
                    Err(e) => return fail(&e),
                };
                let Some(vrf) = vrf else { return fail(&EditError::NoSuchInstance(name)) };
                let p = prefix.in_vrf(vrf);
                let e = if add {
                    Edit::AddNetwork(Network { prefix: p, label: None, line: n as usize })
                } else {
                    Edit::DelNetwork(p)
                };
                self.edit(s, n, line, e).map_or_else(|e| fail(&e), |_| Reply::ok(""))
            }
            Cmd::UndoRoutes(p) => {
                let nhs: Vec<_> = match self.candidate(s) {
                    Ok(ov) => Cand { run: &self.running, ov }.next_hops(p),
                    Err(e) => return fail(&e),
                };
                if nhs.is_empty() {
                    return fail(&CommitError::NoRoute(p));
                }
                // All or nothing: apply to a copy of the candidate's overlay first.
                let mut probe = match self.candidate(s) {
                    Ok(ov) => ov.clone(),
                    Err(e) => return fail(&e),
                };
                for nh in &nhs {
                    if let Err(e) =
                        rules::apply(&mut Cand { run: &self.running, ov: &mut probe }, &Edit::DelRoute(p, *nh))
                    {
                        return fail(&e);
                    }
                }
                for nh in nhs {
                    if let Err(e) = self.edit(s, n, line, Edit::DelRoute(p, nh)) {
                        return fail(&e);
                    }
                }
                Reply::ok("")
            }
            Cmd::Commit => match self.commit(s) {
                Ok(Some(r)) => Reply::ok(format!("Info: commit ok: {}", r.line())),
                Ok(None) => Reply::ok("Info: no uncommitted configuration."),
                Err(e) => Reply::err(self.commit_failure(s, &e)),
            },
            Cmd::Display(d, filter) => self.display(s, d, filter),
        }
    }

    pub(super) fn uncommitted_note(&self, s: &Session) -> String {
        if s.pending() == 0 {
            String::new()
        } else {
            format!(
                "Info: {} uncommitted line(s) kept in this session; commit them from the system view, or they are \
                 discarded when the session ends.",
                s.pending()
            )
        }
    }

    /// The overlay of the session's candidate config, (re)built from the pending lines
    /// if missing or based on an older generation.
    pub(super) fn candidate<'a>(&self, s: &'a mut Session) -> Result<&'a mut Overlay, CommitError> {
        if s.candidate.as_ref().is_none_or(|(g, _)| *g != self.generation) {
            let mut ov = Overlay::default();
            for p in &mut s.pending {
                p.effective = rules::apply(&mut Cand { run: &self.running, ov: &mut ov }, &p.edit).map_err(|e| {
                    CommitError::Stale { line: p.line, text: p.text.clone(), generation: self.generation, cause: e }
                })?;
            }
            s.candidate = Some((self.generation, ov));
        }
        Ok(&mut s.candidate.as_mut().expect("candidate set above").1)
    }

    /// The route edits of `[undo] ip route-static vpn-instance NAME ...`: the prefix in
    /// the instance's table; an undo without a next hop removes every route to it.
    fn vpn_route_edits(
        &self,
        s: &mut Session,
        name: &str,
        prefix: crate::config::Prefix,
        next_hop: Option<std::net::IpAddr>,
        add: bool,
    ) -> Result<Vec<Edit>, CommitError> {
        let ov = self.candidate(s)?;
        let cand = Cand { run: &self.running, ov };
        let vrf = cand.vpn_head().instances.iter().find(|v| v.name == name).map(|v| v.id);
        let p = prefix.in_vrf(vrf.ok_or_else(|| EditError::NoSuchInstance(name.to_string()))?);
        Ok(match (add, next_hop) {
            (true, Some(nh)) => {
                vec![Edit::AddRoute(crate::config::StaticRoute { prefix: p, next_hop: nh, line: s.lines as usize })]
            }
            (false, Some(nh)) => vec![Edit::DelRoute(p, nh)],
            (_, None) => {
                let nhs = cand.next_hops(p);
                if nhs.is_empty() {
                    return Err(CommitError::NoVpnRoute { prefix, instance: name.to_string() });
                }
                nhs.into_iter().map(|nh| Edit::DelRoute(p, nh)).collect()
            }
        })
    }

    /// Checks `edits` in order against a copy of the candidate, then keeps them all as
    /// pending (all or nothing).
    fn edits(&self, s: &mut Session, n: u64, line: &str, edits: Vec<Edit>) -> Result<(), CommitError> {
        let mut probe = self.candidate(s)?.clone();
        for e in &edits {
            rules::apply(&mut Cand { run: &self.running, ov: &mut probe }, e)?;
        }
        for e in edits {
            self.edit(s, n, line, e)?;
        }
        Ok(())
    }

    /// Checks `e` against the candidate and keeps it as pending.
    fn edit(&self, s: &mut Session, n: u64, line: &str, e: Edit) -> Result<(), CommitError> {
        let ov = self.candidate(s)?;
        let effective = rules::apply(&mut Cand { run: &self.running, ov }, &e)?;
        s.pending.push(Pending { line: n, text: line.trim().to_string(), edit: e, effective });
        Ok(())
    }
}

//! One TCP connection's BGP protocol, without I/O: OpenSent -> OpenConfirm ->
//! Established (RFC 4271 section 8.2.2), fed bytes, a time and route changes;
//! returning the bytes to write ([`Conn::take_output`]), the next deadline
//! ([`Conn::deadline`]) and, once it ends, why ([`Conn::closed`]). The driver
//! (`session`) owns the socket and the clock; tests call it with a fake clock.
//!
//! The state is checked before a message is decoded (an UPDATE in OpenSent gets 5/1,
//! RFC 6608, whatever its content); UPDATEs follow RFC 7606 (`msg::update`).

use super::msg::{self, notify, update, DecodeCtx, Framer, PathCtx, PeerOpen};
use super::status::{PeerStatus, State};
use super::{LimitAction, Options, Routes, SessionCfg};
use crate::config::{Families, Family, Prefix};
use netgauze_bgp_pkt::notification::BgpNotificationMessage;
use netgauze_bgp_pkt::BgpMessage;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// RFC 4271 section 8.2.2: the hold timer while waiting for the peer's OPEN ("a large
/// value", 4 minutes suggested).
pub const OPEN_HOLD: Duration = Duration::from_secs(240);
/// Routes per step of the initial advertisement (about 150 UPDATEs, 1 MB).
pub const SYNC_BATCH: usize = 150 * msg::ROUTES_PER_UPDATE;

/// What the session gets from the driver with every call.
/// The RD and targets of `p`'s instance family, for a VPN family.
fn vpn_attrs(cfg: &SessionCfg, f: Family, p: Prefix) -> Option<&msg::VpnAttrs> {
    if !f.is_vpn() {
        return None;
    }
    cfg.vpns.iter().find(|(v, v4, _)| *v == p.vrf && *v4 == p.is_v4()).map(|(_, _, a)| a)
}

pub struct Ctx<'a> {
    pub cfg: &'a SessionCfg,
    pub opts: &'a Options,
    /// Every route the speaker advertises (prefix -> label).
    pub routes: &'a Routes,
    pub st: &'a mut PeerStatus,
}

/// Why a connection ended, and what the peer level does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Closed {
    pub established: bool,
    /// The route limit's action: wait this long before connecting again (`None`:
    /// never, until the configuration changes).
    pub idle: Option<Option<Duration>>,
}

pub struct Conn {
    /// The connection popgo opened (RFC 4271 section 6.8 needs to know).
    pub outgoing: bool,
    state: State,
    framer: Framer,
    local: Ipv4Addr,
    pub local_id: Ipv4Addr,
    peer: Option<PeerOpen>,
    families: Families,
    hold: Option<Duration>,
    hold_deadline: Instant,
    keepalive_due: Option<Instant>,
    /// Adj-RIB-Out: what the peer has been told.
    sent: BTreeMap<Prefix, u32>,
    /// The initial advertisement in progress: `Some(last prefix sent)` (`Some(None)`:
    /// none yet).
    initial: Option<Option<Prefix>>,
    out: Vec<u8>,
    closed: Option<Closed>,
    /// The route limit's threshold warning and its alert-only message were logged
    /// (once each per connection).
    percent_warned: bool,
    limit_alerted: bool,
}

impl Conn {
    /// A connection that just opened (from `local`): sends the OPEN.
    pub fn new(outgoing: bool, local: Ipv4Addr, now: Instant, c: &mut Ctx<'_>) -> Conn {
        let local_id = c.cfg.router_id.unwrap_or(local);
        let mut conn = Conn {
            outgoing,
            state: State::OpenSent,
            framer: Framer::default(),
            local,
            local_id,
            peer: None,
            families: c.cfg.peer.families,
            hold: None,
            hold_deadline: now + OPEN_HOLD,
            keepalive_due: None,
            sent: BTreeMap::new(),
            initial: None,
            out: Vec::new(),
            closed: None,
            percent_warned: false,
            limit_alerted: false,
        };
        c.st.local_addr = Some(local);
        let open = msg::open(c.cfg.local_as, c.opts.hold_time_s, local_id, c.cfg.peer.families.iter());
        conn.send(&open, now, c);
        conn
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The peer's BGP identifier, once its OPEN arrived.
    pub fn remote_id(&self) -> Option<Ipv4Addr> {
        self.peer.as_ref().map(|p| p.id)
    }

    pub fn closed(&self) -> Option<&Closed> {
        self.closed.as_ref()
    }

    /// Bytes to write to the socket (then, if [`Self::closed`], close it).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// When [`Self::on_timer`] must run next.
    pub fn deadline(&self) -> Option<Instant> {
        if self.closed.is_some() {
            return None;
        }
        Some(self.keepalive_due.map_or(self.hold_deadline, |k| k.min(self.hold_deadline)))
    }

    fn send(&mut self, m: &BgpMessage, now: Instant, c: &mut Ctx<'_>) {
        self.out.extend_from_slice(&msg::encode(m));
        c.st.msgs_out += 1;
        c.st.updates_out += u64::from(matches!(m, BgpMessage::Update(_)));
        c.st.notifications_out += u64::from(matches!(m, BgpMessage::Notification(_)));
        if let Some(h) = self.hold {
            self.keepalive_due = Some(now + h / 3);
        }
    }

    fn end(&mut self, idle: Option<Option<Duration>>) {
        if self.closed.is_none() {
            self.closed = Some(Closed { established: self.state == State::Established, idle });
        }
    }

    /// Sends `n` and ends the connection; `error`: the peer sent something malformed.
    pub fn fail(&mut self, n: BgpNotificationMessage, why: &str, error: bool, now: Instant, c: &mut Ctx<'_>) {
        if self.closed.is_some() {
            return;
        }
        let (code, sub) = msg::codes(&n);
        c.st.errors += u64::from(error);
        let text = format!("sent NOTIFICATION {code}/{sub} ({}): {why}", msg::code_name(code));
        tracing::warn!("bgp: peer {}: {text}", c.cfg.peer.address);
        c.st.last_error = Some(text);
        self.send(&BgpMessage::Notification(n), now, c);
        self.end(None);
    }

    /// Closes with Cease (RFC 4486 subcode `sub`).
    pub fn cease(&mut self, sub: u8, now: Instant, c: &mut Ctx<'_>) {
        if self.closed.is_none() {
            self.send(&BgpMessage::Notification(notify::cease(sub)), now, c);
            self.end(None);
        }
    }

    /// The TCP connection ended under the session.
    pub fn on_eof(&mut self, why: &str, c: &mut Ctx<'_>) {
        if self.closed.is_none() {
            c.st.last_error = Some(why.to_string());
            self.end(None);
        }
    }

    pub fn on_timer(&mut self, now: Instant, c: &mut Ctx<'_>) {
        if self.closed.is_some() {
            return;
        }
        if now >= self.hold_deadline {
            self.fail(notify::hold_timer_expired(), "hold timer expired", false, now, c);
        } else if self.keepalive_due.is_some_and(|t| now >= t) {
            self.send(&BgpMessage::KeepAlive, now, c);
        }
    }

    pub fn on_bytes(&mut self, data: &[u8], now: Instant, c: &mut Ctx<'_>) {
        self.framer.push(data);
        while self.closed.is_none() {
            let frame = match self.framer.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(n) => return self.fail(n, "malformed message header", true, now, c),
            };
            self.on_frame(&frame, now, c);
        }
    }

    fn on_frame(&mut self, frame: &[u8], now: Instant, c: &mut Ctx<'_>) {
        let ty = match msg::decode_header(frame) {
            Ok(t) => t,
            Err(n) => return self.fail(n, "malformed message header", true, now, c),
        };
        c.st.msgs_in += 1;
        if let Some(h) = self.hold {
            self.hold_deadline = now + h;
        }
        // RFC 4271 section 8.2.2 / RFC 6608: the state decides which types are
        // expected, before any is decoded.
        const OPEN: u8 = 1;
        const UPDATE: u8 = 2;
        const NOTIFICATION: u8 = 3;
        const KEEPALIVE: u8 = 4;
        let expected = match (self.state, ty) {
            (_, NOTIFICATION) => true,
            (State::OpenSent, OPEN) => true,
            (State::OpenConfirm | State::Established, KEEPALIVE) => true,
            (State::Established, _) => ty != OPEN,
            _ => false,
        };
        if !expected {
            let n = notify::fsm(self.state == State::OpenSent, self.state == State::OpenConfirm);
            return self.fail(n, &format!("message type {ty} in state {}", self.state.name()), true, now, c);
        }
        match ty {
            UPDATE => self.on_update(frame, now, c),
            KEEPALIVE => {
                if self.state == State::OpenConfirm {
                    self.on_established(now, c);
                }
            }
            // ROUTE-REFRESH (RFC 2918 section 4): the family's Adj-RIB-Out again; a
            // family not negotiated or not known is ignored.
            5 => {
                let (afi, safi) = msg::route_refresh_afi_safi(frame);
                match msg::family_by_afi_safi(afi, safi) {
                    Some(w) if self.families.contains(w.family) => self.refresh(w.family, now, c),
                    _ => tracing::info!(
                        "bgp: peer {}: ROUTE-REFRESH for AFI {afi} SAFI {safi} ignored (not negotiated)",
                        c.cfg.peer.address
                    ),
                }
            }
            _ => match msg::decode(frame, DecodeCtx { asn4: self.asn4() }) {
                Ok(BgpMessage::Notification(n)) => {
                    let (code, sub) = msg::codes(&n);
                    c.st.notifications_in += 1;
                    let text = format!("received NOTIFICATION {code}/{sub} ({})", msg::code_name(code));
                    tracing::info!("bgp: peer {}: {text}", c.cfg.peer.address);
                    c.st.last_error = Some(text);
                    self.end(None);
                }
                Ok(BgpMessage::Open(o)) => self.on_open(msg::peer_open(&o), now, c),
                Ok(_) => {}
                Err(n) => self.fail(n, "malformed message", true, now, c),
            },
        }
    }

    fn asn4(&self) -> bool {
        self.peer.as_ref().is_some_and(|p| p.asn4)
    }

    fn on_open(&mut self, o: PeerOpen, now: Instant, c: &mut Ctx<'_>) {
        if o.asn != c.cfg.peer.asn {
            let why = format!("peer AS {} is not the configured {}", o.asn, c.cfg.peer.asn);
            return self.fail(notify::bad_peer_as(), &why, true, now, c);
        }
        if o.id == self.local_id && o.asn == c.cfg.local_as {
            return self.fail(notify::bad_bgp_id(), "peer BGP identifier equals ours", true, now, c);
        }
        let mut common = Families::NONE;
        for f in o.families.iter().filter(|f| c.cfg.peer.families.contains(**f)) {
            common = common.with(*f, true);
        }
        if common.is_empty() {
            let wanted: Vec<Family> = c.cfg.peer.families.iter().collect();
            return self.fail(notify::unsupported_capability(&wanted), "no labeled family in common", true, now, c);
        }
        self.families = common;
        c.st.families = common;
        c.st.remote_id = Some(o.id);
        // RFC 4271 section 4.2: the smaller hold time; 0 means no keepalives.
        let hold_s = o.hold_s.min(c.opts.hold_time_s);
        self.hold = (hold_s > 0).then(|| Duration::from_secs(u64::from(hold_s)));
        self.hold_deadline = now + self.hold.unwrap_or(Duration::from_secs(u64::from(u32::MAX)));
        self.peer = Some(o);
        self.send(&BgpMessage::KeepAlive, now, c);
        self.state = State::OpenConfirm;
    }

    fn on_established(&mut self, now: Instant, c: &mut Ctx<'_>) {
        self.state = State::Established;
        c.st.established += 1;
        c.st.last_error = None;
        tracing::info!("bgp: peer {}: established", c.cfg.peer.address);
        self.initial = Some(None);
        self.pump(now, c);
    }

    /// The initial advertisement still has routes to send.
    pub fn pumping(&self) -> bool {
        self.initial.is_some() && self.closed.is_none()
    }

    /// Sends the next [`SYNC_BATCH`] routes of the initial advertisement, then the
    /// End-of-RIB of each family (RFC 4724 section 2) after the last. In batches so
    /// that the driver writes each while the next is encoded, and the table is read
    /// a batch at a time: measured 6.5 s popgo -> BIRD against 5.1 s BIRD -> BIRD for
    /// 1M routes when the whole table was encoded before the first write
    /// (tools/bgp-scale.py --bird, loaded VM).
    pub fn pump(&mut self, now: Instant, c: &mut Ctx<'_>) {
        let Some(from) = self.initial else { return };
        let lower = from.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        let batch: Vec<(Prefix, Option<u32>)> =
            c.routes.range((lower, std::ops::Bound::Unbounded)).take(SYNC_BATCH).map(|(p, l)| (*p, Some(*l))).collect();
        self.apply(&batch, now, c);
        if batch.len() == SYNC_BATCH {
            self.initial = Some(batch.last().map(|(p, _)| *p));
            return;
        }
        self.initial = None;
        for f in self.families.iter() {
            self.send(&msg::withdraw(f, &[]), now, c);
        }
    }

    fn path(&self, c: &Ctx<'_>) -> PathCtx {
        PathCtx { local_as: c.cfg.local_as, ibgp: c.cfg.local_as == c.cfg.peer.asn, asn4: self.asn4() }
    }

    /// Route changes (prefix -> new label, `None`: gone) from a commit: sends what
    /// changes the Adj-RIB-Out, withdrawals first, then announcements, in UPDATEs of
    /// at most [`msg::ROUTES_PER_UPDATE`] routes. O(changes).
    pub fn apply(&mut self, changes: &[(Prefix, Option<u32>)], now: Instant, c: &mut Ctx<'_>) {
        if self.state != State::Established || self.closed.is_some() {
            return;
        }
        let nh = c.cfg.peer.source.unwrap_or(self.local);
        let path = self.path(c);
        let cfg = c.cfg;
        for f in Family::ALL {
            let on = self.families.contains(f);
            let mut gone: Vec<Prefix> = changes
                .iter()
                .filter(|(p, l)| Family::of(p) == f && (l.is_none() || !on) && self.sent.contains_key(p))
                .map(|(p, _)| *p)
                .collect();
            // VPN routes go out per instance: one RD and one set of targets per UPDATE.
            gone.sort_by_key(|p| p.vrf);
            for same in gone.chunk_by(|a, b| a.vrf == b.vrf) {
                let vpn = vpn_attrs(cfg, f, same[0]);
                for chunk in same.chunks(msg::ROUTES_PER_UPDATE) {
                    self.send(&msg::withdraw_in(f, chunk, vpn.map(|v| v.rd)), now, c);
                    for p in chunk {
                        self.sent.remove(p);
                    }
                }
            }
            if !on {
                continue;
            }
            let mut new: Vec<(Prefix, u32)> = changes
                .iter()
                .filter_map(|(p, l)| Some((*p, (*l)?)))
                .filter(|(p, l)| Family::of(p) == f && self.sent.get(p) != Some(l))
                .collect();
            new.sort_by_key(|(p, _)| p.vrf);
            for same in new.chunk_by(|a, b| a.0.vrf == b.0.vrf) {
                let vpn = vpn_attrs(cfg, f, same[0].0);
                if f.is_vpn() && vpn.is_none() {
                    continue; // an instance family without an RD has nothing to send
                }
                for chunk in same.chunks(msg::ROUTES_PER_UPDATE) {
                    self.send(&msg::announce_in(f, chunk, nh, path, vpn), now, c);
                    self.sent.extend(chunk.iter().copied());
                }
            }
        }
        c.st.prefixes_sent = self.sent.len();
    }

    /// RFC 2918: the Adj-RIB-Out of family `f` again, then its End-of-RIB.
    fn refresh(&mut self, f: Family, now: Instant, c: &mut Ctx<'_>) {
        let nh = c.cfg.peer.source.unwrap_or(self.local);
        let path = self.path(c);
        let cfg = c.cfg;
        let mut routes: Vec<(Prefix, u32)> =
            self.sent.iter().filter(|(p, _)| Family::of(p) == f).map(|(p, l)| (*p, *l)).collect();
        routes.sort_by_key(|(p, _)| p.vrf);
        for same in routes.chunk_by(|a, b| a.0.vrf == b.0.vrf) {
            let vpn = vpn_attrs(cfg, f, same[0].0);
            for chunk in same.chunks(msg::ROUTES_PER_UPDATE) {
                self.send(&msg::announce_in(f, chunk, nh, path, vpn), now, c);
            }
        }
        self.send(&msg::withdraw(f, &[]), now, c);
    }

    fn on_update(&mut self, frame: &[u8], now: Instant, c: &mut Ctx<'_>) {
        let ctx = update::UpdateCtx { asn4: self.asn4(), ibgp: c.cfg.local_as == c.cfg.peer.asn };
        let u = match update::parse(&frame[msg::HEADER_LEN..], ctx) {
            Ok(u) => u,
            Err(r) => return self.fail(r.notification, &r.why, true, now, c),
        };
        let addr = c.cfg.peer.address;
        c.st.updates_in += 1;
        c.st.ignored += u.other as u64;
        if let Some(why) = &u.treat_as_withdraw {
            c.st.treated_as_withdraw += 1;
            tracing::warn!("bgp: peer {addr}: UPDATE treated as withdraw (RFC 7606): {why}");
            c.st.last_error = Some(format!("UPDATE treated as withdraw: {why}"));
        }
        for why in &u.discarded {
            c.st.attributes_discarded += 1;
            tracing::warn!("bgp: peer {addr}: attribute discarded (RFC 7606): {why}");
        }
        for (f, p) in &u.withdrawn {
            c.st.received.remove(&(*f, *p));
        }
        let limit = c.cfg.peer.route_limit;
        for (f, r) in &u.announced {
            if !self.families.contains(*f) {
                c.st.ignored += 1;
                continue;
            }
            let key = (*f, r.prefix);
            if let Some(l) = limit {
                let n = c.st.received.len();
                if !c.st.received.contains_key(&key) && n >= l.limit as usize {
                    c.st.over_limit += 1;
                    if l.action == LimitAction::AlertOnly {
                        if !self.limit_alerted {
                            tracing::warn!("bgp: peer {addr}: route limit {} reached; further routes ignored", l.limit);
                            self.limit_alerted = true;
                        }
                        continue;
                    }
                    // RFC 4486 subcode 1, data: AFI, SAFI, the limit.
                    let w = msg::wire(*f);
                    let mut data = w.afi.to_be_bytes().to_vec();
                    data.push(w.safi);
                    data.extend_from_slice(&l.limit.to_be_bytes());
                    let why = format!("more than the route limit of {} routes", l.limit);
                    self.fail(notify::cease_with(1, data), &why, false, now, c);
                    self.closed.as_mut().expect("fail() closes").idle = Some(match l.action {
                        LimitAction::IdleForever => None,
                        LimitAction::IdleTimeout(m) => Some(Duration::from_secs(u64::from(m) * 60)),
                        _ => Some(c.opts.limit_restart),
                    });
                    return;
                }
                if !self.percent_warned && (n + 1) * 100 >= l.limit as usize * usize::from(l.percent) {
                    self.percent_warned = true;
                    tracing::warn!(
                        "bgp: peer {addr}: {} routes received, {}% of the route limit {}",
                        n + 1,
                        l.percent,
                        l.limit
                    );
                }
            }
            c.st.received.insert(key, *r);
        }
    }
}

//! The session without sockets or sleeps: [`Peer`] and [`Conn`] fed bytes and a fake
//! clock; every state and timer of RFC 4271 section 8, collisions (section 6.8),
//! damping (section 8.1.1), ROUTE-REFRESH (RFC 2918), the route limit, and a property
//! test of random and mutated UPDATEs (RFC 7606).

use super::conn::Ctx;
use super::msg::{self, DecodeCtx, Framer, PathCtx};
use super::peer::{Action, Peer};
use super::*;
use crate::config::{Family, LimitAction, RouteLimit};
use netgauze_bgp_pkt::BgpMessage;
use proptest::prelude::*;
use std::time::Instant;

const PEER_AS: u32 = 200;
const LOCAL_AS: u32 = 100;
const V4: Family = Family::Ipv4LabeledUnicast;
const V6: Family = Family::Ipv6LabeledUnicast;

fn pfx(s: &str) -> Prefix {
    Prefix::parse(s).unwrap()
}

fn local() -> Ipv4Addr {
    "192.0.2.1".parse().unwrap()
}

/// One peer driven by hand.
struct H {
    cfg: SessionCfg,
    opts: Options,
    routes: Routes,
    st: PeerStatus,
    peer: Peer,
    now: Instant,
    /// What each connection received so far, framed.
    framers: HashMap<u64, Framer>,
    closed: Vec<u64>,
    connects: usize,
}

macro_rules! ctx {
    ($h:expr) => {
        &mut Ctx { cfg: &$h.cfg, opts: &$h.opts, routes: &$h.routes, st: &mut $h.st }
    };
}

impl H {
    fn new(routes: &[(&str, u32)], families: Families, route_limit: Option<RouteLimit>) -> H {
        let peer = PeerCfg {
            address: "198.51.100.2".parse().unwrap(),
            asn: PEER_AS,
            source: None,
            families,
            route_limit,
            md5_key: None,
            ttl_hops: None,
        };
        let cfg =
            SessionCfg { peer, local_as: LOCAL_AS, router_id: Some("1.1.1.1".parse().unwrap()), vpns: Vec::new() };
        let opts = Options::default();
        let routes: Routes = routes.iter().map(|(p, l)| (pfx(p), *l)).collect();
        let mut st = PeerStatus::new(cfg.peer.address, PEER_AS, families);
        let now = Instant::now();
        let peer = Peer::new(now, &Ctx { cfg: &cfg, opts: &opts, routes: &routes, st: &mut st });
        let mut h = H { cfg, opts, routes, st, peer, now, framers: HashMap::new(), closed: vec![], connects: 0 };
        h.timer();
        h
    }

    /// Carries out the peer's actions on the fake network.
    fn drain(&mut self) {
        while let Some(a) = self.peer.poll_action() {
            match a {
                Action::Connect => self.connects += 1,
                Action::Send(id, b) => self.framers.entry(id).or_default().push(&b),
                Action::Close(id) => self.closed.push(id),
            }
        }
    }

    fn timer(&mut self) {
        self.peer.on_timer(self.now, ctx!(self));
        self.drain();
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.timer();
    }

    fn connected(&mut self) -> u64 {
        let id = self.peer.on_connected(local(), self.now, ctx!(self));
        self.drain();
        id
    }

    fn incoming(&mut self) -> u64 {
        let id = self.peer.on_incoming(local(), self.now, ctx!(self));
        self.drain();
        id
    }

    fn bytes(&mut self, id: u64, b: &[u8]) {
        self.peer.on_bytes(id, b, self.now, ctx!(self));
        self.drain();
    }

    fn feed(&mut self, id: u64, m: &BgpMessage) {
        self.bytes(id, &msg::encode(m));
    }

    /// The messages connection `id` was sent since the last call.
    fn sent(&mut self, id: u64) -> Vec<BgpMessage> {
        let f = self.framers.entry(id).or_default();
        let mut out = vec![];
        while let Some(fr) = f.next_frame().unwrap() {
            out.push(msg::decode(&fr, DecodeCtx { asn4: true }).unwrap());
        }
        out
    }

    fn open(&self, id: &str, fams: &[Family]) -> BgpMessage {
        msg::open(PEER_AS, 90, id.parse().unwrap(), fams.iter().copied())
    }

    /// Connects (outgoing) and runs OPEN / KEEPALIVE both ways; returns the id.
    fn establish(&mut self, fams: &[Family]) -> u64 {
        let id = self.connected();
        assert!(matches!(self.sent(id)[..], [BgpMessage::Open(_)]));
        assert_eq!(self.st.state, State::OpenSent);
        self.feed(id, &self.open("2.2.2.2", fams));
        assert_eq!(self.sent(id), vec![BgpMessage::KeepAlive]);
        assert_eq!(self.st.state, State::OpenConfirm);
        self.feed(id, &BgpMessage::KeepAlive);
        assert_eq!(self.st.state, State::Established);
        id
    }
}

fn notification(m: &[BgpMessage]) -> Option<(u8, u8)> {
    m.iter().find_map(|m| match m {
        BgpMessage::Notification(n) => Some(msg::codes(n)),
        _ => None,
    })
}

/// (announced, withdrawn, End-of-RIB families) of UPDATEs.
fn routes_of(m: &[BgpMessage]) -> (Vec<(Prefix, u32)>, Vec<Prefix>, Vec<Family>) {
    let (mut a, mut w, mut eor) = (vec![], vec![], vec![]);
    for m in m {
        if let BgpMessage::Update(u) = m {
            let c = msg::content(u);
            if let Some(t) = u.end_of_rib() {
                eor.extend(msg::family_of(t));
            }
            a.extend(c.announced.iter().map(|(_, r)| (r.prefix, r.label)));
            w.extend(c.withdrawn.iter().map(|(_, p)| *p));
        }
    }
    (a, w, eor)
}

fn both() -> Families {
    Families::default_for(true)
}

#[test]
fn connects_at_once_and_comes_up_with_routes_and_end_of_rib() {
    let mut h = H::new(&[("10.1.1.0/24", 48122), ("2001:db8::/32", 60000)], both(), None);
    assert_eq!((h.connects, h.st.state), (1, State::Connect));
    let id = h.establish(&[V4, V6]);
    let (a, w, eor) = routes_of(&h.sent(id));
    assert_eq!(a, vec![(pfx("10.1.1.0/24"), 48122), (pfx("2001:db8::/32"), 60000)]);
    assert!(w.is_empty());
    assert_eq!(eor, vec![V4, V6]);
    assert_eq!((h.st.prefixes_sent, h.st.established), (2, 1));
}

/// A big table goes out in batches (the driver writes one while the next is
/// encoded), End-of-RIB after the last.
#[test]
fn the_initial_advertisement_goes_out_in_batches() {
    let n = conn::SYNC_BATCH + 100;
    let mut h = H::new(&[], both(), None);
    h.routes = (0..n as u32)
        .map(|i| (Prefix::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), 32).unwrap(), 16 + i))
        .collect();
    let id = h.establish(&[V4]);
    let (a, _, eor) = routes_of(&h.sent(id));
    assert_eq!((a.len(), eor.len(), h.peer.pumping()), (conn::SYNC_BATCH, 0, true));
    h.peer.pump(h.now, ctx!(h));
    h.drain();
    let (a, _, eor) = routes_of(&h.sent(id));
    assert_eq!((a.len(), eor, h.peer.pumping()), (100, vec![V4], false));
    assert_eq!(h.st.prefixes_sent, n);
}

#[test]
fn connect_failures_back_off_and_reach_active() {
    let mut h = H::new(&[], both(), None);
    let mut delays = vec![];
    for _ in 0..7 {
        h.peer.on_connect_failed("refused", h.now, ctx!(h));
        h.drain();
        assert_eq!(h.st.state, State::Active);
        let d = h.peer.deadline().unwrap() - h.now;
        delays.push(d.as_secs());
        let before = h.connects;
        h.advance(d - Duration::from_millis(1));
        assert_eq!(h.connects, before, "not before the delay");
        h.advance(Duration::from_millis(1));
        assert_eq!((h.connects, h.st.state), (before + 1, State::Connect));
    }
    assert_eq!(delays, vec![1, 2, 4, 8, 16, 30, 30]);
}

#[test]
fn keepalives_at_a_third_of_the_hold_time_and_hold_timer_expiry() {
    let mut h = H::new(&[], both(), None);
    let id = h.establish(&[V4]);
    h.sent(id);
    h.advance(Duration::from_secs(30));
    assert_eq!(h.sent(id), vec![BgpMessage::KeepAlive]);
    // The peer says nothing for the hold time (90 s): 4/0, closed, retried later.
    h.advance(Duration::from_secs(60));
    assert_eq!(notification(&h.sent(id)), Some((4, 0)));
    assert!(h.closed.contains(&id));
    assert_eq!(h.st.state, State::Active);
}

#[test]
fn a_peer_that_never_sends_open_is_dropped_after_four_minutes() {
    let mut h = H::new(&[], both(), None);
    let id = h.connected();
    h.sent(id);
    h.advance(conn::OPEN_HOLD - Duration::from_secs(1));
    assert!(h.closed.is_empty());
    h.advance(Duration::from_secs(1));
    assert_eq!(notification(&h.sent(id)), Some((4, 0)));
}

/// An UPDATE in OpenSent is a state error (5/1, RFC 6608), whatever it holds: the
/// state is checked before the message is decoded (this one is malformed too).
#[test]
fn an_update_in_open_sent_gets_5_1_and_in_open_confirm_5_2() {
    let mut h = H::new(&[], both(), None);
    let id = h.connected();
    h.sent(id);
    let mut bad = msg::encode(&msg::withdraw(V4, &[]));
    bad[21] = 0xff; // attribute list length overruns: 3/1 if it were decoded
    h.bytes(id, &bad);
    assert_eq!(notification(&h.sent(id)), Some((5, 1)));
    assert_eq!(h.st.errors, 1);

    h.advance(Duration::from_secs(1));
    let id = h.connected();
    h.feed(id, &h.open("2.2.2.2", &[V4]));
    h.sent(id);
    h.feed(id, &msg::withdraw(V4, &[]));
    assert_eq!(notification(&h.sent(id)), Some((5, 2)));
}

/// A peer whose session goes down right after Established (ExaBGP repeating an
/// UPDATE popgo rejects) waits longer each time: the delay is reset only by a session
/// that stayed up `stable_for`.
#[test]
fn a_flapping_peer_is_damped() {
    let mut h = H::new(&[], both(), None);
    let mut delays = vec![];
    for _ in 0..6 {
        let id = h.establish(&[V4]);
        h.advance(Duration::from_secs(1));
        h.bytes(id, &[0; 19]); // bad marker: 1/1, reset
        assert_eq!(h.st.state, State::Active);
        let d = h.peer.deadline().unwrap() - h.now;
        delays.push(d.as_secs());
        h.advance(d);
    }
    assert_eq!(delays, vec![1, 2, 4, 8, 16, 30]);
    // Up for longer than stable_for: the next delay is the first one again.
    let id = h.establish(&[V4]);
    for _ in 0..3 {
        h.advance(Duration::from_secs(30));
        h.feed(id, &BgpMessage::KeepAlive);
    }
    h.bytes(id, &[0; 19]);
    assert_eq!(h.peer.deadline().unwrap() - h.now, Duration::from_secs(1));
}

/// RFC 4271 section 6.8: while popgo's connection waits for the peer's OPEN, a
/// connection from the peer proceeds too (it gets popgo's OPEN at once); when both
/// have OPENs, the one opened by the higher identifier stays.
#[test]
fn collisions_let_both_proceed_then_the_higher_identifier_wins() {
    for (peer_id, survivor_is_incoming) in [("2.2.2.2", true), ("0.0.0.9", false)] {
        let mut h = H::new(&[("10.1.1.0/24", 20)], both(), None);
        let out = h.connected();
        h.sent(out);
        let inc = h.incoming();
        assert!(matches!(h.sent(inc)[..], [BgpMessage::Open(_)]), "the second connection gets an OPEN");
        h.feed(inc, &h.open(peer_id, &[V4]));
        assert_eq!(h.sent(inc), vec![BgpMessage::KeepAlive]);
        h.feed(out, &h.open(peer_id, &[V4]));
        let (winner, loser) = if survivor_is_incoming { (inc, out) } else { (out, inc) };
        let lost = h.sent(loser);
        assert_eq!(notification(&lost), Some((6, 7)), "{peer_id}: {lost:?}");
        assert!(h.closed.contains(&loser) && !h.closed.contains(&winner));
        h.sent(winner);
        h.feed(winner, &BgpMessage::KeepAlive);
        assert_eq!(h.st.state, State::Established);
        // A third connection while Established is refused.
        let third = h.incoming();
        assert_eq!(notification(&h.sent(third)), Some((6, 7)));
        assert_eq!(h.st.state, State::Established);
    }
}

fn refresh(afi: u16, safi: u8) -> Vec<u8> {
    let mut b = vec![0xff; 16];
    b.extend_from_slice(&23u16.to_be_bytes());
    b.push(5);
    b.extend_from_slice(&afi.to_be_bytes());
    b.extend_from_slice(&[0, safi]);
    b
}

/// RFC 2918 section 4: an unknown AFI/SAFI is ignored (no reset); a family not
/// negotiated is ignored; a negotiated one gets that family's routes and End-of-RIB.
#[test]
fn route_refresh_is_per_family() {
    let mut h = H::new(&[("10.1.1.0/24", 20), ("2001:db8::/32", 30)], both(), None);
    let id = h.establish(&[V4]);
    h.sent(id);
    h.bytes(id, &refresh(1, 1));
    h.bytes(id, &refresh(99, 4));
    h.bytes(id, &refresh(2, 4)); // 6PE: not negotiated
    assert!(h.sent(id).is_empty());
    assert_eq!(h.st.state, State::Established);
    h.bytes(id, &refresh(1, 4));
    let (a, _, eor) = routes_of(&h.sent(id));
    assert_eq!((a, eor), (vec![(pfx("10.1.1.0/24"), 20)], vec![V4]));

    let mut h = H::new(&[("10.1.1.0/24", 20), ("2001:db8::/32", 30)], both(), None);
    let id = h.establish(&[V4, V6]);
    h.sent(id);
    h.bytes(id, &refresh(1, 4));
    let (a, _, eor) = routes_of(&h.sent(id));
    assert_eq!((a, eor), (vec![(pfx("10.1.1.0/24"), 20)], vec![V4]), "IPv4 only, not 6PE");
}

/// Commits send what changed, nothing else.
#[test]
fn changes_update_the_adj_rib_out() {
    let mut h = H::new(&[("10.1.1.0/24", 20), ("10.2.0.0/16", 21)], both(), None);
    let id = h.establish(&[V4]);
    h.sent(id);
    let changes = vec![(pfx("10.1.1.0/24"), None), (pfx("10.2.0.0/16"), Some(21)), (pfx("10.3.0.0/16"), Some(22))];
    h.peer.on_routes(&changes, h.now, ctx!(h));
    h.drain();
    let (a, w, _) = routes_of(&h.sent(id));
    assert_eq!((a, w), (vec![(pfx("10.3.0.0/16"), 22)], vec![pfx("10.1.1.0/24")]));
    assert_eq!(h.st.prefixes_sent, 2);
    // A 6PE route to a peer without 6PE, a withdrawal of what was never sent: nothing.
    h.peer.on_routes(&[(pfx("2001:db8::/32"), Some(5)), (pfx("10.9.0.0/16"), None)], h.now, ctx!(h));
    h.drain();
    assert!(h.sent(id).is_empty());
}

fn peer_routes(n: u32) -> BgpMessage {
    let routes: Vec<(Prefix, u32)> = (0..n)
        .map(|i| (Prefix::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i << 8))), 24).unwrap(), 16 + i))
        .collect();
    msg::announce(V4, &routes, "198.51.100.2".parse().unwrap(), PathCtx { local_as: PEER_AS, ibgp: false, asn4: true })
}

#[test]
fn the_route_limit_closes_idles_or_alerts() {
    let limit = |action| Some(RouteLimit { limit: 3, percent: 75, action });
    // Default: Cease 6/1 with AFI, SAFI and the limit; connect again after 30 s.
    let mut h = H::new(&[], both(), limit(LimitAction::Restart));
    let id = h.establish(&[V4]);
    h.sent(id);
    h.feed(id, &peer_routes(3));
    assert_eq!((h.st.received.len(), h.st.state), (3, State::Established));
    h.feed(id, &peer_routes(4));
    let sent = h.sent(id);
    let Some(BgpMessage::Notification(n)) = sent.last() else { panic!("{sent:?}") };
    let b = msg::encode(&BgpMessage::Notification(n.clone()));
    assert_eq!(&b[19..], &[6, 1, 0, 1, 4, 0, 0, 0, 3]);
    assert_eq!(h.st.over_limit, 1);
    assert_eq!(h.peer.deadline().unwrap() - h.now, Duration::from_secs(30));

    let mut h = H::new(&[], both(), limit(LimitAction::IdleTimeout(5)));
    let id = h.establish(&[V4]);
    h.feed(id, &peer_routes(4));
    assert_eq!(h.peer.deadline().unwrap() - h.now, Duration::from_secs(300));

    let mut h = H::new(&[], both(), limit(LimitAction::IdleForever));
    let id = h.establish(&[V4]);
    h.feed(id, &peer_routes(4));
    assert_eq!((h.peer.deadline(), h.st.state), (None, State::Idle));

    let mut h = H::new(&[], both(), limit(LimitAction::AlertOnly));
    let id = h.establish(&[V4]);
    h.sent(id);
    h.feed(id, &peer_routes(5));
    assert_eq!((h.st.received.len(), h.st.over_limit, h.st.state), (3, 2, State::Established));
    assert!(notification(&h.sent(id)).is_none());
}

/// A valid UPDATE from the peer (one labeled route), as bytes.
fn peer_update() -> Vec<u8> {
    msg::encode(&peer_routes(1))
}

/// Offsets of the attribute values of an UPDATE other than MP_REACH / MP_UNREACH.
fn plain_attr_values(b: &[u8]) -> Vec<std::ops::Range<usize>> {
    let wlen = usize::from(u16::from_be_bytes([b[19], b[20]]));
    let at = 21 + wlen;
    let alen = usize::from(u16::from_be_bytes([b[at], b[at + 1]]));
    let (mut i, end, mut out) = (at + 2, at + 2 + alen, vec![]);
    while i < end {
        let ext = b[i] & 0x10 != 0;
        let hdr = if ext { 4 } else { 3 };
        let len = if ext { usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]])) } else { usize::from(b[i + 2]) };
        if !matches!(b[i + 1], 14 | 15) {
            out.push(i + hdr..i + hdr + len);
        }
        i += hdr + len;
    }
    out
}

static RESETS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static KEPT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Random bytes after the header, and valid UPDATEs with bytes changed, never
    /// panic an Established session; a reset names a code RFC 7606 keeps for one
    /// (header 1/x, 3/1 lengths, 3/2, 3/4 or 3/9 on MP attributes, 3/10), and changing
    /// only the values of ORIGIN, AS_PATH, LOCAL_PREF and the like never resets.
    #[test]
    fn updates_never_panic_and_reset_only_where_rfc_7606_says(
        body in proptest::collection::vec(any::<u8>(), 0..300),
        flips in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..6),
        extra in proptest::collection::vec((any::<u8>(), any::<u8>(), proptest::collection::vec(any::<u8>(), 0..12)), 0..3),
        mode in 0usize..3,
    ) {
        let mut h = H::new(&[("10.1.1.0/24", 20)], both(), None);
        let id = h.establish(&[V4]);
        h.sent(id);
        let mut m = peer_update();
        let values_only = mode == 0;
        match mode {
            0 => {
                // Values of non-MP attributes only: lengths and flags stay.
                let spans: Vec<usize> = plain_attr_values(&m).into_iter().flatten().collect();
                for (at, v) in &flips {
                    if !spans.is_empty() {
                        m[spans[usize::from(*at) % spans.len()]] = *v;
                    }
                }
            }
            1 => {
                for (at, v) in &flips {
                    let i = 19 + usize::from(*at) % (m.len() - 19);
                    m[i] = *v;
                }
                // Attributes of random type, flags and value appended to the list.
                for (flags, code, v) in &extra {
                    let at = 21 + 2;
                    let alen = u16::from_be_bytes([m[21], m[22]]);
                    let mut a = vec![*flags & !0x10, *code, v.len() as u8];
                    a.extend_from_slice(v);
                    m.splice(at..at, a.iter().copied());
                    m[21..23].copy_from_slice(&(alen.wrapping_add(a.len() as u16)).to_be_bytes());
                }
                let len = m.len().min(4096) as u16;
                m.truncate(usize::from(len));
                m[16..18].copy_from_slice(&len.to_be_bytes());
            }
            _ => {
                m.truncate(19);
                m.extend_from_slice(&body);
                let len = m.len() as u16;
                m[16..18].copy_from_slice(&len.to_be_bytes());
            }
        }
        h.bytes(id, &m);
        let sent = h.sent(id);
        match notification(&sent) {
            None => {
                prop_assert_eq!(h.st.state, State::Established);
                KEPT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Some((code, sub)) => {
                RESETS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                prop_assert!(!values_only, "a value change reset the session: {:?} {:02x?}", (code, sub), m);
                prop_assert!(
                    code == 1 || (code == 3 && [1, 2, 4, 9, 10].contains(&sub)),
                    "reset with {code}/{sub}: {m:02x?}"
                );
                prop_assert!(h.closed.contains(&id));
            }
        }
    }
}

#[test]
fn zz_report_update_cases() {
    // For the log: how many cases of the proptest above kept or reset the session
    // (it may run before or after this test).
    let o = std::sync::atomic::Ordering::Relaxed;
    eprintln!("UPDATE cases so far: {} kept the session, {} reset it", KEPT.load(o), RESETS.load(o));
}

//! The speaker against a scripted peer on loopback (netgauze on the peer's side too).

use super::msg::{self, DecodeCtx, Framer, LabeledRoute};
use super::*;
use crate::config::Family;
use netgauze_bgp_pkt::BgpMessage;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

const PEER_AS: u32 = 200;
const LOCAL_AS: u32 = 100;

fn pfx(s: &str) -> Prefix {
    Prefix::parse(s).unwrap()
}

fn opts(port: u16) -> Options {
    Options {
        connect_port: port,
        listen_port: None,
        hold_time_s: 90,
        retry_initial: Duration::from_millis(200),
        retry_max: Duration::from_secs(1),
        stable_for: Duration::from_secs(60),
        limit_restart: Duration::from_secs(30),
    }
}

/// The peer at 127.0.0.1 on `families`, and route changes (prefix, label or `None`).
fn adverts(changes: &[(&str, Option<u32>)], families: Families) -> Adverts {
    let peer = crate::config::Peer {
        address: Ipv4Addr::LOCALHOST,
        asn: PEER_AS,
        source: None,
        families: Some(families),
        route_limit: None,
        password: None,
        ttl_hops: None,
        line: 0,
    };
    Adverts {
        asn: LOCAL_AS,
        router_id: Some("1.1.1.1".parse().unwrap()),
        peers: vec![peer],
        changes: changes.iter().map(|(p, l)| (pfx(p), *l)).collect(),
        vpns: Vec::new(),
        listen: None,
    }
}

/// The scripted peer's end of one connection.
struct Peer {
    s: TcpStream,
    f: Framer,
}

impl Peer {
    fn accept(l: &TcpListener) -> Peer {
        l.set_nonblocking(false).unwrap();
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Peer { s, f: Framer::default() }
    }

    fn recv(&mut self) -> Option<BgpMessage> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(fr) = self.f.next_frame().unwrap() {
                return Some(msg::decode(&fr, DecodeCtx { asn4: true }).unwrap());
            }
            match self.s.read(&mut buf) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.f.push(&buf[..n]),
            }
        }
    }

    fn send(&mut self, m: &BgpMessage) {
        self.s.write_all(&msg::encode(m)).unwrap();
    }

    /// OPEN both ways, KEEPALIVE both ways.
    fn establish(&mut self, asn: u32, fams: &[Family]) {
        let BgpMessage::Open(o) = self.recv().expect("popgo's OPEN") else { panic!("not an OPEN") };
        let p = msg::peer_open(&o);
        assert_eq!((p.asn, p.id, p.asn4), (LOCAL_AS, "1.1.1.1".parse().unwrap(), true));
        self.send(&msg::open(asn, 90, "2.2.2.2".parse().unwrap(), fams.iter().copied()));
        assert_eq!(self.recv(), Some(BgpMessage::KeepAlive));
        self.send(&BgpMessage::KeepAlive);
    }

    /// UPDATEs until an End-of-RIB of each family in `eor` was seen: announced and
    /// withdrawn routes.
    fn updates_until(&mut self, mut want: impl FnMut(&[(Family, LabeledRoute)], &[Prefix]) -> bool) {
        let (mut ann, mut wd) = (Vec::new(), Vec::new());
        while !want(&ann, &wd) {
            match self.recv() {
                Some(BgpMessage::Update(u)) => {
                    let c = msg::content(&u);
                    ann.extend(c.announced);
                    wd.extend(c.withdrawn.into_iter().map(|(_, p)| p));
                }
                Some(BgpMessage::KeepAlive) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(secs), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn peer_status(sp: &Speaker) -> PeerStatus {
    sp.status().peers().into_iter().next().expect("one peer")
}

#[test]
fn advertises_labels_withdraws_and_accepts_routes() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let sp = Speaker::start(opts(l.local_addr().unwrap().port())).unwrap();
    let both = Families::default_for(true);
    sp.update(adverts(&[("10.1.1.0/24", Some(48122)), ("2001:db8:100::/48", Some(60100))], both));
    let mut p = Peer::accept(&l);
    p.establish(PEER_AS, &[Family::Ipv4LabeledUnicast, Family::Ipv6LabeledUnicast]);
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    p.updates_until(|a, _| {
        a.contains(&(
            Family::Ipv4LabeledUnicast,
            LabeledRoute { prefix: pfx("10.1.1.0/24"), label: 48122, next_hop: lo },
        )) && a.contains(&(
            Family::Ipv6LabeledUnicast,
            LabeledRoute { prefix: pfx("2001:db8:100::/48"), label: 60100, next_hop: lo },
        ))
    });
    wait_until("Established with 2 prefixes sent", 5, || {
        let s = peer_status(&sp);
        s.state == State::Established && s.prefixes_sent == 2
    });

    // A commit that removes the network withdraws it; a label change re-announces.
    sp.update(adverts(&[("10.1.1.0/24", None), ("2001:db8:100::/48", Some(60200))], both));
    p.updates_until(|a, w| {
        w.contains(&pfx("10.1.1.0/24"))
            && a.iter().any(|(_, r)| r.prefix == pfx("2001:db8:100::/48") && r.label == 60200)
    });

    // The peer's routes are accepted and shown, never installed.
    let nh: Ipv4Addr = "127.0.0.1".parse().unwrap();
    let path = msg::PathCtx { local_as: PEER_AS, ibgp: false, asn4: true };
    p.send(&msg::announce(Family::Ipv4LabeledUnicast, &[(pfx("4.4.4.4/32"), 1025)], nh, path));
    wait_until("the received route", 5, || peer_status(&sp).received.len() == 1);
    let table = sp.status().display_routing_table(Family::Ipv4LabeledUnicast);
    assert!(table.contains("4.4.4.4") && table.contains("NULL/1025"), "{table}");
    let peers = sp.status().display_peer();
    assert!(peers.contains("Established") && peers.contains("127.0.0.1"), "{peers}");

    // A malformed ORIGIN (5) is treat-as-withdraw (RFC 7606 section 7.1): the route
    // it announces is withdrawn, the session stays up.
    let mut bad = msg::encode(&msg::announce(Family::Ipv4LabeledUnicast, &[(pfx("4.4.4.4/32"), 1026)], nh, path));
    let at = bad.windows(3).position(|w| w == [0x40, 1, 1]).expect("ORIGIN") + 3;
    bad[at] = 5;
    p.s.write_all(&bad).unwrap();
    wait_until("the route treated as withdrawn", 5, || {
        let s = peer_status(&sp);
        s.treated_as_withdraw == 1 && s.received.is_empty()
    });
    assert_eq!(peer_status(&sp).state, State::Established);
    assert_eq!(peer_status(&sp).errors, 0);

    // A truncated plain NLRI gets 3/10 (RFC 4271 section 6.3), is counted, and the
    // session comes back.
    let mut bad = msg::encode(&BgpMessage::KeepAlive);
    bad[18] = 2;
    bad.extend_from_slice(&[0, 0, 0, 0, 24, 10, 1]);
    let len = bad.len() as u16;
    bad[16..18].copy_from_slice(&len.to_be_bytes());
    p.s.write_all(&bad).unwrap();
    match p.recv() {
        Some(BgpMessage::Notification(n)) => assert_eq!(msg::codes(&n), (3, 10)),
        other => panic!("wanted a NOTIFICATION, got {other:?}"),
    }
    wait_until("the error counted", 5, || peer_status(&sp).errors == 1);
    let mut p = Peer::accept(&l);
    p.establish(PEER_AS, &[Family::Ipv4LabeledUnicast, Family::Ipv6LabeledUnicast]);
    wait_until("established again", 5, || peer_status(&sp).established == 2);
    assert!(peer_status(&sp).received.is_empty(), "routes of the old session are gone");

    // Stopping the speaker says Cease / administrative shutdown.
    drop(sp);
    loop {
        match p.recv() {
            Some(BgpMessage::Notification(n)) => {
                assert_eq!(msg::codes(&n), (6, 2));
                break;
            }
            Some(_) => {}
            None => panic!("closed without a Cease"),
        }
    }
}

#[test]
fn wrong_peer_as_and_missing_families_are_refused() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let sp = Speaker::start(opts(l.local_addr().unwrap().port())).unwrap();
    sp.update(adverts(&[("10.1.1.0/24", Some(48122))], Families::default_for(false)));
    let mut p = Peer::accept(&l);
    let _ = p.recv();
    p.send(&msg::open(300, 90, "2.2.2.2".parse().unwrap(), [Family::Ipv4LabeledUnicast].into_iter()));
    match p.recv() {
        Some(BgpMessage::Notification(n)) => assert_eq!(msg::codes(&n), (2, 2)),
        other => panic!("{other:?}"),
    }
    let mut p = Peer::accept(&l);
    let _ = p.recv();
    p.send(&msg::open(PEER_AS, 90, "2.2.2.2".parse().unwrap(), [Family::Ipv6LabeledUnicast].into_iter()));
    match p.recv() {
        Some(BgpMessage::Notification(n)) => assert_eq!(msg::codes(&n), (2, 7)),
        other => panic!("{other:?}"),
    }
    // An UPDATE before the session is up is a state machine error (RFC 6608 1).
    let mut p = Peer::accept(&l);
    let _ = p.recv();
    p.send(&msg::withdraw(Family::Ipv4LabeledUnicast, &[]));
    match p.recv() {
        Some(BgpMessage::Notification(n)) => assert_eq!(msg::codes(&n), (5, 1)),
        other => panic!("{other:?}"),
    }
    wait_until("three errors counted", 5, || peer_status(&sp).errors == 3);
}

#[test]
fn a_silent_peer_is_retried_with_backoff() {
    // A port nobody listens on: every connect is refused at once.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let sp = Speaker::start(opts(port)).unwrap();
    sp.update(adverts(&[("10.1.1.0/24", Some(48122))], Families::default_for(false)));
    // Delays 0.2, 0.4, 0.8, 1, 1 s: about 5 attempts in 2.6 s, not dozens.
    std::thread::sleep(Duration::from_millis(2600));
    let s = peer_status(&sp);
    assert!((3..=7).contains(&s.connects), "{} attempts", s.connects);
    assert!(matches!(s.state, State::Active | State::Connect), "{:?}", s.state);
    assert!(s.last_error.as_deref().is_some_and(|e| e.contains("connect")), "{:?}", s.last_error);
}

#[test]
fn removing_the_peer_sends_cease_deconfigured() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let sp = Speaker::start(opts(l.local_addr().unwrap().port())).unwrap();
    sp.update(adverts(&[("10.1.1.0/24", Some(48122))], Families::default_for(false)));
    let mut p = Peer::accept(&l);
    p.establish(PEER_AS, &[Family::Ipv4LabeledUnicast]);
    let mut none = adverts(&[], Families::NONE);
    none.peers.clear();
    sp.update(none);
    loop {
        match p.recv() {
            Some(BgpMessage::Notification(n)) => {
                assert_eq!(msg::codes(&n), (6, 3));
                break;
            }
            Some(_) => {}
            None => panic!("closed without a Cease"),
        }
    }
    wait_until("the peer gone from the status", 5, || sp.status().peers().is_empty());
}

fn adv(r: &[(&str, u32)]) -> Adverts {
    let changes: Vec<(&str, Option<u32>)> = r.iter().map(|(p, l)| (*p, Some(*l))).collect();
    adverts(&changes, Families::default_for(false))
}

// ---- hostile peers over loopback (run on the old and the new code) ----

fn hostile_v4() -> Vec<Family> {
    vec![Family::Ipv4LabeledUnicast]
}

fn no_notification_within(p: &mut Peer, d: Duration) -> Result<(), String> {
    p.s.set_read_timeout(Some(d)).unwrap();
    let r = match p.recv() {
        Some(BgpMessage::Notification(n)) => Err(format!("NOTIFICATION {:?}", msg::codes(&n))),
        _ => Ok(()),
    };
    p.s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    r
}

fn expect_notification(p: &mut Peer) -> (u8, u8) {
    loop {
        match p.recv() {
            Some(BgpMessage::Notification(n)) => return msg::codes(&n),
            Some(_) => {}
            None => panic!("closed without a NOTIFICATION"),
        }
    }
}

fn raw_update(body: &[u8]) -> Vec<u8> {
    let mut b = vec![0xff; 16];
    b.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    b.push(2);
    b.extend_from_slice(body);
    b
}

/// A malformed ORIGIN is treat-as-withdraw (RFC 7606 section 7.1), not a reset.
#[test]
fn hostile_bad_origin_keeps_the_session() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let sp = Speaker::start(opts(l.local_addr().unwrap().port())).unwrap();
    sp.update(adv(&[("10.1.1.0/24", 48122)]));
    let mut p = Peer::accept(&l);
    p.establish(PEER_AS, &hostile_v4());
    let nh: Ipv4Addr = "127.0.0.1".parse().unwrap();
    let path = msg::PathCtx { local_as: PEER_AS, ibgp: false, asn4: true };
    let mut bad = msg::encode(&msg::announce(Family::Ipv4LabeledUnicast, &[(pfx("4.4.4.0/24"), 1026)], nh, path));
    let at = bad.windows(3).position(|w| w == [0x40, 1, 1]).expect("ORIGIN") + 3;
    bad[at] = 5;
    p.s.write_all(&bad).unwrap();
    no_notification_within(&mut p, Duration::from_millis(500)).unwrap();
    assert_eq!(peer_status(&sp).state, State::Established);
}

/// An UPDATE in OpenSent gets 5/1 even when it is malformed (state checked first).
#[test]
fn hostile_malformed_update_in_open_sent_gets_5_1() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let sp = Speaker::start(opts(l.local_addr().unwrap().port())).unwrap();
    sp.update(adv(&[("10.1.1.0/24", 48122)]));
    let mut p = Peer::accept(&l);
    let _ = p.recv();
    // Total attribute length 255 in a message that has none.
    p.s.write_all(&raw_update(&[0, 0, 0, 0xff])).unwrap();
    assert_eq!(expect_notification(&mut p), (5, 1));
}

/// A truncated plain IPv4 NLRI gets 3/10 (RFC 4271 section 6.3).
#[test]
fn hostile_truncated_nlri_gets_3_10() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let sp = Speaker::start(opts(l.local_addr().unwrap().port())).unwrap();
    sp.update(adv(&[("10.1.1.0/24", 48122)]));
    let mut p = Peer::accept(&l);
    p.establish(PEER_AS, &hostile_v4());
    p.s.write_all(&raw_update(&[0, 0, 0, 0, 24, 10, 1])).unwrap();
    assert_eq!(expect_notification(&mut p), (3, 10));
}

/// RFC 2918 section 4: a ROUTE-REFRESH for an unknown AFI/SAFI is ignored; one for a
/// family not negotiated sends nothing.
#[test]
fn hostile_route_refresh_unknown_or_not_negotiated_is_ignored() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let sp = Speaker::start(opts(l.local_addr().unwrap().port())).unwrap();
    sp.update(adv(&[("10.1.1.0/24", 48122)]));
    let mut p = Peer::accept(&l);
    p.establish(PEER_AS, &hostile_v4());
    p.updates_until(|a, _| !a.is_empty());
    for (afi, safi) in [(99u16, 4u8), (2, 4)] {
        let mut b = vec![0xff; 16];
        b.extend_from_slice(&23u16.to_be_bytes());
        b.push(5);
        b.extend_from_slice(&afi.to_be_bytes());
        b.extend_from_slice(&[0, safi]);
        p.s.write_all(&b).unwrap();
    }
    p.s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    loop {
        match p.recv() {
            None => break,
            Some(BgpMessage::Update(u)) if u.end_of_rib().is_some() => {}
            Some(m) => panic!("sent {m:?}"),
        }
    }
    assert_eq!(peer_status(&sp).state, State::Established);
}

/// 3/9 carries the erroneous attribute (RFC 4271 section 6.3).
#[test]
fn hostile_3_9_carries_the_attribute() {
    // MP_REACH_NLRI with a next hop length of 7.
    let reach = [0x90u8, 14, 0, 19, 0, 1, 4, 7, 1, 2, 3, 4, 5, 6, 7, 0, 48, 0x0b, 0xbf, 0xa1, 10, 1, 1];
    let mut body = vec![0, 0];
    let attrs = [&[0x40u8, 1, 1, 0][..], &[0x40, 2, 6, 2, 1, 0, 0, 0, 200], &reach].concat();
    body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    body.extend_from_slice(&attrs);
    let n = msg::decode(&raw_update(&body), DecodeCtx { asn4: true }).unwrap_err();
    let b = msg::encode(&BgpMessage::Notification(n));
    assert_eq!(&b[19..21], &[3, 9]);
    assert_eq!(&b[21..], &reach[..], "data: the attribute");
}

/// RFC 4271 section 6.8: a second connection from the peer, while popgo's own waits
/// in OpenSent for the peer's OPEN, gets popgo's OPEN at once.
#[test]
fn hostile_second_connection_proceeds() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let listen_port = free.local_addr().unwrap().port();
    drop(free);
    let mut o = opts(l.local_addr().unwrap().port());
    o.listen_port = Some(listen_port);
    let sp = Speaker::start(o).unwrap();
    sp.update(adv(&[("10.1.1.0/24", 48122)]));
    let mut first = Peer::accept(&l);
    assert!(matches!(first.recv(), Some(BgpMessage::Open(_))));
    let s = TcpStream::connect(("127.0.0.1", listen_port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut second = Peer { s, f: Framer::default() };
    assert!(matches!(second.recv(), Some(BgpMessage::Open(_))), "no OPEN on the second connection");
    drop(sp);
}

/// A peer whose session keeps going down right after Established is damped: the
/// delay doubles instead of going back to the first one.
#[test]
fn hostile_flapping_peer_is_damped() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let sp = Speaker::start(opts(l.local_addr().unwrap().port())).unwrap();
    sp.update(adv(&[("10.1.1.0/24", 48122)]));
    l.set_nonblocking(true).unwrap();
    let t = Instant::now();
    let mut ups = 0;
    // Delays 0.2, 0.4, 0.8, 1, 1 s with damping: at most 5 sessions in 3 s.
    while t.elapsed() < Duration::from_secs(3) {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut p = Peer { s, f: Framer::default() };
                p.establish(PEER_AS, &hostile_v4());
                ups += 1;
                p.s.write_all(&[0u8; 19]).unwrap(); // bad marker: reset
                let _ = expect_notification(&mut p);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    assert!(ups <= 5, "{ups} sessions in 3 s");
}

/// A connection to `to` from the local address `from`.
fn connect_from(from: Ipv4Addr, to: std::net::SocketAddrV4) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    s.bind(&std::net::SocketAddrV4::new(from, 0).into())?;
    s.connect_timeout(&to.into(), Duration::from_secs(2))?;
    Ok(s.into())
}

/// `[bgp] listen`: the speaker listens on that address and port only, and a
/// connection from an address that is not a configured peer is closed and counted.
#[test]
fn listens_where_configured_and_refuses_non_peers() {
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    // The peer (127.0.0.1) never answers popgo's own connections: this test is about
    // the listener.
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let sp = Speaker::start(opts(peer.local_addr().unwrap().port())).unwrap();
    let mut a = adv(&[("10.1.1.0/24", 48122)]);
    let at = std::net::SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    a.listen = Some(at);
    sp.update(a);
    let stranger = Ipv4Addr::new(127, 0, 0, 2);
    let mut s = poll_connect(stranger, at);
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut buf = [0u8; 64];
    // Closed without a message (a reset or an end of stream).
    assert!(!matches!(s.read(&mut buf), Ok(n) if n > 0), "a non-peer got bytes");
    wait_until("the refused connection counted", 5, || sp.status().refused() == 1);
    // Only the configured address listens: the same port elsewhere on loopback does not.
    let other = std::net::SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 3), port);
    let e = connect_from(stranger, other).expect_err("only 127.0.0.1 listens");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
    assert_eq!(sp.status().refused(), 1);
    drop(sp);
}

/// Connects to `to` from `from`, retrying while the speaker starts listening.
fn poll_connect(from: Ipv4Addr, to: std::net::SocketAddrV4) -> TcpStream {
    let t = Instant::now();
    loop {
        match connect_from(from, to) {
            Ok(s) => return s,
            Err(e) if t.elapsed() > Duration::from_secs(5) => panic!("nothing listens on {to}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

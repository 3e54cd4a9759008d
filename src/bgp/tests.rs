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
        line: 0,
    };
    Adverts {
        asn: LOCAL_AS,
        router_id: Some("1.1.1.1".parse().unwrap()),
        peers: vec![peer],
        changes: changes.iter().map(|(p, l)| (pfx(p), *l)).collect(),
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

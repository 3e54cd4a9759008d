use super::*;
use proptest::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

fn pfx(s: &str) -> Prefix {
    Prefix::parse(s).unwrap()
}

const CTX: DecodeCtx = DecodeCtx { asn4: true };

fn frame(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0xff; 16];
    v.extend_from_slice(&((HEADER_LEN + body.len()) as u16).to_be_bytes());
    v.push(ty);
    v.extend_from_slice(body);
    v
}

/// An UPDATE body written out field by field (the fixture the breakers change).
fn update_body(withdrawn: &[u8], attrs: &[(u8, u8, Vec<u8>)], nlri: &[u8]) -> Vec<u8> {
    let mut a = Vec::new();
    for (flags, code, value) in attrs {
        a.push(*flags);
        a.push(*code);
        if flags & 0x10 != 0 {
            a.extend_from_slice(&(value.len() as u16).to_be_bytes());
        } else {
            a.push(value.len() as u8);
        }
        a.extend_from_slice(value);
    }
    let mut b = (withdrawn.len() as u16).to_be_bytes().to_vec();
    b.extend_from_slice(withdrawn);
    b.extend_from_slice(&(a.len() as u16).to_be_bytes());
    b.extend_from_slice(&a);
    b.extend_from_slice(nlri);
    b
}

/// ORIGIN, AS_PATH (one 4-octet AS), and MP_REACH_NLRI for 10.1.1.0/24 label 48122.
fn valid_attrs() -> Vec<(u8, u8, Vec<u8>)> {
    let mut reach = vec![0, 1, 4, 4, 198, 18, 0, 2, 0];
    reach.extend_from_slice(&[24 + 24]);
    reach.extend_from_slice(&[0x0b, 0xbf, 0xa1, 10, 1, 1]);
    vec![(0x40, 1, vec![0]), (0x40, 2, vec![2, 1, 0, 0, 0, 200]), (0x90, 14, reach)]
}

#[test]
fn labels_carry_bottom_of_stack() {
    let l = label_field(48122);
    assert!(l.is_bottom());
    assert_eq!(label_value(&l), 48122);
    assert_eq!(label_field(48122).value(), &[0x0b, 0xbf, 0xa1]);
    assert_eq!(label_value(&label_field(1_048_575)), 1_048_575);
}

#[test]
fn the_fixture_update_is_valid() {
    let b = frame(2, &update_body(&[], &valid_attrs(), &[]));
    let BgpMessage::Update(u) = decode(&b, CTX).unwrap() else { panic!("not an UPDATE") };
    let c = content(&u);
    let r = LabeledRoute { prefix: pfx("10.1.1.0/24"), label: 48122, next_hop: "198.18.0.2".parse().unwrap() };
    assert_eq!(c.announced, vec![(Family::Ipv4LabeledUnicast, r)]);
}

#[test]
fn announcements_and_withdrawals_round_trip() {
    let nh: Ipv4Addr = "198.18.0.2".parse().unwrap();
    let path = PathCtx { local_as: 100, ibgp: false, asn4: true };
    let routes = [(pfx("10.1.1.0/24"), 48122), (pfx("10.2.0.0/16"), 48000)];
    let b = encode(&announce(Family::Ipv4LabeledUnicast, &routes, nh, path));
    // RFC 8277 section 2.2: length in bits counts the label; the label ends with BoS.
    assert!(b.windows(7).any(|w| w == [48, 0x0b, 0xbf, 0xa1, 10, 1, 1]), "{b:02x?}");
    let BgpMessage::Update(u) = decode(&b, CTX).unwrap() else { panic!() };
    let c = content(&u);
    assert_eq!(c.announced.len(), 2);
    assert_eq!(c.announced[0].1, LabeledRoute { prefix: routes[0].0, label: 48122, next_hop: IpAddr::V4(nh) });

    // 6PE: the next hop is the IPv4-mapped IPv6 address (RFC 4798 section 2).
    let v6 = [(pfx("2001:db8:100::/48"), 60100)];
    let b = encode(&announce(Family::Ipv6LabeledUnicast, &v6, nh, path));
    let mapped = nh.to_ipv6_mapped().octets();
    assert!(b.windows(17).any(|w| w[0] == 16 && w[1..] == mapped), "{b:02x?}");
    let BgpMessage::Update(u) = decode(&b, CTX).unwrap() else { panic!() };
    let c = content(&u);
    assert_eq!(
        c.announced,
        vec![(Family::Ipv6LabeledUnicast, LabeledRoute { prefix: v6[0].0, label: 60100, next_hop: IpAddr::V4(nh) })]
    );

    let b = encode(&withdraw(Family::Ipv4LabeledUnicast, &[routes[0].0]));
    let BgpMessage::Update(u) = decode(&b, CTX).unwrap() else { panic!() };
    assert_eq!(content(&u).withdrawn, vec![(Family::Ipv4LabeledUnicast, routes[0].0)]);
    // End-of-RIB: an empty MP_UNREACH_NLRI.
    let b = encode(&withdraw(Family::Ipv6LabeledUnicast, &[]));
    let BgpMessage::Update(u) = decode(&b, CTX).unwrap() else { panic!() };
    assert_eq!(u.end_of_rib(), Some(AddressType::Ipv6NlriMplsLabels));
}

#[test]
fn two_octet_peers_get_as_trans_and_as4_path() {
    let path = PathCtx { local_as: 4_200_000_000, ibgp: false, asn4: false };
    let m = announce(Family::Ipv4LabeledUnicast, &[(pfx("10.1.1.0/24"), 20)], "192.0.2.1".parse().unwrap(), path);
    let b = encode(&m);
    assert!(b.windows(4).any(|w| w == [2, 1, 0x5b, 0xa0]), "AS_TRANS in AS_PATH: {b:02x?}");
    assert!(b.windows(3).any(|w| w == [0xc0, 17, 6]), "AS4_PATH: {b:02x?}");
    assert!(decode(&b, DecodeCtx { asn4: false }).is_ok());
}

#[test]
fn opens_carry_the_capabilities() {
    let fams = [Family::Ipv4LabeledUnicast, Family::Ipv6LabeledUnicast];
    let b = encode(&open(4_200_000_000, 90, "192.0.2.1".parse().unwrap(), fams.into_iter()));
    let BgpMessage::Open(o) = decode(&b, CTX).unwrap() else { panic!() };
    assert_eq!(o.my_as(), AS_TRANS);
    let p = peer_open(&o);
    assert_eq!((p.asn, p.asn4, p.hold_s, p.route_refresh), (4_200_000_000, true, 90, true));
    assert_eq!(p.families, fams.to_vec());
}

#[test]
fn framer_splits_and_reports_header_errors() {
    let ka = encode(&BgpMessage::KeepAlive);
    let mut f = Framer::default();
    let mut two = ka.clone();
    two.extend_from_slice(&ka);
    f.push(&two[..25]);
    assert_eq!(f.next_frame().unwrap(), Some(ka.clone()));
    assert_eq!(f.next_frame().unwrap(), None);
    f.push(&two[25..]);
    assert_eq!(f.next_frame().unwrap(), Some(ka.clone()));
    let mut bad = ka.clone();
    bad[16..18].copy_from_slice(&5000u16.to_be_bytes());
    let mut f = Framer::default();
    f.push(&bad);
    assert_eq!(codes(&f.next_frame().unwrap_err()), (1, 2));
}

/// One thing broken in a valid message, and the NOTIFICATION (code, subcode) RFC 4271
/// section 6 names for it.
#[derive(Clone, Debug)]
enum Break {
    Marker(usize, u8),
    Length(u16),
    Type(u8),
    KeepaliveBody(usize),
    OpenVersion(u8),
    OpenHold(u16),
    OpenIdZero,
    OpenParamType(u8),
    OriginValue(u8),
    OriginOptional,
    OriginLength(usize),
    NextHopLength(usize),
    MissingOrigin,
    MissingAsPath,
    Duplicate,
    UnknownWellKnown(u8),
    AttrOverrun(u8),
    TotalOverrun(u16),
    PlainNlriTruncated(u8),
    MpReachTwice,
    MpReachNextHopLength(u8),
    AtomicAggregateLength(u8),
    AsPathSegmentEmpty,
    TwoLabels,
    UnknownOptional(u8),
}

/// What a broken message must get.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Want {
    /// A NOTIFICATION (code, subcode) and a session reset.
    Reset(u8, u8),
    /// RFC 7606 treat-as-withdraw: no reset, no route announced.
    Withdraw,
    /// RFC 7606 attribute discard: no reset, the route announced.
    Discard,
    /// Accepted as it is.
    Accept,
}

fn breaks() -> impl Strategy<Value = Break> {
    prop_oneof![
        (0usize..16, 0u8..0xff).prop_map(|(i, v)| Break::Marker(i, v)),
        prop_oneof![0u16..19, 4097u16..=u16::MAX].prop_map(Break::Length),
        prop_oneof![Just(0u8), 6u8..=255].prop_map(Break::Type),
        (1usize..8).prop_map(Break::KeepaliveBody),
        (0u8..=255).prop_filter("not 4", |v| *v != 4).prop_map(Break::OpenVersion),
        (1u16..=2).prop_map(Break::OpenHold),
        Just(Break::OpenIdZero),
        (0u8..=255).prop_filter("not capabilities", |v| *v != 2).prop_map(Break::OpenParamType),
        (3u8..=255).prop_map(Break::OriginValue),
        Just(Break::OriginOptional),
        prop_oneof![Just(0usize), 2usize..6].prop_map(Break::OriginLength),
        prop_oneof![0usize..4, 5usize..9].prop_map(Break::NextHopLength),
        Just(Break::MissingOrigin),
        Just(Break::MissingAsPath),
        Just(Break::Duplicate),
        (19u8..=255).prop_filter("known codes", |c| ![32, 35, 40].contains(c)).prop_map(Break::UnknownWellKnown),
        (1u8..=50).prop_map(Break::AttrOverrun),
        (1u16..=200).prop_map(Break::TotalOverrun),
        (9u8..=32).prop_map(Break::PlainNlriTruncated),
        Just(Break::MpReachTwice),
        (0u8..=40).prop_filter("valid lengths", |n| ![4, 16, 32].contains(n)).prop_map(Break::MpReachNextHopLength),
        (1u8..=8).prop_map(Break::AtomicAggregateLength),
        Just(Break::AsPathSegmentEmpty),
        Just(Break::TwoLabels),
        (19u8..=255).prop_filter("known codes", |c| ![32, 35, 40].contains(c)).prop_map(Break::UnknownOptional),
    ]
}

fn valid_open() -> Vec<u8> {
    encode(&open(100, 90, "192.0.2.1".parse().unwrap(), [Family::Ipv4LabeledUnicast].into_iter()))
}

/// The broken message and the (code, subcode) it must get.
fn apply_break(b: &Break) -> (Vec<u8>, Want) {
    let upd = |attrs: Vec<(u8, u8, Vec<u8>)>, nlri: &[u8]| frame(2, &update_body(&[], &attrs, nlri));
    let mut attrs = valid_attrs();
    match b {
        Break::Marker(i, v) => {
            let mut m = valid_open();
            m[*i] = *v;
            (m, Want::Reset(1, 1))
        }
        Break::Length(l) => {
            let mut m = valid_open();
            m[16..18].copy_from_slice(&l.to_be_bytes());
            (m, Want::Reset(1, 2))
        }
        Break::Type(t) => {
            let mut m = encode(&BgpMessage::KeepAlive);
            m[18] = *t;
            (m, Want::Reset(1, 3))
        }
        Break::KeepaliveBody(n) => (frame(4, &vec![0; *n]), Want::Reset(1, 2)),
        Break::OpenVersion(v) => {
            let mut m = valid_open();
            m[19] = *v;
            (m, Want::Reset(2, 1))
        }
        Break::OpenHold(h) => {
            let mut m = valid_open();
            m[22..24].copy_from_slice(&h.to_be_bytes());
            (m, Want::Reset(2, 6))
        }
        Break::OpenIdZero => {
            let mut m = valid_open();
            m[24..28].fill(0);
            (m, Want::Reset(2, 3))
        }
        Break::OpenParamType(t) => {
            let mut m = valid_open();
            m[29] = *t;
            (m, Want::Reset(2, 4))
        }
        Break::OriginValue(v) => {
            attrs[0].2 = vec![*v];
            (upd(attrs, &[]), Want::Withdraw)
        }
        Break::OriginOptional => {
            attrs[0].0 |= 0x80;
            (upd(attrs, &[]), Want::Withdraw)
        }
        Break::OriginLength(n) => {
            attrs[0].2 = vec![0; *n];
            (upd(attrs, &[]), Want::Withdraw)
        }
        Break::NextHopLength(n) => {
            attrs.push((0x40, 3, vec![1; *n]));
            (upd(attrs, &[]), Want::Withdraw)
        }
        Break::MissingOrigin => {
            attrs.remove(0);
            (upd(attrs, &[]), Want::Withdraw)
        }
        Break::MissingAsPath => {
            attrs.remove(1);
            (upd(attrs, &[]), Want::Withdraw)
        }
        Break::Duplicate => {
            attrs.push(attrs[0].clone());
            (upd(attrs, &[]), Want::Discard)
        }
        Break::UnknownWellKnown(c) => {
            attrs.push((0x40, *c, vec![1, 2]));
            (upd(attrs, &[]), Want::Reset(3, 2))
        }
        Break::AttrOverrun(extra) => {
            // The last attribute claims more octets than the attribute list holds.
            let mut m = upd(attrs, &[]);
            let at = m.len() - valid_attrs()[2].2.len() - 2;
            let len = u16::from_be_bytes([m[at], m[at + 1]]) + u16::from(*extra);
            m[at..at + 2].copy_from_slice(&len.to_be_bytes());
            (m, Want::Withdraw)
        }
        Break::TotalOverrun(extra) => {
            let mut m = upd(attrs, &[]);
            let at = HEADER_LEN + 2;
            let len = u16::from_be_bytes([m[at], m[at + 1]]) + extra;
            m[at..at + 2].copy_from_slice(&len.to_be_bytes());
            (m, Want::Reset(3, 1))
        }
        Break::PlainNlriTruncated(bits) => {
            // RFC 4271 section 6.3 / RFC 7606 section 5.3: 3/10, a reset.
            attrs.push((0x40, 3, vec![198, 18, 0, 2]));
            (upd(attrs, &[*bits, 10]), Want::Reset(3, 10))
        }
        Break::MpReachTwice => {
            attrs.push(attrs[2].clone());
            (upd(attrs, &[]), Want::Reset(3, 9))
        }
        Break::MpReachNextHopLength(n) => {
            let mut reach = vec![0, 1, 4, *n];
            reach.extend(std::iter::repeat_n(7, usize::from(*n)));
            reach.extend_from_slice(&[0, 48, 0x0b, 0xbf, 0xa1, 10, 1, 1]);
            attrs[2].2 = reach;
            (upd(attrs, &[]), Want::Reset(3, 9))
        }
        Break::AtomicAggregateLength(n) => {
            attrs.push((0x40, 6, vec![0; usize::from(*n)]));
            (upd(attrs, &[]), Want::Discard)
        }
        Break::AsPathSegmentEmpty => {
            attrs[1].2 = vec![2, 0];
            (upd(attrs, &[]), Want::Withdraw)
        }
        Break::TwoLabels => {
            // RFC 8277 section 2.3: more labels than negotiated: that route withdrawn.
            attrs[2].2 = vec![0, 1, 4, 4, 198, 18, 0, 2, 0, 72, 0x0b, 0xbf, 0xa0, 0x0b, 0xbf, 0xa1, 10, 1, 1];
            (upd(attrs, &[]), Want::Withdraw)
        }
        Break::UnknownOptional(c) => {
            attrs.push((0xc0, *c, vec![1, 2, 3]));
            (upd(attrs, &[]), Want::Accept)
        }
    }
}

static CHECKED: AtomicUsize = AtomicUsize::new(0);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Every broken message gets the NOTIFICATION RFC 4271 section 6 names, from the
    /// framer (header errors) or the decoder.
    #[test]
    fn malformed_messages_get_the_rfc_notification(b in breaks()) {
        let (m, want) = apply_break(&b);
        let mut f = Framer::default();
        f.push(&m);
        let frame = match f.next_frame() {
            Err(n) => {
                let (c, s) = codes(&n);
                prop_assert_eq!(Want::Reset(c, s), want, "{:?}", b);
                CHECKED.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            Ok(Some(frame)) => frame,
            // A length above the bytes present: the framer waits; decode() sees it.
            Ok(None) => m.clone(),
        };
        let got = if frame.get(18) == Some(&2) && decode_header(&frame).is_ok() {
            match update::parse(&frame[HEADER_LEN..], UpdateCtx { asn4: true, ibgp: false }) {
                Err(r) => {
                    let (c, s) = codes(&r.notification);
                    // RFC 4271 section 6.3: 3/9 carries the attribute.
                    if (c, s) == (3, 9) {
                        let data = &encode(&BgpMessage::Notification(r.notification.clone()))[HEADER_LEN + 2..];
                        prop_assert!(data.len() >= 3 && frame.windows(data.len()).any(|w| w == data), "{:?}", b);
                    }
                    Want::Reset(c, s)
                }
                Ok(u) if u.treat_as_withdraw.is_some() => {
                    // Withdrawn, unless the attribute that overran was MP_REACH_NLRI
                    // itself (its routes cannot be located).
                    prop_assert!(u.announced.is_empty(), "{:?}: {:?}", b, u);
                    prop_assert!(!u.withdrawn.is_empty() || matches!(b, Break::AttrOverrun(_)), "{:?}", b);
                    Want::Withdraw
                }
                Ok(u) if !u.discarded.is_empty() => {
                    prop_assert_eq!(u.announced.len(), 1);
                    Want::Discard
                }
                Ok(u) => {
                    prop_assert_eq!(u.announced.len(), 1);
                    Want::Accept
                }
            }
        } else {
            match decode(&frame, CTX) {
                Ok(m) => return Err(TestCaseError::fail(format!("{b:?}: decoded {m:?}"))),
                Err(n) => {
                    let (c, s) = codes(&n);
                    Want::Reset(c, s)
                }
            }
        };
        prop_assert_eq!(got, want, "{:?}", b);
        CHECKED.fetch_add(1, Ordering::Relaxed);
    }

    /// Arbitrary bytes, and valid messages with random bytes changed, never panic the
    /// framer or the decoder; what is rejected gets a defined error code.
    #[test]
    fn malformed_messages_never_panic(
        raw in proptest::collection::vec(any::<u8>(), 0..600),
        flips in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..6),
        which in 0usize..4,
    ) {
        let mut m = match which {
            0 => valid_open(),
            1 => frame(2, &update_body(&[], &valid_attrs(), &[])),
            2 => encode(&announce(
                Family::Ipv6LabeledUnicast,
                &[(pfx("2001:db8::/32"), 16)],
                "192.0.2.1".parse().unwrap(),
                PathCtx { local_as: 1, ibgp: true, asn4: true },
            )),
            _ => raw.clone(),
        };
        if which < 3 {
            for (at, v) in &flips {
                let i = usize::from(*at) % m.len();
                m[i] = *v;
            }
        }
        let mut f = Framer::default();
        f.push(&m);
        if let Ok(Some(frame)) = f.next_frame() {
            if let Err(n) = decode(&frame, CTX) {
                let (code, _) = codes(&n);
                prop_assert!((1..=7).contains(&code), "code {code}");
            }
        }
        let _ = decode(&m, CTX);
        let _ = decode(&m, DecodeCtx { asn4: false });
    }
}

#[test]
fn zz_report_cases_checked() {
    // Printed for the log: how many broken messages reached the assertion (the
    // proptest above may run before or after this test).
    eprintln!("malformed cases checked so far: {}", CHECKED.load(Ordering::Relaxed));
}

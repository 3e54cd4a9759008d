//! BGP messages on the wire: framing a TCP byte stream into messages, decoding them
//! (with the NOTIFICATION each malformation gets), and building the messages the
//! speaker sends. Encoding and decoding are netgauze-bgp-pkt's; this module adds the
//! RFC 4271 section 6 checks whose error codes netgauze does not give, and never
//! panics on any input (`tests::malformed_messages_*`, a proptest).

use crate::config::{Family, Prefix};
use ipnet::{Ipv4Net, Ipv6Net};
use netgauze_bgp_pkt::capabilities::{BgpCapability, FourOctetAsCapability, MultiProtocolExtensionsCapability};
use netgauze_bgp_pkt::community::{
    ExtendedCommunity, TransitiveFourOctetExtendedCommunity, TransitiveIpv4ExtendedCommunity,
    TransitiveTwoOctetExtendedCommunity,
};
use netgauze_bgp_pkt::nlri::{
    Ipv4MplsVpnUnicastAddress, Ipv4NlriMplsLabelsAddress, Ipv4Unicast, Ipv6MplsVpnUnicastAddress,
    Ipv6NlriMplsLabelsAddress, Ipv6Unicast, LabeledIpv4NextHop, LabeledIpv6NextHop, LabeledNextHop, MplsLabel,
    RouteDistinguisher,
};
use netgauze_bgp_pkt::notification::{
    BgpNotificationMessage, CeaseError, FiniteStateMachineError, HoldTimerExpiredError, MessageHeaderError,
    OpenMessageError, UpdateMessageError,
};
use netgauze_bgp_pkt::open::{BgpOpenMessage, BgpOpenMessageParameter};
use netgauze_bgp_pkt::path_attribute::{
    As2PathSegment, As4Path, As4PathSegment, AsPath, AsPathSegmentType, ExtendedCommunities, LocalPreference, MpReach,
    MpUnreach, Origin, PathAttribute, PathAttributeValue,
};
use netgauze_bgp_pkt::update::BgpUpdateMessage;
use netgauze_bgp_pkt::wire::deserializer::BgpParsingContext;
use netgauze_bgp_pkt::BgpMessage;
use netgauze_iana::address_family::AddressType;
use netgauze_parse_utils::reader::SliceReader;
use netgauze_parse_utils::traits::ParseFromWithOneInput;
use netgauze_parse_utils::WritablePdu;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// RFC 4271 section 4.1: marker (16) + length (2) + type (1).
pub const HEADER_LEN: usize = 19;
/// RFC 4271 section 4.1: the largest message (no RFC 8654 extended messages here).
pub const MAX_LEN: usize = 4096;
/// RFC 6793: the AS placed in 2-octet fields when the real one does not fit.
pub const AS_TRANS: u16 = 23456;
/// RFC 8277 section 2.4: the label field of a withdrawn labeled route.
const WITHDRAW_LABEL: [u8; 3] = [0x80, 0x00, 0x00];
/// Labeled routes per UPDATE: an IPv6 one is at most 1 + 3 + 16 = 20 octets, so 150 of
/// them plus the attributes stay well under [`MAX_LEN`].
pub const ROUTES_PER_UPDATE: usize = 150;

/// How a family appears on the wire: its AFI/SAFI (RFC 4760 section 3), the address
/// length of its prefixes, netgauze's name for it. One row per family: a new family
/// (e.g. VPNv4, SAFI 128) is one more row plus its NLRI format.
pub struct FamilyWire {
    pub family: Family,
    pub afi: u16,
    pub safi: u8,
    /// Octets of a full address of the family.
    pub addr_len: u8,
    pub address_type: AddressType,
}

pub const FAMILIES: [FamilyWire; 4] = [
    FamilyWire {
        family: Family::Ipv4LabeledUnicast,
        afi: 1,
        safi: 4,
        addr_len: 4,
        address_type: AddressType::Ipv4NlriMplsLabels,
    },
    FamilyWire {
        family: Family::Ipv6LabeledUnicast,
        afi: 2,
        safi: 4,
        addr_len: 16,
        address_type: AddressType::Ipv6NlriMplsLabels,
    },
    FamilyWire { family: Family::Vpnv4, afi: 1, safi: 128, addr_len: 4, address_type: AddressType::Ipv4MplsLabeledVpn },
    FamilyWire {
        family: Family::Vpnv6,
        afi: 2,
        safi: 128,
        addr_len: 16,
        address_type: AddressType::Ipv6MplsLabeledVpn,
    },
];

/// What a VPN instance's routes carry (RFC 4364 section 4.3): its route distinguisher
/// and its export route targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VpnAttrs {
    pub rd: crate::config::Rd,
    pub targets: Vec<crate::config::RouteTarget>,
}

/// netgauze's form of a route distinguisher.
fn rd_of(rd: crate::config::Rd) -> RouteDistinguisher {
    let b = rd.0;
    match b[1] {
        1 => RouteDistinguisher::Ipv4Administrator {
            ip: Ipv4Addr::new(b[2], b[3], b[4], b[5]),
            number: u16::from_be_bytes([b[6], b[7]]),
        },
        2 => RouteDistinguisher::As4Administrator {
            asn4: u32::from_be_bytes([b[2], b[3], b[4], b[5]]),
            number: u16::from_be_bytes([b[6], b[7]]),
        },
        _ => RouteDistinguisher::As2Administrator {
            asn2: u16::from_be_bytes([b[2], b[3]]),
            number: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        },
    }
}

/// netgauze's form of a route target (RFC 4360 / RFC 5668, transitive).
fn rt_of(t: crate::config::RouteTarget) -> ExtendedCommunity {
    let b = t.0;
    match b[0] {
        1 => ExtendedCommunity::TransitiveIpv4(TransitiveIpv4ExtendedCommunity::RouteTarget {
            global_admin: Ipv4Addr::new(b[2], b[3], b[4], b[5]),
            local_admin: u16::from_be_bytes([b[6], b[7]]),
        }),
        2 => ExtendedCommunity::TransitiveFourOctet(TransitiveFourOctetExtendedCommunity::RouteTarget {
            global_admin: u32::from_be_bytes([b[2], b[3], b[4], b[5]]),
            local_admin: u16::from_be_bytes([b[6], b[7]]),
        }),
        _ => ExtendedCommunity::TransitiveTwoOctet(TransitiveTwoOctetExtendedCommunity::RouteTarget {
            global_admin: u16::from_be_bytes([b[2], b[3]]),
            local_admin: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        }),
    }
}

/// The route distinguisher of the next hop of VPN routes: zero (RFC 4364 section 4.3.2).
const RD_ZERO: RouteDistinguisher = RouteDistinguisher::As2Administrator { asn2: 0, number: 0 };

/// The wire facts of a family.
pub fn wire(f: Family) -> &'static FamilyWire {
    FAMILIES.iter().find(|w| w.family == f).expect("every Family has a FAMILIES row")
}

/// The family of an AFI/SAFI pair, if popgo speaks it.
pub fn family_by_afi_safi(afi: u16, safi: u8) -> Option<&'static FamilyWire> {
    FAMILIES.iter().find(|w| w.afi == afi && w.safi == safi)
}

/// The netgauze address type of a family.
pub fn address_type(f: Family) -> AddressType {
    wire(f).address_type
}

/// The family of a netgauze address type, if it is one popgo speaks.
pub fn family_of(t: AddressType) -> Option<Family> {
    FAMILIES.iter().find(|w| w.address_type == t).map(|w| w.family)
}

/// A ROUTE-REFRESH message's AFI and SAFI (RFC 2918 section 3), from a frame whose
/// type is 5 and length 23 (checked by [`decode_header`]).
pub fn route_refresh_afi_safi(frame: &[u8]) -> (u16, u8) {
    (u16::from_be_bytes([frame[19], frame[20]]), frame[22])
}

/// RFC 8277 section 2.1 / RFC 3032: the 20-bit label, 3 EXP/TC bits (zero), and the
/// bottom-of-stack bit, set: popgo advertises one label.
pub fn label_field(label: u32) -> MplsLabel {
    MplsLabel::new([(label >> 12) as u8, (label >> 4) as u8, ((label << 4) as u8) | 1])
}

/// The label value of a label field.
pub fn label_value(l: &MplsLabel) -> u32 {
    let v = l.value();
    (u32::from(v[0]) << 12) | (u32::from(v[1]) << 4) | (u32::from(v[2]) >> 4)
}

/// (code, subcode) of a NOTIFICATION (RFC 4271 section 4.5).
pub fn codes(n: &BgpNotificationMessage) -> (u8, u8) {
    let b = encode(&BgpMessage::Notification(n.clone()));
    (b.get(HEADER_LEN).copied().unwrap_or(0), b.get(HEADER_LEN + 1).copied().unwrap_or(0))
}

/// The RFC 4271 name of a NOTIFICATION code.
pub fn code_name(code: u8) -> &'static str {
    match code {
        1 => "Message Header Error",
        2 => "OPEN Message Error",
        3 => "UPDATE Message Error",
        4 => "Hold Timer Expired",
        5 => "Finite State Machine Error",
        6 => "Cease",
        7 => "ROUTE-REFRESH Message Error",
        _ => "unknown",
    }
}

/// Encodes a message. The messages built here always fit; netgauze's writer only
/// fails on messages over the size limit, which would be a bug in the builders.
pub fn encode(m: &BgpMessage) -> Vec<u8> {
    let mut out = Vec::with_capacity(m.len());
    m.write(&mut out).expect("a BGP message built within MAX_LEN");
    out
}

/// Splits a TCP byte stream into messages.
#[derive(Default)]
pub struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete message, `None` until one is complete, or the header error
    /// (RFC 4271 section 6.1) that ends the connection.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, BgpNotificationMessage> {
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        check_header(&self.buf)?;
        let len = usize::from(u16::from_be_bytes([self.buf[16], self.buf[17]]));
        if self.buf.len() < len {
            return Ok(None);
        }
        Ok(Some(self.buf.drain(..len).collect()))
    }
}

/// Marker and length (RFC 4271 section 6.1): Connection Not Synchronized, Bad Message
/// Length (with the erroneous length as data).
fn check_header(b: &[u8]) -> Result<(), BgpNotificationMessage> {
    if b[..16].iter().any(|x| *x != 0xff) {
        return Err(BgpNotificationMessage::MessageHeaderError(MessageHeaderError::ConnectionNotSynchronized {
            value: Box::new([]),
        }));
    }
    let len = usize::from(u16::from_be_bytes([b[16], b[17]]));
    if !(HEADER_LEN..=MAX_LEN).contains(&len) {
        return Err(bad_length(len));
    }
    Ok(())
}

fn bad_length(len: usize) -> BgpNotificationMessage {
    BgpNotificationMessage::MessageHeaderError(MessageHeaderError::BadMessageLength {
        value: (len as u16).to_be_bytes().into(),
    })
}

fn update_error(sub: u8, data: Vec<u8>) -> BgpNotificationMessage {
    let value = data.into_boxed_slice();
    BgpNotificationMessage::UpdateMessageError(match sub {
        1 => UpdateMessageError::MalformedAttributeList { value },
        2 => UpdateMessageError::UnrecognizedWellKnownAttribute { value },
        3 => UpdateMessageError::MissingWellKnownAttribute { value },
        4 => UpdateMessageError::AttributeFlagsError { value },
        5 => UpdateMessageError::AttributeLengthError { value },
        6 => UpdateMessageError::InvalidOriginAttribute { value },
        8 => UpdateMessageError::InvalidNextHopAttribute { value },
        10 => UpdateMessageError::InvalidNetworkField { value },
        11 => UpdateMessageError::MalformedAsPath { value },
        _ => UpdateMessageError::Unspecific { value },
    })
}

/// What decoding needs to know of the session.
#[derive(Clone, Copy, Debug)]
pub struct DecodeCtx {
    /// Both sides sent the 4-octet AS capability (RFC 6793): AS_PATH has 4-octet ASes.
    pub asn4: bool,
}

/// The type of a framed message after the RFC 4271 section 6.1 checks of its header:
/// the type is known and the length fits it.
pub fn decode_header(frame: &[u8]) -> Result<u8, BgpNotificationMessage> {
    if frame.len() < HEADER_LEN {
        return Err(bad_length(frame.len()));
    }
    check_header(frame)?;
    let len = frame.len();
    let min = match frame[18] {
        1 => 29,
        2 => 23,
        3 => 21,
        4 => 19,
        5 => 23,
        t => {
            return Err(BgpNotificationMessage::MessageHeaderError(MessageHeaderError::BadMessageType {
                value: Box::new([t]),
            }))
        }
    };
    if len < min || (frame[18] == 4 && len != 19) || (frame[18] == 5 && len != 23) {
        return Err(bad_length(len));
    }
    Ok(frame[18])
}

/// Decodes one framed message (as [`Framer::next_frame`] returns it). An error is the
/// NOTIFICATION to send before closing.
pub fn decode(frame: &[u8], ctx: DecodeCtx) -> Result<BgpMessage, BgpNotificationMessage> {
    decode_header(frame)?;
    match frame[18] {
        1 => check_open(&frame[HEADER_LEN..])?,
        2 => {
            let ctx = update::UpdateCtx { asn4: ctx.asn4, ibgp: false };
            update::parse(&frame[HEADER_LEN..], ctx).map_err(|r| r.notification)?;
        }
        _ => {}
    }
    let mut pctx = BgpParsingContext::new(ctx.asn4, HashMap::new(), HashMap::new(), true, true, true, true);
    let mut cur = SliceReader::new(frame);
    BgpMessage::parse(&mut cur, &mut pctx).map_err(BgpNotificationMessage::from)
}

/// RFC 4271 section 6.2 checks that netgauze leaves to the caller or words otherwise.
fn check_open(b: &[u8]) -> Result<(), BgpNotificationMessage> {
    if b[0] != 4 {
        // Data: the largest version supported, as 2 octets.
        return Err(BgpNotificationMessage::OpenMessageError(OpenMessageError::UnsupportedVersionNumber {
            value: Box::new([0, 4]),
        }));
    }
    let hold = u16::from_be_bytes([b[3], b[4]]);
    if hold == 1 || hold == 2 {
        return Err(BgpNotificationMessage::OpenMessageError(OpenMessageError::UnacceptableHoldTime {
            value: Box::new([]),
        }));
    }
    if b[5..9] == [0, 0, 0, 0] {
        return Err(BgpNotificationMessage::OpenMessageError(OpenMessageError::BadBgpIdentifier {
            value: Box::new([]),
        }));
    }
    // Optional parameters: only Capabilities (2, RFC 5492) is defined for use.
    let plen = usize::from(b[9]);
    let params = &b[10..];
    if plen != params.len() {
        return Err(BgpNotificationMessage::OpenMessageError(OpenMessageError::Unspecific { value: Box::new([]) }));
    }
    let mut i = 0;
    while i < params.len() {
        if i + 2 > params.len() || i + 2 + usize::from(params[i + 1]) > params.len() {
            return Err(BgpNotificationMessage::OpenMessageError(OpenMessageError::Unspecific { value: Box::new([]) }));
        }
        if params[i] != 2 {
            return Err(BgpNotificationMessage::OpenMessageError(OpenMessageError::UnsupportedOptionalParameter {
                value: Box::new([]),
            }));
        }
        i += 2 + usize::from(params[i + 1]);
    }
    Ok(())
}

/// The OPEN popgo sends: version 4, its AS (AS_TRANS if it needs 4 octets), the hold
/// time, its identifier, and the capabilities: multiprotocol for each family (RFC
/// 4760), 4-octet AS (RFC 6793), route refresh (RFC 2918).
pub fn open(asn: u32, hold_s: u16, id: Ipv4Addr, families: impl Iterator<Item = Family>) -> BgpMessage {
    let my_as = u16::try_from(asn).unwrap_or(AS_TRANS);
    let mut caps: Vec<BgpCapability> = families
        .map(|f| BgpCapability::MultiProtocolExtensions(MultiProtocolExtensionsCapability::new(address_type(f))))
        .collect();
    caps.push(BgpCapability::FourOctetAs(FourOctetAsCapability::new(asn)));
    caps.push(BgpCapability::RouteRefresh);
    BgpMessage::Open(BgpOpenMessage::new(my_as, hold_s, id, vec![BgpOpenMessageParameter::new_capabilities(caps)]))
}

/// What a peer's OPEN says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerOpen {
    /// The 4-octet AS when the capability is present, the 2-octet field otherwise.
    pub asn: u32,
    pub asn4: bool,
    pub hold_s: u16,
    pub id: Ipv4Addr,
    pub families: Vec<Family>,
    pub route_refresh: bool,
}

pub fn peer_open(o: &BgpOpenMessage) -> PeerOpen {
    let caps = o.capabilities();
    let mut p = PeerOpen {
        asn: u32::from(o.my_as()),
        asn4: false,
        hold_s: o.hold_time(),
        id: o.bgp_id(),
        families: Vec::new(),
        route_refresh: false,
    };
    for c in caps {
        match c {
            BgpCapability::FourOctetAs(a) => {
                p.asn4 = true;
                p.asn = a.asn4();
            }
            BgpCapability::MultiProtocolExtensions(m) => p.families.extend(family_of(m.address_type())),
            BgpCapability::RouteRefresh | BgpCapability::EnhancedRouteRefresh => p.route_refresh = true,
            _ => {}
        }
    }
    p
}

/// One route as sent or received: the prefix, its label, its next hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LabeledRoute {
    pub prefix: Prefix,
    pub label: u32,
    pub next_hop: IpAddr,
}

/// How an UPDATE's AS_PATH is written for this session.
#[derive(Clone, Copy, Debug)]
pub struct PathCtx {
    pub local_as: u32,
    /// Internal peer: empty AS_PATH and LOCAL_PREF (RFC 4271 section 5.1.2, 5.1.5).
    pub ibgp: bool,
    pub asn4: bool,
}

fn attr(optional: bool, transitive: bool, v: PathAttributeValue) -> PathAttribute {
    PathAttribute::from(optional, transitive, false, false, v).expect("flags match the attribute type")
}

fn attr_ext(v: PathAttributeValue) -> PathAttribute {
    PathAttribute::from(true, false, false, true, v).expect("flags match the attribute type")
}

fn v4net(p: &Prefix) -> Option<Ipv4Net> {
    match p.addr {
        IpAddr::V4(a) => Ipv4Net::new(a, p.len).ok(),
        IpAddr::V6(_) => None,
    }
}

fn v6net(p: &Prefix) -> Option<Ipv6Net> {
    match p.addr {
        IpAddr::V6(a) => Ipv6Net::new(a, p.len).ok(),
        IpAddr::V4(_) => None,
    }
}

/// An UPDATE announcing `routes` (all of family `f`, at most [`ROUTES_PER_UPDATE`])
/// with next hop `nh`: for IPv4 labeled unicast the address itself (RFC 8277), for
/// 6PE its IPv4-mapped IPv6 form (RFC 4798 section 2).
pub fn announce(f: Family, routes: &[(Prefix, u32)], nh: Ipv4Addr, path: PathCtx) -> BgpMessage {
    announce_in(f, routes, nh, path, None)
}

/// [`announce`] for any family: VPN routes (all of one instance) take `vpn`'s route
/// distinguisher in their NLRI and its route targets as extended communities; their
/// next hop is RD 0 with the address (VPNv4, RFC 4364 section 4.3.2) or with its
/// IPv4-mapped IPv6 form (VPNv6 over an IPv4 session, RFC 4659 section 3.2.1.2).
pub fn announce_in(
    f: Family,
    routes: &[(Prefix, u32)],
    nh: Ipv4Addr,
    path: PathCtx,
    vpn: Option<&VpnAttrs>,
) -> BgpMessage {
    let mut attrs = vec![attr(false, true, PathAttributeValue::Origin(Origin::IGP))];
    let seq = |asn: u32| if path.ibgp { vec![] } else { vec![asn] };
    if path.asn4 {
        let segs: Vec<As4PathSegment> = if path.ibgp {
            vec![]
        } else {
            vec![As4PathSegment::new(AsPathSegmentType::AsSequence, seq(path.local_as))]
        };
        attrs.push(attr(false, true, PathAttributeValue::AsPath(AsPath::As4PathSegments(segs.into()))));
    } else {
        let two = u16::try_from(path.local_as).unwrap_or(AS_TRANS);
        let segs: Vec<As2PathSegment> =
            if path.ibgp { vec![] } else { vec![As2PathSegment::new(AsPathSegmentType::AsSequence, vec![two])] };
        attrs.push(attr(false, true, PathAttributeValue::AsPath(AsPath::As2PathSegments(segs.into()))));
    }
    if path.ibgp {
        attrs.push(attr(false, true, PathAttributeValue::LocalPreference(LocalPreference::new(100))));
    }
    let reach = match f {
        Family::Ipv4LabeledUnicast => MpReach::Ipv4NlriMplsLabels {
            next_hop: IpAddr::V4(nh),
            next_hop_local: None,
            nlri: routes
                .iter()
                .filter_map(|(p, l)| Ipv4NlriMplsLabelsAddress::new_no_path_id(vec![label_field(*l)], v4net(p)?).ok())
                .collect(),
        },
        Family::Ipv6LabeledUnicast => MpReach::Ipv6NlriMplsLabels {
            next_hop: IpAddr::V6(nh.to_ipv6_mapped()),
            next_hop_local: None,
            nlri: routes
                .iter()
                .filter_map(|(p, l)| Ipv6NlriMplsLabelsAddress::new_no_path_id(vec![label_field(*l)], v6net(p)?).ok())
                .collect(),
        },
        Family::Vpnv4 => MpReach::Ipv4MplsVpnUnicast {
            next_hop: LabeledNextHop::Ipv4(LabeledIpv4NextHop::new(RD_ZERO, nh)),
            nlri: match vpn {
                Some(v) => routes
                    .iter()
                    .filter_map(|(p, l)| {
                        let net = Ipv4Unicast::from_net(v4net(p)?).ok()?;
                        Some(Ipv4MplsVpnUnicastAddress::new_no_path_id(rd_of(v.rd), vec![label_field(*l)], net))
                    })
                    .collect(),
                None => Box::new([]),
            },
        },
        Family::Vpnv6 => MpReach::Ipv6MplsVpnUnicast {
            next_hop: LabeledNextHop::Ipv6(LabeledIpv6NextHop::new(RD_ZERO, nh.to_ipv6_mapped(), None)),
            nlri: match vpn {
                Some(v) => routes
                    .iter()
                    .filter_map(|(p, l)| {
                        let net = Ipv6Unicast::from_net(v6net(p)?).ok()?;
                        Some(Ipv6MplsVpnUnicastAddress::new_no_path_id(rd_of(v.rd), vec![label_field(*l)], net))
                    })
                    .collect(),
                None => Box::new([]),
            },
        },
    };
    attrs.push(attr_ext(PathAttributeValue::MpReach(reach)));
    if let Some(v) = vpn.filter(|v| f.is_vpn() && !v.targets.is_empty()) {
        let rts: Vec<ExtendedCommunity> = v.targets.iter().map(|t| rt_of(*t)).collect();
        attrs.push(attr(true, true, PathAttributeValue::ExtendedCommunities(ExtendedCommunities::new(rts))));
    }
    // RFC 6793 section 4.2.2: an old speaker gets AS_TRANS in AS_PATH and the real
    // path in AS4_PATH (only needed when the local AS does not fit in 2 octets).
    if !path.asn4 && !path.ibgp && path.local_as > u32::from(u16::MAX) {
        let segs = vec![As4PathSegment::new(AsPathSegmentType::AsSequence, vec![path.local_as])];
        attrs.push(
            PathAttribute::from(true, true, false, false, PathAttributeValue::As4Path(As4Path::new(segs)))
                .expect("flags match the attribute type"),
        );
    }
    BgpMessage::Update(BgpUpdateMessage::new(vec![], attrs, vec![]))
}

/// An UPDATE withdrawing `prefixes` of family `f` (MP_UNREACH_NLRI, RFC 4760 section
/// 4, with the label field RFC 8277 section 2.4 gives withdrawals). Empty: the
/// End-of-RIB marker of the family (RFC 4724 section 2).
pub fn withdraw(f: Family, prefixes: &[Prefix]) -> BgpMessage {
    withdraw_in(f, prefixes, None)
}

/// [`withdraw`] for any family: VPN routes (all of one instance) with `rd`.
pub fn withdraw_in(f: Family, prefixes: &[Prefix], rd: Option<crate::config::Rd>) -> BgpMessage {
    let lab = || vec![MplsLabel::new(WITHDRAW_LABEL)];
    let rd = rd.map(rd_of);
    let unreach = match f {
        Family::Ipv4LabeledUnicast => MpUnreach::Ipv4NlriMplsLabels {
            nlri: prefixes
                .iter()
                .filter_map(|p| Ipv4NlriMplsLabelsAddress::new_no_path_id(lab(), v4net(p)?).ok())
                .collect(),
        },
        Family::Ipv6LabeledUnicast => MpUnreach::Ipv6NlriMplsLabels {
            nlri: prefixes
                .iter()
                .filter_map(|p| Ipv6NlriMplsLabelsAddress::new_no_path_id(lab(), v6net(p)?).ok())
                .collect(),
        },
        Family::Vpnv4 => MpUnreach::Ipv4MplsVpnUnicast {
            nlri: prefixes
                .iter()
                .filter_map(|p| {
                    let net = Ipv4Unicast::from_net(v4net(p)?).ok()?;
                    Some(Ipv4MplsVpnUnicastAddress::new_no_path_id(rd?, lab(), net))
                })
                .collect(),
        },
        Family::Vpnv6 => MpUnreach::Ipv6MplsVpnUnicast {
            nlri: prefixes
                .iter()
                .filter_map(|p| {
                    let net = Ipv6Unicast::from_net(v6net(p)?).ok()?;
                    Some(Ipv6MplsVpnUnicastAddress::new_no_path_id(rd?, lab(), net))
                })
                .collect(),
        },
    };
    BgpMessage::Update(BgpUpdateMessage::new(vec![], vec![attr_ext(PathAttributeValue::MpUnreach(unreach))], vec![]))
}

fn mapped_v4(a: Ipv6Addr) -> IpAddr {
    match a.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(a),
    }
}

/// The routes of an UPDATE.
pub fn content(u: &BgpUpdateMessage) -> UpdateContent {
    let mut c = UpdateContent { other: u.withdraw_routes().len() + u.nlri().len(), ..Default::default() };
    let pfx = |a: IpAddr, l: u8| Prefix::new(a, l).ok();
    for a in u.path_attributes() {
        match a.value() {
            PathAttributeValue::MpReach(MpReach::Ipv4NlriMplsLabels { next_hop, nlri, .. }) => {
                for n in nlri.iter() {
                    let label = n.labels().first().map_or(0, label_value);
                    if let Some(prefix) = pfx(IpAddr::V4(n.prefix().network()), n.prefix().prefix_len()) {
                        let r = LabeledRoute { prefix, label, next_hop: *next_hop };
                        c.announced.push((Family::Ipv4LabeledUnicast, r));
                    }
                }
            }
            PathAttributeValue::MpReach(MpReach::Ipv6NlriMplsLabels { next_hop, nlri, .. }) => {
                let next_hop = match next_hop {
                    IpAddr::V6(a) => mapped_v4(*a),
                    v4 => *v4,
                };
                for n in nlri.iter() {
                    let label = n.labels().first().map_or(0, label_value);
                    if let Some(prefix) = pfx(IpAddr::V6(n.prefix().network()), n.prefix().prefix_len()) {
                        let r = LabeledRoute { prefix, label, next_hop };
                        c.announced.push((Family::Ipv6LabeledUnicast, r));
                    }
                }
            }
            PathAttributeValue::MpUnreach(MpUnreach::Ipv4NlriMplsLabels { nlri }) => {
                for n in nlri.iter() {
                    if let Some(p) = pfx(IpAddr::V4(n.prefix().network()), n.prefix().prefix_len()) {
                        c.withdrawn.push((Family::Ipv4LabeledUnicast, p));
                    }
                }
            }
            PathAttributeValue::MpUnreach(MpUnreach::Ipv6NlriMplsLabels { nlri }) => {
                for n in nlri.iter() {
                    if let Some(p) = pfx(IpAddr::V6(n.prefix().network()), n.prefix().prefix_len()) {
                        c.withdrawn.push((Family::Ipv6LabeledUnicast, p));
                    }
                }
            }
            PathAttributeValue::MpReach(_) | PathAttributeValue::MpUnreach(_) => c.other += 1,
            _ => {}
        }
    }
    c
}

/// NOTIFICATION builders for the errors the session itself detects.
pub mod notify {
    use super::*;

    /// OPEN: the AS is not the configured one (RFC 4271 section 6.2).
    pub fn bad_peer_as() -> BgpNotificationMessage {
        BgpNotificationMessage::OpenMessageError(OpenMessageError::BadPeerAs { value: Box::new([]) })
    }

    /// OPEN: the identifier equals ours or is not valid.
    pub fn bad_bgp_id() -> BgpNotificationMessage {
        BgpNotificationMessage::OpenMessageError(OpenMessageError::BadBgpIdentifier { value: Box::new([]) })
    }

    /// OPEN: no family in common (RFC 5492 section 3); data: the capabilities wanted.
    pub fn unsupported_capability(wanted: &[Family]) -> BgpNotificationMessage {
        let mut value = Vec::new();
        for f in wanted {
            let (afi, safi) = (wire(*f).afi, wire(*f).safi);
            value.extend_from_slice(&[1, 4]);
            value.extend_from_slice(&afi.to_be_bytes());
            value.extend_from_slice(&[0, safi]);
        }
        BgpNotificationMessage::OpenMessageError(OpenMessageError::UnsupportedCapability { value: value.into() })
    }

    pub fn hold_timer_expired() -> BgpNotificationMessage {
        BgpNotificationMessage::HoldTimerExpiredError(HoldTimerExpiredError::Unspecific {
            sub_code: 0,
            value: Box::new([]),
        })
    }

    /// A message the state does not expect (RFC 6608 subcodes).
    pub fn fsm(state_open_sent: bool, state_open_confirm: bool) -> BgpNotificationMessage {
        let value: Box<[u8]> = Box::new([]);
        BgpNotificationMessage::FiniteStateMachineError(if state_open_sent {
            FiniteStateMachineError::ReceiveUnexpectedMessageInOpenSentState { value }
        } else if state_open_confirm {
            FiniteStateMachineError::ReceiveUnexpectedMessageInOpenConfirmState { value }
        } else {
            FiniteStateMachineError::ReceiveUnexpectedMessageInEstablishedState { value }
        })
    }

    /// Cease with an RFC 4486 subcode: 1 maximum number of prefixes reached, 2
    /// administrative shutdown, 3 peer de-configured, 5 connection rejected, 6 other
    /// configuration change, 7 connection collision resolution.
    pub fn cease(sub: u8) -> BgpNotificationMessage {
        cease_with(sub, Vec::new())
    }

    /// [`cease`] with data (subcode 1: AFI, SAFI and the limit, RFC 4486 section 4).
    pub fn cease_with(sub: u8, data: Vec<u8>) -> BgpNotificationMessage {
        let value: Box<[u8]> = data.into();
        BgpNotificationMessage::CeaseError(match sub {
            1 => CeaseError::MaximumNumberOfPrefixesReached { value },
            2 => CeaseError::AdministrativeShutdown { value },
            3 => CeaseError::PeerDeConfigured { value },
            5 => CeaseError::ConnectionRejected { value },
            6 => CeaseError::OtherConfigurationChange { value },
            7 => CeaseError::ConnectionCollisionResolution { value },
            _ => CeaseError::AdministrativeReset { value },
        })
    }
}

#[cfg(test)]
mod tests;
pub mod update;
pub use update::{UpdateContent, UpdateCtx};

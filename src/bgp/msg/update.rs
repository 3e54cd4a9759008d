//! Received UPDATEs: parsed here, not by netgauze, so that each malformation gets the
//! outcome RFC 7606 gives it instead of a session reset for all of them:
//!
//! - *session reset* (a NOTIFICATION, then the connection closes) only where the rest
//!   of the message cannot be trusted: the withdrawn-routes or attribute-list lengths
//!   overrun the message (3/1), a plain NLRI or withdrawn prefix is malformed (3/10,
//!   RFC 7606 section 5.3), MP_REACH_NLRI / MP_UNREACH_NLRI is malformed or repeated
//!   (3/9 with the attribute as data, RFC 4760 section 7, RFC 7606 sections 3 g and
//!   7.11), a well-known attribute is unknown (3/2);
//! - *treat-as-withdraw* (section 2): the UPDATE's announced routes are withdrawn
//!   instead: a malformed ORIGIN, AS_PATH, NEXT_HOP, MED, COMMUNITIES, ORIGINATOR_ID,
//!   CLUSTER_LIST, extended or large communities, wrong flags on a known attribute,
//!   a missing mandatory attribute, an attribute overrunning the attribute list, a
//!   route with more labels than negotiated (RFC 8277 section 2.3);
//! - *attribute discard*: a malformed ATOMIC_AGGREGATE, AGGREGATOR, AS4_PATH,
//!   AS4_AGGREGATOR, a LOCAL_PREF from an external peer, and repeated attributes other
//!   than MP_REACH / MP_UNREACH.
//!
//! Never panics on any input (`msg::tests`, proptests); allocates only the route
//! lists it returns.

use super::{family_by_afi_safi, update_error, FamilyWire, LabeledRoute};
use crate::config::{Family, Prefix};
use netgauze_bgp_pkt::notification::{BgpNotificationMessage, UpdateMessageError};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const ORIGIN: u8 = 1;
const AS_PATH: u8 = 2;
const NEXT_HOP: u8 = 3;
const MED: u8 = 4;
const LOCAL_PREF: u8 = 5;
const ATOMIC_AGGREGATE: u8 = 6;
const AGGREGATOR: u8 = 7;
const COMMUNITIES: u8 = 8;
const ORIGINATOR_ID: u8 = 9;
const CLUSTER_LIST: u8 = 10;
const MP_REACH: u8 = 14;
const MP_UNREACH: u8 = 15;
const EXT_COMMUNITIES: u8 = 16;
const AS4_PATH: u8 = 17;
const AS4_AGGREGATOR: u8 = 18;
const LARGE_COMMUNITIES: u8 = 32;
const FLAG_OPTIONAL: u8 = 0x80;
const FLAG_TRANSITIVE: u8 = 0x40;
const FLAG_PARTIAL: u8 = 0x20;
const FLAG_EXTENDED: u8 = 0x10;
/// RFC 8277 section 2.4: the label field of a withdrawal (also accepted: 0).
const WITHDRAW_LABEL: u32 = 0x80_0000;

/// What decoding an UPDATE needs to know of the session.
#[derive(Clone, Copy, Debug)]
pub struct UpdateCtx {
    /// RFC 6793: AS_PATH carries 4-octet ASes.
    pub asn4: bool,
    /// The peer is internal (LOCAL_PREF errors are treat-as-withdraw, not discard).
    pub ibgp: bool,
}

/// What an UPDATE changes for popgo, after RFC 7606 handling.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpdateContent {
    pub announced: Vec<(Family, LabeledRoute)>,
    pub withdrawn: Vec<(Family, Prefix)>,
    /// Routes of families popgo does not speak (plain unicast, unknown AFI/SAFI): ignored.
    pub other: usize,
    /// Treat-as-withdraw: why (the announced routes were moved to `withdrawn`).
    pub treat_as_withdraw: Option<String>,
    /// Attributes discarded, and why.
    pub discarded: Vec<String>,
    /// End-of-RIB of this family (RFC 4724: an empty MP_UNREACH_NLRI).
    pub end_of_rib: Option<Family>,
}

/// A session reset: the NOTIFICATION to send and what the peer sent.
#[derive(Clone, Debug)]
pub struct Reset {
    pub notification: BgpNotificationMessage,
    pub why: String,
}

fn reset(sub: u8, data: &[u8], why: String) -> Reset {
    Reset { notification: update_error(sub, data.to_vec()), why }
}

fn optional_error(data: &[u8], why: String) -> Reset {
    Reset {
        notification: BgpNotificationMessage::UpdateMessageError(UpdateMessageError::OptionalAttributeError {
            value: data.to_vec().into(),
        }),
        why,
    }
}

fn hex(b: &[u8]) -> String {
    let mut s: String = b.iter().take(32).map(|x| format!("{x:02x}")).collect();
    if b.len() > 32 {
        s.push_str("..");
    }
    s
}

/// The network of `bytes` (at most the family's address length) of length `bits`.
fn prefix_of(afi_v4: bool, bytes: &[u8], bits: u8) -> Prefix {
    let mut a = [0u8; 16];
    a[..bytes.len()].copy_from_slice(bytes);
    let addr = if afi_v4 {
        let v = u32::from_be_bytes([a[0], a[1], a[2], a[3]]);
        let m = if bits == 0 { 0 } else { u32::MAX << (32 - u32::from(bits)) };
        IpAddr::V4(Ipv4Addr::from(v & m))
    } else {
        let v = u128::from_be_bytes(a);
        let m = if bits == 0 { 0 } else { u128::MAX << (128 - u32::from(bits)) };
        IpAddr::V6(Ipv6Addr::from(v & m))
    };
    Prefix { addr, len: bits, vrf: 0 }
}

/// RFC 4271 section 4.3 prefixes (plain IPv4 NLRI, withdrawn routes): the count, or
/// `None` when one is malformed.
fn plain_prefixes(mut b: &[u8]) -> Option<usize> {
    let mut n = 0;
    while let Some((&bits, rest)) = b.split_first() {
        let len = usize::from(bits).div_ceil(8);
        if bits > 32 || rest.len() < len {
            return None;
        }
        b = &rest[len..];
        n += 1;
    }
    Some(n)
}

/// One labeled NLRI field (RFC 8277 section 2): (prefix, first label, labels), or an
/// error text. `withdraw`: one label field, whatever its value (section 2.4).
fn labeled_nlri(
    w: &FamilyWire,
    mut b: &[u8],
    withdraw: bool,
    mut f: impl FnMut(Prefix, u32, usize),
) -> Result<(), String> {
    while let Some((&bits, rest)) = b.split_first() {
        b = rest;
        let mut bits = usize::from(bits);
        let (mut first, mut labels) = (None, 0);
        loop {
            if bits < 24 || b.len() < 3 {
                return Err(format!("label field overruns the NLRI ({bits} bits left)"));
            }
            let raw = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            b = &b[3..];
            bits -= 24;
            labels += 1;
            first.get_or_insert(raw >> 4);
            if withdraw || raw & 1 == 1 || raw == WITHDRAW_LABEL || raw == 0 {
                break;
            }
        }
        // RFC 4364 section 4.3.4 / RFC 4659: a VPN route's prefix follows its route
        // distinguisher (8 octets), which is not kept.
        if w.family.is_vpn() {
            if bits < 64 || b.len() < 8 {
                return Err(format!("route distinguisher overruns the NLRI ({bits} bits left)"));
            }
            b = &b[8..];
            bits -= 64;
        }
        let max = usize::from(w.addr_len) * 8;
        let len = bits.div_ceil(8);
        if bits > max || b.len() < len {
            return Err(format!("prefix of {bits} bits overruns the NLRI or the address"));
        }
        f(prefix_of(w.addr_len == 4, &b[..len], bits as u8), first.unwrap_or(0), labels);
        b = &b[len..];
    }
    Ok(())
}

fn as_path_ok(v: &[u8], asize: usize) -> bool {
    let mut i = 0;
    while i < v.len() {
        if i + 2 > v.len() {
            return false;
        }
        let (ty, n) = (v[i], usize::from(v[i + 1]));
        if !(1..=4).contains(&ty) || n == 0 || i + 2 + n * asize > v.len() {
            return false;
        }
        i += 2 + n * asize;
    }
    true
}

/// How bad an attribute error is (RFC 7606 section 2), weakest first.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Sev {
    Discard,
    Withdraw,
}

/// RFC 7606 section 7: what a malformed value of attribute `code` gets.
fn check_value(code: u8, v: &[u8], ctx: UpdateCtx) -> Option<(Sev, &'static str)> {
    let asize = if ctx.asn4 { 4 } else { 2 };
    let bad = match code {
        ORIGIN => v.len() != 1 || v[0] > 2,
        AS_PATH => !as_path_ok(v, asize),
        NEXT_HOP | MED | ORIGINATOR_ID => v.len() != 4,
        LOCAL_PREF => v.len() != 4,
        ATOMIC_AGGREGATE => !v.is_empty(),
        AGGREGATOR => v.len() != 2 + asize,
        AS4_AGGREGATOR => v.len() != 8,
        AS4_PATH => !as_path_ok(v, 4),
        COMMUNITIES | CLUSTER_LIST => v.is_empty() || !v.len().is_multiple_of(4),
        EXT_COMMUNITIES => v.is_empty() || !v.len().is_multiple_of(8),
        LARGE_COMMUNITIES => v.is_empty() || !v.len().is_multiple_of(12),
        _ => false,
    };
    if !bad {
        return None;
    }
    let sev = match code {
        ATOMIC_AGGREGATE | AGGREGATOR | AS4_AGGREGATOR | AS4_PATH => Sev::Discard,
        LOCAL_PREF if !ctx.ibgp => Sev::Discard,
        _ => Sev::Withdraw,
    };
    Some((sev, "malformed value"))
}

/// RFC 4271 section 5 and the attributes' RFCs: the flags a known attribute must have.
fn flags_ok(code: u8, flags: u8) -> bool {
    let optional = flags & FLAG_OPTIONAL != 0;
    let transitive = flags & FLAG_TRANSITIVE != 0;
    let partial = flags & FLAG_PARTIAL != 0;
    match code {
        ORIGIN | AS_PATH | NEXT_HOP | LOCAL_PREF | ATOMIC_AGGREGATE => !optional && transitive && !partial,
        MED | ORIGINATOR_ID | CLUSTER_LIST | MP_REACH | MP_UNREACH => optional && !transitive,
        AGGREGATOR | COMMUNITIES | EXT_COMMUNITIES | AS4_PATH | AS4_AGGREGATOR | LARGE_COMMUNITIES => {
            optional && transitive
        }
        _ => true,
    }
}

fn well_known(code: u8) -> bool {
    matches!(code, ORIGIN | AS_PATH | NEXT_HOP | LOCAL_PREF | ATOMIC_AGGREGATE)
}

/// Parses an UPDATE's body (after the 19-octet header).
pub fn parse(b: &[u8], ctx: UpdateCtx) -> Result<UpdateContent, Reset> {
    let mut c = UpdateContent::default();
    if b.len() < 4 {
        return Err(reset(1, &[], format!("UPDATE body of {} octets", b.len())));
    }
    let wlen = usize::from(u16::from_be_bytes([b[0], b[1]]));
    if 2 + wlen + 2 > b.len() {
        return Err(reset(1, &[], format!("withdrawn routes length {wlen} overruns the message")));
    }
    let alen = usize::from(u16::from_be_bytes([b[2 + wlen], b[3 + wlen]]));
    let attrs_at = 4 + wlen;
    if attrs_at + alen > b.len() {
        return Err(reset(1, &[], format!("total attribute length {alen} overruns the message")));
    }
    let withdrawn = &b[2..2 + wlen];
    let attrs = &b[attrs_at..attrs_at + alen];
    let nlri = &b[attrs_at + alen..];
    let plain_w = plain_prefixes(withdrawn).ok_or_else(|| reset(10, &[], "malformed withdrawn route".into()))?;
    let plain_n = plain_prefixes(nlri).ok_or_else(|| reset(10, &[], "malformed NLRI field".into()))?;
    c.other = plain_w + plain_n;

    let mut seen = [false; 256];
    let mut worst: Option<(Sev, String)> = None;
    let mut note = |c: &mut UpdateContent, sev: Sev, why: String| match sev {
        Sev::Discard => c.discarded.push(why),
        Sev::Withdraw => {
            if worst.as_ref().is_none_or(|(s, _)| *s < sev) {
                worst = Some((sev, why));
            }
        }
    };
    let mut reach: Option<&[u8]> = None;
    let mut reach_whole: &[u8] = &[];
    let mut i = 0;
    while i < attrs.len() {
        // RFC 7606 section 4: an attribute header or value that overruns the list is
        // treat-as-withdraw; the total attribute length still locates the NLRI.
        let ext = attrs[i] & FLAG_EXTENDED != 0;
        let hdr = if ext { 4 } else { 3 };
        if i + hdr > attrs.len() {
            note(&mut c, Sev::Withdraw, format!("attribute header truncated at offset {i} of the attribute list"));
            break;
        }
        let (flags, code) = (attrs[i], attrs[i + 1]);
        let len =
            if ext { usize::from(u16::from_be_bytes([attrs[i + 2], attrs[i + 3]])) } else { usize::from(attrs[i + 2]) };
        if i + hdr + len > attrs.len() {
            note(&mut c, Sev::Withdraw, format!("attribute {code} length {len} overruns the attribute list"));
            break;
        }
        let whole = &attrs[i..i + hdr + len];
        let v = &whole[hdr..];
        i += hdr + len;
        let what = || format!("attribute {code} (flags {flags:#04x}, {len} octets: {})", hex(v));
        if std::mem::replace(&mut seen[usize::from(code)], true) {
            if code == MP_REACH || code == MP_UNREACH {
                return Err(optional_error(whole, format!("{} appears twice", what())));
            }
            c.discarded.push(format!("repeated {}", what()));
            continue;
        }
        if flags & FLAG_OPTIONAL == 0 && !well_known(code) {
            return Err(reset(2, whole, format!("unrecognized well-known {}", what())));
        }
        if !flags_ok(code, flags) {
            if code == MP_REACH || code == MP_UNREACH {
                return Err(reset(4, whole, format!("wrong flags on {}", what())));
            }
            note(&mut c, Sev::Withdraw, format!("wrong flags on {}", what()));
            continue;
        }
        match code {
            MP_REACH => {
                reach = Some(v);
                reach_whole = whole;
            }
            MP_UNREACH => mp_unreach(v, &mut c).map_err(|e| optional_error(whole, format!("{e} in {}", what())))?,
            _ => {
                if let Some((sev, why)) = check_value(code, v, ctx) {
                    note(&mut c, sev, format!("{why}: {}", what()));
                }
            }
        }
    }
    let mut some_withdrawn = None;
    if let Some(v) = reach {
        some_withdrawn =
            mp_reach(v, &mut c).map_err(|e| optional_error(reach_whole, format!("{e} in MP_REACH_NLRI")))?;
    }
    // RFC 7606 section 3 d: a missing well-known mandatory attribute.
    if plain_n > 0 || !c.announced.is_empty() {
        for code in [ORIGIN, AS_PATH] {
            if !seen[usize::from(code)] {
                note(&mut c, Sev::Withdraw, format!("mandatory attribute {code} missing"));
            }
        }
        if plain_n > 0 && !seen[usize::from(NEXT_HOP)] {
            note(&mut c, Sev::Withdraw, "mandatory attribute 3 (NEXT_HOP) missing".into());
        }
    }
    if let Some((_, why)) = worst {
        let gone: Vec<(Family, Prefix)> = c.announced.drain(..).map(|(f, r)| (f, r.prefix)).collect();
        c.withdrawn.extend(gone);
        c.treat_as_withdraw = Some(why);
    } else {
        c.treat_as_withdraw = some_withdrawn;
    }
    Ok(c)
}

/// The family of an MP attribute's AFI/SAFI, or `None` (counted as other, ignored).
fn mp_family(v: &[u8]) -> Result<Option<&'static FamilyWire>, String> {
    if v.len() < 3 {
        return Err(format!("{} octets", v.len()));
    }
    Ok(family_by_afi_safi(u16::from_be_bytes([v[0], v[1]]), v[2]))
}

fn mp_unreach(v: &[u8], c: &mut UpdateContent) -> Result<(), String> {
    let Some(w) = mp_family(v)? else {
        c.other += 1;
        return Ok(());
    };
    let before = c.withdrawn.len();
    labeled_nlri(w, &v[3..], true, |p, _, _| c.withdrawn.push((w.family, p)))?;
    if c.withdrawn.len() == before {
        c.end_of_rib = Some(w.family);
    }
    Ok(())
}

/// MP_REACH_NLRI: the routes, or an error that resets the session; `Ok(Some(why))`
/// when some routes were treated as withdrawn.
fn mp_reach(v: &[u8], c: &mut UpdateContent) -> Result<Option<String>, String> {
    let Some(w) = mp_family(v)? else {
        c.other += 1;
        return Ok(None);
    };
    let nh_len = usize::from(*v.get(3).ok_or("no next hop length")?);
    if 4 + nh_len + 1 > v.len() {
        return Err(format!("next hop length {nh_len} overruns the attribute"));
    }
    let mut nh = &v[4..4 + nh_len];
    // VPN next hops start with a route distinguisher of zero (RFC 4364 section 4.3.2).
    let nh_len = if w.family.is_vpn() && matches!(nh_len, 12 | 24 | 48) {
        nh = &nh[8..];
        nh_len - 8
    } else {
        nh_len
    };
    let next_hop = match nh_len {
        4 => IpAddr::V4(Ipv4Addr::new(nh[0], nh[1], nh[2], nh[3])),
        // RFC 2545 / RFC 8950: global (and link-local) IPv6; 6PE's is IPv4-mapped.
        16 | 32 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&nh[..16]);
            let a = Ipv6Addr::from(a);
            a.to_ipv4_mapped().map_or(IpAddr::V6(a), IpAddr::V4)
        }
        n => return Err(format!("next hop length {n} is not 4, 16 or 32")),
    };
    // RFC 8277 section 2.3: a route with more labels than negotiated (one: popgo
    // does not send the Multiple Labels capability) is treated as withdrawn.
    let mut many = None;
    labeled_nlri(w, &v[4 + usize::from(v[3]) + 1..], false, |prefix, label, labels| {
        if labels > 1 {
            many = Some(format!("{labels} labels on {}/{} (Multiple Labels not negotiated)", prefix.addr, prefix.len));
            c.withdrawn.push((w.family, prefix));
        } else {
            c.announced.push((w.family, LabeledRoute { prefix, label, next_hop }));
        }
    })?;
    Ok(many)
}

//! The device configuration: TOML in, a checked [`Config`] out.
//!
//! Every semantic error names the key and the line it came from. The checked
//! `Config` is also what the control plane edits; `ilm::build` turns it into tables.
//!
//! Big route tables go in a table file the config names (`[bgp] table = "FILE"`, see
//! [`table`]): one labelled route per line, read without building a TOML document.
//! Real tables come as MRT RIB dumps (`[bgp] mrt = "FILE"`, see [`mrt`]): each prefix
//! becomes a labelled route toward one of the config's neighbors.

pub mod edit;
pub mod edit_error;
pub mod edit_vpn;
pub mod mrt;
mod syntax;
pub mod table;
pub mod vpn;

use crate::wire::ethernet::{format_mac, parse_mac, Mac};
use serde::Deserialize;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use toml::Spanned;
pub use vpn::{BgpVpnFamily, Mpls, Rd, RouteTarget, StaticLsp, VpnAf, VpnInstance};

/// A configuration error, with the line it refers to (1-based; 0 when not known).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read. Not a `source()` chain: the message says it all once.
    #[error("{path}: {err}")]
    Read { path: String, err: std::io::Error },
    #[error("line {line}: {msg}")]
    Syntax { line: usize, msg: String },
    #[error("line {line}: {key}: {msg}")]
    Invalid { line: usize, key: String, msg: String },
    /// A line of a route table file (`[bgp] table`).
    #[error("{path}: line {line}: {msg}")]
    Table { path: String, line: usize, msg: String },
    /// A record of an MRT RIB dump (`[bgp] mrt`): 1-based, and its byte offset in the
    /// decompressed data.
    #[error("{path}: record {record} at byte {offset}: {msg}")]
    Mrt { path: String, record: u64, offset: u64, msg: String },
}

/// RFC 3443 TTL processing model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TtlMode {
    #[default]
    Uniform,
    Pipe,
}

/// `apply-label per-route | per-nexthop | per-instance`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LabelMode {
    #[default]
    PerRoute,
    PerNexthop,
    PerInstance,
}

impl LabelMode {
    pub fn name(self) -> &'static str {
        match self {
            LabelMode::PerRoute => "per-route",
            LabelMode::PerNexthop => "per-nexthop",
            LabelMode::PerInstance => "per-instance",
        }
    }
}

/// An IP prefix with its host bits clear.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
    /// The routing table the prefix belongs to: 0 for the public table, else a VPN
    /// instance's VRF id ([`VpnInstance::id`]). Not shown by `Display`.
    pub vrf: u16,
}

/// Hashes as one `u64` ([`Prefix::fold`]), so that maps keyed by prefix over
/// [`MixHasher`] hash a million keys in a few milliseconds.
impl std::hash::Hash for Prefix {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.fold());
    }
}

/// The murmur3 64-bit finalizer over keys that hash as one `u64` (prefixes, labels):
/// every input bit reaches the low bits (bucket index) and the top bits (hashbrown's
/// control byte). Not for attacker-chosen keys (no seed); the tables keyed by it hold
/// configuration, not packets.
#[derive(Default, Clone, Copy)]
pub struct MixHasher(u64);

impl std::hash::Hasher for MixHasher {
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ *b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0 ^ x).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(23);
    }
    fn write_u32(&mut self, x: u32) {
        self.write_u64(x as u64);
    }
}

/// A hash map keyed by [`Prefix`] (or any key hashing as one `u64`) over [`MixHasher`].
pub type FastMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<MixHasher>>;
/// A hash set over [`MixHasher`].
pub type FastSet<K> = std::collections::HashSet<K, std::hash::BuildHasherDefault<MixHasher>>;

/// Buckets behind a hashbrown table of `capacity` items (it keeps at most 7/8 full):
/// for memory breakdowns.
pub fn table_buckets(capacity: usize) -> usize {
    match capacity {
        0 => 0,
        c if c < 8 => (c + 1).next_power_of_two(),
        c => (c * 8 / 7).next_power_of_two(),
    }
}

/// A set of 20-bit labels as a bitmap (128 KiB, whatever the number of labels).
#[derive(Clone)]
pub struct LabelSet(Box<[u64]>);

impl Default for LabelSet {
    fn default() -> Self {
        LabelSet(vec![0u64; (crate::wire::mpls::LABEL_MAX as usize + 1) / 64].into_boxed_slice())
    }
}

impl std::fmt::Debug for LabelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LabelSet({} labels)", self.0.iter().map(|w| w.count_ones()).sum::<u32>())
    }
}

impl LabelSet {
    #[inline]
    fn at(l: u32) -> (usize, u64) {
        let l = (l & crate::wire::mpls::LABEL_MAX) as usize;
        (l / 64, 1 << (l % 64))
    }

    pub fn contains(&self, l: u32) -> bool {
        let (w, b) = Self::at(l);
        self.0[w] & b != 0
    }

    /// Adds `l`; false if it was present already.
    pub fn insert(&mut self, l: u32) -> bool {
        let (w, b) = Self::at(l);
        let new = self.0[w] & b == 0;
        self.0[w] |= b;
        new
    }

    /// Removes `l`; false if it was absent.
    pub fn remove(&mut self, l: u32) -> bool {
        let (w, b) = Self::at(l);
        let had = self.0[w] & b != 0;
        self.0[w] &= !b;
        had
    }
}

impl Prefix {
    /// Parses `a.b.c.d/len` or `x::/len`. Host bits must be zero.
    pub fn parse(s: &str) -> Result<Prefix, String> {
        let (a, l) = s.split_once('/').ok_or_else(|| format!("{s:?} is not a prefix (want ADDRESS/LENGTH)"))?;
        let addr: IpAddr = a.parse().map_err(|_| format!("{a:?} is not an IP address"))?;
        let len: u8 = l.parse().map_err(|_| format!("{l:?} is not a prefix length"))?;
        Prefix::new(addr, len)
    }

    /// Builds a prefix from an address and a length, rejecting host bits.
    pub fn new(addr: IpAddr, len: u8) -> Result<Prefix, String> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if len > max {
            return Err(format!("prefix length {len} is longer than {max}"));
        }
        let p = Prefix { addr, len, vrf: vpn::PUBLIC };
        if p.masked() != addr {
            return Err(format!("{addr}/{len} has host bits set (did you mean {}/{len}?)", p.masked()));
        }
        Ok(p)
    }

    fn masked(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => {
                let m = if self.len == 0 { 0 } else { u32::MAX << (32 - self.len as u32) };
                IpAddr::V4((u32::from(a) & m).into())
            }
            IpAddr::V6(a) => {
                let m = if self.len == 0 { 0 } else { u128::MAX << (128 - self.len as u32) };
                IpAddr::V6((u128::from(a) & m).into())
            }
        }
    }

    pub fn is_v4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// The same prefix in the routing table of VRF `vrf`.
    pub fn in_vrf(self, vrf: u16) -> Prefix {
        Prefix { vrf, ..self }
    }

    /// The prefix folded into one `u64` for hashing: exact for IPv4 (address and
    /// length), a mix of the 128 bits and the length for IPv6.
    #[inline]
    pub fn fold(&self) -> u64 {
        let vrf = (self.vrf as u64) << 48;
        match self.addr {
            IpAddr::V4(a) => vrf | (1 << 40) | (u32::from(a) as u64) << 8 | self.len as u64,
            IpAddr::V6(a) => {
                let x = u128::from(a);
                ((x as u64) ^ ((x >> 64) as u64).rotate_left(29)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                    ^ self.len as u64
                    ^ vrf
            }
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// An output port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    pub name: String,
    pub iface: Option<String>,
    pub mac: Mac,
    /// VRF id of the VPN instance the port is bound to (`ip binding vpn-instance`); 0:
    /// the public table.
    pub vrf: u16,
}

/// Static ARP/ND entry: next hop -> MAC, reached through a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Neighbor {
    pub ip: IpAddr,
    pub mac: Mac,
    pub port: String,
    pub line: usize,
    /// The VRF of its port: a neighbor is a next hop of that routing table only, and
    /// addresses may repeat in different tables.
    pub vrf: u16,
}

/// `ip route-static`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticRoute {
    pub prefix: Prefix,
    pub next_hop: IpAddr,
    pub line: usize,
}

/// A route imported into BGP (`network`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    pub prefix: Prefix,
    pub label: Option<u32>,
    pub line: usize,
}

/// An address family the BGP speaker exchanges routes in: only the labeled ones
/// (RFC 8277 IPv4 labeled unicast, AFI 1 / SAFI 4; RFC 4798 6PE, AFI 2 / SAFI 4 over
/// an IPv4 session; RFC 4364 VPNv4, AFI 1 / SAFI 128; RFC 4659 VPNv6, AFI 2 / SAFI 128).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Ipv4LabeledUnicast,
    Ipv6LabeledUnicast,
    Vpnv4,
    Vpnv6,
}

impl Family {
    pub const ALL: [Family; 4] = [Family::Ipv4LabeledUnicast, Family::Ipv6LabeledUnicast, Family::Vpnv4, Family::Vpnv6];

    /// The name in the config file.
    pub fn name(self) -> &'static str {
        match self {
            Family::Ipv4LabeledUnicast => "ipv4-labeled-unicast",
            Family::Ipv6LabeledUnicast => "ipv6-labeled-unicast",
            Family::Vpnv4 => "vpnv4",
            Family::Vpnv6 => "vpnv6",
        }
    }

    /// The family of a prefix: a VPN instance's routes are VPN routes.
    pub fn of(p: &Prefix) -> Family {
        match (p.vrf != vpn::PUBLIC, p.is_v4()) {
            (false, true) => Family::Ipv4LabeledUnicast,
            (false, false) => Family::Ipv6LabeledUnicast,
            (true, true) => Family::Vpnv4,
            (true, false) => Family::Vpnv6,
        }
    }

    /// A VPN family (routes carry a route distinguisher and route targets).
    pub fn is_vpn(self) -> bool {
        matches!(self, Family::Vpnv4 | Family::Vpnv6)
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of [`Family`]s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Families(u8);

impl Families {
    pub const NONE: Families = Families(0);

    pub fn contains(self, f: Family) -> bool {
        self.0 & f.bit() != 0
    }

    pub fn with(self, f: Family, on: bool) -> Families {
        if on {
            Families(self.0 | f.bit())
        } else {
            Families(self.0 & !f.bit())
        }
    }

    pub fn iter(self) -> impl Iterator<Item = Family> {
        Family::ALL.into_iter().filter(move |f| self.contains(*f))
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The default of a peer without `families`: IPv4 labeled unicast, plus 6PE when
    /// the instance has IPv6 networks.
    pub fn default_for(has_v6_networks: bool) -> Families {
        Families::NONE.with(Family::Ipv4LabeledUnicast, true).with(Family::Ipv6LabeledUnicast, has_v6_networks)
    }
}

/// A BGP peer (`[[bgp.peer]]`; VRP `peer X as-number N`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The peer's address; sessions run over IPv4 (6PE carries IPv6 over them).
    pub address: Ipv4Addr,
    pub asn: u32,
    /// Local address to connect from (and the next hop advertised); default: the
    /// address the kernel picks for the route to the peer.
    pub source: Option<Ipv4Addr>,
    /// `None`: [`Families::default_for`] the instance's networks.
    pub families: Option<Families>,
    /// Maximum routes accepted from the peer (`peer X route-limit ...`).
    pub route_limit: Option<RouteLimit>,
    /// TCP MD5 signature key (RFC 2385; `peer X password simple|cipher KEY`).
    pub password: Option<Password>,
    /// GTSM (RFC 5082; `peer X valid-ttl-hops N`): the peer is at most N hops away, so
    /// its packets arrive with TTL 256 - N or more; popgo sends with TTL 255.
    pub ttl_hops: Option<u8>,
    pub line: usize,
}

/// A TCP MD5 key (RFC 2385) as configured.
#[derive(Clone, PartialEq, Eq)]
pub struct Password {
    pub key: String,
    /// Entered as `cipher`: shown hidden. popgo has no VRP cipher encoding; the key is
    /// kept as typed.
    pub cipher: bool,
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Password({} octets, {})", self.key.len(), if self.cipher { "cipher" } else { "simple" })
    }
}

/// The longest TCP MD5 key Linux takes (TCP_MD5SIG_MAXKEYLEN).
pub const MD5_KEY_MAX: usize = 80;

impl Password {
    pub fn new(key: &str, cipher: bool) -> Result<Password, String> {
        if key.is_empty() || key.len() > MD5_KEY_MAX {
            return Err(format!("a TCP MD5 password has 1..={MD5_KEY_MAX} octets, not {}", key.len()));
        }
        Ok(Password { key: key.to_string(), cipher })
    }
}

/// `peer X route-limit LIMIT [PERCENT] [alert-only | idle-forever | idle-timeout
/// MINUTES]` (VRP): at most `limit` routes received from the peer; a warning is logged
/// when `percent` of it is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteLimit {
    pub limit: u32,
    /// 1..=100; VRP's default 75.
    pub percent: u8,
    pub action: LimitAction,
}

/// What happens past the route limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitAction {
    /// Default: the session closes (Cease 6/1, RFC 4486) and connects again later.
    Restart,
    /// Logged and counted; routes past the limit are ignored, the session stays.
    AlertOnly,
    /// The session closes and stays down until the peer's configuration changes.
    IdleForever,
    /// The session closes and connects again after this many minutes.
    IdleTimeout(u16),
}

impl RouteLimit {
    /// VRP's default alert threshold (percent of the limit).
    pub const DEFAULT_PERCENT: u8 = 75;

    /// Parses the words after `route-limit` (VRP syntax).
    pub fn parse(words: &[&str]) -> Result<RouteLimit, String> {
        let usage = "route-limit LIMIT [PERCENT] [alert-only | idle-forever | idle-timeout MINUTES]";
        let num = |w: &str, what: &str, max: u64| -> Result<u64, String> {
            w.parse::<u64>()
                .ok()
                .filter(|v| (1..=max).contains(v))
                .ok_or_else(|| format!("{what} {w:?} is not in 1..={max} (usage: {usage})"))
        };
        let (limit, rest) = words.split_first().ok_or_else(|| format!("missing LIMIT (usage: {usage})"))?;
        let limit = num(limit, "route limit", u64::from(u32::MAX))? as u32;
        let (percent, rest) = match rest.split_first() {
            Some((p, r)) if p.bytes().all(|b| b.is_ascii_digit()) => (num(p, "percent", 100)? as u8, r),
            _ => (Self::DEFAULT_PERCENT, rest),
        };
        let action = match rest {
            [] => LimitAction::Restart,
            ["alert-only"] => LimitAction::AlertOnly,
            ["idle-forever"] => LimitAction::IdleForever,
            ["idle-timeout", m] => LimitAction::IdleTimeout(num(m, "idle-timeout minutes", 1200)? as u16),
            _ => return Err(format!("unexpected {:?} (usage: {usage})", rest.join(" "))),
        };
        Ok(RouteLimit { limit, percent, action })
    }

    /// The VRP words after `route-limit` (as `display current-configuration` shows).
    pub fn words(&self) -> String {
        let mut s = format!("{} {}", self.limit, self.percent);
        match self.action {
            LimitAction::Restart => {}
            LimitAction::AlertOnly => s.push_str(" alert-only"),
            LimitAction::IdleForever => s.push_str(" idle-forever"),
            LimitAction::IdleTimeout(m) => s.push_str(&format!(" idle-timeout {m}")),
        }
        s
    }
}

impl Peer {
    /// The families negotiated with this peer, given whether IPv6 networks exist.
    pub fn effective_families(&self, has_v6_networks: bool) -> Families {
        self.families.unwrap_or_else(|| Families::default_for(has_v6_networks))
    }
}

/// The BGP instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bgp {
    pub asn: u32,
    pub label_mode: LabelMode,
    pub pop_go: bool,
    /// `apply-label per-route pop-go` in `ipv6-family unicast` (6PE): `None` follows
    /// `pop_go`, so configs written before the views were separate keep their tables.
    pub pop_go_v6: Option<bool>,
    pub label_base: u32,
    /// BGP identifier (`router-id`); default: the local address of each session.
    pub router_id: Option<Ipv4Addr>,
    /// Address and port the speaker accepts peers' connections on (`listen`); default:
    /// every local address, port 179.
    pub listen: Option<std::net::SocketAddrV4>,
    /// Networks of every table: public ones (`prefix.vrf == 0`), advertised as labeled
    /// unicast, and VPN instances' ones, advertised as VPN routes.
    pub networks: Vec<Network>,
    /// Peers the speaker advertises the networks to, in config order.
    pub peers: Vec<Peer>,
    /// `ipv4-family vpn-instance NAME` / `ipv6-family vpn-instance NAME`.
    pub vpn_families: Vec<BgpVpnFamily>,
}

impl Bgp {
    pub fn has_v6_networks(&self) -> bool {
        self.networks.iter().any(|n| !n.prefix.is_v4() && n.prefix.vrf == vpn::PUBLIC)
    }

    /// The 6PE switch in effect (see [`Bgp::pop_go_v6`]).
    pub fn pop_go_v6(&self) -> bool {
        self.pop_go_v6.unwrap_or(self.pop_go)
    }

    /// The BGP VPN family of instance `vrf` (`v4`: IPv4, else IPv6), if configured.
    pub fn vpn_family(&self, vrf: u16, v4: bool) -> Option<&BgpVpnFamily> {
        self.vpn_families.iter().find(|f| f.vrf == vrf && f.v4 == v4)
    }
}

/// Default first label of the dynamic range.
pub const DEFAULT_LABEL_BASE: u32 = 48000;
/// The most `[[neighbor]]`s a config may have (an adjacency index is 16 bits).
pub const MAX_NEIGHBORS: usize = 65535;

/// A checked device configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub device: String,
    pub ttl_mode: TtlMode,
    pub ports: Vec<Port>,
    pub neighbors: Vec<Neighbor>,
    pub static_routes: Vec<StaticRoute>,
    pub bgp: Option<Bgp>,
    /// `mpls lsr-id` + `mpls` and the static egress LSPs.
    pub mpls: Option<Mpls>,
    /// `ip vpn-instance`s, in config order.
    pub vpn_instances: Vec<VpnInstance>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    device: RawDevice,
    #[serde(default)]
    port: Vec<Spanned<RawPort>>,
    #[serde(default)]
    neighbor: Vec<Spanned<RawNeighbor>>,
    #[serde(default)]
    static_route: Vec<Spanned<RawRoute>>,
    bgp: Option<RawBgp>,
    mpls: Option<vpn::RawMpls>,
    #[serde(default)]
    vpn_instance: Vec<Spanned<vpn::RawVpnInstance>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    name: Spanned<String>,
    ttl_mode: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPort {
    name: Spanned<String>,
    iface: Option<String>,
    mac: Spanned<String>,
    vpn_instance: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNeighbor {
    ip: Spanned<String>,
    mac: Spanned<String>,
    port: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    prefix: Spanned<String>,
    next_hop: Spanned<String>,
    vpn_instance: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBgp {
    #[serde(rename = "as")]
    asn: Spanned<i64>,
    label_mode: Option<Spanned<String>>,
    pop_go: Option<bool>,
    pop_go_ipv6: Option<bool>,
    label_base: Option<Spanned<i64>>,
    router_id: Option<Spanned<String>>,
    listen: Option<Spanned<String>>,
    table: Option<Spanned<String>>,
    mrt: Option<Spanned<String>>,
    mrt_peer: Option<Spanned<String>>,
    mrt_families: Option<Spanned<Vec<String>>>,
    mrt_neighbors: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    network: Vec<Spanned<RawNetwork>>,
    #[serde(default)]
    peer: Vec<Spanned<RawPeer>>,
    #[serde(default)]
    vpn_instance: Vec<Spanned<vpn::RawBgpVpn>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeer {
    address: Spanned<String>,
    #[serde(rename = "as")]
    asn: Spanned<i64>,
    source: Option<Spanned<String>>,
    families: Option<Spanned<Vec<String>>>,
    /// VRP's words after `route-limit`, e.g. "1000 80 idle-timeout 5".
    route_limit: Option<Spanned<String>>,
    password: Option<Spanned<String>>,
    valid_ttl_hops: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    prefix: Spanned<String>,
    label: Option<Spanned<i64>>,
    vpn_instance: Option<Spanned<String>>,
}

/// Turns byte offsets into 1-based line numbers (binary search over line starts, so a
/// 100k-route config does not go quadratic).
struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Lines {
        Lines(std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect())
    }

    fn of<T>(&self, s: &Spanned<T>) -> usize {
        self.0.partition_point(|start| *start <= s.span().start)
    }
}

fn invalid(line: usize, key: &str, msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { line, key: key.to_string(), msg: msg.into() }
}

impl Config {
    /// Reads and checks a config file. A route table file it names (`[bgp] table`) is
    /// read relative to the config file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let bytes = std::fs::read(path).map_err(|err| ConfigError::Read { path: path.display().to_string(), err })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count() + 1;
            ConfigError::Syntax { line, msg: format!("not UTF-8 (byte {at})") }
        })?;
        Config::parse_in(&text, path.parent())
    }

    /// Parses and checks config text (a table file it names is read relative to the
    /// current directory).
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse_in(text, None)
    }

    /// Parses and checks config text; a relative table file path is taken relative to
    /// `dir`.
    pub fn parse_in(text: &str, dir: Option<&Path>) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            if !e.message().starts_with("unknown field") {
                if let Some((line, msg)) = syntax::unknown_top_level_key::<RawConfig>(text) {
                    return ConfigError::Syntax { line, msg };
                }
            }
            let line = e.span().map_or(0, |s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            ConfigError::Syntax { line, msg: e.message().to_string() }
        })?;
        let lines = Lines::new(text);
        // The name is the VRP prompt (`<DeviceC>`) in every control-socket reply: a
        // control character would break the line framing.
        let name = raw.device.name.get_ref();
        if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(invalid(
                lines.of(&raw.device.name),
                "device.name",
                "must be 1 to 64 characters, without spaces or control characters",
            ));
        }

        let ttl_mode = match &raw.device.ttl_mode {
            None => TtlMode::Uniform,
            Some(s) => match s.get_ref().as_str() {
                "uniform" => TtlMode::Uniform,
                "pipe" => TtlMode::Pipe,
                other => {
                    return Err(invalid(
                        lines.of(s),
                        "device.ttl_mode",
                        format!("{other:?} is not \"uniform\" or \"pipe\""),
                    ))
                }
            },
        };

        let vpn_instances = vpn::instances(&raw.vpn_instance, &lines)?;
        let mut ports: Vec<Port> = Vec::new();
        for p in &raw.port {
            let line = lines.of(p);
            let p = p.get_ref();
            let name = p.name.get_ref().clone();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                return Err(invalid(line, "port.name", format!("{name:?} must be non-empty [A-Za-z0-9._-]")));
            }
            if ports.iter().any(|q| q.name == name) {
                return Err(invalid(lines.of(&p.name), "port.name", format!("duplicate port {name:?}")));
            }
            let mac = parse_mac(p.mac.get_ref()).ok_or_else(|| {
                invalid(lines.of(&p.mac), "port.mac", format!("{:?} is not a MAC address", p.mac.get_ref()))
            })?;
            let vrf = vpn::vrf_of(&vpn_instances, p.vpn_instance.as_ref(), &lines, "port.vpn_instance")?;
            ports.push(Port { name, iface: p.iface.clone(), mac, vrf });
        }
        if ports.len() > crate::stats::MAX_PORTS {
            let extra = lines.of(&raw.port[crate::stats::MAX_PORTS]);
            return Err(invalid(extra, "port", format!("at most {} ports are supported", crate::stats::MAX_PORTS)));
        }

        let mut neighbors: Vec<Neighbor> = Vec::new();
        let mut neighbor_ips = std::collections::HashSet::with_capacity(raw.neighbor.len());
        for n in &raw.neighbor {
            let line = lines.of(n);
            if neighbors.len() == MAX_NEIGHBORS {
                return Err(invalid(line, "neighbor", format!("at most {MAX_NEIGHBORS} neighbors are supported")));
            }
            let n = n.get_ref();
            let ip: IpAddr = n.ip.get_ref().parse().map_err(|_| {
                invalid(lines.of(&n.ip), "neighbor.ip", format!("{:?} is not an IP address", n.ip.get_ref()))
            })?;
            let mac = parse_mac(n.mac.get_ref()).ok_or_else(|| {
                invalid(lines.of(&n.mac), "neighbor.mac", format!("{:?} is not a MAC address", n.mac.get_ref()))
            })?;
            let port = n.port.get_ref().clone();
            let Some(vrf) = ports.iter().find(|p| p.name == port).map(|p| p.vrf) else {
                return Err(invalid(lines.of(&n.port), "neighbor.port", format!("unknown port {port:?}")));
            };
            if !neighbor_ips.insert((ip, vrf)) {
                return Err(invalid(lines.of(&n.ip), "neighbor.ip", format!("duplicate neighbor {ip}")));
            }
            neighbors.push(Neighbor { ip, mac, port, line, vrf });
        }

        let mut cfg = Config {
            device: raw.device.name.into_inner(),
            ttl_mode,
            ports,
            neighbors,
            static_routes: Vec::new(),
            bgp: None,
            mpls: None,
            vpn_instances,
        };

        // Bulk checks use hash sets: configs with 100k routes must load in well under a second.
        let mut route_keys: std::collections::HashSet<(Prefix, IpAddr)> = std::collections::HashSet::new();
        let mut route_prefixes: FastSet<Prefix> = FastSet::default();
        for r in &raw.static_route {
            let line = lines.of(r);
            let r = r.get_ref();
            let vrf = vpn::vrf_of(&cfg.vpn_instances, r.vpn_instance.as_ref(), &lines, "static_route.vpn_instance")?;
            let prefix = Prefix::parse(r.prefix.get_ref())
                .map_err(|m| invalid(lines.of(&r.prefix), "static_route.prefix", m))?
                .in_vrf(vrf);
            let nh_line = lines.of(&r.next_hop);
            let next_hop: IpAddr = r.next_hop.get_ref().parse().map_err(|_| {
                invalid(nh_line, "static_route.next_hop", format!("{:?} is not an IP address", r.next_hop.get_ref()))
            })?;
            cfg.check_static_route(prefix, next_hop)
                .map_err(|m| invalid(nh_line, "static_route.next_hop", m.to_string()))?;
            if !route_keys.insert((prefix, next_hop)) {
                return Err(invalid(nh_line, "static_route", format!("duplicate route {prefix} via {next_hop}")));
            }
            route_prefixes.insert(prefix);
            cfg.static_routes.push(StaticRoute { prefix, next_hop, line });
        }

        if let Some(b) = &raw.bgp {
            let asn = u32::try_from(*b.asn.get_ref()).ok().filter(|a| *a > 0).ok_or_else(|| {
                invalid(lines.of(&b.asn), "bgp.as", format!("{} is not an AS number (1..=4294967295)", b.asn.get_ref()))
            })?;
            let label_mode = match &b.label_mode {
                None => LabelMode::PerRoute,
                Some(s) => match s.get_ref().as_str() {
                    "per-route" => LabelMode::PerRoute,
                    "per-nexthop" => LabelMode::PerNexthop,
                    "per-instance" => LabelMode::PerInstance,
                    other => {
                        return Err(invalid(
                            lines.of(s),
                            "bgp.label_mode",
                            format!("{other:?} is not per-route, per-nexthop or per-instance"),
                        ))
                    }
                },
            };
            let label_base = match &b.label_base {
                None => DEFAULT_LABEL_BASE,
                Some(s) => check_label(*s.get_ref()).map_err(|m| invalid(lines.of(s), "bgp.label_base", m))?,
            };
            let mut networks = Vec::with_capacity(b.network.len());
            let mut net_prefixes: FastSet<Prefix> = FastSet::default();
            let mut labels: FastMap<u32, Prefix> = FastMap::default();
            for n in &b.network {
                let line = lines.of(n);
                let n = n.get_ref();
                let vrf = vpn::vrf_of(&cfg.vpn_instances, n.vpn_instance.as_ref(), &lines, "bgp.network.vpn_instance")?;
                let prefix = Prefix::parse(n.prefix.get_ref())
                    .map_err(|m| invalid(lines.of(&n.prefix), "bgp.network.prefix", m))?
                    .in_vrf(vrf);
                if vrf != vpn::PUBLIC && cfg.vpn_instance(vrf).and_then(|v| v.af(prefix.is_v4())).is_none() {
                    return Err(invalid(
                        line,
                        "bgp.network.vpn_instance",
                        format!("the VPN instance has no {} family (add its route_distinguisher)", fam_name(prefix)),
                    ));
                }
                let label = match &n.label {
                    None => None,
                    Some(l) => {
                        Some(check_label(*l.get_ref()).map_err(|m| invalid(lines.of(l), "bgp.network.label", m))?)
                    }
                };
                if !route_prefixes.contains(&prefix) {
                    return Err(invalid(
                        line,
                        "bgp.network",
                        format!("no static route for {prefix} (a network must match a static route's prefix)"),
                    ));
                }
                if !net_prefixes.insert(prefix) {
                    return Err(invalid(lines.of(&n.prefix), "bgp.network", format!("duplicate network {prefix}")));
                }
                if let Some(l) = label {
                    if vrf != vpn::PUBLIC {
                        return Err(invalid(
                            line,
                            "bgp.network.label",
                            "VPN routes take labels from the dynamic range (no static label)",
                        ));
                    }
                    if label_mode != LabelMode::PerRoute {
                        return Err(invalid(
                            line,
                            "bgp.network.label",
                            "a static label is only valid with label_mode = \"per-route\"",
                        ));
                    }
                    if let Some(other) = labels.insert(l, prefix) {
                        return Err(invalid(
                            n.label.as_ref().map_or(line, |l| lines.of(l)),
                            "bgp.network.label",
                            format!("duplicate label {l} (already used by network {other})"),
                        ));
                    }
                }
                networks.push(Network { prefix, label, line });
            }
            if let Some(t) = &b.table {
                let checks = table::Checks {
                    neighbors: &cfg.neighbors,
                    routes: &route_keys,
                    label_mode,
                    net_prefixes: &mut net_prefixes,
                    labels: &labels,
                    vrf: vpn::PUBLIC,
                };
                read_table(dir, t, &lines, "bgp.table", checks, &mut cfg.static_routes, &mut networks)?;
            }
            let opts = mrt_options(b, &lines, &cfg.neighbors)?;
            if let Some(m) = &b.mrt {
                let path = match dir {
                    Some(d) if !d.as_os_str().is_empty() => d.join(m.get_ref()),
                    _ => std::path::PathBuf::from(m.get_ref()),
                };
                let whole = |msg: String| invalid(lines.of(m), "bgp.mrt", format!("{}: {msg}", path.display()));
                // Opened without blocking, and only a regular file is read: a FIFO would block
                // the load (a SIGHUP reload on the control thread) in `open`, a device never end.
                let file = {
                    use std::os::unix::fs::OpenOptionsExt;
                    std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&path)
                }
                .map_err(|e| whole(e.to_string()))?;
                if !file.metadata().map_err(|e| whole(e.to_string()))?.is_file() {
                    return Err(whole("not a regular file".into()));
                }
                let (input, compression) =
                    mrt::decompress(std::io::BufReader::with_capacity(1 << 18, file)).map_err(&whole)?;
                let checks = mrt::Checks {
                    neighbors: &cfg.neighbors,
                    route_prefixes: &route_prefixes,
                    net_prefixes: &mut net_prefixes,
                };
                let sum =
                    mrt::read(input, &opts, checks, &mut cfg.static_routes, &mut networks).map_err(|e| match e.at {
                        Some((record, offset)) => {
                            ConfigError::Mrt { path: path.display().to_string(), record, offset, msg: e.msg }
                        }
                        None => whole(e.msg),
                    })?;
                tracing::info!(
                    "{} ({compression}): {} records, {} unicast prefixes: {} loaded; skipped: {} already in the config, {} repeated in the dump, {} without an entry (of mrt_peer, if set), {} of another family",
                    path.display(),
                    sum.records,
                    sum.prefixes,
                    sum.loaded,
                    sum.present,
                    sum.repeated,
                    sum.other_peers,
                    sum.other_family
                );
            }
            if label_mode == LabelMode::PerRoute {
                // The build would run out of dynamic labels: say so here, with a line.
                let room = (crate::wire::mpls::LABEL_MAX + 1).saturating_sub(label_base) as usize;
                let taken = networks.iter().filter(|n| n.label.is_some_and(|l| l >= label_base)).count();
                let dynamic = networks.iter().filter(|n| n.label.is_none()).count();
                if dynamic > room.saturating_sub(taken) {
                    let line = b.label_base.as_ref().map_or(lines.of(&b.asn), |l| lines.of(l));
                    return Err(invalid(
                        line,
                        "bgp.label_base",
                        format!(
                            "{dynamic} networks without a static label need {dynamic} labels from {label_base}, \
                             and only {} are free up to 1048575",
                            room.saturating_sub(taken)
                        ),
                    ));
                }
            }
            let router_id = match &b.router_id {
                None => None,
                Some(s) => Some(check_router_id(s.get_ref()).map_err(|m| invalid(lines.of(s), "bgp.router_id", m))?),
            };
            let listen = match &b.listen {
                None => None,
                Some(s) => Some(s.get_ref().parse::<std::net::SocketAddrV4>().map_err(|_| {
                    invalid(
                        lines.of(s),
                        "bgp.listen",
                        format!("{:?} is not an IPv4 address and port (e.g. \"192.0.2.1:179\")", s.get_ref()),
                    )
                })?),
            };
            let mut peers: Vec<Peer> = Vec::with_capacity(b.peer.len());
            for p in &b.peer {
                let line = lines.of(p);
                let p = p.get_ref();
                let address = parse_v4(p.address.get_ref(), "peer address")
                    .map_err(|m| invalid(lines.of(&p.address), "bgp.peer.address", m))?;
                if peers.iter().any(|q| q.address == address) {
                    return Err(invalid(lines.of(&p.address), "bgp.peer.address", format!("duplicate peer {address}")));
                }
                let asn = u32::try_from(*p.asn.get_ref()).ok().filter(|a| *a > 0).ok_or_else(|| {
                    invalid(
                        lines.of(&p.asn),
                        "bgp.peer.as",
                        format!("{} is not an AS number (1..=4294967295)", p.asn.get_ref()),
                    )
                })?;
                let source = match &p.source {
                    None => None,
                    Some(s) => Some(
                        parse_v4(s.get_ref(), "source address")
                            .map_err(|m| invalid(lines.of(s), "bgp.peer.source", m))?,
                    ),
                };
                let families = match &p.families {
                    None => None,
                    Some(fs) => {
                        let mut set = Families::NONE;
                        for f in fs.get_ref() {
                            let fam = Family::ALL.into_iter().find(|x| x.name() == f).ok_or_else(|| {
                                invalid(
                                    lines.of(fs),
                                    "bgp.peer.families",
                                    format!(
                                        "{f:?} is not \"ipv4-labeled-unicast\", \"ipv6-labeled-unicast\", \"vpnv4\" or \"vpnv6\""
                                    ),
                                )
                            })?;
                            set = set.with(fam, true);
                        }
                        Some(set)
                    }
                };
                let route_limit = match &p.route_limit {
                    None => None,
                    Some(r) => {
                        let words: Vec<&str> = r.get_ref().split_whitespace().collect();
                        Some(RouteLimit::parse(&words).map_err(|m| invalid(lines.of(r), "bgp.peer.route_limit", m))?)
                    }
                };
                let password = match &p.password {
                    None => None,
                    Some(k) => Some(
                        Password::new(k.get_ref(), false).map_err(|m| invalid(lines.of(k), "bgp.peer.password", m))?,
                    ),
                };
                let ttl_hops = match &p.valid_ttl_hops {
                    None => None,
                    Some(h) => Some(u8::try_from(*h.get_ref()).ok().filter(|h| *h >= 1).ok_or_else(|| {
                        invalid(lines.of(h), "bgp.peer.valid_ttl_hops", format!("{} is not in 1..=255", h.get_ref()))
                    })?),
                };
                peers.push(Peer { address, asn, source, families, route_limit, password, ttl_hops, line });
            }
            let vpn_families = vpn::bgp_families(&b.vpn_instance, &cfg, &lines)?;
            // A VPN family's route table file: its routes and networks, after the
            // public ones.
            for (r, f) in b.vpn_instance.iter().zip(&vpn_families) {
                let Some(t) = vpn::table_key(r) else { continue };
                let checks = table::Checks {
                    neighbors: &cfg.neighbors,
                    routes: &route_keys,
                    label_mode: LabelMode::PerRoute,
                    net_prefixes: &mut net_prefixes,
                    labels: &labels,
                    vrf: f.vrf,
                };
                let first = cfg.static_routes.len();
                let key = "bgp.vpn_instance.table";
                let path = read_table(dir, t, &lines, key, checks, &mut cfg.static_routes, &mut networks)?;
                if let Some(r) = cfg.static_routes[first..].iter().find(|r| r.prefix.is_v4() != f.v4) {
                    return Err(ConfigError::Table {
                        path: path.display().to_string(),
                        line: r.line,
                        msg: format!("{} is not of the family's address family", r.prefix),
                    });
                }
            }
            cfg.bgp = Some(Bgp {
                asn,
                label_mode,
                pop_go: b.pop_go.unwrap_or(false),
                pop_go_v6: b.pop_go_ipv6,
                label_base,
                router_id,
                listen,
                networks,
                peers,
                vpn_families,
            });
        }
        cfg.mpls = vpn::mpls(raw.mpls.as_ref(), &cfg, &lines)?;
        Ok(cfg)
    }

    /// Adds a static route after checking its next hop resolves through a neighbor of
    /// the same family (re-adding an existing route changes nothing). Same rules and
    /// words as the control plane's `ip route-static`.
    pub fn add_static_route(&mut self, r: StaticRoute) -> Result<(), edit::EditError> {
        edit::apply(self, &edit::Edit::AddRoute(r)).map(|_| ())
    }

    /// Checks that `next_hop` is a neighbor of the family of `prefix`.
    pub fn check_static_route(&self, prefix: Prefix, next_hop: IpAddr) -> Result<(), edit::EditError> {
        if prefix.addr.is_ipv4() != next_hop.is_ipv4() {
            return Err(edit::EditError::NextHopFamily { next_hop, prefix });
        }
        if !self.neighbors.iter().any(|n| n.ip == next_hop && n.vrf == prefix.vrf) {
            if prefix.vrf != vpn::PUBLIC {
                let instance = self.vrf_name(prefix.vrf).to_string();
                return Err(edit::EditError::NextHopNotInInstance { next_hop, instance });
            }
            return Err(edit::EditError::NextHopNotNeighbor(next_hop));
        }
        Ok(())
    }

    /// The VPN instance with VRF id `vrf`.
    pub fn vpn_instance(&self, vrf: u16) -> Option<&VpnInstance> {
        self.vpn_instances.iter().find(|v| v.id == vrf)
    }

    /// The VPN instance called `name`.
    pub fn vpn_instance_named(&self, name: &str) -> Option<&VpnInstance> {
        self.vpn_instances.iter().find(|v| v.name == name)
    }

    /// The name of VRF `vrf` ("-" for the public table).
    pub fn vrf_name(&self, vrf: u16) -> &str {
        self.vpn_instance(vrf).map_or("-", |v| v.name.as_str())
    }

    /// (label mode, pop-go) of the networks of `vrf` in family `v4` (true) or IPv6:
    /// the BGP instance's for the public table, the VPN instance family's otherwise.
    pub fn label_params(&self, vrf: u16, v4: bool) -> (LabelMode, bool) {
        if vrf == vpn::PUBLIC {
            return self
                .bgp
                .as_ref()
                .map_or((LabelMode::PerRoute, false), |b| (b.label_mode, if v4 { b.pop_go } else { b.pop_go_v6() }));
        }
        self.vpn_instance(vrf).and_then(|v| v.af(v4)).map_or((LabelMode::PerRoute, false), |a| (a.label_mode, a.pop_go))
    }

    /// Adds a BGP network after checking labels and that a static route exists for it.
    /// Same rules and words as the control plane's `network` command.
    pub fn add_network(&mut self, n: Network) -> Result<(), edit::EditError> {
        edit::apply(self, &edit::Edit::AddNetwork(n)).map(|_| ())
    }

    /// The configuration without its static routes and networks (device, ports,
    /// neighbors, BGP header and peers): cheap at any table size.
    pub fn head(&self) -> Config {
        Config {
            device: self.device.clone(),
            ttl_mode: self.ttl_mode,
            ports: self.ports.clone(),
            neighbors: self.neighbors.clone(),
            static_routes: Vec::new(),
            bgp: self.bgp.as_ref().map(|b| Bgp {
                asn: b.asn,
                label_mode: b.label_mode,
                pop_go: b.pop_go,
                pop_go_v6: b.pop_go_v6,
                label_base: b.label_base,
                router_id: b.router_id,
                listen: b.listen,
                networks: Vec::new(),
                peers: b.peers.clone(),
                vpn_families: b.vpn_families.clone(),
            }),
            mpls: self.mpls.clone(),
            vpn_instances: self.vpn_instances.clone(),
        }
    }

    /// Index of a port by name.
    pub fn port_index(&self, name: &str) -> Option<usize> {
        self.ports.iter().position(|p| p.name == name)
    }

    /// Renders the configuration back as TOML (`display current-configuration` uses VRP
    /// syntax instead; this is for saving).
    pub fn to_toml(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "[device]\nname = {:?}", self.device);
        let _ = writeln!(s, "ttl_mode = {:?}", if self.ttl_mode == TtlMode::Pipe { "pipe" } else { "uniform" });
        vpn::instances_toml(self, &mut s);
        for p in &self.ports {
            let _ = writeln!(s, "\n[[port]]\nname = {:?}", p.name);
            if let Some(i) = &p.iface {
                let _ = writeln!(s, "iface = {i:?}");
            }
            let _ = writeln!(s, "mac = {:?}", format_mac(&p.mac));
            if p.vrf != vpn::PUBLIC {
                let _ = writeln!(s, "vpn_instance = {:?}", self.vrf_name(p.vrf));
            }
        }
        for n in &self.neighbors {
            let _ =
                writeln!(s, "\n[[neighbor]]\nip = \"{}\"\nmac = {:?}\nport = {:?}", n.ip, format_mac(&n.mac), n.port);
        }
        for r in &self.static_routes {
            let _ = writeln!(s, "\n[[static_route]]\nprefix = \"{}\"\nnext_hop = \"{}\"", r.prefix, r.next_hop);
            if r.prefix.vrf != vpn::PUBLIC {
                let _ = writeln!(s, "vpn_instance = {:?}", self.vrf_name(r.prefix.vrf));
            }
        }
        if let Some(b) = &self.bgp {
            let _ = writeln!(
                s,
                "\n[bgp]\nas = {}\nlabel_mode = {:?}\npop_go = {}\nlabel_base = {}",
                b.asn,
                b.label_mode.name(),
                b.pop_go,
                b.label_base
            );
            if let Some(id) = b.router_id {
                let _ = writeln!(s, "router_id = \"{id}\"");
            }
            if let Some(a) = b.listen {
                let _ = writeln!(s, "listen = \"{a}\"");
            }
            if let Some(v6) = b.pop_go_v6 {
                let _ = writeln!(s, "pop_go_ipv6 = {v6}");
            }
            for n in &b.networks {
                let _ = writeln!(s, "\n[[bgp.network]]\nprefix = \"{}\"", n.prefix);
                if let Some(l) = n.label {
                    let _ = writeln!(s, "label = {l}");
                }
                if n.prefix.vrf != vpn::PUBLIC {
                    let _ = writeln!(s, "vpn_instance = {:?}", self.vrf_name(n.prefix.vrf));
                }
            }
            for f in &b.vpn_families {
                let _ = writeln!(
                    s,
                    "\n[[bgp.vpn_instance]]\nname = {:?}\nfamily = {:?}\nimport_static = {}",
                    self.vrf_name(f.vrf),
                    if f.v4 { "ipv4" } else { "ipv6" },
                    f.import_static
                );
            }
            for p in &b.peers {
                let _ = writeln!(s, "\n[[bgp.peer]]\naddress = \"{}\"\nas = {}", p.address, p.asn);
                if let Some(src) = p.source {
                    let _ = writeln!(s, "source = \"{src}\"");
                }
                if let Some(f) = p.families {
                    let names: Vec<String> = f.iter().map(|f| format!("{:?}", f.name())).collect();
                    let _ = writeln!(s, "families = [{}]", names.join(", "));
                }
                if let Some(r) = &p.route_limit {
                    let _ = writeln!(s, "route_limit = \"{}\"", r.words());
                }
                if let Some(k) = &p.password {
                    let _ = writeln!(s, "password = {:?}", k.key);
                }
                if let Some(h) = p.ttl_hops {
                    let _ = writeln!(s, "valid_ttl_hops = {h}");
                }
            }
        }
        vpn::mpls_toml(self, &mut s);
        s
    }
}

/// Reads the route table file that key `key` (at `t`) names, relative to `dir`, into
/// `routes` and `networks`; returns its path. Errors name the key or the file's line.
fn read_table(
    dir: Option<&Path>,
    t: &Spanned<String>,
    lines: &Lines,
    key: &str,
    checks: table::Checks<'_>,
    routes: &mut Vec<StaticRoute>,
    networks: &mut Vec<Network>,
) -> Result<std::path::PathBuf, ConfigError> {
    let path = match dir {
        Some(d) if !d.as_os_str().is_empty() => d.join(t.get_ref()),
        _ => std::path::PathBuf::from(t.get_ref()),
    };
    table::read_file(&path, checks, routes, networks).map_err(|e| match e {
        table::ReadError::File(msg) => invalid(lines.of(t), key, format!("{}: {msg}", path.display())),
        table::ReadError::Line(line, msg) => ConfigError::Table { path: path.display().to_string(), line, msg },
    })?;
    Ok(path)
}

/// "IPv4" or "IPv6", the family of `p`.
fn fam_name(p: Prefix) -> &'static str {
    if p.is_v4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

/// The `[bgp] mrt_*` keys; they need `mrt`.
fn mrt_options(b: &RawBgp, lines: &Lines, neighbors: &[Neighbor]) -> Result<mrt::Options, ConfigError> {
    let mut o = mrt::Options::default();
    let only_with_mrt = |line: usize, key: &str| invalid(line, key, "only valid with bgp.mrt (an MRT RIB dump)");
    if let Some(p) = &b.mrt_peer {
        if b.mrt.is_none() {
            return Err(only_with_mrt(lines.of(p), "bgp.mrt_peer"));
        }
        o.peer =
            Some(p.get_ref().parse().map_err(|_| {
                invalid(lines.of(p), "bgp.mrt_peer", format!("{:?} is not an IP address", p.get_ref()))
            })?);
    }
    if let Some(fs) = &b.mrt_families {
        if b.mrt.is_none() {
            return Err(only_with_mrt(lines.of(fs), "bgp.mrt_families"));
        }
        let (mut v4, mut v6) = (false, false);
        for f in fs.get_ref() {
            match f.as_str() {
                "ipv4" => v4 = true,
                "ipv6" => v6 = true,
                other => {
                    return Err(invalid(
                        lines.of(fs),
                        "bgp.mrt_families",
                        format!("{other:?} is not \"ipv4\" or \"ipv6\""),
                    ))
                }
            }
        }
        o.no_v4 = !v4;
        o.no_v6 = !v6;
    }
    if let Some(ns) = &b.mrt_neighbors {
        if b.mrt.is_none() {
            return Err(only_with_mrt(lines.of(ns), "bgp.mrt_neighbors"));
        }
        for n in ns.get_ref() {
            let ip: IpAddr = n
                .parse()
                .map_err(|_| invalid(lines.of(ns), "bgp.mrt_neighbors", format!("{n:?} is not an IP address")))?;
            if !neighbors.iter().any(|x| x.ip == ip) {
                return Err(invalid(
                    lines.of(ns),
                    "bgp.mrt_neighbors",
                    format!("{ip} is not a known neighbor (add a [[neighbor]] for it)"),
                ));
            }
            if o.neighbors.contains(&ip) {
                return Err(invalid(lines.of(ns), "bgp.mrt_neighbors", format!("duplicate neighbor {ip}")));
            }
            o.neighbors.push(ip);
        }
        if o.neighbors.is_empty() {
            return Err(invalid(lines.of(ns), "bgp.mrt_neighbors", "empty: leave it out to use every neighbor"));
        }
    }
    Ok(o)
}

/// Parses an IPv4 address (`what` names it in the message).
pub fn parse_v4(s: &str, what: &str) -> Result<Ipv4Addr, String> {
    match s.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => Ok(a),
        Ok(IpAddr::V6(_)) => {
            Err(format!("{what} {s} is IPv6: BGP sessions run over IPv4 (6PE carries IPv6 over them)"))
        }
        Err(_) => Err(format!("{s:?} is not an IPv4 address")),
    }
}

/// Checks a BGP identifier: a non-zero IPv4 address (RFC 4271 section 4.2; RFC 6286
/// lets it be any non-zero 32-bit value).
pub fn check_router_id(s: &str) -> Result<Ipv4Addr, String> {
    let a = parse_v4(s, "router ID")?;
    if a.is_unspecified() {
        return Err("router ID 0.0.0.0 is not valid (RFC 4271: a non-zero BGP identifier)".into());
    }
    Ok(a)
}

/// Checks a label value for use as a local label: 16..=2^20-1.
pub fn check_label(v: i64) -> Result<u32, String> {
    if (16..=crate::wire::mpls::LABEL_MAX as i64).contains(&v) {
        Ok(v as u32)
    } else {
        Err(format!("label {v} is outside 16..=1048575 (0-15 are reserved, labels are 20 bits)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const SEED: &str = include_str!("../../../pcaps/seed.toml");

    #[test]
    fn seed_config_parses() {
        let c = Config::parse(SEED).unwrap();
        assert_eq!(c.device, "DeviceC");
        assert_eq!(c.ports.len(), 3);
        assert_eq!(c.static_routes.len(), 2);
        let b = c.bgp.as_ref().unwrap();
        assert_eq!(b.asn, 100);
        assert!(b.pop_go);
        assert_eq!(b.networks[0].prefix.to_string(), "10.1.1.0/24");
        assert_eq!(b.networks[0].label, Some(48122));
        // And survives a round trip through to_toml.
        let again = Config::parse(&c.to_toml()).unwrap();
        assert_eq!(again.ports, c.ports);
        assert_eq!(again.bgp.unwrap().networks.len(), 1);
    }

    fn err_of(text: &str) -> String {
        Config::parse(text).unwrap_err().to_string()
    }

    fn replace(from: &str, to: &str) -> String {
        assert!(SEED.contains(from), "fixture lacks {from:?}");
        SEED.replacen(from, to, 1)
    }

    fn line_of(text: &str, needle: &str) -> usize {
        text[..text.find(needle).unwrap()].matches('\n').count() + 1
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let cases = [
            ("next_hop = \"192.168.20.1\"", "next_hop = \"192.168.99.1\"", "static_route.next_hop", "192.168.99.1"),
            ("label = 48122", "label = 15", "bgp.network.label", "label = 15"),
            ("label = 48122", "label = 1048576", "bgp.network.label", "label = 1048576"),
            ("mac = \"02:00:00:00:0c:0b\"", "mac = \"02:00:00:00:0c\"", "port.mac", "mac = \"02:00:00:00:0c\""),
            ("prefix = \"10.1.1.0/30\"", "prefix = \"10.1.1.1/30\"", "static_route.prefix", "prefix = \"10.1.1.1/30\""),
            ("prefix = \"10.1.1.0/30\"", "prefix = \"10.1.1.0/33\"", "static_route.prefix", "prefix = \"10.1.1.0/33\""),
            ("port = \"to-B\"", "port = \"to-X\"", "neighbor.port", "port = \"to-X\""),
            ("ttl_mode = \"uniform\"", "ttl_mode = \"short\"", "device.ttl_mode", "ttl_mode = \"short\""),
            ("label_mode = \"per-route\"", "label_mode = \"per-vrf\"", "bgp.label_mode", "label_mode = \"per-vrf\""),
            ("label_base = 48000", "label_base = 3", "bgp.label_base", "label_base = 3"),
            ("label_base = 48000", "label_base = 48000\nlisten = \"::1:179\"", "bgp.listen", "listen ="),
            ("label_base = 48000", "label_base = 48000\nlisten = \"192.0.2.1\"", "bgp.listen", "listen ="),
        ];
        for (from, to, key, at) in cases {
            let text = replace(from, to);
            let e = err_of(&text);
            let want = format!("line {}: {key}", line_of(&text, at));
            assert!(e.starts_with(&want), "{to}: got {e:?}, want prefix {want:?}");
        }
    }

    #[test]
    fn bgp_listen_address_round_trips() {
        let c =
            Config::parse(&replace("label_base = 48000", "label_base = 48000\nlisten = \"127.0.0.1:1790\"")).unwrap();
        assert_eq!(c.bgp.as_ref().unwrap().listen, Some("127.0.0.1:1790".parse().unwrap()));
        let again = Config::parse(&c.to_toml()).unwrap();
        assert_eq!(again.bgp.unwrap().listen, c.bgp.as_ref().unwrap().listen);
        assert_eq!(Config::parse(SEED).unwrap().bgp.unwrap().listen, None);
    }

    #[test]
    fn network_without_route_and_duplicate_labels() {
        let text = format!("{SEED}\n[[bgp.network]]\nprefix = \"10.9.0.0/16\"\n");
        let e = err_of(&text);
        assert!(e.contains("bgp.network") && e.contains("no static route for 10.9.0.0/16"), "{e}");
        assert!(e.starts_with(&format!("line {}", line_of(&text, "prefix = \"10.9.0.0/16\"") - 1)), "{e}");
        let text = format!("{SEED}\n[[bgp.network]]\nprefix = \"10.1.1.0/30\"\nlabel = 48122\n");
        assert!(err_of(&text).contains("duplicate label 48122"));
    }

    #[test]
    fn syntax_and_unknown_keys_are_reported_with_lines() {
        let e = err_of("[device]\nname = \"x\"\nbogus = 1\n");
        assert!(e.starts_with("line 3:"), "{e}");
        let e = err_of("[device\n");
        assert!(e.starts_with("line 1:"), "{e}");
    }

    #[test]
    fn prefixes() {
        assert_eq!(Prefix::parse("2001:db8::/32").unwrap().to_string(), "2001:db8::/32");
        assert!(Prefix::parse("2001:db8::1/32").unwrap_err().contains("host bits"));
        assert!(Prefix::parse("10.0.0.0").is_err());
        assert!(Prefix::parse("10.0.0.0/x").is_err());
        assert_eq!(Prefix::parse("0.0.0.0/0").unwrap().len, 0);
    }

    const PEERS: &str = "router_id = \"192.0.2.3\"\n\n[[bgp.peer]]\naddress = \"198.18.0.1\"\nas = 200\n\n\
                         [[bgp.peer]]\naddress = \"198.18.0.5\"\nas = 4200000000\nsource = \"198.18.0.6\"\n\
                         families = [\"ipv6-labeled-unicast\"]\n";

    fn with_peers(extra: &str) -> String {
        // The [bgp] table's keys come before its [[bgp.network]] tables.
        SEED.replacen(
            "label_base = 48000              # first label of the dynamic range (>= 16)\n",
            &format!("label_base = 48000\n{extra}"),
            1,
        )
    }

    #[test]
    fn peer_route_limit_parses_checks_and_round_trips() {
        let text = with_peers(&PEERS.replacen("as = 200\n", "as = 200\nroute_limit = \"1000 80 idle-timeout 5\"\n", 1));
        let c = Config::parse(&text).unwrap();
        let want = RouteLimit { limit: 1000, percent: 80, action: LimitAction::IdleTimeout(5) };
        assert_eq!(c.bgp.as_ref().unwrap().peers[0].route_limit, Some(want));
        let again = Config::parse(&c.to_toml()).unwrap();
        assert_eq!(again.bgp.unwrap().peers[0].route_limit, Some(want));
        let text = with_peers(&PEERS.replacen("as = 200\n", "as = 200\nroute_limit = \"1000 idle\"\n", 1));
        let e = err_of(&text);
        assert!(e.contains("bgp.peer.route_limit") && e.contains("usage"), "{e}");
    }

    #[test]
    fn peers_parse_check_and_round_trip() {
        let c = Config::parse(&with_peers(PEERS)).unwrap();
        let b = c.bgp.as_ref().unwrap();
        assert_eq!(b.router_id, Some("192.0.2.3".parse().unwrap()));
        assert_eq!(b.peers.len(), 2);
        assert_eq!((b.peers[0].asn, b.peers[0].families), (200, None));
        assert_eq!(b.peers[0].effective_families(false).iter().collect::<Vec<_>>(), vec![Family::Ipv4LabeledUnicast]);
        assert_eq!(b.peers[0].effective_families(true), Families::default_for(true));
        assert_eq!(b.peers[1].source, Some("198.18.0.6".parse().unwrap()));
        assert_eq!(b.peers[1].families.unwrap().iter().collect::<Vec<_>>(), vec![Family::Ipv6LabeledUnicast]);
        let again = Config::parse(&c.to_toml()).unwrap();
        assert_eq!(
            again
                .bgp
                .as_ref()
                .unwrap()
                .peers
                .iter()
                .map(|p| (p.address, p.asn, p.source, p.families))
                .collect::<Vec<_>>(),
            b.peers.iter().map(|p| (p.address, p.asn, p.source, p.families)).collect::<Vec<_>>()
        );
        assert_eq!(again.bgp.unwrap().router_id, b.router_id);

        let cases = [
            ("address = \"198.18.0.1\"", "address = \"2001:db8::1\"", "bgp.peer.address"),
            ("address = \"198.18.0.5\"", "address = \"198.18.0.1\"", "bgp.peer.address"),
            ("as = 200", "as = 0", "bgp.peer.as"),
            ("source = \"198.18.0.6\"", "source = \"x\"", "bgp.peer.source"),
            ("[\"ipv6-labeled-unicast\"]", "[\"ipv4-unicast\"]", "bgp.peer.families"),
            ("router_id = \"192.0.2.3\"", "router_id = \"0.0.0.0\"", "bgp.router_id"),
        ];
        for (from, to, key) in cases {
            let text = with_peers(&PEERS.replacen(from, to, 1));
            let e = err_of(&text);
            let at = if from.starts_with("address = \"198.18.0.5") {
                "address = \"198.18.0.1\"\nas = 4200000000"
            } else {
                to
            };
            let want = format!("line {}: {key}", line_of(&text, at));
            assert!(e.starts_with(&want), "{to}: got {e:?}, want {want:?}");
        }
    }

    #[test]
    fn device_names_that_would_break_prompts_are_refused() {
        // TOML escapes: a newline and a BEL inside the quoted name.
        for bad in ["", "Device\\nC", "Device C", "x\\u0007"] {
            let text = SEED.replacen("name = \"DeviceC\"", &format!("name = \"{bad}\""), 1);
            let e = Config::parse(&text).unwrap_err().to_string();
            assert!(e.contains("device.name") && e.contains("line 5"), "{bad:?}: {e}");
        }
    }
}

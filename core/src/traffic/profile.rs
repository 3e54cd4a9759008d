//! Traffic profiles: a small TOML description of synthetic MPLS traffic, turned into
//! frames (for `popgo gen profile` and `popgo bench --profile`) and into the config that
//! forwards them with POPGO. [`Profile::generate`] is the one traffic generator: `popgo
//! gen synth` is a built-in profile (see [`Synth`](super::synth::Synth)).
//!
//! Tools only: allocates freely, never used on the data path. Generation is
//! deterministic: the same profile (and seed) gives the same bytes.
//!
//! ```toml
//! seed = 1
//! packets = 100000            # or duration_s = 2.0 (packets = duration_s * rate_pps)
//! rate_pps = 1000000          # capture timestamps: packet i at i / rate_pps
//! size = "imix"               # 64 | [64, 512, 1500] | "imix" (7:4:1 of 64/570/1518)
//! ipv6_share = 0.2
//! flows = 4096                # distinct flows, >= labels.count
//! malformed_share = 0.01
//!
//! [labels]
//! count = 1000
//! first = 16
//! dist = "zipf"               # single | uniform | zipf
//! zipf_exponent = 1.1
//! depth = 1                   # the BGP label + depth-1 labels below it
//! explicit_null_share = 0.05
//! entropy_share = 0.1         # ELI + entropy label below the BGP label (RFC 6790)
//!
//! [vlan]
//! share = 0.5
//! tags = 1                    # 1 = 802.1Q, 2 = 802.1ad + 802.1Q
//! ```
//!
//! Frame sizes count the Ethernet header through the payload, without FCS (what a
//! capture holds). A size too small for a frame's headers is raised to the minimum.

use super::dist::{LabelDist, Rng};
use super::frames::{frame, EPOCH_NS};
use super::synth::{synth_v4_dst, synth_v6_dst};
use crate::wire::ethernet::{Mac, ETHERTYPE_MPLS, ETHERTYPE_QINQ, ETHERTYPE_VLAN};
use crate::wire::mpls::{LABEL_ELI, LABEL_IPV4_EXPLICIT_NULL, LABEL_IPV6_EXPLICIT_NULL, LABEL_MAX};
use etherparse::PacketBuilder;
use serde::Deserialize;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// Most packets one profile may describe (about 5 GB of 64-byte frames in memory
/// would not be a benchmark any more).
pub const MAX_PACKETS: u64 = 50_000_000;
/// Largest frame: popgo's packet buffers hold 2 KiB.
pub const MAX_FRAME_BYTES: usize = crate::io::mem::FRAME_DATA_BYTES;
/// IMIX (the simple 7:4:1 mix): frame sizes and weights.
pub const IMIX: [(usize, u32); 3] = [(64, 7), (570, 4), (1518, 1)];
/// Labels below the BGP label (stack depth > 1) start here.
pub const INNER_LABEL_BASE: u32 = 1000;
/// Ports and next hops in the generated config.
const CONFIG_PORTS: usize = 4;
const CONFIG_NEIGHBORS: usize = 16;
/// Source and destination MACs of generated frames.
const SRC_MAC: Mac = super::frames::SEED_SRC_MAC;
const DST_MAC: Mac = super::frames::SEED_DST_MAC;

/// A profile that could not be read or makes no sense.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read {path}")]
    Io { path: String, source: std::io::Error },
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    #[error("`{key}`: {msg}")]
    Invalid { key: &'static str, msg: String },
}

fn invalid(key: &'static str, msg: impl Into<String>) -> ProfileError {
    ProfileError::Invalid { key, msg: msg.into() }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: Option<String>,
    seed: Option<u64>,
    packets: Option<u64>,
    duration_s: Option<f64>,
    rate_pps: Option<f64>,
    size: Option<toml::Value>,
    ipv6_share: Option<f64>,
    flows: Option<u64>,
    malformed_share: Option<f64>,
    #[serde(default)]
    labels: RawLabels,
    #[serde(default)]
    vlan: RawVlan,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLabels {
    count: Option<u32>,
    first: Option<u32>,
    dist: Option<String>,
    zipf_exponent: Option<f64>,
    depth: Option<usize>,
    explicit_null_share: Option<f64>,
    entropy_share: Option<f64>,
    transport_label: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawVlan {
    share: Option<f64>,
    tags: Option<usize>,
}

/// Frame sizes of a profile.
#[derive(Clone, Debug, PartialEq)]
pub enum SizeMix {
    Fixed(usize),
    /// Each frame picks one of these, uniformly.
    List(Vec<usize>),
    /// 7:4:1 of 64/570/1518 bytes.
    Imix,
}

/// Which random draws a packet takes, and in which order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Draws {
    /// Every draw for every packet, in one order (malformed, malformed kind, IPv6, VLAN,
    /// explicit null, entropy, label rank, flow, size), so changing one share does not
    /// reshuffle the others. Profiles read from TOML.
    #[default]
    Every,
    /// The label rank first, then, in the same order, only the draws of what the
    /// profile uses: a share above 0 (the malformed kind with the malformed share), more
    /// flows than labels, a list of more than one size, IMIX.
    Used,
}

/// Where packets come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sources {
    /// Flow f: source address index f / 60000 (172.16.x.y, `2001:db8:d::<index>`) and
    /// UDP source port 1024 + f % 60000, distinct for every flow.
    #[default]
    PerFlow,
    /// Every packet from source address index 1 (172.16.0.1, 2001:db8:d::1), UDP
    /// source port 40000.
    Fixed,
}

/// A checked traffic profile.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub name: String,
    pub seed: u64,
    pub packets: u64,
    pub rate_pps: f64,
    pub size: SizeMix,
    pub ipv6_share: f64,
    pub flows: u64,
    pub malformed_share: f64,
    pub label_count: u32,
    pub first_label: u32,
    pub dist: LabelDist,
    pub depth: usize,
    pub explicit_null_share: f64,
    pub entropy_share: f64,
    /// The egress's own transport label on top of every well-formed frame (a static
    /// egress LSP in [`Profile::config`]), or none.
    pub transport_label: Option<u32>,
    pub vlan_share: f64,
    pub vlan_tags: usize,
    /// [`Draws::Every`] for a profile read from TOML ([`Draws::Used`] for `gen synth`).
    pub draws: Draws,
    /// [`Sources::PerFlow`] for a profile read from TOML ([`Sources::Fixed`] for `gen synth`).
    pub sources: Sources,
}

/// What a generated profile contains (counted while generating).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub packets: u64,
    pub bytes: u64,
    pub ipv4: u64,
    pub ipv6: u64,
    pub vlan_tagged: u64,
    pub explicit_null: u64,
    pub entropy: u64,
    /// Malformed frames by kind: runt, truncated label stack, control word under BoS.
    pub runt: u64,
    pub truncated_stack: u64,
    pub bad_payload: u64,
    /// Frames raised to the minimum size for their headers.
    pub raised: u64,
}

impl Summary {
    pub fn malformed(&self) -> u64 {
        self.runt + self.truncated_stack + self.bad_payload
    }
}

fn share(key: &'static str, v: Option<f64>) -> Result<f64, ProfileError> {
    let v = v.unwrap_or(0.0);
    if !(0.0..=1.0).contains(&v) {
        return Err(invalid(key, format!("{v} is not a share in 0..=1")));
    }
    Ok(v)
}

fn frame_size(key: &'static str, v: &toml::Value) -> Result<usize, ProfileError> {
    match v.as_integer() {
        Some(n) if (14..=MAX_FRAME_BYTES as i64).contains(&n) => Ok(n as usize),
        Some(n) => Err(invalid(key, format!("frame size {n} is not in 14..={MAX_FRAME_BYTES}"))),
        None => Err(invalid(key, format!("{v} is not a frame size, a list of sizes or \"imix\""))),
    }
}

/// Checks a transport label for traffic whose service labels are `first ..` (`count` of
/// them, twice that with IPv6): 16..=1048575 and outside the service labels.
pub fn check_transport_label(t: u32, first: u32, count: u32, v6: bool) -> Result<u32, String> {
    let end = first as u64 + count as u64 * if v6 { 2 } else { 1 };
    if !(16..=crate::wire::mpls::LABEL_MAX).contains(&t) {
        return Err(format!("{t} is outside 16..=1048575"));
    }
    if (first as u64..end).contains(&(t as u64)) {
        return Err(format!("{t} is one of the service labels {first}..{end}"));
    }
    Ok(t)
}

/// The `[mpls]` section that makes `t` this device's own transport label (a static
/// egress LSP), for generated configs.
pub fn transport_toml(t: u32) -> String {
    format!("\n[mpls]\nlsr_id = \"10.255.255.255\"\n\n[[mpls.static_lsp]]\nname = \"transport\"\nin_label = {t}\n")
}

impl Profile {
    /// Reads and checks a profile file.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ProfileError::Io { path: path.display().to_string(), source })?;
        Profile::parse(&text)
    }

    /// Parses and checks a profile. Errors name the key (and, for syntax, the line).
    pub fn parse(text: &str) -> Result<Profile, ProfileError> {
        let raw: Raw = toml::from_str(text)?;
        let rate_pps = raw.rate_pps.unwrap_or(1e6);
        if !(rate_pps.is_finite() && rate_pps > 0.0) {
            return Err(invalid("rate_pps", format!("{rate_pps} is not a positive rate")));
        }
        let packets = match (raw.packets, raw.duration_s) {
            (Some(_), Some(_)) => return Err(invalid("packets", "give packets or duration_s, not both")),
            (Some(n), None) => n,
            (None, Some(d)) if d.is_finite() && d > 0.0 => (d * rate_pps).ceil() as u64,
            (None, Some(d)) => return Err(invalid("duration_s", format!("{d} is not a positive duration"))),
            (None, None) => 100_000,
        };
        if packets == 0 || packets > MAX_PACKETS {
            // The key the user wrote: duration_s (at rate_pps) when packets is not given.
            let key = if raw.packets.is_none() { "duration_s" } else { "packets" };
            return Err(invalid(key, format!("{packets} packets is not in 1..={MAX_PACKETS}")));
        }
        let size = match &raw.size {
            None => SizeMix::Fixed(64),
            Some(toml::Value::String(s)) if s.eq_ignore_ascii_case("imix") => SizeMix::Imix,
            Some(toml::Value::Array(a)) if !a.is_empty() => {
                SizeMix::List(a.iter().map(|v| frame_size("size", v)).collect::<Result<_, _>>()?)
            }
            Some(v) => SizeMix::Fixed(frame_size("size", v)?),
        };
        let l = &raw.labels;
        let label_count = l.count.unwrap_or(1000);
        let first_label = l.first.unwrap_or(16);
        let ipv6_share = share("ipv6_share", raw.ipv6_share)?;
        let blocks = if ipv6_share > 0.0 { 2 } else { 1 };
        if label_count == 0 {
            return Err(invalid("labels.count", "must be at least 1"));
        }
        if first_label < 16 || first_label as u64 + blocks * label_count as u64 > LABEL_MAX as u64 + 1 {
            // `labels.first` when it is the one out of range or was given; otherwise the
            // count (with the default first label) is too big.
            let key = if first_label < 16 || l.first.is_some() { "labels.first" } else { "labels.count" };
            return Err(invalid(
                key,
                format!(
                    "labels {first_label}..{} do not fit 16..=1048575{}",
                    first_label as u64 + blocks * label_count as u64,
                    if blocks == 2 { " (IPv6 traffic uses a second block of labels.count labels)" } else { "" }
                ),
            ));
        }
        let dist = match (l.dist.as_deref().unwrap_or("uniform"), l.zipf_exponent) {
            ("single", None) => LabelDist::Single,
            ("uniform", None) => LabelDist::Uniform,
            ("zipf", s) => {
                let s = s.unwrap_or(1.0);
                if !(s.is_finite() && s > 0.0) {
                    return Err(invalid("labels.zipf_exponent", format!("{s} is not a positive exponent")));
                }
                LabelDist::Zipf(s)
            }
            ("single" | "uniform", Some(_)) => {
                return Err(invalid("labels.zipf_exponent", "only applies to dist = \"zipf\""))
            }
            (d, _) => return Err(invalid("labels.dist", format!("{d:?} is not single, uniform or zipf"))),
        };
        let depth = l.depth.unwrap_or(1);
        if !(1..=6).contains(&depth) {
            return Err(invalid("labels.depth", format!("{depth} is not in 1..=6")));
        }
        let flows = raw.flows.unwrap_or(label_count as u64);
        if flows < label_count as u64 || flows > 1 << 32 {
            return Err(invalid(
                "flows",
                format!("{flows} flows: need at least one per label ({label_count}) and at most 2^32"),
            ));
        }
        let vlan_tags = raw.vlan.tags.unwrap_or(1);
        if !(1..=2).contains(&vlan_tags) {
            return Err(invalid("vlan.tags", format!("{vlan_tags} is not 1 (802.1Q) or 2 (802.1ad + 802.1Q)")));
        }
        Ok(Profile {
            name: raw.name.unwrap_or_else(|| "profile".into()),
            seed: raw.seed.unwrap_or(1),
            packets,
            rate_pps,
            size,
            ipv6_share,
            flows,
            malformed_share: share("malformed_share", raw.malformed_share)?,
            label_count,
            first_label,
            dist,
            depth,
            explicit_null_share: share("labels.explicit_null_share", l.explicit_null_share)?,
            entropy_share: share("labels.entropy_share", l.entropy_share)?,
            transport_label: match l.transport_label {
                None => None,
                Some(t) => Some(
                    check_transport_label(t, first_label, label_count, ipv6_share > 0.0)
                        .map_err(|m| invalid("labels.transport_label", m))?,
                ),
            },
            vlan_share: share("vlan.share", raw.vlan.share)?,
            vlan_tags,
            draws: Draws::Every,
            sources: Sources::PerFlow,
        })
    }

    /// The label of rank `rank` (0-based) for IPv4 or IPv6 traffic. IPv6 traffic uses a
    /// second block of `label_count` labels right after the IPv4 block, because a BGP
    /// label is bound to a prefix of one family.
    pub fn label(&self, rank: u32, v6: bool) -> u32 {
        self.first_label + rank + if v6 { self.label_count } else { 0 }
    }

    /// Generates every frame, calling `out(timestamp_ns, frame)`.
    pub fn generate(&self, mut out: impl FnMut(u64, &[u8])) -> Summary {
        let mut rng = Rng::new(self.seed);
        let ranks = self.dist.sampler(self.label_count);
        let every = self.draws == Draws::Every;
        // A coin flip with probability `share`; under `Draws::Used` a share of 0 takes
        // no draw.
        let coin = |rng: &mut Rng, share: f64| (every || share > 0.0) && rng.unit() < share;
        let step_ns = whole_step_ns(self.rate_pps);
        let mut sum = Summary::default();
        let mut labels: Vec<(u32, u8)> = Vec::with_capacity(12);
        let mut payload = Vec::with_capacity(MAX_FRAME_BYTES);
        for i in 0..self.packets {
            let ts = EPOCH_NS
                + match step_ns {
                    Some(step) => i * step,
                    None => (i as f64 * 1e9 / self.rate_pps) as u64,
                };
            // Under `Draws::Every`, every draw happens for every packet, so changing one
            // share does not reshuffle the others.
            let first_rank = (!every).then(|| ranks.sample(&mut rng));
            let malformed = coin(&mut rng, self.malformed_share);
            let malformed_kind = if every || self.malformed_share > 0.0 { rng.below(3) } else { 0 };
            let v6 = coin(&mut rng, self.ipv6_share);
            let vlan = coin(&mut rng, self.vlan_share);
            let null = coin(&mut rng, self.explicit_null_share);
            let entropy = coin(&mut rng, self.entropy_share);
            let rank = first_rank.unwrap_or_else(|| ranks.sample(&mut rng));
            // Flow f carries label rank f % count: pick one of this rank's flows.
            let per_rank = (self.flows - rank as u64).div_ceil(self.label_count as u64);
            let pick = if every || self.flows > self.label_count as u64 { rng.below(per_rank) } else { 0 };
            let flow = rank as u64 + pick * self.label_count as u64;
            let want = match &self.size {
                SizeMix::Fixed(s) => *s,
                SizeMix::List(v) if every || v.len() > 1 => v[rng.below(v.len() as u64) as usize],
                SizeMix::List(v) => v[0],
                SizeMix::Imix => {
                    let mut k = rng.below(12) as u32;
                    let mut s = IMIX[0].0;
                    for (size, w) in IMIX {
                        if k < w {
                            s = size;
                            break;
                        }
                        k -= w;
                    }
                    s
                }
            };
            let label = self.label(rank, v6);
            let tags: &[u16] = match (vlan, self.vlan_tags) {
                (false, _) => &[],
                (true, 1) => &[ETHERTYPE_VLAN],
                (true, _) => &[ETHERTYPE_QINQ, ETHERTYPE_VLAN],
            };
            sum.packets += 1;
            if malformed {
                let f = match malformed_kind {
                    0 => {
                        sum.runt += 1;
                        frame(DST_MAC, SRC_MAC, &[], ETHERTYPE_MPLS, &[], &[])[..10].to_vec()
                    }
                    1 => {
                        // Three bytes of a label entry: the stack runs past the end.
                        sum.truncated_stack += 1;
                        frame(DST_MAC, SRC_MAC, tags, ETHERTYPE_MPLS, &[], &label.to_be_bytes()[1..])
                    }
                    _ => {
                        // A pseudowire control word (first nibble 0) under the bottom of
                        // stack: not IP, whatever the label's family.
                        sum.bad_payload += 1;
                        let hdr = 14 + 4 * tags.len() + 4;
                        payload.clear();
                        payload.resize(want.max(hdr + 4) - hdr, 0);
                        frame(DST_MAC, SRC_MAC, tags, ETHERTYPE_MPLS, &[(label, 64)], &payload)
                    }
                };
                sum.bytes += f.len() as u64;
                out(ts, &f);
                continue;
            }
            labels.clear();
            if let Some(t) = self.transport_label {
                labels.push((t, 64));
            }
            if null {
                let n = if v6 { LABEL_IPV6_EXPLICIT_NULL } else { LABEL_IPV4_EXPLICIT_NULL };
                labels.push((n, 64));
                sum.explicit_null += 1;
            }
            labels.push((label, 64));
            if entropy {
                labels.push((LABEL_ELI, 64));
                labels.push((16 + (mix64(flow ^ self.seed) % (LABEL_MAX as u64 - 15)) as u32, 64));
                sum.entropy += 1;
            }
            for k in 1..self.depth {
                labels.push((INNER_LABEL_BASE + k as u32, 64));
            }
            let hdr = 14 + 4 * tags.len() + 4 * labels.len();
            let min_ip = if v6 { 48 } else { 28 };
            if want < hdr + min_ip {
                sum.raised += 1;
            }
            let ip_len = want.max(hdr + min_ip) - hdr;
            let (src_idx, sport) = match self.sources {
                Sources::PerFlow => ((flow / 60_000) as u32, 1024 + (flow % 60_000) as u16),
                Sources::Fixed => (1, 40_000),
            };
            let ip = if v6 {
                sum.ipv6 += 1;
                let src = Ipv6Addr::from(0x2001_0db8_000d_0000_0000_0000_0000_0000u128 | src_idx as u128);
                udp(PacketBuilder::ipv6(src.octets(), synth_v6_dst(label).octets(), 64), sport, ip_len - 40)
            } else {
                sum.ipv4 += 1;
                let src = Ipv4Addr::from(0xac10_0000 | (src_idx & 0xffff));
                udp(PacketBuilder::ipv4(src.octets(), synth_v4_dst(label).octets(), 64), sport, ip_len - 20)
            };
            if vlan {
                sum.vlan_tagged += 1;
            }
            let f = frame(DST_MAC, SRC_MAC, tags, ETHERTYPE_MPLS, &labels, &ip);
            sum.bytes += f.len() as u64;
            out(ts, &f);
        }
        sum
    }

    /// The whole profile as an in-memory classic pcap.
    pub fn to_pcap(&self) -> (Vec<u8>, Summary) {
        let mut w = crate::io::pcap::Writer::new(Vec::new()).expect("writing to a Vec cannot fail");
        let sum = self.generate(|ts, f| w.write_packet(ts, f).expect("frames fit the snaplen, timestamps fit"));
        (w.into_inner().expect("writing to a Vec cannot fail"), sum)
    }

    /// A popgo config that forwards every label of the profile with POPGO: one /32
    /// (and, with IPv6 traffic, one /128) network per label, spread over 16 next hops
    /// on 4 ports.
    pub fn config(&self) -> String {
        use std::fmt::Write;
        let v6 = self.ipv6_share > 0.0;
        let mut s = format!("# generated by popgo from traffic profile {:?}\n[device]\nname = \"bench\"\n", self.name);
        for p in 0..CONFIG_PORTS {
            let _ = writeln!(s, "\n[[port]]\nname = \"p{p}\"\nmac = \"02:00:00:00:00:{:02x}\"", 0xf0 + p);
        }
        for n in 0..CONFIG_NEIGHBORS {
            let port = n % CONFIG_PORTS;
            let _ = writeln!(
                s,
                "\n[[neighbor]]\nip = \"192.168.{n}.1\"\nmac = \"02:00:00:00:{n:02x}:01\"\nport = \"p{port}\""
            );
            if v6 {
                let _ = writeln!(
                    s,
                    "\n[[neighbor]]\nip = \"fd00::{n:x}:1\"\nmac = \"02:00:00:01:{n:02x}:01\"\nport = \"p{port}\""
                );
            }
        }
        for r in 0..self.label_count {
            let n = r as usize % CONFIG_NEIGHBORS;
            let l = self.label(r, false);
            let _ =
                writeln!(s, "\n[[static_route]]\nprefix = \"{}/32\"\nnext_hop = \"192.168.{n}.1\"", synth_v4_dst(l));
            if v6 {
                let l6 = self.label(r, true);
                let _ = writeln!(
                    s,
                    "\n[[static_route]]\nprefix = \"{}/128\"\nnext_hop = \"fd00::{n:x}:1\"",
                    synth_v6_dst(l6)
                );
            }
        }
        if let Some(t) = self.transport_label {
            s.push_str(&transport_toml(t));
        }
        let _ = writeln!(s, "\n[bgp]\nas = 100\nlabel_mode = \"per-route\"\npop_go = true\nlabel_base = 16");
        for r in 0..self.label_count {
            let l = self.label(r, false);
            let _ = writeln!(s, "\n[[bgp.network]]\nprefix = \"{}/32\"\nlabel = {l}", synth_v4_dst(l));
            if v6 {
                let l6 = self.label(r, true);
                let _ = writeln!(s, "\n[[bgp.network]]\nprefix = \"{}/128\"\nlabel = {l6}", synth_v6_dst(l6));
            }
        }
        s
    }
}

/// A UDP packet (from `sport` to port 9) with `udp_len` bytes of UDP header + payload.
fn udp(b: etherparse::PacketBuilderStep<etherparse::IpHeaders>, sport: u16, udp_len: usize) -> Vec<u8> {
    let payload = vec![0x5a; udp_len.saturating_sub(8)];
    let b = b.udp(sport, 9);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, &payload).expect("writing to a Vec cannot fail");
    out
}

/// A 64-bit mix (splitmix64 finaliser): entropy label values from flow numbers.
fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The gap between packets at `rate_pps` when it is a whole number of nanoseconds (the
/// rate divides 10^9): timestamps are then computed in integers, exact for any packet
/// count. For fewer than 4.6e9 packets (2^53 / 1953125, the odd part of 10^9) this gives
/// the same timestamps as the floating-point formula used otherwise, `i * 1e9 / rate`,
/// whose product and quotient are then exact.
fn whole_step_ns(rate_pps: f64) -> Option<u64> {
    const NS_PER_S: u64 = 1_000_000_000;
    if !(1.0..=NS_PER_S as f64).contains(&rate_pps) || rate_pps.fract() != 0.0 {
        return None;
    }
    let rate = rate_pps as u64;
    NS_PER_S.is_multiple_of(rate).then_some(NS_PER_S / rate)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wire::mpls::LabelStack;
    use etherparse::{Ethernet2Header, NetSlice, SingleVlanHeader, SlicedPacket, TransportSlice};
    use std::collections::{HashMap, HashSet};

    /// What a frame turned out to be, read back with etherparse (Ethernet, VLAN, IP,
    /// UDP) and popgo's own label-stack view (etherparse has no MPLS).
    #[derive(Debug, Default)]
    struct Seen {
        len: usize,
        tags: Vec<u16>,
        labels: Vec<u32>,
        v6: bool,
        flow: (Vec<u8>, u16),
        malformed: bool,
    }

    fn read(f: &[u8]) -> Seen {
        let mut s = Seen { len: f.len(), ..Seen::default() };
        let Ok((eth, mut rest)) = Ethernet2Header::from_slice(f) else {
            s.malformed = true;
            return s;
        };
        let mut et = eth.ether_type.0;
        while et == ETHERTYPE_VLAN || et == ETHERTYPE_QINQ {
            s.tags.push(et);
            let (v, r) = SingleVlanHeader::from_slice(rest).expect("whole VLAN tag");
            assert_eq!(v.vlan_id.value(), 100);
            et = v.ether_type.0;
            rest = r;
        }
        assert_eq!(et, ETHERTYPE_MPLS);
        let Ok(stack) = LabelStack::new_checked(rest) else {
            s.malformed = true;
            return s;
        };
        s.labels = stack.entries().map(|e| e.label()).collect();
        match SlicedPacket::from_ip(stack.payload()) {
            Ok(p) => {
                let src = match p.net {
                    Some(NetSlice::Ipv4(ip)) => ip.header().source().to_vec(),
                    Some(NetSlice::Ipv6(ip)) => {
                        s.v6 = true;
                        ip.header().source().to_vec()
                    }
                    other => panic!("{other:?}"),
                };
                let Some(TransportSlice::Udp(u)) = p.transport else { panic!("not UDP") };
                assert_eq!(u.destination_port(), 9);
                // The flow: the source address index (its low 16 bits) and port.
                s.flow = (src[src.len() - 2..].to_vec(), u.source_port());
            }
            Err(_) => s.malformed = true,
        }
        s
    }

    pub(crate) const FULL: &str = r#"
        name = "full"
        seed = 7
        packets = 20000
        size = "imix"
        ipv6_share = 0.25
        flows = 3000
        malformed_share = 0.02
        [labels]
        count = 1000
        first = 100
        dist = "zipf"
        zipf_exponent = 1.1
        depth = 2
        explicit_null_share = 0.1
        entropy_share = 0.2
        [vlan]
        share = 0.3
        tags = 2
    "#;

    fn near(got: u64, of: u64, share: f64, what: &str) {
        let x = got as f64 / of as f64;
        assert!((x - share).abs() < 0.015, "{what}: {got}/{of} = {x:.3}, want {share}");
    }

    #[test]
    fn frames_are_what_the_profile_describes() {
        let p = Profile::parse(FULL).unwrap();
        let mut frames = Vec::new();
        let sum = p.generate(|ts, f| frames.push((ts, f.to_vec())));
        assert_eq!(frames.len(), 20000);
        assert_eq!(sum.packets, 20000);
        let (mut v6, mut vlan, mut null, mut el, mut bad, mut rank1) = (0, 0, 0, 0, 0, 0);
        let mut flows = HashSet::new();
        let mut sizes: HashMap<usize, u64> = HashMap::new();
        for (i, (ts, f)) in frames.iter().enumerate() {
            assert_eq!(*ts, EPOCH_NS + i as u64 * 1000, "1 Mpps timestamps");
            let s = read(f);
            if s.malformed {
                bad += 1;
                continue;
            }
            *sizes.entry(s.len).or_default() += 1;
            v6 += s.v6 as u64;
            if !s.tags.is_empty() {
                assert_eq!(s.tags, [ETHERTYPE_QINQ, ETHERTYPE_VLAN]);
                vlan += 1;
            }
            let mut l = s.labels.as_slice();
            if l[0] == LABEL_IPV4_EXPLICIT_NULL || l[0] == LABEL_IPV6_EXPLICIT_NULL {
                assert_eq!(l[0] == LABEL_IPV6_EXPLICIT_NULL, s.v6, "explicit null of the payload's family");
                null += 1;
                l = &l[1..];
            }
            // The BGP label: IPv4 block 100..1100, IPv6 block 1100..2100.
            let base = if s.v6 { 1100 } else { 100 };
            assert!((base..base + 1000).contains(&l[0]), "{l:?}");
            rank1 += (l[0] == base) as u64;
            l = &l[1..];
            if l.first() == Some(&LABEL_ELI) {
                assert!(l[1] >= 16, "entropy label {}", l[1]);
                el += 1;
                l = &l[2..];
            }
            assert_eq!(l, [INNER_LABEL_BASE + 1], "depth 2: one label below");
            flows.insert(s.flow);
        }
        let good = 20000 - bad;
        near(bad, 20000, 0.02, "malformed");
        assert_eq!(bad, sum.malformed());
        near(v6, good, 0.25, "IPv6");
        near(vlan, good, 0.3, "VLAN");
        near(null, good, 0.1, "explicit null");
        near(el, good, 0.2, "entropy");
        assert_eq!((v6, null, el), (sum.ipv6, sum.explicit_null, sum.entropy));
        // Zipf 1.1 over 1000 ranks: rank 1 carries 1/H(1000, 1.1) = 17.9%.
        near(rank1, good, 0.179, "zipf rank 1");
        assert!(flows.len() <= 3000 && flows.len() > 1500, "{} flows", flows.len());
        // IMIX sizes; small frames with deep headers are raised to their minimum.
        assert!(sizes.keys().all(|s| *s == 570 || *s == 1518 || (64..=150).contains(s)), "{sizes:?}");
        let n = |s| sizes.get(&s).copied().unwrap_or(0);
        let small: u64 = sizes.iter().filter(|(k, _)| **k < 570).map(|(_, v)| v).sum();
        near(small, good, 7.0 / 12.0, "IMIX 64");
        near(n(570), good, 4.0 / 12.0, "IMIX 570");
        near(n(1518), good, 1.0 / 12.0, "IMIX 1518");
    }

    #[test]
    fn simple_profiles_sizes_durations_and_determinism() {
        let p = Profile::parse(
            "duration_s = 0.5\nrate_pps = 1000\nsize = [64, 200]\n[labels]\ncount = 1\ndist = \"single\"",
        )
        .unwrap();
        assert_eq!(p.packets, 500);
        let mut seen = Vec::new();
        p.generate(|ts, f| seen.push((ts, f.to_vec())));
        assert_eq!(seen[1].0 - seen[0].0, 1_000_000, "1 ms apart at 1000 pps");
        assert!(seen.iter().all(|(_, f)| f.len() == 64 || f.len() == 200));
        assert!(seen.iter().all(|(_, f)| read(f).labels == [16]));
        let again: Vec<_> = {
            let mut v = Vec::new();
            p.generate(|ts, f| v.push((ts, f.to_vec())));
            v
        };
        assert_eq!(seen, again, "deterministic");
        let fixed = Profile::parse("packets = 10\nsize = 1000").unwrap();
        fixed.generate(|_, f| assert_eq!(f.len(), 1000));
        assert_eq!(Profile::parse("").unwrap().packets, 100_000);
    }

    #[test]
    fn bad_profiles_name_the_key() {
        for (text, key) in [
            ("packets = 0", "packets"),
            ("packets = 1\nduration_s = 1.0", "packets"),
            ("duration_s = -1.0", "duration_s"),
            ("rate_pps = 0.0", "rate_pps"),
            ("size = []", "size"),
            ("size = [64, 5000]", "size"),
            ("size = \"jumbo\"", "size"),
            ("malformed_share = -0.1", "malformed_share"),
            ("[labels]\ncount = 0", "labels.count"),
            ("[labels]\nfirst = 3", "labels.first"),
            ("ipv6_share = 0.5\n[labels]\nfirst = 1000000\ncount = 40000", "labels.first"),
            ("[labels]\ndist = \"uniform\"\nzipf_exponent = 1.0", "labels.zipf_exponent"),
            ("[labels]\ndist = \"zipf\"\nzipf_exponent = 0.0", "labels.zipf_exponent"),
            ("[labels]\ndepth = 9", "labels.depth"),
            ("[labels]\nentropy_share = 2.0", "labels.entropy_share"),
            ("[vlan]\ntags = 3", "vlan.tags"),
            ("flows = 10\n[labels]\ncount = 20", "flows"),
            ("duration_s = 1e9", "duration_s"),
            ("packets = 2000000000000", "packets"),
            ("[labels]\ncount = 2000000", "labels.count"),
        ] {
            let e = Profile::parse(text).unwrap_err().to_string();
            assert!(e.starts_with(&format!("`{key}`")), "{text:?}: {e}");
        }
        assert!(Profile::parse("packet = 3").unwrap_err().to_string().contains("unknown field `packet`"));
        assert!(Profile::parse("[labels\n").unwrap_err().to_string().contains("line 1"));
    }

    /// FNV-1a over every (timestamp, frame) a generator gives: pins generated bytes.
    pub(in crate::traffic) fn fingerprint(generate: impl FnOnce(&mut dyn FnMut(u64, &[u8]))) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        generate(&mut |ts, f| {
            for b in ts.to_le_bytes().iter().chain(f) {
                h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
            }
        });
        h
    }

    /// Captures generated from these profiles by earlier builds are compared with new
    /// ones: their bytes stay fixed.
    #[test]
    fn generated_bytes_are_pinned() {
        // The profile of the `popgo bench` end-to-end test.
        const BENCH: &str = "name = \"test\"\npackets = 3000\nsize = [64, 128, 256]\nipv6_share = 0.3\n\
            malformed_share = 0.05\n[labels]\ncount = 50\ndist = \"zipf\"\nentropy_share = 0.2\n[vlan]\nshare = 0.5\n";
        const SIMPLE: &str =
            "duration_s = 0.5\nrate_pps = 1000\nsize = [64, 200]\n[labels]\ncount = 1\ndist = \"single\"";
        for (text, want) in
            [(FULL, 0x1ff3_cb17_1857_461d), (BENCH, 0x3cc9_9d64_9a38_850a), (SIMPLE, 0xbb81_2192_71f2_0c5a)]
        {
            let p = Profile::parse(text).unwrap();
            let got = fingerprint(|out| {
                p.generate(out);
            });
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn whole_steps_match_the_floating_point_timestamps() {
        assert_eq!(whole_step_ns(1e6), Some(1000));
        assert_eq!(whole_step_ns(3e6), None);
        assert_eq!(whole_step_ns(0.5), None);
        assert_eq!(whole_step_ns(2e9), None);
        for rate in [1.0, 1000.0, 1e6, 1.25e8, 1e9] {
            let step = whole_step_ns(rate).unwrap();
            for i in [0u64, 1, 7, 49_999_999, 4_000_000_000] {
                assert_eq!(i * step, (i as f64 * 1e9 / rate) as u64, "rate {rate}, packet {i}");
            }
        }
    }
}

//! MRT RIB dumps (`[bgp] mrt = "FILE"`): the prefixes of a real BGP table as labelled
//! routes.
//!
//! The file is an MRT TABLE_DUMP_V2 RIB dump (RFC 6396 section 4.3, with the RFC 8050
//! ADD-PATH subtypes), plain, gzip or bzip2 (told by the first bytes, not the name):
//! RouteViews `rib.*.bz2`, RIPE RIS `bview.*.gz`, `bgpdump`-compatible exports. Only the
//! PEER_INDEX_TABLE and the IPv4 and IPv6 unicast RIB records are read; multicast and
//! RIB_GENERIC records are skipped, any other record type is an error (an updates file
//! is not a RIB).
//!
//! Each unicast prefix becomes a route and a network, as a line of a route table file
//! without a label: `ip route-static PREFIX NH` plus `network PREFIX`, in dump order
//! after the config's and the table file's. The dump's next hops belong to the
//! collector's peers, not to this device, so they are not used: the next hop is one of
//! the config's neighbors of the prefix's family (or of `mrt_neighbors`), picked by a
//! hash of the prefix ([`spread`]), the same for a prefix in every dump. Which entry of
//! a prefix is read therefore only decides whether the prefix is there: with
//! `mrt_peer`, the prefixes that peer has an entry for; without, every prefix.
//! A prefix the config already routes (a static route or a network, from the TOML or
//! the table file) keeps the config's route and is skipped, as is a prefix seen twice.
//!
//! The reader is this module's own, not an MRT crate's: it needs the prefix and the
//! peer index of each entry and skips the attributes, where a general parser decodes
//! every attribute of every entry (a RouteViews dump has 30 to 60 entries per prefix).
//! It streams: one record in memory at a time. An error names the record (1-based) and
//! its byte offset in the (decompressed) data; bad input is an error, never a panic.

use super::{FastSet, Neighbor, Network, Prefix, StaticRoute};
use std::io::{BufRead, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// MRT types (RFC 6396 section 4; the IANA "MRT Types" registry).
const TABLE_DUMP: u16 = 12;
const TABLE_DUMP_V2: u16 = 13;
const BGP4MP: u16 = 16;
const BGP4MP_ET: u16 = 17;

/// TABLE_DUMP_V2 subtypes (RFC 6396 section 4.3, RFC 8050 section 4).
const PEER_INDEX_TABLE: u16 = 1;
const RIB_IPV4_UNICAST: u16 = 2;
const RIB_IPV6_UNICAST: u16 = 4;
const RIB_IPV4_UNICAST_ADDPATH: u16 = 8;
const RIB_IPV6_UNICAST_ADDPATH: u16 = 10;

/// Longest record accepted. A RIB record is one prefix with its entries (tens of
/// kilobytes with a hundred peers); a longer length is a corrupt header, and is not
/// allocated.
pub const MAX_RECORD: u32 = 16 << 20;

/// What to take from the dump (`[bgp] mrt_peer`, `mrt_families`, `mrt_neighbors`).
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Only the prefixes this peer (an address of the PEER_INDEX_TABLE) has an entry for.
    pub peer: Option<IpAddr>,
    /// Skip the IPv4 prefixes.
    pub no_v4: bool,
    /// Skip the IPv6 prefixes.
    pub no_v6: bool,
    /// The next hops to spread the prefixes over (each a neighbor); empty: every
    /// neighbor, in config order.
    pub neighbors: Vec<IpAddr>,
}

/// What the config so far holds.
pub(super) struct Checks<'a> {
    pub neighbors: &'a [Neighbor],
    /// Prefixes of the config's `[[static_route]]`s.
    pub route_prefixes: &'a FastSet<Prefix>,
    /// Prefixes of the networks so far (the config's, the table file's, then the dump's).
    pub net_prefixes: &'a mut FastSet<Prefix>,
}

/// Where reading stopped: the record (1-based) and its offset in the decompressed data,
/// or `None` for the file as a whole.
#[derive(Debug, PartialEq, Eq)]
pub struct MrtError {
    pub at: Option<(u64, u64)>,
    pub msg: String,
}

/// What a dump gave.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub records: u64,
    /// Unicast prefixes in the RIB records (with duplicates).
    pub prefixes: u64,
    /// Routes and networks added.
    pub loaded: u64,
    /// Prefixes the config (or its table file) has already.
    pub present: u64,
    /// Prefixes an earlier record of the dump gave already.
    pub repeated: u64,
    /// Prefixes without an entry of `mrt_peer` (or without any entry).
    pub other_peers: u64,
    /// Prefixes of a family left out (`mrt_families`).
    pub other_family: u64,
}

/// The index in `0..n` of the next hop of `prefix`: FNV-1a (64 bits) over the address
/// bytes (4 or 16) and the length byte, modulo `n`. Stable: a prefix goes to the same
/// neighbor in every dump and every release.
pub fn spread(prefix: Prefix, n: usize) -> usize {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut eat = |b: u8| h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    match prefix.addr {
        IpAddr::V4(a) => a.octets().into_iter().for_each(&mut eat),
        IpAddr::V6(a) => a.octets().into_iter().for_each(&mut eat),
    }
    eat(prefix.len);
    (h % n.max(1) as u64) as usize
}

/// Opens `input` as plain, gzip (1f 8b) or bzip2 ("BZh") data, told by its first bytes.
/// xz and zstd are recognised and refused by name. Compressed data is decompressed
/// on a thread of its own ([`Ahead`]), ahead of the reader.
pub fn decompress<R: BufRead + Send + 'static>(mut input: R) -> Result<(Box<dyn Read>, &'static str), String> {
    let head = input.fill_buf().map_err(|e| e.to_string())?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok((Box::new(Ahead::spawn(flate2::bufread::MultiGzDecoder::new(input))?), "gzip"))
    } else if head.starts_with(b"BZh") {
        Ok((Box::new(Ahead::spawn(bzip2::bufread::MultiBzDecoder::new(input))?), "bzip2"))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Err("xz-compressed: decompress it first (unxz), or recompress with gzip or bzip2".into())
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Err("zstd-compressed: decompress it first (unzstd), or recompress with gzip or bzip2".into())
    } else {
        Ok((Box::new(input), "none"))
    }
}

/// Bytes of a chunk [`Ahead`] hands over.
const CHUNK: usize = 1 << 20;

/// A reader fed by a thread that reads (decompresses) its input into chunks, at most
/// four ahead: decompression and parsing overlap on two cores. An empty chunk marks
/// the end; a thread that stops without it (it panicked) is an error, not an early end.
/// When the reader is dropped, the thread stops at its next chunk.
pub struct Ahead {
    rx: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    buf: Vec<u8>,
    at: usize,
    done: bool,
}

impl Ahead {
    fn spawn(mut input: impl Read + Send + 'static) -> Result<Ahead, String> {
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        std::thread::Builder::new()
            .name("mrt-decompress".into())
            .spawn(move || loop {
                let mut chunk = vec![0u8; CHUNK];
                let mut n = 0;
                let mut err = None;
                while n < CHUNK {
                    match input.read(&mut chunk[n..]) {
                        Ok(0) => break,
                        Ok(k) => n += k,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            err = Some(e);
                            break;
                        }
                    }
                }
                chunk.truncate(n);
                let end = n == 0;
                // The bytes before an error go first, so that the error names the record
                // it is in. An empty chunk is the end marker.
                if (n > 0 || err.is_none()) && tx.send(Ok(chunk)).is_err() {
                    break;
                }
                if let Some(e) = err {
                    let _ = tx.send(Err(e));
                    break;
                }
                if end {
                    break;
                }
            })
            .map_err(|e| format!("starting the decompression thread: {e}"))?;
        Ok(Ahead { rx, buf: Vec::new(), at: 0, done: false })
    }
}

impl Read for Ahead {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.buf.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.done = chunk.is_empty();
                    self.buf = chunk;
                    self.at = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Err(std::io::Error::other("the decompression thread stopped"));
                }
            }
        }
        let n = out.len().min(self.buf.len() - self.at);
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Reads until `buf` is full or the input ends; the number of bytes read.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// "`.0` `.1`" (e.g. "entry 3"), formatted only for an error message.
struct Nth(&'static str, u16);

impl std::fmt::Display for Nth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.0, self.1)
    }
}

/// A bounds-checked cursor over a record body.
struct Cur<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize, what: &dyn std::fmt::Display) -> Result<&'a [u8], String> {
        if self.b.len() - self.at < n {
            return Err(format!(
                "the record ends inside {what} (wants {n} bytes at byte {} of the {}-byte body)",
                self.at,
                self.b.len()
            ));
        }
        let s = &self.b[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }
    fn u8(&mut self, what: &dyn std::fmt::Display) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &dyn std::fmt::Display) -> Result<u16, String> {
        let s = self.take(2, what)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    fn end(&self, what: &str) -> Result<(), String> {
        match self.b.len() - self.at {
            0 => Ok(()),
            n => Err(format!("{n} bytes after the last {what}")),
        }
    }
}

/// The peer addresses of a PEER_INDEX_TABLE body (RFC 6396 section 4.3.1).
fn peer_table(body: &[u8]) -> Result<Vec<IpAddr>, String> {
    let mut c = Cur { b: body, at: 0 };
    c.take(4, &"the collector BGP ID")?;
    let view = c.u16(&"the view name length")? as usize;
    c.take(view, &"the view name")?;
    let count = c.u16(&"the peer count")?;
    let mut peers = Vec::with_capacity(count as usize);
    for i in 0..count {
        let what = Nth("peer entry", i);
        let t = c.u8(&what)?;
        c.take(4, &what)?;
        let ip = if t & 1 != 0 {
            let s = c.take(16, &what)?;
            let mut a = [0u8; 16];
            a.copy_from_slice(s);
            IpAddr::V6(Ipv6Addr::from(a))
        } else {
            let s = c.take(4, &what)?;
            IpAddr::V4(Ipv4Addr::new(s[0], s[1], s[2], s[3]))
        };
        c.take(if t & 2 != 0 { 4 } else { 2 }, &what)?;
        peers.push(ip);
    }
    c.end("peer entry")?;
    Ok(peers)
}

/// The prefix of a RIB record at `c` (after the sequence number): length byte, then
/// the significant bytes. Trailing bits of the last byte are cleared (RFC 4271: they
/// are irrelevant).
fn rib_prefix(c: &mut Cur<'_>, v6: bool) -> Result<Prefix, String> {
    let len = c.u8(&"the prefix length")?;
    let max = if v6 { 128 } else { 32 };
    if len > max {
        return Err(format!("prefix length {len} is longer than {max}"));
    }
    let bytes = c.take(len.div_ceil(8) as usize, &format_args!("the /{len} prefix"))?;
    let mut a = [0u8; 16];
    a[..bytes.len()].copy_from_slice(bytes);
    if len % 8 != 0 {
        a[len as usize / 8] &= 0xffu8 << (8 - len % 8);
    }
    let addr = if v6 { IpAddr::V6(Ipv6Addr::from(a)) } else { IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])) };
    Prefix::new(addr, len)
}

/// Walks the entries of a RIB record at `c`: true if one is of a wanted peer.
fn rib_entries(c: &mut Cur<'_>, addpath: bool, peers: usize, wanted: &[bool]) -> Result<bool, String> {
    let count = c.u16(&"the entry count")?;
    let mut found = false;
    for i in 0..count {
        let what = Nth("entry", i);
        let peer = c.u16(&what)? as usize;
        if peer >= peers {
            return Err(format!("entry {i} names peer index {peer}; the PEER_INDEX_TABLE has {peers} peers"));
        }
        // Originated time, then the path identifier of the ADD-PATH subtypes.
        c.take(if addpath { 8 } else { 4 }, &what)?;
        let attrs = c.u16(&what)? as usize;
        c.take(attrs, &Nth("the attributes of entry", i))?;
        found |= wanted.get(peer).copied().unwrap_or(true);
    }
    c.end("entry")?;
    Ok(found)
}

/// Reads a dump from `input` (decompressed), appending a route and a network per
/// prefix taken.
pub(super) fn read(
    input: impl Read,
    opts: &Options,
    c: Checks<'_>,
    routes: &mut Vec<StaticRoute>,
    networks: &mut Vec<Network>,
) -> Result<Summary, MrtError> {
    let pool: Vec<IpAddr> =
        if opts.neighbors.is_empty() { c.neighbors.iter().map(|n| n.ip).collect() } else { opts.neighbors.clone() };
    let v4: Vec<IpAddr> = pool.iter().copied().filter(IpAddr::is_ipv4).collect();
    let v6: Vec<IpAddr> = pool.iter().copied().filter(IpAddr::is_ipv6).collect();
    let mut r = std::io::BufReader::with_capacity(1 << 18, input);
    let mut sum = Summary::default();
    // The networks before the dump (the config's and the table file's): a prefix met
    // again is either one of these or repeated within the dump.
    let before: FastSet<Prefix> = c.net_prefixes.clone();
    let mut offset = 0u64;
    let mut hdr = [0u8; 12];
    let mut body: Vec<u8> = Vec::new();
    // The peer table, and which of its peers count (all without `mrt_peer`).
    let mut peers: Option<Vec<IpAddr>> = None;
    let mut wanted: Vec<bool> = Vec::new();
    loop {
        let record = sum.records + 1;
        let start = offset;
        let at = move |msg: String| MrtError { at: Some((record, start)), msg };
        let n = fill(&mut r, &mut hdr).map_err(|e| at(format!("reading the record header: {e}")))?;
        if n == 0 {
            break;
        }
        if n < hdr.len() {
            return Err(at(format!("truncated: the file ends {n} bytes into the 12-byte record header")));
        }
        sum.records = record;
        let typ = u16::from_be_bytes([hdr[4], hdr[5]]);
        let sub = u16::from_be_bytes([hdr[6], hdr[7]]);
        let len = u32::from_be_bytes([hdr[8], hdr[9], hdr[10], hdr[11]]);
        match typ {
            TABLE_DUMP_V2 => {}
            TABLE_DUMP => {
                return Err(at("an MRT TABLE_DUMP (version 1) record: popgo reads TABLE_DUMP_V2 RIB dumps".into()))
            }
            BGP4MP | BGP4MP_ET => {
                return Err(at(format!(
                    "a BGP4MP record (type {typ}): this is an updates file; popgo reads TABLE_DUMP_V2 RIB dumps"
                )))
            }
            _ => {
                return Err(at(format!("record type {typ} is not TABLE_DUMP_V2 (13): not an MRT RIB dump, or corrupt")))
            }
        }
        if len > MAX_RECORD {
            return Err(at(format!("record length {len} is over {MAX_RECORD} bytes: corrupt")));
        }
        body.resize(len as usize, 0);
        let got = fill(&mut r, &mut body).map_err(|e| at(format!("reading the record: {e}")))?;
        if got < body.len() {
            return Err(at(format!("truncated: the record is {len} bytes long, the file ends after {got}")));
        }
        offset += 12 + len as u64;
        let (v6rec, addpath) = match sub {
            PEER_INDEX_TABLE => {
                let p = peer_table(&body).map_err(|m| at(format!("PEER_INDEX_TABLE: {m}")))?;
                wanted = match opts.peer {
                    None => Vec::new(),
                    Some(want) => {
                        if !p.contains(&want) {
                            let some: Vec<String> = p.iter().take(8).map(|a| a.to_string()).collect();
                            let more = if p.len() > 8 { ", ..." } else { "" };
                            return Err(at(format!(
                                "mrt_peer {want} is not in the PEER_INDEX_TABLE ({} peers: {}{more})",
                                p.len(),
                                some.join(", ")
                            )));
                        }
                        p.iter().map(|a| *a == want).collect()
                    }
                };
                peers = Some(p);
                continue;
            }
            RIB_IPV4_UNICAST => (false, false),
            RIB_IPV6_UNICAST => (true, false),
            RIB_IPV4_UNICAST_ADDPATH => (false, true),
            RIB_IPV6_UNICAST_ADDPATH => (true, true),
            // Multicast, RIB_GENERIC, GEO_PEER_TABLE and later subtypes.
            _ => {
                continue;
            }
        };
        let Some(p) = &peers else {
            return Err(at("a RIB record before the PEER_INDEX_TABLE".into()));
        };
        sum.prefixes += 1;
        if (v6rec && opts.no_v6) || (!v6rec && opts.no_v4) {
            sum.other_family += 1;
            continue;
        }
        let mut cur = Cur { b: &body, at: 0 };
        cur.take(4, &"the sequence number").map_err(&at)?;
        let prefix = rib_prefix(&mut cur, v6rec).map_err(&at)?;
        let found = rib_entries(&mut cur, addpath, p.len(), &wanted).map_err(|m| at(format!("{prefix}: {m}")))?;
        if !found {
            sum.other_peers += 1;
            continue;
        }
        if c.route_prefixes.contains(&prefix) || before.contains(&prefix) {
            sum.present += 1;
            continue;
        }
        if !c.net_prefixes.insert(prefix) {
            sum.repeated += 1;
            continue;
        }
        let pool = if v6rec { &v6 } else { &v4 };
        if pool.is_empty() {
            let (fam, other) = if v6rec { ("IPv6", "ipv4") } else { ("IPv4", "ipv6") };
            return Err(at(format!(
                "{prefix}: no {fam} neighbor to route it to (add a [[neighbor]], or set mrt_families = [\"{other}\"])"
            )));
        }
        let next_hop = pool[spread(prefix, pool.len())];
        let line = usize::try_from(record).unwrap_or(usize::MAX);
        routes.push(StaticRoute { prefix, next_hop, line });
        networks.push(Network { prefix, label: None, line });
        sum.loaded += 1;
    }
    if peers.is_none() {
        return Err(MrtError {
            at: None,
            msg: format!("no PEER_INDEX_TABLE in {} records: not a TABLE_DUMP_V2 RIB dump", sum.records),
        });
    }
    Ok(sum)
}

/// A peer of a written dump's PEER_INDEX_TABLE.
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    pub ip: IpAddr,
    pub asn: u32,
}

/// Writes a TABLE_DUMP_V2 RIB dump (`gen synth --mrt-out`, and the tests): a
/// PEER_INDEX_TABLE, then a RIB record per prefix with an entry per peer given, each
/// with ORIGIN, AS_PATH and NEXT_HOP (IPv4) or MP_REACH_NLRI (IPv6, the RFC 6396 short
/// form: next hop length and next hop).
pub struct RibWriter<W: std::io::Write> {
    out: W,
    peers: Vec<Peer>,
    seq: u32,
    body: Vec<u8>,
}

/// The timestamp of written records (2024-01-01T00:00:00Z): the same bytes every run.
const WRITE_TIME: u32 = 1_704_067_200;

impl<W: std::io::Write> RibWriter<W> {
    pub fn new(mut out: W, collector: Ipv4Addr, peers: &[Peer]) -> std::io::Result<Self> {
        let mut b = Vec::new();
        b.extend_from_slice(&collector.octets());
        b.extend_from_slice(&0u16.to_be_bytes());
        b.extend_from_slice(&(peers.len() as u16).to_be_bytes());
        for p in peers {
            b.push(if p.ip.is_ipv6() { 3 } else { 2 });
            b.extend_from_slice(&[10, 0, 0, 1]);
            match p.ip {
                IpAddr::V4(a) => b.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => b.extend_from_slice(&a.octets()),
            }
            b.extend_from_slice(&p.asn.to_be_bytes());
        }
        write_record(&mut out, PEER_INDEX_TABLE, &b)?;
        Ok(RibWriter { out, peers: peers.to_vec(), seq: 0, body: b })
    }

    /// One RIB record: `prefix` with an entry of each peer of `entries` (indexes into
    /// the peer table).
    pub fn prefix(&mut self, prefix: Prefix, entries: &[u16]) -> std::io::Result<()> {
        let b = &mut self.body;
        b.clear();
        b.extend_from_slice(&self.seq.to_be_bytes());
        self.seq = self.seq.wrapping_add(1);
        b.push(prefix.len);
        let n = prefix.len.div_ceil(8) as usize;
        match prefix.addr {
            IpAddr::V4(a) => b.extend_from_slice(&a.octets()[..n]),
            IpAddr::V6(a) => b.extend_from_slice(&a.octets()[..n]),
        }
        b.extend_from_slice(&(entries.len() as u16).to_be_bytes());
        for &i in entries {
            let peer = self.peers.get(i as usize).copied().ok_or(std::io::ErrorKind::InvalidInput)?;
            b.extend_from_slice(&i.to_be_bytes());
            b.extend_from_slice(&WRITE_TIME.to_be_bytes());
            let attrs_at = b.len();
            b.extend_from_slice(&[0, 0]);
            // ORIGIN IGP; AS_PATH: one AS_SEQUENCE of the peer's AS and an origin AS
            // (4-byte ASes, RFC 6396 section 4.3.4).
            b.extend_from_slice(&[0x40, 1, 1, 0, 0x40, 2, 10, 2, 2]);
            b.extend_from_slice(&peer.asn.to_be_bytes());
            b.extend_from_slice(&(64_512 + (self.seq % 1000)).to_be_bytes());
            match (prefix.addr, peer.ip) {
                (IpAddr::V4(_), IpAddr::V4(nh)) => {
                    b.extend_from_slice(&[0x40, 3, 4]);
                    b.extend_from_slice(&nh.octets());
                }
                (IpAddr::V4(_), IpAddr::V6(nh)) | (IpAddr::V6(_), IpAddr::V6(nh)) => {
                    b.extend_from_slice(&[0x80, 14, 17, 16]);
                    b.extend_from_slice(&nh.octets());
                }
                (IpAddr::V6(_), IpAddr::V4(nh)) => {
                    b.extend_from_slice(&[0x80, 14, 17, 16]);
                    b.extend_from_slice(&nh.to_ipv6_mapped().octets());
                }
            }
            let attrs = (b.len() - attrs_at - 2) as u16;
            b[attrs_at..attrs_at + 2].copy_from_slice(&attrs.to_be_bytes());
        }
        let sub = if prefix.is_v4() { RIB_IPV4_UNICAST } else { RIB_IPV6_UNICAST };
        write_record(&mut self.out, sub, &self.body)
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

fn write_record(out: &mut impl std::io::Write, sub: u16, body: &[u8]) -> std::io::Result<()> {
    let mut h = [0u8; 12];
    h[..4].copy_from_slice(&WRITE_TIME.to_be_bytes());
    h[4..6].copy_from_slice(&TABLE_DUMP_V2.to_be_bytes());
    h[6..8].copy_from_slice(&sub.to_be_bytes());
    h[8..].copy_from_slice(&(body.len() as u32).to_be_bytes());
    out.write_all(&h)?;
    out.write_all(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigError};

    const SEED: &str = include_str!("../../../pcaps/seed.toml");

    /// The seed config (neighbors 192.168.10.1 and .20.1, network 10.1.1.0/24 with label
    /// 48122) plus two IPv6 neighbors and `keys` in `[bgp]`, naming `name` in a temp dir
    /// holding `dump`.
    fn load(name: &str, dump: &[u8], keys: &str) -> (tempfile::TempDir, Result<Config, ConfigError>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(name), dump).unwrap();
        let text = SEED.replacen("label_base = 48000", &format!("label_base = 48000\nmrt = {name:?}\n{keys}"), 1)
            + "\n[[neighbor]]\nip = \"fd00::1\"\nmac = \"02:00:00:00:00:61\"\nport = \"to-D\"\n"
            + "[[neighbor]]\nip = \"fd00::2\"\nmac = \"02:00:00:00:00:62\"\nport = \"to-D\"\n";
        let p = dir.path().join("c.toml");
        std::fs::write(&p, text).unwrap();
        let r = Config::load(&p);
        (dir, r)
    }

    fn p(s: &str) -> Prefix {
        Prefix::parse(s).unwrap()
    }

    /// The routes the dump added (after the seed's two), as (prefix, next hop) text.
    fn dump_routes(c: &Config) -> Vec<(String, String)> {
        c.static_routes[2..].iter().map(|r| (r.prefix.to_string(), r.next_hop.to_string())).collect()
    }

    /// A dump assembled by hand from RFC 6396 (not by [`RibWriter`]): a PEER_INDEX_TABLE
    /// of an IPv4 peer with a 2-byte AS and an IPv6 peer with a 4-byte AS; 10.2.0.0/16
    /// from both, 10.3.128.0/17 (its last byte 0xff, trailing bits set) from the second, 2001:db8::/32
    /// from the first, an IPv4 multicast record (skipped).
    fn hand_dump() -> Vec<u8> {
        let mut f = Vec::new();
        let mut rec = |sub: u16, body: &[u8]| {
            f.extend_from_slice(&[0x65, 0x92, 0, 0, 0, 13]);
            f.extend_from_slice(&sub.to_be_bytes());
            f.extend_from_slice(&(body.len() as u32).to_be_bytes());
            f.extend_from_slice(body);
        };
        #[rustfmt::skip]
        rec(1, &[
            192, 0, 2, 255, 0, 4, b'r', b'i', b'b', b'1', 0, 2,
            0, 1, 1, 1, 1, 198, 51, 100, 1, 0xfd, 0xe8,
            3, 2, 2, 2, 2, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0xfd, 0xe9,
        ]);
        // Attributes of an entry: ORIGIN IGP, NEXT_HOP 198.51.100.1.
        let v4attrs = [0x40, 1, 1, 0, 0x40, 3, 4, 198, 51, 100, 1];
        let mut b = vec![0, 0, 0, 0, 16, 10, 2, 0, 2];
        for peer in [0u8, 1] {
            b.extend_from_slice(&[0, peer, 0x65, 0x92, 0, 0, 0, v4attrs.len() as u8]);
            b.extend_from_slice(&v4attrs);
        }
        rec(2, &b);
        let mut b = vec![0, 0, 0, 1, 17, 10, 3, 0xff, 0, 1, 0, 1, 0x65, 0x92, 0, 0, 0, 0];
        rec(2, &b);
        b = vec![0, 0, 0, 2, 24, 224, 1, 2, 0, 0];
        rec(3, &b);
        // MP_REACH_NLRI in the short form: next hop length 16, 2001:db8::1.
        let mut b = vec![0, 0, 0, 3, 32, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0x65, 0x92, 0, 0, 0, 20];
        b.extend_from_slice(&[0x80, 14, 17, 16, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        rec(4, &b);
        f
    }

    #[test]
    fn a_hand_made_dump_gives_routes_and_networks_after_the_configs() {
        let (_d, c) = load("rib.mrt", &hand_dump(), "");
        let c = c.unwrap();
        let routes = dump_routes(&c);
        assert_eq!(
            routes,
            [
                ("10.2.0.0/16".to_string(), "192.168.20.1".to_string()),
                ("10.3.128.0/17".into(), "192.168.20.1".into()),
                ("2001:db8::/32".into(), "fd00::2".into()),
            ]
        );
        let b = c.bgp.as_ref().unwrap();
        let nets: Vec<_> = b.networks.iter().map(|n| (n.prefix.to_string(), n.label, n.line)).collect();
        assert_eq!(
            nets,
            [
                ("10.1.1.0/24".to_string(), Some(48122), nets[0].2),
                ("10.2.0.0/16".into(), None, 2),
                ("10.3.128.0/17".into(), None, 3),
                ("2001:db8::/32".into(), None, 5),
            ]
        );
        // The second peer (2001:db8::2) has 10.2.0.0/16 and 10.3.128.0/17, the first 10.2.0.0/16 and 2001:db8::/32.
        let (_d, c) = load("rib.mrt", &hand_dump(), "mrt_peer = \"2001:db8::2\"");
        assert_eq!(dump_routes(&c.unwrap()).len(), 2);
        let (_d, c) = load("rib.mrt", &hand_dump(), "mrt_peer = \"198.51.100.1\"");
        let r: Vec<_> = dump_routes(&c.unwrap()).into_iter().map(|r| r.0).collect();
        assert_eq!(r, ["10.2.0.0/16", "2001:db8::/32"]);
    }

    /// The summary tells the prefixes the config had from those an earlier record of
    /// the dump gave.
    #[test]
    fn the_summary_counts_config_prefixes_and_dump_repeats_apart() {
        let mut dump = hand_dump();
        // The 10.2.0.0/16 record once more (its bytes: after the peer table's 60).
        let again = dump[60..60 + 12 + 9 + 2 * 19].to_vec();
        dump.extend_from_slice(&again);
        let seed = Config::parse(SEED).unwrap();
        let neighbors =
            [seed.neighbors.clone(), vec![Neighbor { ip: "fd00::1".parse().unwrap(), ..seed.neighbors[0].clone() }]]
                .concat();
        let mut nets: FastSet<Prefix> = FastSet::default();
        nets.insert(p("10.3.128.0/17"));
        let routes: FastSet<Prefix> = FastSet::default();
        let c = Checks { neighbors: &neighbors, route_prefixes: &routes, net_prefixes: &mut nets };
        let sum = read(&dump[..], &Options::default(), c, &mut Vec::new(), &mut Vec::new()).unwrap();
        assert_eq!((sum.loaded, sum.present, sum.repeated), (2, 1, 1), "{sum:?}");
    }

    /// RFC 8050 ADD-PATH records: a path identifier after each entry's originated time;
    /// two paths of one peer are one prefix. Read as the plain subtype, the same bytes
    /// are an error, not a wrong table.
    #[test]
    fn add_path_records() {
        let mut f = hand_dump()[..60].to_vec();
        let mut body = vec![0, 0, 0, 9, 24, 203, 0, 113, 0, 2];
        for path_id in [1u8, 2] {
            body.extend_from_slice(&[0, 1, 0x65, 0x92, 0, 0, 0, 0, 0, path_id, 0, 4, 0x40, 1, 1, 0]);
        }
        let rec = |sub: u8| {
            let mut r = vec![0x65, 0x92, 0, 0, 0, 13, 0, sub];
            r.extend_from_slice(&(body.len() as u32).to_be_bytes());
            r.extend_from_slice(&body);
            r
        };
        f.extend(rec(8));
        let (_d, c) = load("rib.mrt", &f, "mrt_peer = \"2001:db8::2\"");
        assert_eq!(dump_routes(&c.unwrap()), [("203.0.113.0/24".to_string(), "192.168.20.1".to_string())]);
        let (_d, c) = load("rib.mrt", &f, "mrt_peer = \"198.51.100.1\"");
        assert_eq!(dump_routes(&c.unwrap()), []);
        f.truncate(60);
        f.extend(rec(2));
        let (_d, c) = load("rib.mrt", &f, "");
        let e = c.unwrap_err().to_string();
        assert!(e.contains("record 2 at byte 60: 203.0.113.0/24: "), "{e}");
    }

    /// The neighbor of a prefix is [`spread`]'s, and stays what it is (values pinned
    /// from a separate FNV-1a computation).
    #[test]
    fn next_hops_are_spread_by_prefix_and_stable() {
        assert_eq!(spread(p("10.2.0.0/16"), 2), 1);
        assert_eq!(spread(p("10.3.0.0/17"), 2), 1);
        assert_eq!(spread(p("2001:db8::/32"), 2), 1);
        let picks: Vec<usize> = (0..8u8).map(|i| spread(p(&format!("10.{i}.0.0/16")), 3)).collect();
        assert_eq!(picks, [1, 0, 1, 1, 2, 2, 0, 0]);
        // Even enough: 30,000 prefixes over 3 neighbors.
        let mut n = [0usize; 3];
        for i in 0..30_000u32 {
            let a = Ipv4Addr::from(0x0a00_0000 + (i << 8));
            n[spread(Prefix::new(IpAddr::V4(a), 24).unwrap(), 3)] += 1;
        }
        assert!(n.iter().all(|k| (9_500..10_500).contains(k)), "{n:?}");
    }

    /// A dump of `n` IPv4 /24s and `n` IPv6 /48s with an entry of each of `peers`
    /// (peer `i` = 10.255.0.i) except that odd prefixes lack peer 0's.
    fn written(n: u32, peers: u16) -> Vec<u8> {
        let ps: Vec<Peer> =
            (0..peers).map(|i| Peer { ip: IpAddr::V4(Ipv4Addr::new(10, 255, 0, i as u8)), asn: 65000 }).collect();
        let mut w = RibWriter::new(Vec::new(), Ipv4Addr::new(10, 255, 255, 255), &ps).unwrap();
        let all: Vec<u16> = (0..peers).collect();
        for i in 0..n {
            let e = if i % 2 == 1 { &all[1..] } else { &all[..] };
            w.prefix(Prefix::new(IpAddr::V4(Ipv4Addr::from(0x1400_0000 + (i << 8))), 24).unwrap(), e).unwrap();
        }
        for i in 0..n {
            let e = if i % 2 == 1 { &all[1..] } else { &all[..] };
            let a = Ipv6Addr::from(0x2001_0db8_0000_0000_0000_0000_0000_0000u128 + ((i as u128) << 80));
            w.prefix(Prefix::new(IpAddr::V6(a), 48).unwrap(), e).unwrap();
        }
        w.into_inner()
    }

    #[test]
    fn peers_families_neighbors_and_compression() {
        let dump = written(100, 3);
        let (_d, c) = load("rib.mrt", &dump, "");
        let c = c.unwrap();
        assert_eq!(c.static_routes.len(), 2 + 200);
        let r = dump_routes(&c);
        assert_eq!(r[0].0, "20.0.0.0/24");
        assert_eq!(r[100].0, "2001:db8::/48");
        assert!(r[..100].iter().all(|(_, nh)| nh.starts_with("192.168.")));
        assert!(r[100..].iter().all(|(_, nh)| nh.starts_with("fd00::")));
        assert!(
            r[..100].iter().any(|(_, nh)| nh == "192.168.10.1") && r[..100].iter().any(|(_, nh)| nh == "192.168.20.1")
        );
        // Peer 0 lacks the odd prefixes; a peer of the file is required.
        let (_d, c) = load("rib.mrt", &dump, "mrt_peer = \"10.255.0.0\"");
        let r = dump_routes(&c.unwrap());
        assert_eq!(r.len(), 100);
        assert_eq!(r[1].0, "20.0.2.0/24");
        let (_d, c) = load("rib.mrt", &dump, "mrt_peer = \"10.255.0.1\"");
        assert_eq!(dump_routes(&c.unwrap()).len(), 200);
        let (_d, c) = load("rib.mrt", &dump, "mrt_peer = \"10.9.9.9\"");
        let e = c.unwrap_err().to_string();
        assert!(e.contains("rib.mrt: record 1 at byte 0: mrt_peer 10.9.9.9 is not in the PEER_INDEX_TABLE (3 peers: 10.255.0.0, 10.255.0.1, 10.255.0.2)"), "{e}");
        // One family.
        let (_d, c) = load("rib.mrt", &dump, "mrt_families = [\"ipv6\"]");
        let r = dump_routes(&c.unwrap());
        assert_eq!(r.len(), 100);
        assert!(r.iter().all(|(p, _)| p.contains(':')));
        // One neighbor.
        let (_d, c) = load("rib.mrt", &dump, "mrt_neighbors = [\"192.168.20.1\", \"fd00::2\"]");
        let r = dump_routes(&c.unwrap());
        assert!(r.iter().all(|(_, nh)| nh == "192.168.20.1" || nh == "fd00::2"), "{r:?}");
        // Compressed: the same config.
        let (_d, plain) = load("rib.mrt", &dump, "");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, &dump).unwrap();
        let (_d, c) = load("rib.gz", &gz.finish().unwrap(), "");
        assert_eq!(dump_routes(&c.unwrap()), dump_routes(plain.as_ref().unwrap()));
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        std::io::Write::write_all(&mut bz, &dump).unwrap();
        // The name says nothing: the first bytes do.
        let (_d, c) = load("rib.mrt", &bz.finish().unwrap(), "");
        assert_eq!(dump_routes(&c.unwrap()), dump_routes(plain.as_ref().unwrap()));
    }

    /// A prefix the config routes already keeps the config's route (and label); a
    /// prefix twice in the dump is taken once.
    #[test]
    fn the_configs_routes_win_and_duplicates_are_taken_once() {
        let ps = [Peer { ip: IpAddr::V4(Ipv4Addr::new(10, 255, 0, 1)), asn: 65000 }];
        let mut w = RibWriter::new(Vec::new(), Ipv4Addr::new(10, 255, 255, 255), &ps).unwrap();
        for s in ["10.1.1.0/24", "10.1.1.0/30", "10.9.0.0/16", "10.9.0.0/16", "10.8.0.0/16"] {
            w.prefix(p(s), &[0]).unwrap();
        }
        let (_d, c) = load("rib.mrt", &w.into_inner(), "");
        let c = c.unwrap();
        let r: Vec<_> = dump_routes(&c).into_iter().map(|r| r.0).collect();
        assert_eq!(r, ["10.9.0.0/16", "10.8.0.0/16"]);
        assert_eq!(c.bgp.unwrap().networks[0].label, Some(48122));
    }

    #[test]
    fn keys_are_checked() {
        let cases = [
            ("mrt_peer = \"x\"", "bgp.mrt_peer: \"x\" is not an IP address"),
            ("mrt_families = [\"ipv5\"]", "bgp.mrt_families: \"ipv5\" is not \"ipv4\" or \"ipv6\""),
            ("mrt_neighbors = [\"192.168.99.1\"]", "bgp.mrt_neighbors: 192.168.99.1 is not a known neighbor"),
            ("mrt_neighbors = []", "bgp.mrt_neighbors: empty"),
        ];
        for (keys, want) in cases {
            let (_d, r) = load("rib.mrt", &hand_dump(), keys);
            let e = r.unwrap_err().to_string();
            assert!(e.contains(want), "{keys}: {e}");
        }
        let text = SEED.replacen("label_base = 48000", "label_base = 48000\nmrt_peer = \"10.0.0.1\"", 1);
        assert!(Config::parse(&text).unwrap_err().to_string().contains("bgp.mrt_peer: only valid with bgp.mrt"));
        let (d, _) = load("rib.mrt", &hand_dump(), "");
        let p = d.path().join("c.toml");
        std::fs::remove_file(d.path().join("rib.mrt")).unwrap();
        let e = Config::load(&p).unwrap_err().to_string();
        assert!(e.contains("bgp.mrt: ") && e.contains("rib.mrt: No such file"), "{e}");
    }

    /// Bad dumps: the message names the file, the record and its offset.
    #[test]
    fn errors_name_the_record_and_the_offset() {
        let good = hand_dump();
        // The hand dump's records start at 0, 60, 119, 149, 171.
        let mut bgp4mp = good.clone();
        bgp4mp[119 + 5] = 16;
        let mut big = good.clone();
        big[60 + 8..60 + 12].copy_from_slice(&(MAX_RECORD + 1).to_be_bytes());
        let mut long_prefix = good.clone();
        long_prefix[60 + 12 + 4] = 33;
        let mut bad_peer = good.clone();
        bad_peer[60 + 12 + 9 + 1] = 7;
        let mut trailing = good[..119].to_vec();
        trailing[60 + 11] += 1;
        trailing.push(0);
        let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
            (
                "cut header",
                good[..119 + 5].to_vec(),
                "record 3 at byte 119: ",
                "truncated: the file ends 5 bytes into the 12-byte record header",
            ),
            (
                "cut body",
                good[..119 + 20].to_vec(),
                "record 3 at byte 119: ",
                "truncated: the record is 18 bytes long, the file ends after 8",
            ),
            ("updates", bgp4mp, "record 3 at byte 119: ", "a BGP4MP record (type 16): this is an updates file"),
            ("length", big, "record 2 at byte 60: ", "is over 16777216 bytes: corrupt"),
            ("prefix length", long_prefix, "record 2 at byte 60: ", "prefix length 33 is longer than 32"),
            (
                "peer index",
                bad_peer,
                "record 2 at byte 60: ",
                "10.2.0.0/16: entry 0 names peer index 7; the PEER_INDEX_TABLE has 2 peers",
            ),
            ("trailing", trailing, "record 2 at byte 60: ", "10.2.0.0/16: 1 bytes after the last entry"),
            ("no peer table", good[60..].to_vec(), "record 1 at byte 0: ", "a RIB record before the PEER_INDEX_TABLE"),
            ("empty", Vec::new(), "bgp.mrt: ", "no PEER_INDEX_TABLE in 0 records"),
        ];
        for (what, dump, at, want) in cases {
            let (_d, r) = load("rib.mrt", &dump, "");
            let e = r.unwrap_err().to_string();
            assert!(e.contains(&format!("rib.mrt: {at}")) || e.contains(at), "{what}: {e}");
            assert!(e.contains(want), "{what}: {e}");
        }
        // An IPv6 prefix without an IPv6 neighbor: the remedy is in the message.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rib.mrt"), &good).unwrap();
        let text = SEED.replacen("label_base = 48000", "label_base = 48000\nmrt = \"rib.mrt\"", 1);
        std::fs::write(dir.path().join("c.toml"), text).unwrap();
        let e = Config::load(&dir.path().join("c.toml")).unwrap_err().to_string();
        assert!(e.contains("record 5 at byte 171: 2001:db8::/32: no IPv6 neighbor to route it to (add a [[neighbor]], or set mrt_families = [\"ipv4\"])"), "{e}");
        // A gzip file cut short.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, &written(50, 2)).unwrap();
        let gz = gz.finish().unwrap();
        let (_d, r) = load("rib.gz", &gz[..gz.len() / 2], "");
        let e = r.unwrap_err().to_string();
        assert!(e.contains("rib.gz: record ") && e.contains(" at byte "), "{e}");
        // Corrupted gzip and bzip2 data: an error (the decompressor's, or a bad record).
        let mut bad = gz.clone();
        for b in &mut bad[gz.len() / 3..gz.len() / 3 + 8] {
            *b ^= 0x5a;
        }
        let (_d, r) = load("rib.gz", &bad, "");
        let e = r.unwrap_err().to_string();
        assert!(e.contains("rib.gz: "), "{e}");
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        std::io::Write::write_all(&mut bz, &written(50, 2)).unwrap();
        let bz = bz.finish().unwrap();
        let (_d, r) = load("rib.bz2", &bz[..bz.len() - 10], "");
        let e = r.unwrap_err().to_string();
        assert!(e.contains("rib.bz2: record ") && e.contains(" at byte "), "{e}");
    }

    /// Every cut and every corrupted byte of a small dump gives a config or an error,
    /// never a panic; a cut inside a record is always an error.
    #[test]
    fn truncated_and_corrupted_dumps_never_panic() {
        let dump = written(3, 2);
        let starts = {
            let mut s = vec![0usize];
            while *s.last().unwrap() < dump.len() {
                let at = *s.last().unwrap();
                let len = u32::from_be_bytes(dump[at + 8..at + 12].try_into().unwrap()) as usize;
                s.push(at + 12 + len);
            }
            s
        };
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        let text = SEED.replacen("label_base = 48000", "label_base = 48000\nmrt = \"rib.mrt\"", 1)
            + "\n[[neighbor]]\nip = \"fd00::1\"\nmac = \"02:00:00:00:00:61\"\nport = \"to-D\"\n";
        std::fs::write(&p, text).unwrap();
        for cut in 0..dump.len() {
            std::fs::write(dir.path().join("rib.mrt"), &dump[..cut]).unwrap();
            let r = Config::load(&p);
            if !starts.contains(&cut) || cut == 0 {
                assert!(r.is_err(), "cut at {cut}");
            }
        }
        for at in 0..dump.len() {
            for x in [0x01u8, 0x80, 0xff] {
                let mut d = dump.clone();
                d[at] ^= x;
                std::fs::write(dir.path().join("rib.mrt"), &d).unwrap();
                let _ = Config::load(&p);
            }
        }
    }

    #[test]
    fn a_fifo_or_a_device_is_refused_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        let fifo = dir.path().join("rib.mrt");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        for (name, want) in [("rib.mrt", "rib.mrt: not a regular file"), ("/dev/zero", "/dev/zero: not a regular file")]
        {
            let text = SEED.replacen("label_base = 48000", &format!("label_base = 48000\nmrt = {name:?}"), 1);
            std::fs::write(&p, text).unwrap();
            // On a FIFO without a writer a blocking open never returns: load on a thread.
            let (tx, rx) = std::sync::mpsc::channel();
            let path = p.clone();
            std::thread::spawn(move || tx.send(Config::load(&path).map(|_| ()).map_err(|e| e.to_string())));
            let e = rx.recv_timeout(std::time::Duration::from_secs(5)).expect("load returns").unwrap_err();
            assert!(e.contains("bgp.mrt") && e.contains(want), "{e}");
        }
    }
}

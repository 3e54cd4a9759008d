//! Packet capture files: reading classic pcap and pcapng, writing classic pcap.
//!
//! This module owns all capture-file I/O of popgo:
//!
//! * [`Capture`] memory-maps a capture file (through `memmap2`) and, once, at
//!   open time, validates the whole file and builds an index of [`Record`]s.
//!   Afterwards [`Capture::packet`] is a plain slice of the mapping: no
//!   copying, no parsing on the hot path.
//!   [`Capture::from_bytes`] runs the same parser over owned memory.
//! * [`Writer`] / [`write_file`] write classic pcap with nanosecond
//!   timestamps (magic `0xa1b23c4d`, little-endian), link type 1 (Ethernet),
//!   snaplen 65535.
//!
//! This file holds the capture (its memory, mapped or owned, and the record index),
//! the errors and the format detection; `classic` and `pcapng` parse the two formats,
//! `writer` writes classic pcap.
//!
//! # Accepted input
//!
//! * Classic pcap, magic `0xa1b2c3d4` (µs) or `0xa1b23c4d` (ns), either byte
//!   order. The link-type field is `LinkType and additional information`: per
//!   pcap-savefile(5) only its low 16 bits are the link type (bits 16..=25 are
//!   reserved and must be ignored by readers, bit 26 flags a known FCS length,
//!   bits 28..=31 carry the FCS length), so the link type is `field & 0xffff`
//!   and must be 1 (Ethernet), or 113/276 (Linux cooked, `tcpdump -i any`: converted
//!   to Ethernet at open, see `cooked`). The version fields are not checked.
//! * pcapng: any number of sections, each with its own byte order. Interface
//!   Description Blocks provide link type, snaplen, `if_tsresol` (default
//!   10^-6; high bit set means a power of two) and `if_tsoffset` (seconds).
//!   Enhanced Packet Blocks, Simple Packet Blocks (timestamp 0, interface 0,
//!   `caplen = min(origlen, body, snaplen if non-zero)`) and obsolete Packet
//!   Blocks produce records; every other block type is skipped. A packet on
//!   an undeclared interface is [`Error::UnknownInterface`], a packet on a
//!   non-Ethernet interface is [`Error::LinkType`] (a non-Ethernet interface
//!   that carries no packets is fine).
//!
//! # Validation rules
//!
//! Nothing in a file can cause a panic or an out-of-bounds slice; every
//! problem is an [`Error`] naming the byte offset of the offending structure
//! (record header or block start) and the 0-based number of the packet record
//! being parsed (= count of complete records before it).
//!
//! * A 0-byte file, a file shorter than its header, and a file whose last
//!   record/block is cut short are [`Error::Truncated`]. A file that ends
//!   exactly on a record/block boundary is fine (fewer records; a bare header
//!   is an empty capture).
//! * A pcapng block total length that is < 12, not a multiple of 4, or whose
//!   trailing copy differs is [`Error::Malformed`]; one that runs past the end
//!   of the file is [`Error::Truncated`]. Inconsistencies inside a complete
//!   block (captured length beyond the block body, bad options) are
//!   [`Error::Malformed`].
//! * A captured length above [`MAX_CAPLEN`] (262144, libpcap's and
//!   Wireshark's maximum for Ethernet) is [`Error::CapLen`], whatever the
//!   header's snaplen says. `caplen > snaplen` (up to that maximum) and
//!   `caplen > origlen` are tolerated, as many writers get snaplen wrong.
//! * Timestamps are converted to nanoseconds since the epoch, saturating at
//!   0 and `u64::MAX` (year 2554) instead of failing.
//!
//! # Memory-mapping invariant (the only `unsafe` here)
//!
//! A mapped file must not be truncated or modified, by this or any other
//! process, while the [`Capture`] is alive. Modification makes the `&[u8]`
//! returned by [`Capture::data`]/[`Capture::packet`] change under Rust's
//! feet (undefined behaviour in principle, stale or inconsistent packets in
//! practice), and truncation makes accesses beyond the new end raise
//! `SIGBUS`, killing the process. Capture files are input fixtures that
//! popgo never writes while replaying, so this is accepted; do not point
//! [`Capture::open`] at a file that is still being written (use
//! [`Capture::from_bytes`] with `std::fs::read` for that). A 0-byte file is
//! never mapped (Linux refuses such mappings); it is reported as
//! [`Error::Truncated`].

use std::fs::File;
use std::path::Path;

use memmap2::Mmap;

mod classic;
mod cooked;
mod pcapng;
mod writer;

#[cfg(test)]
mod tests;

pub use writer::{write_file, Writer, MAX_TS_NS};

/// Largest captured length accepted for a single packet (bytes).
pub const MAX_CAPLEN: u32 = 262_144;

/// Link type of Ethernet (`LINKTYPE_ETHERNET`).
const LINKTYPE_ETHERNET: u32 = 1;

const NS_PER_SEC: u64 = 1_000_000_000;

/// Errors from reading or writing capture files.
///
/// `offset` is always a byte offset in the file: the start of the structure
/// at fault (global header, record header, or pcapng block). `record` is the
/// 0-based number of the packet record being parsed, i.e. the number of
/// complete packet records before the fault (header errors use 0).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on `path` (open, map, create, write).
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The first four bytes are neither a pcap nor a pcapng magic.
    #[error("not a pcap or pcapng file (magic {magic:02x?})")]
    BadMagic {
        /// The first four bytes of the file.
        magic: [u8; 4],
    },
    /// The file is empty or ends in the middle of a header, record or block.
    #[error("file is truncated at byte offset {offset} (record {record}): {what}")]
    Truncated {
        /// Start of the incomplete structure.
        offset: u64,
        /// Number of the packet record being parsed.
        record: u64,
        /// What is incomplete.
        what: &'static str,
    },
    /// Packets with a link type other than Ethernet.
    #[error(
        "link type {linktype} is not Ethernet (1) or Linux cooked (113, 276) at byte offset {offset}{}",
        iface_suffix(.interface)
    )]
    LinkType {
        /// The link type found (low 16 bits of the classic header field).
        linktype: u32,
        /// The classic header's link-type field (20), or the pcapng packet block.
        offset: u64,
        /// The pcapng interface id (`None` for classic pcap).
        interface: Option<u32>,
    },
    /// A structurally invalid pcapng block (the message names the record
    /// number where a packet block is at fault).
    #[error("malformed pcapng block at byte offset {offset}: {what}")]
    Malformed {
        /// Start of the block.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// A pcapng packet block names an interface not declared in its section.
    #[error(
        "packet block at byte offset {offset} (record {record}) references unknown pcapng interface {interface} ({declared} declared in this section)"
    )]
    UnknownInterface {
        /// Start of the packet block.
        offset: u64,
        /// Number of the packet record being parsed.
        record: u64,
        /// The interface id referenced.
        interface: u32,
        /// Number of interfaces declared so far in the section.
        declared: u32,
    },
    /// A record of a Linux cooked capture shorter than its cooked header.
    #[error(
        "record {record}: packet data at byte offset {offset} is {len} bytes, shorter than the {need}-byte Linux cooked (link type {linktype}) header"
    )]
    Cooked {
        /// Start of the packet data.
        offset: u64,
        /// Number of the packet record.
        record: u64,
        /// Its captured length.
        len: u32,
        /// The cooked header's length (16 or 20).
        need: u32,
        /// 113 or 276.
        linktype: u16,
    },
    /// A record's captured length exceeds [`MAX_CAPLEN`].
    #[error("record {record} at byte offset {offset}: caplen {caplen} exceeds the maximum of {limit}")]
    CapLen {
        /// Start of the record header / packet block.
        offset: u64,
        /// Number of the packet record.
        record: u64,
        /// The captured length found.
        caplen: u32,
        /// The maximum, [`MAX_CAPLEN`].
        limit: u32,
    },
}

/// One packet record, located in the mapped file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// Byte offset of the packet bytes (not the record header) in the file.
    pub offset: u64,
    /// Number of packet bytes present in the file.
    pub caplen: u32,
    /// Length of the packet on the wire.
    pub origlen: u32,
    /// Timestamp, nanoseconds since the Unix epoch (0 for pcapng SPBs).
    pub ts_ns: u64,
}

/// On-disk format of a [`Capture`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Classic pcap, microsecond timestamps.
    PcapMicro,
    /// Classic pcap, nanosecond timestamps.
    PcapNano,
    /// pcapng.
    PcapNg,
}

/// Backing memory of a capture.
enum Bytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// A memory-mapped capture and its record index (built once at open, untimed).
///
/// Invariant: every record's `offset..offset + caplen` lies within `data()`.
pub struct Capture {
    bytes: Bytes,
    records: Vec<Record>,
    /// The records' places in one word each, for replay (a third of a [`Record`]).
    spans: Vec<Span>,
    format: Format,
}

/// Where a record's packet bytes are, packed in one word: the byte offset in bits
/// 16-63 and the captured length in bits 0-15. The replay path reads only this, so it
/// streams 8 bytes of index per packet instead of a whole 24-byte [`Record`]. A length
/// of [`Span::LEN_MAX`] or more is stored as `LEN_MAX` (larger than any frame buffer:
/// such a record is never copied, and its [`Record`] has the real length).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(transparent)]
pub struct Span(u64);

impl Span {
    /// Lengths from here on are stored saturated.
    pub const LEN_MAX: usize = u16::MAX as usize;
    /// Largest offset a span holds (256 TiB; `Capture` refuses larger files).
    pub const OFFSET_MAX: u64 = (1 << 48) - 1;

    fn new(r: &Record) -> Span {
        debug_assert!(r.offset <= Span::OFFSET_MAX);
        Span(r.offset << 16 | u64::from(r.caplen.min(u16::MAX as u32)))
    }

    /// Byte offset of the packet in the file.
    #[inline(always)]
    pub fn offset(self) -> usize {
        (self.0 >> 16) as usize
    }

    /// Captured length, saturated at [`Span::LEN_MAX`].
    #[inline(always)]
    pub fn len(self) -> usize {
        (self.0 & 0xffff) as usize
    }

    /// True for a zero-length record.
    #[inline(always)]
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("format", &self.format)
            .field("bytes", &self.data().len())
            .field("records", &self.records.len())
            .field("mapped", &matches!(self.bytes, Bytes::Mapped(_)))
            .finish()
    }
}

/// Captures up to this many bytes are read into memory rather than mapped.
pub const COPY_THRESHOLD: u64 = 512 << 20;

/// [`COPY_THRESHOLD`], or `POPGO_COPY_THRESHOLD` (bytes) when set: a test knob.
fn copy_threshold() -> u64 {
    std::env::var("POPGO_COPY_THRESHOLD").ok().and_then(|v| v.parse().ok()).unwrap_or(COPY_THRESHOLD)
}

impl Capture {
    /// Reads `path` (up to [`COPY_THRESHOLD`] bytes, or `POPGO_COPY_THRESHOLD`) or
    /// maps it read-only (larger files), and indexes all its records.
    pub fn open(path: &Path) -> Result<Capture, Error> {
        Capture::open_copying_up_to(path, copy_threshold())
    }

    /// [`Capture::open`] with an explicit copy threshold: files up to `threshold`
    /// bytes are read into memory, larger ones are mapped. A mapped file must not be
    /// truncated while the `Capture` lives: SIGBUS then ends the process with a
    /// clear message (see the module documentation).
    #[allow(unsafe_code)] // the mapping below, the only `unsafe` of this module
    pub fn open_copying_up_to(path: &Path, threshold: u64) -> Result<Capture, Error> {
        let io_err = |source| Error::Io { path: path.display().to_string(), source };
        let file = File::open(path).map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();
        if len == 0 {
            // Linux refuses to map 0 bytes; an empty file is not a capture.
            return Err(truncated(0, 0, "empty file"));
        }
        if len > Span::OFFSET_MAX {
            return Err(io_err(std::io::Error::other("captures larger than 256 TiB are not supported")));
        }
        // A copy cannot change under us; a mapping of a file that shrinks raises
        // SIGBUS on access. Captures up to the threshold are copied (a fraction of a
        // second, before timing starts); larger ones are mapped, and SIGBUS then ends
        // the process with a clear message instead of a crash.
        if len <= threshold {
            let mut bytes = Vec::with_capacity(len as usize);
            std::io::Read::read_to_end(&mut &file, &mut bytes).map_err(io_err)?;
            return Capture::from_bytes(bytes);
        }
        crate::sys::signal::install_sigbus_report().map_err(io_err)?;
        // SAFETY: the mapping is read-only (PROT_READ), owned by this
        // `Capture`, and only ever exposed as shared `&[u8]` borrowed from
        // it, so it cannot outlive the mapping. Soundness additionally
        // requires that no one modifies or truncates the file while it is
        // mapped (documented on `Capture::open` and in the module docs:
        // modification would change bytes behind a shared `&[u8]`,
        // truncation raises SIGBUS on access). Capture files are read-only
        // inputs to popgo, so callers uphold this.
        let map = unsafe { Mmap::map(&file) }.map_err(io_err)?;
        let (records, format, links) = parse(&map)?;
        if !links.is_empty() {
            let (bytes, records) = cooked::to_ethernet(&map, &records, &links)?;
            return Ok(Capture::new(Bytes::Owned(bytes), records, format));
        }
        Ok(Capture::new(Bytes::Mapped(map), records, format))
    }

    /// Parses an in-memory capture (same parser as [`Capture::open`]).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Capture, Error> {
        let (records, format, links) = parse(&bytes)?;
        if !links.is_empty() {
            let (bytes, records) = cooked::to_ethernet(&bytes, &records, &links)?;
            return Ok(Capture::new(Bytes::Owned(bytes), records, format));
        }
        Ok(Capture::new(Bytes::Owned(bytes), records, format))
    }

    fn new(bytes: Bytes, records: Vec<Record>, format: Format) -> Capture {
        let spans = records.iter().map(Span::new).collect();
        Capture { bytes, records, spans, format }
    }

    /// The record index, in file order.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// The record index packed for replay: one [`Span`] per record, in file order.
    pub fn spans(&self) -> &[Span] {
        &self.spans
    }

    /// The whole file.
    pub fn data(&self) -> &[u8] {
        self.bytes.as_slice()
    }

    /// Bytes of record `i`. Panics if `i >= self.len()`.
    pub fn packet(&self, i: usize) -> &[u8] {
        let r = &self.records[i];
        // Validated at parse time: offset + caplen <= data().len().
        let start = r.offset as usize;
        &self.data()[start..start + r.caplen as usize]
    }

    /// The file format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Number of packet records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True if the capture holds no packet records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

fn iface_suffix(interface: &Option<u32>) -> String {
    match interface {
        Some(i) => format!(" (pcapng interface {i})"),
        None => String::new(),
    }
}

fn truncated(offset: usize, record: usize, what: &'static str) -> Error {
    Error::Truncated { offset: offset as u64, record: record as u64, what }
}

fn malformed(offset: usize, record: usize, what: impl std::fmt::Display) -> Error {
    Error::Malformed { offset: offset as u64, what: format!("record {record}: {what}") }
}

fn check_caplen(offset: usize, record: usize, caplen: u32) -> Result<(), Error> {
    if caplen > MAX_CAPLEN {
        return Err(Error::CapLen { offset: offset as u64, record: record as u64, caplen, limit: MAX_CAPLEN });
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    /// Reads a `u16` at `at`; `None` if out of bounds.
    fn u16(self, b: &[u8], at: usize) -> Option<u16> {
        let raw: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(match self {
            Endian::Little => u16::from_le_bytes(raw),
            Endian::Big => u16::from_be_bytes(raw),
        })
    }

    /// Reads a `u32` at `at`; `None` if out of bounds.
    fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let raw: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(match self {
            Endian::Little => u32::from_le_bytes(raw),
            Endian::Big => u32::from_be_bytes(raw),
        })
    }

    /// Reads a `u64` at `at`; `None` if out of bounds.
    fn u64(self, b: &[u8], at: usize) -> Option<u64> {
        let raw: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
        Some(match self {
            Endian::Little => u64::from_le_bytes(raw),
            Endian::Big => u64::from_be_bytes(raw),
        })
    }
}

/// Detects the format and indexes every record of `d`; with the link type of every
/// record when one is not Ethernet (a cooked capture; empty otherwise).
fn parse(d: &[u8]) -> Result<(Vec<Record>, Format, Vec<u16>), Error> {
    let Some(magic) = d.get(..4) else {
        return Err(truncated(0, 0, if d.is_empty() { "empty file" } else { "file shorter than any capture header" }));
    };
    let magic: [u8; 4] = [magic[0], magic[1], magic[2], magic[3]];
    let classic = |e, f| {
        let (records, format, link) = classic::parse(d, e, f)?;
        let links = if link == LINKTYPE_ETHERNET { Vec::new() } else { vec![link as u16; records.len()] };
        Ok((records, format, links))
    };
    match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => classic(Endian::Little, Format::PcapMicro),
        [0xa1, 0xb2, 0xc3, 0xd4] => classic(Endian::Big, Format::PcapMicro),
        [0x4d, 0x3c, 0xb2, 0xa1] => classic(Endian::Little, Format::PcapNano),
        [0xa1, 0xb2, 0x3c, 0x4d] => classic(Endian::Big, Format::PcapNano),
        [0x0a, 0x0d, 0x0d, 0x0a] => pcapng::parse(d).map(|(r, links)| (r, Format::PcapNg, links)),
        _ => Err(Error::BadMagic { magic }),
    }
}

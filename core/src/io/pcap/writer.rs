//! Writing classic pcap.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::classic::{CLASSIC_HEADER_LEN, CLASSIC_RECORD_HEADER_LEN};
use super::{Error, LINKTYPE_ETHERNET, NS_PER_SEC};

/// Snaplen written into files produced by [`Writer`]; larger frames are
/// rejected by [`Writer::write_packet`].
const WRITER_SNAPLEN: u32 = 65_535;

/// The latest timestamp a record can carry: 32-bit seconds (year 2106).
pub const MAX_TS_NS: u64 = (u32::MAX as u64 + 1) * NS_PER_SEC - 1;

/// Writes classic pcap, nanosecond magic (0xa1b23c4d little-endian),
/// linktype 1 (Ethernet), snaplen 65535.
///
/// No buffering is done here: wrap a `File` in a `BufWriter`.
pub struct Writer<W: Write> {
    out: W,
}

impl<W: Write> Writer<W> {
    /// Writes the global header.
    pub fn new(mut out: W) -> std::io::Result<Self> {
        let mut h = [0u8; CLASSIC_HEADER_LEN];
        h[0..4].copy_from_slice(&0xa1b2_3c4du32.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone, sigfigs: 0
        h[16..20].copy_from_slice(&WRITER_SNAPLEN.to_le_bytes());
        h[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&h)?;
        Ok(Writer { out })
    }

    /// Writes one packet with `caplen = origlen = data.len()`.
    ///
    /// Fails with `InvalidInput` if `data` is longer than the snaplen (65535)
    /// or `ts_ns` is past the 32-bit seconds range (year 2106).
    pub fn write_packet(&mut self, ts_ns: u64, data: &[u8]) -> std::io::Result<()> {
        use std::io::{Error as IoError, ErrorKind};
        let len = u32::try_from(data.len()).ok().filter(|&l| l <= WRITER_SNAPLEN).ok_or_else(|| {
            IoError::new(
                ErrorKind::InvalidInput,
                format!("packet of {} bytes exceeds snaplen {WRITER_SNAPLEN}", data.len()),
            )
        })?;
        let sec = u32::try_from(ts_ns / NS_PER_SEC).map_err(|_| {
            IoError::new(ErrorKind::InvalidInput, format!("timestamp {ts_ns} ns does not fit pcap's 32-bit seconds"))
        })?;
        let nsec = (ts_ns % NS_PER_SEC) as u32;
        let mut h = [0u8; CLASSIC_RECORD_HEADER_LEN];
        h[0..4].copy_from_slice(&sec.to_le_bytes());
        h[4..8].copy_from_slice(&nsec.to_le_bytes());
        h[8..12].copy_from_slice(&len.to_le_bytes());
        h[12..16].copy_from_slice(&len.to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(data)
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Convenience: write a whole pcap file of `(ts_ns, frame)` pairs.
pub fn write_file(path: &Path, packets: impl IntoIterator<Item = (u64, impl AsRef<[u8]>)>) -> Result<(), Error> {
    let io_err = |source| Error::Io { path: path.display().to_string(), source };
    let file = File::create(path).map_err(io_err)?;
    let mut w = Writer::new(BufWriter::new(file)).map_err(io_err)?;
    for (ts, frame) in packets {
        w.write_packet(ts, frame.as_ref()).map_err(io_err)?;
    }
    let buf = w.into_inner().map_err(io_err)?;
    buf.into_inner().map_err(|e| io_err(e.into_error()))?;
    Ok(())
}

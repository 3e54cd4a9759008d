//! Classic pcap: the global header and the records that follow it.

use super::{check_caplen, cooked, truncated, Endian, Error, Format, Record, NS_PER_SEC};

pub(super) const CLASSIC_HEADER_LEN: usize = 24;
pub(super) const CLASSIC_RECORD_HEADER_LEN: usize = 16;

/// Indexes every record of the classic pcap `d`, whose magic said byte order `e`
/// and timestamp unit `format`; also returns the link type (Ethernet or cooked).
pub(super) fn parse(d: &[u8], e: Endian, format: Format) -> Result<(Vec<Record>, Format, u32), Error> {
    if d.len() < CLASSIC_HEADER_LEN {
        return Err(truncated(0, 0, "incomplete pcap global header"));
    }
    let rd = |at| e.u32(d, at).unwrap_or(0); // in bounds: checked just above / below
    let linktype = rd(20) & 0xffff;
    if !cooked::readable(linktype) {
        return Err(Error::LinkType { linktype, offset: 20, interface: None });
    }
    let frac_ns: u64 = if format == Format::PcapNano { 1 } else { 1_000 };
    let mut records = Vec::with_capacity((d.len() - CLASSIC_HEADER_LEN) / 80);
    let mut pos = CLASSIC_HEADER_LEN;
    while pos < d.len() {
        let rec = records.len();
        if d.len() - pos < CLASSIC_RECORD_HEADER_LEN {
            return Err(truncated(pos, rec, "incomplete record header"));
        }
        let sec = u64::from(rd(pos));
        let frac = u64::from(rd(pos + 4));
        let caplen = rd(pos + 8);
        let origlen = rd(pos + 12);
        check_caplen(pos, rec, caplen)?;
        let data_start = pos + CLASSIC_RECORD_HEADER_LEN;
        if d.len() - data_start < caplen as usize {
            return Err(truncated(pos, rec, "packet data runs past end of file"));
        }
        records.push(Record {
            offset: data_start as u64,
            caplen,
            origlen,
            // Cannot overflow: sec < 2^32, frac * 1000 < 2^42.
            ts_ns: sec * NS_PER_SEC + frac * frac_ns,
        });
        pos = data_start + caplen as usize;
    }
    Ok((records, format, linktype))
}

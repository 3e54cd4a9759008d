//! pcapng: sections, interface descriptions and the three packet block kinds.

use super::{check_caplen, cooked, malformed, truncated, Endian, Error, Record, LINKTYPE_ETHERNET, NS_PER_SEC};

pub(super) const BT_SHB: u32 = 0x0A0D_0D0A;
pub(super) const BT_IDB: u32 = 0x0000_0001;
pub(super) const BT_PB: u32 = 0x0000_0002;
pub(super) const BT_SPB: u32 = 0x0000_0003;
pub(super) const BT_EPB: u32 = 0x0000_0006;

const OPT_ENDOFOPT: u16 = 0;
pub(super) const OPT_IF_TSRESOL: u16 = 9;
pub(super) const OPT_IF_TSOFFSET: u16 = 14;

/// Timestamp resolution of a pcapng interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TsResol {
    /// Units of 10^-n seconds.
    Pow10(u8),
    /// Units of 2^-n seconds.
    Pow2(u8),
}

impl TsResol {
    pub(super) fn from_option(v: u8) -> TsResol {
        if v & 0x80 != 0 {
            TsResol::Pow2(v & 0x7f)
        } else {
            TsResol::Pow10(v)
        }
    }

    /// Converts a count of units to nanoseconds (exact up to rounding down).
    pub(super) fn to_ns(self, units: u64) -> u128 {
        let u = u128::from(units);
        match self {
            TsResol::Pow10(n) if n <= 9 => u * 10u128.pow(u32::from(9 - n)),
            TsResol::Pow10(n) => match 10u128.checked_pow(u32::from(n - 9)) {
                Some(div) => u / div,
                None => 0,
            },
            // u * 1e9 < 2^94, and the shift is at most 127.
            TsResol::Pow2(n) => (u * u128::from(NS_PER_SEC)) >> n,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Interface {
    pub(super) linktype: u32,
    pub(super) snaplen: u32,
    pub(super) resol: TsResol,
    pub(super) offset_s: i64,
}

impl Interface {
    pub(super) fn ts_ns(&self, units: u64) -> u64 {
        let ns = self.resol.to_ns(units) as i128 + i128::from(self.offset_s) * NS_PER_SEC as i128;
        ns.clamp(0, i128::from(u64::MAX)) as u64
    }
}

/// Looks up the interface of a packet block and checks it is Ethernet (or cooked).
fn packet_iface(ifaces: &[Interface], id: u32, block: usize, rec: usize) -> Result<&Interface, Error> {
    let iface = ifaces.get(id as usize).ok_or(Error::UnknownInterface {
        offset: block as u64,
        record: rec as u64,
        interface: id,
        declared: ifaces.len() as u32,
    })?;
    if !cooked::readable(iface.linktype) {
        return Err(Error::LinkType { linktype: iface.linktype, offset: block as u64, interface: Some(id) });
    }
    Ok(iface)
}

/// Parses the option area `opts` of the IDB at file offset `block` (met
/// while parsing packet record `rec`) into `iface`.
fn parse_idb_options(opts: &[u8], e: Endian, block: usize, rec: usize, iface: &mut Interface) -> Result<(), Error> {
    let mut o = 0usize;
    while opts.len() - o >= 4 {
        let code = e.u16(opts, o).unwrap_or(0);
        let len = usize::from(e.u16(opts, o + 2).unwrap_or(0));
        if code == OPT_ENDOFOPT {
            break;
        }
        let vstart = o + 4;
        let Some(value) = opts.get(vstart..vstart + len) else {
            return Err(malformed(
                block,
                rec,
                format!("interface option {code} (length {len}) runs past end of block"),
            ));
        };
        match code {
            OPT_IF_TSRESOL => {
                if len != 1 {
                    return Err(malformed(block, rec, format!("if_tsresol has length {len}, expected 1")));
                }
                iface.resol = TsResol::from_option(value[0]);
            }
            OPT_IF_TSOFFSET => {
                if len != 8 {
                    return Err(malformed(block, rec, format!("if_tsoffset has length {len}, expected 8")));
                }
                iface.offset_s = e.u64(value, 0).unwrap_or(0) as i64;
            }
            _ => {}
        }
        // Values are padded to 4 bytes; tolerate a missing final pad.
        o = (vstart + len.next_multiple_of(4)).min(opts.len());
    }
    Ok(())
}

/// Records of packets on non-Ethernet (cooked) interfaces: empty while every packet so
/// far is Ethernet, then one link type per record.
fn note_link(links: &mut Vec<u16>, records: usize, linktype: u32) {
    if links.is_empty() && linktype == LINKTYPE_ETHERNET {
        return;
    }
    if links.is_empty() {
        links.resize(records, LINKTYPE_ETHERNET as u16);
    }
    links.push(linktype as u16);
}

/// Indexes every packet record of the pcapng file `d`; also returns the link type of
/// each record when one is not Ethernet (empty otherwise).
pub(super) fn parse(d: &[u8]) -> Result<(Vec<Record>, Vec<u16>), Error> {
    let mut records = Vec::new();
    let mut links = Vec::new();
    let mut ifaces: Vec<Interface> = Vec::new();
    // Replaced by the first SHB, which the magic check guarantees is first.
    let mut e = Endian::Little;
    let mut pos = 0usize;
    while pos < d.len() {
        let rec = records.len();
        let avail = d.len() - pos;
        if avail < 8 {
            return Err(truncated(pos, rec, "incomplete block header"));
        }
        // The SHB type is a byte-order palindrome, so this works before the
        // section's byte order is known.
        let btype = e.u32(d, pos).unwrap_or(0);
        if btype == BT_SHB {
            if avail < 12 {
                return Err(truncated(pos, rec, "incomplete section header block"));
            }
            e = match d[pos + 8..pos + 12] {
                [0x4d, 0x3c, 0x2b, 0x1a] => Endian::Little,
                [0x1a, 0x2b, 0x3c, 0x4d] => Endian::Big,
                ref m => {
                    return Err(malformed(pos, rec, format!("section header byte-order magic {m:02x?} is invalid")));
                }
            };
        }
        let total = e.u32(d, pos + 4).unwrap_or(0);
        if total < 12 || !total.is_multiple_of(4) {
            return Err(malformed(pos, rec, format!("block total length {total} is < 12 or not a multiple of 4")));
        }
        let total = total as usize;
        if total > avail {
            return Err(truncated(pos, rec, "block runs past end of file"));
        }
        let trailer = e.u32(d, pos + total - 4).unwrap_or(0);
        if trailer as usize != total {
            return Err(malformed(pos, rec, format!("trailing block length {trailer} differs from leading {total}")));
        }
        let body_at = pos + 8;
        let body = &d[body_at..pos + total - 4];
        match btype {
            BT_SHB => {
                if body.len() < 16 {
                    return Err(malformed(pos, rec, "section header block shorter than 28 bytes"));
                }
                let major = e.u16(body, 4).unwrap_or(0);
                if major != 1 {
                    return Err(malformed(pos, rec, format!("unsupported pcapng major version {major}")));
                }
                ifaces.clear();
            }
            BT_IDB => {
                if body.len() < 8 {
                    return Err(malformed(pos, rec, "interface description block shorter than 20 bytes"));
                }
                let mut iface = Interface {
                    linktype: u32::from(e.u16(body, 0).unwrap_or(0)),
                    snaplen: e.u32(body, 4).unwrap_or(0),
                    resol: TsResol::Pow10(6),
                    offset_s: 0,
                };
                parse_idb_options(&body[8..], e, pos, rec, &mut iface)?;
                ifaces.push(iface);
            }
            BT_EPB | BT_PB => {
                if body.len() < 20 {
                    return Err(malformed(pos, rec, "packet block shorter than 32 bytes"));
                }
                let id =
                    if btype == BT_EPB { e.u32(body, 0).unwrap_or(0) } else { u32::from(e.u16(body, 0).unwrap_or(0)) };
                let iface = packet_iface(&ifaces, id, pos, rec)?;
                note_link(&mut links, records.len(), iface.linktype);
                let hi = u64::from(e.u32(body, 4).unwrap_or(0));
                let lo = u64::from(e.u32(body, 8).unwrap_or(0));
                let caplen = e.u32(body, 12).unwrap_or(0);
                let origlen = e.u32(body, 16).unwrap_or(0);
                check_caplen(pos, rec, caplen)?;
                if caplen as usize > body.len() - 20 {
                    return Err(malformed(
                        pos,
                        rec,
                        format!("caplen {caplen} exceeds the {} bytes of packet data in the block", body.len() - 20),
                    ));
                }
                records.push(Record {
                    offset: (body_at + 20) as u64,
                    caplen,
                    origlen,
                    ts_ns: iface.ts_ns((hi << 32) | lo),
                });
            }
            BT_SPB => {
                if body.len() < 4 {
                    return Err(malformed(pos, rec, "simple packet block shorter than 16 bytes"));
                }
                let iface = packet_iface(&ifaces, 0, pos, rec)?;
                note_link(&mut links, records.len(), iface.linktype);
                let origlen = e.u32(body, 0).unwrap_or(0);
                let mut caplen = origlen.min((body.len() - 4) as u32);
                if iface.snaplen != 0 {
                    caplen = caplen.min(iface.snaplen);
                }
                check_caplen(pos, rec, caplen)?;
                records.push(Record { offset: (body_at + 4) as u64, caplen, origlen, ts_ns: 0 });
            }
            _ => {} // NRB, ISB, DSB, custom, ...: not needed.
        }
        pos += total;
    }
    Ok((records, links))
}

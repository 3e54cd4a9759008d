//! Unit tests of the pcapng reader.

use super::*;

/// A pcapng file exercising every timestamp/packet-block variant.
/// `custom`: include a custom block (tshark would show it as a frame).
pub(super) fn pcapng_file(e: Endian, custom: bool) -> Vec<u8> {
    let (a, b, c, d) = (frame(60, 1), frame(61, 2), frame(62, 3), frame(64, 4));
    cat(&[
        shb(e),
        idb(e, 1, 0, Some(9), None),                  // if 0: ns
        idb(e, 1, 0, None, None),                     // if 1: default µs
        idb(e, 1, 0, Some(6), Some(100)),             // if 2: µs, +100 s
        idb(e, 1, 64, Some(0x80 | 10), Some(-1)),     // if 3: 2^-10 s, -1 s, snaplen 64
        block(e, 4, &[0; 4]),                         // NRB (end record only): skipped
        epb(e, 0, 1_700_000_000_123_456_789, 60, &a), // 60 bytes: no padding
        epb(e, 1, 1_700_000_000_123_456, 100, &b),    // 61 bytes: 3 pad
        epb(e, 2, 5_000_001, 62, &c),
        epb(e, 3, 3 * 1024 + 512, 64, &d),
        spb(e, 64, &d),
        pb(e, 1, 7, &a),
        if custom {
            block(e, 0x0000_0BAD, &[0xee; 20]) // custom block: skipped
        } else {
            vec![]
        },
        block(e, 5, &[0; 12]), // ISB: skipped
    ])
}

fn pcapng_case(e: Endian) {
    let (a, b, c, d) = (frame(60, 1), frame(61, 2), frame(62, 3), frame(64, 4));
    let cap = ok(pcapng_file(e, true));
    assert_eq!(cap.format(), Format::PcapNg);
    let t: Vec<u64> = cap.records().iter().map(|r| r.ts_ns).collect();
    assert_eq!(
        t,
        vec![
            1_700_000_000_123_456_789,
            1_700_000_000_123_456_000,
            105_000_001_000,
            3_500_000_000 - 1_000_000_000,
            0,
            7_000,
        ]
    );
    let lens: Vec<(u32, u32)> = cap.records().iter().map(|r| (r.caplen, r.origlen)).collect();
    assert_eq!(lens, vec![(60, 60), (61, 100), (62, 62), (64, 64), (64, 64), (60, 60)]);
    // Exact offsets: SHB 28, IDBs 20+12(if_name)+8(tsresol)/12(tsoffset)+4(end)
    let shb_len = 28;
    let idb_lens = [20 + 8 + 8 + 4, 20 + 8 + 4, 20 + 8 + 8 + 12 + 4, 20 + 8 + 8 + 12 + 4];
    let first_epb = shb_len + idb_lens.iter().sum::<usize>() + 16;
    assert_eq!(cap.records()[0].offset as usize, first_epb + 28);
    let epb_len = |n: usize| 32 + n.next_multiple_of(4) + 12;
    assert_eq!(cap.records()[1].offset as usize, first_epb + epb_len(60) + 28);
    assert_packets(&cap, &[&a, &b, &c, &d, &d, &a]);
}

#[test]
fn pcapng_le() {
    pcapng_case(Endian::Little);
}
#[test]
fn pcapng_be() {
    pcapng_case(Endian::Big);
}

#[test]
fn pcapng_multi_section_mixed_endianness() {
    let (a, b) = (frame(20, 1), frame(30, 2));
    let file = cat(&[
        shb(Endian::Little),
        idb(Endian::Little, 113, 0, None, None), // if 0: Linux SLL, unused
        idb(Endian::Little, 1, 0, Some(9), None),
        epb(Endian::Little, 1, 42, 20, &a),
        shb(Endian::Big),
        idb(Endian::Big, 1, 0, Some(3), None), // ms
        epb(Endian::Big, 0, 42, 30, &b),
    ]);
    let cap = ok(file.clone());
    assert_eq!(cap.records().iter().map(|r| r.ts_ns).collect::<Vec<_>>(), vec![42, 42_000_000]);
    assert_packets(&cap, &[&a, &b]);
    // interface 1 does not exist in the second section
    let mut bad = file;
    bad.extend(epb(Endian::Big, 1, 0, 4, &[1, 2, 3, 4]));
    let at = bad.len() - epb(Endian::Big, 1, 0, 4, &[1, 2, 3, 4]).len();
    match Capture::from_bytes(bad).unwrap_err() {
        Error::UnknownInterface { offset, record: 2, interface: 1, declared: 1 } => {
            assert_eq!(offset as usize, at)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pcapng_spb_snaplen_clamp() {
    let e = Endian::Little;
    let cap = ok(cat(&[shb(e), idb(e, 1, 32, None, None), spb(e, 99, &[7; 40]), spb(e, 3, &[8; 3])]));
    let first_spb = 28 + 32;
    assert_eq!(
        cap.records(),
        &[
            Record { offset: first_spb + 12, caplen: 32, origlen: 99, ts_ns: 0 },
            Record { offset: first_spb + 56 + 12, caplen: 3, origlen: 3, ts_ns: 0 },
        ]
    );
    assert_eq!(cap.packet(0), &[7; 32]);
    assert_eq!(cap.packet(1), &[8; 3]);
    // snaplen 0, origlen beyond the body: caplen = body (incl. padding).
    // Wireshark rejects such a block; we follow min(origlen, body).
    let b = frame(61, 2);
    let cap = ok(cat(&[shb(e), idb(e, 1, 0, None, None), spb(e, 1000, &b)]));
    assert_eq!((cap.records()[0].caplen, cap.records()[0].origlen), (64, 1000));
    assert_eq!(&cap.packet(0)[..61], &b[..]);
    assert_eq!(&cap.packet(0)[61..], &[0, 0, 0]);
}

#[test]
fn pcapng_header_only_and_idb_only() {
    assert!(ok(shb(Endian::Big)).is_empty());
    assert!(ok(cat(&[shb(Endian::Little), idb(Endian::Little, 101, 0, None, None)])).is_empty());
}

#[test]
fn pcapng_foreign_linktype() {
    for lt in [101u16, 105] {
        let e = Endian::Little;
        let file = cat(&[shb(e), idb(e, 1, 0, None, None), idb(e, lt, 0, None, None), epb(e, 1, 0, 4, &[0; 4])]);
        let at = file.len() - 48;
        match Capture::from_bytes(file).unwrap_err() {
            Error::LinkType { linktype, offset, interface: Some(1) } => {
                assert_eq!(linktype, u32::from(lt));
                assert_eq!(offset as usize, at);
            }
            other => panic!("{other:?}"),
        }
    }
    // SPB uses interface 0
    let e = Endian::Big;
    let err = Capture::from_bytes(cat(&[shb(e), idb(e, 105, 0, None, None), spb(e, 4, &[0; 4])])).unwrap_err();
    assert!(matches!(err, Error::LinkType { linktype: 105, interface: Some(0), .. }), "{err:?}");
    let err = Capture::from_bytes(cat(&[shb(e), spb(e, 4, &[0; 4])])).unwrap_err();
    assert!(matches!(err, Error::UnknownInterface { interface: 0, declared: 0, .. }), "{err:?}");
}

#[test]
fn pcapng_bad_block_lengths() {
    let e = Endian::Little;
    let base = cat(&[shb(e), idb(e, 1, 0, None, None)]);
    let at = base.len() as u64;
    let with = |tail: &[u8]| {
        let mut v = base.clone();
        v.extend_from_slice(tail);
        Capture::from_bytes(v).unwrap_err()
    };
    // total length 8 (< 12)
    let err = with(&[6, 0, 0, 0, 8, 0, 0, 0, 8, 0, 0, 0]);
    assert!(matches!(err, Error::Malformed { offset, .. } if offset == at), "{err:?}");
    // total length 14 (not a multiple of 4)
    let err = with(&[6, 0, 0, 0, 14, 0, 0, 0, 0, 0, 14, 0, 0, 0, 0, 0]);
    assert!(matches!(err, Error::Malformed { offset, .. } if offset == at), "{err:?}");
    // total length 0xfffffff0 (runs past end)
    let err = with(&[6, 0, 0, 0, 0xf0, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    assert!(matches!(err, Error::Truncated { offset, record: 0, .. } if offset == at), "{err:?}");
    // trailing length mismatch
    let err = with(&[4, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0, 0]);
    assert!(
        matches!(err, Error::Malformed { offset, ref what } if offset == at && what.contains("trailing")),
        "{err:?}"
    );
    // EPB whose caplen exceeds its body
    let mut blk = epb(e, 0, 0, 8, &[1; 8]);
    blk[20..24].copy_from_slice(&200u32.to_le_bytes());
    let err = with(&blk);
    assert!(
        matches!(err, Error::Malformed { offset, ref what } if offset == at && what.contains("record 0")),
        "{err:?}"
    );
    // EPB caplen above MAX_CAPLEN
    blk[20..24].copy_from_slice(&(MAX_CAPLEN + 1).to_le_bytes());
    assert!(matches!(with(&blk), Error::CapLen { record: 0, .. }));
    // EPB too short for its fixed fields
    let err = with(&block(e, BT_EPB, &[0; 8]));
    assert!(matches!(err, Error::Malformed { .. }), "{err:?}");
    // bad byte-order magic in a second SHB
    let mut s = shb(e);
    s[8] = 0;
    assert!(matches!(with(&s), Error::Malformed { offset, .. } if offset == at));
    // unsupported version
    let mut s = shb(e);
    s[12] = 2;
    assert!(
        matches!(with(&s), Error::Malformed { ref what, .. } if what == "record 0: unsupported pcapng major version 2")
    );
    // bad option lengths
    let mut b = Vec::new();
    put16(&mut b, e, 1);
    put16(&mut b, e, 0);
    put32(&mut b, e, 0);
    put16(&mut b, e, OPT_IF_TSRESOL);
    put16(&mut b, e, 2);
    put32(&mut b, e, 6);
    assert!(matches!(with(&block(e, BT_IDB, &b)), Error::Malformed { ref what, .. } if what.contains("if_tsresol")));
    let mut b = b[..8].to_vec();
    put16(&mut b, e, 2);
    put16(&mut b, e, 100);
    put32(&mut b, e, 0);
    assert!(matches!(with(&block(e, BT_IDB, &b)), Error::Malformed { ref what, .. } if what.contains("past end")));
}

#[test]
fn pcapng_every_prefix() {
    for e in [Endian::Little, Endian::Big] {
        let blocks = vec![
            shb(e),
            idb(e, 1, 0, Some(9), None),
            epb(e, 0, 1, 5, &[1; 5]),
            block(e, 5, &[0; 8]),
            spb(e, 6, &[2; 6]),
            epb(e, 0, 2, 4, &[3; 4]),
        ];
        let packets_in = [0usize, 0, 1, 0, 1, 1];
        let v = cat(&blocks);
        let mut bounds = vec![]; // (end offset, records so far)
        let (mut end, mut n) = (0, 0);
        for (b, p) in blocks.iter().zip(packets_in) {
            end += b.len();
            n += p;
            bounds.push((end, n));
        }
        for len in 0..=v.len() {
            let res = Capture::from_bytes(v[..len].to_vec());
            if let Some(&(_, k)) = bounds.iter().find(|&&(b, _)| b == len) {
                let cap = res.unwrap_or_else(|err| panic!("prefix {len}: {err}"));
                assert_eq!(cap.len(), k, "prefix {len}");
            } else {
                match res {
                    Err(Error::Truncated { offset, record, .. }) => {
                        let done = bounds.iter().rfind(|&&(b, _)| b <= len);
                        let (o, k) = done.copied().unwrap_or((0, 0));
                        assert_eq!((offset as usize, record as usize), (o, k), "prefix {len}");
                    }
                    other => panic!("prefix {len}: expected Truncated, got {other:?}"),
                }
            }
        }
    }
}

#[test]
fn tsresol_conversion() {
    assert_eq!(TsResol::from_option(6), TsResol::Pow10(6));
    assert_eq!(TsResol::from_option(0x8a), TsResol::Pow2(10));
    assert_eq!(TsResol::Pow10(0).to_ns(3), 3_000_000_000);
    assert_eq!(TsResol::Pow10(12).to_ns(5_000), 5);
    assert_eq!(TsResol::Pow10(127).to_ns(u64::MAX), 0);
    assert_eq!(TsResol::Pow2(0).to_ns(2), 2_000_000_000);
    assert_eq!(TsResol::Pow2(127).to_ns(u64::MAX), 0);
    assert_eq!(TsResol::Pow2(30).to_ns(1 << 30), 1_000_000_000);
    let i = Interface { linktype: 1, snaplen: 0, resol: TsResol::Pow10(0), offset_s: 0 };
    assert_eq!(i.ts_ns(u64::MAX), u64::MAX); // saturates
    let i = Interface { offset_s: -10, ..i };
    assert_eq!(i.ts_ns(3), 0); // saturates at 0
}

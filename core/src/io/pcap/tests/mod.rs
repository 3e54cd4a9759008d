//! Unit tests of the capture reader and writer.

use super::pcapng::{Interface, TsResol, BT_EPB, BT_IDB, BT_PB, BT_SHB, BT_SPB, OPT_IF_TSOFFSET, OPT_IF_TSRESOL};
use super::*;

// ---------- byte-exact builders ----------

fn put16(v: &mut Vec<u8>, e: Endian, x: u16) {
    v.extend_from_slice(&match e {
        Endian::Little => x.to_le_bytes(),
        Endian::Big => x.to_be_bytes(),
    });
}
fn put32(v: &mut Vec<u8>, e: Endian, x: u32) {
    v.extend_from_slice(&match e {
        Endian::Little => x.to_le_bytes(),
        Endian::Big => x.to_be_bytes(),
    });
}
fn put64(v: &mut Vec<u8>, e: Endian, x: u64) {
    v.extend_from_slice(&match e {
        Endian::Little => x.to_le_bytes(),
        Endian::Big => x.to_be_bytes(),
    });
}

/// Classic pcap file. `pkts`: (sec, frac, origlen, data).
fn classic(e: Endian, nano: bool, linktype: u32, pkts: &[(u32, u32, u32, &[u8])]) -> Vec<u8> {
    let mut v = Vec::new();
    put32(&mut v, e, if nano { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
    put16(&mut v, e, 2);
    put16(&mut v, e, 4);
    put32(&mut v, e, 0);
    put32(&mut v, e, 0);
    put32(&mut v, e, 65535);
    put32(&mut v, e, linktype);
    for &(s, f, orig, data) in pkts {
        put32(&mut v, e, s);
        put32(&mut v, e, f);
        put32(&mut v, e, data.len() as u32);
        put32(&mut v, e, orig);
        v.extend_from_slice(data);
    }
    v
}

/// A generic pcapng block with the given body (padded to 4).
fn block(e: Endian, btype: u32, body: &[u8]) -> Vec<u8> {
    let mut b = body.to_vec();
    while !b.len().is_multiple_of(4) {
        b.push(0);
    }
    let total = 12 + b.len() as u32;
    let mut v = Vec::new();
    put32(&mut v, e, btype);
    put32(&mut v, e, total);
    v.extend_from_slice(&b);
    put32(&mut v, e, total);
    v
}

fn shb(e: Endian) -> Vec<u8> {
    let mut b = Vec::new();
    put32(&mut b, e, 0x1a2b_3c4d);
    put16(&mut b, e, 1);
    put16(&mut b, e, 0);
    put64(&mut b, e, u64::MAX); // section length unknown
    block(e, BT_SHB, &b)
}

/// IDB with optional if_tsresol and if_tsoffset.
fn idb(e: Endian, linktype: u16, snaplen: u32, tsresol: Option<u8>, tsoff: Option<i64>) -> Vec<u8> {
    let mut b = Vec::new();
    put16(&mut b, e, linktype);
    put16(&mut b, e, 0);
    put32(&mut b, e, snaplen);
    // an unrelated option first (if_name = "eth0"), to test skipping
    put16(&mut b, e, 2);
    put16(&mut b, e, 4);
    b.extend_from_slice(b"eth0");
    if let Some(r) = tsresol {
        put16(&mut b, e, OPT_IF_TSRESOL);
        put16(&mut b, e, 1);
        b.extend_from_slice(&[r, 0, 0, 0]);
    }
    if let Some(o) = tsoff {
        put16(&mut b, e, OPT_IF_TSOFFSET);
        put16(&mut b, e, 8);
        put64(&mut b, e, o as u64);
    }
    put16(&mut b, e, 0);
    put16(&mut b, e, 0);
    block(e, BT_IDB, &b)
}

fn epb(e: Endian, iface: u32, ts: u64, origlen: u32, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    put32(&mut b, e, iface);
    put32(&mut b, e, (ts >> 32) as u32);
    put32(&mut b, e, ts as u32);
    put32(&mut b, e, data.len() as u32);
    put32(&mut b, e, origlen);
    b.extend_from_slice(data);
    while b.len() % 4 != 0 {
        b.push(0);
    }
    // an epb_flags option, then end of options
    put16(&mut b, e, 2);
    put16(&mut b, e, 4);
    put32(&mut b, e, 0);
    put32(&mut b, e, 0);
    block(e, BT_EPB, &b)
}

fn spb(e: Endian, origlen: u32, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    put32(&mut b, e, origlen);
    b.extend_from_slice(data);
    block(e, BT_SPB, &b)
}

fn pb(e: Endian, iface: u16, ts: u64, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    put16(&mut b, e, iface);
    put16(&mut b, e, 0);
    put32(&mut b, e, (ts >> 32) as u32);
    put32(&mut b, e, ts as u32);
    put32(&mut b, e, data.len() as u32);
    put32(&mut b, e, data.len() as u32);
    b.extend_from_slice(data);
    block(e, BT_PB, &b)
}

fn frame(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| seed.wrapping_add(i as u8)).collect()
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn ok(bytes: Vec<u8>) -> Capture {
    match Capture::from_bytes(bytes) {
        Ok(c) => c,
        Err(e) => panic!("expected Ok, got {e}"),
    }
}

fn assert_packets(c: &Capture, frames: &[&[u8]]) {
    assert_eq!(c.len(), frames.len());
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(c.packet(i), *f, "packet {i}");
        let r = c.records()[i];
        assert_eq!(&c.data()[r.offset as usize..][..r.caplen as usize], *f);
    }
}

// ---------- classic pcap ----------

fn classic_case(e: Endian, nano: bool) {
    let (a, b, c3) = (frame(60, 1), frame(1514, 7), frame(0, 0));
    let pkts: [(u32, u32, u32, &[u8]); 3] =
        [(1_700_000_000, 123_456, 60, &a), (1_700_000_001, 999_999, 1600, &b), (5, 0, 0, &c3)];
    let cap = ok(classic(e, nano, 1, &pkts));
    let mult = if nano { 1 } else { 1000 };
    assert_eq!(cap.format(), if nano { Format::PcapNano } else { Format::PcapMicro });
    assert_eq!(
        cap.records(),
        &[
            Record { offset: 40, caplen: 60, origlen: 60, ts_ns: 1_700_000_000 * NS_PER_SEC + 123_456 * mult },
            Record { offset: 116, caplen: 1514, origlen: 1600, ts_ns: 1_700_000_001 * NS_PER_SEC + 999_999 * mult },
            Record { offset: 1646, caplen: 0, origlen: 0, ts_ns: 5 * NS_PER_SEC },
        ]
    );
    assert_packets(&cap, &[&a, &b, &c3]);
    assert!(!cap.is_empty());
}

#[test]
fn classic_le_micro() {
    classic_case(Endian::Little, false);
}
#[test]
fn classic_be_micro() {
    classic_case(Endian::Big, false);
}
#[test]
fn classic_le_nano() {
    classic_case(Endian::Little, true);
}
#[test]
fn classic_be_nano() {
    classic_case(Endian::Big, true);
}

#[test]
fn classic_header_only_is_empty_capture() {
    let cap = ok(classic(Endian::Little, false, 1, &[]));
    assert!(cap.is_empty());
    assert_eq!(cap.len(), 0);
    assert_eq!(cap.data().len(), 24);
}

#[test]
fn classic_fcs_bits_ignored_reserved_bits_ignored() {
    // FCS length 4 (in 16-bit units: 2) with the "present" flag (bit 26),
    // plus a reserved bit: still Ethernet.
    for lt in [0x2400_0001u32, 0xf000_0001, 0x0001_0001, 0x0400_0001] {
        let cap = ok(classic(Endian::Big, true, lt, &[(1, 2, 3, &[1, 2, 3])]));
        assert_eq!(cap.len(), 1, "linktype field {lt:#x}");
    }
}

#[test]
fn classic_foreign_linktype() {
    for lt in [101u32, 105, 0, 228, 0x1000_0069] {
        let err = Capture::from_bytes(classic(Endian::Little, false, lt, &[])).unwrap_err();
        match err {
            Error::LinkType { linktype, offset: 20, interface: None } => assert_eq!(linktype, lt & 0xffff),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn classic_caplen_limit() {
    let big = vec![0u8; MAX_CAPLEN as usize];
    assert_eq!(ok(classic(Endian::Little, true, 1, &[(0, 0, 0, &big)])).records()[0].caplen, MAX_CAPLEN);
    let too_big = vec![0u8; MAX_CAPLEN as usize + 1];
    let ok_pkt: &[u8] = &[9; 10];
    let err =
        Capture::from_bytes(classic(Endian::Little, true, 1, &[(0, 0, 0, ok_pkt), (0, 0, 0, &too_big)])).unwrap_err();
    assert!(
        matches!(err, Error::CapLen { offset: 50, record: 1, caplen, limit: MAX_CAPLEN } if caplen == MAX_CAPLEN + 1),
        "{err:?}"
    );
    assert!(err.to_string().contains("record 1"));
    // A huge caplen in a header with no data behind it is CapLen too, not an allocation.
    let mut v = classic(Endian::Little, true, 1, &[]);
    v.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    assert!(matches!(Capture::from_bytes(v).unwrap_err(), Error::CapLen { record: 0, offset: 24, .. }));
}

fn three_record_classic() -> (Vec<u8>, Vec<usize>) {
    let pkts: [(u32, u32, u32, &[u8]); 3] = [(1, 1, 5, &[1; 5]), (2, 2, 0, &[]), (3, 3, 9, &[3; 9])];
    let v = classic(Endian::Little, true, 1, &pkts);
    // boundaries: after header, and after each record
    (v, vec![24, 24 + 16 + 5, 24 + 16 + 5 + 16, 24 + 16 + 5 + 16 + 16 + 9])
}

#[test]
fn classic_every_prefix() {
    let (v, bounds) = three_record_classic();
    assert_eq!(*bounds.last().unwrap(), v.len());
    for n in 0..=v.len() {
        let res = Capture::from_bytes(v[..n].to_vec());
        if let Some(k) = bounds.iter().position(|&b| b == n) {
            let cap = res.unwrap_or_else(|e| panic!("prefix {n}: {e}"));
            assert_eq!(cap.len(), k, "prefix {n}");
        } else {
            match res {
                Err(Error::Truncated { offset, record, .. }) => {
                    let k = bounds.iter().filter(|&&b| b <= n).count();
                    let expect_off = if k == 0 { 0 } else { bounds[k - 1] };
                    assert_eq!(offset as usize, expect_off, "prefix {n}");
                    assert_eq!(record as usize, k.saturating_sub(1), "prefix {n}");
                }
                other => panic!("prefix {n}: expected Truncated, got {other:?}"),
            }
        }
    }
}

#[test]
fn empty_and_tiny_files_truncated() {
    for n in 0..4 {
        let err = Capture::from_bytes(vec![0xd4; n]).unwrap_err();
        assert!(matches!(err, Error::Truncated { offset: 0, record: 0, .. }), "{n}: {err:?}");
    }
}

#[test]
fn bad_magic() {
    let zip = b"PK\x03\x04\x14\x00\x00\x00\x08\x00".to_vec();
    match Capture::from_bytes(zip).unwrap_err() {
        Error::BadMagic { magic } => assert_eq!(magic, *b"PK\x03\x04"),
        other => panic!("{other:?}"),
    }
    let e = Capture::from_bytes(b"GIF89a".to_vec()).unwrap_err();
    assert_eq!(e.to_string(), "not a pcap or pcapng file (magic [47, 49, 46, 38])");
}

mod pcapng;
use pcapng::pcapng_file;

// ---------- writer ----------

#[test]
fn writer_bytes_exact() {
    let mut w = Writer::new(Vec::new()).unwrap();
    w.write_packet(1_500_000_000 * NS_PER_SEC + 7, &[0xaa, 0xbb]).unwrap();
    let v = w.into_inner().unwrap();
    let mut want = vec![0x4d, 0x3c, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0];
    want.extend_from_slice(&1_500_000_000u32.to_le_bytes());
    want.extend_from_slice(&[7, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 0xaa, 0xbb]);
    assert_eq!(v, want);
}

#[test]
fn writer_rejects_oversize_and_late_timestamps() {
    let mut w = Writer::new(Vec::new()).unwrap();
    let e = w.write_packet(0, &vec![0; 65_536]).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let e = w.write_packet(u64::from(u32::MAX) * NS_PER_SEC + NS_PER_SEC, &[1]).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    w.write_packet(u64::from(u32::MAX) * NS_PER_SEC + NS_PER_SEC - 1, &vec![1; 65_535]).unwrap();
    assert_eq!(ok(w.into_inner().unwrap()).len(), 1);
}

fn sample_packets() -> Vec<(u64, Vec<u8>)> {
    (0..50u64)
        .map(|i| (1_700_000_000_000_000_000 + i * 1_234_567, frame(14 + (i as usize * 37) % 1500, i as u8)))
        .collect()
}

#[test]
fn roundtrip_writer_capture_via_file_and_mmap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rt.pcap");
    let pkts = sample_packets();
    write_file(&path, pkts.iter().map(|(t, f)| (*t, f))).unwrap();
    let copied = Capture::open(&path).unwrap();
    assert!(matches!(copied.bytes, Bytes::Owned(_)), "a small file is copied");
    let cap = Capture::open_copying_up_to(&path, 0).unwrap();
    assert!(matches!(cap.bytes, Bytes::Mapped(_)), "above the threshold it is mapped");
    assert_eq!(copied.records(), cap.records());
    assert_eq!(cap.format(), Format::PcapNano);
    assert_eq!(cap.len(), pkts.len());
    let mut off = 24u64;
    for (i, (t, f)) in pkts.iter().enumerate() {
        let r = cap.records()[i];
        assert_eq!(r, Record { offset: off + 16, caplen: f.len() as u32, origlen: f.len() as u32, ts_ns: *t });
        assert_eq!(cap.packet(i), &f[..]);
        off += 16 + f.len() as u64;
    }
    assert_eq!(off as usize, cap.data().len());
    // same result from owned bytes
    let owned = Capture::from_bytes(std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(owned.records(), cap.records());
    assert!(format!("{cap:?}").contains("records: 50"));
}

#[test]
fn open_errors() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        Capture::open(&empty).unwrap_err(),
        Error::Truncated { offset: 0, record: 0, what: "empty file" }
    ));
    let missing = dir.path().join("missing.pcap");
    let err = Capture::open(&missing).unwrap_err();
    assert!(matches!(err, Error::Io { ref path, .. } if path.ends_with("missing.pcap")), "{err:?}");
    assert!(err.to_string().contains("missing.pcap"));
    let short = dir.path().join("short.pcap");
    std::fs::write(&short, &classic(Endian::Little, false, 1, &[])[..20]).unwrap();
    assert!(matches!(Capture::open(&short).unwrap_err(), Error::Truncated { offset: 0, record: 0, .. }));
    let bad = write_file(&dir.path().join("no/such/dir.pcap"), [(0u64, [0u8; 1])]).unwrap_err();
    assert!(matches!(bad, Error::Io { .. }));
}

#[test]
fn tshark_reads_writer_output() {
    if !crate::testkit::have_tool("io::pcap::tshark_reads_writer_output", "tshark", "-v") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ts.pcap");
    let pkts = sample_packets();
    write_file(&path, pkts.iter().map(|(t, f)| (*t, f))).unwrap();
    let out = std::process::Command::new("tshark")
        .args(["-n", "-r"])
        .arg(&path)
        .args(["-T", "fields", "-e", "frame.len"])
        .output()
        .unwrap();
    assert!(out.status.success(), "tshark failed: {}", String::from_utf8_lossy(&out.stderr));
    let lens: Vec<usize> = String::from_utf8(out.stdout).unwrap().lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(lens, pkts.iter().map(|(_, f)| f.len()).collect::<Vec<_>>());
}

/// The hand-built test files are also checked against tshark (when
/// present), so the builders above are validated by an independent reader.
#[test]
fn tshark_agrees_with_test_builders() {
    if !crate::testkit::have_tool("io::pcap::tshark_agrees_with_test_builders", "tshark", "-v") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = [
        pcapng_file(Endian::Little, false),
        pcapng_file(Endian::Big, false),
        classic(Endian::Big, false, 1, &[(1_700_000_000, 123_456, 60, &[0; 60]), (2, 5, 14, &[1; 14])]),
        classic(Endian::Little, true, 0x2400_0001, &[(3, 999_999_999, 20, &[2; 20])]),
    ];
    for (n, bytes) in files.into_iter().enumerate() {
        let path = dir.path().join(format!("f{n}"));
        std::fs::write(&path, &bytes).unwrap();
        let cap = Capture::open(&path).unwrap();
        let out = std::process::Command::new("tshark")
            .args(["-n", "-r"])
            .arg(&path)
            .args(["-T", "fields", "-e", "frame.cap_len", "-e", "frame.len", "-e", "frame.time_epoch"])
            .output()
            .unwrap();
        assert!(out.status.success(), "file {n}: {}", String::from_utf8_lossy(&out.stderr));
        let got: Vec<(u32, u32, String)> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (
                    f[0].parse().unwrap(),
                    f[1].parse().unwrap(),
                    // tshark prints no time for SPBs; we report 0.
                    if f[2].is_empty() { "0.000000000" } else { f[2] }.to_string(),
                )
            })
            .collect();
        let want: Vec<(u32, u32, String)> = cap
            .records()
            .iter()
            .map(|r| (r.caplen, r.origlen, format!("{}.{:09}", r.ts_ns / NS_PER_SEC, r.ts_ns % NS_PER_SEC)))
            .collect();
        assert_eq!(got, want, "file {n}");
    }
}

// ---------- robustness ----------

/// Parses and, on success, checks the record invariant by touching every packet.
fn never_panics(bytes: Vec<u8>) {
    let len = bytes.len();
    if let Ok(c) = Capture::from_bytes(bytes) {
        for i in 0..c.len() {
            let r = c.records()[i];
            assert!(r.offset + u64::from(r.caplen) <= len as u64);
            assert!(r.caplen <= MAX_CAPLEN);
            assert_eq!(c.packet(i).len(), r.caplen as usize);
        }
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let e = Endian::Big;
    vec![
        three_record_classic().0,
        classic(Endian::Big, false, 1, &[(1, 2, 3, &[1, 2, 3]), (4, 5, 6, &[7; 6])]),
        cat(&[
            shb(Endian::Little),
            idb(Endian::Little, 1, 0, Some(0x85), Some(3)),
            epb(Endian::Little, 0, 9, 7, &[1; 7]),
            spb(Endian::Little, 9, &[2; 9]),
            pb(Endian::Little, 0, 4, &[3; 3]),
        ]),
        cat(&[shb(e), idb(e, 1, 32, Some(9), None), epb(e, 0, 9, 7, &[1; 7]), spb(e, 99, &[2; 40]), shb(e)]),
    ]
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            never_panics(bytes);
        }

        #[test]
        fn arbitrary_after_magic(which in 0usize..5, tail in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut v = [
                &[0xd4, 0xc3, 0xb2, 0xa1][..],
                &[0xa1, 0xb2, 0x3c, 0x4d],
                &[0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a],
                &[0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0x1c, 0x1a, 0x2b, 0x3c, 0x4d],
                &[],
            ][which].to_vec();
            v.extend(tail);
            never_panics(v);
        }

        #[test]
        fn mutated_valid_files(
            which in 0usize..4,
            muts in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            cut in any::<usize>(),
        ) {
            let mut v = seeds()[which].clone();
            for (i, b) in muts {
                let n = v.len();
                v[i % n] = b;
            }
            never_panics(v.clone());
            let n = v.len();
            v.truncate(cut % (n + 1));
            never_panics(v);
        }
    }
}

#[test]
fn deterministic_fuzz_field_extremes() {
    // Overwrite every aligned 4-byte field of each seed with extreme values.
    for seed in seeds() {
        for at in (0..seed.len().saturating_sub(3)).step_by(2) {
            for val in [0u32, 1, 3, 11, 12, 13, 16, 0x7fff_ffff, 0x8000_0000, 0xffff_fff0, u32::MAX] {
                for bytes in [val.to_le_bytes(), val.to_be_bytes()] {
                    let mut v = seed.clone();
                    v[at..at + 4].copy_from_slice(&bytes);
                    never_panics(v);
                }
            }
        }
    }
}

//! The L3VPN egress end to end: `pcaps/l3vpn.toml` and `pcaps/l3vpn.pcap` through
//! `popgo replay` (two instances with overlapping prefixes, the transport label on
//! top), pop-go turned off in one instance only, the displays, and config errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn popgo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_popgo")).args(args).output().expect("running popgo")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn l3vpn(f: &str) -> String {
    root().join("pcaps").join(f).display().to_string()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

/// (dst IPv4 last octet, TTL, checksum ok, dst MAC) of each frame of a written pcap.
fn frames_of(path: &Path) -> Vec<(u8, u8, bool, [u8; 6])> {
    let cap = popgo::io::pcap::Capture::open(path).unwrap();
    (0..cap.len())
        .map(|i| {
            let p = etherparse::SlicedPacket::from_ethernet(cap.packet(i)).unwrap();
            let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else { panic!("frame {i} is not IPv4") };
            let h = ip.header().to_header();
            (
                h.destination[3],
                h.time_to_live,
                h.header_checksum == h.calc_header_checksum(),
                cap.packet(i)[..6].try_into().unwrap(),
            )
        })
        .collect()
}

fn replay(cfg: &str, out: &Path) -> serde_json::Value {
    json(&popgo(&[
        "replay",
        "--config",
        cfg,
        "--in-port",
        "to-pe",
        "--out-dir",
        out.to_str().unwrap(),
        "--json",
        &l3vpn("l3vpn.pcap"),
    ]))
}

#[test]
fn each_instance_s_traffic_leaves_by_its_own_ce_with_popgo() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let v = replay(&l3vpn("l3vpn.toml"), &out);
    assert_eq!(v["rx_packets"], 8);
    assert_eq!(v["tx_packets"]["to-a1"], 3);
    assert_eq!(v["tx_packets"]["to-a2"], 3);
    assert_eq!(v["tx_packets"]["to-b1"], 0);
    assert_eq!(v["drops"]["no_ilm_entry"], 1);
    assert_eq!(v["drops"]["no_route"], 1);
    let a1 = frames_of(&out.join("to-a1.pcap"));
    assert_eq!(a1.iter().map(|f| f.0).collect::<Vec<_>>(), [1, 2, 5]);
    assert!(a1.iter().all(|f| f.1 == 63 && f.2 && f.3 == [2, 0, 0, 0, 0, 0xa1]), "{a1:?}");
    let a2 = frames_of(&out.join("to-a2.pcap"));
    assert_eq!(a2.iter().map(|f| f.0).collect::<Vec<_>>(), [1, 3, 5]);
    assert!(a2.iter().all(|f| f.1 == 63 && f.2 && f.3 == [2, 0, 0, 0, 0, 0xa2]), "{a2:?}");
}

#[test]
fn pop_go_off_in_one_instance_moves_only_its_traffic() {
    let dir = tempfile::tempdir().unwrap();
    // The first `pop_go = true` is vpna's.
    let text = std::fs::read_to_string(l3vpn("l3vpn.toml")).unwrap().replacen("pop_go = true", "pop_go = false", 1);
    let cfg = dir.path().join("l3vpn-pop.toml");
    std::fs::write(&cfg, text).unwrap();
    let out = dir.path().join("out");
    let v = replay(cfg.to_str().unwrap(), &out);
    assert_eq!(v["tx_packets"]["to-b1"], 2);
    assert_eq!(v["tx_packets"]["to-a1"], 1);
    assert_eq!(v["tx_packets"]["to-a2"], 3);
    assert_eq!(frames_of(&out.join("to-b1.pcap")).iter().map(|f| f.0).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(frames_of(&out.join("to-a1.pcap")).iter().map(|f| f.0).collect::<Vec<_>>(), [5]);
    assert_eq!(frames_of(&out.join("to-a2.pcap")).iter().map(|f| f.0).collect::<Vec<_>>(), [1, 3, 5]);
    let d = popgo(&["display", "--config", cfg.to_str().unwrap(), "mpls", "lsp", "protocol", "bgp"]);
    let t = String::from_utf8(d.stdout).unwrap();
    assert!(t.lines().any(|l| l.starts_with("10.1.1.0/24") && l.contains(" POP ") && l.ends_with("vpna")), "{t}");
    assert!(t.lines().any(|l| l.contains("POPGO") && l.ends_with("vpnb")), "{t}");
}

#[test]
fn the_capture_is_what_gen_writes_and_the_displays_show_the_instances() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("l3vpn.pcap");
    assert!(popgo(&["gen", "l3vpn", "--out", p.to_str().unwrap()]).status.success());
    assert_eq!(std::fs::read(&p).unwrap(), std::fs::read(l3vpn("l3vpn.pcap")).unwrap());
    let show = |w: &[&str]| {
        let mut a = vec!["display", "--config", &l3vpn("l3vpn.toml")].into_iter().map(String::from).collect::<Vec<_>>();
        a.extend(w.iter().map(|s| s.to_string()));
        let o = Command::new(env!("CARGO_BIN_EXE_popgo")).args(&a).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let t = show(&["ip", "vpn-instance"]);
    assert!(
        t.contains(" Total VPN-Instances configured      : 2")
            && t.contains("  vpnb                            100:2                 IPv4"),
        "{t}"
    );
    let t = show(&["mpls", "static-lsp"]);
    assert!(t.contains("from-ingress         -/-                18/NULL"), "{t}");
    let t = show(&["current-configuration"]);
    assert!(t.contains("interface to-a2\n description os-interface vethA2\n ip binding vpn-instance vpnb\n"), "{t}");
    assert!(t.contains(" ipv4-family vpn-instance vpna\n  network 10.1.1.0 24\n"), "{t}");
}

#[test]
fn bad_vpn_configs_name_the_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(l3vpn("l3vpn.toml")).unwrap();
    let cases = [
        (
            base.replacen("0c:a1\"\nvpn_instance = \"vpna\"", "0c:a1\"\nvpn_instance = \"vpnx\"", 1),
            "port.vpn_instance: unknown VPN instance \"vpnx\"",
        ),
        (
            base.replacen("route_distinguisher = \"100:2\"", "route_distinguisher = \"100:1\"", 1),
            "duplicate RD 100:1 (already used by VPN instance vpna)",
        ),
        (base.replacen("route_distinguisher = \"100:2\"\n", "", 1), "vpn_instance.ipv4.route_distinguisher: missing"),
        (
            base.replacen("name = \"vpnb\"\n[vpn_instance.ipv4]", "name = \"vpna\"\n[vpn_instance.ipv4]", 1),
            "duplicate VPN instance \"vpna\"",
        ),
        (
            base.replacen(
                "vpn_instance = \"vpna\"\nprefix = \"10.1.1.0/30\"",
                "vpn_instance = \"vpnb\"\nprefix = \"10.1.1.0/30\"\nvpn_instance = \"vpna\"",
                1,
            ),
            "duplicate key",
        ),
        (
            base.replacen("in_label = 18", "in_label = 3", 1),
            "mpls.static_lsp.in_label: label 3 is outside 16..=1048575",
        ),
        (
            base.replacen(
                "prefix = \"10.1.1.0/24\"\nnext_hop = \"192.168.10.1\"",
                "prefix = \"10.1.1.0/24\"\nnext_hop = \"192.168.99.1\"",
                1,
            ),
            "is not a neighbor on a port bound to VPN instance vpna",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        assert_ne!(*text, base, "case {i} changes nothing");
        let p = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&p, text).unwrap();
        let o = popgo(&["check", "--config", p.to_str().unwrap()]);
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "case {i}: {e}");
        assert!(e.contains(want) && e.contains("line "), "case {i}: want {want:?} in {e}");
        assert_eq!(e.trim_end().lines().count(), 1, "one line: {e}");
    }
}

#[test]
fn a_vpn_instance_s_routes_come_from_a_table_file() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(l3vpn("l3vpn.toml")).unwrap();
    // vpna's family reads 10.2.x.0/24 routes from a table file; a line with a label is
    // an error naming the file and the line.
    let cfg = base.replacen(
        "name = \"vpna\"\nfamily = \"ipv4\"\n",
        "name = \"vpna\"\nfamily = \"ipv4\"\ntable = \"vpna.txt\"\n",
        1,
    );
    assert_ne!(cfg, base);
    std::fs::write(dir.path().join("c.toml"), &cfg).unwrap();
    let lines: String = (0..50).map(|i| format!("10.2.{i}.0/24 192.168.{}.1\n", 10 + 10 * (i % 2))).collect();
    std::fs::write(dir.path().join("vpna.txt"), format!("# vpna\n{lines}")).unwrap();
    let c = dir.path().join("c.toml");
    let o = popgo(&["check", "--config", c.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("54 static routes, 52 BGP LSPs"), "{out}");
    let d = popgo(&["display", "--config", c.to_str().unwrap(), "mpls", "lsp", "protocol", "bgp"]);
    let t = String::from_utf8(d.stdout).unwrap();
    assert!(t.lines().any(|l| l.starts_with("10.2.49.0/24") && l.contains("-/to-b1") && l.ends_with("vpna")), "{t}");
    std::fs::write(dir.path().join("vpna.txt"), "10.2.0.0/24 192.168.10.1\n10.2.1.0/24 192.168.10.1 500\n").unwrap();
    let o = popgo(&["check", "--config", c.to_str().unwrap()]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("vpna.txt: line 2: VPN routes take labels from the dynamic range"), "{e}");
    // A next hop of another instance's table is not this one's.
    std::fs::write(dir.path().join("vpna.txt"), "10.2.0.0/24 192.168.99.1\n").unwrap();
    let o = popgo(&["check", "--config", c.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
}

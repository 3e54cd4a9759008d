//! Root integration tests of the BGP speaker against real BGP implementations as
//! DeviceD: GoBGP (`gobgpd` + `gobgp`) and FRR (`bgpd`, run without zebra with its
//! own config, pid file and vty socket in a temporary directory), each in a private
//! network namespace, plus a frame carrying the label DeviceD learned forwarded by
//! `popgo run` to DeviceA.
//!
//! ```text
//!   D (gobgpd | bgpd) d0 198.18.0.1 ==veth== c-to-d 198.18.0.2  C (popgo)
//! ```
//!
//! Namespaces have unique names and are deleted by a Drop guard (which kills what runs
//! in them) even when a test fails. Without root the tests print a note and pass; under
//! `CI=true` missing root, gobgpd or FRR fail them. Tests run one at a time (a lock).

use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());
static NEXT: AtomicUsize = AtomicUsize::new(0);

const POPGO: &str = env!("CARGO_BIN_EXE_popgo");
const POPGO_LAB: &str = env!("CARGO_BIN_EXE_popgo-lab");
const BGPD: &str = "/usr/lib/frr/bgpd";

fn root_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// True when the test may run: root, and the programs it needs installed. Otherwise a
/// note, or a failure under CI=true.
fn can_run(test: &str, programs: &[&str]) -> bool {
    if popgo::sys::rlimit::euid() != 0 {
        assert!(!ci(), "{test}: CI=true but not root: the BGP interop tests must run in CI");
        eprintln!("note: {test} skipped: needs root (network namespaces)");
        return false;
    }
    for p in programs {
        let found = if p.starts_with('/') {
            Path::new(p).exists()
        } else {
            Command::new("sh").args(["-c", &format!("command -v {p}")]).output().is_ok_and(|o| o.status.success())
        };
        if !found {
            assert!(!ci(), "{test}: {p} is not installed (apt-get install gobgpd frr; tools/setup.sh does)");
            eprintln!("note: {test} skipped: {p} is not installed");
            return false;
        }
    }
    true
}

fn sh(args: &[&str]) -> Output {
    Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("running {args:?}: {e}"))
}

fn ok(args: &[&str]) -> String {
    let o = sh(args);
    assert!(o.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Kills a spawned process on drop.
struct Proc {
    child: Child,
    name: &'static str,
}

impl Proc {
    /// SIGTERM, then the exit code and stdout (killed after `secs`).
    fn stop(mut self, secs: u64) -> (Option<i32>, String) {
        let _ = sh(&["kill", "-TERM", &self.child.id().to_string()]);
        let deadline = Instant::now() + Duration::from_secs(secs);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break Some(s);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut out = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        assert!(status.is_some(), "{} did not stop within {secs}s", self.name);
        (status.and_then(|s| s.code()), out)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

const MAC_CA: &str = "02:00:00:00:0c:0a";
const MAC_CB: &str = "02:00:00:00:0c:0b";
const MAC_CD: &str = "02:00:00:00:0c:0d";
const MAC_A: &str = "02:00:00:00:00:0a";
const MAC_B: &str = "02:00:00:00:00:0b";
const MAC_D: &str = "02:00:00:00:00:0d";

/// Namespaces D and C (and A and B with `full`), deleted on drop.
struct Lab {
    ns: Vec<String>,
    dir: tempfile::TempDir,
}

impl Lab {
    fn new(full: bool) -> Lab {
        let id = format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let names: &[&str] = if full { &["D", "C", "A", "B"] } else { &["D", "C"] };
        let lab = Lab {
            ns: names.iter().map(|n| format!("pgbgp-{n}-{id}")).collect(),
            dir: tempfile::tempdir().expect("tempdir"),
        };
        for ns in &lab.ns {
            ok(&["ip", "netns", "add", ns]);
            ok(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        let link = |ns: &str, dev: &str, mac: &str, peer_ns: &str, peer: &str, peer_mac: &str| {
            ok(&[
                "ip", "-n", ns, "link", "add", dev, "address", mac, "type", "veth", "peer", "name", peer, "netns",
                peer_ns, "address", peer_mac,
            ]);
        };
        let mut addrs = vec![(lab.d(), "d0", "198.18.0.1/30"), (lab.c(), "c-to-d", "198.18.0.2/30")];
        link(lab.d(), "d0", MAC_D, lab.c(), "c-to-d", MAC_CD);
        if full {
            link(lab.c(), "c-to-a", MAC_CA, &lab.ns[2], "a0", MAC_A);
            link(lab.c(), "c-to-b", MAC_CB, &lab.ns[3], "b0", MAC_B);
            addrs.extend([
                (lab.c(), "c-to-a", "198.18.0.5/30"),
                (lab.ns[2].as_str(), "a0", "198.18.0.6/30"),
                (lab.c(), "c-to-b", "198.18.0.9/30"),
                (lab.ns[3].as_str(), "b0", "198.18.0.10/30"),
            ]);
        }
        for (ns, dev, addr) in addrs {
            ok(&["ip", "-n", ns, "addr", "add", addr, "dev", dev]);
            ok(&["ip", "netns", "exec", ns, "sysctl", "-qw", &format!("net.ipv6.conf.{dev}.disable_ipv6=1")]);
            ok(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        lab
    }

    fn d(&self) -> &str {
        &self.ns[0]
    }

    fn c(&self) -> &str {
        &self.ns[1]
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn spawn(&self, ns: &str, name: &'static str, args: &[&str], log: &Path) -> Proc {
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {name}: {e}"));
        Proc { child, name }
    }

    /// The seed's DeviceC with a 6PE network and DeviceD as its BGP peer.
    fn config(&self) -> PathBuf {
        self.config_with("")
    }

    /// [`Self::config`] with `peer_extra` in the peer's table.
    fn config_with(&self, peer_extra: &str) -> PathBuf {
        let text = std::fs::read_to_string(root_dir().join("pcaps/seed.toml"))
            .unwrap()
            .replace("\"vethA\"", "\"c-to-a\"")
            .replace("\"vethB\"", "\"c-to-b\"")
            .replace("\"vethD\"", "\"c-to-d\"")
            .replacen("label_base = 48000", "router_id = \"198.18.0.2\"\nlabel_base = 48000", 1);
        let extra = "\n[[neighbor]]\nip = \"2001:db8:ffff::2\"\nmac = \"02:00:00:00:00:0a\"\nport = \"to-A\"\n\n\
                     [[static_route]]\nprefix = \"2001:db8:100::/48\"\nnext_hop = \"2001:db8:ffff::2\"\n\n\
                     [[bgp.network]]\nprefix = \"2001:db8:100::/48\"\nlabel = 60100\n\n\
                     [[bgp.peer]]\naddress = \"198.18.0.1\"\nas = 200\n";
        let p = self.path("c.toml");
        std::fs::write(&p, text + extra + peer_extra).unwrap();
        p
    }

    /// `popgo replay --control` on C, until the control socket is up.
    fn popgo_replay(&self) -> (Proc, PathBuf) {
        self.popgo_replay_with("")
    }

    /// [`Self::popgo_replay`] with `peer_extra` in the peer's table.
    fn popgo_replay_with(&self, peer_extra: &str) -> (Proc, PathBuf) {
        self.popgo_replay_of(&self.config_with(peer_extra), "pcaps/seed.pcap")
    }

    /// `popgo replay --control` on C of `cfg` and the repository's `pcap`, until the
    /// control socket is up.
    fn popgo_replay_of(&self, cfg: &Path, pcap: &str) -> (Proc, PathBuf) {
        let sock = self.path("c.sock");
        let err = self.path("popgo.err");
        let p = self.spawn(
            self.c(),
            "popgo replay",
            &[
                POPGO,
                "replay",
                "--config",
                cfg.to_str().unwrap(),
                "--control",
                sock.to_str().unwrap(),
                "--loops",
                "0",
                "--pps",
                "100",
                root_dir().join(pcap).to_str().unwrap(),
            ],
            &err,
        );
        wait_for(&err, "control socket", 15);
        (p, sock)
    }

    fn gobgpd(&self) -> Proc {
        self.gobgpd_with(&["ipv4-labelled-unicast", "ipv6-labelled-unicast"])
    }

    /// GoBGP on D (AS 200) with C as its peer in `families` (GoBGP's afi-safi names).
    fn gobgpd_with(&self, families: &[&str]) -> Proc {
        let cfg = self.path("gobgpd.toml");
        let mut text = "[global.config]\n  as = 200\n  router-id = \"198.18.0.1\"\n  local-address-list = [\"198.18.0.1\"]\n\
                        [[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"198.18.0.2\"\n    peer-as = 100\n"
            .to_string();
        for f in families {
            text.push_str(&format!(
                "[[neighbors.afi-safis]]\n  [neighbors.afi-safis.config]\n    afi-safi-name = \"{f}\"\n"
            ));
        }
        std::fs::write(&cfg, text).unwrap();
        self.spawn(
            self.d(),
            "gobgpd",
            &["gobgpd", "-f", cfg.to_str().unwrap(), "-p", "--api-hosts", "127.0.0.1:50051", "--pprof-disable"],
            &self.path("gobgpd.log"),
        )
    }

    /// `gobgp global rib -a FAMILY -j` on D.
    fn gobgp_rib(&self, family: &str) -> Value {
        let out =
            sh(&["ip", "netns", "exec", self.d(), "gobgp", "-u", "127.0.0.1", "global", "rib", "-a", family, "-j"]);
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    fn frr_bgpd(&self) -> Proc {
        self.frr_bgpd_with("")
    }

    /// [`Self::frr_bgpd`] with `neighbor_extra` (lines of `router bgp`).
    fn frr_bgpd_with(&self, neighbor_extra: &str) -> Proc {
        let dir = self.path("frr");
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("bgpd.conf");
        std::fs::write(
            &conf,
            format!(
                "frr defaults traditional\nhostname DeviceD\nlog stdout informational\nrouter bgp 200\n \
                 bgp router-id 198.18.0.1\n no bgp ebgp-requires-policy\n no bgp default ipv4-unicast\n \
                 neighbor 198.18.0.2 remote-as 100\n neighbor 198.18.0.2 timers connect 1\n{neighbor_extra}\
                 address-family ipv4 labeled-unicast\n  neighbor 198.18.0.2 activate\n exit-address-family\n \
                 address-family ipv6 labeled-unicast\n  neighbor 198.18.0.2 activate\n exit-address-family\n"
            ),
        )
        .unwrap();
        // -Z: no zebra; -S: stay root (the namespace is private); -P 0: no vty TCP port.
        self.spawn(
            self.d(),
            "bgpd",
            &[
                BGPD,
                "-Z",
                "-S",
                "-f",
                conf.to_str().unwrap(),
                "-i",
                dir.join("bgpd.pid").to_str().unwrap(),
                "--vty_socket",
                dir.to_str().unwrap(),
                "-P",
                "0",
            ],
            &self.path("bgpd.log"),
        )
    }

    /// `vtysh -c CMD` against the namespace's bgpd, parsed as JSON.
    fn vtysh_json(&self, cmd: &str) -> Value {
        let dir = self.path("frr");
        let out = sh(&[
            "ip",
            "netns",
            "exec",
            self.d(),
            "vtysh",
            "--vty_socket",
            dir.to_str().unwrap(),
            "-d",
            "bgpd",
            "-c",
            cmd,
        ]);
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    fn ctl(&self, sock: &Path, cmds: &str) -> String {
        ok(&[POPGO, "ctl", "--socket", sock.to_str().unwrap(), cmds])
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in &self.ns {
            if let Ok(o) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).output();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

fn wait_for(file: &Path, pat: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text.contains(pat) {
            return;
        }
        assert!(Instant::now() < deadline, "no {pat:?} in {} within {secs}s: {text}", file.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `f` until it gives a value, for at most `secs`.
fn poll<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {secs}s waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// popgo's address as a 6PE next hop (RFC 4798 section 2).
fn mapped_popgo() -> std::net::IpAddr {
    std::net::IpAddr::V6("198.18.0.2".parse::<std::net::Ipv4Addr>().unwrap().to_ipv6_mapped())
}

/// The in-label `display mpls lsp protocol bgp` shows for `fec`.
fn lsp_label(lab: &Lab, sock: &Path, fec: &str) -> u64 {
    let out = lab.ctl(sock, "display mpls lsp protocol bgp");
    let line = out.lines().find(|l| l.starts_with(fec)).unwrap_or_else(|| panic!("{fec} not in {out}"));
    let inout = line.split_whitespace().nth(1).unwrap();
    inout.split('/').next().unwrap().parse().unwrap()
}

/// GoBGP's route for `prefix` in `rib`: (labels, next hop).
fn gobgp_route(rib: &Value, prefix: &str) -> Option<(Vec<u64>, String)> {
    let path = rib.get(prefix)?.get(0)?;
    let labels = path["nlri"]["labels"].as_array()?.iter().filter_map(Value::as_u64).collect();
    let nh = path["attrs"].as_array()?.iter().find(|a| a["type"] == 14)?["nexthop"].as_str()?.to_string();
    Some((labels, nh))
}

/// FRR's route for `prefix`: (remote label, next hop).
fn frr_route(v: &Value) -> Option<(u64, String)> {
    let p = v.get("paths")?.get(0)?;
    Some((p.get("remoteLabel")?.as_u64()?, p["nexthops"][0]["ip"].as_str()?.to_string()))
}

/// DeviceD = GoBGP: the session comes up, D's table has 10.1.1.0/24 with the label of
/// popgo's LSP table and next hop popgo's address, the 6PE network is in D's IPv6
/// labeled-unicast table, and `undo network` + `commit` withdraws the IPv4 one.
#[test]
fn gobgp_learns_labels_and_withdrawals() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run("gobgp_learns_labels_and_withdrawals", &["gobgpd", "gobgp"]) {
        return;
    }
    let lab = Lab::new(false);
    let _d = lab.gobgpd();
    let (popgo, sock) = lab.popgo_replay();
    let label = lsp_label(&lab, &sock, "10.1.1.0/24");
    let (labels, nh) = poll("10.1.1.0/24 at GoBGP", 20, || gobgp_route(&lab.gobgp_rib("ipv4-labelled"), "10.1.1.0/24"));
    assert_eq!((labels, nh.as_str()), (vec![label], "198.18.0.2"));
    let (labels6, nh6) =
        poll("the 6PE route at GoBGP", 10, || gobgp_route(&lab.gobgp_rib("ipv6-labelled"), "2001:db8:100::/48"));
    assert_eq!(labels6, vec![lsp_label(&lab, &sock, "2001:db8:100::/48")]);
    // GoBGP shows an IPv4-mapped next hop in its IPv4 form.
    let nh6: std::net::IpAddr = nh6.parse().unwrap();
    assert!(nh6 == mapped_popgo() || nh6.to_string() == "198.18.0.2", "IPv4-mapped next hop: {nh6}");
    let peers = lab.ctl(&sock, "display bgp peer");
    assert!(peers.contains("Established") && peers.contains("198.18.0.1"), "{peers}");

    lab.ctl(&sock, "system-view; bgp 100; undo network 10.1.1.0 24; commit");
    poll("the withdrawal at GoBGP", 10, || {
        gobgp_route(&lab.gobgp_rib("ipv4-labelled"), "10.1.1.0/24").is_none().then_some(())
    });
    assert!(gobgp_route(&lab.gobgp_rib("ipv6-labelled"), "2001:db8:100::/48").is_some(), "6PE route kept");
    // A pop-go toggle changes only the local ILM: no UPDATE.
    let updates = |s: &str| -> u64 {
        let l = s.lines().find(|l| l.contains("peer 198.18.0.1:")).unwrap_or_default();
        l.split("updates in ")
            .nth(1)
            .and_then(|r| r.split(" out ").nth(1))
            .and_then(|r| r.split(',').next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no update counts in {s}"))
    };
    let before = updates(&lab.ctl(&sock, "display popgo statistics"));
    lab.ctl(&sock, "system-view; bgp 100; undo apply-label per-route pop-go; commit");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(updates(&lab.ctl(&sock, "display popgo statistics")), before, "pop-go toggle sent an UPDATE");
    let (code, _) = popgo.stop(15);
    assert_eq!(code, Some(0));
}

/// DeviceD = FRR bgpd: the same checks through vtysh's JSON.
#[test]
fn frr_learns_labels_and_withdrawals() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run("frr_learns_labels_and_withdrawals", &[BGPD, "vtysh"]) {
        return;
    }
    let lab = Lab::new(false);
    let _d = lab.frr_bgpd();
    let (popgo, sock) = lab.popgo_replay();
    let label = lsp_label(&lab, &sock, "10.1.1.0/24");
    let (l, nh) =
        poll("10.1.1.0/24 at FRR", 25, || frr_route(&lab.vtysh_json("show bgp ipv4 labeled-unicast 10.1.1.0/24 json")));
    assert_eq!((l, nh.as_str()), (label, "198.18.0.2"));
    let (l6, nh6) = poll("the 6PE route at FRR", 10, || {
        frr_route(&lab.vtysh_json("show bgp ipv6 labeled-unicast 2001:db8:100::/48 json"))
    });
    assert_eq!(l6, lsp_label(&lab, &sock, "2001:db8:100::/48"));
    assert_eq!(nh6.parse::<std::net::IpAddr>().ok(), Some(mapped_popgo()), "IPv4-mapped next hop (RFC 4798): {nh6}");

    lab.ctl(&sock, "system-view; bgp 100; undo network 10.1.1.0 24; commit");
    poll("the withdrawal at FRR", 10, || {
        frr_route(&lab.vtysh_json("show bgp ipv4 labeled-unicast 10.1.1.0/24 json")).is_none().then_some(())
    });
    // A label change is re-advertised by the commit that makes it.
    lab.ctl(&sock, "system-view; bgp 100; network 10.1.1.0 24 label 48200; commit");
    let (l, _) = poll("the new label at FRR", 10, || {
        frr_route(&lab.vtysh_json("show bgp ipv4 labeled-unicast 10.1.1.0/24 json")).filter(|(l, _)| *l == 48200)
    });
    assert_eq!(l, 48200);
    let (code, _) = popgo.stop(15);
    assert_eq!(code, Some(0));
}

/// TCP MD5 (RFC 2385) with FRR: the same key brings the session up; a wrong one keeps
/// it down, with the failed connections counted and the reason shown.
#[test]
fn frr_md5_session_and_a_wrong_password() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run("frr_md5_session_and_a_wrong_password", &[BGPD, "vtysh"]) {
        return;
    }
    let lab = Lab::new(false);
    let _d = lab.frr_bgpd_with(" neighbor 198.18.0.2 password s3cret-md5\n");
    let (popgo, sock) = lab.popgo_replay_with("password = \"s3cret-md5\"\n");
    let label = lsp_label(&lab, &sock, "10.1.1.0/24");
    let (l, _) =
        poll("10.1.1.0/24 at FRR", 25, || frr_route(&lab.vtysh_json("show bgp ipv4 labeled-unicast 10.1.1.0/24 json")));
    assert_eq!(l, label);

    lab.ctl(&sock, "system-view; bgp 100; peer 198.18.0.1 password simple wrong-key; commit");
    poll("the route gone from FRR", 20, || {
        frr_route(&lab.vtysh_json("show bgp ipv4 labeled-unicast 10.1.1.0/24 json")).is_none().then_some(())
    });
    let stats = poll("failed connections counted", 20, || {
        let s = lab.ctl(&sock, "display popgo statistics | include peer 198.18.0.1");
        let failed: u64 = s.split("(failed ").nth(1)?.split(')').next()?.parse().ok()?;
        (failed >= 2).then_some(s)
    });
    assert!(!stats.contains("Established"), "{stats}");
    let peer = lab.ctl(&sock, "display bgp peer");
    assert!(peer.contains("TCP MD5"), "the reason is shown: {peer}");
    let (code, _) = popgo.stop(15);
    assert_eq!(code, Some(0));
}

/// End to end: `popgo run` on the veth lab advertises to GoBGP on D; a frame carrying
/// the label D learned, sent from D to 10.1.1.1, leaves through to-A (POPGO: the /24's
/// next hop; a plain POP would take the /30 to B).
#[test]
fn learned_label_forwards_from_d_to_a() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run("learned_label_forwards_from_d_to_a", &["gobgpd", "gobgp"]) {
        return;
    }
    let lab = Lab::new(true);
    let _d = lab.gobgpd();
    let cfg = lab.config();
    let err = lab.path("run.err");
    let run = lab.spawn(
        lab.c(),
        "popgo run",
        &[POPGO, "run", "--config", cfg.to_str().unwrap(), "--duration", "25", "--json-stats", "--stats-interval", "0"],
        &err,
    );
    wait_for(&err, "forwarding", 15);
    let (labels, _) = poll("10.1.1.0/24 at GoBGP", 20, || gobgp_route(&lab.gobgp_rib("ipv4-labelled"), "10.1.1.0/24"));
    let label = labels[0] as u32;
    let payload = popgo::traffic::frames::ipv4_udp("198.18.0.1".parse().unwrap(), "10.1.1.1".parse().unwrap(), 64, 100);
    let frame = popgo::traffic::frames::seed_mpls(&[(label, 64)], &payload);
    let pcap = lab.path("learned.pcap");
    popgo::io::pcap::write_file(&pcap, (0..10u64).map(|i| (i * 1000, frame.clone()))).unwrap();
    let send = sh(&[
        "ip",
        "netns",
        "exec",
        lab.d(),
        POPGO_LAB,
        "send",
        "--iface",
        "d0",
        "--gap-us",
        "1000",
        pcap.to_str().unwrap(),
    ]);
    assert!(send.status.success(), "popgo-lab send: {}", String::from_utf8_lossy(&send.stderr));
    std::thread::sleep(Duration::from_millis(500));
    let (code, out) = run.stop(15);
    assert_eq!(code, Some(0), "popgo run: {}", std::fs::read_to_string(&err).unwrap_or_default());
    let v: Value = serde_json::from_str(out.lines().last().expect("a JSON report")).unwrap();
    assert_eq!(v["tx_packets"]["to-A"], 10, "{v}");
    assert_eq!(v["tx_packets"]["to-B"], 0, "{v}");
}

/// The L3VPN egress PE (`pcaps/l3vpn.toml`) with DeviceD = GoBGP as the ingress PE over
/// VPNv4 and VPNv6: each instance's 10.1.1.0/24 arrives with its RD (100:1, 100:2), its VPN label
/// (popgo's LSP table), its export route target and next hop popgo's address;
/// `undo network` in vpna withdraws vpna's route only.
#[test]
fn gobgp_learns_vpnv4_routes_and_withdrawals() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run("gobgp_learns_vpnv4_routes_and_withdrawals", &["gobgpd", "gobgp"]) {
        return;
    }
    let lab = Lab::new(false);
    let _d = lab.gobgpd_with(&["l3vpn-ipv4-unicast", "l3vpn-ipv6-unicast"]);
    let (popgo, sock) = l3vpn_popgo(&lab);
    // GoBGP's VPNv4 table: "RD:prefix" -> [path]; labels, RD, next hop and route
    // targets (extended communities, type 16) per route.
    let route = |rib: &Value, rd: &str| -> Option<(Vec<u64>, String, String)> {
        let path = rib.get(format!("{rd}:10.1.1.0/24"))?.get(0)?;
        let labels = path["nlri"]["labels"].as_array()?.iter().filter_map(Value::as_u64).collect();
        let attrs = path["attrs"].as_array()?;
        let nh = attrs.iter().find(|a| a["type"] == 14)?["nexthop"].as_str()?.to_string();
        let rt = attrs.iter().find(|a| a["type"] == 16)?["value"][0]["value"].as_str()?.to_string();
        Some((labels, nh, rt))
    };
    let (a, b) = poll("both instances' routes at GoBGP", 25, || {
        let rib = lab.gobgp_rib("vpnv4");
        Some((route(&rib, "100:1")?, route(&rib, "100:2")?))
    });
    assert_eq!(a, (vec![16], "198.18.0.2".to_string(), "100:1".to_string()));
    assert_eq!(b, (vec![17], "198.18.0.2".to_string(), "100:2".to_string()));
    // VPNv6: vpnc's network with RD 100:3, label 19, next hop popgo's IPv4-mapped address.
    let c = poll("vpnc's VPNv6 route at GoBGP", 10, || {
        let rib = lab.gobgp_rib("vpnv6");
        let path = rib.get("100:3:2001:db8:c::/48")?.get(0)?.clone();
        Some(path)
    });
    assert_eq!(c["nlri"]["labels"], serde_json::json!([19]), "{c}");
    let nh = c["attrs"].as_array().unwrap().iter().find(|a| a["type"] == 14).unwrap()["nexthop"].as_str().unwrap();
    let nh: std::net::IpAddr = nh.parse().unwrap();
    assert!(nh == mapped_popgo() || nh.to_string() == "198.18.0.2", "IPv4-mapped next hop: {nh}");
    lab.ctl(&sock, "system-view; bgp 100; ipv4-family vpn-instance vpna; undo network 10.1.1.0 24; commit");
    // vpna's route is withdrawn; vpnb's stays, with the label popgo's table now gives it
    // (the full build after the removal allocates it anew).
    let b = poll("vpna's withdrawal at GoBGP", 10, || {
        let rib = lab.gobgp_rib("vpnv4");
        route(&rib, "100:1").is_none().then(|| route(&rib, "100:2")).flatten()
    });
    let t = lab.ctl(&sock, "display mpls lsp protocol bgp");
    let row = t.lines().find(|l| l.ends_with("vpnb")).unwrap_or_else(|| panic!("{t}"));
    let label: u64 = row.split_whitespace().nth(1).and_then(|x| x.split('/').next()?.parse().ok()).unwrap();
    assert_eq!(b.0, vec![label], "{t}");
    let (code, _) = popgo.stop(15);
    assert_eq!(code, Some(0));
}

/// A third instance for VPNv6: vpnc (RD 100:3) with an IPv6 family, a CE behind port
/// to-c6 and 2001:db8:c::/48 as its network (label 19: 16 and 17 are vpna's and vpnb's,
/// 18 the static LSP's).
const VPNC: &str = "
[[vpn_instance]]
name = \"vpnc\"
[vpn_instance.ipv6]
route_distinguisher = \"100:3\"
vpn_target_export = [\"100:3\"]
label_mode = \"per-route\"
pop_go = true
[[port]]
name = \"to-c6\"
mac = \"02:00:00:00:0c:c6\"
vpn_instance = \"vpnc\"
[[neighbor]]
ip = \"fd00::c\"
mac = \"02:00:00:00:00:c6\"
port = \"to-c6\"
[[static_route]]
vpn_instance = \"vpnc\"
prefix = \"2001:db8:c::/48\"
next_hop = \"fd00::c\"
[[bgp.vpn_instance]]
name = \"vpnc\"
family = \"ipv6\"
[[bgp.network]]
vpn_instance = \"vpnc\"
prefix = \"2001:db8:c::/48\"
";

/// `file` (an L3VPN config of this repository) with C's router ID and DeviceD
/// (198.18.0.1, AS 200) as its VPNv4 peer, plus `extra`, written as C's config.
fn l3vpn_config(lab: &Lab, file: &str, extra: &str, families: &str) -> PathBuf {
    let text = std::fs::read_to_string(root_dir().join(file)).unwrap().replacen(
        "\nlabel_base = 16\n",
        "\nrouter_id = \"198.18.0.2\"\nlabel_base = 16\n",
        1,
    ) + extra
        + &format!("\n[[bgp.peer]]\naddress = \"198.18.0.1\"\nas = 200\nfamilies = {families}\n");
    let cfg = lab.path("c.toml");
    std::fs::write(&cfg, text).unwrap();
    cfg
}

/// `popgo replay --control` on C with `pcaps/l3vpn.toml`, DeviceD (198.18.0.1, AS 200)
/// as its VPNv4 peer, until the control socket is up.
fn l3vpn_popgo(lab: &Lab) -> (Proc, PathBuf) {
    let cfg = l3vpn_config(lab, "pcaps/l3vpn.toml", VPNC, "[\"vpnv4\", \"vpnv6\"]");
    lab.popgo_replay_of(&cfg, "pcaps/l3vpn.pcap")
}

/// The same with DeviceD = FRR bgpd (`address-family ipv4 vpn` and `ipv6 vpn`): both
/// instances' routes with their RD, VPN label, route target and next hop, vpnc's VPNv6
/// route; then vpna's withdrawal.
#[test]
fn frr_learns_vpnv4_routes_and_withdrawals() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run("frr_learns_vpnv4_routes_and_withdrawals", &[BGPD, "vtysh"]) {
        return;
    }
    let lab = Lab::new(false);
    let dir = lab.path("frr");
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("bgpd.conf");
    std::fs::write(
        &conf,
        "frr defaults traditional\nhostname DeviceD\nlog stdout informational\nrouter bgp 200\n \
         bgp router-id 198.18.0.1\n no bgp ebgp-requires-policy\n no bgp default ipv4-unicast\n \
         neighbor 198.18.0.2 remote-as 100\n neighbor 198.18.0.2 timers connect 1\n \
         address-family ipv4 vpn\n  neighbor 198.18.0.2 activate\n exit-address-family\n \
         address-family ipv6 vpn\n  neighbor 198.18.0.2 activate\n exit-address-family\n",
    )
    .unwrap();
    let _d = lab.spawn(
        lab.d(),
        "bgpd",
        &[
            BGPD,
            "-Z",
            "-S",
            "-f",
            conf.to_str().unwrap(),
            "-i",
            dir.join("bgpd.pid").to_str().unwrap(),
            "--vty_socket",
            dir.to_str().unwrap(),
            "-P",
            "0",
        ],
        &lab.path("bgpd.log"),
    );
    let (popgo, sock) = l3vpn_popgo(&lab);
    // (remote label, next hop, route targets) of 10.1.1.0/24 with RD `rd`.
    let route = |rd: &str| -> Option<(u64, String, String)> {
        let v = lab.vtysh_json(&format!("show bgp ipv4 vpn rd {rd} 10.1.1.0/24 json"));
        let p = v.get(rd)?.get("paths")?.get(0)?;
        Some((
            p.get("remoteLabel")?.as_u64()?,
            p["nexthops"][0]["ip"].as_str()?.to_string(),
            p["extendedCommunity"]["string"].as_str()?.to_string(),
        ))
    };
    let a = poll("vpna's route at FRR", 25, || route("100:1"));
    let b = poll("vpnb's route at FRR", 5, || route("100:2"));
    assert_eq!(a, (16, "198.18.0.2".to_string(), "RT:100:1".to_string()));
    assert_eq!(b, (17, "198.18.0.2".to_string(), "RT:100:2".to_string()));
    // VPNv6: vpnc's network with RD 100:3 and label 19.
    let c = poll("vpnc's VPNv6 route at FRR", 10, || {
        let v = lab.vtysh_json("show bgp ipv6 vpn rd 100:3 2001:db8:c::/48 json");
        let p = v.get("100:3")?.get("paths")?.get(0)?.clone();
        Some(p)
    });
    assert_eq!(c["remoteLabel"], 19, "{c}");
    assert_eq!(c["extendedCommunity"]["string"], "RT:100:3", "{c}");
    lab.ctl(&sock, "system-view; bgp 100; ipv4-family vpn-instance vpna; undo network 10.1.1.0 24; commit");
    poll("vpna's withdrawal at FRR", 10, || route("100:1").is_none().then_some(()));
    assert!(route("100:2").is_some(), "vpnb's route kept");
    let (code, _) = popgo.stop(15);
    assert_eq!(code, Some(0));
}

/// End to end over VPNv4: `popgo run` with `examples/l3vpn-lab.toml` advertises both
/// instances to GoBGP on D; frames built from the VPN labels D learned, under this
/// device's transport label 18, sent from D to 10.1.1.1, leave through each instance's
/// own CE port (vpna behind to-a, vpnb behind to-b), although both instances route the
/// same prefix.
#[test]
fn learned_vpn_labels_forward_to_each_instance_s_ce() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run("learned_vpn_labels_forward_to_each_instance_s_ce", &["gobgpd", "gobgp"]) {
        return;
    }
    let lab = Lab::new(true);
    let _d = lab.gobgpd_with(&["l3vpn-ipv4-unicast"]);
    let cfg = l3vpn_config(&lab, "examples/l3vpn-lab.toml", "", "[\"vpnv4\"]");
    let err = lab.path("run.err");
    let run = lab.spawn(
        lab.c(),
        "popgo run",
        &[POPGO, "run", "--config", cfg.to_str().unwrap(), "--duration", "25", "--json-stats", "--stats-interval", "0"],
        &err,
    );
    wait_for(&err, "forwarding", 15);
    let label = |rib: &Value, rd: &str| -> Option<u32> {
        rib.get(format!("{rd}:10.1.1.0/24"))?.get(0)?["nlri"]["labels"].get(0)?.as_u64().map(|l| l as u32)
    };
    let (a, b) = poll("both instances' routes at GoBGP", 20, || {
        let rib = lab.gobgp_rib("vpnv4");
        Some((label(&rib, "100:1")?, label(&rib, "100:2")?))
    });
    assert_ne!(a, b);
    let payload = popgo::traffic::frames::ipv4_udp("198.18.0.1".parse().unwrap(), "10.1.1.1".parse().unwrap(), 64, 100);
    let fa = popgo::traffic::frames::seed_mpls(&[(18, 64), (a, 255)], &payload);
    let fb = popgo::traffic::frames::seed_mpls(&[(18, 64), (b, 255)], &payload);
    let pcap = lab.path("learned.pcap");
    popgo::io::pcap::write_file(
        &pcap,
        (0..20u64).map(|i| (i * 1000, if i % 2 == 0 { fa.clone() } else { fb.clone() })),
    )
    .unwrap();
    let send = sh(&[
        "ip",
        "netns",
        "exec",
        lab.d(),
        POPGO_LAB,
        "send",
        "--iface",
        "d0",
        "--gap-us",
        "1000",
        pcap.to_str().unwrap(),
    ]);
    assert!(send.status.success(), "popgo-lab send: {}", String::from_utf8_lossy(&send.stderr));
    std::thread::sleep(Duration::from_millis(500));
    let (code, out) = run.stop(15);
    assert_eq!(code, Some(0), "popgo run: {}", std::fs::read_to_string(&err).unwrap_or_default());
    let v: Value = serde_json::from_str(out.lines().last().expect("a JSON report")).unwrap();
    assert_eq!(v["tx_packets"]["to-a"], 10, "{v}");
    assert_eq!(v["tx_packets"]["to-b"], 10, "{v}");
}

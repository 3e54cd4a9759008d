//! Root integration tests of `popgo run` on real AF_XDP sockets over veth pairs in
//! private network namespaces.
//!
//! Topology per test (unique namespace names, deleted by a Drop guard even on failure):
//!
//! ```text
//!   D: d0 ==veth== c-to-d  C (popgo run)  c-to-a ==veth== a0 :A
//!                                         c-to-b ==veth== b0 :B
//! ```
//!
//! D sends `pcaps/seed.pcap` with `popgo-lab send`; tcpdump captures at A and B; the
//! frames are compared byte for byte with `popgo replay --out-dir` of the same pcap.
//! Without root the tests print a note and pass, except under `CI=true`, where they
//! fail (CI runs as root and must exercise them). Needs tcpdump and iproute2; ping is
//! used when installed. Tests run one at a time (a lock): the machine has 2 cores.

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

fn root_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// True when the test may run; prints a note (or fails under CI=true) otherwise.
fn privileged(test: &str) -> bool {
    if popgo::sys::rlimit::euid() == 0 {
        return true;
    }
    popgo::testkit::skip(test, "needs root (AF_XDP, XDP programs, network namespaces)");
    false
}

fn sh(args: &[&str]) -> Output {
    Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("running {args:?}: {e}"))
}

fn ok(args: &[&str]) -> String {
    let o = sh(args);
    assert!(o.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Kills a spawned process on drop (tests that fail mid-way leave nothing running).
struct Proc {
    child: Child,
    name: &'static str,
}

impl Proc {
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn signal(&self, sig: &str) {
        let _ = sh(&["kill", sig, &self.pid().to_string()]);
    }

    /// Waits at most `secs`; kills it after that. Returns (exit code, stdout, stderr).
    fn wait(mut self, secs: u64) -> (Option<i32>, String, String) {
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
        let mut err = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        assert!(status.is_some(), "{} did not exit within {secs}s; stderr: {err}", self.name);
        (status.and_then(|s| s.code()), out, err)
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

/// The namespaces of one test. Drop kills what runs in them, detaches XDP and deletes them.
struct Lab {
    d: String,
    c: String,
    a: String,
    b: String,
    dir: tempfile::TempDir,
}

const MAC_CA: &str = "02:00:00:00:0c:0a";
const MAC_CB: &str = "02:00:00:00:0c:0b";
const MAC_CD: &str = "02:00:00:00:0c:0d";
const MAC_A: &str = "02:00:00:00:00:0a";
const MAC_B: &str = "02:00:00:00:00:0b";
const MAC_D: &str = "02:00:00:00:00:0d";

impl Lab {
    fn new() -> Lab {
        Lab::with_queues(1)
    }

    /// A lab whose veth pairs have `queues` RX and TX queues each.
    fn with_queues(queues: u32) -> Lab {
        // POPGO_LAB_TAG (e.g. a developer's initials) keeps labs of parallel runs apart by name.
        let tag = std::env::var("POPGO_LAB_TAG").unwrap_or_default();
        let id = format!("{tag}{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let dir = tempfile::tempdir().expect("tempdir");
        let lab = Lab {
            d: format!("pgt-D-{id}"),
            c: format!("pgt-C-{id}"),
            a: format!("pgt-A-{id}"),
            b: format!("pgt-B-{id}"),
            dir,
        };
        for ns in [&lab.d, &lab.c, &lab.a, &lab.b] {
            ok(&["ip", "netns", "add", ns]);
            ok(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        let q = queues.to_string();
        let link = |ns: &str, dev: &str, mac: &str, peer_ns: &str, peer: &str, peer_mac: &str| {
            ok(&[
                "ip",
                "-n",
                ns,
                "link",
                "add",
                dev,
                "address",
                mac,
                "numtxqueues",
                &q,
                "numrxqueues",
                &q,
                "type",
                "veth",
                "peer",
                "name",
                peer,
                "netns",
                peer_ns,
                "address",
                peer_mac,
                "numtxqueues",
                &q,
                "numrxqueues",
                &q,
            ]);
        };
        link(&lab.d, "d0", MAC_D, &lab.c, "c-to-d", MAC_CD);
        link(&lab.c, "c-to-a", MAC_CA, &lab.a, "a0", MAC_A);
        link(&lab.c, "c-to-b", MAC_CB, &lab.b, "b0", MAC_B);
        for (ns, dev, addr) in [
            (&lab.d, "d0", "198.18.0.1/30"),
            (&lab.c, "c-to-d", "198.18.0.2/30"),
            (&lab.c, "c-to-a", "198.18.0.5/30"),
            (&lab.a, "a0", "198.18.0.6/30"),
            (&lab.c, "c-to-b", "198.18.0.9/30"),
            (&lab.b, "b0", "198.18.0.10/30"),
        ] {
            ok(&["ip", "-n", ns, "addr", "add", addr, "dev", dev]);
            ok(&["ip", "netns", "exec", ns, "sysctl", "-qw", &format!("net.ipv6.conf.{dev}.disable_ipv6=1")]);
            ok(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        // A frame the kernel redirects into c-to-a (XDP offload) reaches a0 only if a0
        // runs NAPI: an XDP program or GRO (veth_xdp_xmit refuses it otherwise).
        for (ns, dev) in [(&lab.a, "a0"), (&lab.b, "b0")] {
            ok(&["ip", "netns", "exec", ns, "ethtool", "-K", dev, "gro", "on"]);
        }
        lab
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The seed config with the lab's interface names.
    fn config(&self, pop_go: bool) -> PathBuf {
        let text = std::fs::read_to_string(root_dir().join("pcaps/seed.toml"))
            .unwrap()
            .replace("\"vethA\"", "\"c-to-a\"")
            .replace("\"vethB\"", "\"c-to-b\"")
            .replace("\"vethD\"", "\"c-to-d\"")
            .replace("pop_go = true", &format!("pop_go = {pop_go}"));
        let p = self.path(&format!("lab-{pop_go}.toml"));
        std::fs::write(&p, text).unwrap();
        p
    }

    fn spawn(&self, ns: &str, name: &'static str, args: &[&str]) -> Proc {
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {name}: {e}"));
        Proc { child, name }
    }

    /// Starts popgo run on C (bounded by --duration) and waits until it forwards.
    /// stderr goes to a file so that the readiness line can be waited for.
    fn popgo(&self, cfg: &Path, extra: &[&str]) -> (Proc, PathBuf) {
        self.popgo_for(cfg, 25, extra)
    }

    /// [`Lab::popgo`] stopping by itself after `secs`.
    fn popgo_for(&self, cfg: &Path, secs: u32, extra: &[&str]) -> (Proc, PathBuf) {
        let err = self.path(&format!("popgo-{}.err", NEXT.fetch_add(1, Ordering::Relaxed)));
        let child = Command::new("ip")
            .args(["netns", "exec", &self.c, POPGO, "run", "--config", cfg.to_str().unwrap()])
            .args(["--duration", &secs.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .expect("spawning popgo run");
        let p = Proc { child, name: "popgo run" };
        wait_for(&err, "forwarding", 15);
        (p, err)
    }

    /// tcpdump on `dev` in `ns`, writing `file`, for IPv4 to 10.1.1.0/24 (the seed traffic).
    fn capture(&self, ns: &str, dev: &str, file: &Path, filter: &str) -> (Proc, PathBuf) {
        let log = PathBuf::from(format!("{}.log", file.display()));
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "tcpdump", "-U", "-n", "-i", dev, "-w", file.to_str().unwrap(), filter])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawning tcpdump (apt-get install tcpdump)");
        let p = Proc { child, name: "tcpdump" };
        wait_for(&log, "listening", 10);
        (p, log)
    }

    fn send_seed(&self) {
        let p = self.spawn(
            &self.d,
            "popgo-lab send",
            &[
                POPGO_LAB,
                "send",
                "--iface",
                "d0",
                "--gap-us",
                "1000",
                root_dir().join("pcaps/seed.pcap").to_str().unwrap(),
            ],
        );
        let (code, _, err) = p.wait(30);
        assert_eq!(code, Some(0), "popgo-lab send failed: {err}");
    }

    fn xdp_programs(&self, ns: &str) -> usize {
        ok(&["ip", "-n", ns, "-o", "link", "show"]).lines().filter(|l| l.contains("prog/xdp")).count()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.d, &self.c, &self.a, &self.b] {
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

/// Stops popgo with SIGTERM; returns its final JSON report (the last stdout line) and
/// all stdout lines (stderr is in the file `Lab::popgo` returned).
fn stop_popgo(p: Proc) -> (Value, Vec<String>, String) {
    p.signal("-TERM");
    let (code, out, err) = p.wait(15);
    assert_eq!(code, Some(0), "popgo run exit code; stderr: {err}");
    let lines: Vec<String> = out.lines().map(str::to_string).collect();
    let last = lines.last().unwrap_or_else(|| panic!("popgo printed nothing; stderr: {err}"));
    (serde_json::from_str(last).expect("last line is the JSON report"), lines, err)
}

/// Frames of a pcap file.
fn frames(path: &Path) -> Vec<Vec<u8>> {
    let cap = popgo::io::pcap::Capture::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (0..cap.len()).map(|i| cap.packet(i).to_vec()).collect()
}

/// Golden output of `popgo replay --out-dir` for the seed pcap and `cfg`: (to-A, to-B).
fn golden(lab: &Lab, cfg: &Path) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let dir = lab.path(&format!("golden-{}", cfg.file_stem().unwrap().to_string_lossy()));
    ok(&[
        POPGO,
        "replay",
        "--config",
        cfg.to_str().unwrap(),
        "--out-dir",
        dir.to_str().unwrap(),
        root_dir().join("pcaps/seed.pcap").to_str().unwrap(),
    ]);
    let read = |n: &str| {
        let p = dir.join(n);
        if p.exists() {
            frames(&p)
        } else {
            Vec::new()
        }
    };
    (read("to-A.pcap"), read("to-B.pcap"))
}

fn check_forwarding(pop_go: bool, extra: &[&str]) -> Value {
    let lab = Lab::new();
    let cfg = lab.config(pop_go);
    let (want_a, want_b) = golden(&lab, &cfg);
    let filter = "ip and net 10.1.1.0/24";
    let (ta, _) = lab.capture(&lab.a, "a0", &lab.path("a.pcap"), filter);
    let (tb, _) = lab.capture(&lab.b, "b0", &lab.path("b.pcap"), filter);
    let mut args = vec!["--json-stats", "--stats-interval", "0.5"];
    args.extend_from_slice(extra);
    let (p, _) = lab.popgo(&cfg, &args);
    assert_eq!(lab.xdp_programs(&lab.c), 3, "one XDP program per port while running");
    lab.send_seed();
    std::thread::sleep(Duration::from_millis(1200));
    let (v, lines, _) = stop_popgo(p);
    std::thread::sleep(Duration::from_millis(300));
    ta.signal("-INT");
    tb.signal("-INT");
    ta.wait(10);
    tb.wait(10);

    // Counters. seed.pcap has 16 frames: the 10-byte runt is not sendable, ARP and the
    // MPLS multicast frame are not 0x8847 and stay with the kernel (XDP_PASS), so 13
    // reach popgo: 8 forwarded and 5 counted drops.
    assert_eq!(v["schema"], "popgo.run/1");
    assert_eq!(v["rx_packets"], 13, "{v}");
    assert_eq!(v["rx_by_port"]["to-D"], 13, "{v}");
    let (na, nb) = (want_a.len() as u64, want_b.len() as u64);
    assert_eq!(v["tx_packets"]["to-A"], na, "{v}");
    assert_eq!(v["tx_packets"]["to-B"], nb, "{v}");
    for r in ["no_ilm_entry", "ttl_expired", "reserved_label", "payload_mismatch", "truncated_label_stack"] {
        assert_eq!(v["drops"][r], 1, "{r}: {v}");
    }
    let drops: u64 = v["drops"].as_object().unwrap().values().map(|x| x.as_u64().unwrap()).sum();
    assert_eq!(drops, 5, "{v}");
    assert_eq!(v["rx_packets"].as_u64().unwrap(), na + nb + drops, "rx = tx + drops");
    assert_eq!(v["balanced"], true);
    // Per LSP: every packet forwarded (by the workers and by the XDP offload), all on
    // the seed's label.
    assert_eq!(v["lsp_counters"], true, "{v}");
    let lsp_pkts: u64 = v["lsps"].as_array().unwrap().iter().map(|l| l["packets"].as_u64().unwrap()).sum();
    assert_eq!(lsp_pkts, na + nb, "{v}");
    assert!(v["lsps"].as_array().unwrap().iter().all(|l| l["label"] == 48122), "{v}");
    assert!(lines.iter().any(|l| l.contains("\"schema\":\"popgo.stats/1\"")), "periodic JSON stats lines: {lines:?}");

    // Byte-exact frames at the sinks (label popped, MACs rewritten, TTL and checksum
    // as the replay computes them), in sending order.
    assert_eq!(frames(&lab.path("a.pcap")), want_a, "frames at DeviceA");
    assert_eq!(frames(&lab.path("b.pcap")), want_b, "frames at DeviceB");
    assert_eq!(lab.xdp_programs(&lab.c), 0, "XDP programs detached after SIGTERM");
    v
}

/// With POPGO every seed 10.1.1.x frame goes to DeviceA (8 frames).
#[test]
fn seed_popgo_byte_exact_at_sinks() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if privileged("seed_popgo_byte_exact_at_sinks") {
        let v = check_forwarding(true, &[]);
        assert!(v["offload"].is_null(), "no offload unless asked: {v}");
    }
}

/// The same through generic (skb) XDP on every port: the AF_XDP path in the other
/// attach mode, whose popped frames leave from an offset past their chunk start.
#[test]
fn seed_popgo_byte_exact_at_sinks_generic_xdp() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if privileged("seed_popgo_byte_exact_at_sinks_generic_xdp") {
        let v = check_forwarding(true, &["--xdp-generic"]);
        assert!(v["offload"].is_null(), "no offload unless asked: {v}");
    }
}

/// Without POPGO (pop + IP lookup) 10.1.1.0-3 go to DeviceB by the longer /30.
#[test]
fn seed_without_popgo_byte_exact_at_sinks() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if privileged("seed_without_popgo_byte_exact_at_sinks") {
        check_forwarding(false, &[]);
    }
}

/// The seed through `--offload xdp`, native then generic XDP: the same bytes at the
/// sinks as `popgo replay --out-dir`; the plain and tagged POPGO frames and the TTL
/// expiry are handled in the kernel, the explicit-null, entropy and malformed ones by
/// the workers, and the counters of both add up.
#[test]
fn seed_offload_byte_exact_at_sinks() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !privileged("seed_offload_byte_exact_at_sinks") {
        return;
    }
    for extra in [&["--offload", "xdp"][..], &["--offload", "xdp", "--xdp-generic"]] {
        let v = check_forwarding(true, extra);
        let o = &v["offload"];
        assert_eq!(o["mode"], "xdp", "{v}");
        let kernel_tx = o["tx_packets"]["to-A"].as_u64().unwrap();
        assert!(kernel_tx >= 4, "plain and tagged POPGO frames forwarded in the kernel ({extra:?}): {o}");
        assert!(kernel_tx < 8, "explicit null and entropy label frames went to the workers: {o}");
        assert_eq!(o["drops"]["ttl_expired"], 1, "the TTL expiry is dropped in the kernel: {o}");
        assert_eq!(o["rx_packets"].as_u64().unwrap(), kernel_tx + 1, "{o}");
        let workers: u64 = v["per_worker"].as_array().unwrap().iter().map(|w| w["rx_packets"].as_u64().unwrap()).sum();
        assert_eq!(workers + kernel_tx + 1, 13, "every frame counted once, in the kernel or a worker: {v}");
    }
}

/// One frame per flow of the churn test: label 48122 (bottom of stack) over IPv4/UDP
/// from D, to 10.1.1.5 (only the /24 matches) and 10.1.1.1 (the /30 too), and under
/// the transport label 18 to 10.1.1.7.
fn churn_flows_pcap(path: &Path) {
    let mut w = popgo::io::pcap::Writer::new(std::fs::File::create(path).unwrap()).unwrap();
    for (i, host) in [5u8, 1, 7].into_iter().enumerate() {
        let mut ip = Vec::new();
        etherparse::PacketBuilder::ipv4([192, 0, 2, 1], [10, 1, 1, host], 64)
            .udp(40000, 9)
            .write(&mut ip, &[0x5a; 18])
            .unwrap();
        let mut f = Vec::new();
        f.extend_from_slice(&[2, 0, 0, 0, 0x0c, 0x0d, 2, 0, 0, 0, 0, 0x0d, 0x88, 0x47]);
        if host == 7 {
            f.extend_from_slice(&((18u32 << 12) | 64).to_be_bytes());
        }
        f.extend_from_slice(&((48122u32 << 12) | (1 << 8) | 64).to_be_bytes());
        f.extend_from_slice(&ip);
        w.write_packet(i as u64 * 1000, &f).unwrap();
    }
    w.into_inner().unwrap();
}

/// The churn test's table states: pop-go on or off, 10.1.1.0/24 via DeviceA or
/// DeviceB, and DeviceA's neighbor MAC (changed only by a reload: a full build).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct ChurnState {
    pop_go: bool,
    via_b: bool,
    mac_a2: bool,
}

const MAC_A2: &str = "02:00:00:00:00:1a";

impl ChurnState {
    fn config(self, lab: &Lab) -> String {
        let mut t = std::fs::read_to_string(lab.config(self.pop_go)).unwrap();
        if self.via_b {
            t = t.replace(
                "prefix = \"10.1.1.0/24\"\nnext_hop = \"192.168.10.1\"",
                "prefix = \"10.1.1.0/24\"\nnext_hop = \"192.168.20.1\"",
            );
        }
        if self.mac_a2 {
            t = t.replace("mac = \"02:00:00:00:00:0a\"", &format!("mac = \"{MAC_A2}\""));
        }
        t + &popgo::traffic::profile::transport_toml(18)
    }
}

/// 3000 commits while traffic flows with `--offload xdp`: the label moves between the
/// kernel (POPGO) and the workers (POP), between DeviceA and DeviceB, and (by reloads,
/// i.e. full builds with a new adjacency table) between two MACs of DeviceA. Every
/// frame at a sink is byte for byte what one of the table states gives it (`popgo
/// replay` of that state): never a mix of two (port of one, MACs of another); every
/// frame sent is counted once and none is lost; and the per-LSP counts, the kernel's
/// and the workers', add up to the frames sent. One flow carries the transport label
/// over the POPGO label (popped in the kernel while POPGO is on).
#[test]
fn offload_churn_every_packet_follows_one_table() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !privileged("offload_churn_every_packet_follows_one_table") {
        return;
    }
    const COMMITS: usize = 3000;
    const RELOAD_EVERY: usize = 250;
    let lab = Lab::new();
    let flows = lab.path("flows.pcap");
    churn_flows_pcap(&flows);
    // What each state does to each flow: (sink, bytes).
    let mut allowed: std::collections::HashMap<(char, Vec<u8>), ChurnState> = Default::default();
    for pop_go in [false, true] {
        for via_b in [false, true] {
            for mac_a2 in [false, true] {
                let st = ChurnState { pop_go, via_b, mac_a2 };
                let cfg = lab.path(&format!("state-{pop_go}-{via_b}-{mac_a2}.toml"));
                std::fs::write(&cfg, st.config(&lab)).unwrap();
                let dir = lab.path(&format!("golden-{pop_go}-{via_b}-{mac_a2}"));
                ok(&[
                    POPGO,
                    "replay",
                    "--config",
                    cfg.to_str().unwrap(),
                    "--out-dir",
                    dir.to_str().unwrap(),
                    flows.to_str().unwrap(),
                ]);
                for (sink, file) in [('A', "to-A.pcap"), ('B', "to-B.pcap")] {
                    if dir.join(file).exists() {
                        for f in frames(&dir.join(file)) {
                            allowed.insert((sink, f), st);
                        }
                    }
                }
            }
        }
    }
    assert_eq!(allowed.len(), 9, "three flows, three outputs each");

    let cfg = lab.path("churn.toml");
    let mut state = ChurnState { pop_go: true, via_b: false, mac_a2: false };
    std::fs::write(&cfg, state.config(&lab)).unwrap();
    let sock = lab.path("ctl.sock");
    let filter = "ip and net 10.1.1.0/24";
    let big_buffer = |ns: &str, dev: &str, file: &str| {
        let file = lab.path(file);
        let log = PathBuf::from(format!("{}.log", file.display()));
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "tcpdump",
                "-U",
                "-B",
                "16384",
                "-n",
                "-i",
                dev,
                "-w",
                file.to_str().unwrap(),
                filter,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("tcpdump");
        wait_for(&log, "listening", 10);
        (Proc { child, name: "tcpdump" }, log)
    };
    let (ta, la) = big_buffer(&lab.a, "a0", "a.pcap");
    let (tb, lb) = big_buffer(&lab.b, "b0", "b.pcap");
    let (p, err_file) = lab.popgo_for(
        &cfg,
        120,
        &["--offload", "xdp", "--control", sock.to_str().unwrap(), "--json-stats", "--stats-interval", "0"],
    );
    let (d0_dropped, c_dropped) = (link_dropped(&lab.d, "d0").0, link_dropped(&lab.c, "c-to-d").1);
    let sender = lab.spawn(
        &lab.d,
        "popgo-lab send",
        &[POPGO_LAB, "send", "--iface", "d0", "--gap-us", "40", "--repeat", "1000000", flows.to_str().unwrap()],
    );
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    let (mut c, _) = popgo::control::client::Client::connect(&sock).expect("control socket");
    let mut retries = 0;
    let mut send = |line: &str| loop {
        let r = c.send(line).expect("control socket");
        // Back-pressure of the control plane when the worker has not yet passed a
        // quiescent state for the last commits (2 vCPUs): the commit is kept; retry.
        if line == "commit" && !r.ok && r.text.contains("try again later") {
            retries += 1;
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        assert!(r.ok, "{line}: {}", r.text);
        break;
    };
    send("system-view");
    let mut reloads = 0;
    let mut seen_states = std::collections::HashSet::new();
    for k in 0..COMMITS {
        if k % RELOAD_EVERY == RELOAD_EVERY - 1 {
            // A full build: the neighbor MAC of DeviceA changes (new adjacency table).
            state.mac_a2 = !state.mac_a2;
            std::fs::write(&cfg, state.config(&lab)).unwrap();
            reloads += 1;
            p.signal("-HUP");
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::fs::read_to_string(&err_file).unwrap().matches("reloaded").count() < reloads {
                assert!(Instant::now() < deadline, "reload {reloads} not seen");
                std::thread::sleep(Duration::from_millis(2));
            }
        } else if k % 3 == 2 {
            state.pop_go = !state.pop_go;
            send("bgp 100");
            send(if state.pop_go { "apply-label per-route pop-go" } else { "undo apply-label per-route pop-go" });
            send("commit");
            send("quit");
        } else {
            let (from, to) =
                if state.via_b { ("192.168.20.1", "192.168.10.1") } else { ("192.168.10.1", "192.168.20.1") };
            state.via_b = !state.via_b;
            send(&format!("ip route-static 10.1.1.0 24 {to}"));
            send(&format!("undo ip route-static 10.1.1.0 24 {from}"));
            send("commit");
        }
        seen_states.insert(state);
    }
    let churn = t0.elapsed();
    eprintln!("churn: {COMMITS} commits ({reloads} reloads) in {churn:?}, {retries} commit retries");
    drop(c);
    sender.signal("-INT");
    let (code, _, send_err) = sender.wait(30);
    assert_eq!(code, Some(0), "popgo-lab send: {send_err}");
    let sent: u64 = send_err
        .split_whitespace()
        .zip(send_err.split_whitespace().skip(1))
        .find(|(_, w)| *w == "frames")
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {send_err:?}"));
    std::thread::sleep(Duration::from_millis(500));
    let stats = ctl(&lab, &sock, "display popgo statistics");
    let (v, _, _) = stop_popgo(p);
    std::thread::sleep(Duration::from_millis(300));
    ta.signal("-INT");
    tb.signal("-INT");
    ta.wait(10);
    tb.wait(10);
    for l in [&la, &lb] {
        let log = std::fs::read_to_string(l).unwrap();
        assert!(log.lines().any(|l| l.trim() == "0 packets dropped by kernel"), "tcpdump lost frames: {log}");
    }
    let (at_a, at_b) = (frames(&lab.path("a.pcap")), frames(&lab.path("b.pcap")));
    eprintln!(
        "churn: {COMMITS} commits ({reloads} reloads) in {churn:?}, {} states; sent {sent}, at A {}, at B {}; {}",
        seen_states.len(),
        at_a.len(),
        at_b.len(),
        v["offload"]
    );
    assert!(churn < Duration::from_secs(120), "commits took {churn:?}");
    // A loaded machine sends less; what matters is that traffic flowed throughout.
    assert!(sent > 2_000, "traffic flowed during the churn: {sent}");
    // Several states give a flow the same bytes (POP and POPGO via DeviceA, say): count
    // per distinct output.
    let mut by_output: std::collections::HashMap<(char, Vec<u8>), u64> = Default::default();
    for (sink, fs) in [('A', &at_a), ('B', &at_b)] {
        for f in fs {
            assert!(
                allowed.contains_key(&(sink, f.clone())),
                "a frame at Device{sink} that no single table gives: {f:02x?}"
            );
            *by_output.entry((sink, f.clone())).or_default() += 1;
        }
    }
    let counts: Vec<u64> = by_output.values().copied().collect();
    eprintln!("frames per distinct output: {counts:?} of {} possible", allowed.len());
    assert_eq!(by_output.len(), allowed.len(), "traffic took every output the states give");
    // None lost, none uncounted: the sender's count reached popgo and left it again, but
    // for frames the kernel dropped and counted before popgo could take them (a worker
    // not scheduled on a loaded machine: its AF_XDP rings full or its fill ring empty,
    // or the veth's XDP ring full).
    let k = &v["kernel"];
    let socket_drops = k["rx_ring_full"].as_u64().unwrap() + k["rx_dropped"].as_u64().unwrap();
    let veth_drops = link_dropped(&lab.d, "d0").0 - d0_dropped + link_dropped(&lab.c, "c-to-d").1 - c_dropped;
    eprintln!("churn: kernel drops before popgo: socket {socket_drops}, veth {veth_drops}");
    assert_eq!(v["rx_packets"].as_u64().unwrap() + socket_drops + veth_drops, sent, "{v}");
    assert_eq!(v["tx_packets"]["to-A"], at_a.len() as u64, "{v}");
    assert_eq!(v["tx_packets"]["to-B"], at_b.len() as u64, "{v}");
    assert_eq!(at_a.len() as u64 + at_b.len() as u64, sent - socket_drops - veth_drops, "{v}");
    assert_eq!(v["balanced"], true, "{v}");
    let kernel_tx: u64 = v["offload"]["tx_packets"].as_object().unwrap().values().map(|x| x.as_u64().unwrap()).sum();
    assert!(kernel_tx > sent / 10 && kernel_tx < sent, "both paths forwarded: kernel {kernel_tx} of {sent}");
    let lsps: u64 = v["lsps"].as_array().unwrap().iter().map(|l| l["packets"].as_u64().unwrap()).sum();
    assert_eq!(lsps, sent - socket_drops - veth_drops, "sum over LSPs = forwarded packets, kernel and workers: {v}");
    assert!(stats.contains("xdp offload: rx_pkts"), "{stats}");
    assert!(stats.contains(&format!("XDP offload mirror: {} update(s)", COMMITS + 1)), "{stats}");
}

/// Non-MPLS traffic (ARP, ICMP, UDP) still reaches the kernel on popgo's ports while
/// MPLS is forwarded.
#[test]
fn non_mpls_reaches_the_kernel_while_forwarding() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !privileged("non_mpls_reaches_the_kernel_while_forwarding") {
        return;
    }
    let lab = Lab::new();
    let cfg = lab.config(true);
    let (p, _) = lab.popgo(&cfg, &["--json-stats", "--stats-interval", "0"]);
    // A UDP datagram from D to C's address on port to-D: needs ARP both ways through
    // the XDP program, then the datagram itself must show up in C's stack.
    let (td, _) = lab.capture(&lab.c, "c-to-d", &lab.path("c.pcap"), "udp port 9");
    let send = sh(&["ip", "netns", "exec", &lab.d, "bash", "-c", "echo hello > /dev/udp/198.18.0.2/9"]);
    assert!(send.status.success(), "{}", String::from_utf8_lossy(&send.stderr));
    if popgo::testkit::have_tool("non_mpls_reaches_the_kernel_while_forwarding (ping part)", "ping", "-V") {
        for (ns, addr) in [(&lab.d, "198.18.0.2"), (&lab.a, "198.18.0.5"), (&lab.b, "198.18.0.9")] {
            let o = sh(&["ip", "netns", "exec", ns, "ping", "-c", "2", "-i", "0.2", "-W", "2", addr]);
            assert!(o.status.success(), "ping {addr} from {ns}: {}", String::from_utf8_lossy(&o.stdout));
        }
    }
    lab.send_seed();
    std::thread::sleep(Duration::from_millis(800));
    td.signal("-INT");
    td.wait(10);
    let got = frames(&lab.path("c.pcap"));
    assert!(!got.is_empty(), "the UDP datagram did not reach DeviceC's kernel");
    let neigh = ok(&["ip", "-n", &lab.d, "neigh", "show", "198.18.0.2"]);
    assert!(neigh.contains(MAC_CD), "ARP for DeviceC from DeviceD: {neigh:?}");
    let (v, _, _) = stop_popgo(p);
    assert_eq!(v["tx_packets"]["to-A"], 8, "MPLS still forwarded: {v}");
    assert_eq!(v["drops"]["not_mpls"], 0, "non-MPLS never reached user space: {v}");
}

/// SIGKILL leaves the programs attached; the next start replaces them and works, and
/// its SIGTERM leaves nothing behind.
#[test]
fn restart_after_sigkill_then_sigterm_cleans_up() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !privileged("restart_after_sigkill_then_sigterm_cleans_up") {
        return;
    }
    let lab = Lab::new();
    let cfg = lab.config(true);
    let (p, _) = lab.popgo(&cfg, &["--stats-interval", "0"]);
    assert_eq!(lab.xdp_programs(&lab.c), 3);
    p.signal("-KILL");
    let (code, _, _) = p.wait(10);
    assert_eq!(code, None, "killed by a signal");
    assert_eq!(lab.xdp_programs(&lab.c), 3, "SIGKILL leaves the stale programs attached");
    let (p, err_file) = lab.popgo(&cfg, &["--json-stats", "--stats-interval", "0"]);
    lab.send_seed();
    std::thread::sleep(Duration::from_millis(800));
    let (v, _, _) = stop_popgo(p);
    assert_eq!(v["tx_packets"]["to-A"], 8, "{v}");
    let err = std::fs::read_to_string(err_file).unwrap();
    assert!(err.contains("detached"), "{err}");
    assert_eq!(lab.xdp_programs(&lab.c), 0, "no XDP program left after SIGTERM");
    let links = ok(&["ip", "-n", &lab.c, "-o", "link", "show"]);
    assert!(!links.contains("xdp"), "{links}");
}

/// The offload's lifecycle: a SIGKILLed `--offload xdp` run leaves its programs; a
/// generic-mode offload run replaces them and forwards; after its SIGKILL a run
/// without offload replaces those and forwards with the workers alone; SIGTERM leaves
/// nothing behind.
#[test]
fn offload_restart_after_sigkill_native_generic_and_back() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !privileged("offload_restart_after_sigkill_native_generic_and_back") {
        return;
    }
    let lab = Lab::new();
    let cfg = lab.config(true);
    let (p, _) = lab.popgo(&cfg, &["--offload", "xdp", "--stats-interval", "0"]);
    assert_eq!(lab.xdp_programs(&lab.c), 3);
    p.signal("-KILL");
    assert_eq!(p.wait(10).0, None);
    assert_eq!(lab.xdp_programs(&lab.c), 3, "SIGKILL leaves the offload programs attached");
    let (p, _) = lab.popgo(&cfg, &["--offload", "xdp", "--xdp-generic", "--json-stats", "--stats-interval", "0"]);
    let links = ok(&["ip", "-n", &lab.c, "-o", "link", "show"]);
    assert_eq!(links.matches("xdpgeneric").count(), 3, "generic mode replaced the native programs: {links}");
    lab.send_seed();
    std::thread::sleep(Duration::from_millis(800));
    p.signal("-KILL");
    assert_eq!(p.wait(10).0, None);
    let (p, _) = lab.popgo(&cfg, &["--json-stats", "--stats-interval", "0"]);
    lab.send_seed();
    std::thread::sleep(Duration::from_millis(800));
    let (v, _, _) = stop_popgo(p);
    assert_eq!(v["tx_packets"]["to-A"], 8, "{v}");
    assert!(v["offload"].is_null(), "{v}");
    assert_eq!(lab.xdp_programs(&lab.c), 0, "no XDP program left after SIGTERM");
}

/// Bad interface, bad ring size and missing privileges: one clear line, exit 2.
#[test]
fn setup_errors_exit_2_without_panic() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let seed = std::fs::read_to_string(root_dir().join("pcaps/seed.toml")).unwrap();
    let write = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let check = |args: &[&str], want: &str| {
        let o = sh(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: want {want:?} in {err}");
        assert!(!err.contains("panicked") && !err.contains("backtrace"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one error line: {err}");
    };
    let nodev = write("nodev.toml", seed.replace("\"vethA\"", "\"pgt-nodev0\""));
    check(&[POPGO, "run", "--config", &nodev], "does not exist");
    check(&[POPGO, "run", "--config", &nodev, "--ring-size", "1000"], "not a power of two");
    check(
        &[POPGO, "run", "--config", &nodev, "--rx-ring-size", "131072"],
        "--rx-ring-size 131072 is not a power of two in 64..=65536",
    );
    // Huge durations are refused before anything is attached (they used to panic).
    check(&[POPGO, "run", "--config", &nodev, "--duration", "1e20"], "--duration");
    check(&[POPGO, "run", "--config", &nodev, "--stats-interval", "1e300"], "--stats-interval");
    check(&[POPGO, "run", "--config", &nodev, "--cores", "0-18446744073709551615"], "go up to 1023");
    if !privileged("setup_errors_exit_2_without_panic (privileges part)") {
        return;
    }
    // Missing privileges: as nobody, on `lo` (exists everywhere); the first privileged
    // step (creating the XSKMAP) fails with EPERM.
    let lo = seed.replace("\"vethA\"", "\"lo\"").replace("iface = \"vethB\"\n", "").replace("iface = \"vethD\"\n", "");
    let lo = write("lo.toml", lo);
    let _ = sh(&["chmod", "755", dir.path().to_str().unwrap()]);
    let _ = sh(&["chmod", "644", &lo]);
    if popgo::testkit::have_tool("setup_errors_exit_2_without_panic (privileges part)", "setpriv", "--version") {
        check(
            &[
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
                POPGO,
                "run",
                "--config",
                &lo,
            ],
            "missing privileges",
        );
    }
}

/// SIGHUP re-reads the config and publishes new tables while forwarding (the
/// reload path): pop_go true -> false moves 10.1.1.1-3 from DeviceA to DeviceB.
#[test]
fn sighup_reload_publishes_new_tables() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !privileged("sighup_reload_publishes_new_tables") {
        return;
    }
    let lab = Lab::new();
    let cfg = lab.config(true);
    let (p, err_file) = lab.popgo(&cfg, &["--json-stats", "--stats-interval", "0"]);
    lab.send_seed();
    let off = std::fs::read_to_string(lab.config(false)).unwrap();
    std::fs::write(&cfg, off).unwrap();
    p.signal("-HUP");
    wait_for(&err_file, "reloaded", 10);
    let err = std::fs::read_to_string(&err_file).unwrap();
    assert!(err.contains("1 change(s), incremental"), "SIGHUP goes through the incremental commit path: {err}");
    lab.send_seed();
    // Reloads that fail keep the running tables: a port change and a broken file.
    let good = std::fs::read_to_string(&cfg).unwrap();
    for (bad, why) in [
        (good.replace("\"c-to-b\"", "\"c-to-x\""), "the ports or their interfaces changed"),
        (good.replace("[[port]]", "[[port"), "line "),
    ] {
        std::fs::write(&cfg, bad).unwrap();
        p.signal("-HUP");
        wait_for(&err_file, why, 10);
    }
    let err = std::fs::read_to_string(&err_file).unwrap();
    assert_eq!(err.matches("failed, running config kept").count(), 2, "{err}");
    // Traffic still follows the last good config (pop_go = false).
    lab.send_seed();
    std::thread::sleep(Duration::from_millis(800));
    let (v, _, _) = stop_popgo(p);
    assert_eq!(v["tx_packets"]["to-A"], 8 + 2 + 2, "{v}");
    assert_eq!(v["tx_packets"]["to-B"], 6 + 6, "{v}");
    assert_eq!(v["events"]["ilm_swaps_seen"], 1, "{v}");
    assert_eq!(v["balanced"], true);
}

/// A pcap of labelled (48122, bottom of stack) IPv4/UDP frames from DeviceD to
/// 10.1.1.1, .2 and .3: the traffic the seed's wrong forwarding sends to DeviceB.
fn seed_flows_pcap(path: &Path) {
    let mut w = popgo::io::pcap::Writer::new(std::fs::File::create(path).unwrap()).unwrap();
    for host in 1..=3u8 {
        let mut ip = Vec::new();
        etherparse::PacketBuilder::ipv4([192, 0, 2, 1], [10, 1, 1, host], 64)
            .udp(40000, 9)
            .write(&mut ip, &[0x5a; 18])
            .unwrap();
        let mut f = Vec::new();
        f.extend_from_slice(&[2, 0, 0, 0, 0x0c, 0x0d, 2, 0, 0, 0, 0, 0x0d, 0x88, 0x47]);
        if host == 7 {
            f.extend_from_slice(&((18u32 << 12) | 64).to_be_bytes());
        }
        f.extend_from_slice(&((48122u32 << 12) | (1 << 8) | 64).to_be_bytes());
        f.extend_from_slice(&ip);
        w.write_packet(u64::from(host) * 1000, &f).unwrap();
    }
    w.into_inner().unwrap();
}

/// `popgo ctl` against `sock` (run from C's namespace); returns stdout.
/// One `NAME VALUE` counter of `display popgo statistics`.
fn stat_counter(stats: &str, name: &str) -> u64 {
    let line = stats.lines().find(|l| l.split_whitespace().next() == Some(name));
    line.and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or_else(|| panic!("{name}: {stats}"))
}

/// Frames a veth dropped, `(tx, rx)`, from `ip -s -j link show`.
fn link_dropped(ns: &str, dev: &str) -> (u64, u64) {
    let v: Value = serde_json::from_str(&ok(&["ip", "-n", ns, "-s", "-j", "link", "show", "dev", dev])).unwrap();
    let st = &v[0]["stats64"];
    (st["tx"]["dropped"].as_u64().unwrap_or(0), st["rx"]["dropped"].as_u64().unwrap_or(0))
}

fn ctl(lab: &Lab, sock: &Path, cmds: &str) -> String {
    ok(&["ip", "netns", "exec", &lab.c, POPGO, "ctl", "--socket", sock.to_str().unwrap(), cmds])
}

/// The seed procedure typed verbatim into `popgo ctl` against a running `popgo run`
/// that starts without POPGO: while traffic for 10.1.1.1-3 flows from D, it moves from
/// DeviceB to DeviceA without a restart, `display mpls lsp protocol bgp` turns POP into
/// POPGO, and no frame is lost across the commit.
#[test]
fn seed_procedure_on_run_moves_live_traffic() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !privileged("seed_procedure_on_run_moves_live_traffic") {
        return;
    }
    let lab = Lab::new();
    let cfg = lab.config(false);
    let sock = lab.path("ctl.sock");
    let flows = lab.path("flows.pcap");
    seed_flows_pcap(&flows);
    let filter = "ip and net 10.1.1.0/24";
    let (ta, _) = lab.capture(&lab.a, "a0", &lab.path("a.pcap"), filter);
    let (tb, _) = lab.capture(&lab.b, "b0", &lab.path("b.pcap"), filter);
    let (p, _) = lab.popgo(&cfg, &["--control", sock.to_str().unwrap(), "--json-stats", "--stats-interval", "0"]);
    let before = ctl(&lab, &sock, "display mpls lsp protocol bgp");
    assert!(before.contains("POP") && !before.contains("POPGO"), "{before}");

    // 3 frames every 1.5 ms for about 3 s.
    const REPEAT: u64 = 700;
    let sender = lab.spawn(
        &lab.d,
        "popgo-lab send",
        &[
            POPGO_LAB,
            "send",
            "--iface",
            "d0",
            "--gap-us",
            "1500",
            "--repeat",
            &REPEAT.to_string(),
            flows.to_str().unwrap(),
        ],
    );
    std::thread::sleep(Duration::from_millis(1200));
    // The procedure of the configuration guide, verbatim.
    let out = ctl(&lab, &sock, "system-view; bgp 100; apply-label per-route pop-go; commit");
    assert!(!out.contains("Error"), "{out}");
    let after = ctl(&lab, &sock, "display mpls lsp protocol bgp");
    assert!(after.contains("POPGO"), "{after}");
    let stats = ctl(&lab, &sock, "display popgo statistics");
    let counter = |name: &str| stat_counter(&stats, name);
    assert!(counter("port.to-D.rx_pkts") > 0, "{stats}");
    assert!(counter("port.to-B.tx_pkts") > 0, "{stats}");
    assert!(stats.contains("generation 2"), "{stats}");
    let (code, _, err) = sender.wait(30);
    assert_eq!(code, Some(0), "popgo-lab send failed: {err}");
    std::thread::sleep(Duration::from_millis(800));
    let (v, _, _) = stop_popgo(p);
    std::thread::sleep(Duration::from_millis(300));
    ta.signal("-INT");
    tb.signal("-INT");
    ta.wait(10);
    tb.wait(10);

    let sent = 3 * REPEAT;
    let (at_a, at_b) = (frames(&lab.path("a.pcap")).len() as u64, frames(&lab.path("b.pcap")).len() as u64);
    eprintln!("sent {sent}, at DeviceA {at_a}, at DeviceB {at_b}; ctl: {out}; report: {v}");
    assert_eq!(v["rx_packets"], sent, "every frame D sent reached popgo: {v}");
    assert_eq!(v["tx_packets"]["to-A"], at_a, "{v}");
    assert_eq!(v["tx_packets"]["to-B"], at_b, "{v}");
    assert_eq!(at_a + at_b, sent, "no frame lost across the commit: A {at_a} + B {at_b}");
    assert!(at_b >= 300, "traffic went to DeviceB before the commit: {at_b}");
    assert!(at_a >= 300, "traffic moved to DeviceA after the commit: {at_a}");
    let drops: u64 = v["drops"].as_object().unwrap().values().map(|x| x.as_u64().unwrap()).sum();
    assert_eq!(drops, 0, "{v}");
    assert_eq!(v["balanced"], true, "{v}");
    assert_eq!(v["events"]["ilm_swaps_seen"], 1, "one commit seen by the worker: {v}");
    // After the commit nothing went to B any more: B's frames all precede A's last ones.
    let times = |f: &str| {
        let cap = popgo::io::pcap::Capture::open(&lab.path(f)).unwrap();
        cap.records().iter().map(|r| r.ts_ns).collect::<Vec<u64>>()
    };
    let (ta_ns, tb_ns) = (times("a.pcap"), times("b.pcap"));
    let first_a = *ta_ns.iter().min().unwrap();
    assert!(tb_ns.iter().all(|t| *t <= first_a + 5_000_000), "DeviceB received traffic after DeviceA started to");
    assert!(!sock.exists(), "the control socket is removed at exit");
}

/// The XDP program line of `dev` in `ns` (`prog/xdp id N ...`), if any.
fn xdp_line(lab_ns: &str, dev: &str) -> Option<String> {
    let links = ok(&["ip", "-n", lab_ns, "-o", "link", "show", "dev", dev]);
    links.split("prog/xdp").nth(1).map(|rest| rest.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
}

/// Another application's XDP program on a port's interface is left alone: popgo run
/// refuses with exit 2 and names it; with --force it replaces it.
#[test]
fn foreign_xdp_program_is_replaced_only_with_force() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !privileged("foreign_xdp_program_is_replaced_only_with_force") {
        return;
    }
    let lab = Lab::new();
    let cfg = lab.config(true);
    let _foreign = lab.spawn(
        &lab.c,
        "foreign XDP program",
        &[POPGO_LAB, "sink", "--iface", "c-to-b", "--secs", "30", "--prog-name", "other_app"],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while xdp_line(&lab.c, "c-to-b").is_none() {
        assert!(Instant::now() < deadline, "the foreign program was not attached");
        std::thread::sleep(Duration::from_millis(50));
    }
    let theirs = xdp_line(&lab.c, "c-to-b");
    let o = sh(&["ip", "netns", "exec", &lab.c, POPGO, "run", "--config", cfg.to_str().unwrap(), "--duration", "2"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("\"other_app\"") && err.contains("--force"), "{err}");
    assert_eq!(xdp_line(&lab.c, "c-to-b"), theirs, "the foreign program is still attached");
    assert_eq!(lab.xdp_programs(&lab.c), 1, "popgo left none of its own behind");

    let (p, _) = lab.popgo(&cfg, &["--force", "--json-stats", "--stats-interval", "0"]);
    assert_eq!(lab.xdp_programs(&lab.c), 3);
    assert_ne!(xdp_line(&lab.c, "c-to-b"), theirs, "--force replaced it");
    lab.send_seed();
    std::thread::sleep(Duration::from_millis(800));
    let (v, _, _) = stop_popgo(p);
    assert_eq!(v["tx_packets"]["to-A"], 8, "{v}");
}

/// Two workers on two queues per port, with the control socket: the seed procedure is
/// committed while one worker idles, both move to the new tables, traffic follows.
#[test]
fn two_workers_two_queues_follow_a_commit() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !privileged("two_workers_two_queues_follow_a_commit") {
        return;
    }
    let lab = Lab::with_queues(2);
    let cfg = lab.config(false);
    let sock = lab.path("ctl.sock");
    let (p, _) = lab.popgo(
        &cfg,
        &[
            "--workers",
            "2",
            "--queues",
            "2",
            "--control",
            sock.to_str().unwrap(),
            "--json-stats",
            "--stats-interval",
            "0",
        ],
    );
    lab.send_seed();
    let out = ctl(&lab, &sock, "system-view; bgp 100; apply-label per-route pop-go; commit");
    assert!(out.contains("commit ok"), "{out}");
    lab.send_seed();
    std::thread::sleep(Duration::from_millis(800));
    let (v, _, _) = stop_popgo(p);
    assert_eq!(v["workers"], 2, "{v}");
    assert_eq!(v["per_worker"].as_array().unwrap().len(), 2, "{v}");
    // First pass without POPGO: 2 to A, 6 to B; second with it: 8 to A.
    assert_eq!(v["tx_packets"]["to-A"], 10, "{v}");
    assert_eq!(v["tx_packets"]["to-B"], 6, "{v}");
    assert_eq!(v["balanced"], true, "{v}");
    // The idle worker moved to the committed tables as well (one swap each).
    assert_eq!(v["events"]["ilm_swaps_seen"], 2, "{v}");
}

/// A port without an interface is not attached: frames routed to it are counted as
/// `bad_out_port` drops, and the accounting still balances.
#[test]
fn frames_to_an_unattached_port_are_counted() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !privileged("frames_to_an_unattached_port_are_counted") {
        return;
    }
    let lab = Lab::new();
    let text = std::fs::read_to_string(lab.config(false)).unwrap().replace("iface = \"c-to-b\"", "");
    let cfg = lab.path("no-b.toml");
    std::fs::write(&cfg, text).unwrap();
    let (p, _) = lab.popgo(&cfg, &["--json-stats", "--stats-interval", "0"]);
    assert_eq!(lab.xdp_programs(&lab.c), 2, "to-B is not attached");
    lab.send_seed();
    std::thread::sleep(Duration::from_millis(800));
    let (v, _, _) = stop_popgo(p);
    assert_eq!(v["tx_packets"]["to-A"], 2, "{v}");
    assert_eq!(v["tx_packets"]["to-B"], 0, "{v}");
    assert_eq!(v["drops"]["bad_out_port"], 6, "the 6 frames for DeviceB: {v}");
    assert_eq!(v["balanced"], true, "{v}");
}

/// One namespace holding both ends of the lab's three veth pairs (c-to-d/d0,
/// c-to-a/a0, c-to-b/b0), so that popgo run sees every port's peer. Drop kills what
/// runs in it and deletes it.
struct PeersHere {
    ns: String,
    dir: tempfile::TempDir,
}

impl PeersHere {
    /// The pairs, up, with GRO on at the peers in `gro_on` and off at the others.
    fn new(gro_on: &[&str]) -> PeersHere {
        let id = format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let lab = PeersHere { ns: format!("pgt-P-{id}"), dir: tempfile::tempdir().expect("tempdir") };
        ok(&["ip", "netns", "add", &lab.ns]);
        for (dev, peer) in [("c-to-d", "d0"), ("c-to-a", "a0"), ("c-to-b", "b0")] {
            ok(&["ip", "-n", &lab.ns, "link", "add", dev, "type", "veth", "peer", "name", peer]);
            for d in [dev, peer] {
                ok(&["ip", "-n", &lab.ns, "link", "set", d, "up"]);
            }
            let gro = if gro_on.contains(&peer) { "on" } else { "off" };
            ok(&["ip", "netns", "exec", &lab.ns, "ethtool", "-K", peer, "gro", gro]);
        }
        lab
    }

    /// `popgo run` for one second with the seed config; returns its stderr (exit 0 checked).
    fn run(&self, extra: &[&str]) -> String {
        let text = std::fs::read_to_string(root_dir().join("pcaps/seed.toml"))
            .unwrap()
            .replace("\"vethA\"", "\"c-to-a\"")
            .replace("\"vethB\"", "\"c-to-b\"")
            .replace("\"vethD\"", "\"c-to-d\"");
        let cfg = self.dir.path().join("seed.toml");
        std::fs::write(&cfg, text).unwrap();
        let mut args = vec!["ip", "netns", "exec", &self.ns, POPGO, "run", "--config", cfg.to_str().unwrap()];
        args.extend(["--duration", "1", "--stats-interval", "0"]);
        args.extend(extra);
        let o = sh(&args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        err
    }
}

impl Drop for PeersHere {
    fn drop(&mut self) {
        if let Ok(o) = Command::new("ip").args(["netns", "pids", &self.ns]).output() {
            for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).output();
            }
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

/// The start-up warnings about veth peers (lines of `stderr` that mention a veth).
fn veth_warnings(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains("WARN") && l.contains("veth")).collect()
}

/// `--offload xdp` in native mode warns about an out port whose veth peer has neither
/// GRO nor an XDP program (the kernel would drop what the offload redirects there),
/// naming the port, the interface, the peer and the fix; a peer with only an XDP
/// program is fine. Without offload, or with generic XDP, nothing is said.
#[test]
fn offload_warns_about_a_veth_peer_without_napi() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !privileged("offload_warns_about_a_veth_peer_without_napi") {
        return;
    }
    let lab = PeersHere::new(&["d0"]);
    // b0: GRO off but a native XDP program, which gives it NAPI as well.
    let _sink = Proc {
        child: Command::new("ip")
            .args(["netns", "exec", &lab.ns, POPGO_LAB, "sink", "--iface", "b0", "--secs", "30"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning popgo-lab sink"),
        name: "popgo-lab sink",
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while xdp_line(&lab.ns, "b0").is_none() {
        assert!(Instant::now() < deadline, "the sink's program was not attached to b0");
        std::thread::sleep(Duration::from_millis(50));
    }
    let err = lab.run(&["--offload", "xdp"]);
    let w = veth_warnings(&err);
    assert_eq!(w.len(), 1, "one warning, for a0 only: {err}");
    for part in [
        "port \"to-A\"",
        "c-to-a is a veth whose peer a0 has no XDP program and GRO off",
        "the kernel drops frames the offload redirects to it",
        "popgo counts them as sent",
        "`ethtool -K a0 gro on`",
        "attach an XDP program to a0",
    ] {
        assert!(w[0].contains(part), "{part:?} missing: {}", w[0]);
    }
    assert!(err.contains("forwarding"), "a warning, not an error: {err}");
    assert_eq!(veth_warnings(&lab.run(&[])), Vec::<&str>::new(), "nothing without --offload");
    assert_eq!(veth_warnings(&lab.run(&["--offload", "xdp", "--xdp-generic"])), Vec::<&str>::new(), "generic XDP");
}

/// With GRO on at every peer there is no warning; peers in other namespaces (the
/// usual lab) cannot be checked, and each such port gets a note saying what they need.
#[test]
fn offload_veth_peer_check_quiet_with_gro_notes_other_namespaces() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !privileged("offload_veth_peer_check_quiet_with_gro_notes_other_namespaces") {
        return;
    }
    let lab = PeersHere::new(&["d0", "a0", "b0"]);
    let err = lab.run(&["--offload", "xdp"]);
    assert_eq!(veth_warnings(&err), Vec::<&str>::new(), "{err}");
    assert!(err.contains("forwarding"), "{err}");
    drop(lab);

    let lab = Lab::new();
    let (p, errf) = lab.popgo(&lab.config(true), &["--offload", "xdp", "--json-stats", "--stats-interval", "0"]);
    let _ = stop_popgo(p);
    let err = std::fs::read_to_string(errf).unwrap();
    let w = veth_warnings(&err);
    assert_eq!(w.len(), 3, "one per port: {err}");
    for (port, dev) in [("to-A", "c-to-a"), ("to-B", "c-to-b"), ("to-D", "c-to-d")] {
        let line =
            w.iter().find(|l| l.contains(&format!("port \"{port}\""))).unwrap_or_else(|| panic!("{port}: {err}"));
        assert!(line.contains(&format!("{dev} is a veth whose peer (ifindex ")), "{line}");
        assert!(line.contains("in another network namespace, which popgo cannot check"), "{line}");
        assert!(line.contains("`ethtool -K PEER gro on` in its namespace"), "{line}");
    }
}

/// The L3VPN egress on veth (`examples/l3vpn-lab.toml`: vpna behind c-to-a, vpnb behind
/// c-to-b, each instance's /24 CE and /30 CE with their own MACs; the CEs of both have
/// the same addresses): `pcaps/l3vpn.pcap` from D, transport label 18 over the VPN
/// labels, gives at the sinks exactly what `popgo replay --out-dir` gives, with pop-go
/// in both instances and with it off in vpna only (whose 10.1.1.1 and .2 then go to its
/// /30 CE, while vpnb's traffic does not move), through the workers with generic XDP
/// too, and through `--offload xdp`, native and generic (every forwarded frame popped
/// in the kernel: the lone VPN labels and the transport + VPN stacks); the per-LSP
/// counts add up to the forwarded frames.
#[test]
fn l3vpn_instances_byte_exact_at_sinks() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !privileged("l3vpn_instances_byte_exact_at_sinks") {
        return;
    }
    let pcap = root_dir().join("pcaps/l3vpn.pcap");
    let (native, generic) = (&["--offload", "xdp"][..], &["--offload", "xdp", "--xdp-generic"][..]);
    // The two-label frames through the workers in both attach modes, then the offload.
    let user_generic = &["--xdp-generic"][..];
    for (vpna_pop_go, extra) in
        [(true, None), (false, None), (true, Some(user_generic)), (true, Some(native)), (true, Some(generic))]
    {
        let lab = Lab::new();
        let text = std::fs::read_to_string(root_dir().join("examples/l3vpn-lab.toml")).unwrap().replacen(
            "pop_go = true",
            &format!("pop_go = {vpna_pop_go}"),
            1,
        );
        let cfg = lab.path("l3vpn.toml");
        std::fs::write(&cfg, text).unwrap();
        let gold = lab.path("golden");
        ok(&[
            POPGO,
            "replay",
            "--config",
            cfg.to_str().unwrap(),
            "--in-port",
            "to-pe",
            "--out-dir",
            gold.to_str().unwrap(),
            pcap.to_str().unwrap(),
        ]);
        let filter = "ip and net 10.1.1.0/24";
        let (ta, _) = lab.capture(&lab.a, "a0", &lab.path("a.pcap"), filter);
        let (tb, _) = lab.capture(&lab.b, "b0", &lab.path("b.pcap"), filter);
        let mut args = vec!["--json-stats", "--stats-interval", "0"];
        if let Some(o) = extra {
            args.extend_from_slice(o);
        }
        let (p, _) = lab.popgo(&cfg, &args);
        let s = lab.spawn(
            &lab.d,
            "popgo-lab send",
            &[POPGO_LAB, "send", "--iface", "d0", "--gap-us", "1000", pcap.to_str().unwrap()],
        );
        assert_eq!(s.wait(30).0, Some(0));
        std::thread::sleep(Duration::from_millis(1200));
        let (v, _, _) = stop_popgo(p);
        std::thread::sleep(Duration::from_millis(300));
        ta.signal("-INT");
        tb.signal("-INT");
        ta.wait(10);
        tb.wait(10);
        assert_eq!(v["rx_packets"], 8, "{v}");
        assert_eq!(v["tx_packets"]["to-a"], 3, "{v}");
        assert_eq!(v["tx_packets"]["to-b"], 3, "{v}");
        assert_eq!((v["drops"]["no_ilm_entry"].as_u64(), v["drops"]["no_route"].as_u64()), (Some(1), Some(1)), "{v}");
        let (at_a, at_b) = (frames(&lab.path("a.pcap")), frames(&lab.path("b.pcap")));
        assert_eq!(at_a, frames(&gold.join("to-a.pcap")), "frames at vpna's CEs");
        assert_eq!(at_b, frames(&gold.join("to-b.pcap")), "frames at vpnb's CEs");
        // Who got what: the destination MAC is the CE.
        let macs = |f: &[Vec<u8>]| f.iter().map(|x| (x[5], x[14 + 19])).collect::<Vec<_>>();
        let want_a =
            if vpna_pop_go { vec![(0x0a, 1), (0x0a, 2), (0x0a, 5)] } else { vec![(0xb1, 1), (0xb1, 2), (0x0a, 5)] };
        assert_eq!(macs(&at_a), want_a);
        assert_eq!(macs(&at_b), vec![(0x0b, 1), (0x0b, 3), (0x0b, 5)]);
        assert_eq!(lab.xdp_programs(&lab.c), 0, "XDP programs detached after SIGTERM");
        if extra.is_some_and(|e| e.contains(&"--offload")) {
            // Every forwarded frame is popped in the kernel: frames 3 and 4 carry a VPN
            // label alone (POPGO at the bottom), the others the transport label over it.
            let o = &v["offload"];
            let kernel: u64 = o["tx_packets"].as_object().unwrap().values().map(|x| x.as_u64().unwrap()).sum();
            assert_eq!(kernel, 6, "{v}");
        }
        assert_eq!(lsp_packets(&v), 6, "per-LSP counts add up to the forwarded frames: {v}");
    }
}

/// The procedure inside a VPN instance, typed into `popgo ctl` against a running `popgo
/// run` (`examples/l3vpn-lab.toml` with pop-go off in vpna) while `pcaps/l3vpn.pcap`
/// flows from D: vpna's 10.1.1.1-2 move from vpna's /30 CE (02:..:b1) to its /24 CE
/// (02:..:0a) at the commit, vpnb's frames do not move, and every frame is counted.
#[test]
fn vpn_procedure_on_run_moves_only_that_instance() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !privileged("vpn_procedure_on_run_moves_only_that_instance") {
        return;
    }
    let lab = Lab::new();
    let text = std::fs::read_to_string(root_dir().join("examples/l3vpn-lab.toml")).unwrap().replacen(
        "pop_go = true",
        "pop_go = false",
        1,
    );
    let cfg = lab.path("l3vpn.toml");
    std::fs::write(&cfg, text).unwrap();
    let sock = lab.path("ctl.sock");
    let filter = "ip and net 10.1.1.0/24";
    let (ta, _) = lab.capture(&lab.a, "a0", &lab.path("a.pcap"), filter);
    let (tb, _) = lab.capture(&lab.b, "b0", &lab.path("b.pcap"), filter);
    let (p, _) = lab.popgo(&cfg, &["--control", sock.to_str().unwrap(), "--json-stats", "--stats-interval", "0"]);
    // 8 frames every 2 ms for about 2.4 s (6 forwarded, 2 dropped each time).
    const REPEAT: u64 = 150;
    let pcap = root_dir().join("pcaps/l3vpn.pcap");
    let sender = lab.spawn(
        &lab.d,
        "popgo-lab send",
        &[
            POPGO_LAB,
            "send",
            "--iface",
            "d0",
            "--gap-us",
            "2000",
            "--repeat",
            &REPEAT.to_string(),
            pcap.to_str().unwrap(),
        ],
    );
    // Commit once at least 25 repeats (50 frames of 10.1.1.1-2) went through, however
    // slowly a loaded machine sends them.
    let deadline = Instant::now() + Duration::from_secs(20);
    while stat_counter(&ctl(&lab, &sock, "display popgo statistics"), "port.to-pe.rx_pkts") < 8 * 25 {
        assert!(Instant::now() < deadline, "traffic did not start within 20 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = ctl(&lab, &sock, "system-view; ip vpn-instance vpna; ipv4-family; apply-label per-route pop-go; commit");
    assert!(out.contains("commit ok"), "{out}");
    let t = ctl(&lab, &sock, "display mpls lsp protocol bgp");
    assert!(t.lines().any(|l| l.contains("POPGO") && l.ends_with("vpna")), "{t}");
    let (code, _, err) = sender.wait(30);
    assert_eq!(code, Some(0), "popgo-lab send failed: {err}");
    std::thread::sleep(Duration::from_millis(800));
    let (v, _, _) = stop_popgo(p);
    std::thread::sleep(Duration::from_millis(300));
    ta.signal("-INT");
    tb.signal("-INT");
    ta.wait(10);
    tb.wait(10);
    let (at_a, at_b) = (frames(&lab.path("a.pcap")), frames(&lab.path("b.pcap")));
    assert_eq!(v["rx_packets"], 8 * REPEAT, "{v}");
    assert_eq!(v["balanced"], true, "{v}");
    assert_eq!((at_a.len() as u64, at_b.len() as u64), (3 * REPEAT, 3 * REPEAT), "{v}");
    assert!(at_b.iter().all(|f| f[5] == 0x0b), "vpnb's frames all to its CE A");
    // vpna: 10.1.1.1-2 (last byte of the destination) went to the /30 CE before the
    // commit and to the /24 CE after it, never back; 10.1.1.5 always to the /24 CE.
    let moved: Vec<u8> = at_a.iter().filter(|f| f[14 + 19] != 5).map(|f| f[5]).collect();
    let first_after = moved.iter().position(|m| *m == 0x0a).expect("some frames after the commit");
    assert!(first_after >= 40, "frames before the commit went to the /30 CE: {first_after}");
    assert!(moved[..first_after].iter().all(|m| *m == 0xb1) && moved[first_after..].iter().all(|m| *m == 0x0a));
    assert!(at_a.iter().filter(|f| f[14 + 19] == 5).all(|f| f[5] == 0x0a));
}

/// Packets over every label of a final JSON report's per-LSP counts.
fn lsp_packets(v: &Value) -> u64 {
    v["lsps"].as_array().unwrap_or_else(|| panic!("no lsps: {v}")).iter().map(|l| l["packets"].as_u64().unwrap()).sum()
}

/// A two-label synth capture (transport label 18 over the seed's POPGO label 48122)
/// and then the seed through `--offload xdp`, native and generic: the frames at the
/// sinks are those of `popgo replay --out-dir`, every two-label frame is popped and
/// forwarded in the kernel, and the per-LSP counts (the kernel's and the workers')
/// add up to the forwarded frames, label by label.
#[test]
fn offload_pops_transport_over_popgo_and_counts_per_lsp() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !privileged("offload_pops_transport_over_popgo_and_counts_per_lsp") {
        return;
    }
    const SYNTH: u64 = 40;
    for extra in [&["--offload", "xdp"][..], &["--offload", "xdp", "--xdp-generic"]] {
        let lab = Lab::new();
        let cfg = lab.config(true);
        let mut text = std::fs::read_to_string(&cfg).unwrap();
        text.push_str(&popgo::traffic::profile::transport_toml(18));
        std::fs::write(&cfg, text).unwrap();
        let synth = lab.path("synth.pcap");
        ok(&[
            POPGO,
            "gen",
            "synth",
            "--out",
            synth.to_str().unwrap(),
            "--count",
            &SYNTH.to_string(),
            "--labels",
            "1",
            "--first-label",
            "48122",
            "--transport-label",
            "18",
        ]);
        // The replay's frames out of to-A and its per-LSP counts, summed by label.
        let mut want_lsps: std::collections::BTreeMap<u64, (u64, u64)> = Default::default();
        let mut golden_of = |pcap: &Path, name: &str| {
            let dir = lab.path(name);
            let out = ok(&[
                POPGO,
                "replay",
                "--config",
                cfg.to_str().unwrap(),
                "--in-port",
                "to-D",
                "--json",
                "--lsp-counters",
                "on",
                "--out-dir",
                dir.to_str().unwrap(),
                pcap.to_str().unwrap(),
            ]);
            let r: Value = serde_json::from_str(&out).expect("replay JSON");
            for l in r["lsps"].as_array().unwrap() {
                let w = want_lsps.entry(l["label"].as_u64().unwrap()).or_default();
                (w.0, w.1) = (w.0 + l["packets"].as_u64().unwrap(), w.1 + l["bytes"].as_u64().unwrap());
            }
            frames(&dir.join("to-A.pcap"))
        };
        let seed = root_dir().join("pcaps/seed.pcap");
        let mut want_a = golden_of(&synth, "golden-synth");
        assert_eq!(want_a.len() as u64, SYNTH, "replay forwards every two-label frame");
        want_a.extend(golden_of(&seed, "golden-seed"));
        let (ta, _) = lab.capture(&lab.a, "a0", &lab.path("a.pcap"), "ip");
        let mut args = vec!["--json-stats", "--stats-interval", "0"];
        args.extend_from_slice(extra);
        let (p, _) = lab.popgo(&cfg, &args);
        for pcap in [&synth, &seed] {
            let s = lab.spawn(
                &lab.d,
                "popgo-lab send",
                &[POPGO_LAB, "send", "--iface", "d0", "--gap-us", "1000", pcap.to_str().unwrap()],
            );
            assert_eq!(s.wait(30).0, Some(0));
        }
        std::thread::sleep(Duration::from_millis(1200));
        let (v, _, _) = stop_popgo(p);
        std::thread::sleep(Duration::from_millis(300));
        ta.signal("-INT");
        ta.wait(10);
        // Sorted: a frame the kernel forwards can overtake one a worker forwards on a
        // loaded machine.
        let mut at_a = frames(&lab.path("a.pcap"));
        at_a.sort();
        want_a.sort();
        assert_eq!(at_a, want_a, "frames at DeviceA ({extra:?})");
        let o = &v["offload"];
        let kernel_tx = o["tx_packets"]["to-A"].as_u64().unwrap();
        // The seed's plain and tagged POPGO frames (at least 4 of its 8) and every
        // two-label frame in the kernel.
        assert!((SYNTH + 4..SYNTH + 8).contains(&kernel_tx), "{extra:?}: {o}");
        let tx: u64 = v["tx_packets"].as_object().unwrap().values().map(|x| x.as_u64().unwrap()).sum();
        assert_eq!(tx, SYNTH + 8, "{v}");
        assert_eq!(lsp_packets(&v), tx, "sum over LSPs = forwarded packets ({extra:?}): {v}");
        let got_lsps: std::collections::BTreeMap<u64, (u64, u64)> = v["lsps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (l["label"].as_u64().unwrap(), (l["packets"].as_u64().unwrap(), l["bytes"].as_u64().unwrap())))
            .collect();
        assert_eq!(got_lsps, want_lsps, "per-LSP packets and bytes as the replay counts them ({extra:?})");
        assert_eq!(lab.xdp_programs(&lab.c), 0, "XDP programs detached after SIGTERM");
    }
}

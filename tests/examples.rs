//! The documentation's examples, run: the commands shown in README.md and docs/*.md
//! that need neither root nor a NIC, on the files shipped in pcaps/ and examples/,
//! checked against what the docs say they print. Packet counts are small (the seed
//! capture, `--repeat 2 --loops 1` for benches) so the whole file runs in seconds.

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_popgo");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs popgo from the repository root, as the docs do.
fn popgo(args: &[&str]) -> Output {
    Command::new(BIN).current_dir(root()).args(args).output().expect("running popgo")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs popgo, expects exit 0 and returns stdout.
fn ok(args: &[&str]) -> String {
    let o = popgo(args);
    assert_eq!(o.status.code(), Some(0), "popgo {args:?}: {}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&ok(args)).expect("one JSON document on stdout")
}

/// The count at the end of the text report line whose first words are `label`
/// (e.g. `tx to-A`).
fn count(report: &str, label: &str) -> u64 {
    report
        .lines()
        .find(|l| l.trim_start().strip_prefix(label).is_some_and(|rest| rest.starts_with(' ')))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
        .unwrap_or_else(|| panic!("no `{label}` line in\n{report}"))
}

/// The frames of a classic pcap file as popgo writes it (24-byte header, 16-byte record
/// headers, little-endian).
fn pcap_frames(path: &Path) -> Vec<Vec<u8>> {
    let b = std::fs::read(path).unwrap();
    let mut frames = Vec::new();
    let mut at = 24;
    while at < b.len() {
        let caplen = u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
        frames.push(b[at + 16..at + 16 + caplen].to_vec());
        at += 16 + caplen;
    }
    frames
}

fn sum(v: &Value) -> u64 {
    v.as_object().unwrap().values().map(|x| x.as_u64().unwrap()).sum()
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `sed 's/^pop_go = true/pop_go = false/' pcaps/seed.toml > DIR/pop.toml`.
fn seed_without_popgo(dir: &Path) -> PathBuf {
    let seed = std::fs::read_to_string(root().join("pcaps/seed.toml")).unwrap();
    assert!(seed.contains("\npop_go = true"), "pcaps/seed.toml has `pop_go = true` at the start of a line");
    let p = dir.join("pop.toml");
    std::fs::write(&p, seed.replace("\npop_go = true", "\npop_go = false")).unwrap();
    p
}

/// A popgo process that is killed if a test fails before it stops it.
struct Running(Child);

impl Running {
    fn spawn(args: &[&str], stderr_to: &Path) -> Running {
        let err = std::fs::File::create(stderr_to).unwrap();
        let c = Command::new(BIN)
            .current_dir(root())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawning popgo");
        Running(c)
    }

    /// `popgo replay --config CFG --control SOCK --loops 0 --pps 1000 pcaps/seed.pcap`: the
    /// seed capture replayed endlessly and slowly behind a control socket.
    fn replay_control(cfg: &Path, sock: &Path, stderr_to: &Path) -> Running {
        let args = ["--config", path_str(cfg), "--control", path_str(sock), "--loops", "0", "--pps", "1000"];
        Running::spawn(&[&["replay"], &args[..], &["pcaps/seed.pcap"]].concat(), stderr_to)
    }

    /// `kill -SIG PID`, as the docs do it.
    fn signal(&self, sig: &str) {
        let st = Command::new("kill").args([&format!("-{sig}"), &self.0.id().to_string()]).status().unwrap();
        assert!(st.success(), "kill -{sig}");
    }

    /// SIGTERM, then the exit code and stdout (the final report).
    fn stop(mut self) -> (Option<i32>, String) {
        self.signal("TERM");
        let mut out = String::new();
        if let Some(s) = self.0.stdout.take() {
            std::io::Read::read_to_string(&mut BufReader::new(s), &mut out).unwrap();
        }
        let code = self.0.wait().unwrap().code();
        (code, out)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `popgo ctl --socket SOCK CMD`: exit code, stdout, stderr.
fn ctl(sock: &Path, cmd: &str) -> (Option<i32>, String, String) {
    let o = popgo(&["ctl", "--socket", path_str(sock), cmd]);
    (o.status.code(), stdout(&o), stderr(&o))
}

fn ctl_ok(sock: &Path, cmd: &str) -> String {
    let (code, out, err) = ctl(sock, cmd);
    assert_eq!(code, Some(0), "popgo ctl {cmd:?}: {out}{err}");
    out
}

/// A counter of `display popgo statistics` (`port.to-B.tx_pkts`, `rx_pkts`, ...).
fn statistic(sock: &Path, name: &str) -> u64 {
    let s = ctl_ok(sock, "display popgo statistics");
    s.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{s}"))
}

/// The operation column of the 10.1.1.0/24 row of `display mpls lsp protocol bgp`.
fn label_operation(display: &str) -> &str {
    let row = display.lines().find(|l| l.starts_with("10.1.1.0/24")).unwrap_or_else(|| panic!("{display}"));
    row.split_whitespace().last().unwrap()
}

/// README tour and docs/replay.md: the seed capture arrives on to-D; POPGO sends every
/// forwarded packet to to-A; the report counts to-D's rx.
#[test]
fn replay_tour_counts_the_in_port_and_writes_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let t = ok(&[
        "replay",
        "--config",
        "pcaps/seed.toml",
        "--in-port",
        "to-D",
        "--out-dir",
        path_str(&out),
        "pcaps/seed.pcap",
    ]);
    assert_eq!(count(&t, "rx_packets"), 16);
    assert_eq!(count(&t, "rx to-D"), 16, "--in-port counts the capture as to-D's rx");
    assert_eq!(count(&t, "tx to-A"), 8);
    assert_eq!(count(&t, "tx to-B"), 0);
    assert_eq!(count(&t, "dropped"), 8);
    assert!(t.lines().any(|l| l.starts_with("rx = tx + drops") && l.ends_with(" ok")), "{t}");
    assert!(t.contains(&format!("wrote {}", out.join("to-A.pcap").display())), "{t}");
    assert!(!out.join("to-B.pcap").exists(), "ports that sent nothing get no file");

    let v = json(&["replay", "--config", "pcaps/seed.toml", "--in-port", "to-D", "--json", "pcaps/seed.pcap"]);
    assert_eq!(v["schema"], "popgo.replay/1");
    assert_eq!(v["in_port"], "to-D");
    assert_eq!(v["records"], 16);
    assert_eq!(v["rx_packets"], 16);
    assert_eq!(v["rx_by_port"], serde_json::json!({"to-A": 0, "to-B": 0, "to-D": 16}));
    assert_eq!(v["tx_packets"], serde_json::json!({"to-A": 8, "to-B": 0, "to-D": 0}));
    assert_eq!(sum(&v["drops"]), 8);
    assert_eq!(v["drops"].as_object().unwrap().len(), 16, "every drop reason, zeros included");
    assert_eq!(v["balanced"], true);
    for key in ["rx_bytes", "tx_bytes", "elapsed_ns", "mpps", "latency_ns", "per_worker", "outputs", "loops"] {
        assert!(!v[key].is_null(), "{key} missing: {v}");
    }

    // Without --in-port no port is credited with the capture.
    let v = json(&["replay", "--config", "pcaps/seed.toml", "--json", "pcaps/seed.pcap"]);
    assert_eq!(sum(&v["rx_by_port"]), 0);
    assert!(v["in_port"].is_null());
}

/// docs/replay.md, "The seed scenario": 8/0/8 with POPGO, 2/6/8 without; to-B frames
/// go to DeviceB's MAC with TTL 63.
#[test]
fn seed_scenario_with_and_without_popgo() {
    let dir = tempfile::tempdir().unwrap();
    let pop = seed_without_popgo(dir.path());
    let out = dir.path().join("pop");
    let v = json(&[
        "replay",
        "--config",
        path_str(&pop),
        "--in-port",
        "to-D",
        "--out-dir",
        path_str(&out),
        "--json",
        "pcaps/seed.pcap",
    ]);
    assert_eq!(v["tx_packets"], serde_json::json!({"to-A": 2, "to-B": 6, "to-D": 0}));
    assert_eq!(sum(&v["drops"]), 8);
    let frames = pcap_frames(&out.join("to-B.pcap"));
    assert_eq!(frames.len(), 6);
    for f in &frames {
        assert_eq!(&f[..6], &[2, 0, 0, 0, 0, 0x0b], "DeviceB's MAC");
        assert_eq!(&f[12..14], &[0x08, 0x00], "label popped: IPv4");
        assert_eq!(f[14 + 8], 63, "uniform mode: MPLS TTL 64 - 1");
    }
}

/// docs/replay.md, `--out-dir`: byte-identical files whatever the worker count; a file
/// that is not a pcap is refused before anything runs.
#[test]
fn out_dir_is_identical_across_workers_and_refuses_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    ok(&["replay", "--config", "pcaps/seed.toml", "--out-dir", path_str(&one), "pcaps/seed.pcap"]);
    ok(&[
        "replay",
        "--config",
        "pcaps/seed.toml",
        "--out-dir",
        path_str(&two),
        "--workers",
        "2",
        "--burst",
        "4",
        "pcaps/seed.pcap",
    ]);
    assert_eq!(std::fs::read(one.join("to-A.pcap")).unwrap(), std::fs::read(two.join("to-A.pcap")).unwrap());

    let notes = one.join("to-B.pcap");
    std::fs::write(&notes, "not a capture\n").unwrap();
    let o = popgo(&["replay", "--config", "pcaps/seed.toml", "--out-dir", path_str(&one), "pcaps/seed.pcap"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        format!(
            "popgo: error: --out-dir: {} exists and is not a pcap file; refusing to overwrite it\n",
            notes.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "not a capture\n", "left alone");
    // An existing pcap file is refused too, unless --overwrite.
    std::fs::remove_file(&notes).unwrap();
    let o = popgo(&["replay", "--config", "pcaps/seed.toml", "--out-dir", path_str(&one), "pcaps/seed.pcap"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("exists; --overwrite replaces"), "{}", stderr(&o));
    ok(&["replay", "--config", "pcaps/seed.toml", "--out-dir", path_str(&one), "--overwrite", "pcaps/seed.pcap"]);
}

fn classic_pcap(linktype: u32, records: &[&[u8]]) -> Vec<u8> {
    let mut b = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&65535u32.to_le_bytes());
    b.extend_from_slice(&linktype.to_le_bytes());
    for (i, r) in records.iter().enumerate() {
        for w in [i as u32, 0, r.len() as u32, r.len() as u32] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b.extend_from_slice(r);
    }
    b
}

fn pcapng_block(kind: u32, body: &[u8]) -> Vec<u8> {
    let mut body = body.to_vec();
    body.resize(body.len().div_ceil(4) * 4, 0);
    let len = 12 + body.len() as u32;
    let mut b = Vec::new();
    b.extend_from_slice(&kind.to_le_bytes());
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(&body);
    b.extend_from_slice(&len.to_le_bytes());
    b
}

/// docs/replay.md, "Input": the error lines, exactly.
#[test]
fn input_errors_are_the_documented_lines() {
    let dir = tempfile::tempdir().unwrap();
    let ip = [0x45u8; 28];
    let check = |name: &str, bytes: Vec<u8>, want: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let o = popgo(&["replay", "--config", "pcaps/seed.toml", path_str(&p)]);
        assert_eq!(o.status.code(), Some(2), "{name}");
        assert_eq!(stderr(&o), format!("popgo: error: input {}: {want}\n", p.display()), "{name}");
    };
    check(
        "raw.pcap",
        classic_pcap(101, &[&ip, &ip]),
        "link type 101 is not Ethernet (1) or Linux cooked (113, 276) at byte offset 20",
    );

    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    let mut idb = Vec::new();
    idb.extend_from_slice(&101u16.to_le_bytes());
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&65535u32.to_le_bytes());
    let mut epb = Vec::new();
    for w in [0u32, 0, 0, ip.len() as u32, ip.len() as u32] {
        epb.extend_from_slice(&w.to_le_bytes());
    }
    epb.extend_from_slice(&ip);
    let ng = [pcapng_block(0x0a0d_0d0a, &shb), pcapng_block(1, &idb), pcapng_block(6, &epb)].concat();
    check(
        "raw.pcapng",
        ng,
        "link type 101 is not Ethernet (1) or Linux cooked (113, 276) at byte offset 48 (pcapng interface 0)",
    );

    let mut cut = classic_pcap(1, &[&[0u8; 60], &[0u8; 60]]);
    cut.truncate(cut.len() - 10);
    check("cut.pcap", cut, "file is truncated at byte offset 100 (record 1): packet data runs past end of file");
    check("notes.pcap", b"hello\n".to_vec(), "not a pcap or pcapng file (magic [68, 65, 6c, 6c])");
}

/// README tour and docs/replay.md: `popgo diff` on the seed.
#[test]
fn diff_shows_the_misforwarding() {
    let t = ok(&["diff", "--config", "pcaps/seed.toml", "pcaps/seed.pcap"]);
    let row = t.lines().find(|l| l.starts_with("10.1.1.0/24")).unwrap_or_else(|| panic!("{t}"));
    assert_eq!(row.split_whitespace().take(5).collect::<Vec<_>>(), ["10.1.1.0/24", "48122", "11", "5", "6"]);
    assert!(row.ends_with("6 x to-A -> to-B"), "{row}");
    assert!(t.contains("6 of 16 packets leave through a different port without POPGO"), "{t}");
    let v = json(&["diff", "--config", "pcaps/seed.toml", "--json", "pcaps/seed.pcap"]);
    assert_eq!((v["packets"].as_u64(), v["different"].as_u64()), (Some(16), Some(6)));
    assert_eq!(v["rows"][0]["moves"]["to-A -> to-B"], 6);
    assert_eq!((v["pop"]["to-A"].as_u64(), v["pop"]["to-B"].as_u64()), (Some(2), Some(6)));
}

/// docs/configuration.md and docs/replay.md: `check` and `display` on the shipped
/// configs; examples/lab.toml stays the seed config with the lab's interface names.
#[test]
fn shipped_configs_check_and_display() {
    assert_eq!(
        ok(&["check", "--config", "pcaps/seed.toml"]),
        "pcaps/seed.toml: ok: 3 ports, 2 neighbors, 2 static routes, 1 BGP LSPs, 1 ILM entries\n"
    );
    let d = ok(&["display", "--config", "pcaps/seed.toml", "mpls", "lsp", "protocol", "bgp"]);
    assert!(
        d.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["10.1.1.0/24", "48122/NULL", "-/to-A", "192.168.10.1", "POPGO"]),
        "{d}"
    );

    let d = ok(&["display", "--config", "examples/6pe.toml", "mpls", "lsp", "protocol", "bgp"]);
    let rows: Vec<Vec<&str>> = d
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            ["198.51.100.0/24", "48000/NULL", "-/cust", "192.0.2.2", "POPGO"],
            ["2001:db8:100::/48", "60100/NULL", "-/cust", "2001:db8:ffff::2", "POPGO"],
            ["2001:db8:200::/48", "48001/NULL", "-/cust", "2001:db8:ffff::2", "POPGO"],
        ]
    );
    assert!(d.contains("Total: 3 LSP(s)"), "{d}");
    let c = ok(&["display", "--config", "examples/6pe.toml", "current-configuration"]);
    assert!(c.contains(" undo ttl propagate") && c.contains("ipv6 neighbor 2001:db8:ffff::2"), "{c}");

    ok(&["check", "--config", "examples/lab.toml"]);
    let body = |p: &str| -> Vec<String> {
        std::fs::read_to_string(root().join(p))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split('#').next().unwrap().trim_end())
            .map(|l| {
                l.replace("\"c-to-a\"", "\"vethA\"")
                    .replace("\"c-to-b\"", "\"vethB\"")
                    .replace("\"c-to-d\"", "\"vethD\"")
            })
            .collect()
    };
    assert_eq!(body("examples/lab.toml"), body("pcaps/seed.toml"), "lab.toml = seed.toml with the lab's interfaces");
}

/// docs/configuration.md, "Errors": a few of the listed messages, with their lines.
#[test]
fn config_errors_are_the_documented_lines() {
    let dir = tempfile::tempdir().unwrap();
    let seed = std::fs::read_to_string(root().join("pcaps/seed.toml")).unwrap();
    let check = |from: &str, to: &str, want: &str| {
        assert!(seed.contains(from), "seed.toml has {from:?}");
        let text = seed.replacen(from, to, 1);
        let line = text[..text.find(to).unwrap()].matches('\n').count() + 1;
        let p = dir.path().join("e.toml");
        std::fs::write(&p, &text).unwrap();
        let o = popgo(&["check", "--config", path_str(&p)]);
        assert_eq!(o.status.code(), Some(2));
        assert_eq!(stderr(&o), format!("popgo: error: config {}: line {line}: {want}\n", p.display()));
    };
    check(
        "label = 48122",
        "label = 1048576",
        "bgp.network.label: label 1048576 is outside 16..=1048575 (0-15 are reserved, labels are 20 bits)",
    );
    check(
        "next_hop = \"192.168.20.1\"",
        "next_hop = \"192.168.99.1\"",
        "static_route.next_hop: next hop 192.168.99.1 is not a known neighbor (add a [[neighbor]] for it)",
    );
    check(
        "prefix = \"10.1.1.0/30\"",
        "prefix = \"10.1.1.1/30\"",
        "static_route.prefix: 10.1.1.1/30 has host bits set (did you mean 10.1.1.0/30?)",
    );
    check("port = \"to-B\"", "port = \"to-X\"", "neighbor.port: unknown port \"to-X\"");
}

/// docs/control.md: the seed procedure verbatim against `popgo replay --control`;
/// traffic for 10.1.1.1-3 moves from to-B to to-A and nothing goes to to-B after the
/// commit. Also the rejected-line example and the raw socket protocol.
#[test]
fn seed_procedure_against_replay_control() {
    let dir = tempfile::tempdir().unwrap();
    let pop = seed_without_popgo(dir.path());
    let sock = dir.path().join("popgo.sock");
    let p = Running::replay_control(&pop, &sock, &dir.path().join("replay.err"));
    wait_until("the control socket", || sock.exists());
    assert_eq!(label_operation(&ctl_ok(&sock, "display mpls lsp protocol bgp")), "POP");
    wait_until("traffic to to-B", || statistic(&sock, "port.to-B.tx_pkts") > 0);

    let out = ctl_ok(&sock, "system-view; bgp 100; apply-label per-route pop-go; commit");
    assert!(out.contains("Info: commit ok: generation 2: 1 change(s), incremental build"), "{out}");
    assert_eq!(label_operation(&ctl_ok(&sock, "display mpls lsp protocol bgp")), "POPGO");
    // Counters reach the board within 100 ms of a burst; then to-B stays where it is.
    std::thread::sleep(Duration::from_millis(400));
    let to_b = statistic(&sock, "port.to-B.tx_pkts");
    wait_until("traffic to to-A after the commit", || statistic(&sock, "port.to-A.tx_pkts") > 3 * to_b);

    // docs/control.md, "Two-stage commit": a rejected line names itself, ctl exits 1.
    let (code, _, err) = ctl(&sock, "system-view; bgp 100; network 10.1.1.0 30 label 1048576; commit");
    assert_eq!(code, Some(1));
    assert!(
        err.contains(
            "popgo: error: line 3 (\"network 10.1.1.0 30 label 1048576\"): label 1048576 is outside 16..=1048575 \
             (0-15 are reserved, labels are 20 bits)"
        ),
        "{err}"
    );

    // docs/control.md, "The socket protocol": the transcript.
    let s = UnixStream::connect(&sock).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    w.write_all(b"system-view\nnetwork 10.1.1.0 24\nquit\nquit\n").unwrap();
    let mut lines = Vec::new();
    loop {
        let mut l = String::new();
        if r.read_line(&mut l).unwrap() == 0 {
            break;
        }
        lines.push(l.trim_end().to_string());
    }
    assert_eq!(
        lines,
        [
            "popgo control plane: DeviceC (generation 2). Type system-view to configure; commit applies.",
            ".ok <DeviceC>",
            "Enter system view, return user view with return command.",
            ".ok [DeviceC]",
            "Error: line 2 (\"network 10.1.1.0 24\"): unrecognized command \"network\" in system view",
            ".error [DeviceC]",
            ".ok <DeviceC>",
            ".bye",
        ]
    );

    let (code, report) = p.stop();
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(count(&report, "tx to-B"), to_b, "nothing went to to-B after the commit");
    assert!(count(&report, "tx to-A") > 3 * to_b, "{report}");
    assert!(report.lines().any(|l| l.starts_with("rx = tx + drops") && l.ends_with(" ok")), "{report}");
    assert!(!sock.exists(), "the socket is removed at exit");
}

/// docs/control.md, "SIGHUP": pop-go toggled in the file is an incremental commit;
/// a port change and a file that does not parse are refused, the running config kept.
#[test]
fn sighup_reloads_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("hup.toml");
    let seed = std::fs::read_to_string(root().join("pcaps/seed.toml")).unwrap();
    std::fs::write(&cfg, &seed).unwrap();
    let sock = dir.path().join("hup.sock");
    let err = dir.path().join("hup.err");
    let p = Running::replay_control(&cfg, &sock, &err);
    wait_until("the control socket", || sock.exists());
    let log = || std::fs::read_to_string(&err).unwrap();

    std::fs::write(&cfg, seed.replace("\npop_go = true", "\npop_go = false")).unwrap();
    p.signal("HUP");
    wait_until("the reload line", || log().contains("control: reloaded"));
    let want = format!(" INFO control: reloaded {}: generation 2: 1 change(s), incremental build", cfg.display());
    assert!(log().contains(&want), "{}", log());
    assert_eq!(label_operation(&ctl_ok(&sock, "display mpls lsp protocol bgp")), "POP");

    std::fs::write(&cfg, seed.replace("\"vethD\"", "\"eth9\"")).unwrap();
    p.signal("HUP");
    wait_until("the refused reload", || log().contains(" WARN control: reload of"));
    assert!(log().contains("failed, running config kept"), "{}", log());
    assert!(log().contains("the ports or their interfaces changed: restart popgo"), "{}", log());
    assert_eq!(label_operation(&ctl_ok(&sock, "display mpls lsp protocol bgp")), "POP");

    // A file that does not parse: refused with its line, the running config kept.
    std::fs::write(&cfg, seed.replace("[[port]]", "[[port")).unwrap();
    p.signal("HUP");
    wait_until("the second refused reload", || log().matches("failed, running config kept").count() == 2);
    let last = log().lines().rfind(|l| l.contains(" WARN control: reload of")).unwrap().to_string();
    assert!(last.contains("line "), "the parse error names its line: {last}");
    assert_eq!(label_operation(&ctl_ok(&sock, "display mpls lsp protocol bgp")), "POP");
    assert!(ctl_ok(&sock, "display popgo statistics").contains("generation 2"), "no reload was installed");
    let (code, report) = p.stop();
    assert_eq!(code, Some(0), "{report}");
}

/// docs/configuration.md, "Big tables": a table file that is a FIFO or over the size
/// limit is refused at once on SIGHUP (no blocking open, no whole-file read), the running
/// config kept and the control socket answering.
#[test]
fn sighup_refuses_a_fifo_or_oversized_table_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("hup.toml");
    let seed = std::fs::read_to_string(root().join("pcaps/seed.toml")).unwrap();
    let with_table = seed.replacen("label_base = 48000", "label_base = 48000\ntable = \"routes.txt\"", 1);
    let table = dir.path().join("routes.txt");
    std::fs::write(&table, "10.2.0.0/16 192.168.20.1\n").unwrap();
    std::fs::write(&cfg, &with_table).unwrap();
    let sock = dir.path().join("hup.sock");
    let err = dir.path().join("hup.err");
    let p = Running::replay_control(&cfg, &sock, &err);
    wait_until("the control socket", || sock.exists());
    let log = || std::fs::read_to_string(&err).unwrap();

    std::fs::remove_file(&table).unwrap();
    assert!(Command::new("mkfifo").arg(&table).status().unwrap().success());
    p.signal("HUP");
    wait_until("the refused reload", || log().contains("failed, running config kept"));
    assert!(log().contains("routes.txt: not a regular file"), "{}", log());
    assert!(ctl_ok(&sock, "display current-configuration").contains("network 10.2.0.0 16"));

    std::fs::remove_file(&table).unwrap();
    let f = std::fs::File::create(&table).unwrap();
    f.set_len((256 << 20) + 1).unwrap();
    p.signal("HUP");
    wait_until("the second refused reload", || log().matches("failed, running config kept").count() == 2);
    assert!(log().contains("268435457 bytes, over the 256 MiB a table file may have"), "{}", log());
    assert!(ctl_ok(&sock, "display current-configuration").contains("network 10.2.0.0 16"));

    // The config file itself replaced by a FIFO: refused at once too.
    std::fs::remove_file(&cfg).unwrap();
    assert!(Command::new("mkfifo").arg(&cfg).status().unwrap().success());
    p.signal("HUP");
    wait_until("the third refused reload", || log().matches("failed, running config kept").count() == 3);
    assert!(log().contains("hup.toml: not a regular file"), "{}", log());
    assert!(ctl_ok(&sock, "display current-configuration").contains("network 10.2.0.0 16"));
    let (code, report) = p.stop();
    assert_eq!(code, Some(0), "{report}");
}

/// The TOML between `<<'TOML'` and `TOML` in tools/bench-gate.sh, without comments.
fn gate_profile_of_the_script() -> Vec<String> {
    let script = std::fs::read_to_string(root().join("tools/bench-gate.sh")).unwrap();
    let start = script.find("<<'TOML'\n").expect("bench-gate.sh writes its profile with a heredoc") + 9;
    let end = start + script[start..].find("\nTOML\n").unwrap();
    toml_lines(&script[start..end])
}

fn toml_lines(text: &str) -> Vec<String> {
    text.lines().map(|l| l.split('#').next().unwrap().trim().to_string()).filter(|l| !l.is_empty()).collect()
}

/// docs/bench.md, "The regression gate", on examples/gate.toml (the profile
/// tools/bench-gate.sh uses): a saved baseline follows popgo.bench/1, and the gate's
/// exit code agrees with its verdict.
#[test]
fn regression_gate_example() {
    let gate = std::fs::read_to_string(root().join("examples/gate.toml")).unwrap();
    assert_eq!(toml_lines(&gate), gate_profile_of_the_script(), "examples/gate.toml = the script's profile");

    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.json");
    let quick = ["--repeat", "2", "--loops", "1", "--warmup", "0"];
    let mut args = vec!["bench", "--profile", "examples/gate.toml", "--save-baseline", path_str(&base)];
    args.extend(quick);
    let t = ok(&args);
    assert!(t.contains("profile examples/gate.toml (200000 records x 1 loops"), "{t}");
    let b: Value = serde_json::from_str(&std::fs::read_to_string(&base).unwrap()).unwrap();
    assert_eq!(b["schema"], "popgo.bench/1");
    assert_eq!(b["workload"]["kind"], "profile");
    assert_eq!(b["workload"]["config"], "generated");
    assert_eq!(b["workload"]["records"], 200_000);
    assert_eq!(b["repetitions"].as_array().unwrap().len(), 2);
    assert!(b["verdict"].is_null());

    let mut args =
        vec!["bench", "--profile", "examples/gate.toml", "--baseline", path_str(&base), "--max-regression", "15"];
    args.extend(quick);
    args.push("--json");
    let o = popgo(&args);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&o)));
    let verdict = &v["verdict"];
    assert_eq!(verdict["max_regression_pct"], 15.0);
    let outcome = verdict["outcome"].as_str().unwrap();
    assert!(["regression", "improvement", "unchanged"].contains(&outcome), "{verdict}");
    // Exit 3 only on a regression, which needs a drop beyond PCT and disjoint ranges.
    assert_eq!(o.status.code(), Some(if outcome == "regression" { 3 } else { 0 }), "{verdict}");
    if outcome == "regression" {
        assert!(verdict["change_pct"].as_f64().unwrap() < -15.0 && verdict["ranges_overlap"] == false);
    }

    // A baseline that is not a bench result is refused before anything runs.
    std::fs::write(&base, "{}").unwrap();
    let mut args = vec!["bench", "--profile", "examples/gate.toml", "--baseline", path_str(&base)];
    args.extend(quick);
    assert_eq!(popgo(&args).status.code(), Some(2));
}

/// docs/bench.md, "Traffic profiles": examples/imix.toml through gen profile, replay
/// (only the malformed frames drop) and bench.
#[test]
fn traffic_profile_example() {
    let dir = tempfile::tempdir().unwrap();
    let (pcap, cfg) = (dir.path().join("imix.pcap"), dir.path().join("imix-config.toml"));
    let t = ok(&[
        "gen",
        "profile",
        "--profile",
        "examples/imix.toml",
        "--out",
        path_str(&pcap),
        "--config-out",
        path_str(&cfg),
    ]);
    // Deterministic: the numbers docs/bench.md quotes.
    assert!(
        t.contains("20000 frames, 7009330 bytes: 15841 IPv4, 3964 IPv6, 9850 VLAN-tagged, 1019 explicit null, 1949 entropy, 195 malformed"),
        "{t}"
    );
    let malformed = 195;

    let v = json(&["replay", "--config", path_str(&cfg), "--json", path_str(&pcap)]);
    assert_eq!(v["rx_packets"], 20_000);
    assert_eq!(sum(&v["drops"]), malformed, "only the malformed frames drop");
    for (reason, n) in v["drops"].as_object().unwrap() {
        if n.as_u64().unwrap() > 0 {
            assert!(["too_short", "truncated_label_stack", "payload_mismatch"].contains(&reason.as_str()), "{reason}");
        }
    }
    let ports: Vec<&String> = v["tx_packets"].as_object().unwrap().keys().collect();
    assert_eq!(ports, ["p0", "p1", "p2", "p3"]);

    let b = json(&["bench", "--profile", "examples/imix.toml", "--json", "--repeat", "2", "--loops", "1"]);
    assert_eq!(b["schema"], "popgo.bench/1");
    assert_eq!(b["workload"]["records"], 20_000);
    for r in b["repetitions"].as_array().unwrap() {
        assert_eq!((r["packets"].as_u64(), r["dropped"].as_u64()), (Some(20_000), Some(malformed)));
    }
}

/// docs/bench.md: tools/vs-limit.sh needs the yardstick, which is not in the
/// repository; without it the script stops at once with a clear message.
#[test]
fn vs_limit_without_the_yardstick_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let clone = dir.path().join("clone");
    std::fs::create_dir_all(clone.join("tools")).unwrap();
    std::fs::copy(root().join("tools/vs-limit.sh"), clone.join("tools/vs-limit.sh")).unwrap();
    assert!(!clone.join("../shared/bench/limit").exists());
    let o = Command::new("bash").arg(clone.join("tools/vs-limit.sh")).env_remove("LIMIT").output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "vs-limit: the yardstick is not at ../shared/bench/limit (it is not part of this repository; set LIMIT=DIR)"
        ),
        "{}",
        stderr(&o)
    );
}

/// The `--control` value is optional on both commands (docs/control.md).
#[test]
fn control_value_is_optional() {
    for cmd in ["replay", "run"] {
        let h = ok(&[cmd, "--help"]);
        assert!(h.contains("--control [<CONTROL>]"), "{cmd}: {h}");
    }
    assert!(ok(&["ctl", "--help"]).contains("[default: /run/popgo/control.sock]"));
}

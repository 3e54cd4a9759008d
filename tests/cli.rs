//! End-to-end tests of the `popgo` binary on the seed scenario: exit codes, JSON
//! reports, output pcaps (checked with etherparse, and with tshark when installed).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The 8 bad frames of the seed capture, one of each drop reason
/// (`popgo gen seed --describe`).
const SEED_DROP_REASONS: [&str; 8] = [
    "no_ilm_entry",
    "ttl_expired",
    "reserved_label",
    "payload_mismatch",
    "truncated_label_stack",
    "too_short",
    "mpls_multicast",
    "not_mpls",
];

fn popgo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_popgo")).args(args).output().expect("running popgo")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn seed_toml() -> String {
    root().join("pcaps/seed.toml").display().to_string()
}

fn seed_pcap() -> String {
    root().join("pcaps/seed.pcap").display().to_string()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

/// The seed config with pop_go switched off, in a temp dir.
fn seed_without_popgo(dir: &Path) -> String {
    let text = std::fs::read_to_string(seed_toml()).unwrap().replace("pop_go = true", "pop_go = false");
    let p = dir.join("seed-pop.toml");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// Reads a pcap written by popgo: (dst IPv4 last octet, TTL, checksum ok, dst MAC) per frame.
fn frames_of(path: &Path) -> Vec<(u8, u8, bool, [u8; 6])> {
    let cap = popgo::io::pcap::Capture::open(path).unwrap();
    (0..cap.len())
        .map(|i| {
            let p = etherparse::SlicedPacket::from_ethernet(cap.packet(i)).unwrap();
            let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else {
                panic!("frame {i} is not IPv4 (label not popped?)")
            };
            let h = ip.header().to_header();
            let dst_mac: [u8; 6] = cap.packet(i)[..6].try_into().unwrap();
            (h.destination[3], h.time_to_live, h.header_checksum == h.calc_header_checksum(), dst_mac)
        })
        .collect()
}

#[test]
fn seed_with_popgo_everything_goes_to_device_a() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let v = json(&popgo(&[
        "replay",
        "--config",
        &seed_toml(),
        "--in-port",
        "to-D",
        "--out-dir",
        out.to_str().unwrap(),
        "--json",
        &seed_pcap(),
    ]));
    assert_eq!(v["rx_packets"], 16);
    assert_eq!(v["tx_packets"]["to-A"], 8);
    assert_eq!(v["tx_packets"]["to-B"], 0);
    for r in SEED_DROP_REASONS {
        assert_eq!(v["drops"][r], 1, "{r}");
    }
    let tx: u64 = v["tx_packets"].as_object().unwrap().values().map(|x| x.as_u64().unwrap()).sum();
    let drops: u64 = v["drops"].as_object().unwrap().values().map(|x| x.as_u64().unwrap()).sum();
    assert_eq!(v["rx_packets"].as_u64().unwrap(), tx + drops);
    for k in ["p50", "p99", "p999", "max"] {
        assert!(v["latency_ns"][k].as_u64().unwrap() > 0, "{k}");
    }
    assert!(v["elapsed_ns"].as_u64().unwrap() > 0 && v["mpps"].as_f64().unwrap() > 0.0);
    let a = frames_of(&out.join("to-A.pcap"));
    let hosts: Vec<u8> = a.iter().map(|f| f.0).collect();
    assert_eq!(hosts, [1, 2, 3, 5, 1, 2, 5, 3]);
    assert!(a.iter().all(|f| f.1 == 63 && f.2 && f.3 == [2, 0, 0, 0, 0, 0x0a]));
    assert!(!out.join("to-B.pcap").exists());
}

#[test]
fn seed_without_popgo_0_to_3_go_to_device_b() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = seed_without_popgo(dir.path());
    let out = dir.path().join("out");
    let v = json(&popgo(&["replay", "--config", &cfg, "--out-dir", out.to_str().unwrap(), "--json", &seed_pcap()]));
    assert_eq!(v["tx_packets"]["to-A"], 2);
    assert_eq!(v["tx_packets"]["to-B"], 6);
    let b: Vec<u8> = frames_of(&out.join("to-B.pcap")).iter().map(|f| f.0).collect();
    assert_eq!(b, [1, 2, 3, 1, 2, 3]);
    let a: Vec<u8> = frames_of(&out.join("to-A.pcap")).iter().map(|f| f.0).collect();
    assert_eq!(a, [5, 5]);

    let d = popgo(&["display", "--config", &cfg, "mpls", "lsp", "protocol", "bgp"]);
    let text = String::from_utf8(d.stdout).unwrap();
    assert!(text.lines().any(|l| l.starts_with("10.1.1.0/24") && l.ends_with(" POP")), "{text}");
    let d = popgo(&["display", "--config", &seed_toml(), "mpls", "lsp", "protocol", "bgp"]);
    let text = String::from_utf8(d.stdout).unwrap();
    assert!(text.lines().any(|l| l.starts_with("10.1.1.0/24") && l.ends_with(" POPGO")), "{text}");
}

#[test]
fn outputs_are_identical_whatever_the_worker_count() {
    let dir = tempfile::tempdir().unwrap();
    let gen = dir.path().join("g.pcap");
    let cfgp = dir.path().join("g.toml");
    let o = popgo(&[
        "gen",
        "synth",
        "--out",
        gen.to_str().unwrap(),
        "--count",
        "5000",
        "--labels",
        "300",
        "--size",
        "80",
        "--v6-share",
        "0.3",
        "--config-out",
        cfgp.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut files = Vec::new();
    for w in ["1", "2", "3"] {
        let out = dir.path().join(format!("w{w}"));
        let v = json(&popgo(&[
            "replay",
            "--config",
            cfgp.to_str().unwrap(),
            "--workers",
            w,
            "--loops",
            "2",
            "--burst",
            "7",
            "--out-dir",
            out.to_str().unwrap(),
            "--json",
            gen.to_str().unwrap(),
        ]));
        assert_eq!(v["rx_packets"], 10_000);
        assert_eq!(v["balanced"], true);
        let mut all = Vec::new();
        for p in ["p0", "p1", "p2", "p3"] {
            all.push(std::fs::read(out.join(format!("{p}.pcap"))).unwrap());
        }
        files.push(all);
    }
    assert_eq!(files[0], files[1]);
    assert_eq!(files[0], files[2]);
    // IPv4 and IPv6 (6PE) labels all have POPGO entries in the synthetic config.
    let total: usize = files[0].iter().map(|f| popgo::io::pcap::Capture::from_bytes(f.clone()).unwrap().len()).sum();
    assert_eq!(total, 10_000);
}

#[test]
fn diff_reports_the_misforwarding() {
    let v = json(&popgo(&["diff", "--config", &seed_toml(), "--json", &seed_pcap()]));
    let row = v["rows"].as_array().unwrap().iter().find(|r| r["label"] == 48122).unwrap();
    assert_eq!(row["fec"], "10.1.1.0/24");
    assert_eq!(row["different"], 6);
    assert_eq!(row["moves"]["to-A -> to-B"], 6);
    assert_eq!(v["different"], 6);
}

#[test]
fn bad_input_gets_a_clear_error_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad_cfg = dir.path().join("bad.toml");
    std::fs::write(&bad_cfg, std::fs::read_to_string(seed_toml()).unwrap().replace("label = 48122", "label = 7"))
        .unwrap();
    let o = popgo(&["replay", "--config", bad_cfg.to_str().unwrap(), &seed_pcap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("bgp.network.label") && e.contains("line "), "{e}");

    let trunc = dir.path().join("trunc.pcap");
    let bytes = std::fs::read(seed_pcap()).unwrap();
    std::fs::write(&trunc, &bytes[..bytes.len() - 5]).unwrap();
    let o = popgo(&["replay", "--config", &seed_toml(), trunc.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("truncated") && e.contains("offset"), "{e}");

    let foreign = dir.path().join("raw.pcap");
    let mut f = bytes[..24].to_vec();
    f[20..24].copy_from_slice(&101u32.to_le_bytes());
    std::fs::write(&foreign, f).unwrap();
    let o = popgo(&["replay", "--config", &seed_toml(), foreign.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("101"));

    let o = popgo(&["replay", "--config", &seed_toml(), "--in-port", "nope", &seed_pcap()]);
    assert_eq!(o.status.code(), Some(2));
    let o = popgo(&["display", "--config", &seed_toml(), "mpls", "lsp", "protocol", "ldp"]);
    assert_eq!(o.status.code(), Some(2));
    let o = popgo(&["replay", "--config", &seed_toml(), "--cores", "999", &seed_pcap()]);
    assert_eq!(o.status.code(), Some(2));
    let o = popgo(&["replay", "--config", &seed_toml(), "/nonexistent.pcap"]);
    assert_eq!(o.status.code(), Some(2));
    // Each message names the file once and states its cause once.
    let once = |o: &std::process::Output, file: &str| {
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(e.trim().lines().count(), 1, "{e}");
        assert_eq!(e.matches(file).count(), 1, "{file} named once: {e}");
        assert_eq!(e.matches("No such file or directory").count(), 1, "cause stated once: {e}");
    };
    once(&o, "/nonexistent.pcap");
    once(&popgo(&["replay", "--config", "/nonexistent.toml", &seed_pcap()]), "/nonexistent.toml");
    once(&popgo(&["check", "--config", "/nonexistent.toml"]), "/nonexistent.toml");
    let o = popgo(&["replay", "--config", &seed_toml(), "--cores", "0-18446744073709551615", &seed_pcap()]);
    assert_eq!(o.status.code(), Some(2), "a huge core range is a usage error, not a panic");
    for o in [popgo(&["replay"]), popgo(&["frobnicate"])] {
        assert_eq!(o.status.code(), Some(2));
        assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
    }
}

#[test]
fn pcapng_input_replays_like_pcap() {
    if !popgo::testkit::have_tool("pcapng_input_replays_like_pcap", "editcap", "-h") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ng = dir.path().join("seed.pcapng");
    let st = Command::new("editcap").args(["-F", "pcapng", &seed_pcap(), ng.to_str().unwrap()]).status().unwrap();
    assert!(st.success());
    let a = json(&popgo(&["replay", "--config", &seed_toml(), "--json", &seed_pcap()]));
    let b = json(&popgo(&["replay", "--config", &seed_toml(), "--json", ng.to_str().unwrap()]));
    assert_eq!(a["tx_packets"], b["tx_packets"]);
    assert_eq!(a["drops"], b["drops"]);
}

/// A pcapng record stamped past 2106 cannot go into the classic pcap files of --out-dir:
/// refused before the run, naming the record (exit 2), and nothing is written.
#[test]
fn out_dir_refuses_timestamps_past_32_bit_seconds() {
    if !popgo::testkit::have_tool("out_dir_refuses_timestamps_past_32_bit_seconds", "editcap", "-h") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ng = dir.path().join("late.pcapng");
    let st = Command::new("editcap")
        .args(["-F", "pcapng", "-t", "5000000000", &seed_pcap(), ng.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    let out = dir.path().join("out");
    let o = popgo(&["replay", "--config", &seed_toml(), "--out-dir", out.to_str().unwrap(), ng.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("late.pcapng: record 1 (packet bytes at offset"), "{err}");
    assert!(err.contains("past the 32-bit seconds"), "{err}");
    assert!(!out.exists(), "nothing written");
    // Without --out-dir the same capture replays.
    let v = json(&popgo(&["replay", "--config", &seed_toml(), "--json", ng.to_str().unwrap()]));
    assert_eq!(v["rx_packets"], 16, "{v}");
}

#[test]
fn tshark_agrees_labels_are_gone_and_checksums_valid() {
    if !popgo::testkit::have_tool("tshark_agrees_labels_are_gone_and_checksums_valid", "tshark", "-v") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    json(&popgo(&["replay", "--config", &seed_toml(), "--out-dir", out.to_str().unwrap(), "--json", &seed_pcap()]));
    let o = Command::new("tshark")
        .args([
            "-r",
            out.join("to-A.pcap").to_str().unwrap(),
            "-o",
            "ip.check_checksum:TRUE",
            "-T",
            "fields",
            "-e",
            "mpls.label",
            "-e",
            "ip.checksum.status",
            "-e",
            "ip.ttl",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 8, "{text}");
    for l in lines {
        assert_eq!(l, "\t1\t63", "no MPLS label, checksum good (1), TTL 63");
    }
}

/// The seed procedure typed verbatim against a running replay turns POPGO on;
/// traffic after the commit follows the new mapping; SIGTERM ends the run with a report.
#[test]
fn seed_procedure_verbatim_against_a_running_replay() {
    seed_procedure_against_replay(1);
}

/// The same with two workers: both move to the new tables and traffic follows.
#[test]
fn seed_procedure_with_two_workers() {
    seed_procedure_against_replay(2);
}

fn seed_procedure_against_replay(workers: usize) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = seed_without_popgo(dir.path());
    let sock = dir.path().join("ctl.sock");
    let child = Command::new(env!("CARGO_BIN_EXE_popgo"))
        .args([
            "replay",
            "--config",
            &cfg,
            "--control",
            sock.to_str().unwrap(),
            "--loops",
            "0",
            "--pps",
            "20000",
            "--workers",
            &workers.to_string(),
            "--burst",
            "4",
            "--json",
            &seed_pcap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the child whatever happens below.
    struct Guard(std::process::Child);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Guard(child);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !sock.exists() {
        assert!(std::time::Instant::now() < deadline, "control socket never appeared");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let ctl = |cmd: &str| {
        let o = popgo(&["ctl", "--socket", sock.to_str().unwrap(), cmd]);
        assert!(o.status.success(), "{cmd}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let before = ctl("display mpls lsp protocol bgp");
    assert!(before.lines().any(|l| l.starts_with("10.1.1.0/24") && l.ends_with(" POP")), "{before}");
    ctl("system-view; bgp 100; apply-label per-route pop-go; commit");
    let after = ctl("display mpls lsp protocol bgp");
    assert!(after.lines().any(|l| l.starts_with("10.1.1.0/24") && l.ends_with(" POPGO")), "{after}");
    // Let traffic run under the new mapping, then stop it.
    let stats_at_commit = ctl("display popgo statistics");
    // Longer than everything before the commit took, so A must end up ahead of B.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let stats = ctl("display popgo statistics");
    for w in 0..workers {
        let line = stats.lines().find(|l| l.trim_start().starts_with(&format!("worker.{w}:"))).expect(&stats);
        assert!(line.ends_with("ilm_swaps_seen 1"), "worker {w} moved to the committed tables once: {line}");
    }
    let pid = child.0.id() as i32;
    assert!(Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap().success());
    let out = child.0.wait_with_output_ref();
    let v: serde_json::Value = serde_json::from_slice(&out).expect("final JSON report");
    let a = v["tx_packets"]["to-A"].as_u64().unwrap();
    let b = v["tx_packets"]["to-B"].as_u64().unwrap();
    assert_eq!(v["balanced"], true);
    // Before the commit: 2 of 8 forwarded per pass go to A; after: all 8. So A > B overall
    // only if traffic after the commit was steered to A.
    assert!(a > b, "to-A {a} to-B {b}\n{stats_at_commit}");
    assert!(!sock.exists(), "socket removed at exit");
}

trait WaitRef {
    fn wait_with_output_ref(&mut self) -> Vec<u8>;
}

impl WaitRef for std::process::Child {
    fn wait_with_output_ref(&mut self) -> Vec<u8> {
        use std::io::Read;
        let mut out = Vec::new();
        if let Some(mut s) = self.stdout.take() {
            let _ = s.read_to_end(&mut out);
        }
        let _ = self.wait();
        out
    }
}

/// Shell integration: completions, the man page, versions.
#[test]
fn completions_man_page_and_versions() {
    let o = popgo(&["completions", "bash"]);
    assert!(o.status.success());
    let bash = String::from_utf8_lossy(&o.stdout);
    assert!(bash.contains("_popgo()") && bash.contains("complete -F _popgo"), "{bash}");
    assert!(bash.contains("--control") && bash.contains("--metrics"), "subcommand options are completed");
    let o = popgo(&["completions", "nosuchshell"]);
    assert_eq!(o.status.code(), Some(2));
    let o = popgo(&["man"]);
    assert!(o.status.success());
    let man = String::from_utf8_lossy(&o.stdout);
    assert!(man.starts_with(".ie") || man.starts_with(".TH"), "roff: {}", &man[..man.len().min(80)]);
    assert!(man.contains(".TH popgo 1"), "{man}");
    for bin in [env!("CARGO_BIN_EXE_popgo"), env!("CARGO_BIN_EXE_popgo-lab")] {
        let o = Command::new(bin).arg("--version").output().unwrap();
        assert!(o.status.success(), "{bin} --version");
        assert!(String::from_utf8_lossy(&o.stdout).contains(env!("CARGO_PKG_VERSION")));
    }
}

/// A capture truncated while it is replayed: one up to the copy threshold was copied
/// and the replay goes on; a mapped one ends the process with one clear line and exit
/// code 1, not a SIGBUS crash.
#[test]
fn a_capture_truncated_while_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let (pcap, cfg) = (dir.path().join("t.pcap"), dir.path().join("t.toml"));
    let o = popgo(&[
        "gen",
        "synth",
        "--out",
        pcap.to_str().unwrap(),
        "--count",
        "3000",
        "--labels",
        "100",
        "--config-out",
        cfg.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    for mapped in [false, true] {
        let input = dir.path().join(format!("in-{mapped}.pcap"));
        std::fs::copy(&pcap, &input).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_popgo"));
        cmd.args([
            "replay",
            "--config",
            cfg.to_str().unwrap(),
            "--control",
            dir.path().join(format!("s{mapped}")).to_str().unwrap(),
        ])
        .args(["--loops", "0", "--pps", "200000", input.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
        if mapped {
            cmd.env("POPGO_COPY_THRESHOLD", "0");
        }
        let mut child = cmd.spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(400));
        std::fs::OpenOptions::new().write(true).open(&input).unwrap().set_len(24).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(400));
        if !mapped {
            assert!(child.try_wait().unwrap().is_none(), "a copied capture is not affected");
            Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
        }
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if mapped {
            assert_eq!(out.status.code(), Some(1), "exit 1, not killed by SIGBUS: {:?} {err}", out.status);
            assert!(err.contains("truncated while in use (SIGBUS)"), "{err}");
        } else {
            assert_eq!(out.status.code(), Some(0), "{err}");
        }
    }
}

/// `--out-dir` never overwrites unasked: an existing output is refused without
/// --overwrite, the input capture is refused even with it, a port that sent nothing
/// this time loses its stale file with --overwrite, no temporary file is left, and
/// endless replays (outputs kept in memory) are refused.
#[test]
fn out_dir_overwrites_only_when_asked_and_never_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let nopop = seed_without_popgo(dir.path());
    // Without POPGO both to-A and to-B get frames.
    let o = popgo(&["replay", "--config", &nopop, "--out-dir", out.to_str().unwrap(), &seed_pcap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("to-A.pcap").exists() && out.join("to-B.pcap").exists());
    let before = std::fs::read(out.join("to-B.pcap")).unwrap();
    // Again with POPGO: refused (to-A.pcap exists), nothing changes.
    let o = popgo(&["replay", "--config", &seed_toml(), "--out-dir", out.to_str().unwrap(), &seed_pcap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--overwrite"));
    assert_eq!(std::fs::read(out.join("to-B.pcap")).unwrap(), before);
    // With --overwrite: to-A replaced, to-B (nothing sent now) removed.
    let o =
        popgo(&["replay", "--config", &seed_toml(), "--out-dir", out.to_str().unwrap(), "--overwrite", &seed_pcap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(frames_of(&out.join("to-A.pcap")).len(), 8);
    assert!(!out.join("to-B.pcap").exists(), "stale output removed");
    let names: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names, ["to-A.pcap"], "no temporary file left");
    // The input capture itself, as an output name: refused even with --overwrite.
    let input = out.join("to-A.pcap");
    let o = popgo(&[
        "replay",
        "--config",
        &seed_toml(),
        "--out-dir",
        out.to_str().unwrap(),
        "--overwrite",
        input.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("is the input capture"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(frames_of(&input).len(), 8, "the input is intact");
    // Endless: refused before anything runs.
    let o = popgo(&[
        "replay",
        "--config",
        &seed_toml(),
        "--out-dir",
        dir.path().join("x").to_str().unwrap(),
        "--loops",
        "0",
        "--control",
        dir.path().join("s").to_str().unwrap(),
        &seed_pcap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("finite --loops"));
}

/// A frame larger than a packet buffer is received and counted as an `oversize` drop
/// (it never reaches the data path); the others are forwarded as usual.
#[test]
fn oversize_frames_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("big.pcap");
    let seed = popgo::io::pcap::Capture::open(std::path::Path::new(&seed_pcap())).unwrap();
    let mut w = popgo::io::pcap::Writer::new(std::fs::File::create(&pcap).unwrap()).unwrap();
    let good = seed.packet(0).to_vec();
    let mut big = good.clone();
    big.resize(popgo::io::mem::FRAME_DATA_BYTES + 1, 0);
    for (i, f) in [&good, &big, &good].iter().enumerate() {
        w.write_packet(i as u64, f).unwrap();
    }
    w.into_inner().unwrap();
    let v = json(&popgo(&["replay", "--config", &seed_toml(), "--json", pcap.to_str().unwrap()]));
    assert_eq!(v["rx_packets"], 3, "{v}");
    assert_eq!(v["drops"]["oversize"], 1, "{v}");
    assert_eq!(v["tx_packets"]["to-A"], 2, "{v}");
    assert_eq!(v["balanced"], true);
}

/// Pacing is per packet, as tcpreplay's: 4 loops of the 16-frame seed capture at 100
/// packets/s take about 630 ms whatever the burst size (the 64th packet is due at
/// 630 ms), and so do `--speed 0.1` (its records are 1 ms apart, and a loop lasts 16 of
/// them) and the `--mbps` equivalent. A replay cannot end before its last packet is
/// due; the upper bound leaves room for a busy machine but not for a rate off by half.
#[test]
fn pacing_is_per_packet() {
    let bytes: u64 = {
        let cap = popgo::io::pcap::Capture::open(std::path::Path::new(&seed_pcap())).unwrap();
        cap.records().iter().map(|r| r.caplen as u64).sum()
    };
    let mbps = format!("{}", bytes as f64 / 16.0 * 8.0 * 100.0 / 1e6);
    for args in [["--pps", "100"], ["--speed", "0.1"], ["--mbps", mbps.as_str()]] {
        let v = json(&popgo(&[
            "replay",
            "--config",
            &seed_toml(),
            "--burst",
            "32",
            "--loops",
            "4",
            args[0],
            args[1],
            "--json",
            &seed_pcap(),
        ]));
        let ms = v["elapsed_ns"].as_f64().unwrap() / 1e6;
        assert!((625.0..900.0).contains(&ms), "{args:?}: {ms} ms, want about 630");
        assert_eq!(v["rx_packets"], 64);
    }
}

/// A paced replay waiting for its next packet still stops at once on SIGINT, and a
/// commit meanwhile does not wait for the waiting worker (it is parked for QSBR).
#[test]
fn a_waiting_paced_replay_stops_and_commits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("ctl.sock");
    let cfg = seed_without_popgo(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_popgo"))
        .args(["replay", "--config", &cfg, "--control", sock.to_str().unwrap(), "--loops", "0", "--pps", "0.0000001"])
        .arg(seed_pcap())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !sock.exists() {
        assert!(std::time::Instant::now() < deadline, "control socket never appeared");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let o = popgo(&[
        "ctl",
        "--socket",
        sock.to_str().unwrap(),
        "system-view; bgp 100; apply-label per-route pop-go; commit",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && out.contains("commit ok"), "{out}");
    assert!(!out.contains("retired pending"), "the grace period did not wait for the paced worker: {out}");
    let grace_us: f64 = out.split("grace ").nth(1).and_then(|s| s.split(" us").next()).unwrap().parse().unwrap();
    assert!(grace_us < 20_000.0, "grace {grace_us} us: {out}");
    let t = std::time::Instant::now();
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(t.elapsed() < std::time::Duration::from_secs(2), "stopped in {:?}", t.elapsed());
}

/// A panic inside a worker (afxdp's `try_send` panics on an unexpected errno) must be
/// contained so that popgo still drains, reports and detaches its XDP programs: no
/// profile users build may abort on panic.
#[test]
fn no_build_profile_aborts_on_panic() {
    let text = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let manifest: toml::Value = toml::from_str(&text).unwrap();
    let profiles = manifest.get("profile").and_then(|p| p.as_table()).expect("profiles in Cargo.toml");
    assert!(profiles.contains_key("release"), "the release profile is the published one");
    for (name, p) in profiles {
        assert_ne!(p.get("panic").and_then(|v| v.as_str()), Some("abort"), "profile {name} aborts on panic");
    }
}

/// `balanced` is checked against counts that do not come from the same counters: the
/// frames found in the output files plus the drops each seed frame must cause (the
/// seed capture's own description), per port and per reason.
#[test]
fn accounting_matches_the_output_files_and_the_expected_drops() {
    let dir = tempfile::tempdir().unwrap();
    for (cfg, to_a, to_b) in [(seed_toml(), 8usize, 0usize), (seed_without_popgo(dir.path()), 2, 6)] {
        let out = dir.path().join(format!("out-{to_a}"));
        let v = json(&popgo(&["replay", "--config", &cfg, "--out-dir", out.to_str().unwrap(), "--json", &seed_pcap()]));
        let count = |p: &str| {
            let f = out.join(p);
            if f.exists() {
                frames_of(&f).len()
            } else {
                0
            }
        };
        assert_eq!((count("to-A.pcap"), count("to-B.pcap")), (to_a, to_b), "frames in the files");
        for r in SEED_DROP_REASONS {
            assert_eq!(v["drops"][r], 1, "{r}: {v}");
        }
        let dropped: u64 = v["drops"].as_object().unwrap().values().map(|x| x.as_u64().unwrap()).sum();
        assert_eq!(dropped, SEED_DROP_REASONS.len() as u64, "{v}");
        let seed_frames = popgo::traffic::frames::seed_frames().len();
        assert_eq!(seed_frames, 16);
        assert_eq!(to_a + to_b + SEED_DROP_REASONS.len(), seed_frames, "every input frame is an output or a drop");
        assert_eq!(v["rx_packets"], seed_frames as u64);
        assert_eq!(v["tx_packets"]["to-A"], to_a as u64);
        assert_eq!(v["tx_packets"]["to-B"], to_b as u64);
    }
}

/// `gen synth --table-out` writes a config and its route table file; `check` loads them,
/// `display` filters the LSP table, and the replay forwards like the TOML config's; an
/// error in the table names the file and the line (exit 2).
#[test]
fn route_table_files_from_gen_synth() {
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f).display().to_string();
    let gen = popgo(&[
        "gen",
        "synth",
        "--out",
        &p("s.pcap"),
        "--count",
        "3000",
        "--labels",
        "2000",
        "--config-out",
        &p("c.toml"),
        "--table-out",
        &p("r.txt"),
    ]);
    assert!(gen.status.success(), "{}", String::from_utf8_lossy(&gen.stderr));
    assert!(std::fs::read_to_string(p("c.toml")).unwrap().contains("table = \"r.txt\""));
    let check = popgo(&["check", "--config", &p("c.toml")]);
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success() && out.contains("2000 static routes, 2000 BGP LSPs, 2000 ILM entries"), "{out}");
    let count = popgo(&[
        "display",
        "--config",
        &p("c.toml"),
        "mpls",
        "lsp",
        "protocol",
        "bgp",
        "|",
        "include",
        "POPGO$",
        "|",
        "count",
    ]);
    assert_eq!(String::from_utf8_lossy(&count.stdout), "Total lines: 2000.\n");
    let toml = popgo(&[
        "gen",
        "synth",
        "--out",
        &p("t.pcap"),
        "--count",
        "3000",
        "--labels",
        "2000",
        "--config-out",
        &p("t.toml"),
    ]);
    assert!(toml.status.success());
    let a = json(&popgo(&["replay", "--json", "--config", &p("c.toml"), &p("s.pcap")]));
    let b = json(&popgo(&["replay", "--json", "--config", &p("t.toml"), &p("s.pcap")]));
    assert_eq!(a["tx_packets"], b["tx_packets"]);
    assert_eq!(a["drops"], b["drops"]);

    let mut table = std::fs::read_to_string(p("r.txt")).unwrap();
    table.push_str("10.200.0.0/16 192.168.99.1\n");
    std::fs::write(p("r.txt"), &table).unwrap();
    let bad = popgo(&["check", "--config", &p("c.toml")]);
    let e = String::from_utf8_lossy(&bad.stderr);
    let line = table.lines().count();
    assert_eq!(bad.status.code(), Some(2), "{e}");
    assert!(e.contains(&format!("r.txt: line {line}: next hop 192.168.99.1 is not a known neighbor")), "{e}");
}

/// A small MRT RIB dump (three collector peers, IPv4 and IPv6 prefixes) named by the
/// seed config as `[bgp] mrt`: `display mpls lsp protocol bgp` shows its prefixes after
/// the config's, with dynamic labels from label_base in dump order and next hops spread
/// over the neighbors by prefix; `mrt_peer` keeps one peer's prefixes; a corrupt dump
/// is exit 2 with the record and its offset.
#[test]
fn mrt_rib_dumps_become_bgp_lsps() {
    use popgo::config::mrt::{Peer, RibWriter};
    use popgo::config::Prefix;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f).display().to_string();
    let peers = [
        Peer { ip: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)), asn: 64496 },
        Peer { ip: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1)), asn: 64497 },
        Peer { ip: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 3)), asn: 4_200_000_000 },
    ];
    let mut w = RibWriter::new(Vec::new(), Ipv4Addr::new(198, 18, 0, 255), &peers).unwrap();
    for (prefix, entries) in [
        ("203.0.113.0/24", &[0u16, 1, 2][..]),
        ("198.51.100.0/24", &[2][..]),
        ("192.0.2.0/24", &[1, 0][..]),
        ("2001:db8:100::/48", &[0, 1][..]),
    ] {
        w.prefix(Prefix::parse(prefix).unwrap(), entries).unwrap();
    }
    std::fs::write(p("rib.mrt"), w.into_inner()).unwrap();
    let seed = std::fs::read_to_string(seed_toml()).unwrap();
    let config = |keys: &str| {
        let text = seed.replacen("label_base = 48000", &format!("label_base = 48000\nmrt = \"rib.mrt\"\n{keys}"), 1)
            + "\n[[neighbor]]\nip = \"fd00::1\"\nmac = \"02:00:00:00:00:61\"\nport = \"to-D\"\n";
        std::fs::write(p("c.toml"), text).unwrap();
        let out = popgo(&["display", "--config", &p("c.toml"), "mpls", "lsp", "protocol", "bgp"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let rows: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.ends_with("POPGO"))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        rows
    };
    assert_eq!(
        config(""),
        [
            "10.1.1.0/24 48122/NULL -/to-A 192.168.10.1 POPGO",
            "203.0.113.0/24 48000/NULL -/to-B 192.168.20.1 POPGO",
            "198.51.100.0/24 48001/NULL -/to-A 192.168.10.1 POPGO",
            "192.0.2.0/24 48002/NULL -/to-B 192.168.20.1 POPGO",
            "2001:db8:100::/48 48003/NULL -/to-D fd00::1 POPGO",
        ]
    );
    assert_eq!(
        config("mrt_peer = \"198.18.0.3\""),
        [
            "10.1.1.0/24 48122/NULL -/to-A 192.168.10.1 POPGO",
            "203.0.113.0/24 48000/NULL -/to-B 192.168.20.1 POPGO",
            "198.51.100.0/24 48001/NULL -/to-A 192.168.10.1 POPGO",
        ]
    );
    assert_eq!(config("mrt_families = [\"ipv6\"]").len(), 2);

    let mut bytes = std::fs::read(p("rib.mrt")).unwrap();
    let n = bytes.len();
    bytes.truncate(n - 3);
    std::fs::write(p("rib.mrt"), &bytes).unwrap();
    let bad = popgo(&["check", "--config", &p("c.toml")]);
    let e = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{e}");
    assert!(e.contains("rib.mrt: record 5 at byte ") && e.contains("truncated: the record is"), "{e}");
}

/// `gen synth --mrt-out` writes a config and its dump (here gzip, several peers): it
/// loads to the same labels as the table-file config and forwards every frame.
#[test]
fn mrt_dumps_from_gen_synth_forward_like_table_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f).display().to_string();
    let gen = |extra: &[String]| {
        let pcap = p("s.pcap");
        let mut args = vec!["gen", "synth", "--out", &pcap, "--count", "3000", "--labels", "2000"];
        args.extend_from_slice(&["--v6-share", "0.3", "--size", "128"]);
        args.extend(extra.iter().map(String::as_str));
        let out = popgo(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    gen(&["--config-out".into(), p("m.toml"), "--mrt-out".into(), p("rib.gz"), "--mrt-peers".into(), "5".into()]);
    gen(&["--config-out".into(), p("t.toml"), "--table-out".into(), p("r.txt")]);
    assert!(std::fs::read_to_string(p("m.toml")).unwrap().contains("mrt = \"rib.gz\""));
    let check = popgo(&["check", "--config", &p("m.toml")]);
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success() && out.contains("4000 static routes, 4000 BGP LSPs, 4000 ILM entries"), "{out}");
    let a = json(&popgo(&["replay", "--json", "--config", &p("m.toml"), &p("s.pcap")]));
    let b = json(&popgo(&["replay", "--json", "--config", &p("t.toml"), &p("s.pcap")]));
    // The next hops differ (spread by prefix, not by label), the totals do not.
    let total =
        |v: &serde_json::Value| v["tx_packets"].as_object().unwrap().values().filter_map(|n| n.as_u64()).sum::<u64>();
    assert_eq!((total(&a), total(&b)), (3000, 3000));
    assert_eq!(a["drops"], b["drops"]);
}

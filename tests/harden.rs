//! Hostile and careless input end to end: every command ends in bounded time with one
//! error line naming its source (exit 2), or does what it says.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn seed(name: &str) -> String {
    root().join("pcaps").join(name).display().to_string()
}

/// Runs popgo with `args`; fails the test if it has not ended within `secs` (then it
/// is killed).
fn popgo_within(secs: u64, args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_popgo"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running popgo");
    let late = format!("popgo {args:?} still running after {secs} s");
    output_within(child, secs, Duration::from_millis(20), &late, || {})
}

/// Waits for `child` to end, polling every `every` and calling `tick` after each poll
/// that found it running; past `secs` the child is killed and the test fails with
/// `late`.
fn output_within(mut child: Child, secs: u64, every: Duration, late: &str, mut tick: impl FnMut()) -> Output {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{late}");
        }
        std::thread::sleep(every);
        tick();
    }
    child.wait_with_output().unwrap()
}

/// The one stderr line of a failed command, checked for exit 2 and one line.
fn error_line(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err.trim_end().to_string()
}

#[test]
fn stats_intervals_below_the_tick_are_refused_and_zero_means_none() {
    for (opt, v) in [("--stats", "1e-10"), ("--stats", "0.001"), ("--stats", "-1"), ("--stats", "inf")] {
        let arg = format!("{opt}={v}");
        let o = popgo_within(60, &["replay", "--config", &seed("seed.toml"), &arg, &seed("seed.pcap")]);
        let e = error_line(&o);
        assert!(e.contains(&format!("{opt} ")) && e.contains("want 0 (no interval lines) or seconds in 0.02.."), "{e}");
    }
    // 0: no interval lines, as with run --stats-interval 0.
    let o = popgo_within(60, &["replay", "--config", &seed("seed.toml"), "--stats", "0", &seed("seed.pcap")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("rx = tx + drops"));
    let o = popgo_within(60, &["run", "--config", &seed("seed.toml"), "--stats-interval", "1e-10"]);
    let e = error_line(&o);
    assert!(e.contains("--stats-interval 0.0000000001: want 0"), "{e}");
}

/// Runs popgo under `sh` with files limited to `fsize` bytes and SIGXFSZ ignored, so a
/// write past the limit fails with EFBIG as on a full disk.
fn popgo_fsize_limited(fsize: u64, args: &[&str]) -> Output {
    let script = format!("trap '' XFSZ; exec prlimit --fsize={fsize} \"$@\"");
    Command::new("sh")
        .args(["-c", &script, "sh", env!("CARGO_BIN_EXE_popgo")])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_failed_overwrite_of_the_out_dir_replaces_nothing() {
    let test = "a_failed_overwrite_of_the_out_dir_replaces_nothing";
    if !popgo::testkit::have_tool(test, "prlimit", "--version") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("pop.toml");
    let text = std::fs::read_to_string(seed("seed.toml")).unwrap().replace("pop_go = true", "pop_go = false");
    std::fs::write(&cfg, text).unwrap();
    let cfg = cfg.display().to_string();
    let out = dir.path().join("out");
    let out_s = out.display().to_string();
    let o = popgo_within(60, &["replay", "--config", &cfg, "--out-dir", &out_s, &seed("seed.pcap")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let before: Vec<Vec<u8>> =
        ["to-A", "to-B"].iter().map(|p| std::fs::read(out.join(format!("{p}.pcap"))).unwrap()).collect();
    // Ten loops: to-A's file (1544 B) fits under 2 KiB, to-B's (4584 B) does not.
    let args = ["replay", "--config", &cfg, "--out-dir", &out_s, "--overwrite", "--loops", "10", &seed("seed.pcap")];
    let o = popgo_fsize_limited(2048, &args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("to-B.pcap") && err.contains("no output file was replaced"), "{err}");
    let after: Vec<Vec<u8>> =
        ["to-A", "to-B"].iter().map(|p| std::fs::read(out.join(format!("{p}.pcap"))).unwrap()).collect();
    assert!(after == before, "the directory still describes the first run only");
    let names: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
    // Without the limit the same command replaces both.
    let o = popgo_within(60, &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::metadata(out.join("to-B.pcap")).unwrap().len(), 4584);
}

#[test]
fn an_out_dir_that_is_a_file_is_a_usage_error_naming_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, "x").unwrap();
    let o = popgo_within(
        20,
        &["replay", "--config", &seed("seed.toml"), "--out-dir", file.to_str().unwrap(), &seed("seed.pcap")],
    );
    let e = error_line(&o);
    assert!(e.ends_with(&format!("--out-dir {}: exists and is not a directory", file.display())), "{e}");
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

/// `popgo replay --control SOCK --loops 0 --pps 1000` on the seed, killed on drop.
struct Live {
    child: std::process::Child,
    sock: PathBuf,
    _dir: tempfile::TempDir,
}

impl Live {
    fn start() -> Live {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("ctl.sock");
        let child = Command::new(env!("CARGO_BIN_EXE_popgo"))
            .args(["replay", "--config", &seed("seed.toml"), "--control", sock.to_str().unwrap()])
            .args(["--loops", "0", "--pps", "1000", &seed("seed.pcap")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !sock.exists() {
            assert!(Instant::now() < deadline, "no control socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        Live { child, sock, _dir: dir }
    }

    /// `popgo ctl --socket SOCK ARGS...` with `stdin`.
    fn ctl(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_popgo"))
            .args(["ctl", "--socket", self.sock.to_str().unwrap()])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(c.stdin.as_mut().unwrap(), stdin).unwrap();
        drop(c.stdin.take());
        c.wait_with_output().unwrap()
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ctl_blames_stdin_for_bad_stdin_and_keeps_escaped_semicolons() {
    let live = Live::start();
    let o = live.ctl(&[], b"display version\n\xff\xfe\n");
    let e = error_line(&o);
    assert_eq!(e, "popgo: error: stdin: line 2: stream did not contain valid UTF-8");
    // `\;` stays in its command: here in the regular expression, matching a `;`.
    let o = live.ctl(&["display current-configuration | include a\\;b; display current-configuration | count"], b"");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.trim().parse::<u64>().is_ok() || out.contains("Total lines"), "only the count: {out}");
}

/// A network namespace `hd<pid>-<n>` with veth pairs c-to-a/b/d (peers pa, pb, pd up),
/// deleted on drop.
struct Netns(String);

impl Netns {
    fn new(n: u32) -> Netns {
        let name = format!("hd{}-{n}", std::process::id());
        let ip = |args: &[&str]| {
            let o = Command::new("ip").args(args).output().unwrap();
            assert!(o.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        };
        ip(&["netns", "add", &name]);
        let ns = Netns(name.clone());
        for (c, p) in [("c-to-a", "pa"), ("c-to-b", "pb"), ("c-to-d", "pd")] {
            ip(&["-n", &name, "link", "add", c, "type", "veth", "peer", "name", p]);
            ip(&["-n", &name, "link", "set", c, "up"]);
            ip(&["-n", &name, "link", "set", p, "up"]);
        }
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn zero_copy_on_veth_is_a_usage_error_naming_the_option() {
    let test = "zero_copy_on_veth_is_a_usage_error_naming_the_option";
    if popgo::sys::rlimit::euid() != 0 {
        popgo::testkit::skip(test, "needs root (network namespaces, AF_XDP)");
        return;
    }
    let ns = Netns::new(1);
    let cfg = root().join("examples/lab.toml").display().to_string();
    let bin = env!("CARGO_BIN_EXE_popgo");
    let args = ["netns", "exec", &ns.0, bin, "run", "--config", &cfg, "--zero-copy", "--duration", "1"];
    let o = Command::new("ip").args(args).stdin(Stdio::null()).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("popgo: error: --zero-copy: c-to-a queue 0: binding the socket: Operation not supported"),
        "{last}"
    );
    assert!(last.ends_with("run without --zero-copy"), "{last}");
    // Every XDP program detached on the way out.
    let links = Command::new("ip").args(["-n", &ns.0, "link", "show"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&links.stdout).contains("xdp"), "{}", String::from_utf8_lossy(&links.stdout));
}

#[test]
fn bench_stops_on_sigint_even_when_started_with_it_ignored_and_bounds_warmup() {
    let o = popgo_within(
        20,
        &["bench", "--config", &seed("seed.toml"), "--warmup", "18446744073709551615", &seed("seed.pcap")],
    );
    let e = error_line(&o);
    assert!(e.ends_with("--warmup must be in 0..=1000"), "{e}");
    // As a non-interactive shell starts a background job: SIGINT ignored on entry.
    let child = Command::new("sh")
        .args(["-c", "trap '' INT; exec \"$@\"", "sh", env!("CARGO_BIN_EXE_popgo"), "bench"])
        .args(["--config", &seed("seed.toml"), "--repeat", "1000", "--loops", "100000", &seed("seed.pcap")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // SIGINT every 0.5 s (the handlers are installed when the first repetition starts);
    // it must end within 30 s, where 1000 repetitions take minutes.
    let pid = child.id().to_string();
    let sigint = || {
        Command::new("kill").args(["-INT", &pid]).status().unwrap();
    };
    let o =
        output_within(child, 30, Duration::from_millis(500), "popgo bench still running after 30 s of SIGINTs", sigint);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.trim_end().ends_with("popgo: error: interrupted by a signal: no results"), "{err}");
}

/// A SIGINT that arrives while replay still loads its tables (here 300,000 routes) is
/// neither lost to an ignored disposition inherited from a shell's background job nor
/// the end of a half-set-up process: the run stops as soon as it starts, with a report.
#[test]
fn a_stop_during_setup_is_kept_for_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f).to_str().unwrap().to_string();
    let (pcap, cfg, table) = (p("s.pcap"), p("c.toml"), p("t.txt"));
    let o = popgo_within(
        60,
        &[
            "gen",
            "synth",
            "--out",
            &pcap,
            "--count",
            "64",
            "--labels",
            "300000",
            "--config-out",
            &cfg,
            "--table-out",
            &table,
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let child = Command::new("sh")
        .args(["-c", "trap '' INT; exec \"$@\"", "sh", env!("CARGO_BIN_EXE_popgo"), "replay"])
        .args(["--config", &cfg, "--loops", "0", "--json", &pcap])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The shell has exec'd popgo by then, which is still reading the table.
    std::thread::sleep(Duration::from_millis(200));
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let late = "a SIGINT sent during setup was lost: replay --loops 0 still running after 60 s";
    let o = output_within(child, 60, Duration::from_millis(50), late, || {});
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let out = String::from_utf8_lossy(&o.stdout);
    let v: serde_json::Value =
        serde_json::from_str(out.trim_end().lines().last().unwrap_or("")).expect("a JSON report");
    assert_eq!(v["balanced"], true, "{v}");
}

#[test]
fn a_wall_clock_gate_refuses_a_baseline_of_another_run_shape() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.json");
    let b = base.to_str().unwrap();
    let (cfg, pcap) = (seed("seed.toml"), seed("seed.pcap"));
    let common = ["bench", "--config", &cfg, "--warmup", "0"];
    let run = |extra: &[&str]| {
        let mut v: Vec<&str> = common.to_vec();
        v.extend_from_slice(extra);
        v.push(&pcap);
        popgo_within(60, &v)
    };
    let o = run(&["--repeat", "2", "--loops", "20", "--save-baseline", b]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (extra, want) in [
        (&["--repeat", "3", "--loops", "20"][..], "--repeat: baseline 2, now 3"),
        (&["--repeat", "2", "--loops", "5"][..], "length: baseline --loops 20, now --loops 5"),
        (&["--repeat", "2", "--duration", "0.2"][..], "length: baseline --loops 20, now --duration 0.2"),
        (&["--repeat", "2", "--loops", "20", "--burst", "8"][..], "--burst: baseline 32, now 8"),
    ] {
        let mut v = extra.to_vec();
        v.extend_from_slice(&["--baseline", b]);
        let o = run(&v);
        let e = error_line(&o);
        assert!(e.contains("measured with another run shape (") && e.contains(want), "{extra:?}: {e}");
        assert!(o.stdout.is_empty(), "refused before measuring");
    }
    // The same shape is compared (a verdict, whichever it is).
    let o = run(&["--repeat", "2", "--loops", "20", "--baseline", b]);
    assert_ne!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("verdict vs"));
}

#[test]
fn every_man_page_the_top_page_names_is_generated() {
    let top = popgo_within(60, &["man"]);
    assert!(top.status.success());
    let top = String::from_utf8_lossy(&top.stdout).to_string();
    let named: Vec<String> = top
        .split("popgo\\-")
        .skip(1)
        .filter_map(|s| s.split_once("(1)").map(|(n, _)| format!("popgo-{}.1", n.replace("\\-", "-"))))
        .filter(|n| !n.contains(' '))
        .collect();
    assert!(named.contains(&"popgo-replay.1".to_string()), "{named:?}");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    let o = popgo_within(60, &["man", "--out-dir", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for n in &named {
        let page = std::fs::read_to_string(out.join(n)).unwrap_or_else(|e| panic!("{n}: {e}"));
        assert!(page.contains(&format!(".TH {} 1", n.trim_end_matches(".1"))), "{n}");
    }
    assert!(out.join("popgo-gen-synth.1").exists() && out.join("popgo.1").exists());
    // One page on stdout, nested commands too; an unknown one is a usage error.
    let o = popgo_within(60, &["man", "gen", "synth"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains(".TH popgo-gen-synth 1"));
    let e = error_line(&popgo_within(60, &["man", "replay", "x"]));
    assert!(e.contains("popgo replay has no command \"x\""), "{e}");
    // Existing pages are never overwritten.
    let e = error_line(&popgo_within(60, &["man", "--out-dir", out.to_str().unwrap()]));
    assert!(e.contains("exists; refusing to overwrite it"), "{e}");
}

#[test]
fn workers_sharing_a_core_are_warned_about() {
    let o = popgo_within(
        30,
        &["replay", "--config", &seed("seed.toml"), "--workers", "2", "--cores", "0,0", &seed("seed.pcap")],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(" WARN workers 0 and 1 share core 0 (2 workers on 1 distinct core(s)"), "{err}");
    let o = popgo_within(60, &["replay", "--config", &seed("seed.toml"), "--cores", "0", &seed("seed.pcap")]);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("share core"));
}

/// `frames` as a little-endian microsecond classic pcap of link type 113 (Linux
/// cooked, as `tcpdump -i any` writes it): each Ethernet frame's header replaced by a
/// cooked one with its source MAC and EtherType.
fn sll_pcap(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut v = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
    v.extend_from_slice(&[2, 0, 4, 0]);
    for x in [0u32, 0, 65535, 113] {
        v.extend_from_slice(&x.to_le_bytes());
    }
    for (i, f) in frames.iter().enumerate() {
        let mut rec = vec![0, 4, 0, 1, 0, 6];
        rec.extend_from_slice(&f[6..12]);
        rec.extend_from_slice(&[0, 0]);
        rec.extend_from_slice(&f[12..]);
        for x in [1u32, i as u32, rec.len() as u32, rec.len() as u32] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.extend_from_slice(&rec);
    }
    v
}

#[test]
fn a_linux_cooked_capture_replays_like_its_ethernet_original() {
    // The seed capture's untagged MPLS frames, as Ethernet and as tcpdump -i any.
    let cap = popgo::io::pcap::Capture::open(std::path::Path::new(&seed("seed.pcap"))).unwrap();
    let frames: Vec<Vec<u8>> =
        (0..cap.len()).map(|i| cap.packet(i).to_vec()).filter(|f| f.len() >= 14 && f[12..14] == [0x88, 0x47]).collect();
    assert!(frames.len() >= 8, "{}", frames.len());
    let dir = tempfile::tempdir().unwrap();
    let eth = dir.path().join("eth.pcap");
    popgo::io::pcap::write_file(&eth, frames.iter().enumerate().map(|(i, f)| (1_000_000_000 + i as u64 * 1000, f)))
        .unwrap();
    let sll = dir.path().join("any.pcap");
    std::fs::write(&sll, sll_pcap(&frames)).unwrap();
    let mut reports = Vec::new();
    for (input, out) in [(&eth, "out-eth"), (&sll, "out-sll")] {
        let out = dir.path().join(out);
        let o = popgo_within(
            30,
            &[
                "replay",
                "--config",
                &seed("seed.toml"),
                "--json",
                "--out-dir",
                out.to_str().unwrap(),
                input.to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        reports.push((v["tx_packets"].clone(), v["drops"].clone(), std::fs::read(out.join("to-A.pcap")).unwrap()));
    }
    assert!(reports[0].0["to-A"].as_u64().unwrap() > 0, "{:?}", reports[0].0);
    assert_eq!(reports[0], reports[1], "same verdicts and the same frames out");
}

#[test]
fn gen_synth_sizes_follow_replay_and_big_configs_get_a_table_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.pcap");
    let out_s = out.to_str().unwrap();
    let e = error_line(&popgo_within(60, &["gen", "synth", "--out", out_s, "--count", "10", "--size", "9000"]));
    assert!(e.contains("--size 9000 must be in 46..=2048"), "{e}");
    // IPv6 traffic at the default size: the smallest frame that holds it.
    let o = popgo_within(60, &["gen", "synth", "--out", out_s, "--count", "10", "--labels", "10", "--v6-share", "0.5"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("10 frames of 66 B"));
    // Over 100,000 routes, --config-out alone puts them in a table file beside it.
    let cfg = dir.path().join("big.toml");
    let args =
        ["gen", "synth", "--out", out_s, "--count", "10", "--labels", "100001", "--config-out", cfg.to_str().unwrap()];
    let o = popgo_within(60, &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = dir.path().join("big.routes.txt");
    assert_eq!(std::fs::read_to_string(&table).unwrap().lines().filter(|l| !l.starts_with('#')).count(), 100_001);
    assert!(std::fs::read_to_string(&cfg).unwrap().contains("table = \"big.routes.txt\""));
    assert!(String::from_utf8_lossy(&o.stderr).contains("100001 routes: writing them to the table file"));
    let o = popgo_within(60, &["check", "--config", cfg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // It is never overwritten unasked.
    let e = error_line(&popgo_within(60, &args));
    assert!(e.contains("big.routes.txt exists; name one with --table-out"), "{e}");
}

#[test]
fn an_endless_replay_says_so_in_its_header() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("ctl.sock");
    let child = Command::new(env!("CARGO_BIN_EXE_popgo"))
        .args(["replay", "--config", &seed("seed.toml"), "--loops", "0", "--pps", "1000"])
        .args(["--control", sock.to_str().unwrap(), &seed("seed.pcap")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The socket exists once the signal handlers are in place.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !sock.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("(16 records looped until stopped) through DeviceC"), "{out}");
}

/// `popgo replay --stats ... | head -1`: the reader goes away; the replay keeps going
/// and still stops on SIGTERM (a write to the closed pipe used to panic the supervisor,
/// which then waited for workers nobody told to stop).
#[test]
fn a_closed_stdout_neither_hangs_nor_panics_a_replay() {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_popgo"))
        .args([
            "replay",
            "--config",
            &seed("seed.toml"),
            "--loops",
            "0",
            "--pps",
            "1000",
            "--stats",
            "0.05",
            "--cores",
            "0",
        ])
        .arg(seed("seed.pcap"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.starts_with("t="), "{first}");
    // The reader is gone now (dropped above): the next interval lines hit a closed pipe.
    std::thread::sleep(Duration::from_millis(500));
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let o = output_within(child, 30, Duration::from_millis(20), "replay still running 30 s after SIGTERM", || {});
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn command_line_errors_are_one_line_naming_the_option() {
    let (cfg, pcap) = (seed("seed.toml"), seed("seed.pcap"));
    for (args, want) in [
        (vec!["replay", "--config", &cfg, "--loops", "x", &pcap], "invalid value 'x' for '--loops <LOOPS>'"),
        (vec!["replay", "--config", &cfg, "--loop", "2", &pcap], "unexpected argument '--loop' found; tip:"),
        (vec!["replay", &pcap], "the following required arguments were not provided: --config <CONFIG>"),
        (vec!["gen", "synth", "--depth=-0.5", "--out", "/dev/null"], "'--depth <DEPTH>'"),
        (vec!["run", "--config", &cfg, "--burst", "1"], "unexpected argument '--burst' found"),
    ] {
        let o = popgo_within(60, &args);
        let e = error_line(&o);
        assert!(e.starts_with("popgo: error: ") && e.contains(want) && e.ends_with("(see --help)"), "{args:?}: {e}");
    }
    // Help is still help: on stdout, exit 0, many lines.
    let o = popgo_within(60, &["replay", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).lines().count() > 10);
}

#[test]
fn generator_and_ctl_argument_errors_name_the_option() {
    let o = popgo_within(
        60,
        &[
            "gen",
            "synth",
            "--labels",
            "8773",
            "--first-label",
            "65535",
            "--transport-label",
            "65535",
            "--out",
            "/dev/null",
        ],
    );
    let e = error_line(&o);
    assert!(e.ends_with("--transport-label 65535 is one of the service labels 65535..74308"), "{e}");
    // An argument with no command in it: a usage error before any connection is tried.
    let o = popgo_within(60, &["ctl", "--socket", "/nonexistent/popgo.sock", " ; "]);
    let e = error_line(&o);
    assert!(e.contains("ctl: the COMMAND argument holds no command"), "{e}");
}

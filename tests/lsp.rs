//! Per-LSP counters end to end: the report's per-label counts add up to the forwarded
//! packets and bytes (the per-port counters) on the seed capture, on a synthetic capture
//! over a million labels with two workers, and across a live commit, where the metrics
//! serve them too and the report shows where the FEC's packets went before and after.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn popgo(args: &[&str]) -> serde_json::Value {
    let o = Command::new(env!("CARGO_BIN_EXE_popgo")).args(args).output().unwrap();
    assert!(o.status.success(), "popgo {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// (packets, bytes) summed over the report's `lsps`.
fn lsp_sums(v: &serde_json::Value) -> (u64, u64) {
    v["lsps"]
        .as_array()
        .unwrap()
        .iter()
        .fold((0, 0), |(p, b), l| (p + l["packets"].as_u64().unwrap(), b + l["bytes"].as_u64().unwrap()))
}

/// `gen synth` of COUNT packets over LABELS labels into a new directory: s.pcap, s.toml
/// and its route table s.routes.
fn synth(count: &str, labels: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f).to_str().unwrap().to_string();
    let o = Command::new(env!("CARGO_BIN_EXE_popgo"))
        .args(["gen", "synth", "--out", &p("s.pcap"), "--count", count, "--labels", labels])
        .args(["--config-out", &p("s.toml"), "--table-out", &p("s.routes")])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    dir
}

fn tx_sum(v: &serde_json::Value) -> u64 {
    v["tx_packets"].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum()
}

#[test]
fn per_lsp_counts_add_up_to_the_forwarded_packets() {
    let seed = root().join("pcaps");
    let v = popgo(&[
        "replay",
        "--config",
        seed.join("seed.toml").to_str().unwrap(),
        "--loops",
        "3",
        "--lsp-counters",
        "on",
        "--json",
        seed.join("seed.pcap").to_str().unwrap(),
    ]);
    // The seed's 8 good frames per pass, all on the one BGP LSP.
    assert_eq!(v["lsps"], serde_json::json!([{"label": 48122, "fec": "10.1.1.0/24", "packets": 24, "bytes": 1440}]));
    assert_eq!(lsp_sums(&v), (tx_sum(&v), v["tx_bytes"].as_u64().unwrap()));

    // A million labels (a route table file), two workers.
    let dir = synth("200000", "1000000");
    let p = |f: &str| dir.path().join(f).to_str().unwrap().to_string();
    let v =
        popgo(&["replay", "--config", &p("s.toml"), "--workers", "2", "--lsp-counters", "on", "--json", &p("s.pcap")]);
    assert_eq!(v["rx_packets"], 200_000);
    let lsps = v["lsps"].as_array().unwrap();
    assert!(lsps.len() > 150_000, "labels counted: {}", lsps.len());
    assert!(lsps.iter().any(|l| l["label"].as_u64().unwrap() > 900_000), "the whole label range is counted");
    assert_eq!(lsp_sums(&v), (tx_sum(&v), v["tx_bytes"].as_u64().unwrap()));
    assert_eq!(tx_sum(&v), 200_000);
}

fn wait_for_line(file: &Path, pat: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if let Some(at) = text.find(pat) {
            return text[at + pat.len()..].lines().next().unwrap_or_default().trim().to_string();
        }
        assert!(Instant::now() < deadline, "no {pat:?} in {}: {text}", file.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn scrape(url: &str) -> String {
    let o = Command::new("curl").args(["-fsS", "--max-time", "5", url]).output().unwrap();
    assert!(o.status.success(), "curl {url}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn per_lsp_counts_survive_a_live_commit() {
    if !popgo::testkit::have_tool("per_lsp_counts_survive_a_live_commit", "curl", "--version") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("pop.toml");
    let text =
        std::fs::read_to_string(root().join("pcaps/seed.toml")).unwrap().replace("pop_go = true", "pop_go = false");
    std::fs::write(&cfg, text).unwrap();
    let sock = dir.path().join("ctl.sock");
    let err = dir.path().join("stderr");
    let child = Command::new(env!("CARGO_BIN_EXE_popgo"))
        .args(["replay", "--config", cfg.to_str().unwrap(), "--loops", "0", "--pps", "4000", "--json"])
        .args(["--control", sock.to_str().unwrap(), "--metrics", "127.0.0.1:0", "--metrics-lsps", "1"])
        .arg(root().join("pcaps/seed.pcap"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let url = wait_for_line(&err, "metrics at ");
    std::thread::sleep(Duration::from_millis(400));
    let count = |t: &str, series: &str| -> u64 {
        let line = t.lines().find(|l| l.starts_with(series)).unwrap_or_else(|| panic!("no {series} in\n{t}"));
        line[series.len()..].trim().parse().unwrap()
    };
    let before = count(&scrape(&url), "popgo_lsp_packets_total{label=\"48122\"}");
    assert!(before > 0);
    let o = Command::new(env!("CARGO_BIN_EXE_popgo"))
        .args(["ctl", "--socket", sock.to_str().unwrap(), "system-view; bgp 100; apply-label per-route pop-go; commit"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::thread::sleep(Duration::from_millis(400));
    let after = scrape(&url);
    // The label keeps its counts through the table swap and goes on counting.
    assert!(count(&after, "popgo_lsp_packets_total{label=\"48122\"}") > before, "{after}");
    assert_eq!(count(&after, "popgo_lsp_packets_total{label=\"other\"}"), 0);
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", std::fs::read_to_string(&err).unwrap());
    let last = String::from_utf8(out.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(last.lines().last().unwrap()).unwrap();
    assert_eq!(v["schema"], "popgo.replay/1");
    let tx = &v["tx_packets"];
    assert!(tx["to-A"].as_u64().unwrap() > 0 && tx["to-B"].as_u64().unwrap() > 0, "{tx}: before and after");
    assert_eq!(v["lsps"].as_array().unwrap().len(), 1, "{}", v["lsps"]);
    assert_eq!(lsp_sums(&v), (tx_sum(&v), v["tx_bytes"].as_u64().unwrap()));
    // The report shows the move: the FEC's packets left by to-A and to-B (10.1.1.0-3 by
    // longest match) before the commit, and only by to-A after it.
    let moves = v["moves"].as_array().unwrap();
    assert_eq!(moves.len(), 1, "{}", v["moves"]);
    let m = &moves[0];
    assert_eq!((&m["label"], &m["fec"]), (&serde_json::json!(48122), &serde_json::json!("10.1.1.0/24")));
    assert_eq!(m["before"]["ports"], serde_json::json!(["to-A", "to-B"]));
    assert_eq!(m["after"]["ports"], serde_json::json!(["to-A"]));
    let (b, a) = (m["before"]["packets"].as_u64().unwrap(), m["after"]["packets"].as_u64().unwrap());
    assert!(b > 0 && a > 0);
    assert_eq!(b + a, tx_sum(&v));
}

/// A plain replay (a benchmark) does not count per LSP unless asked: its report has no
/// per-LSP rows, and its forwarding counters are the same.
#[test]
fn plain_replay_counts_per_lsp_only_when_asked() {
    let seed = root().join("pcaps");
    let run = |extra: &[&str]| {
        let mut a = vec!["replay", "--config"];
        let cfg = seed.join("seed.toml");
        let pcap = seed.join("seed.pcap");
        a.push(cfg.to_str().unwrap());
        a.extend_from_slice(extra);
        a.push("--json");
        a.push(pcap.to_str().unwrap());
        popgo(&a)
    };
    let off = run(&[]);
    let on = run(&["--lsp-counters", "on"]);
    assert_eq!(off["lsps"].as_array().map_or(0, |l| l.len()), 0, "{off}");
    assert_eq!(on["lsps"].as_array().unwrap().len(), 1, "{on}");
    assert_eq!(off["tx_packets"], on["tx_packets"]);
}

/// `display mpls statistics lsp` on a live replay, through the control socket: its rows
/// are the per-LSP counts of the report (FEC, out interface, next hop of the table), its
/// total is what the ports sent (`display popgo statistics`), the output filters and
/// `in-label` select rows; and the metrics' top N + "other" sum to the sent packets.
/// The capture's last frame is 10 minutes after the others (`--speed 1`), so the
/// counters hold still while they are compared.
#[test]
fn lsp_statistics_display_matches_the_port_counters_on_a_live_replay() {
    if !popgo::testkit::have_tool("lsp_statistics_display_matches_the_port_counters", "curl", "--version") {
        return;
    }
    let dir = synth("3000", "1000");
    let p = |f: &str| dir.path().join(f).to_str().unwrap().to_string();
    // What the workers forward of these frames, per label, from a finite replay.
    let want = popgo(&["replay", "--config", &p("s.toml"), "--lsp-counters", "on", "--json", &p("s.pcap")]);
    let per_label: std::collections::HashMap<u64, (u64, u64)> = want["lsps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["label"].as_u64().unwrap(), (l["packets"].as_u64().unwrap(), l["bytes"].as_u64().unwrap())))
        .collect();
    let (sent, sent_bytes) = (tx_sum(&want), want["tx_bytes"].as_u64().unwrap());
    assert!(per_label.len() > 500 && sent > 2000, "{} labels, {sent} sent", per_label.len());
    let cap = popgo::io::pcap::Capture::open(Path::new(&p("s.pcap"))).unwrap();
    let mut w = popgo::io::pcap::Writer::new(std::fs::File::create(p("stall.pcap")).unwrap()).unwrap();
    for i in 0..cap.len() {
        w.write_packet(i as u64 * 1000, cap.packet(i)).unwrap();
    }
    w.write_packet(600_000_000_000, cap.packet(0)).unwrap();
    drop(w);

    let sock = dir.path().join("ctl.sock");
    let err = dir.path().join("stderr");
    let child = Command::new(env!("CARGO_BIN_EXE_popgo"))
        .args(["replay", "--config", &p("s.toml"), "--speed", "1", "--json", "--metrics-lsps", "5"])
        .args(["--control", sock.to_str().unwrap(), "--metrics", "127.0.0.1:0", &p("stall.pcap")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let url = wait_for_line(&err, "metrics at ");
    let (mut c, _) = popgo::control::client::Client::connect(&sock).unwrap();
    let mut display = |line: &str| {
        let r = c.send(line).unwrap();
        assert!(r.ok, "{line}: {}", r.text);
        r.text
    };
    // The ports' counters as last published (every 100 ms): wait until they hold all.
    let deadline = Instant::now() + Duration::from_secs(20);
    let port_tx = |t: &str| -> u64 {
        t.lines()
            .filter(|l| l.trim_start().starts_with("port.") && l.contains(".tx_pkts"))
            .map(|l| l.split_whitespace().last().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    while port_tx(&display("display popgo statistics")) < sent {
        assert!(Instant::now() < deadline, "the ports never sent {sent}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(port_tx(&display("display popgo statistics")), sent);

    let t = display("display mpls statistics lsp");
    let lines: Vec<&str> = t.lines().collect();
    let rule = "-".repeat(79);
    assert_eq!(lines[..3], [rule.as_str(), "                 LSP Statistics: BGP  LSP", rule.as_str()]);
    assert_eq!(
        lines[3],
        "FEC                  In Label   Out IF         Next Hop                Packets            Bytes"
    );
    assert_eq!(lines[lines.len() - 2], rule);
    let rows = &lines[4..lines.len() - 2];
    // Every LSP of the table, with the counts the finite replay gave its label.
    assert_eq!(rows.len(), 1000, "{t}");
    let (mut packets, mut bytes) = (0, 0);
    for r in rows {
        let f: Vec<&str> = r.split_whitespace().collect();
        assert_eq!(f.len(), 6, "{r}");
        let label: u64 = f[1].parse().unwrap();
        let (pk, by): (u64, u64) = (f[4].parse().unwrap(), f[5].parse().unwrap());
        assert_eq!((pk, by), per_label.get(&label).copied().unwrap_or((0, 0)), "{r}");
        assert!(f[2] != "-" && f[3] != "-", "out IF and next hop of a POPGO LSP: {r}");
        packets += pk;
        bytes += by;
    }
    assert_eq!((packets, bytes), (sent, sent_bytes));
    assert_eq!(lines[lines.len() - 1], format!("Total: 1000 LSP(s), {sent} packets, {sent_bytes} bytes"));

    // Filters, and one LSP by its in label.
    let busy = *per_label.iter().max_by_key(|(l, (p, _))| (*p, std::cmp::Reverse(**l))).unwrap().0;
    let row = rows.iter().find(|r| r.split_whitespace().nth(1) == Some(&busy.to_string())).unwrap();
    assert_eq!(display(&format!("display mpls statistics lsp | include ^\\S+ +{busy} ")), format!("{row}\n"));
    assert_eq!(display("display mpls statistics lsp | count"), format!("Total lines: {}.\n", 1000 + 6));
    let one = display(&format!("display mpls statistics lsp in-label {busy}"));
    let (bp, bb) = per_label[&busy];
    assert!(
        one.contains(&format!("{row}\n")) && one.ends_with(&format!("Total: 1 LSP(s), {bp} packets, {bb} bytes\n"))
    );
    let r = c.send("display mpls statistics lsp in-label x").unwrap();
    assert!(!r.ok && r.text.contains("not a label"), "{}", r.text);

    // The metrics: 5 labels and "other", which together are every packet sent.
    let m = scrape(&url);
    let series: Vec<u64> = m
        .lines()
        .filter(|l| l.starts_with("popgo_lsp_packets_total{"))
        .map(|l| l.split_whitespace().last().unwrap().parse().unwrap())
        .collect();
    assert_eq!(series.len(), 6, "{m}");
    assert!(series[5] > 0, "other: {m}");
    assert_eq!(series.iter().sum::<u64>(), sent);
    let tx_line = m.lines().find(|l| l.starts_with("popgo_packets_total{direction=\"tx\"}")).unwrap();
    assert_eq!(tx_line.split_whitespace().last().unwrap(), sent.to_string());

    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", std::fs::read_to_string(&err).unwrap());
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8(out.stdout).unwrap().lines().last().unwrap()).unwrap();
    assert_eq!(lsp_sums(&v), (sent, sent_bytes));
    assert_eq!(v["lsp_counters"], true);
}

/// With per-LSP counting off the display says so, and the report says it was off.
#[test]
fn lsp_statistics_display_refused_when_counting_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("ctl.sock");
    let seed = root().join("pcaps");
    let err = dir.path().join("stderr");
    let child = Command::new(env!("CARGO_BIN_EXE_popgo"))
        .args(["replay", "--config", seed.join("seed.toml").to_str().unwrap(), "--loops", "0", "--pps", "1000"])
        .args(["--json", "--lsp-counters", "off", "--control", sock.to_str().unwrap()])
        .arg(seed.join("seed.pcap"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    wait_for_line(&err, "control socket");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut c = loop {
        match popgo::control::client::Client::connect(&sock) {
            Ok((c, _)) => break c,
            Err(e) => assert!(Instant::now() < deadline, "{e}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let r = c.send("display mpls statistics lsp").unwrap();
    assert!(!r.ok && r.text.contains("per-LSP counting is off"), "{}", r.text);
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", std::fs::read_to_string(&err).unwrap());
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8(out.stdout).unwrap().lines().last().unwrap()).unwrap();
    assert_eq!((v["lsp_counters"].as_bool(), v["lsps"].as_array().map(|l| l.len())), (Some(false), Some(0)));
}

/// `popgo diff` with the per-LSP counts of both passes: on the seed, label 48122 forwards
/// its 8 good packets through to-A with POPGO and through to-A and to-B without.
#[test]
fn diff_shows_per_lsp_counts_of_both_passes() {
    let seed = root().join("pcaps");
    let (cfg, pcap) = (seed.join("seed.toml"), seed.join("seed.pcap"));
    let (cfg, pcap) = (cfg.to_str().unwrap(), pcap.to_str().unwrap());
    let v = popgo(&["diff", "--config", cfg, "--json", pcap]);
    assert_eq!(
        v["lsps"],
        serde_json::json!([{"label": 48122, "fec": "10.1.1.0/24",
            "popgo": {"packets": 8, "bytes": 480, "ports": ["to-A"]},
            "pop": {"packets": 8, "bytes": 480, "ports": ["to-A", "to-B"]}, "change": "moved"}])
    );
    // The per-LSP packets of each pass are what that pass sent through the ports.
    let sent = |k: &str| {
        v[k].as_object()
            .unwrap()
            .iter()
            .filter(|(p, _)| !p.starts_with("dropped"))
            .map(|(_, n)| n.as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!((sent("popgo"), sent("pop")), (8, 8));
    let o = Command::new(env!("CARGO_BIN_EXE_popgo")).args(["diff", "--config", cfg, pcap]).output().unwrap();
    let t = String::from_utf8(o.stdout).unwrap();
    assert!(
        t.contains("\nper LSP (packets, bytes, out ports)   with POPGO -> without POPGO\n  10.1.1.0/24 (48122)           8        480 to-A         ->        8        480 to-A,to-B    moved\n"),
        "{t}"
    );
}

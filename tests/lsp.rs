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
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f).to_str().unwrap().to_string();
    let o = Command::new(env!("CARGO_BIN_EXE_popgo"))
        .args(["gen", "synth", "--out", &p("s.pcap"), "--count", "200000", "--labels", "1000000"])
        .args(["--config-out", &p("s.toml"), "--table-out", &p("s.routes")])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
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

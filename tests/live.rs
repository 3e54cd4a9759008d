//! Live statistics of a running replay: the Prometheus endpoint (scraped with curl and
//! checked with `promtool check metrics`), interval lines, and a commit seen in both.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn wait_for(file: &std::path::Path, pat: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if let Some(at) = text.find(pat) {
            return text[at..].lines().next().unwrap_or_default().to_string();
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

/// The value of the series `name{labels}` (exact text before the value).
fn value(text: &str, series: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"));
    line[series.len()..].trim().parse().unwrap()
}

#[test]
fn metrics_and_interval_lines_during_a_replay() {
    let test = "metrics_and_interval_lines_during_a_replay";
    if !(popgo::testkit::have_tool(test, "curl", "--version")
        && popgo::testkit::have_tool(test, "promtool", "--version"))
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("seed.toml");
    let text =
        std::fs::read_to_string(root().join("pcaps/seed.toml")).unwrap().replace("pop_go = true", "pop_go = false");
    std::fs::write(&cfg, text).unwrap();
    let sock = dir.path().join("ctl.sock");
    let err = dir.path().join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_popgo"))
        .args(["replay", "--config", cfg.to_str().unwrap(), "--loops", "0", "--pps", "20000"])
        .args(["--control", sock.to_str().unwrap(), "--metrics", "127.0.0.1:0", "--stats", "0.2", "--json"])
        .arg(root().join("pcaps/seed.pcap"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let line = wait_for(&err, "metrics at http://");
    let url = line.trim_start_matches("metrics at ").trim().to_string();
    std::thread::sleep(Duration::from_millis(500));

    let before = scrape(&url);
    let mut check = Command::new("promtool").args(["check", "metrics"]).stdin(Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(check.stdin.as_mut().unwrap(), before.as_bytes()).unwrap();
    assert!(check.wait().unwrap().success(), "promtool check metrics rejects:\n{before}");
    assert!(value(&before, "popgo_port_tx_packets_total{port=\"to-B\"}") > 0.0, "{before}");
    assert!(value(&before, "popgo_drops_total{reason=\"no_ilm_entry\"}") > 0.0);
    assert!(value(&before, "popgo_worker_rx_packets_total{worker=\"0\"}") > 0.0);
    let generation = value(&before, "popgo_table_generation");

    // The seed procedure: the commit shows in the generation and the commit counters,
    // and traffic moves from to-B to to-A.
    let o = Command::new(env!("CARGO_BIN_EXE_popgo"))
        .args(["ctl", "--socket", sock.to_str().unwrap(), "system-view; bgp 100; apply-label per-route pop-go; commit"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::thread::sleep(Duration::from_millis(600));
    let after = scrape(&url);
    assert_eq!(value(&after, "popgo_table_generation"), generation + 1.0, "{after}");
    assert_eq!(value(&after, "popgo_commits_total{kind=\"incremental\"}"), 1.0);
    assert!(value(&after, "popgo_last_commit_seconds{phase=\"total\"}") > 0.0);
    let to_b = |t: &str| value(t, "popgo_port_tx_packets_total{port=\"to-B\"}");
    let to_a = |t: &str| value(t, "popgo_port_tx_packets_total{port=\"to-A\"}");
    std::thread::sleep(Duration::from_millis(400));
    let later = scrape(&url);
    assert_eq!(to_b(&later), to_b(&after), "nothing more to DeviceB after the commit");
    assert!(to_a(&later) > to_a(&after), "traffic goes to DeviceA");
    let o = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &url.replace("/metrics", "/other")])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "404");

    // Stop: interval lines every 0.2 s on stdout, then the final report.
    let started = Instant::now();
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit {status:?}: {}", std::fs::read_to_string(&err).unwrap());
    assert!(started.elapsed() < Duration::from_secs(5));
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let (last, intervals) = lines.split_last().unwrap();
    assert_eq!(last["schema"], "popgo.replay/1");
    assert_eq!(last["balanced"], true);
    assert!(intervals.len() >= 5, "one line per 0.2 s over about 1.5 s: {}", intervals.len());
    for v in intervals {
        assert_eq!(v["schema"], "popgo.stats/1", "{v}");
        let dt = v["interval_s"].as_f64().unwrap();
        assert!((0.15..0.5).contains(&dt), "interval {dt}");
    }
    // Paced at 20 kpps: each full interval line shows about that rate.
    let rates: Vec<f64> = intervals[1..].iter().map(|v| v["rx_mpps"].as_f64().unwrap() * 1e6).collect();
    let mut sorted = rates.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    assert!((15_000.0..25_000.0).contains(&median), "median interval rate {median} pps: {rates:?}");
}

/// `VmRSS` (KiB) and `Threads` of process `pid`.
fn rss_threads(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |k: &str| -> u64 {
        let l = s.lines().find(|l| l.starts_with(k)).unwrap();
        l[k.len()..].trim().trim_end_matches(" kB").trim().parse().unwrap()
    };
    (field("VmRSS:"), field("Threads:"))
}

/// One raw HTTP exchange: the status code of the response to `req` ("" if none).
fn exchange(addr: &str, req: &[u8]) -> String {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(req);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).split(' ').nth(1).unwrap_or_default().to_string()
}

/// Kills the child if the test fails before it stops it.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn metrics_endpoint_bounds_headers_connections_and_request_rate() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let err = dir.path().join("stderr");
    let child = Command::new(env!("CARGO_BIN_EXE_popgo"))
        .args(["replay", "--config", root().join("pcaps/seed.toml").to_str().unwrap(), "--loops", "0"])
        .args(["--pps", "1000", "--metrics", "127.0.0.1:0"])
        .arg(root().join("pcaps/seed.pcap"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let line = wait_for(&err, "metrics at http://");
    let url = line.trim_start_matches("metrics at ").trim().to_string();
    let addr = url.trim_start_matches("http://").trim_end_matches("/metrics").to_string();
    assert_eq!(exchange(&addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), "200");
    std::thread::sleep(Duration::from_millis(300));
    let (rss0, threads0) = rss_threads(child.0.id());

    // A header flood: 32 connections each sending 1 MiB without a newline, and 300
    // connections that send nothing.
    let idle: Vec<_> = (0..300).map(|_| std::net::TcpStream::connect(&addr).unwrap()).collect();
    let flood: Vec<_> = (0..32)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(&addr).unwrap();
                s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
                let chunk = vec![b'a'; 64 << 10];
                let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nX: ");
                for _ in 0..16 {
                    if s.write_all(&chunk).is_err() {
                        break;
                    }
                }
                s
            })
        })
        .collect();
    let flood: Vec<_> = flood.into_iter().map(|h| h.join().unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let (rss1, threads1) = rss_threads(child.0.id());
    assert_eq!(threads1, threads0, "no thread per connection");
    assert!(rss1 < rss0 + 4096, "RSS {rss0} KiB idle, {rss1} KiB under a header flood");
    drop((idle, flood));

    // An oversized header is refused; a scrape still gets through.
    let big = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(9000));
    assert_eq!(exchange(&addr, big.as_bytes()), "431");
    assert_eq!(exchange(&addr, b"POST /metrics HTTP/1.1\r\n\r\n"), "405");
    std::thread::sleep(Duration::from_millis(1100));
    // The request rate: bursts of 20, then 429.
    let codes: Vec<String> = (0..30).map(|_| exchange(&addr, b"GET /metrics HTTP/1.1\r\n\r\n")).collect();
    assert!(codes[..15].iter().all(|c| c == "200"), "{codes:?}");
    assert!(codes.iter().any(|c| c == "429"), "{codes:?}");

    Command::new("kill").args(["-INT", &child.0.id().to_string()]).status().unwrap();
    let status = child.0.wait().unwrap();
    assert!(status.success(), "exit {status:?}: {}", std::fs::read_to_string(&err).unwrap());
}

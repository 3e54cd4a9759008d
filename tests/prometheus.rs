//! The shipped Prometheus rules and Grafana dashboard (packaging/) against the real thing:
//! `promtool check rules` and `promtool test rules` (a unit test for every alert), then a
//! Debian `prometheus` server on loopback scraping a live `popgo replay --control
//! --metrics`, with every dashboard expression and every recording rule evaluated
//! through its HTTP API. Any error or empty result fails. Skipped (with a line on
//! stderr) when prometheus, promtool or curl is not installed; tools/setup.sh installs
//! them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Kills and reaps a child when dropped, so a failing assertion leaves no process behind.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn have_tools(test: &str) -> bool {
    popgo::testkit::have_tool(test, "curl", "--version")
        && popgo::testkit::have_tool(test, "promtool", "--version")
        && popgo::testkit::have_tool(test, "prometheus", "--version")
}

#[test]
fn promtool_checks_and_unit_tests_the_rules() {
    if !have_tools("promtool_checks_and_unit_tests_the_rules") {
        return;
    }
    let dir = root().join("packaging");
    for args in [&["check", "rules", "popgo.rules.yml"][..], &["test", "rules", "popgo.rules.test.yml"]] {
        let o = Command::new("promtool").args(args).current_dir(&dir).output().unwrap();
        assert!(
            o.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // Every alert has a unit test that expects it to fire.
    let rules = std::fs::read_to_string(dir.join("popgo.rules.yml")).unwrap();
    let tests = std::fs::read_to_string(dir.join("popgo.rules.test.yml")).unwrap();
    let alerts: Vec<&str> = rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")).collect();
    assert!(alerts.len() >= 6, "{alerts:?}");
    for a in alerts {
        let tested = tests
            .split("alertname: ")
            .skip(1)
            .any(|t| t.starts_with(a) && t.lines().nth(1).is_some_and(|l| l.trim() == "exp_alerts:"));
        assert!(tested, "no unit test expects alert {a} to fire");
    }
}

/// A port nothing listens on right now (the kernel's pick for a throwaway listener).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
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

/// An instant query through the HTTP API: `Ok(number of series)`, or the error text.
fn query(api: &str, expr: &str) -> Result<usize, String> {
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "5", "-G", &format!("{api}/api/v1/query"), "--data-urlencode"])
        .arg(format!("query={expr}"))
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&o.stdout).to_string();
    let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    if v["status"] != "success" {
        return Err(format!("{}: {}", v["errorType"], v["error"]));
    }
    Ok(v["data"]["result"].as_array().map_or(0, Vec::len))
}

/// Every `expr` of the dashboard's panels (rows have none).
fn dashboard_exprs() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("packaging/popgo-dashboard.json")).unwrap();
    let d: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(t["expr"].as_str().unwrap().to_string());
        }
    }
    out
}

fn recording_rules() -> Vec<String> {
    let rules = std::fs::read_to_string(root().join("packaging/popgo.rules.yml")).unwrap();
    rules.lines().filter_map(|l| l.trim().strip_prefix("- record: ")).map(str::to_string).collect()
}

#[test]
fn a_real_prometheus_scrapes_popgo_and_every_dashboard_and_rule_query_has_data() {
    let test = "a_real_prometheus_scrapes_popgo_and_every_dashboard_and_rule_query_has_data";
    if !have_tools(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The seed scenario as POP, with one BGP peer on loopback that nothing answers (its
    // session state and prefixes are series the dashboard shows).
    let cfg = dir.path().join("seed.toml");
    let text =
        std::fs::read_to_string(root().join("pcaps/seed.toml")).unwrap().replace("pop_go = true", "pop_go = false");
    let text = text.replace("[[bgp.network]]", "[[bgp.peer]]\naddress = \"127.0.0.57\"\nas = 200\n\n[[bgp.network]]");
    std::fs::write(&cfg, text).unwrap();
    let sock = dir.path().join("ctl.sock");
    let err = dir.path().join("popgo.stderr");
    let popgo = Reaped(
        Command::new(env!("CARGO_BIN_EXE_popgo"))
            .args(["replay", "--config", cfg.to_str().unwrap(), "--loops", "0", "--pps", "5000"])
            .args(["--control", sock.to_str().unwrap(), "--metrics", "127.0.0.1:0"])
            .arg(root().join("pcaps/seed.pcap"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap(),
    );
    let url = wait_for_line(&err, "metrics at http://");
    let target = url.trim_end_matches("/metrics").to_string();

    let web = format!("127.0.0.1:{}", free_port());
    let conf = dir.path().join("prometheus.yml");
    std::fs::write(
        &conf,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: popgo\n    static_configs:\n      - targets: ['{target}']\n",
            root().join("packaging/popgo.rules.yml").display()
        ),
    )
    .unwrap();
    let perr = dir.path().join("prometheus.stderr");
    let _prom = Reaped(
        Command::new("prometheus")
            .arg(format!("--config.file={}", conf.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()))
            .arg(format!("--web.listen-address={web}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&perr).unwrap())
            .spawn()
            .unwrap(),
    );
    let api = format!("http://{web}");
    let log = || std::fs::read_to_string(&perr).unwrap_or_default();

    // Two successful scrapes at least (rates need two samples), then the seed procedure's
    // commit, then two more so the commit counters move in the window too.
    let scrapes = "count_over_time(up{job=\"popgo\"}[1m]) >= 2 and up{job=\"popgo\"} == 1";
    let wait = |expr: &str, secs: u64| {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while query(&api, expr) != Ok(1) {
            assert!(Instant::now() < deadline, "prometheus: {expr} never true; its log:\n{}", log());
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    wait(scrapes, 40);
    let o = Command::new(env!("CARGO_BIN_EXE_popgo"))
        .args(["ctl", "--socket", sock.to_str().unwrap(), "system-view; bgp 100; apply-label per-route pop-go; commit"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    wait("changes(popgo_table_generation{job=\"popgo\"}[1m]) >= 1", 20);
    std::thread::sleep(Duration::from_millis(2500));

    // The dashboard as Grafana would send it: $instance is the scraped target,
    // $__rate_interval at least four scrape intervals.
    let instances = Command::new("curl")
        .args(["-sS", "--max-time", "5", "-G", &format!("{api}/api/v1/label/instance/values")])
        .args(["--data-urlencode", "match[]=popgo_info"])
        .output()
        .unwrap();
    let instances: serde_json::Value = serde_json::from_slice(&instances.stdout).unwrap();
    assert_eq!(instances["data"], serde_json::json!([target]), "the $instance variable's query");
    let mut failed = Vec::new();
    let exprs = dashboard_exprs();
    assert!(exprs.len() >= 20, "{exprs:?}");
    for e in &exprs {
        let q = e.replace("$instance", &target).replace("$__rate_interval", "1m");
        match query(&api, &q) {
            Ok(0) => failed.push(format!("dashboard: no data: {q}")),
            Ok(_) => {}
            Err(err) => failed.push(format!("dashboard: {err}: {q}")),
        }
    }
    let rules = recording_rules();
    assert!(rules.len() >= 10, "{rules:?}");
    for r in &rules {
        let q = format!("{r}{{job=\"popgo\"}}");
        match query(&api, &q) {
            Ok(0) => failed.push(format!("recording rule: no data: {r}")),
            Ok(_) => {}
            Err(err) => failed.push(format!("recording rule: {err}: {r}")),
        }
    }
    // The rule groups loaded without evaluation errors.
    let o = Command::new("curl").args(["-sS", "--max-time", "5", &format!("{api}/api/v1/rules")]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let groups = v["data"]["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{v}");
    for g in groups {
        for r in g["rules"].as_array().unwrap() {
            if r["health"] != "ok" {
                failed.push(format!("rule {} health {}: {}", r["name"], r["health"], r["lastError"]));
            }
        }
    }
    assert!(failed.is_empty(), "{} failure(s):\n{}\nprometheus log:\n{}", failed.len(), failed.join("\n"), log());
    drop(popgo);
}

//! `popgo bench` and `popgo gen profile` end to end: a smoke run whose JSON is
//! validated against docs/bench-schema.json, the gate's exit codes, bad baselines and
//! profiles, and pacing accuracy. No test gates on absolute throughput.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_popgo");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn popgo(args: &[&str]) -> Output {
    Command::new(BIN).current_dir(root()).args(args).output().expect("running popgo")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Validates `v` against the subset of JSON Schema (2020-12) that
/// docs/bench-schema.json uses: type, const, enum, required, properties,
/// additionalProperties: false, items, minItems, minimum, oneOf and local $ref.
fn validate(root_schema: &Value, schema: &Value, v: &Value, at: &str, errs: &mut Vec<String>) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.strip_prefix("#/$defs/").expect("local $ref");
        return validate(root_schema, &root_schema["$defs"][name], v, at, errs);
    }
    if let Some(alts) = schema.get("oneOf").and_then(Value::as_array) {
        let ok = alts
            .iter()
            .filter(|s| {
                let mut e = Vec::new();
                validate(root_schema, s, v, at, &mut e);
                e.is_empty()
            })
            .count();
        if ok != 1 {
            errs.push(format!("{at}: matches {ok} of oneOf"));
        }
        return;
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => panic!("bad type in schema at {at}"),
        };
        let ok = types.iter().any(|t| match *t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_u64() || v.is_i64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            other => panic!("unsupported type {other}"),
        });
        if !ok {
            errs.push(format!("{at}: {v} is not {types:?}"));
            return;
        }
    }
    if let Some(c) = schema.get("const") {
        if c != v {
            errs.push(format!("{at}: {v} != const {c}"));
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            errs.push(format!("{at}: {v} not in {e:?}"));
        }
    }
    if let (Some(m), Some(x)) = (schema.get("minimum").and_then(Value::as_f64), v.as_f64()) {
        if x < m {
            errs.push(format!("{at}: {x} < minimum {m}"));
        }
    }
    if let Some(obj) = v.as_object() {
        for r in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            if !obj.contains_key(r.as_str().unwrap()) {
                errs.push(format!("{at}: missing {r}"));
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        for (k, val) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => validate(root_schema, s, val, &format!("{at}.{k}"), errs),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    errs.push(format!("{at}: unexpected key {k}"))
                }
                None => {}
            }
        }
    }
    if let Some(arr) = v.as_array() {
        if let Some(n) = schema.get("minItems").and_then(Value::as_u64) {
            if (arr.len() as u64) < n {
                errs.push(format!("{at}: fewer than {n} items"));
            }
        }
        if let Some(s) = schema.get("items") {
            for (i, x) in arr.iter().enumerate() {
                validate(root_schema, s, x, &format!("{at}[{i}]"), errs);
            }
        }
    }
}

fn schema_errors(doc: &Value) -> Vec<String> {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("docs/bench-schema.json")).unwrap()).unwrap();
    let mut errs = Vec::new();
    validate(&schema, &schema, doc, "$", &mut errs);
    errs
}

fn seed_bench(extra: &[&str]) -> Output {
    let mut args = vec!["bench", "--config", "pcaps/seed.toml", "pcaps/seed.pcap", "--warmup", "1"];
    args.extend_from_slice(extra);
    popgo(&args)
}

#[test]
fn smoke_run_json_matches_the_schema_and_writes_files() {
    let dir = tempfile::tempdir().unwrap();
    let (base, hgrm, svg) = (dir.path().join("base.json"), dir.path().join("b.hgrm"), dir.path().join("b.svg"));
    let o = seed_bench(&[
        "--repeat",
        "3",
        "--loops",
        "300",
        "--json",
        "--save-baseline",
        base.to_str().unwrap(),
        "--hgrm",
        hgrm.to_str().unwrap(),
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let doc: Value = serde_json::from_slice(&o.stdout).expect("stdout is one JSON document");
    assert_eq!(schema_errors(&doc), Vec::<String>::new());
    assert_eq!(doc["schema"], "popgo.bench/1");
    assert_eq!(doc["repetitions"].as_array().unwrap().len(), 3);
    assert_eq!(doc["workload"]["loops"], 300);
    assert_eq!(doc["repetitions"][0]["packets"], 16 * 300);
    let s = &doc["summary"]["mpps"];
    assert!(s["min"].as_f64().unwrap() <= s["median"].as_f64().unwrap());
    assert!(s["median"].as_f64().unwrap() <= s["max"].as_f64().unwrap());
    assert!(s["min"].as_f64().unwrap() > 0.0);
    assert!(doc["latency_ns"]["per_burst"]["samples"].as_u64().unwrap() > 0);
    assert!(doc["verdict"].is_null());
    // The saved baseline is the same document and validates too.
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&base).unwrap()).unwrap();
    assert_eq!(saved, doc);
    let h = std::fs::read_to_string(&hgrm).unwrap();
    assert!(h.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)"), "{h}");
    assert!(h.contains("#[Mean    ="));
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("throughput per repetition"));
    // The schema rejects what it should.
    let mut bad = doc.clone();
    bad["repetitions"][0].as_object_mut().unwrap().remove("mpps");
    bad["schema"] = "popgo.bench/2".into();
    assert_eq!(schema_errors(&bad).len(), 2, "{:?}", schema_errors(&bad));
}

#[test]
fn human_report_names_the_machine_and_the_numbers() {
    let o = seed_bench(&["--repeat", "2", "--loops", "100"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let out = text(&o.stdout);
    for want in
        ["machine:", "kernel", "popgo 0.1", "git ", "median", "Mpps", "Gbit/s", "ns/pkt", "per burst", "per packet"]
    {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
}

#[test]
fn gate_fails_a_slowed_build_and_passes_the_reverse() {
    let dir = tempfile::tempdir().unwrap();
    let slow = dir.path().join("slow.json");
    let fast = dir.path().join("fast.json");
    let p = |x: &Path| x.to_str().unwrap().to_string();
    // The hidden --extra-pass hook is what the slow-hot-path feature turns on.
    let o = seed_bench(&["--repeat", "3", "--loops", "400", "--extra-pass", "8", "--save-baseline", &p(&slow)]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let o = seed_bench(&["--repeat", "3", "--loops", "400", "--save-baseline", &p(&fast)]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    // Slowed against the fast baseline: exit 1 with the verdict and its numbers.
    let o = seed_bench(&["--repeat", "3", "--loops", "400", "--extra-pass", "8", "--baseline", &p(&fast)]);
    assert_eq!(code(&o), 1, "{}\n{}", text(&o.stdout), text(&o.stderr));
    assert!(text(&o.stdout).contains("REGRESSION"), "{}", text(&o.stdout));
    assert!(text(&o.stderr).contains("Mpps"), "{}", text(&o.stderr));
    // Fast against the slowed baseline: an improvement, exit 0, verdict in the JSON.
    let o = seed_bench(&["--repeat", "3", "--loops", "400", "--json", "--baseline", &p(&slow)]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["verdict"]["outcome"], "improvement", "{}", doc["verdict"]);
    assert_eq!(schema_errors(&doc), Vec::<String>::new());
}

#[test]
fn bad_baselines_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p.to_str().unwrap().to_string()
    };
    let cases = [
        (dir.path().join("missing.json").to_str().unwrap().to_string(), "No such file"),
        (write("text.json", "not json at all"), "not JSON"),
        (write("other.json", r#"{"schema": "popgo.replay/1"}"#), "schema is popgo.replay/1, expected popgo.bench/1"),
        (write("v2.json", r#"{"schema": "popgo.bench/2"}"#), "expected popgo.bench/1"),
        (write("noschema.json", r#"{"mpps": 3}"#), "schema is missing"),
        (write("shape.json", r#"{"schema": "popgo.bench/1", "repetitions": []}"#), "not a popgo.bench/1 document"),
    ];
    for (path, want) in cases {
        let o = seed_bench(&["--repeat", "1", "--loops", "1", "--baseline", &path]);
        assert_eq!(code(&o), 2, "{path}: {}", text(&o.stderr));
        assert!(text(&o.stderr).contains(want), "{path}: want {want:?} in {}", text(&o.stderr));
        assert!(o.stdout.is_empty(), "nothing measured before the baseline is checked");
    }
    for (args, want) in [
        (vec!["--repeat", "0"], "--repeat"),
        (vec!["--burst", "0"], "--burst"),
        (vec!["--max-regression=-3"], "--max-regression"),
        (vec!["--duration", "0"], "--duration"),
    ] {
        let o = seed_bench(&args);
        assert_eq!(code(&o), 2, "{args:?}");
        assert!(text(&o.stderr).contains(want), "{}", text(&o.stderr));
    }
    let o = popgo(&["bench", "pcaps/seed.pcap"]);
    assert_eq!(code(&o), 2);
    assert!(text(&o.stderr).contains("--config is required"), "{}", text(&o.stderr));
}

const PROFILE: &str = r#"
name = "test"
packets = 3000
size = [64, 128, 256]
ipv6_share = 0.3
malformed_share = 0.05
[labels]
count = 50
dist = "zipf"
entropy_share = 0.2
[vlan]
share = 0.5
"#;

#[test]
fn profiles_generate_into_bench_and_to_pcap() {
    let dir = tempfile::tempdir().unwrap();
    let prof = dir.path().join("p.toml");
    std::fs::write(&prof, PROFILE).unwrap();
    let (pcap, cfg) = (dir.path().join("p.pcap"), dir.path().join("p-config.toml"));
    let o = popgo(&[
        "gen",
        "profile",
        "--profile",
        prof.to_str().unwrap(),
        "--out",
        pcap.to_str().unwrap(),
        "--config-out",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("3000 frames"), "{}", text(&o.stdout));
    // The pcap replays through the generated config: only the malformed frames drop.
    let o = popgo(&["replay", "--config", cfg.to_str().unwrap(), "--json", pcap.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let drops: u64 = r["drops"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    let want: u64 = ["too_short", "truncated_label_stack", "payload_mismatch"]
        .iter()
        .map(|k| r["drops"][k].as_u64().unwrap())
        .sum();
    assert_eq!(drops, want, "{}", r["drops"]);
    assert!((90..=220).contains(&drops), "5% of 3000 malformed: {drops}");
    // bench --profile generates the same traffic in memory, with a generated config.
    let o = popgo(&["bench", "--profile", prof.to_str().unwrap(), "--repeat", "1", "--loops", "2", "--json"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["workload"]["kind"], "profile");
    assert_eq!(doc["workload"]["config"], "generated");
    assert_eq!(doc["workload"]["records"], 3000);
    assert_eq!(doc["repetitions"][0]["dropped"].as_u64().unwrap(), 2 * drops);
    assert_eq!(schema_errors(&doc), Vec::<String>::new());
    // Bad profiles: exit 2, naming the key.
    for (body, want) in [
        ("packets = 10\nduration_s = 1.0\n", "give packets or duration_s"),
        ("ipv6_share = 1.5\n", "`ipv6_share`"),
        ("[labels]\ndist = \"pareto\"\n", "`labels.dist`"),
        ("flows = 3\n[labels]\ncount = 10\n", "`flows`"),
        ("size = 9\n", "`size`"),
        ("colour = 1\n", "unknown field `colour`"),
        ("packets = \n", "TOML parse error"),
    ] {
        std::fs::write(&prof, body).unwrap();
        for args in [
            vec!["gen", "profile", "--profile", prof.to_str().unwrap(), "--out", pcap.to_str().unwrap()],
            vec!["bench", "--profile", prof.to_str().unwrap()],
        ] {
            let o = popgo(&args);
            assert_eq!(code(&o), 2, "{body:?}");
            assert!(text(&o.stderr).contains(want), "{body:?}: want {want:?} in {}", text(&o.stderr));
        }
    }
}

/// --pps holds the requested rate within 2% over a 5-second run (a modest rate, so a
/// loaded 2-core CI machine keeps up; the replay spins until each burst is due).
#[test]
fn pacing_reaches_the_requested_rate() {
    const PPS: f64 = 200_000.0;
    // 16 records x 62500 loops = 1,000,000 packets = 5 s at 200 kpps.
    let o = popgo(&[
        "bench",
        "--config",
        "pcaps/seed.toml",
        "pcaps/seed.pcap",
        "--pps",
        "200000",
        "--loops",
        "62500",
        "--repeat",
        "1",
        "--warmup",
        "0",
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    let rep = &doc["repetitions"][0];
    let secs = rep["elapsed_ns"].as_f64().unwrap() / 1e9;
    let pps = rep["packets"].as_f64().unwrap() / secs;
    assert!(secs > 4.9, "a 5-second run: {secs} s");
    assert!((pps - PPS).abs() / PPS < 0.02, "{pps:.0} pps over {secs:.2} s, want {PPS} +- 2%");
    assert_eq!(doc["workload"]["pace"], "pps:200000");
}

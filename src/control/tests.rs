//! Control plane tests without a socket: the seed procedure, two-stage commit,
//! bad input, and incremental commits checked against full builds.

use super::*;
use crate::ilm::IlmOp;

pub(crate) const SEED: &str = include_str!("../../pcaps/seed.toml");

fn seed_without_popgo() -> Config {
    Config::parse(&SEED.replace("pop_go = true", "pop_go = false")).unwrap()
}

pub(crate) fn plane(cfg: Config) -> ControlPlane {
    let snap = crate::ilm::build(&cfg, 0).unwrap();
    ControlPlane::new(cfg, Publisher::new(Box::new(snap), 4), Arc::new(StatsBoard::new(1)))
}

pub(crate) fn ok(p: &mut ControlPlane, s: &mut Session, line: &str) -> String {
    let r = p.exec(s, line);
    assert!(r.ok, "{line:?} failed: {}", r.text);
    r.text
}

pub(crate) fn err(p: &mut ControlPlane, s: &mut Session, line: &str) -> String {
    let r = p.exec(s, line);
    assert!(!r.ok, "{line:?} should fail: {}", r.text);
    r.text
}

#[test]
fn seed_procedure_turns_popgo_on() {
    let mut p = plane(seed_without_popgo());
    let mut s = p.new_session();
    assert_eq!(p.prompt(&s), "<DeviceC>");
    let before = ok(&mut p, &mut s, "display mpls lsp protocol bgp");
    assert!(!before.contains("POPGO") && before.contains(" POP\n"), "{before}");
    ok(&mut p, &mut s, "system-view");
    assert_eq!(p.prompt(&s), "[DeviceC]");
    ok(&mut p, &mut s, "bgp 100");
    assert_eq!(p.prompt(&s), "[DeviceC-bgp]");
    ok(&mut p, &mut s, "apply-label per-route pop-go");
    assert_eq!(p.current().ilm.lookup(48122).op(), Some(IlmOp::Pop), "nothing changes before commit");
    let c = ok(&mut p, &mut s, "commit");
    assert!(c.contains("commit ok") && c.contains("incremental"), "{c}");
    assert_eq!(p.current().ilm.lookup(48122).op(), Some(IlmOp::PopGo));
    let t = ok(&mut p, &mut s, "display mpls lsp protocol bgp");
    let row = t.lines().find(|l| l.starts_with("10.1.1.0/24")).unwrap();
    assert!(row.ends_with("POPGO") && row.contains("-/to-A"), "{row}");
    assert!(ok(&mut p, &mut s, "display current-configuration").contains(" apply-label per-route pop-go\n"));
    // A worker's per-LSP counts show live, named by the published LSP table.
    p.board.lsps().row(0, true).unwrap().add(48122, 60, 0);
    let st = ok(&mut p, &mut s, "display popgo statistics");
    for k in [
        "port.to-A.tx_pkts",
        "drop.no_ilm_entry",
        "last commit",
        "last full-table build",
        "build_ns",
        "reclaim_ns",
        "    48122 10.1.1.0/24                   1             60\n",
    ] {
        assert!(st.contains(k), "{k} missing from\n{st}");
    }
    ok(&mut p, &mut s, "quit");
    ok(&mut p, &mut s, "quit");
    let r = p.exec(&mut s, "quit");
    assert!(r.ok && r.close);
}

#[test]
fn pending_lines_are_invisible_until_commit_and_commit_is_atomic() {
    let mut p = plane(seed_without_popgo());
    let gen0 = p.current().generation;
    let mut s = p.new_session();
    for l in [
        "system-view",
        "ip route-static 10.2.0.0 16 192.168.20.1",
        "ip route-static 10.3.0.0 255.255.0.0 192.168.10.1",
        "bgp 100",
        "network 10.2.0.0 16 label 5000",
        "network 10.3.0.0 16",
        "apply-label per-route pop-go",
    ] {
        ok(&mut p, &mut s, l);
    }
    assert_eq!(s.pending(), 5);
    // Another session sees none of it.
    let mut other = p.new_session();
    let t = ok(&mut p, &mut other, "display mpls lsp protocol bgp");
    assert!(t.contains("Total: 1 LSP(s)"), "{t}");
    assert!(!ok(&mut p, &mut other, "display current-configuration").contains("10.2.0.0"));
    assert!(ok(&mut p, &mut s, "display configuration candidate").contains("network 10.2.0.0 16 label 5000"));
    assert_eq!(p.current().generation, gen0);
    assert!(p.current().ilm.lookup(5000).is_empty());
    assert_eq!(p.current().fib.lookup_v4(u32::from_be_bytes([10, 2, 0, 1])), None);

    ok(&mut p, &mut s, "commit");
    let snap = p.current();
    assert_eq!(snap.generation, gen0 + 1, "one commit, one publication");
    assert_eq!(snap.ilm.lookup(5000).op(), Some(IlmOp::PopGo));
    assert_eq!(snap.ilm.lookup(48000).op(), Some(IlmOp::PopGo), "dynamic label for 10.3.0.0/16");
    assert_eq!(snap.ilm.lookup(48122).op(), Some(IlmOp::PopGo));
    assert_eq!(snap.lsps.len(), 3);
    assert_eq!(
        crate::ilm::build::first_difference(snap, &crate::ilm::build(p.running(), 0).unwrap(), p.running()),
        None
    );
    assert_eq!(s.pending(), 0);
    assert!(ok(&mut p, &mut s, "commit").contains("no uncommitted"));
}

#[test]
fn bad_lines_get_errors_naming_the_line_and_change_nothing() {
    let mut p = plane(seed_without_popgo());
    let mut s = p.new_session();
    let e = err(&mut p, &mut s, "bgp 100");
    assert!(e.starts_with("Error: line 1 (\"bgp 100\"): unrecognized command \"bgp\" in user view"), "{e}");
    ok(&mut p, &mut s, "system-view");
    let cases = [
        ("sytem-view", "unrecognized command"),
        ("network 10.1.1.0 24", "in system view"),
        ("ip route-static 10.2.0.0 16", "usage"),
        ("ip route-static 10.2.0.1 16 192.168.20.1", "host bits"),
        ("ip route-static 10.2.0.0 16 192.168.99.1", "not a known neighbor"),
        ("ip route-static 10.2.0.0 16 2001:db8::1", "family"),
        ("undo ip route-static 10.1.1.0 24 192.168.10.1", "undo network 10.1.1.0 24"),
        ("undo ip route-static 10.1.1.0 24", "undo network 10.1.1.0 24"),
        ("undo ip route-static 10.9.0.0 16", "no static route"),
        ("bgp 200", "already running with AS 100"),
        ("display bogus", "unrecognized display"),
    ];
    for (i, (l, want)) in cases.iter().enumerate() {
        let e = err(&mut p, &mut s, l);
        assert!(e.starts_with(&format!("Error: line {} (", i + 3)), "{l}: {e}");
        assert!(e.contains(want), "{l}: {e}");
    }
    ok(&mut p, &mut s, "bgp 100");
    for (l, want) in [
        ("network 10.1.1.0 30 label 1048576", "outside 16..=1048575"),
        ("network 10.1.1.0 30 label 3", "outside 16..=1048575"),
        ("network 10.1.1.0 30 label 48122", "duplicate label 48122"),
        ("network 10.9.0.0 16", "no static route"),
        ("network 10.1.1.0 24", "duplicate network"),
        ("undo network 10.9.0.0 16", "does not exist"),
        ("apply-label per-nexthop", "static label"),
        ("apply-label per-route pop-go now", "usage"),
        ("system-view", "in bgp view"),
    ] {
        let e = err(&mut p, &mut s, l);
        assert!(e.contains(want), "{l}: {e}");
    }
    assert_eq!(s.pending(), 0, "no rejected line was kept");
    assert!(ok(&mut p, &mut s, "commit").contains("no uncommitted"));
    assert_eq!(p.stats().commits, 1, "only the start-up build");
}

#[test]
fn a_stale_candidate_is_rebased_and_conflicts_fail_whole() {
    let mut p = plane(seed_without_popgo());
    let (mut a, mut b) = (p.new_session(), p.new_session());
    for s in [&mut a, &mut b] {
        ok(&mut p, s, "system-view");
        ok(&mut p, s, "bgp 100");
    }
    ok(&mut p, &mut a, "undo network 10.1.1.0 24");
    ok(&mut p, &mut b, "apply-label per-route pop-go");
    ok(&mut p, &mut b, "undo network 10.1.1.0 24");
    ok(&mut p, &mut a, "commit");
    let gen = p.current().generation;
    // b's undo no longer applies: the commit fails as a whole, pop-go stays off.
    let e = err(&mut p, &mut b, "commit");
    assert!(e.contains("line 4") && e.contains("no longer applies") && e.contains("nothing was committed"), "{e}");
    assert_eq!(p.current().generation, gen);
    assert!(!p.running().bgp.as_ref().unwrap().pop_go);
    ok(&mut p, &mut b, "clear configuration candidate");
    ok(&mut p, &mut b, "apply-label per-route pop-go");
    ok(&mut p, &mut b, "commit");
    assert!(p.running().bgp.as_ref().unwrap().pop_go);
}

/// A tiny deterministic generator (no external crates needed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn incremental_commits_equal_full_builds() {
    let mut p = plane(seed_without_popgo());
    let mut s = p.new_session();
    ok(&mut p, &mut s, "system-view");
    let mut rng = Lcg(7);
    let nhs = ["192.168.10.1", "192.168.20.1"];
    let mut incremental = 0;
    for round in 0..120 {
        let edits = 1 + rng.next(4);
        for _ in 0..edits {
            let net = rng.next(12);
            let pfx = format!("10.{}.0.0 16", 100 + net);
            let nh = nhs[rng.next(2) as usize];
            let line = match rng.next(9) {
                0 | 1 => format!("ip route-static {pfx} {nh}"),
                2 => format!("undo ip route-static {pfx} {nh}"),
                3 | 4 => format!("bgp 100\nnetwork {pfx}"),
                5 => format!("bgp 100\nnetwork {pfx} label {}", 1000 + rng.next(8) * 1000 + 60000 * rng.next(2)),
                6 => format!("bgp 100\nundo network {pfx}"),
                7 => "bgp 100\napply-label per-route pop-go".to_string(),
                _ => "bgp 100\nundo apply-label per-route pop-go".to_string(),
            };
            // Lines may fail (missing route, duplicate...): that is part of the test.
            for l in line.lines() {
                p.exec(&mut s, l);
            }
            p.exec(&mut s, "quit");
            if s.view() == View::User {
                ok(&mut p, &mut s, "system-view");
            }
        }
        let r = p.exec(&mut s, "commit");
        assert!(r.ok, "round {round}: {}", r.text);
        if r.text.contains("incremental") {
            incremental += 1;
        }
        let full = crate::ilm::build(p.running(), 0).unwrap();
        assert_eq!(crate::ilm::build::first_difference(p.current(), &full, p.running()), None);
    }
    assert!(incremental > 60, "most commits are patched ({incremental}/120)");
}

/// A config file reload goes through the incremental commit path when the change is
/// one VRP edits express, rebuilds in full otherwise, and refuses port changes.
#[test]
fn reload_is_incremental_for_edits_and_refuses_port_changes() {
    let mut p = plane(seed_without_popgo());
    let on = Config::parse(SEED).unwrap();
    let r = p.reload(on.clone()).unwrap();
    assert_eq!((r.kind, r.changes), (BuildKind::Incremental, 1), "pop-go toggled by one edit");
    assert_eq!(p.current().ilm.lookup(48122).op(), Some(IlmOp::PopGo));
    assert_eq!(crate::ilm::build::first_difference(p.current(), &crate::ilm::build(&on, 0).unwrap(), &on), None);

    let mut ttl = on.clone();
    ttl.ttl_mode = match on.ttl_mode {
        crate::config::TtlMode::Uniform => crate::config::TtlMode::Pipe,
        crate::config::TtlMode::Pipe => crate::config::TtlMode::Uniform,
    };
    assert_eq!(p.reload(ttl).unwrap().kind, BuildKind::Full, "the TTL mode is not a VRP edit");

    let mut moved = on.clone();
    moved.ports[0].iface = Some("eth9".into());
    let e = p.reload(moved).unwrap_err();
    assert!(matches!(e, CommitError::PortsChanged) && e.to_string().contains("restart"), "{e}");
    assert_eq!(p.running().ports, on.ports, "a refused reload changes nothing");
}

/// A worker that stops passing quiescent states holds every replaced snapshot: commits
/// are refused once `MAX_RETIRED` wait, and work again when it moves on.
#[test]
fn a_stalled_worker_bounds_the_retired_snapshots() {
    let mut p = plane(seed_without_popgo());
    let mut stalled = p.publisher().register_reader();
    let _ = stalled.current(); // online, and never quiescent again
    let mut s = p.new_session();
    ok(&mut p, &mut s, "system-view");
    ok(&mut p, &mut s, "bgp 100");
    let toggle = |i: usize| {
        if i.is_multiple_of(2) {
            "apply-label per-route pop-go"
        } else {
            "undo apply-label per-route pop-go"
        }
    };
    for i in 0..MAX_RETIRED {
        ok(&mut p, &mut s, toggle(i));
        ok(&mut p, &mut s, "commit");
    }
    assert_eq!(p.publisher().pending_retired(), MAX_RETIRED);
    ok(&mut p, &mut s, toggle(MAX_RETIRED));
    let e = err(&mut p, &mut s, "commit");
    assert!(e.contains("stalled"), "{e}");
    assert_eq!(p.publisher().pending_retired(), MAX_RETIRED, "bounded");
    stalled.quiescent();
    let c = ok(&mut p, &mut s, "commit");
    assert!(c.contains("commit ok"), "{c}");
    assert!(p.publisher().pending_retired() <= 1, "{}", p.publisher().pending_retired());
}

/// `| include` and `| count` run on every display; the LSP display comes back as a
/// stream that renders the snapshot of the moment it was asked for, even after a commit.
#[test]
fn display_filters_and_streamed_displays() {
    let mut p = plane(seed_without_popgo());
    let mut s = p.new_session();
    let all = ok(&mut p, &mut s, "display mpls lsp protocol bgp");
    let n = all.lines().count();
    assert_eq!(ok(&mut p, &mut s, "display mpls lsp protocol bgp | count"), format!("Total lines: {n}.\n"));
    let row = ok(&mut p, &mut s, "display mpls lsp protocol bgp | include POP$");
    assert!(row.starts_with("10.1.1.0/24 ") && row.lines().count() == 1, "{row}");
    let routes = ok(&mut p, &mut s, "display current-configuration | include ^ip route-static | count");
    assert_eq!(routes, "Total lines: 2.\n");
    let e = err(&mut p, &mut s, "display current-configuration | grep x");
    assert!(e.contains("unknown output filter"), "{e}");
    let e = err(&mut p, &mut s, "display current-configuration | include (");
    assert!(e.contains("bad regular expression"), "{e}");
    // One line (the regex crate's own text is four), saying what and where.
    let e = err(&mut p, &mut s, "display current-configuration | include x(a|");
    let e = e.trim_end();
    assert!(e.ends_with(r#"bad regular expression "x(a|": unclosed group (column 2)"#) && !e.contains('\n'), "{e}");

    let before = p.exec_stream(&mut s, "display mpls lsp protocol bgp | include ^10\\.1\\.1\\.0/24");
    assert!(before.ok && before.text.is_empty() && before.stream.is_some());
    for l in ["system-view", "bgp 100", "apply-label per-route pop-go", "commit", "return"] {
        ok(&mut p, &mut s, l);
    }
    let old = before.materialize().text;
    assert!(old.trim_end().ends_with(" POP"), "the stream shows its own snapshot: {old}");
    let now = ok(&mut p, &mut s, "display mpls lsp protocol bgp | include ^10\\.1\\.1\\.0/24");
    assert!(now.trim_end().ends_with("POPGO"), "{now}");
}

/// A streamed body goes out line by line with the protocol's dot-stuffing, then the
/// end line.
#[test]
fn streamed_replies_are_dot_stuffed() {
    let stream = Stream(Arc::new(|out: &mut dyn FnMut(&str) -> std::io::Result<()>| {
        for l in ["a", ".b", "..c"] {
            out(l)?;
        }
        Ok(())
    }));
    let r = Reply { stream: Some(stream), ..Reply::ok("tail") };
    let mut wire = Vec::new();
    server::write_reply(&mut wire, &r, "<D>").unwrap();
    assert_eq!(String::from_utf8(wire).unwrap(), "a\n..b\n...c\ntail\n.ok <D>\n");
    assert_eq!(r.materialize().text, "a\n.b\n..c\ntail");
}

/// A 100,000-route table file: the control plane starts on it, a one-route commit is
/// patched (not rebuilt), moves the label to the new adjacency and gives the tables of
/// a full build; the memory it reports stays under 300 bytes per labelled route.
#[test]
fn a_100k_route_table_file_commits_incrementally() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Vec::new();
    crate::traffic::synth::write_synth_table(&mut t, 16, 100_000, 16, false).unwrap();
    std::fs::write(dir.path().join("r.txt"), t).unwrap();
    std::fs::write(dir.path().join("c.toml"), crate::traffic::synth::synth_table_config(4, 16, false, "r.txt"))
        .unwrap();
    let cfg = Config::load(&dir.path().join("c.toml")).unwrap();
    let mut p = plane(cfg);
    let mut s = p.new_session();
    let label = 50_000;
    let adj = |p: &ControlPlane| p.current().ilm.lookup(label).adjacency();
    assert_eq!(adj(&p), (label % 16) as u16);
    let pfx = crate::traffic::synth::synth_v4_dst(label);
    for l in [
        "system-view".to_string(),
        format!("ip route-static {pfx} 32 192.168.3.1"),
        format!("undo ip route-static {pfx} 32 192.168.{}.1", label % 16),
    ] {
        ok(&mut p, &mut s, &l);
    }
    let c = ok(&mut p, &mut s, "commit");
    assert!(c.contains("incremental"), "{c}");
    assert_eq!(adj(&p), 3);
    let full = crate::ilm::build(p.running(), 0).unwrap();
    assert_eq!(crate::ilm::build::first_difference(p.current(), &full, p.running()), None);
    let st = ok(&mut p, &mut s, "display popgo statistics | include memory:");
    let per_route: usize = st.split('(').nth(1).and_then(|x| x.split_whitespace().next()).unwrap().parse().unwrap();
    assert!(per_route < 300, "{st}");
}

/// A line that matches the running config when entered is kept: if another session
/// commits a change to that part first, the line applies again at commit.
#[test]
fn a_line_matching_the_running_config_survives_another_sessions_commit() {
    let mut p = plane(seed_without_popgo());
    let route = "ip route-static 10.1.1.0 30 192.168.20.1";
    let mut a = p.new_session();
    for l in ["system-view", route] {
        ok(&mut p, &mut a, l);
    }
    assert_eq!(a.pending(), 0, "nothing to change yet");
    let mut b = p.new_session();
    for l in ["system-view", &format!("undo {route}"), "commit"] {
        ok(&mut p, &mut b, l);
    }
    let has_route = |p: &mut ControlPlane, s: &mut Session| {
        ok(p, s, "display current-configuration").contains(&format!("\n{route}\n"))
    };
    assert!(!has_route(&mut p, &mut b), "B removed the route");
    let c = ok(&mut p, &mut a, "commit");
    assert!(c.contains("commit ok"), "{c}");
    assert!(has_route(&mut p, &mut a), "A's line applied again");
    // With nothing changed in between, such a line still commits nothing.
    ok(&mut p, &mut a, route);
    assert_eq!(ok(&mut p, &mut a, "commit"), "Info: no uncommitted configuration.");
}

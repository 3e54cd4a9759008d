//! The live control plane end to end: the seed's procedure over a real Unix
//! socket, bad input and vanishing peers, socket ownership rules, and churn: thousands
//! of commits while reader threads forward frames through `qsbr::Reader`s.

use popgo::config::Config;
use popgo::control::client::{Client, WireReply};
use popgo::control::{serve, ControlError, ControlPlane};
use popgo::dataplane::{process_burst, BurstCtx, Verdict};
use popgo::ilm::{build, Snapshot};
use popgo::io::mem::MemFrame;
use popgo::io::PacketMut;
use popgo::qsbr::Publisher;
use popgo::stats::board::StatsBoard;
use popgo::stats::{DropReason, WorkerStats};
use popgo::traffic::frames::{ipv4_udp, seed_mpls};
use std::collections::HashMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

const SEED: &str = include_str!("../pcaps/seed.toml");

fn seed(pop_go: bool) -> Config {
    Config::parse(&SEED.replace("pop_go = true", &format!("pop_go = {pop_go}"))).unwrap()
}

fn plane(cfg: Config, readers: usize) -> ControlPlane {
    let snap = build(&cfg, 0).unwrap();
    ControlPlane::new(cfg, Publisher::new(Box::new(snap), readers), Arc::new(StatsBoard::new(1)))
}

struct Running {
    _dir: tempfile::TempDir,
    path: PathBuf,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<ControlPlane>>,
}

impl Running {
    fn start(cfg: Config) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/popgo.sock");
        let stop = Arc::new(AtomicBool::new(false));
        let handle = serve(Some(&path), plane(cfg, 2), Arc::clone(&stop)).unwrap();
        Running { _dir: dir, path, stop, handle: Some(handle) }
    }

    fn client(&self) -> Client {
        let (c, greeting) = Client::connect(&self.path).unwrap();
        assert!(greeting.ok && greeting.prompt == "<DeviceC>", "{greeting:?}");
        c
    }

    fn finish(mut self) -> ControlPlane {
        self.stop.store(true, Ordering::Release);
        let p = self.handle.take().unwrap().join().unwrap();
        assert!(!self.path.exists(), "socket removed on stop");
        p
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn ok(c: &mut Client, line: &str) -> WireReply {
    let r = c.send(line).unwrap();
    assert!(r.ok, "{line:?}: {}", r.text);
    r
}

fn err(c: &mut Client, line: &str) -> WireReply {
    let r = c.send(line).unwrap();
    assert!(!r.ok, "{line:?} should fail: {}", r.text);
    r
}

#[test]
fn seed_procedure_over_the_socket() {
    let run = Running::start(seed(false));
    let mode = std::fs::metadata(&run.path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "socket mode");
    let mut c = run.client();
    assert!(!ok(&mut c, "display mpls lsp protocol bgp").text.contains("POPGO"));
    // The procedure, typed as written.
    assert_eq!(ok(&mut c, "system-view").prompt, "[DeviceC]");
    assert_eq!(ok(&mut c, "bgp 100").prompt, "[DeviceC-bgp]");
    ok(&mut c, "apply-label per-route pop-go");
    // A second operator sees nothing until commit.
    let mut other = run.client();
    assert!(!ok(&mut other, "display mpls lsp protocol bgp").text.contains("POPGO"));
    let r = ok(&mut c, "commit");
    assert!(r.text.starts_with("Info: commit ok") && r.text.contains("reclaim"), "{}", r.text);
    // Verify the configuration.
    let t = ok(&mut other, "display mpls lsp protocol bgp").text;
    let row = t.lines().find(|l| l.starts_with("10.1.1.0/24")).unwrap();
    assert!(row.contains("48122/NULL") && row.contains("-/to-A") && row.ends_with("POPGO"), "{row}");
    assert!(ok(&mut other, "display mpls lsp protocol bgp verbose").text.contains("Label Operation     :  POPGO"));
    // Dot-stuffing keeps body lines intact; statistics carry the swap costs.
    let st = ok(&mut other, "display popgo statistics").text;
    assert!(st.contains("drop.no_ilm_entry") && st.contains("last full-table build"), "{st}");
    ok(&mut c, "quit");
    ok(&mut c, "quit");
    let bye = c.send("quit").unwrap();
    assert!(bye.close);
    let p = run.finish();
    assert!(p.running().bgp.as_ref().unwrap().pop_go);
    assert_eq!(p.current().ilm.lookup(48122).op(), Some(popgo::ilm::IlmOp::PopGo));
}

#[test]
fn bad_input_and_vanishing_peers_leave_the_plane_working() {
    let run = Running::start(seed(false));
    let gen0 = {
        let mut c = run.client();
        let e = err(&mut c, "frobnicate");
        assert!(e.text.starts_with("Error: line 1 (\"frobnicate\"): unrecognized command"), "{}", e.text);
        assert_eq!(e.prompt, "<DeviceC>");
        ok(&mut c, "system-view");
        err(&mut c, "network 10.1.1.0 24"); // wrong view
        ok(&mut c, "bgp 100");
        let e = err(&mut c, "network 10.1.1.0 30 label 1048576");
        assert!(e.text.contains("line 5") && e.text.contains("outside 16..=1048575"), "{}", e.text);
        err(&mut c, "network 10.1.1.0");
        err(&mut c, &"x".repeat(5000)); // too long: refused, not executed
        let e = err(&mut c, "display popgo");
        assert!(e.text.contains("line 8"), "line numbers keep counting: {}", e.text);
        // Non-UTF-8 bytes on the wire.
        let mut raw = UnixStream::connect(&run.path).unwrap();
        raw.write_all(b"system-view\n\xff\xfe\n").unwrap();
        drop(raw);
        // A peer that disconnects mid-command: the partial line is never executed.
        let mut raw = UnixStream::connect(&run.path).unwrap();
        raw.write_all(b"system-view\nbgp 100\napply-label per-route pop-go\ncomm").unwrap();
        drop(raw);
        // A peer that sends a full line and leaves without reading the reply.
        let mut raw = UnixStream::connect(&run.path).unwrap();
        raw.write_all(b"display current-configuration\n").unwrap();
        drop(raw);
        ok(&mut c, "quit");
        ok(&mut c, "display popgo statistics").text.lines().find(|l| l.contains("generation")).unwrap().to_string()
    };
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut c = run.client();
    let st = ok(&mut c, "display popgo statistics").text;
    let gen_line = st.lines().find(|l| l.contains("generation")).unwrap();
    assert_eq!(gen_line, gen0, "nothing was committed by the vanished peers");
    assert!(!ok(&mut c, "display current-configuration").text.contains("pop-go"));
    // And it still commits.
    for l in ["system-view", "bgp 100", "apply-label per-route pop-go", "commit"] {
        ok(&mut c, l);
    }
    assert!(ok(&mut c, "display mpls lsp protocol bgp").text.contains("POPGO"));
    run.finish();
}

#[test]
fn socket_ownership_live_instance_and_stale_file() {
    let run = Running::start(seed(true));
    let again = serve(Some(&run.path), plane(seed(true), 1), Arc::new(AtomicBool::new(false)));
    assert!(matches!(again, Err(ControlError::InUse { .. })), "a live instance holds the path");
    run.client(); // the first instance is unaffected
    drop(run);

    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap()); // leaves the file behind
    assert!(stale.exists());
    let stop = Arc::new(AtomicBool::new(false));
    let h = serve(Some(&stale), plane(seed(true), 1), Arc::clone(&stop)).expect("stale socket replaced");
    let (_, g) = Client::connect(&stale).unwrap();
    assert!(g.ok);
    stop.store(true, Ordering::Release);
    h.join().unwrap();

    let not_socket = dir.path().join("file");
    std::fs::write(&not_socket, "keep me").unwrap();
    let r = serve(Some(&not_socket), plane(seed(true), 1), Arc::new(AtomicBool::new(false)));
    assert!(matches!(r, Err(ControlError::NotASocket { .. })));
    assert_eq!(std::fs::read_to_string(&not_socket).unwrap(), "keep me");
}

/// The forwarding state a generation must show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct State {
    /// 10.1.1.0/24 routed via DeviceB (port 1) instead of DeviceA (port 0).
    via_b: bool,
    /// Network 10.2.0.0/16 with label 5000 imported.
    net2: bool,
    pop_go: bool,
}

impl State {
    /// Verdicts of FRAMES under this state.
    fn expect(self) -> [Verdict; 3] {
        let slash24 = if self.via_b { 1 } else { 0 };
        [
            // 48122 -> 10.1.1.1: POPGO follows the /24; POP finds the /30 via DeviceB.
            Verdict::Forward(if self.pop_go { slash24 } else { 1 }),
            // 5000 -> 10.2.0.1: via DeviceA either way, or no label.
            if self.net2 { Verdict::Forward(0) } else { Verdict::Drop(DropReason::NoIlmEntry) },
            // 48122 -> 10.1.1.5: outside the /30, so the /24 decides both ways.
            Verdict::Forward(slash24),
        ]
    }
}

fn frames() -> [Vec<u8>; 3] {
    let src = Ipv4Addr::new(172, 16, 0, 1);
    [
        seed_mpls(&[(48122, 64)], &ipv4_udp(src, Ipv4Addr::new(10, 1, 1, 1), 64, 46)),
        seed_mpls(&[(5000, 64)], &ipv4_udp(src, Ipv4Addr::new(10, 2, 0, 1), 64, 46)),
        seed_mpls(&[(48122, 64)], &ipv4_udp(src, Ipv4Addr::new(10, 1, 1, 5), 64, 46)),
    ]
}

fn exec_all(p: &mut ControlPlane, s: &mut popgo::control::Session, lines: &[&str]) {
    for l in lines {
        let r = p.exec(s, l);
        assert!(r.ok, "{l}: {}", r.text);
    }
}

/// Readers forward FRAMES through `qsbr::Reader`s while the control thread commits
/// COMMITS times: route flips between two ports, a network added and removed, pop-go
/// toggled. Every burst's verdicts must match the state of the generation it read;
/// a burst that starts after a commit returned must read that generation or a newer
/// one; rx = tx + drops.
#[test]
fn churn_thousands_of_commits_under_traffic() {
    const COMMITS: usize = 3000;
    const READERS: usize = 2;
    let mut p = plane(seed(true), READERS);
    let mut s = p.new_session();
    exec_all(&mut p, &mut s, &["system-view", "ip route-static 10.2.0.0 16 192.168.10.1", "commit"]);
    let mut st = State { via_b: false, net2: false, pop_go: true };
    let expected: Arc<Mutex<HashMap<u64, State>>> = Arc::new(Mutex::new(HashMap::new()));
    expected.lock().unwrap().insert(p.current().generation, st);
    let committed = Arc::new(AtomicU64::new(p.current().generation));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let mut reader = p.publisher().register_reader();
            let (committed, stop) = (Arc::clone(&committed), Arc::clone(&stop));
            std::thread::spawn(move || {
                let templates = frames();
                let mut ring: Vec<MemFrame> = vec![MemFrame::default(); 3];
                let mut verdicts = [Verdict::default(); 3];
                let mut ctx = BurstCtx::new();
                let mut stats = WorkerStats::default();
                let mut seen: HashMap<u64, [Verdict; 3]> = HashMap::new();
                let mut last_gen = 0;
                while !stop.load(Ordering::Acquire) {
                    let done = committed.load(Ordering::Acquire);
                    reader.quiescent();
                    let snap: &Snapshot = reader.current();
                    let gen = snap.generation;
                    assert!(gen >= done, "burst after commit {done} returned read generation {gen}");
                    assert!(gen >= last_gen, "generations never go back");
                    last_gen = gen;
                    for (f, t) in ring.iter_mut().zip(&templates) {
                        assert!(f.load(0, t));
                    }
                    process_burst(snap, &mut ring, &mut verdicts, &mut ctx, &mut stats);
                    for (f, v) in ring.iter().zip(&verdicts) {
                        if let Verdict::Forward(port) = v {
                            stats.count_tx(*port as usize, f.data().len());
                        }
                    }
                    assert_eq!(snap.generation, gen, "snapshot unchanged while in use");
                    let prev = seen.insert(gen, verdicts);
                    assert!(prev.is_none_or(|p| p == verdicts), "one generation, one mapping");
                }
                reader.offline();
                (stats, seen)
            })
        })
        .collect();

    for i in 0..COMMITS {
        match i % 3 {
            0 => {
                let (to, from) =
                    if st.via_b { ("192.168.10.1", "192.168.20.1") } else { ("192.168.20.1", "192.168.10.1") };
                let add = format!("ip route-static 10.1.1.0 24 {to}");
                let del = format!("undo ip route-static 10.1.1.0 24 {from}");
                exec_all(&mut p, &mut s, &[&add, &del, "commit"]);
                st.via_b = !st.via_b;
            }
            1 => {
                let l = if st.net2 { "undo network 10.2.0.0 16" } else { "network 10.2.0.0 16 label 5000" };
                exec_all(&mut p, &mut s, &["bgp 100", l, "commit", "quit"]);
                st.net2 = !st.net2;
            }
            _ => {
                let l = if st.pop_go { "undo apply-label per-route pop-go" } else { "apply-label per-route pop-go" };
                exec_all(&mut p, &mut s, &["bgp 100", l, "commit", "quit"]);
                st.pop_go = !st.pop_go;
            }
        }
        let gen = p.current().generation;
        expected.lock().unwrap().insert(gen, st);
        committed.store(gen, Ordering::Release);
        if i % 200 == 0 {
            std::thread::yield_now();
        }
    }
    stop.store(true, Ordering::Release);
    let expected = expected.lock().unwrap();
    let mut total = WorkerStats::default();
    let mut gens_checked = 0;
    for r in readers {
        let (stats, seen) = r.join().expect("reader panicked");
        assert!(stats.balanced(), "rx = tx + drops");
        total.merge(&stats);
        for (gen, v) in seen {
            let state = expected.get(&gen).unwrap_or_else(|| panic!("generation {gen} was never committed"));
            assert_eq!(v, state.expect(), "generation {gen} in state {state:?}");
            gens_checked += 1;
        }
    }
    assert!(total.rx_pkts > 0 && total.balanced());
    assert!(gens_checked > 10, "readers saw many generations ({gens_checked})");
    let cs = p.stats();
    assert_eq!(cs.commits as usize, COMMITS + 2, "start-up + setup + churn");
    assert!(cs.incremental as usize >= COMMITS, "every churn commit is patched ({})", cs.incremental);
    // Everything retired is freed once readers are offline.
    p.tick();
    assert_eq!(p.publisher().pending_retired(), 0);
}

fn setpriv_available(test: &str) -> bool {
    if popgo::sys::rlimit::euid() != 0 {
        popgo::testkit::skip(test, "needs root");
        return false;
    }
    popgo::testkit::have_tool(test, "setpriv", "--version")
}

/// `popgo` run as nobody (uid 65534).
fn as_nobody(args: &[&str]) -> std::process::Output {
    std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", env!("CARGO_BIN_EXE_popgo")])
        .args(args)
        .output()
        .unwrap()
}

/// Only a refused connection (ECONNREFUSED) makes a socket file stale: a socket that
/// this user may not connect to is left alone, even where the directory would let it
/// be removed.
#[test]
fn a_socket_we_may_not_connect_to_is_not_removed() {
    if !setpriv_available("a_socket_we_may_not_connect_to_is_not_removed") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let path = dir.path().join("ctl.sock");
    let run_stop = Arc::new(AtomicBool::new(false));
    let h = serve(Some(&path), plane(seed(true), 1), Arc::clone(&run_stop)).unwrap();
    let cfg = dir.path().join("seed.toml");
    std::fs::write(&cfg, SEED).unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let pcap = dir.path().join("seed.pcap");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/seed.pcap"), &pcap).unwrap();
    std::fs::set_permissions(&pcap, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = as_nobody(&[
        "replay",
        "--config",
        cfg.to_str().unwrap(),
        "--control",
        path.to_str().unwrap(),
        pcap.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("probing the existing socket"), "{err}");
    assert!(path.exists(), "the live socket of another user is still there");
    let (_, g) = Client::connect(&path).unwrap();
    assert!(g.ok && !g.close, "and still served: {g:?}");
    run_stop.store(true, Ordering::Release);
    h.join().unwrap();
}

/// A peer that is neither root nor popgo's own user is refused, even if the socket's
/// mode was opened up.
#[test]
fn other_users_are_refused_by_peer_credentials() {
    if !setpriv_available("other_users_are_refused_by_peer_credentials") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("ctl.sock");
    let stop = Arc::new(AtomicBool::new(false));
    let h = serve(Some(&path), plane(seed(true), 1), Arc::clone(&stop)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let o = as_nobody(&["ctl", "--socket", path.to_str().unwrap(), "display current-configuration"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("uid 65534 may not use this control socket"), "{err}");
    assert!(o.stdout.is_empty(), "nothing was served: {}", String::from_utf8_lossy(&o.stdout));
    stop.store(true, Ordering::Release);
    h.join().unwrap();
}

/// Connections beyond the limit are told so and closed; idle ones are closed after the
/// idle timeout.
#[test]
fn connections_are_limited_and_idle_ones_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ctl.sock");
    let stop = Arc::new(AtomicBool::new(false));
    let limits = popgo::control::Limits { max_connections: 2, idle_timeout: std::time::Duration::from_millis(400) };
    let h = popgo::control::serve_with(Some(&path), plane(seed(true), 1), Arc::clone(&stop), limits).unwrap();
    let (mut a, ga) = Client::connect(&path).unwrap();
    let (_b, gb) = Client::connect(&path).unwrap();
    assert!(!ga.close && !gb.close);
    let (_, gc) = Client::connect(&path).unwrap();
    assert!(gc.close && gc.text.contains("2 connections already"), "{gc:?}");
    ok(&mut a, "display current-configuration");
    std::thread::sleep(std::time::Duration::from_millis(800));
    let r = a.read_reply().unwrap();
    assert!(r.close && r.text.contains("no command for"), "{r:?}");
    // Both idle sessions are gone: a new connection is served.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let (_, gd) = Client::connect(&path).unwrap();
    assert!(!gd.close, "{gd:?}");
    stop.store(true, Ordering::Release);
    h.join().unwrap();
}

/// At exit the socket path is removed only if it is still this instance's socket.
#[test]
fn exit_leaves_a_socket_that_is_not_ours() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ctl.sock");
    let stop = Arc::new(AtomicBool::new(false));
    let h = serve(Some(&path), plane(seed(true), 1), Arc::clone(&stop)).unwrap();
    std::fs::remove_file(&path).unwrap();
    let other = UnixListener::bind(&path).unwrap();
    stop.store(true, Ordering::Release);
    h.join().unwrap();
    assert!(path.exists(), "another listener's socket was removed");
    drop(other);
}

/// Threads of this process named like the BGP speaker's manager.
fn speaker_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|c| c.trim_end() == "popgo-bgp")
        .count()
}

/// With BGP enabled but no peer configured, no speaker thread runs; the commit that
/// adds the first peer starts it (and the peer shows in its status).
#[test]
fn the_speaker_starts_with_the_first_peer() {
    // popgo's connections to the peer go to a loopback port nothing listens on.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let mut p = plane(seed(true), 1);
    p.enable_bgp(popgo::bgp::Options { connect_port: port, listen_port: None, ..Default::default() });
    assert!(!p.speaker_running());
    assert_eq!(speaker_threads(), 0, "a speaker thread without a peer");
    let mut s = p.new_session();
    exec_all(&mut p, &mut s, &["system-view", "bgp 100", "undo apply-label per-route pop-go", "commit"]);
    assert_eq!(speaker_threads(), 0, "a commit without a peer started the speaker");
    exec_all(&mut p, &mut s, &["peer 127.0.0.1 as-number 65002", "commit"]);
    assert!(p.speaker_running());
    // A thread names itself once it runs: wait for that.
    let st = p.bgp_status().unwrap();
    let t = std::time::Instant::now();
    while st.peers().is_empty() || speaker_threads() == 0 {
        assert!(t.elapsed().as_secs() < 5, "no speaker thread, or the peer never showed in the status");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(speaker_threads(), 1);
    drop(p);
    assert_eq!(speaker_threads(), 0, "the speaker stops with the plane");
}

//! Hostile and careless input end to end: every command ends in bounded time with one
//! error line naming its source (exit 2), or does what it says.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_popgo"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running popgo");
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("popgo {args:?} still running after {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
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
        let o = popgo_within(20, &["replay", "--config", &seed("seed.toml"), &arg, &seed("seed.pcap")]);
        let e = error_line(&o);
        assert!(e.contains(&format!("{opt} ")) && e.contains("want 0 (no interval lines) or seconds in 0.02.."), "{e}");
    }
    // 0: no interval lines, as with run --stats-interval 0.
    let o = popgo_within(20, &["replay", "--config", &seed("seed.toml"), "--stats", "0", &seed("seed.pcap")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("rx = tx + drops"));
    let o = popgo_within(20, &["run", "--config", &seed("seed.toml"), "--stats-interval", "1e-10"]);
    let e = error_line(&o);
    assert!(e.contains("--stats-interval 0.0000000001: want 0"), "{e}");
}

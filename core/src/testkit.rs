//! Test support shared by the unit and integration tests: a test that cannot run its
//! check is never a silent pass.

/// Records that `test` could not run (part of) its check because `why`.
///
/// Under `CI=true` this fails the test: CI installs every tool and runs as root, so a
/// skip there is a broken setup. Elsewhere it prints a note and appends one line to the
/// file named by `POPGO_SKIP_LOG`, which `tools/test.sh` counts as skipped in its
/// closing line.
pub fn skip(test: &str, why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: {why} (CI=true: every test must run)");
    }
    eprintln!("note: {test} skipped: {why}");
    if let Ok(path) = std::env::var("POPGO_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            // One write of one line: appends from parallel tests do not interleave.
            let _ = f.write_all(format!("{test}: {why}\n").as_bytes());
        }
    }
}

/// True when `tool` can be run (`tool arg` starts); otherwise records a skip of `test`.
pub fn have_tool(test: &str, tool: &str, arg: &str) -> bool {
    let ok = std::process::Command::new(tool).arg(arg).output().is_ok();
    if !ok {
        skip(test, &format!("{tool} is not installed"));
    }
    ok
}

/// A tiny deterministic generator (xorshift64) for tests that must be repeatable:
/// `Rng(seed)` with a non-zero seed.
pub struct Rng(pub u64);

impl Rng {
    #[allow(clippy::should_implement_trait)] // not an iterator: it never ends
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// In `0..n` (n > 0; slightly biased, which tests do not mind).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// One element of `v` (not empty).
    pub fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len() as u64) as usize]
    }
}

//! Build provenance for `popgo --version` and `popgo bench`'s `popgo` record: the git
//! commit and dirty flag of the source tree, the cargo profile, rustc's version, the
//! enabled features and the target (triple, CPU, target features).
//!
//! `git` is asked when it is installed and the sources are a checkout; otherwise (a
//! tarball, no git) the commit is "unknown", or `POPGO_BUILD_COMMIT` when that is set
//! (for packagers who know it). Never fails the build.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

/// The profile directory name (`release`, `debug`, `bench`'s `release`, a custom
/// profile's own name) from OUT_DIR = <target>/<profile>/build/<pkg>-<hash>/out,
/// falling back to cargo's PROFILE (which only says `release` or `debug`).
fn profile_name() -> String {
    let out = PathBuf::from(env("OUT_DIR"));
    let from_dir = out.ancestors().nth(3).and_then(|p| p.file_name()).map(|s| s.to_string_lossy().into_owned());
    match from_dir {
        // A cross build has <target>/<triple>/<profile>/build/...: the same position.
        Some(p) if !p.is_empty() && p != "build" => p,
        _ => env("PROFILE"),
    }
}

/// `-C target-cpu=X` from the encoded RUSTFLAGS, or "default" (rustc's baseline CPU
/// for the target, e.g. x86-64).
fn target_cpu() -> String {
    let flags = env("CARGO_ENCODED_RUSTFLAGS");
    let args: Vec<&str> = flags.split('\x1f').collect();
    let mut cpu = None;
    for (i, a) in args.iter().enumerate() {
        let opt = if *a == "-C" { args.get(i + 1).copied().unwrap_or("") } else { a.strip_prefix("-C").unwrap_or("") };
        if let Some(v) = opt.strip_prefix("target-cpu=") {
            cpu = Some(v.to_string());
        }
    }
    cpu.unwrap_or_else(|| "default".into())
}

fn main() {
    let dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    println!("cargo:rerun-if-env-changed=POPGO_BUILD_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    // The dirty flag must follow edits to the sources, not only commits.
    for p in ["src", "core", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={p}");
    }
    let (commit, dirty) = match git(&dir, &["rev-parse", "--short=12", "HEAD"]) {
        Some(head) => {
            // HEAD, the branch it names, packed refs and the index: a commit, checkout
            // or staging reruns this script.
            let mut watch = vec!["HEAD".to_string(), "index".into(), "packed-refs".into()];
            if let Some(r) = git(&dir, &["symbolic-ref", "-q", "HEAD"]) {
                watch.push(r);
            }
            for w in watch {
                if let Some(p) = git(&dir, &["rev-parse", "--git-path", &w]) {
                    let p = if Path::new(&p).is_absolute() { PathBuf::from(p) } else { dir.join(p) };
                    if p.exists() {
                        println!("cargo:rerun-if-changed={}", p.display());
                    }
                }
            }
            let dirty = git(&dir, &["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            (head, dirty)
        }
        None => match std::env::var("POPGO_BUILD_COMMIT") {
            Ok(c) if !c.trim().is_empty() => (c.trim().to_string(), false),
            _ => ("unknown".to_string(), false),
        },
    };
    let described = if dirty { format!("{commit}-dirty") } else { commit.clone() };
    let rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let mut features: Vec<String> = std::env::vars()
        .filter_map(|(k, _)| k.strip_prefix("CARGO_FEATURE_").map(|f| f.to_lowercase().replace('_', "-")))
        .collect();
    features.sort();
    let set = |k: &str, v: &str| println!("cargo:rustc-env={k}={v}");
    set("POPGO_GIT_COMMIT", &commit);
    set("POPGO_GIT_DIRTY", if dirty { "1" } else { "0" });
    set("POPGO_GIT_DESCRIBED", &described);
    set("POPGO_BUILD_PROFILE", &profile_name());
    set("POPGO_OPT_LEVEL", &env("OPT_LEVEL"));
    set("POPGO_RUSTC", &rustc);
    set("POPGO_FEATURES", &features.join(","));
    set("POPGO_TARGET", &env("TARGET"));
    set("POPGO_TARGET_CPU", &target_cpu());
    set("POPGO_TARGET_FEATURES", &env("CARGO_CFG_TARGET_FEATURE"));
}

//! Where a measurement was taken: CPU model, kernel, frequency governor, and which
//! popgo (version and git commit). Read once per `popgo bench` run, never timed.

use serde::{Deserialize, Serialize};
use std::path::Path;
use std::process::Command;

/// The machine a bench ran on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// `model name` from /proc/cpuinfo (or the closest field on other architectures).
    pub cpu_model: String,
    /// Logical CPUs available to this process.
    pub logical_cpus: usize,
    /// `uname -r` (/proc/sys/kernel/osrelease).
    pub kernel: String,
    /// cpufreq governor of cpu0 (`performance`, `powersave`, ...), "unknown" if none.
    pub governor: String,
    pub arch: String,
    pub os: String,
}

/// The popgo build that measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Build {
    pub version: String,
    /// `git rev-parse --short=12 HEAD` of the source tree, with `-dirty` when tracked
    /// files differ from it; "unknown" outside a git checkout (e.g. a tarball).
    pub git_commit: String,
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// The CPU model line of a /proc/cpuinfo text.
pub fn cpu_model_from(cpuinfo: &str) -> Option<String> {
    ["model name", "Model", "Hardware", "cpu model", "uarch"].iter().find_map(|key| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == *key && !v.trim().is_empty()).then(|| v.trim().to_string())
        })
    })
}

impl Machine {
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Machine {
            cpu_model: cpu_model_from(&cpuinfo).unwrap_or_else(|| "unknown".into()),
            logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: read_trim("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into()),
            governor: read_trim("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
                .unwrap_or_else(|| "unknown".into()),
            arch: std::env::consts::ARCH.into(),
            os: std::env::consts::OS.into(),
        }
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Build {
    /// This binary's version and the commit of its source tree, asked of `git` at run
    /// time (the source directory recorded at build time, then the current directory).
    /// Never fails: without git or outside a checkout the commit is "unknown".
    pub fn detect() -> Build {
        let dirs = [Path::new(env!("CARGO_MANIFEST_DIR")), Path::new(".")];
        let commit = dirs.iter().filter(|d| d.is_dir()).find_map(|d| {
            let head = git(d, &["rev-parse", "--short=12", "HEAD"])?;
            let dirty = git(d, &["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            Some(if dirty { format!("{head}-dirty") } else { head })
        });
        Build { version: env!("CARGO_PKG_VERSION").into(), git_commit: commit.unwrap_or_else(|| "unknown".into()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_model_lines() {
        let x86 = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n";
        assert_eq!(cpu_model_from(x86).as_deref(), Some("Intel(R) Xeon(R) CPU @ 2.20GHz"));
        assert_eq!(cpu_model_from("Hardware\t: BCM2835\n").as_deref(), Some("BCM2835"));
        assert_eq!(cpu_model_from("processor : 0\n"), None);
        let m = Machine::detect();
        assert!(m.logical_cpus >= 1);
        assert!(!Build::detect().git_commit.is_empty());
    }
}

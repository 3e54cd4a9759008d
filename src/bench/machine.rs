//! Where a measurement was taken: CPU model, kernel, frequency governor, and which
//! popgo build (version, commit, profile, compiler, features, target; recorded by
//! build.rs). Read once per `popgo bench` run, never timed.

use serde::{Deserialize, Serialize};

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

/// `popgo --version`: the version, the commit of the sources it was built from and the
/// cargo profile, all recorded at build time (build.rs).
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("POPGO_GIT_DESCRIBED"),
    ", ",
    env!("POPGO_BUILD_PROFILE"),
    " build, ",
    env!("POPGO_RUSTC"),
    ")"
);

/// The popgo build that measured, as recorded by build.rs when it was compiled (not
/// asked of the source tree at run time: a copied or older binary reports its own).
/// Fields added after the first `popgo.bench/1` files default when a baseline lacks them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Build {
    pub version: String,
    /// `git rev-parse --short=12 HEAD` of the sources at build time, with `-dirty` when
    /// tracked files differed from it; "unknown" outside a git checkout (e.g. a tarball).
    pub git_commit: String,
    /// Whether tracked files differed from the commit at build time.
    #[serde(default)]
    pub git_dirty: bool,
    /// Cargo profile directory: "release", "debug", or a custom profile's name.
    #[serde(default)]
    pub profile: String,
    /// Optimisation level (0-3, s, z).
    #[serde(default)]
    pub opt_level: String,
    /// Whether debug assertions were compiled in (true for debug builds).
    #[serde(default)]
    pub debug_assertions: bool,
    /// `rustc --version` of the compiler that built it.
    #[serde(default)]
    pub rustc: String,
    /// Enabled cargo features of the popgo crate (e.g. `slow-hot-path`).
    #[serde(default)]
    pub features: Vec<String>,
    /// Target triple.
    #[serde(default)]
    pub target: String,
    /// `-C target-cpu` (or "default": rustc's baseline CPU for the target).
    #[serde(default)]
    pub target_cpu: String,
    /// Enabled target features (`cfg(target_feature)`), comma-separated.
    #[serde(default)]
    pub target_features: String,
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

impl Build {
    /// This binary's build record (build.rs). Never fails: without git the commit is
    /// "unknown".
    pub fn detect() -> Build {
        let features = env!("POPGO_FEATURES");
        Build {
            version: env!("CARGO_PKG_VERSION").into(),
            git_commit: env!("POPGO_GIT_DESCRIBED").into(),
            git_dirty: env!("POPGO_GIT_DIRTY") == "1",
            profile: env!("POPGO_BUILD_PROFILE").into(),
            opt_level: env!("POPGO_OPT_LEVEL").into(),
            debug_assertions: cfg!(debug_assertions),
            rustc: env!("POPGO_RUSTC").into(),
            features: features.split(',').filter(|f| !f.is_empty()).map(String::from).collect(),
            target: env!("POPGO_TARGET").into(),
            target_cpu: env!("POPGO_TARGET_CPU").into(),
            target_features: env!("POPGO_TARGET_FEATURES").into(),
        }
    }

    /// Whether numbers from this build mean little (no optimisation or debug assertions).
    pub fn is_debug(&self) -> bool {
        self.debug_assertions || self.opt_level == "0"
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
        let b = Build::detect();
        assert!(!b.profile.is_empty() && b.rustc.starts_with("rustc "), "{b:?}");
        assert_eq!(b.is_debug(), cfg!(debug_assertions), "{b:?}");
        assert!(VERSION_LINE.contains(&format!("(git {}, ", b.git_commit)), "{VERSION_LINE}");
    }

    /// The recorded commit is the checkout's HEAD (build.rs reruns when HEAD moves, so
    /// a test binary is never older than the commit it runs at), with `-dirty` exactly
    /// when the dirty flag is set; "unknown" (or the packager's `POPGO_BUILD_COMMIT`)
    /// only when the sources are not a git checkout or git is missing.
    #[test]
    fn commit_is_the_checkouts_head() {
        let b = Build::detect();
        let commit = env!("POPGO_GIT_COMMIT");
        let suffix = if b.git_dirty { "-dirty" } else { "" };
        assert_eq!(b.git_commit, format!("{commit}{suffix}"), "{b:?}");
        let head = std::process::Command::new("git")
            .arg("-C")
            .arg(env!("CARGO_MANIFEST_DIR"))
            .args(["rev-parse", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        match head {
            Some(head) => {
                assert_eq!(commit.len(), 12, "a 12-digit abbreviation: {commit:?}");
                assert!(head.starts_with(commit), "built from {commit:?}, HEAD is {head}");
            }
            None => {
                let packaged = std::env::var("POPGO_BUILD_COMMIT").unwrap_or_default();
                let want = if packaged.trim().is_empty() { "unknown" } else { packaged.trim() };
                assert_eq!(commit, want, "no git checkout here");
                assert!(!b.git_dirty);
            }
        }
    }
}

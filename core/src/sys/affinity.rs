//! Core pinning for workers.

/// Highest core number a list may name: Linux's CPU set holds cores `0..1024`.
pub const MAX_CORE: usize = 1023;

/// Parses a core list such as `0,2-3`. Errors name the bad item. Core numbers above
/// [`MAX_CORE`] are refused before anything is allocated for them.
pub fn parse_core_list(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
        let bad = || format!("{item:?} is not a core number or range (e.g. 0,2-3)");
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b {
                    return Err(bad());
                }
                if b > MAX_CORE {
                    return Err(format!("{item:?}: core numbers go up to {MAX_CORE}"));
                }
                out.extend(a..=b);
            }
            None => {
                let c: usize = item.parse().map_err(|_| bad())?;
                if c > MAX_CORE {
                    return Err(format!("{item:?}: core numbers go up to {MAX_CORE}"));
                }
                out.push(c);
            }
        }
        if out.len() > MAX_CORE + 1 {
            return Err(format!("more than {} cores listed", MAX_CORE + 1));
        }
    }
    if out.is_empty() {
        return Err("empty core list".into());
    }
    Ok(out)
}

/// Checks that every core exists on this machine.
pub fn check_cores(cores: &[usize]) -> Result<(), String> {
    let ids = core_affinity::get_core_ids().unwrap_or_default();
    for c in cores {
        if !ids.iter().any(|id| id.id == *c) {
            return Err(format!("core {c} does not exist or is not available (have {})", ids.len()));
        }
    }
    Ok(())
}

/// Pins the calling thread to `core`. Returns false when the OS refused.
pub fn pin_current(core: usize) -> bool {
    core_affinity::set_for_current(core_affinity::CoreId { id: core })
}

/// A core for the control thread: the lowest-numbered core that no worker is pinned to,
/// or None when the workers take them all (then it floats as before). A control thread
/// that the scheduler puts on a worker's core time-slices with it: a commit then waits
/// a scheduler tick (milliseconds) for the descheduled worker's quiescent state.
pub fn control_core(worker_cores: &[usize]) -> Option<usize> {
    if worker_cores.is_empty() {
        return None;
    }
    let avail = core_affinity::get_core_ids().map_or(1, |v| v.len()).max(1);
    (0..avail).find(|c| !worker_cores.contains(c))
}

/// Default placement for `n` workers: the highest-numbered cores first, so that core 0
/// (where interrupts and the shell usually run) is used last.
pub fn default_cores(n: usize) -> Vec<usize> {
    let avail = core_affinity::get_core_ids().map_or(1, |v| v.len()).max(1);
    (0..n).map(|i| avail - 1 - (i % avail)).collect()
}

/// The warning for `workers` poll-mode workers placed on `cores` (`cores[w % len]`)
/// when two of them share a core: they would time-slice, each spinning through the
/// other's scheduler ticks. `None` when every worker has a core of its own.
pub fn shared_core_warning(workers: usize, cores: &[usize]) -> Option<String> {
    if cores.is_empty() {
        return None;
    }
    let placed: Vec<usize> = (0..workers).map(|w| cores[w % cores.len()]).collect();
    for (w, c) in placed.iter().enumerate() {
        if let Some(first) = placed[..w].iter().position(|d| d == c) {
            let avail = core_affinity::get_core_ids().map_or(1, |v| v.len()).max(1);
            return Some(format!(
                "workers {first} and {w} share core {c} ({workers} workers on {} distinct core(s), {avail} available): \
                 poll-mode workers on one core time-slice and each stalls for the other's scheduler ticks; give \
                 each worker its own core (--cores) or use fewer workers",
                {
                    let mut d = placed.clone();
                    d.sort_unstable();
                    d.dedup();
                    d.len()
                }
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_lists() {
        assert_eq!(parse_core_list("0,2-3").unwrap(), [0, 2, 3]);
        assert_eq!(parse_core_list(" 1 ").unwrap(), [1]);
        assert!(parse_core_list("3-1").is_err());
        assert!(parse_core_list("a").is_err());
        assert!(parse_core_list("").is_err());
        assert!(check_cores(&[100_000]).is_err());
        // Huge ranges are refused before allocating (they used to overflow capacity).
        let e = parse_core_list("0-18446744073709551615").unwrap_err();
        assert!(e.contains("go up to 1023"), "{e}");
        assert!(parse_core_list("0-100000000").is_err());
        assert!(parse_core_list("1024").is_err());
        assert!(parse_core_list(&"0-1023,".repeat(3)).is_err(), "repeated ranges are bounded too");
        assert_eq!(parse_core_list("0-1023").unwrap().len(), 1024);
        assert_eq!(default_cores(1).len(), 1);
    }

    #[test]
    fn workers_sharing_a_core_are_named() {
        assert_eq!(shared_core_warning(2, &[0, 1]), None);
        assert_eq!(shared_core_warning(1, &[1, 1]), None);
        let w = shared_core_warning(2, &[1, 1]).unwrap();
        assert!(w.starts_with("workers 0 and 1 share core 1 (2 workers on 1 distinct core(s)"), "{w}");
        let w = shared_core_warning(3, &[1, 0]).unwrap();
        assert!(w.starts_with("workers 0 and 2 share core 1"), "{w}");
    }
}

//! Core pinning for workers.

/// Parses a core list such as `0,2-3`. Errors name the bad item.
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
                out.extend(a..=b);
            }
            None => out.push(item.parse().map_err(|_| bad())?),
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

/// Default placement for `n` workers: the highest-numbered cores first, so that core 0
/// (where interrupts and the shell usually run) is used last.
pub fn default_cores(n: usize) -> Vec<usize> {
    let avail = core_affinity::get_core_ids().map_or(1, |v| v.len()).max(1);
    (0..n).map(|i| avail - 1 - (i % avail)).collect()
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
        assert_eq!(default_cores(1).len(), 1);
    }
}

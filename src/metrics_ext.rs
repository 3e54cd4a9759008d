//! Series of the metrics endpoint that are not plain counters of the stats board: the
//! burst-latency histogram (Prometheus histogram, seconds), the process metrics every
//! Prometheus exporter serves (`process_*`, read from `/proc/self`), and the per-LSP top
//! talkers. Each returns finished metric families for `metrics::render` to encode.
//!
//! Runs on the scrape thread only: reads what the workers already publish (the board,
//! the per-LSP counters) and the process's own `/proc` files, never the data path.

use crate::stats::board::StatsBoard;
use crate::stats::latency::{lat_bucket_le_ns, LAT_BUCKETS};
use crate::stats::WorkerStats;
use prometheus::proto::{Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType};

/// `USER_HZ`: the unit of the CPU times in `/proc/<pid>/stat` (proc(5)); the kernel
/// fixes it at 100 for user space on every architecture Linux supports.
const USER_HZ: f64 = 100.0;

fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_string());
    f.set_help(help.to_string());
    f.set_field_type(kind);
    f.set_metric(metrics);
    f
}

fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(k, v)| {
            let mut l = LabelPair::default();
            l.set_name(k.to_string());
            l.set_value(v.to_string());
            l
        })
        .collect()
}

/// One gauge or counter sample with `pairs` as its labels.
fn sample(kind: MetricType, pairs: &[(&str, &str)], v: f64) -> Metric {
    let mut m = Metric::default();
    m.set_label(labels(pairs));
    if kind == MetricType::COUNTER {
        let mut c = Counter::default();
        c.set_value(v);
        m.set_counter(c);
    } else {
        let mut g = Gauge::default();
        g.set_value(v);
        m.set_gauge(g);
    }
    m
}

/// `popgo_burst_latency_seconds`: the histogram of burst durations over all workers
/// (from the RX burst to the end of the TX housekeeping), in the live buckets the
/// workers publish with their counters ([`crate::stats::latency::lat_bucket`]).
pub fn burst_latency(board: &StatsBoard) -> MetricFamily {
    let mut t = WorkerStats::default();
    for w in 0..board.workers() {
        t.merge(&board.read(w));
    }
    let mut h = Histogram::default();
    let mut cumulative = 0;
    let mut buckets = Vec::with_capacity(LAT_BUCKETS);
    for (i, n) in t.lat_buckets.iter().enumerate() {
        cumulative += n;
        // The last bucket is the +Inf one, which the encoder adds from the count.
        if let Some(le) = lat_bucket_le_ns(i) {
            let mut b = Bucket::default();
            b.set_upper_bound(le as f64 / 1e9);
            b.set_cumulative_count(cumulative);
            buckets.push(b);
        }
    }
    h.set_bucket(buckets);
    h.set_sample_count(cumulative);
    h.set_sample_sum(t.lat_sum_ns as f64 / 1e9);
    let mut m = Metric::default();
    m.set_histogram(h);
    family(
        "popgo_burst_latency_seconds",
        "Burst duration over all workers, from the RX burst to the end of the TX housekeeping",
        MetricType::HISTOGRAM,
        vec![m],
    )
}

/// `popgo_lsp_packets_total` and `popgo_lsp_bytes_total` by `label`: the `n` labels that
/// forwarded the most packets, and `label="other"` for all the others (always served, so
/// the sum over `label` is every packet the workers forwarded). A label that leaves the
/// top `n` moves its counts to "other", which then looks like a counter reset to
/// Prometheus: `rate()` over `other` is approximate, the top labels' rates are exact.
pub fn lsps(board: &StatsBoard, n: usize) -> Vec<MetricFamily> {
    let (top, other) = crate::stats::lsp::top_of(board.lsp_counts(), n);
    let mut pkts = Vec::with_capacity(top.len() + 1);
    let mut bytes = Vec::with_capacity(top.len() + 1);
    for c in &top {
        let l = c.label.to_string();
        pkts.push(sample(MetricType::COUNTER, &[("label", &l)], c.packets as f64));
        bytes.push(sample(MetricType::COUNTER, &[("label", &l)], c.bytes as f64));
    }
    pkts.push(sample(MetricType::COUNTER, &[("label", "other")], other.packets as f64));
    bytes.push(sample(MetricType::COUNTER, &[("label", "other")], other.bytes as f64));
    vec![
        family(
            "popgo_lsp_packets_total",
            "Packets forwarded per LSP (in label that decided the forward), busiest labels first",
            MetricType::COUNTER,
            pkts,
        ),
        family("popgo_lsp_bytes_total", "Bytes forwarded per LSP (in label)", MetricType::COUNTER, bytes),
    ]
}

/// What `/proc/self` says about this process.
#[derive(Debug, Default, PartialEq)]
pub struct ProcessFacts {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: u64,
    pub max_fds: Option<u64>,
    pub start_time_seconds: f64,
    pub threads: u64,
}

/// Parses `/proc/<pid>/stat` (`stat`), the `btime` line of `/proc/stat` (`boot_s`) and a
/// page size into facts (`open_fds` and `max_fds` are the caller's). `None` when the
/// line does not have the fields proc(5) documents.
pub fn parse_stat(stat: &str, boot_s: u64, page_bytes: u64) -> Option<ProcessFacts> {
    // The command name (field 2) may hold spaces and parentheses: fields 3.. start
    // after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state): field N is f[N - 3].
    let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let (utime, stime) = (field(14)?, field(15)?);
    Some(ProcessFacts {
        cpu_seconds: (utime + stime) as f64 / USER_HZ,
        threads: field(20)?,
        start_time_seconds: boot_s as f64 + field(22)? as f64 / USER_HZ,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * page_bytes,
        open_fds: 0,
        max_fds: None,
    })
}

/// This process's facts, or None when `/proc` cannot be read (then no `process_*`
/// series are served rather than wrong ones).
pub fn process_facts() -> Option<ProcessFacts> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let boot_s = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse().ok()))?;
    // The resident set in pages of the kernel's page size; /proc/self/statm and
    // /proc/self/status give it in kB, which fixes the size without a syscall.
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()))?;
    let mut p = parse_stat(&stat, boot_s, 4096)?;
    p.resident_bytes = rss_kb * 1024;
    // The directory handle read_dir opens is one of the entries.
    p.open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count().saturating_sub(1) as u64;
    p.max_fds = std::fs::read_to_string("/proc/self/limits").ok().and_then(|l| {
        l.lines().find_map(|l| l.strip_prefix("Max open files").and_then(|v| v.split_whitespace().next()?.parse().ok()))
    });
    Some(p)
}

/// The standard `process_*` families of the Prometheus client libraries.
pub fn process(p: &ProcessFacts) -> Vec<MetricFamily> {
    use MetricType::{COUNTER, GAUGE};
    let one = |name: &str, help: &str, kind, v: f64| family(name, help, kind, vec![sample(kind, &[], v)]);
    let mut out = vec![
        one("process_cpu_seconds_total", "Total user and system CPU time spent in seconds", COUNTER, p.cpu_seconds),
        one("process_resident_memory_bytes", "Resident memory size in bytes", GAUGE, p.resident_bytes as f64),
        one("process_virtual_memory_bytes", "Virtual memory size in bytes", GAUGE, p.virtual_bytes as f64),
        one("process_open_fds", "Number of open file descriptors", GAUGE, p.open_fds as f64),
        one(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            GAUGE,
            p.start_time_seconds,
        ),
        one("process_threads", "Number of OS threads in the process", GAUGE, p.threads as f64),
    ];
    if let Some(m) = p.max_fds {
        out.push(one("process_max_fds", "Maximum number of open file descriptors", GAUGE, m as f64));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_become_seconds_and_bytes() {
        // proc(5) layout; the command name holds a space and a ')'.
        let stat = "4242 (pop go) x) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 150 0 0 20 0 7 0 12345 \
                    104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let p = parse_stat(stat, 1_700_000_000, 4096).unwrap();
        assert_eq!(p.cpu_seconds, 4.0);
        assert_eq!(p.threads, 7);
        assert_eq!(p.start_time_seconds, 1_700_000_123.45);
        assert_eq!(p.virtual_bytes, 104_857_600);
        assert_eq!(p.resident_bytes, 2560 * 4096);
        assert_eq!(parse_stat("4242 (popgo) S 1 2", 0, 4096), None);
    }

    #[test]
    fn this_process_has_facts() {
        let p = process_facts().expect("/proc is mounted");
        assert!(p.resident_bytes > 0 && p.open_fds >= 3 && p.threads >= 1, "{p:?}");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        assert!(p.start_time_seconds > now - 3600.0 && p.start_time_seconds <= now + 1.0, "{p:?}");
    }
}

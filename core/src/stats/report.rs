//! Text and JSON reports of merged counters.

use super::counters::{DropReason, WorkerStats};
use super::latency::Percentiles;
use serde_json::{json, Map, Value};

/// Per-port TX counts by port name (ports that sent nothing included, as 0).
pub fn tx_by_port(stats: &WorkerStats, ports: &[String]) -> Map<String, Value> {
    ports.iter().enumerate().map(|(i, p)| (p.clone(), json!(stats.port_tx_pkts[i]))).collect()
}

/// Gigabits per second of `bytes` over `elapsed_ns`.
pub fn gbps(bytes: u64, elapsed_ns: u64) -> f64 {
    if elapsed_ns == 0 {
        0.0
    } else {
        bytes as f64 * 8.0 / elapsed_ns as f64
    }
}

/// Packets received per port name.
pub fn rx_by_port(stats: &WorkerStats, ports: &[String]) -> Map<String, Value> {
    ports.iter().enumerate().map(|(i, p)| (p.clone(), json!(stats.port_rx_pkts[i]))).collect()
}

/// Every drop reason by name (zeros included, so the schema is stable).
pub fn drops_by_reason(stats: &WorkerStats) -> Map<String, Value> {
    DropReason::ALL.iter().map(|r| (r.name().to_string(), json!(stats.drop_count(*r)))).collect()
}

/// The hierarchical counter names (`port.to-A.tx_pkts`, `drop.ttl_expired`, ...) with
/// values, in a stable order: the flat form used by tests and `display popgo statistics`.
pub fn flat_counters(stats: &WorkerStats, ports: &[String]) -> Vec<(String, u64)> {
    let mut v = vec![
        ("rx_pkts".to_string(), stats.rx_pkts),
        ("rx_bytes".to_string(), stats.rx_bytes),
        ("tx_pkts".to_string(), stats.tx_pkts),
        ("tx_bytes".to_string(), stats.tx_bytes),
    ];
    for (i, p) in ports.iter().enumerate() {
        v.push((format!("port.{p}.rx_pkts"), stats.port_rx_pkts[i]));
        v.push((format!("port.{p}.tx_pkts"), stats.port_tx_pkts[i]));
        v.push((format!("port.{p}.tx_bytes"), stats.port_tx_bytes[i]));
    }
    for r in DropReason::ALL {
        v.push((format!("drop.{}", r.name()), stats.drop_count(*r)));
    }
    v
}

/// A readable summary table: totals, per-port TX, non-zero drops with descriptions.
pub fn text_table(stats: &WorkerStats, ports: &[String], elapsed_ns: u64, lat: &Percentiles) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let mpps = if elapsed_ns == 0 { 0.0 } else { stats.rx_pkts as f64 * 1e3 / elapsed_ns as f64 };
    let _ = writeln!(s, "{:<24} {:>14}", "rx_packets", stats.rx_pkts);
    for (i, p) in ports.iter().enumerate() {
        if stats.port_rx_pkts[i] > 0 {
            let _ = writeln!(s, "  {:<22} {:>14}", format!("rx {p}"), stats.port_rx_pkts[i]);
        }
    }
    let _ = writeln!(s, "{:<24} {:>14}", "tx_packets", stats.tx_pkts);
    for (i, p) in ports.iter().enumerate() {
        let _ = writeln!(s, "  {:<22} {:>14}", format!("tx {p}"), stats.port_tx_pkts[i]);
    }
    let _ = writeln!(s, "{:<24} {:>14}", "dropped", stats.dropped_pkts());
    for r in DropReason::ALL {
        let c = stats.drop_count(*r);
        if c > 0 {
            let _ = writeln!(s, "  {:<22} {:>14}   {}", r.name(), c, r.description());
        }
    }
    let balance = if stats.balanced() { "ok" } else { "MISMATCH" };
    let _ = writeln!(s, "{:<24} {:>14}", "rx = tx + drops", balance);
    let _ = writeln!(s, "{:<24} {:>14.3} ms", "elapsed", elapsed_ns as f64 / 1e6);
    let _ = writeln!(s, "{:<24} {:>14.3}", "Mpps", mpps);
    let _ = writeln!(s, "{:<24} {:>14.3}", "Gbit/s", gbps(stats.rx_bytes, elapsed_ns));
    let _ = writeln!(
        s,
        "{:<24} p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns",
        "burst latency", lat.p50, lat.p99, lat.p999, lat.max
    );
    s
}

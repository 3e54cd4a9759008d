//! Live statistics of a running mode, read from the stats board the workers publish
//! into: the interval lines of `replay --stats` and `run --stats-interval` (one code
//! path for both), and the Prometheus endpoint (`--metrics`, see [`crate::metrics`]).

use crate::stats::board::StatsBoard;
use crate::stats::{DropReason, WorkerStats};
use serde_json::json;
use std::fmt::Write;
use std::time::Duration;

/// JSON schema name of an interval line.
pub const SCHEMA: &str = "popgo.stats/1";

/// Interval lines: one every `every`, with the rates since the previous one.
pub struct Interval {
    names: Vec<String>,
    every: Duration,
    next: Duration,
    prev: (Duration, WorkerStats),
    json: bool,
}

impl Interval {
    /// Lines for ports `names`, every `every`, as JSON lines when `json`.
    pub fn new(names: Vec<String>, every: Duration, json: bool) -> Interval {
        // A zero interval would never reach the next line's time.
        let every = every.max(Duration::from_millis(1));
        Interval { names, every, next: every, prev: (Duration::ZERO, WorkerStats::default()), json }
    }

    /// The line due at `elapsed`, if one is; `events` are extra counters to show
    /// (e.g. the kernel's AF_XDP ring counters).
    pub fn tick(&mut self, elapsed: Duration, board: &StatsBoard, events: &[(&str, u64)]) -> Option<String> {
        if elapsed < self.next {
            return None;
        }
        // The first multiple of `every` after `elapsed` (lines missed are skipped).
        let every = self.every.as_nanos();
        let next = (elapsed.as_nanos() / every + 1).saturating_mul(every);
        self.next = Duration::from_nanos(u64::try_from(next).unwrap_or(u64::MAX));
        let cur = board.total();
        let line = line(&self.names, &self.prev, (elapsed, &cur), events, self.json);
        self.prev = (elapsed, cur);
        Some(line)
    }
}

/// One interval line: totals and per-port rates since `prev`, drops by reason.
pub fn line(
    names: &[String],
    prev: &(Duration, WorkerStats),
    cur: (Duration, &WorkerStats),
    events: &[(&str, u64)],
    as_json: bool,
) -> String {
    let t = cur.0;
    let dt = cur.0.saturating_sub(prev.0).as_secs_f64().max(1e-9);
    let (p, c) = (&prev.1, cur.1);
    let mpps = |a: u64, b: u64| a.saturating_sub(b) as f64 / dt / 1e6;
    let gbps = |a: u64, b: u64| a.saturating_sub(b) as f64 * 8.0 / dt / 1e9;
    let drops: Vec<(DropReason, u64)> = DropReason::ALL
        .iter()
        .map(|r| (*r, c.drop_count(*r).saturating_sub(p.drop_count(*r))))
        .filter(|(_, n)| *n > 0)
        .collect();
    let (rx_mpps, rx_gbps) = (mpps(c.rx_pkts, p.rx_pkts), gbps(c.rx_bytes, p.rx_bytes));
    let (tx_mpps, tx_gbps) = (mpps(c.tx_pkts, p.tx_pkts), gbps(c.tx_bytes, p.tx_bytes));
    if as_json {
        let ports: serde_json::Map<String, serde_json::Value> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                (
                    n.clone(),
                    json!({"rx_mpps": mpps(c.port_rx_pkts[i], p.port_rx_pkts[i]),
                           "tx_mpps": mpps(c.port_tx_pkts[i], p.port_tx_pkts[i]),
                           "tx_gbps": gbps(c.port_tx_bytes[i], p.port_tx_bytes[i])}),
                )
            })
            .collect();
        let d: serde_json::Map<String, serde_json::Value> =
            drops.iter().map(|(r, n)| (r.name().to_string(), json!(n))).collect();
        let ev: serde_json::Map<String, serde_json::Value> =
            events.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        return json!({
            "schema": SCHEMA, "t_s": t.as_secs_f64(), "interval_s": dt,
            "rx_packets": c.rx_pkts, "tx_packets": c.tx_pkts, "dropped": c.dropped_pkts(),
            "rx_mpps": rx_mpps, "rx_gbps": rx_gbps, "tx_mpps": tx_mpps, "tx_gbps": tx_gbps,
            "ports": ports, "drops": d, "events": ev,
        })
        .to_string();
    }
    let mut s = format!(
        "t={:.1}s rx {rx_mpps:.3} Mpps {rx_gbps:.3} Gbit/s, tx {tx_mpps:.3} Mpps {tx_gbps:.3} Gbit/s",
        t.as_secs_f64()
    );
    for (i, n) in names.iter().enumerate() {
        let (rx, tx) = (mpps(c.port_rx_pkts[i], p.port_rx_pkts[i]), mpps(c.port_tx_pkts[i], p.port_tx_pkts[i]));
        if rx + tx > 0.0 {
            let _ = write!(s, " | {n} rx {rx:.3} tx {tx:.3} Mpps");
        }
    }
    s.push_str(" | drops");
    if drops.is_empty() {
        s.push_str(" 0");
    }
    for (r, n) in &drops {
        let _ = write!(s, " {r}={n}");
    }
    if !events.is_empty() {
        s.push_str(" |");
        for (k, v) in events {
            let _ = write!(s, " {k} {v}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_rates_per_port_and_drops() {
        let board = StatsBoard::new(1);
        let names = vec!["to-A".to_string(), "to-B".to_string()];
        let mut iv = Interval::new(names, Duration::from_secs(1), false);
        assert!(iv.tick(Duration::from_millis(500), &board, &[]).is_none(), "not due yet");
        let mut s = WorkerStats { rx_pkts: 2_000_000, rx_bytes: 128_000_000, ..Default::default() };
        s.port_rx_pkts[1] = 2_000_000;
        for _ in 0..1_000_000 {
            s.count_tx(0, 64);
        }
        for _ in 0..1_000_000 {
            s.count_drop(DropReason::NoIlmEntry);
        }
        board.publish(0, &s);
        let l = iv.tick(Duration::from_secs(2), &board, &[("rx_ring_full", 3)]).unwrap();
        assert!(l.starts_with("t=2.0s rx 1.000 Mpps 0.512 Gbit/s, tx 0.500 Mpps"), "{l}");
        assert!(l.contains("to-A rx 0.000 tx 0.500 Mpps") && l.contains("to-B rx 1.000 tx 0.000"), "{l}");
        assert!(l.contains("no_ilm_entry=1000000") && l.ends_with("rx_ring_full 3"), "{l}");
        assert!(iv.tick(Duration::from_millis(2500), &board, &[]).is_none(), "next one at 3 s");
        let mut j = Interval::new(vec!["to-A".into()], Duration::from_secs(1), true);
        let v: serde_json::Value = serde_json::from_str(&j.tick(Duration::from_secs(1), &board, &[]).unwrap()).unwrap();
        assert_eq!(v["schema"], SCHEMA);
        assert_eq!(v["rx_packets"], 2_000_000);
        assert_eq!(v["drops"]["no_ilm_entry"], 1_000_000);
        assert!((v["rx_mpps"].as_f64().unwrap() - 2.0).abs() < 1e-9, "{v}");
    }

    #[test]
    fn a_zero_or_tiny_interval_ends_each_tick() {
        let board = StatsBoard::new(1);
        for every in [Duration::ZERO, Duration::from_nanos(1)] {
            let mut iv = Interval::new(vec!["p".into()], every, false);
            assert!(iv.tick(Duration::from_secs(3600), &board, &[]).is_some());
            assert!(iv.tick(Duration::from_secs(3600), &board, &[]).is_none(), "next one after 1 ms");
            assert!(iv.tick(Duration::from_secs(3601), &board, &[]).is_some());
        }
    }
}

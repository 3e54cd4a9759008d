//! The Prometheus endpoint (`--metrics ADDR:PORT`): `GET /metrics` in the Prometheus
//! text exposition format, built on each scrape from the stats board (per port, per
//! drop reason, per worker) and from the control plane's commit figures.
//!
//! The server runs on its own thread ([`http`]: one poll loop, bounded connections,
//! header size, time and request rate) and reads only what the workers
//! already publish: scraping never touches the data path. The text is encoded with
//! the `prometheus` crate, so names, labels and escaping follow the format.

use crate::control::ControlMetrics;
use crate::stats::board::StatsBoard;
use crate::stats::DropReason;
use prometheus::{Encoder, GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

mod http;

/// Per-LSP series served by default (`--metrics-lsps`).
pub const DEFAULT_LSPS: usize = 20;

/// What the endpoint reports on.
pub struct Sources {
    pub board: Arc<StatsBoard>,
    pub ports: Vec<String>,
    /// The control plane's figures (live tables only).
    pub control: Option<Arc<ControlMetrics>>,
    /// The BGP speaker's sessions (live tables only).
    pub bgp: Option<Arc<crate::bgp::Status>>,
    /// Per-LSP series served: the busiest labels, the others summed as "other".
    pub lsps: usize,
    /// `replay` or `run`.
    pub mode: &'static str,
    pub device: String,
}

/// A running endpoint; dropping it stops the thread.
pub struct Endpoint {
    pub addr: String,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Binds `addr` (e.g. `127.0.0.1:9464`; a bare port binds loopback) and serves
/// `/metrics` until the returned endpoint is dropped, within [`http::Limits::METRICS`].
pub fn serve(addr: &str, src: Sources) -> Result<Endpoint, String> {
    let addr = if addr.parse::<u16>().is_ok() { format!("127.0.0.1:{addr}") } else { addr.to_string() };
    let listener = std::net::TcpListener::bind(&addr).map_err(|e| format!("--metrics {addr}: {e}"))?;
    let bound = listener.local_addr().map_or(addr.clone(), |a| a.to_string());
    let server = http::Server::new(listener, http::Limits::METRICS).map_err(|e| format!("--metrics {addr}: {e}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let handle = http::spawn(server, Arc::clone(&stop), move |target| {
        if target == "/metrics" || target.starts_with("/metrics?") {
            http::Response { status: 200, content_type: prometheus::TEXT_FORMAT, body: render(&src) }
        } else {
            http::Response { status: 404, content_type: "text/plain", body: b"popgo: see /metrics\n".to_vec() }
        }
    })
    .map_err(|e| format!("spawning the metrics thread: {e}"))?;
    Ok(Endpoint { addr: bound, stop, handle: Some(handle) })
}

fn counter(reg: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    reg.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn gauge(reg: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    reg.register(Box::new(g.clone())).expect("unique metric");
    g
}

/// The exposition text of one scrape.
pub fn render(src: &Sources) -> Vec<u8> {
    // The per-LSP counters first: they are read live, by a scan that can take a while
    // (a million busy labels), and the published counters read after it are then no
    // older than the scan, so the two totals differ by the publishing age only.
    // Without per-LSP counting there is nothing to serve (and no rows to scan).
    let lsps = if src.board.counts_lsps() { crate::metrics_ext::lsps(&src.board, src.lsps) } else { Vec::new() };
    let reg = Registry::new();
    let total = src.board.total();
    let info = gauge(&reg, "popgo_info", "popgo build and mode (value 1)", &["version", "mode", "device"]);
    info.with_label_values(&[env!("CARGO_PKG_VERSION"), src.mode, &src.device]).set(1);

    let rx = counter(&reg, "popgo_port_rx_packets_total", "Packets received per port", &["port"]);
    let tx = counter(&reg, "popgo_port_tx_packets_total", "Packets transmitted per port", &["port"]);
    let txb = counter(&reg, "popgo_port_tx_bytes_total", "Bytes transmitted per port", &["port"]);
    for (i, p) in src.ports.iter().enumerate() {
        rx.with_label_values(&[p]).inc_by(total.port_rx_pkts[i]);
        tx.with_label_values(&[p]).inc_by(total.port_tx_pkts[i]);
        txb.with_label_values(&[p]).inc_by(total.port_tx_bytes[i]);
    }
    let all = counter(&reg, "popgo_packets_total", "Packets by direction over all ports", &["direction"]);
    all.with_label_values(&["rx"]).inc_by(total.rx_pkts);
    all.with_label_values(&["tx"]).inc_by(total.tx_pkts);
    let bytes = counter(&reg, "popgo_bytes_total", "Bytes by direction over all ports", &["direction"]);
    bytes.with_label_values(&["rx"]).inc_by(total.rx_bytes);
    bytes.with_label_values(&["tx"]).inc_by(total.tx_bytes);
    let drops = counter(&reg, "popgo_drops_total", "Packets dropped, by reason", &["reason"]);
    for r in DropReason::ALL {
        drops.with_label_values(&[r.name()]).inc_by(total.drop_count(*r));
    }

    let w_rx = counter(&reg, "popgo_worker_rx_packets_total", "Packets received per worker", &["worker"]);
    let w_tx = counter(&reg, "popgo_worker_tx_packets_total", "Packets transmitted per worker", &["worker"]);
    let w_drop = counter(&reg, "popgo_worker_dropped_packets_total", "Packets dropped per worker", &["worker"]);
    let w_bursts = counter(&reg, "popgo_worker_bursts_total", "Bursts processed per worker", &["worker"]);
    let w_empty = counter(&reg, "popgo_worker_empty_polls_total", "Polls that found nothing, per worker", &["worker"]);
    let w_swaps = counter(&reg, "popgo_worker_table_swaps_total", "Table generations a worker moved to", &["worker"]);
    for w in 0..src.board.workers() {
        let s = src.board.read(w);
        let l = [w.to_string()];
        let l: Vec<&str> = l.iter().map(String::as_str).collect();
        w_rx.with_label_values(&l).inc_by(s.rx_pkts);
        w_tx.with_label_values(&l).inc_by(s.tx_pkts);
        w_drop.with_label_values(&l).inc_by(s.dropped_pkts());
        w_bursts.with_label_values(&l).inc_by(s.bursts);
        w_empty.with_label_values(&l).inc_by(s.empty_polls);
        w_swaps.with_label_values(&l).inc_by(s.ilm_swaps_seen);
    }

    // Served with zeros without an offload, so rules and dashboards need no fallback.
    let offload = src.board.offload();
    gauge(&reg, "popgo_xdp_offload_attached", "1 while the XDP offload forwards in the kernel", &[])
        .with_label_values(&[] as &[&str])
        .set(i64::from(offload.is_some()));
    {
        let o = offload.unwrap_or_default();
        let k = counter(
            &reg,
            "popgo_xdp_offload_packets_total",
            "Packets the XDP offload handled in the kernel (included in the totals above), by outcome",
            &["outcome"],
        );
        k.with_label_values(&["rx"]).inc_by(o.rx_pkts);
        k.with_label_values(&["tx"]).inc_by(o.tx_pkts);
        k.with_label_values(&["dropped"]).inc_by(o.dropped_pkts());
    }

    let generation = gauge(&reg, "popgo_table_generation", "Generation of the published forwarding tables", &[]);
    if let Some(c) = &src.control {
        let f = c.read();
        generation.with_label_values(&[] as &[&str]).set(f.generation as i64);
        let commits = counter(&reg, "popgo_commits_total", "Commits published, by build kind", &["kind"]);
        commits.with_label_values(&["incremental"]).inc_by(f.incremental);
        commits.with_label_values(&["full"]).inc_by(f.full);
        counter(&reg, "popgo_commit_failures_total", "Commits refused or failed", &[])
            .with_label_values(&[] as &[&str])
            .inc_by(f.failed);
        let phase =
            GaugeVec::new(Opts::new("popgo_last_commit_seconds", "Duration of the last commit, by phase"), &["phase"])
                .expect("valid metric");
        let last = f.last;
        let ns = |of: fn(&crate::control::CommitReport) -> u64| last.as_ref().map_or(0, of);
        for (p, ns) in [
            ("build", ns(|r| r.build_ns)),
            ("publish", ns(|r| r.publish_ns)),
            ("grace", ns(|r| r.grace_ns)),
            ("reclaim", ns(|r| r.reclaim_ns)),
            ("total", ns(|r| r.total_ns)),
        ] {
            phase.with_label_values(&[p]).set(ns as f64 / 1e9);
        }
        reg.register(Box::new(phase.clone())).expect("unique metric");
        let max =
            GaugeVec::new(Opts::new("popgo_max_commit_seconds", "Longest commit so far"), &[]).expect("valid metric");
        max.with_label_values(&[] as &[&str]).set(f.max_total_ns as f64 / 1e9);
        reg.register(Box::new(max.clone())).expect("unique metric");
        gauge(&reg, "popgo_retired_tables", "Replaced tables waiting for their grace period", &[])
            .with_label_values(&[] as &[&str])
            .set(f.retired as i64);
    } else {
        generation.with_label_values(&[] as &[&str]).set(0);
    }
    if let Some(b) = &src.bgp {
        bgp_metrics(&reg, b);
    }
    let mut families = reg.gather();
    families.push(crate::metrics_ext::burst_latency(&src.board));
    families.extend(lsps);
    families.extend(crate::metrics_ext::process_facts().as_ref().map(crate::metrics_ext::process).unwrap_or_default());
    let mut out = Vec::new();
    // Encoding into a Vec cannot fail for well-formed families.
    let _ = TextEncoder::new().encode(&families, &mut out);
    out
}

/// Per peer: the session state (as the BGP4-MIB numbers it, and one 0/1 series per
/// state), messages, UPDATEs and NOTIFICATIONs by direction, malformed messages
/// received, prefixes by direction.
fn bgp_metrics(reg: &Registry, status: &crate::bgp::Status) {
    use crate::bgp::State;
    let state =
        gauge(reg, "popgo_bgp_session_state", "BGP session state (1 Idle .. 6 Established, RFC 4273)", &["peer"]);
    let in_state =
        gauge(reg, "popgo_bgp_session_in_state", "1 for the state each BGP session is in", &["peer", "state"]);
    let updates = counter(reg, "popgo_bgp_updates_total", "BGP UPDATE messages by direction", &["peer", "direction"]);
    let msgs = counter(reg, "popgo_bgp_messages_total", "BGP messages by direction", &["peer", "direction"]);
    let notifs =
        counter(reg, "popgo_bgp_notifications_total", "BGP NOTIFICATION messages by direction", &["peer", "direction"]);
    let errors = counter(reg, "popgo_bgp_errors_total", "Malformed BGP messages received", &["peer"]);
    let established =
        counter(reg, "popgo_bgp_established_total", "Times the BGP session reached Established", &["peer"]);
    let prefixes =
        gauge(reg, "popgo_bgp_prefixes", "Routes advertised (sent) and accepted (received)", &["peer", "direction"]);
    let update_errors = counter(
        reg,
        "popgo_bgp_update_errors_total",
        "Malformed UPDATEs by RFC 7606 outcome (treat_as_withdraw, attribute_discard) and routes past the route \
         limit (route_limit)",
        &["peer", "outcome"],
    );
    let connect_failures =
        counter(reg, "popgo_bgp_connect_failures_total", "BGP connection attempts that failed", &["peer"]);
    let refused = counter(reg, "popgo_bgp_refused_connections_total", "Connections from non-peers refused", &[]);
    refused.with_label_values(&[] as &[&str]).inc_by(status.refused());
    for p in status.peers() {
        let a = p.address.to_string();
        state.with_label_values(&[&a]).set(p.state as i64);
        for s in State::ALL {
            in_state.with_label_values(&[&a, s.name()]).set(i64::from(p.state == s));
        }
        for (dir, u, m, n) in [
            ("in", p.updates_in, p.msgs_in, p.notifications_in),
            ("out", p.updates_out, p.msgs_out, p.notifications_out),
        ] {
            updates.with_label_values(&[&a, dir]).inc_by(u);
            msgs.with_label_values(&[&a, dir]).inc_by(m);
            notifs.with_label_values(&[&a, dir]).inc_by(n);
        }
        errors.with_label_values(&[&a]).inc_by(p.errors);
        connect_failures.with_label_values(&[&a]).inc_by(p.connect_failures);
        update_errors.with_label_values(&[&a, "treat_as_withdraw"]).inc_by(p.treated_as_withdraw);
        update_errors.with_label_values(&[&a, "attribute_discard"]).inc_by(p.attributes_discarded);
        update_errors.with_label_values(&[&a, "route_limit"]).inc_by(p.over_limit);
        established.with_label_values(&[&a]).inc_by(p.established);
        prefixes.with_label_values(&[&a, "sent"]).set(p.prefixes_sent as i64);
        prefixes.with_label_values(&[&a, "received"]).set(p.received.len() as i64);
    }
}

//! The displays the control plane answers: rendered from the running config, the
//! published snapshot, the statistics board and the speaker's status.

use super::commit::{us, CommitReport};
use super::vrp::Display;
use super::{ControlPlane, Reply, Session, Stream};
use crate::config::edit as rules;
use crate::stats::report::flat_counters;
use std::fmt::Write;
use std::sync::Arc;

impl ControlPlane {
    pub(super) fn display(&mut self, s: &mut Session, d: Display, filter: crate::display::Filter) -> Reply {
        let text = |render: &dyn Fn(&mut crate::display::Lines<'_, std::convert::Infallible>)| {
            Reply::ok(crate::display::to_string(&filter, render))
        };
        match d {
            Display::MplsLspBgp { verbose } => {
                // Streamed from a snapshot shared now (reference counts, no copy).
                let snap = self.publisher.current().share(self.generation);
                let names = crate::display::Names::of(self.running.head());
                let stream = move |out: &mut dyn FnMut(&str) -> std::io::Result<()>| {
                    let mut lines = crate::display::Lines::new(&filter, out);
                    crate::display::write_mpls_lsp_bgp(&mut lines, &names, &snap, verbose);
                    lines.finish()
                };
                Reply { stream: Some(Stream(Arc::new(stream))), ..Reply::ok("") }
            }
            Display::CurrentConfiguration => {
                let run = &self.running;
                text(&|out| crate::display::write_current_configuration(out, run.head(), run.networks(), run.routes()))
            }
            Display::CandidateConfiguration => match self.candidate(s) {
                Ok(_) => {
                    // The running config with the pending lines applied (they were
                    // just checked to apply).
                    let mut c = self.running.to_config();
                    for p in &s.pending {
                        let _ = rules::apply(&mut c, &p.edit);
                    }
                    text(&|out| {
                        crate::display::write_current_configuration(
                            out,
                            &c,
                            c.bgp.iter().flat_map(|b| b.networks.iter().cloned()),
                            c.static_routes.iter().cloned(),
                        )
                    })
                }
                Err(e) => Reply::err(format!("Error: line {}: {e}", s.lines)),
            },
            Display::VpnInstance { verbose } => {
                let head = self.running.head();
                let routes: Vec<_> = self.running.routes().filter(|r| r.prefix.vrf != 0).collect();
                let mut c = head.clone();
                c.static_routes = routes;
                text(&|out| crate::display::write_vpn_instance(out, &c, verbose))
            }
            Display::StaticLsp => {
                let head = self.running.head();
                text(&|out| crate::display::write_static_lsp(out, head))
            }
            Display::LspStatistics { in_label } => {
                if !self.board.counts_lsps() {
                    return Reply::err("Error: per-LSP counting is off (--lsp-counters off)");
                }
                let snap = self.publisher.current().share(self.generation);
                let names = crate::display::Names::of(self.running.head());
                let q = crate::display::LspStatsQuery { in_label };
                let f = crate::display::lsp_statistics_stream(Arc::clone(&self.board), snap, names, q, filter);
                Reply { stream: Some(Stream(Arc::new(f))), ..Reply::ok("") }
            }
            Display::Statistics => {
                let st = self.statistics();
                text(&|out| {
                    let _ = out.write_str(&st);
                })
            }
            Display::BgpPeer => match self.bgp_status() {
                Some(st) => {
                    let t = st.display_peer();
                    text(&|out| {
                        let _ = out.write_str(&t);
                    })
                }
                None => Reply::err("Error: no BGP speaker runs in this mode"),
            },
            Display::BgpRoutingTableLabel(f) => match self.bgp_status() {
                Some(st) => {
                    let t = st.display_routing_table(f);
                    text(&|out| {
                        let _ = out.write_str(&t);
                    })
                }
                None => Reply::err("Error: no BGP speaker runs in this mode"),
            },
        }
    }

    /// `display popgo statistics`: data path counters from the stats board (per port,
    /// per drop reason, per worker) and the control plane's commit and swap costs.
    pub fn statistics(&self) -> String {
        let mut s = String::new();
        let total = self.board.total();
        let _ =
            writeln!(s, "Data path ({} worker(s), counters as last published by each worker)", self.board.workers());
        for (name, v) in flat_counters(&total, &self.port_names) {
            let _ = writeln!(s, "  {name:<32} {v:>16}");
        }
        let in_flight = total.rx_pkts as i128 - total.tx_pkts as i128 - total.dropped_pkts() as i128;
        let _ = writeln!(s, "  {:<32} {:>16}", "rx - tx - drops", in_flight);
        if let Some(o) = self.board.offload() {
            let _ =
                writeln!(s, "  xdp offload: rx_pkts {} tx_pkts {} dropped {}", o.rx_pkts, o.tx_pkts, o.dropped_pkts());
        }
        for w in 0..self.board.workers() {
            let ws = self.board.read(w);
            let _ = writeln!(
                s,
                "  worker.{w}: rx_pkts {} tx_pkts {} dropped {} bursts {} ilm_swaps_seen {}",
                ws.rx_pkts,
                ws.tx_pkts,
                ws.dropped_pkts(),
                ws.bursts,
                ws.ilm_swaps_seen
            );
        }
        // Live per-LSP counts (a scan of the workers' tables: milliseconds, not a commit's
        // microseconds; displays only), named by the published LSP table.
        let lsps = self.board.lsp_counts();
        let fecs = crate::cmd::lsp_fecs(&self.current().lsps, &lsps);
        let lsp_text = crate::stats::lsp::to_text(&lsps, crate::stats::lsp::REPORT_TOP, |l| fecs.get(&l).cloned());
        for line in lsp_text.lines() {
            let _ = writeln!(s, "  {line}");
        }
        let st = self.stats.read();
        let _ = writeln!(s, "Control plane");
        let _ = writeln!(s, "  generation {}, epoch {}", self.generation, self.publisher.epoch());
        let _ = writeln!(
            s,
            "  commits {} (incremental {}, full {}), failed {}, max commit {:.1} us",
            st.commits,
            st.incremental,
            st.full,
            st.failed,
            us(st.max_total_ns)
        );
        let _ = writeln!(s, "  retired snapshots pending {}", self.publisher.pending_retired());
        if let Some(m) = &self.mirror {
            let _ = writeln!(s, "  {}", m.summary());
        }
        let mut row = |what: &str, r: Option<CommitReport>| {
            let Some(r) = r else {
                let _ = writeln!(s, "  {what}: none");
                return;
            };
            let _ = writeln!(s, "  {what}: {} ({} routes+networks)", r.line(), r.routes);
            for (k, v) in [
                ("build_ns", r.build_ns),
                ("mirror_ns", r.mirror_ns),
                ("bgp_ns", r.bgp_ns),
                ("publish_ns", r.publish_ns),
                ("grace_ns", r.grace_ns),
                ("reclaim_ns", r.reclaim_ns),
                ("total_ns", r.total_ns),
            ] {
                let _ = writeln!(s, "    {k:<14} {v:>12}");
            }
        };
        row("last commit", st.last);
        row("last full-table build", st.last_full);
        let h = &st.incremental_us;
        if h.is_empty() {
            let _ = writeln!(s, "  incremental commit total: none");
        } else {
            let _ = writeln!(
                s,
                "  incremental commit total: p50 {} us, p99 {} us, max {} us ({} commits)",
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.max(),
                h.len()
            );
        }
        let snap = self.publisher.current();
        let (ilm, fib, lsp) = snap.heap_bytes();
        let (store, index) = (self.running.heap_bytes(), self.index.heap_bytes());
        let routes = self.running.size().max(1) / 2;
        let _ = writeln!(
            s,
            "  memory: config store {} KiB, build index {} KiB, ILM {} KiB, FIB {} KiB, LSP table {} KiB \
             ({} bytes per labelled route)",
            store / 1024,
            index / 1024,
            ilm / 1024,
            fib / 1024,
            lsp / 1024,
            (store + index + ilm + fib + lsp) / routes.max(1)
        );
        if let Some(st) = self.bgp_status() {
            s.push_str(&st.statistics());
        }
        s
    }
}

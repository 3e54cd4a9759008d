//! `display mpls statistics lsp [all | in-label LABEL]`: packets and bytes forwarded per
//! LSP (in label), with the FEC, out interface and next hop of the published tables,
//! read live from the workers' per-LSP counters.
//!
//! The command is VRP's LSP traffic statistics display as its Comware sibling documents
//! it (`display mpls statistics lsp { all | index | name }`, with `statistics interval`
//! in the MPLS view). Its output layout could not be found in any public reference, so
//! the layout here is a guess built from `display mpls lsp protocol bgp`'s: the same
//! rule lines and title, one row per LSP (`FEC`, `In Label`, `Out IF`, `Next Hop`,
//! `Packets`, `Bytes`), and a `Total` line. `in-label LABEL` stands in for VRP's LSP
//! `index` (popgo has no LSP index other than the label).
//!
//! Rows: every LSP of the BGP LSP table in network order (zeros included, as a router
//! lists every LSP), then the labels that forwarded packets without a BGP LSP (static
//! labels, VPN egress labels, labels a commit withdrew), FEC `-`, out interfaces the
//! ports their packets left by. The `Total` line sums the rows shown: without
//! `in-label` it is every packet the workers forwarded (`tx_pkts` of every port plus
//! TX-ring drops). Streamed row by row through the output filters, so a table of a
//! million LSPs is never one string. Runs on the connection thread, never the data path.

use super::{Lines, Names, RULE};
use crate::ilm::Snapshot;
use crate::stats::board::StatsBoard;
use crate::stats::lsp::LspCount;
use std::fmt::Write;
use std::sync::Arc;

/// What `display mpls statistics lsp` shows: all LSPs, or the one of an in label.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LspStatsQuery {
    pub in_label: Option<u32>,
}

/// Writes the display for `counts` (sorted by label, as [`StatsBoard::lsp_counts`]
/// returns them) over the LSP table of `snap`.
pub fn write_lsp_statistics<E>(
    s: &mut Lines<'_, E>,
    names: &Names,
    snap: &Snapshot,
    counts: &[LspCount],
    q: LspStatsQuery,
) {
    let _ = writeln!(s, "{RULE}\n                 LSP Statistics: BGP  LSP\n{RULE}");
    let _ = writeln!(
        s,
        "{:<20} {:<10} {:<14} {:<16} {:>14} {:>16}",
        "FEC", "In Label", "Out IF", "Next Hop", "Packets", "Bytes"
    );
    let wanted = |l: u32| q.in_label.is_none_or(|w| w == l);
    // Counted labels that have a BGP LSP row (the others are listed after the table).
    let mut listed = vec![false; counts.len()];
    let (mut rows, mut packets, mut bytes) = (0u64, 0u64, 0u64);
    let (mut fec, mut nh) = (String::new(), String::new());
    for r in snap.lsp_rows() {
        if s.failed() {
            return;
        }
        let c = match counts.binary_search_by_key(&r.in_label, |c| c.label) {
            Ok(i) => {
                listed[i] = true;
                counts[i]
            }
            Err(_) => LspCount::default(),
        };
        if !wanted(r.in_label) {
            continue;
        }
        fec.clear();
        nh.clear();
        let _ = write!(fec, "{}", r.fec);
        match r.next_hop {
            Some(n) => {
                let _ = write!(nh, "{n}");
            }
            None => nh.push('-'),
        }
        let port = r.out_port.and_then(|p| names.ports.get(p)).map_or("-", |p| p);
        let _ = writeln!(s, "{fec:<20} {:<10} {port:<14} {nh:<16} {:>14} {:>16}", r.in_label, c.packets, c.bytes);
        rows += 1;
        packets += c.packets;
        bytes += c.bytes;
    }
    for (c, _) in counts.iter().zip(&listed).filter(|(c, seen)| !**seen && wanted(c.label)) {
        if s.failed() {
            return;
        }
        let ports = port_list(c.before.ports | c.after.ports, &names.ports);
        let _ = writeln!(s, "{:<20} {:<10} {ports:<14} {:<16} {:>14} {:>16}", "-", c.label, "-", c.packets, c.bytes);
        rows += 1;
        packets += c.packets;
        bytes += c.bytes;
    }
    let _ = writeln!(s, "{RULE}\nTotal: {rows} LSP(s), {packets} packets, {bytes} bytes");
}

/// Port names of a port bit set, comma-separated (`-` for none).
fn port_list(bits: u64, ports: &[String]) -> String {
    let names: Vec<String> = (0..64)
        .filter(|p| bits & 1 << p != 0)
        .map(|p| ports.get(p).cloned().unwrap_or_else(|| format!("port{p}")))
        .collect();
    if names.is_empty() {
        "-".into()
    } else {
        names.join(",")
    }
}

/// Where a streamed display writes its lines (each without its newline).
pub type LineOut<'a> = dyn FnMut(&str) -> std::io::Result<()> + 'a;

/// The display as a streaming body: reads the counters when the body is written (on the
/// connection thread: a scan of every worker's rows, milliseconds;
/// [`StatsBoard::lsp_counts`], where an offload's counts join the workers') and renders
/// them over `snap`.
pub fn lsp_statistics_stream(
    board: Arc<StatsBoard>,
    snap: Snapshot,
    names: Names,
    q: LspStatsQuery,
    filter: super::Filter,
) -> impl Fn(&mut LineOut<'_>) -> std::io::Result<()> + Send + Sync + 'static {
    move |out: &mut LineOut<'_>| {
        let counts = board.lsp_counts();
        let mut lines = Lines::new(&filter, out);
        write_lsp_statistics(&mut lines, &names, &snap, &counts, q);
        lines.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::lsp::Phase;

    fn seed() -> (crate::config::Config, Snapshot) {
        let cfg = crate::config::Config::parse(include_str!("../../pcaps/seed.toml")).unwrap();
        let snap = crate::ilm::build(&cfg, 0).unwrap();
        (cfg, snap)
    }

    fn render(counts: &[LspCount], q: LspStatsQuery, filter: &str) -> String {
        let (cfg, snap) = seed();
        let f = if filter.is_empty() {
            super::super::Filter::default()
        } else {
            super::super::Filter::parse(filter).unwrap()
        };
        super::super::to_string(&f, |out| write_lsp_statistics(out, &Names::of(&cfg), &snap, counts, q))
    }

    #[test]
    fn rows_per_lsp_then_labels_without_one_and_the_total() {
        let counts = [
            LspCount {
                label: 20,
                packets: 3,
                bytes: 180,
                before: Phase { packets: 3, ports: 0b11 },
                ..Default::default()
            },
            LspCount { label: 48122, packets: 8, bytes: 480, ..Default::default() },
        ];
        let t = render(&counts, LspStatsQuery::default(), "");
        let rule = RULE;
        assert_eq!(
            t,
            format!(
                "{rule}\n                 LSP Statistics: BGP  LSP\n{rule}\n\
                 FEC                  In Label   Out IF         Next Hop                Packets            Bytes\n\
                 10.1.1.0/24          48122      to-A           192.168.10.1                  8              480\n\
                 -                    20         to-A,to-B      -                             3              180\n\
                 {rule}\nTotal: 2 LSP(s), 11 packets, 660 bytes\n"
            )
        );
        // One label; the output filters.
        let one = render(&counts, LspStatsQuery { in_label: Some(20) }, "");
        assert!(one.ends_with("Total: 1 LSP(s), 3 packets, 180 bytes\n"), "{one}");
        assert!(!one.contains("48122"), "{one}");
        assert_eq!(
            render(&counts, LspStatsQuery::default(), "include 48122"),
            t.lines().nth(4).unwrap().to_string() + "\n"
        );
        assert_eq!(render(&counts, LspStatsQuery::default(), "count"), "Total lines: 8.\n");
        // Nothing counted: the LSPs with zeros.
        let none = render(&[], LspStatsQuery::default(), "");
        assert!(
            none.contains(
                "\n10.1.1.0/24          48122      to-A           192.168.10.1                  0                0\n"
            ),
            "{none}"
        );
        assert!(none.ends_with("Total: 1 LSP(s), 0 packets, 0 bytes\n"), "{none}");
    }
}

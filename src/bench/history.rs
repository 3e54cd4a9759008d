//! `--history FILE`: every result appended as one JSON line (the `popgo.bench/1`
//! document, compact), read back for the trend plot; and the hyperfine-style
//! summaries of `--export-markdown` / `--export-csv`.
//!
//! A history line that does not parse (an older schema, a torn write) is skipped and
//! counted, never fatal: the file is a log that outlives versions.

use super::json::{BenchDoc, SCHEMA};
use std::io::Write;
use std::path::Path;

/// Appends `doc` as one line.
pub fn append(path: &Path, doc: &BenchDoc) -> anyhow::Result<()> {
    let line = serde_json::to_string(doc)?;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    f.write_all(format!("{line}\n").as_bytes())?;
    Ok(())
}

/// The documents in a history file, oldest first, and how many lines were skipped.
pub fn load(path: &Path) -> anyhow::Result<(Vec<BenchDoc>, usize)> {
    let text = std::fs::read_to_string(path)?;
    let mut docs = Vec::new();
    let mut skipped = 0;
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<BenchDoc>(l) {
            Ok(d) if d.schema == SCHEMA => docs.push(d),
            _ => skipped += 1,
        }
    }
    Ok((docs, skipped))
}

/// One point of the trend: a run, labelled by its build's commit.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Short commit (12 hex digits, `-dirty` kept), or "unknown".
    pub commit: String,
    pub mpps_median: f64,
    pub mpps_min: f64,
    pub mpps_max: f64,
    pub instructions_per_packet: Option<f64>,
}

pub fn points(docs: &[BenchDoc]) -> Vec<Point> {
    docs.iter()
        .map(|d| Point {
            commit: d.popgo.git_commit.clone(),
            mpps_median: d.summary.mpps.median,
            mpps_min: d.summary.mpps.min,
            mpps_max: d.summary.mpps.max,
            instructions_per_packet: d.instructions.as_ref().map(|i| i.per_packet),
        })
        .collect()
}

/// One row of an exported summary.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub command: String,
    pub mpps_median: f64,
    pub mpps_min: f64,
    pub mpps_max: f64,
    pub ns_per_packet_median: f64,
    pub instructions_per_packet: Option<f64>,
    /// Throughput relative to the first row (1.00 for it).
    pub relative: f64,
}

fn rel_text(r: &Row, first: bool) -> String {
    if first {
        "1.00".into()
    } else {
        format!("{:.3}", r.relative)
    }
}

/// hyperfine's `--export-markdown` layout: one row per measured binary or baseline.
pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::from(
        "| Command | Mpps median | Mpps min | Mpps max | ns/pkt median | instructions/pkt | Relative |\n|:---|---:|---:|---:|---:|---:|---:|\n",
    );
    for (i, r) in rows.iter().enumerate() {
        let instr = r.instructions_per_packet.map_or("-".into(), |x| format!("{x:.2}"));
        s += &format!(
            "| `{}` | {:.3} | {:.3} | {:.3} | {:.2} | {} | {} |\n",
            r.command.replace('|', "\\|"),
            r.mpps_median,
            r.mpps_min,
            r.mpps_max,
            r.ns_per_packet_median,
            instr,
            rel_text(r, i == 0)
        );
    }
    s
}

/// hyperfine's `--export-csv` layout (one header line, then one line per row).
pub fn csv(rows: &[Row]) -> String {
    let mut s =
        String::from("command,mpps_median,mpps_min,mpps_max,ns_per_packet_median,instructions_per_packet,relative\n");
    for r in rows {
        let cmd = if r.command.contains([',', '"']) {
            format!("\"{}\"", r.command.replace('"', "\"\""))
        } else {
            r.command.clone()
        };
        let instr = r.instructions_per_packet.map_or(String::new(), |x| format!("{x:.4}"));
        s += &format!(
            "{cmd},{:.6},{:.6},{:.6},{:.4},{instr},{:.6}\n",
            r.mpps_median, r.mpps_min, r.mpps_max, r.ns_per_packet_median, r.relative
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Row> {
        vec![
            Row {
                command: "baseline /tmp/popgo".into(),
                mpps_median: 20.0,
                mpps_min: 19.0,
                mpps_max: 21.0,
                ns_per_packet_median: 50.0,
                instructions_per_packet: Some(320.5),
                relative: 1.0,
            },
            Row {
                command: "popgo, \"slow\"".into(),
                mpps_median: 10.0,
                mpps_min: 9.5,
                mpps_max: 10.5,
                ns_per_packet_median: 100.0,
                instructions_per_packet: None,
                relative: 0.5,
            },
        ]
    }

    #[test]
    fn exports() {
        let m = markdown(&rows());
        let lines: Vec<&str> = m.lines().collect();
        assert_eq!(lines.len(), 4, "{m}");
        assert!(
            lines[2].starts_with("| `baseline /tmp/popgo` | 20.000 | 19.000 | 21.000 | 50.00 | 320.50 | 1.00 |"),
            "{m}"
        );
        assert!(lines[3].ends_with("| - | 0.500 |"), "{m}");
        let c = csv(&rows());
        let lines: Vec<&str> = c.lines().collect();
        assert_eq!(lines[1], "baseline /tmp/popgo,20.000000,19.000000,21.000000,50.0000,320.5000,1.000000");
        assert!(lines[2].starts_with("\"popgo, \"\"slow\"\"\",10.0"), "{c}");
    }
}

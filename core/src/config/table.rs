//! Route table files: the compact input for big tables (`[bgp] table = "FILE"`).
//!
//! One labelled route per line, fields separated by spaces or tabs:
//!
//! ```text
//! # PREFIX          NEXT-HOP        [LABEL]
//! 10.0.0.16/32      192.168.0.1     16
//! 2001:db8::/48     fd00::1
//! ```
//!
//! A line stands for `ip route-static PREFIX NEXT-HOP` plus `network PREFIX [label
//! LABEL]`: the route goes after the config's `[[static_route]]`s, the network after its
//! `[[bgp.network]]`s, both in file order. `#` starts a comment; blank lines are skipped.
//! The rules are the config file's (a known neighbor of the prefix's family, host bits
//! clear, unique networks and labels, static labels only per-route); an error names the
//! file and the line.
//!
//! The file is streamed line by line (no TOML document, no per-field `String`, nothing
//! reserved ahead of the lines that are routes): a million lines take a few hundred
//! milliseconds and the [`StaticRoute`] and [`Network`] they become (88 bytes per
//! route). It must be a regular file (a FIFO or a device would block a reload or never
//! end) of at most [`MAX_FILE_BYTES`], with lines of at most [`MAX_LINE_BYTES`].

use super::{FastMap, FastSet, LabelMode, LabelSet, Neighbor, Network, Prefix, StaticRoute};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Read};
use std::net::IpAddr;
use std::path::Path;

/// The largest table file read: about 7 million lines, several times the 2^20 labels
/// a table can hold.
pub const MAX_FILE_BYTES: u64 = 256 << 20;
/// The longest line (a route line is under 100 bytes).
pub const MAX_LINE_BYTES: usize = 4096;

/// Why a table file was not read.
#[derive(Debug)]
pub(super) enum ReadError {
    /// The file as a whole (not found, not a regular file, too big).
    File(String),
    /// A line: 1-based, and what is wrong with it.
    Line(usize, String),
}

/// Opens `path` (refusing anything but a regular file of at most [`MAX_FILE_BYTES`],
/// without blocking on a FIFO) and reads it as [`read`] does.
pub(super) fn read_file(
    path: &Path,
    c: Checks<'_>,
    routes: &mut Vec<StaticRoute>,
    networks: &mut Vec<Network>,
) -> Result<(), ReadError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| ReadError::File(e.to_string()))?;
    let meta = file.metadata().map_err(|e| ReadError::File(e.to_string()))?;
    if !meta.is_file() {
        return Err(ReadError::File("not a regular file".into()));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(ReadError::File(format!(
            "{} bytes, over the {} MiB a table file may have",
            meta.len(),
            MAX_FILE_BYTES >> 20
        )));
    }
    // The file may grow while it is read: never past the limit.
    let input = std::io::BufReader::with_capacity(1 << 16, file.take(MAX_FILE_BYTES + 1));
    read(input, c, routes, networks)
}

/// What a table line is checked against: the config read so far.
pub(super) struct Checks<'a> {
    pub neighbors: &'a [Neighbor],
    /// The config's `[[static_route]]`s (a table line may not repeat one).
    pub routes: &'a HashSet<(Prefix, IpAddr)>,
    pub label_mode: LabelMode,
    /// Prefixes of the networks so far (the config's, then the table's).
    pub net_prefixes: &'a mut FastSet<Prefix>,
    /// Static labels of the config's `[[bgp.network]]`s.
    pub labels: &'a FastMap<u32, Prefix>,
    /// The routing table the lines are in: 0 for the public table, a VPN instance's
    /// VRF id for its `[[bgp.vpn_instance]] table` (next hops are that instance's
    /// neighbors; VPN routes take no static label).
    pub vrf: u16,
}

/// Parses a table from `input`, appending a route and a network per line.
pub(super) fn read(
    mut input: impl BufRead,
    c: Checks<'_>,
    routes: &mut Vec<StaticRoute>,
    networks: &mut Vec<Network>,
) -> Result<(), ReadError> {
    match read_lines(&mut input, c, routes, networks) {
        Err((0, msg)) => Err(ReadError::File(msg)),
        Err((line, msg)) => Err(ReadError::Line(line, msg)),
        Ok(()) => Ok(()),
    }
}

/// [`read`]; an error is the 1-based line (0: the file) and what is wrong.
fn read_lines(
    input: &mut impl BufRead,
    c: Checks<'_>,
    routes: &mut Vec<StaticRoute>,
    networks: &mut Vec<Network>,
) -> Result<(), (usize, String)> {
    // Families of the neighbors (a next hop must be one of its prefix's family).
    let neighbors: HashMap<IpAddr, ()> = c.neighbors.iter().filter(|n| n.vrf == c.vrf).map(|n| (n.ip, ())).collect();
    let mut labels = LabelSet::default();
    for l in c.labels.keys() {
        labels.insert(*l);
    }
    let first_net = networks.len();
    let mut raw = Vec::with_capacity(128);
    let mut total = 0u64;
    for line in 1.. {
        raw.clear();
        let n = input
            .by_ref()
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut raw)
            .map_err(|e| (0, format!("reading line {line}: {e}")))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > MAX_FILE_BYTES {
            return Err((0, format!("over the {} MiB a table file may have", MAX_FILE_BYTES >> 20)));
        }
        if raw.last() == Some(&b'\n') {
            raw.pop();
        } else if raw.len() > MAX_LINE_BYTES {
            return Err((line, format!("longer than {MAX_LINE_BYTES} bytes")));
        }
        let text = std::str::from_utf8(&raw).map_err(|_| (line, "not UTF-8".to_string()))?;
        let text = text.split('#').next().unwrap_or("");
        let mut fields = text.split_ascii_whitespace();
        let Some(prefix) = fields.next() else { continue };
        let (nh, label, extra) = (fields.next(), fields.next(), fields.next());
        let Some(nh) = nh else {
            return Err((line, format!("{:?}: want PREFIX NEXT-HOP [LABEL]", text.trim())));
        };
        if let Some(x) = extra {
            return Err((line, format!("unexpected {x:?} after the label (want PREFIX NEXT-HOP [LABEL])")));
        }
        let prefix = Prefix::parse(prefix).map_err(|m| (line, m))?.in_vrf(c.vrf);
        if c.vrf != 0 && label.is_some() {
            return Err((line, "VPN routes take labels from the dynamic range (want PREFIX NEXT-HOP)".into()));
        }
        let next_hop: IpAddr = nh.parse().map_err(|_| (line, format!("next hop {nh:?} is not an IP address")))?;
        if prefix.is_v4() != next_hop.is_ipv4() {
            return Err((line, format!("next hop {next_hop} is not of the family of {prefix}")));
        }
        if !neighbors.contains_key(&next_hop) {
            return Err((line, format!("next hop {next_hop} is not a known neighbor (add a [[neighbor]] for it)")));
        }
        if c.routes.contains(&(prefix, next_hop)) {
            return Err((line, format!("duplicate route {prefix} via {next_hop} (also a [[static_route]])")));
        }
        let label = match label {
            None => None,
            Some(l) => {
                let v: i64 = l.parse().map_err(|_| (line, format!("label {l:?} is not a number")))?;
                let l = super::check_label(v).map_err(|m| (line, m))?;
                if c.label_mode != LabelMode::PerRoute {
                    return Err((line, "a static label is only valid with label_mode = \"per-route\"".into()));
                }
                if !labels.insert(l) {
                    let other = c
                        .labels
                        .get(&l)
                        .copied()
                        .or_else(|| networks[first_net..].iter().find(|n| n.label == Some(l)).map(|n| n.prefix));
                    let other = other.map_or(String::new(), |p| format!(" (already used by network {p})"));
                    return Err((line, format!("duplicate label {l}{other}")));
                }
                Some(l)
            }
        };
        if !c.net_prefixes.insert(prefix) {
            return Err((line, format!("duplicate network {prefix}")));
        }
        routes.push(StaticRoute { prefix, next_hop, line });
        networks.push(Network { prefix, label, line });
    }
    Ok(())
}

/// Writes one table line (`gen synth --table-out`, and what [`read`] reads back).
pub fn write_line(
    out: &mut impl std::io::Write,
    prefix: Prefix,
    next_hop: IpAddr,
    label: Option<u32>,
) -> std::io::Result<()> {
    match label {
        Some(l) => writeln!(out, "{prefix} {next_hop} {l}"),
        None => writeln!(out, "{prefix} {next_hop}"),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};

    const SEED: &str = include_str!("../../../pcaps/seed.toml");

    /// The seed config with its networks (and their routes) moved to a table file.
    fn with_table(table: &str) -> (tempfile::TempDir, Result<Config, ConfigError>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("routes.txt"), table).unwrap();
        let text = SEED.replacen("label_base = 48000", "label_base = 48000\ntable = \"routes.txt\"", 1);
        let cfg_path = dir.path().join("c.toml");
        std::fs::write(&cfg_path, text).unwrap();
        let r = Config::load(&cfg_path);
        (dir, r)
    }

    #[test]
    fn table_lines_become_routes_and_networks_after_the_configs() {
        let (_d, c) = with_table(
            "# prefix next-hop label\n10.2.0.0/16 192.168.20.1 50000\n\n10.3.0.0/16\t192.168.10.1  # dynamic\n",
        );
        let c = c.unwrap();
        assert_eq!(c.static_routes.len(), 4);
        assert_eq!(c.static_routes[2].prefix.to_string(), "10.2.0.0/16");
        assert_eq!(c.static_routes[3].next_hop.to_string(), "192.168.10.1");
        let b = c.bgp.as_ref().unwrap();
        let nets: Vec<_> = b.networks.iter().map(|n| (n.prefix.to_string(), n.label, n.line)).collect();
        assert_eq!(
            nets,
            [
                ("10.1.1.0/24".to_string(), Some(48122), nets[0].2),
                ("10.2.0.0/16".into(), Some(50000), 2),
                ("10.3.0.0/16".into(), None, 4)
            ]
        );
        // The same config as the one written out in full (routes and networks in TOML).
        let full = Config::parse(&c.to_toml()).unwrap();
        let strip = |c: &Config| {
            let mut c = c.clone();
            c.static_routes.iter_mut().for_each(|r| r.line = 0);
            c.bgp.iter_mut().flat_map(|b| b.networks.iter_mut()).for_each(|n| n.line = 0);
            c.neighbors.iter_mut().for_each(|n| n.line = 0);
            c
        };
        assert_eq!(strip(&c), strip(&full));
    }

    #[test]
    fn errors_name_the_file_and_the_line() {
        let cases = [
            ("10.2.0.0/16 192.168.99.1\n", 1, "not a known neighbor"),
            ("\n10.2.0.1/16 192.168.20.1\n", 2, "host bits set"),
            ("10.2.0.0/16 2001:db8::1\n", 1, "not of the family"),
            ("10.2.0.0/16 192.168.20.1 15\n", 1, "outside 16..=1048575"),
            ("10.2.0.0/16 192.168.20.1 48122\n", 1, "duplicate label 48122 (already used by network 10.1.1.0/24)"),
            (
                "10.2.0.0/16 192.168.20.1 7000\n10.3.0.0/16 192.168.20.1 7000\n",
                2,
                "duplicate label 7000 (already used by network 10.2.0.0/16)",
            ),
            ("10.2.0.0/16 192.168.20.1\n10.2.0.0/16 192.168.10.1\n", 2, "duplicate network 10.2.0.0/16"),
            ("10.1.1.0/24 192.168.10.1\n", 1, "duplicate route 10.1.1.0/24 via 192.168.10.1"),
            ("10.1.1.0/24 192.168.20.1\n", 1, "duplicate network 10.1.1.0/24"),
            ("10.2.0.0/16\n", 1, "want PREFIX NEXT-HOP [LABEL]"),
            ("10.2.0.0/16 192.168.20.1 16 17\n", 1, "unexpected \"17\""),
            ("10.2.0.0/16 192.168.20.1 x\n", 1, "label \"x\" is not a number"),
        ];
        for (table, line, want) in cases {
            let (_d, r) = with_table(table);
            let e = r.unwrap_err().to_string();
            assert!(e.contains(&format!("routes.txt: line {line}: ")) && e.contains(want), "{table:?}: {e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, SEED.replacen("label_base = 48000", "label_base = 48000\ntable = \"nope.txt\"", 1)).unwrap();
        let e = Config::load(&p).unwrap_err().to_string();
        assert!(e.contains("bgp.table") && e.contains("nope.txt"), "{e}");
        let text = SEED
            .replacen("label_mode = \"per-route\"", "label_mode = \"per-nexthop\"", 1)
            .replacen("label = 48122", "", 1)
            .replacen("label_base = 48000", "label_base = 48000\ntable = \"routes.txt\"", 1);
        std::fs::write(&p, text).unwrap();
        std::fs::write(dir.path().join("routes.txt"), "10.2.0.0/16 192.168.20.1 50000\n").unwrap();
        let e = Config::load(&p).unwrap_err().to_string();
        assert!(e.contains("routes.txt: line 1: a static label is only valid"), "{e}");
    }

    #[test]
    fn blank_lines_reserve_nothing_and_long_lines_are_refused() {
        // A million blank lines are valid and become no route: nothing is reserved for
        // them (reserving per line let a big file of blank lines abort the process).
        let (_d, c) = with_table(&"\n".repeat(1_000_000));
        let c = c.unwrap();
        assert_eq!(c.static_routes.len(), 2);
        assert!(c.static_routes.capacity() < 1000, "capacity {}", c.static_routes.capacity());
        let (_d, r) = with_table(&format!("10.2.0.0/16 192.168.20.1 {}\n", " ".repeat(5000)));
        let e = r.unwrap_err().to_string();
        assert!(e.contains("routes.txt: line 1: longer than 4096 bytes"), "{e}");
    }

    #[test]
    fn a_fifo_or_an_oversized_file_is_refused_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, SEED.replacen("label_base = 48000", "label_base = 48000\ntable = \"routes.txt\"", 1))
            .unwrap();
        let table = dir.path().join("routes.txt");
        assert!(std::process::Command::new("mkfifo").arg(&table).status().unwrap().success());
        // On a FIFO without a writer a blocking open never returns: load on a thread.
        let (tx, rx) = std::sync::mpsc::channel();
        let path = p.clone();
        std::thread::spawn(move || tx.send(Config::load(&path).map(|_| ()).map_err(|e| e.to_string())));
        let e = rx.recv_timeout(std::time::Duration::from_secs(5)).expect("load returns").unwrap_err();
        assert!(e.contains("bgp.table") && e.contains("routes.txt: not a regular file"), "{e}");
        std::fs::remove_file(&table).unwrap();
        // Sparse: the size is refused before a byte is read.
        std::fs::File::create(&table).unwrap().set_len(super::MAX_FILE_BYTES + 1).unwrap();
        let e = Config::load(&p).unwrap_err().to_string();
        assert!(e.contains("routes.txt: 268435457 bytes, over the 256 MiB"), "{e}");
    }
}

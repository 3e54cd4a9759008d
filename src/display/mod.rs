//! `display mpls lsp protocol bgp [verbose]` and `display current-configuration`
//! (`display mpls statistics lsp` is in `lsp_stats`):
//! the seed's verification commands, rendered from the built tables and the config;
//! the VRP output filters (`| include REGEX`, `| count`).
//!
//! Displays write through [`fmt::Write`] into a [`Lines`] sink, which splits the text
//! into lines, filters them and hands each to a consumer: a million-row table is
//! streamed, never built as one string (see `control::server` for the socket side).

mod lsp_stats;
mod vpn;

pub use lsp_stats::{lsp_statistics_stream, write_lsp_statistics, LspStatsQuery};
pub use vpn::{write_static_lsp, write_vpn_instance};

use crate::cmd::{build, load_config, usage, Failure};
use crate::config::{Config, Family, LabelMode, Network, StaticRoute, TtlMode};
use crate::ilm::Snapshot;
use crate::wire::ethernet::format_mac;
use clap::Args;
use std::fmt::{self, Write};
use std::path::PathBuf;

const RULE: &str = "-------------------------------------------------------------------------------";

/// VRP output filters after a display command: `| include REGEX` (lines matching the
/// regular expression), `| exclude REGEX` (lines not matching it) or `| begin REGEX`
/// (from the first matching line on), then optionally `| count` (the number of lines
/// instead of the lines: `Total lines: N.`). The regex runs to the end of the line,
/// except for a trailing `| count`.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub lines: Option<(Select, regex::Regex)>,
    pub count: bool,
}

/// Which lines a filter's regular expression selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Select {
    Include,
    Exclude,
    Begin,
}

impl PartialEq for Filter {
    fn eq(&self, o: &Filter) -> bool {
        let key = |f: &Filter| f.lines.as_ref().map(|(k, r)| (*k, r.as_str().to_string()));
        self.count == o.count && key(self) == key(o)
    }
}

impl Eq for Filter {}

impl Filter {
    /// Parses what follows the first `|` of a display line: `include|exclude|begin
    /// REGEX`, the same followed by `| count`, or `count` (keywords case-insensitive).
    pub fn parse(s: &str) -> Result<Filter, String> {
        let s = s.trim();
        let (rest, count) = match s.rsplit_once('|') {
            Some((head, tail)) if tail.trim().eq_ignore_ascii_case("count") => (head.trim(), true),
            _ if s.eq_ignore_ascii_case("count") => ("", true),
            _ => (s, false),
        };
        if rest.is_empty() {
            return if count { Ok(Filter { lines: None, count }) } else { Err(Self::usage()) };
        }
        let (kw, re) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let sel = match kw.to_ascii_lowercase().as_str() {
            "include" => Select::Include,
            "exclude" => Select::Exclude,
            "begin" => Select::Begin,
            _ => return Err(Self::usage()),
        };
        let re = re.trim();
        if re.is_empty() {
            return Err(format!("`| {}` needs a regular expression", kw.to_ascii_lowercase()));
        }
        let r =
            regex::Regex::new(re).map_err(|e| format!("bad regular expression {re:?}: {}", regex_error_line(&e)))?;
        Ok(Filter { lines: Some((sel, r)), count })
    }

    fn usage() -> String {
        "unknown output filter; known: | include REGEX, | exclude REGEX, | begin REGEX, each optionally followed by \
         | count, and | count"
            .into()
    }

    /// Splits a display line at its first `|`: the command, and its filter if any.
    pub fn split(line: &str) -> Result<(&str, Filter), String> {
        match line.split_once('|') {
            Some((cmd, f)) => Ok((cmd, Filter::parse(f)?)),
            None => Ok((line, Filter::default())),
        }
    }
}

/// A regex error in one line: the regex crate's syntax errors are several lines (the
/// pattern, a caret line under the fault, then `error: WHAT`), and an error here is one
/// line of a control-plane reply. Kept: what is wrong and the 1-based column of the caret.
fn regex_error_line(e: &regex::Error) -> String {
    let text = e.to_string();
    let lines: Vec<&str> = text.lines().collect();
    let what = lines.iter().rev().find_map(|l| l.strip_prefix("error: "));
    let caret = lines.iter().position(|l| l.trim_start().starts_with('^'));
    match (what, caret) {
        (Some(what), Some(i)) if i > 0 => {
            let indent = lines[i - 1].len() - lines[i - 1].trim_start().len();
            let col = lines[i].find('^').unwrap_or(indent).saturating_sub(indent) + 1;
            format!("{what} (column {col})")
        }
        (Some(what), _) => what.to_string(),
        _ => lines.iter().map(|l| l.trim()).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" "),
    }
}

/// A line sink: text written into it (through [`fmt::Write`]) is split into lines,
/// filtered, and each kept line is passed to `out` without its newline. The first error
/// `out` returns stops the output and is kept for [`Lines::finish`].
pub struct Lines<'a, E> {
    out: &'a mut dyn FnMut(&str) -> Result<(), E>,
    filter: &'a Filter,
    buf: String,
    counted: u64,
    /// `| begin`: a line matched, so every line from there on is kept.
    begun: bool,
    err: Option<E>,
}

impl<'a, E> Lines<'a, E> {
    pub fn new(filter: &'a Filter, out: &'a mut dyn FnMut(&str) -> Result<(), E>) -> Lines<'a, E> {
        Lines { out, filter, buf: String::new(), counted: 0, begun: false, err: None }
    }

    fn line(&mut self, l: &str) {
        if self.err.is_some() {
            return;
        }
        let keep = match &self.filter.lines {
            None => true,
            Some((Select::Include, r)) => r.is_match(l),
            Some((Select::Exclude, r)) => !r.is_match(l),
            Some((Select::Begin, r)) => {
                self.begun = self.begun || r.is_match(l);
                self.begun
            }
        };
        if !keep {
            return;
        }
        if self.filter.count {
            self.counted += 1;
        } else if let Err(e) = (self.out)(l) {
            self.err = Some(e);
        }
    }

    /// Ends the output: a last unterminated line, the count line of `| count`.
    pub fn finish(mut self) -> Result<(), E> {
        if !self.buf.is_empty() {
            let last = std::mem::take(&mut self.buf);
            self.line(&last);
        }
        if self.filter.count && self.err.is_none() {
            let n = self.counted;
            if let Err(e) = (self.out)(&format!("Total lines: {n}.")) {
                self.err = Some(e);
            }
        }
        self.err.map_or(Ok(()), Err)
    }

    /// True once the consumer failed (the rest of the output is dropped): producers of
    /// long outputs may stop early.
    pub fn failed(&self) -> bool {
        self.err.is_some()
    }
}

impl<E> fmt::Write for Lines<'_, E> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(i) = rest.find('\n') {
            if self.buf.is_empty() {
                self.line(&rest[..i]);
            } else {
                self.buf.push_str(&rest[..i]);
                let l = std::mem::take(&mut self.buf);
                self.line(&l);
            }
            rest = &rest[i + 1..];
        }
        self.buf.push_str(rest);
        Ok(())
    }
}

/// Runs `render` into a string through `filter` (displays that are not streamed, and
/// callers that want the text).
pub fn to_string(filter: &Filter, render: impl FnOnce(&mut Lines<'_, std::convert::Infallible>)) -> String {
    let mut text = String::new();
    let mut out = |l: &str| -> Result<(), std::convert::Infallible> {
        text.push_str(l);
        text.push('\n');
        Ok(())
    };
    let mut lines = Lines::new(filter, &mut out);
    render(&mut lines);
    let _ = lines.finish();
    text
}

/// The names a display shows for port indices and VRF ids.
#[derive(Clone, Debug, Default)]
pub struct Names {
    pub ports: Vec<String>,
    /// (VRF id, VPN instance name).
    pub vrfs: Vec<(u16, String)>,
}

impl Names {
    pub fn of(cfg: &Config) -> Names {
        Names {
            ports: cfg.ports.iter().map(|p| p.name.clone()).collect(),
            vrfs: cfg.vpn_instances.iter().map(|v| (v.id, v.name.clone())).collect(),
        }
    }

    fn port(&self, p: Option<usize>) -> &str {
        p.and_then(|i| self.ports.get(i)).map_or("-", |p| p)
    }

    /// The VPN instance of VRF `vrf`; "" for the public table.
    fn vrf(&self, vrf: u16) -> &str {
        self.vrfs.iter().find(|(v, _)| *v == vrf).map_or("", |(_, n)| n)
    }
}

/// The BGP LSP table. Label Operation is POPGO or POP.
pub fn mpls_lsp_bgp(cfg: &Config, snap: &Snapshot, verbose: bool) -> String {
    to_string(&Filter::default(), |out| write_mpls_lsp_bgp(out, &Names::of(cfg), snap, verbose))
}

/// Writes the BGP LSP table row by row into `s` (stops early once a [`Lines`] consumer
/// failed). VPN instances' LSPs (L3VPN egress labels) carry their instance in a last
/// `Vrf Name` column, which is there only when the table has VPN LSPs.
pub fn write_mpls_lsp_bgp<E>(s: &mut Lines<'_, E>, names: &Names, snap: &Snapshot, verbose: bool) {
    let _ = writeln!(s, "{RULE}\n                 LSP Information: BGP  LSP\n{RULE}");
    let port = |p: Option<usize>| names.port(p);
    if !verbose {
        let vpn = !names.vrfs.is_empty() && snap.lsps.iter().any(|l| l.fec.vrf != 0);
        let vrf_head = if vpn { " Vrf Name" } else { "" };
        let _ = writeln!(
            s,
            "{:<20} {:<16} {:<16} {:<16} Label Operation{vrf_head}",
            "FEC", "In/Out Label", "In/Out IF", "Next Hop"
        );
        // Columns padded by hand from reused buffers: a million rows format in well
        // under a second.
        let (mut fec, mut label, mut nh) = (String::new(), String::new(), String::new());
        for r in snap.lsp_rows() {
            if s.failed() {
                return;
            }
            fec.clear();
            label.clear();
            nh.clear();
            let _ = write!(fec, "{}", r.fec);
            let _ = write!(label, "{}/NULL", r.in_label);
            match r.next_hop {
                Some(n) => {
                    let _ = write!(nh, "{n}");
                }
                None => nh.push('-'),
            }
            if vpn {
                let _ = writeln!(
                    s,
                    "{fec:<20} {label:<16} -/{:<14} {nh:<16} {:<15} {}",
                    port(r.out_port),
                    r.op.name(),
                    names.vrf(r.fec.vrf)
                );
            } else {
                let _ = writeln!(s, "{fec:<20} {label:<16} -/{:<14} {nh:<16} {}", port(r.out_port), r.op.name());
            }
        }
    } else {
        for (i, r) in snap.lsp_rows().enumerate() {
            if s.failed() {
                return;
            }
            let _ = writeln!(s, " No                  :  {}", i + 1);
            let _ = writeln!(s, " VrfIndex            :  {}", names.vrf(r.fec.vrf));
            let _ = writeln!(s, " Fec                 :  {}", r.fec);
            let _ = writeln!(s, " Nexthop             :  {}", r.next_hop.map_or("-".into(), |n| n.to_string()));
            let _ = writeln!(s, " In-Label            :  {}", r.in_label);
            let _ = writeln!(s, " Out-Label           :  NULL");
            let _ = writeln!(s, " In-Interface        :  ----------");
            let _ = writeln!(s, " OutInterface        :  {}", port(r.out_port));
            let _ = writeln!(s, " LspIndex            :  {}", i);
            let _ = writeln!(s, " Label Operation     :  {}", r.op.name());
            let _ = writeln!(s, " Mpls-Mtu            :  ------\n");
        }
    }
    let _ = writeln!(s, "{RULE}\nTotal: {} LSP(s)", snap.lsps.len());
}

/// The configuration in VRP syntax (what `display current-configuration` prints).
pub fn current_configuration(cfg: &Config) -> String {
    to_string(&Filter::default(), |out| {
        write_current_configuration(
            out,
            cfg,
            cfg.bgp.iter().flat_map(|b| b.networks.iter().cloned()),
            cfg.static_routes.iter().cloned(),
        )
    })
}

/// Writes `display current-configuration` for `head` (device, ports, neighbors, BGP
/// header and peers) with the given networks and routes (the control plane passes its
/// indexed store's, so a big table is never copied into a `Config`).
pub fn write_current_configuration(
    s: &mut impl fmt::Write,
    cfg: &Config,
    networks: impl Iterator<Item = Network>,
    routes: impl Iterator<Item = StaticRoute>,
) {
    let _ = writeln!(s, "#\n sysname {}", cfg.device);
    vpn::write_head(s, cfg);
    if cfg.ttl_mode == TtlMode::Pipe {
        let _ = writeln!(s, "#\n mpls\n  undo ttl propagate");
    }
    for p in &cfg.ports {
        let _ = writeln!(s, "#\ninterface {}", p.name);
        if let Some(i) = &p.iface {
            let _ = writeln!(s, " description os-interface {i}");
        }
        if p.vrf != 0 {
            let _ = writeln!(s, " ip binding vpn-instance {}", cfg.vrf_name(p.vrf));
        }
        let _ = writeln!(s, " mac-address {}", format_mac(&p.mac));
    }
    for n in &cfg.neighbors {
        let kw = if n.ip.is_ipv4() { "arp static" } else { "ipv6 neighbor" };
        let _ = writeln!(s, "#\n{kw} {} {} interface {}", n.ip, format_mac(&n.mac), n.port);
    }
    if let Some(b) = &cfg.bgp {
        let _ = writeln!(s, "#\nbgp {}", b.asn);
        if let Some(id) = b.router_id {
            let _ = writeln!(s, " router-id {id}");
        }
        for p in &b.peers {
            let _ = writeln!(s, " peer {} as-number {}", p.address, p.asn);
            if let Some(r) = &p.route_limit {
                let _ = writeln!(s, " peer {} route-limit {}", p.address, r.words());
            }
            match &p.password {
                Some(k) if k.cipher => {
                    let _ = writeln!(s, " peer {} password cipher ******", p.address);
                }
                Some(k) => {
                    let _ = writeln!(s, " peer {} password simple {}", p.address, k.key);
                }
                None => {}
            }
            if let Some(h) = p.ttl_hops {
                let _ = writeln!(s, " peer {} valid-ttl-hops {h}", p.address);
            }
            if let Some(src) = p.source {
                let _ = writeln!(s, " # peer {} source {src} (config file only)", p.address);
            }
        }
        match (b.label_mode, b.pop_go) {
            (LabelMode::PerRoute, true) => {
                let _ = writeln!(s, " apply-label per-route pop-go");
            }
            (LabelMode::PerRoute, false) => {}
            (m, true) => {
                let _ = writeln!(s, " apply-label {}\n apply-label per-route pop-go", m.name());
            }
            (m, false) => {
                let _ = writeln!(s, " apply-label {}", m.name());
            }
        }
        let mut vpn_nets = Vec::new();
        for n in networks {
            if n.prefix.vrf != 0 {
                vpn_nets.push(n);
                continue;
            }
            match n.label {
                Some(l) => {
                    let _ = writeln!(s, " network {} {} label {l}", n.prefix.addr, n.prefix.len);
                }
                None => {
                    let _ = writeln!(s, " network {} {}", n.prefix.addr, n.prefix.len);
                }
            }
        }
        // Peers with explicit families; the others run the defaults (IPv4 labeled
        // unicast, plus 6PE when there are IPv6 networks).
        for (view, fam) in [
            ("ipv4-family unicast", Family::Ipv4LabeledUnicast),
            ("ipv6-family unicast", Family::Ipv6LabeledUnicast),
            ("ipv4-family vpnv4", Family::Vpnv4),
            ("ipv6-family vpnv6", Family::Vpnv6),
        ] {
            let explicit: Vec<_> = b.peers.iter().filter_map(|p| Some((p.address, p.families?))).collect();
            // 6PE's own pop-go switch, when set apart from the BGP view's.
            let pop_go_v6 = b.pop_go_v6.filter(|_| fam == Family::Ipv6LabeledUnicast);
            if explicit.is_empty() && pop_go_v6.is_none() {
                continue;
            }
            let _ = writeln!(s, " #\n {view}");
            match pop_go_v6 {
                Some(true) => {
                    let _ = writeln!(s, "  apply-label per-route pop-go");
                }
                Some(false) => {
                    let _ = writeln!(s, "  undo apply-label per-route pop-go");
                }
                None => {}
            }
            for (a, f) in explicit {
                if f.contains(fam) && fam.is_vpn() {
                    let _ = writeln!(s, "  peer {a} enable");
                } else if f.contains(fam) {
                    let _ = writeln!(s, "  peer {a} enable\n  peer {a} label-route-capability");
                } else if fam == Family::Ipv4LabeledUnicast {
                    let _ = writeln!(s, "  undo peer {a} enable");
                }
            }
        }
        vpn::write_bgp_families(s, cfg, &vpn_nets);
    }
    let _ = writeln!(s, "#");
    for r in routes {
        let kw = if r.prefix.is_v4() { "ip route-static" } else { "ipv6 route-static" };
        if r.prefix.vrf != 0 {
            let vrf = cfg.vrf_name(r.prefix.vrf);
            let _ = writeln!(s, "{kw} vpn-instance {vrf} {} {} {}", r.prefix.addr, r.prefix.len, r.next_hop);
        } else {
            let _ = writeln!(s, "{kw} {} {} {}", r.prefix.addr, r.prefix.len, r.next_hop);
        }
    }
    vpn::write_tail(s, cfg);
    let _ = writeln!(s, "#\nreturn");
}

/// `popgo display` arguments.
#[derive(Args, Debug)]
pub struct DisplayArgs {
    /// The device configuration (TOML).
    #[arg(long)]
    pub config: PathBuf,
    /// The display command words, e.g. `mpls lsp protocol bgp`, optionally followed by
    /// an output filter: `| include REGEX`, `| count` (quote the `|` for the shell).
    #[arg(required = true, num_args = 1..)]
    pub words: Vec<String>,
}

/// What `popgo display` shows.
#[derive(Clone, Copy)]
enum What {
    Lsp(bool),
    Config,
    VpnInstance(bool),
    StaticLsp,
}

/// Entry point of `popgo display`: the output is streamed to stdout line by line.
pub fn main(a: DisplayArgs) -> Result<(), Failure> {
    let joined = a.words.join(" ");
    let (cmd, filter) = Filter::split(&joined).map_err(|e| usage(anyhow::anyhow!("{e}")))?;
    let w: Vec<&str> = cmd.split_whitespace().collect();
    let lower: Vec<String> = w.iter().map(|x| x.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    let what = match lower.as_slice() {
        ["mpls", "lsp", "protocol", "bgp"] => What::Lsp(false),
        ["mpls", "lsp", "protocol", "bgp", "verbose"] => What::Lsp(true),
        ["current-configuration"] => What::Config,
        ["ip", "vpn-instance"] => What::VpnInstance(false),
        ["ip", "vpn-instance", "verbose"] => What::VpnInstance(true),
        ["mpls", "static-lsp"] => What::StaticLsp,
        _ => {
            return Err(usage(anyhow::anyhow!(
                "unknown display command {:?}; known: `mpls lsp protocol bgp [verbose]`, `current-configuration`, \
                 `ip vpn-instance [verbose]`, `mpls static-lsp` (each with `| include REGEX`, `| count`)",
                cmd.trim()
            )))
        }
    };
    let verbose = match what {
        What::Lsp(v) => Some(v),
        _ => None,
    };
    let cfg = load_config(&a.config)?;
    let snap = match verbose {
        Some(_) => Some(build(&cfg)?),
        None => None,
    };
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut out = |l: &str| -> std::io::Result<()> {
        use std::io::Write as _;
        w.write_all(l.as_bytes())?;
        w.write_all(b"\n")
    };
    let mut lines = Lines::new(&filter, &mut out);
    match (what, &snap) {
        (What::Lsp(v), Some(snap)) => write_mpls_lsp_bgp(&mut lines, &Names::of(&cfg), snap, v),
        (What::VpnInstance(v), _) => write_vpn_instance(&mut lines, &cfg, v),
        (What::StaticLsp, _) => write_static_lsp(&mut lines, &cfg),
        _ => write_current_configuration(
            &mut lines,
            &cfg,
            cfg.bgp.iter().flat_map(|b| b.networks.iter().cloned()),
            cfg.static_routes.iter().cloned(),
        ),
    }
    let done = lines.finish().and_then(|_| std::io::Write::flush(&mut w));
    match done {
        // `popgo display ... | head` closes the pipe early: not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.map_err(|e| crate::cmd::runtime(anyhow::anyhow!("writing the display: {e}"))),
    }
}

/// `popgo check` arguments.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The device configuration (TOML) to load and build tables from.
    #[arg(long)]
    pub config: PathBuf,
}

/// Entry point of `popgo check`: loads the config, builds the tables, prints a summary.
pub fn check_main(a: CheckArgs) -> Result<(), Failure> {
    let cfg = load_config(&a.config)?;
    let snap = build(&cfg)?;
    if std::env::var_os("POPGO_MEMORY").is_some() {
        let (ilm, fib, lsp) = snap.heap_bytes();
        eprintln!("memory: ilm {ilm} fib {fib} lsp {lsp} bytes");
    }
    println!(
        "{}: ok: {} ports, {} neighbors, {} static routes, {} BGP LSPs, {} ILM entries",
        a.config.display(),
        cfg.ports.len(),
        cfg.neighbors.len(),
        cfg.static_routes.len(),
        snap.lsps.len(),
        snap.ilm.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_table_shows_popgo_then_pop() {
        let mut cfg = Config::parse(include_str!("../../pcaps/seed.toml")).unwrap();
        let t = mpls_lsp_bgp(&cfg, &crate::ilm::build(&cfg, 0).unwrap(), false);
        let row = t.lines().find(|l| l.starts_with("10.1.1.0/24")).expect(&t);
        assert!(row.contains("48122/NULL") && row.contains("-/to-A") && row.ends_with("POPGO"), "{row}");
        assert!(t.contains("Label Operation"));
        cfg.bgp.as_mut().unwrap().pop_go = false;
        let t = mpls_lsp_bgp(&cfg, &crate::ilm::build(&cfg, 0).unwrap(), true);
        assert!(t.contains(" Label Operation     :  POP\n"), "{t}");
        assert!(!t.contains("POPGO"));
        let c = current_configuration(&cfg);
        assert!(c.contains("bgp 100\n network 10.1.1.0 24 label 48122\n"), "{c}");
        assert!(c.contains("ip route-static 10.1.1.0 30 192.168.20.1"));
    }

    #[test]
    fn filters_include_and_count() {
        let cfg = Config::parse(include_str!("../../pcaps/seed.toml")).unwrap();
        let snap = crate::ilm::build(&cfg, 0).unwrap();
        let render = |f: &str| {
            let (_, filter) = Filter::split(&format!("display mpls lsp protocol bgp{f}")).unwrap();
            to_string(&filter, |out| write_mpls_lsp_bgp(out, &Names::of(&cfg), &snap, false))
        };
        assert_eq!(render(""), mpls_lsp_bgp(&cfg, &snap, false));
        assert_eq!(
            render(" | include POPGO$"),
            "10.1.1.0/24          48122/NULL       -/to-A           192.168.10.1     POPGO\n"
        );
        assert_eq!(render(" | count"), format!("Total lines: {}.\n", render("").lines().count()));
        assert_eq!(render(" | INCLUDE ^(FEC|Total) | count"), "Total lines: 2.\n");
        assert_eq!(render(" | include nothing-matches"), "");
        for bad in [" | grep x", " | include", " | include (", " |"] {
            assert!(Filter::split(&format!("display x{bad}")).is_err(), "{bad}");
        }
        let (cmd, f) = Filter::split("display current-configuration | include a|b").unwrap();
        let (sel, re) = f.lines.unwrap();
        assert_eq!((cmd, sel, re.as_str(), f.count), ("display current-configuration ", Select::Include, "a|b", false));
        // `| exclude` drops the matching lines, `| begin` starts at the first match.
        let all = render("");
        let without: Vec<&str> = all.lines().filter(|l| !l.contains("POPGO")).collect();
        assert_eq!(render(" | exclude POPGO"), format!("{}\n", without.join("\n")));
        let from = all.find("10.1.1.0/24").unwrap();
        assert_eq!(render(" | begin ^10\\.1\\.1\\.0/24"), all[from..]);
        assert_eq!(render(" | Begin ^10\\.1 | count"), format!("Total lines: {}.\n", all[from..].lines().count()));
    }
}

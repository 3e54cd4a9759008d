//! `popgo gen`: writes captures: the seed scenario's, synthetic label streams, or
//! traffic described by a profile.

use crate::cmd::{runtime, usage, Failure};
use crate::traffic::dist::LabelDist;
use crate::traffic::frames::{l3vpn_frames, seed_frames, EPOCH_NS};
use crate::traffic::synth::{
    synth_config, synth_mrt_config, synth_table_config, write_synth_mrt, write_synth_table, Synth,
};
use anyhow::Context;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum GenCmd {
    /// The seed capture (pcaps/seed.pcap): traffic to 10.1.1.1/.2/.3/.5 plus bad frames.
    Seed {
        /// The pcap file to write.
        #[arg(long)]
        out: PathBuf,
        /// Also print what each frame is.
        #[arg(long)]
        describe: bool,
    },
    /// The L3VPN capture (pcaps/l3vpn.pcap): VPN labels of two instances, with and
    /// without the transport label on top.
    L3vpn {
        /// The pcap file to write.
        #[arg(long)]
        out: PathBuf,
        /// Also print what each frame is.
        #[arg(long)]
        describe: bool,
    },
    /// Synthetic MPLS traffic, and optionally the config that forwards it.
    Synth {
        /// The pcap file to write.
        #[arg(long)]
        out: PathBuf,
        /// Frames to write.
        #[arg(long, default_value_t = 1_000_000)]
        count: u64,
        /// Distinct labels, starting at --first-label.
        #[arg(long, default_value_t = 100_000)]
        labels: u32,
        /// The first label of the block (labels run from here, --labels of them).
        #[arg(long, default_value_t = 16)]
        first_label: u32,
        /// uniform | single | zipf:EXPONENT
        #[arg(long, default_value = "uniform")]
        dist: String,
        /// Frame size in bytes (no FCS), up to 2048 (replay's frame buffer). Default: 64,
        /// or the smallest frame that holds the label stack and the IP header (66 with
        /// IPv6 traffic).
        #[arg(long)]
        size: Option<usize>,
        /// Share of IPv6 (6PE) frames, 0.0..=1.0; they get their own label block.
        #[arg(long, default_value_t = 0.0)]
        v6_share: f64,
        /// Label stack depth.
        #[arg(long, default_value_t = 1)]
        depth: usize,
        /// Random seed: the same arguments always give the same bytes.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also write a config that forwards these labels with POPGO.
        #[arg(long)]
        config_out: Option<PathBuf>,
        /// With --config-out: put the routes and networks in this route table file
        /// (one `PREFIX NEXT-HOP LABEL` line each), which the config names as
        /// `[bgp] table`; for big tables (a million routes load in about a second).
        #[arg(long, requires = "config_out")]
        table_out: Option<PathBuf>,
        /// With --config-out: put the routes and networks in this MRT TABLE_DUMP_V2 RIB
        /// dump (gzip if the name ends in .gz, bzip2 if in .bz2), which the config names
        /// as `[bgp] mrt`: labels from --first-label in dump order, next hops spread
        /// over the neighbors.
        #[arg(long, requires = "config_out", conflicts_with = "table_out")]
        mrt_out: Option<PathBuf>,
        /// With --mrt-out: collector peers in the dump, each with an entry for every
        /// prefix (real dumps have 30 to 60).
        #[arg(long, default_value_t = 1, requires = "mrt_out")]
        mrt_peers: u16,
        /// Put this label on top of every frame: the egress's own transport label (L3VPN
        /// without PHP). With --config-out the config makes it a static egress LSP.
        #[arg(long)]
        transport_label: Option<u32>,
    },
    /// Traffic described by a profile (TOML), and optionally the config that forwards it.
    Profile(crate::bench::GenProfileArgs),
}

/// Entry point of `popgo gen`.
pub fn main(what: GenCmd) -> Result<(), Failure> {
    let l3vpn = matches!(what, GenCmd::L3vpn { .. });
    match what {
        GenCmd::Profile(a) => crate::bench::gen_profile(a),
        GenCmd::Seed { out, describe } | GenCmd::L3vpn { out, describe } => {
            let frames = if l3vpn { l3vpn_frames() } else { seed_frames() };
            let pkts = frames.iter().enumerate().map(|(i, f)| (EPOCH_NS + i as u64 * 1_000_000, &f.frame));
            crate::io::pcap::write_file(&out, pkts).map_err(runtime)?;
            println!("wrote {}: {} frames", out.display(), frames.len());
            if describe {
                for (i, f) in frames.iter().enumerate() {
                    println!("{:>3}  {}", i + 1, f.what);
                }
            }
            Ok(())
        }
        GenCmd::Synth {
            out,
            count,
            labels,
            first_label,
            dist,
            size,
            v6_share,
            depth,
            seed,
            config_out,
            table_out,
            mrt_out,
            mrt_peers,
            transport_label,
        } => {
            let dist = match dist.as_str() {
                "uniform" => LabelDist::Uniform,
                "single" => LabelDist::Single,
                z if z.starts_with("zipf:") => LabelDist::Zipf(
                    z[5..].parse().map_err(|_| usage(anyhow::anyhow!("--dist: bad zipf exponent in {z:?}")))?,
                ),
                other => return Err(usage(anyhow::anyhow!("--dist: {other:?} is not uniform, single or zipf:S"))),
            };
            let stack = depth + usize::from(transport_label.is_some());
            let size = size.unwrap_or(Synth::min_size(stack, v6_share > 0.0).max(64));
            // A built-in profile: the profile generator writes it.
            let profile = Synth { count, labels, first_label, dist, size, v6_share, depth, seed, transport_label }
                .profile()
                .map_err(|e| usage(anyhow::anyhow!(e)))?;
            let file = std::fs::File::create(&out).with_context(|| out.display().to_string()).map_err(runtime)?;
            let mut w = crate::io::pcap::Writer::new(std::io::BufWriter::new(file)).map_err(runtime)?;
            let mut err = None;
            profile.generate(|ts, f| {
                if err.is_none() {
                    err = w.write_packet(ts, f).err();
                }
            });
            if let Some(e) = err {
                return Err(runtime(e));
            }
            w.into_inner().map_err(runtime)?;
            println!("wrote {}: {count} frames of {size} B, {labels} labels from {first_label}", out.display());
            let v6 = v6_share > 0.0;
            // A TOML config costs about 4 KB of memory and 10-17 us per route to load
            // (a TOML document first): past TOML_MAX_ROUTES the routes go to a table
            // file by themselves, beside the config.
            let routes = u64::from(labels) * if v6 { 2 } else { 1 };
            let table_out = match (&config_out, table_out, &mrt_out) {
                (Some(c), None, None) if routes > TOML_MAX_ROUTES => {
                    let t = c.with_extension("routes.txt");
                    if t.exists() {
                        return Err(usage(anyhow::anyhow!(
                            "--config-out: {routes} routes go to a table file beside the config, and {} exists; \
                             name one with --table-out",
                            t.display()
                        )));
                    }
                    eprintln!(
                        "popgo gen synth: {routes} routes: writing them to the table file {} (a TOML config of \
                         that many routes takes about {} s and {} MB to load)",
                        t.display(),
                        routes / 60_000,
                        routes * 4 / 1000
                    );
                    Some(t)
                }
                (_, t, _) => t,
            };
            let transport = transport_label.map(crate::traffic::profile::transport_toml).unwrap_or_default();
            match (config_out, table_out, mrt_out) {
                (Some(c), None, Some(m)) => {
                    if mrt_peers == 0 {
                        return Err(usage(anyhow::anyhow!("--mrt-peers: at least 1")));
                    }
                    write_synth_mrt(&m, first_label, labels, v6, mrt_peers)
                        .with_context(|| m.display().to_string())
                        .map_err(runtime)?;
                    let text = synth_mrt_config(first_label, 4, 16, v6, &table_ref(&c, &m)) + &transport;
                    std::fs::write(&c, text).with_context(|| c.display().to_string()).map_err(runtime)?;
                    println!("wrote {} and {} ({mrt_peers} peers)", c.display(), m.display());
                }
                (Some(c), Some(t), _) => {
                    let file = std::fs::File::create(&t).with_context(|| t.display().to_string()).map_err(runtime)?;
                    let mut w = std::io::BufWriter::with_capacity(1 << 16, file);
                    write_synth_table(&mut w, first_label, labels, 16, v6)
                        .and_then(|_| std::io::Write::flush(&mut w))
                        .with_context(|| t.display().to_string())
                        .map_err(runtime)?;
                    let text = synth_table_config(4, 16, v6, &table_ref(&c, &t)) + &transport;
                    std::fs::write(&c, text).with_context(|| c.display().to_string()).map_err(runtime)?;
                    println!("wrote {} and {}", c.display(), t.display());
                }
                (Some(c), None, None) => {
                    let text = synth_config(first_label, labels, 4, 16, v6) + &transport;
                    std::fs::write(&c, text).with_context(|| c.display().to_string()).map_err(runtime)?;
                    println!("wrote {}", c.display());
                }
                _ => {}
            }
            Ok(())
        }
    }
}

/// Most routes `gen synth --config-out` writes into the TOML config itself.
pub const TOML_MAX_ROUTES: u64 = 100_000;

/// How the config at `config` names the table file at `table`: its file name when both
/// are in the same directory (the pair can be moved together), else an absolute path.
fn table_ref(config: &std::path::Path, table: &std::path::Path) -> String {
    let dir = |p: &std::path::Path| {
        let d = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        std::fs::canonicalize(d).ok()
    };
    match (dir(config), dir(table), table.file_name()) {
        (Some(a), Some(b), Some(name)) if a == b => name.to_string_lossy().into_owned(),
        (_, Some(b), Some(name)) => b.join(name).display().to_string(),
        _ => table.display().to_string(),
    }
}

//! `popgo gen`: writes captures: the seed scenario's, synthetic label streams, or
//! traffic described by a profile.

use crate::cmd::{runtime, usage, Failure};
use crate::traffic::dist::LabelDist;
use crate::traffic::frames::{seed_frames, EPOCH_NS};
use crate::traffic::synth::{synth_config, Synth};
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
        /// Frame size in bytes (no FCS).
        #[arg(long, default_value_t = 64)]
        size: usize,
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
    },
    /// Traffic described by a profile (TOML), and optionally the config that forwards it.
    Profile(crate::bench::GenProfileArgs),
}

/// Entry point of `popgo gen`.
pub fn main(what: GenCmd) -> Result<(), Failure> {
    match what {
        GenCmd::Profile(a) => crate::bench::gen_profile(a),
        GenCmd::Seed { out, describe } => {
            let frames = seed_frames();
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
        GenCmd::Synth { out, count, labels, first_label, dist, size, v6_share, depth, seed, config_out } => {
            let dist = match dist.as_str() {
                "uniform" => LabelDist::Uniform,
                "single" => LabelDist::Single,
                z if z.starts_with("zipf:") => LabelDist::Zipf(
                    z[5..].parse().map_err(|_| usage(anyhow::anyhow!("--dist: bad zipf exponent in {z:?}")))?,
                ),
                other => return Err(usage(anyhow::anyhow!("--dist: {other:?} is not uniform, single or zipf:S"))),
            };
            // A built-in profile: the profile generator writes it.
            let profile = Synth { count, labels, first_label, dist, size, v6_share, depth, seed }
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
            if let Some(c) = config_out {
                let text = synth_config(first_label, labels, 4, 16, v6_share > 0.0);
                std::fs::write(&c, text).with_context(|| c.display().to_string()).map_err(runtime)?;
                println!("wrote {}", c.display());
            }
            Ok(())
        }
    }
}

//! `popgo bench`: repeated, noise-aware replay measurements. (Being built: issue 5.)

use crate::cli::Failure;
use clap::Args;
use std::path::PathBuf;

/// `popgo bench` arguments.
#[derive(Args, Debug)]
pub struct BenchArgs {
    #[arg(long)]
    pub config: PathBuf,
}

/// Entry point of `popgo bench`.
pub fn main(_a: BenchArgs) -> Result<(), Failure> {
    Err(crate::cli::usage(anyhow::anyhow!("popgo bench is not available in this build yet")))
}

/// `popgo gen profile` arguments.
#[derive(Args, Debug)]
pub struct GenProfileArgs {
    /// Traffic profile (TOML; see the README).
    #[arg(long)]
    pub profile: PathBuf,
    #[arg(long)]
    pub out: PathBuf,
    /// Also write a config that forwards the profile's labels with POPGO.
    #[arg(long)]
    pub config_out: Option<PathBuf>,
}

/// Entry point of `popgo gen profile`.
pub fn gen_profile(_a: GenProfileArgs) -> Result<(), Failure> {
    Err(crate::cli::usage(anyhow::anyhow!("popgo gen profile is not available in this build yet")))
}

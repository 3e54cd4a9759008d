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

//! `popgo run`: the forwarder on real interfaces over AF_XDP. (Being built: issue 3.)

use crate::cli::Failure;
use clap::Args;
use std::path::PathBuf;

/// `popgo run` arguments.
#[derive(Args, Debug)]
pub struct RunArgs {
    #[arg(long)]
    pub config: PathBuf,
}

/// Entry point of `popgo run`.
pub fn main(_a: RunArgs) -> Result<(), Failure> {
    Err(crate::cli::usage(anyhow::anyhow!("popgo run is not available in this build yet")))
}

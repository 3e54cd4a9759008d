//! The command line: parses the arguments with clap and dispatches to the command
//! modules. Nothing imports this module; it lives in the binary target, so the
//! compiler sees to that.

use clap::{CommandFactory, Parser, Subcommand};
use popgo::cmd::Failure;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "popgo", version = popgo::bench::machine::VERSION_LINE, about = "Poll-mode MPLS forwarder: the POPGO function of a BGP LSP egress")]
struct Cli {
    /// More log detail on stderr: -v debug, -vv trace (RUST_LOG, when set, wins).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Less log detail on stderr: -q warnings and errors only, -qq errors only.
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "verbose")]
    quiet: u8,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Replay a pcap/pcapng through the forwarding core (no NIC, no root).
    Replay(popgo::replay::ReplayArgs),
    /// Run the forwarder on real interfaces over AF_XDP (root).
    Run(popgo::run::RunArgs),
    /// Talk to a running instance's control socket (VRP commands).
    Ctl(popgo::control::client::CtlArgs),
    /// VRP display commands, offline: `display mpls lsp protocol bgp [verbose]`,
    /// `display current-configuration`.
    Display(popgo::display::DisplayArgs),
    /// Replay INPUT with POPGO and with POP + IP lookup; report packets that change port.
    Diff(popgo::diff::DiffArgs),
    /// Check a config file and print a summary.
    Check(popgo::display::CheckArgs),
    /// Benchmark replay: repetitions, noise, latency, baselines and a regression gate.
    Bench(Box<popgo::bench::BenchArgs>),
    /// Generate captures: the seed scenario's, synthetic or profile-driven traffic.
    Gen {
        #[command(subcommand)]
        what: popgo::gen::GenCmd,
    },
    /// Print a shell completion script (e.g. `popgo completions bash >
    /// /etc/bash_completion.d/popgo`).
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff; e.g. `popgo man > popgo.1 && man ./popgo.1`).
    Man,
}

fn dispatch(cli: Cli) -> Result<(), Failure> {
    match cli.cmd {
        Cmd::Replay(a) => popgo::replay::main(a),
        Cmd::Run(a) => popgo::run::main(a),
        Cmd::Ctl(a) => popgo::control::client::ctl_main(a),
        Cmd::Display(a) => popgo::display::main(a),
        Cmd::Diff(a) => popgo::diff::main(a),
        Cmd::Check(a) => popgo::display::check_main(a),
        Cmd::Bench(a) => popgo::bench::main(*a),
        Cmd::Gen { what } => popgo::gen::main(what),
        Cmd::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "popgo", &mut std::io::stdout());
            Ok(())
        }
        Cmd::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut out)
                .map_err(|e| popgo::cmd::runtime(anyhow::anyhow!("rendering the man page: {e}")))?;
            std::io::Write::write_all(&mut std::io::stdout(), &out)
                .map_err(|e| popgo::cmd::runtime(anyhow::anyhow!("stdout: {e}")))
        }
    }
}

/// Logs go to stderr, at the level of -v/-q, or as `RUST_LOG` says when it is set.
/// Nothing logs on the per-packet path; workers count instead.
fn init_logging(verbose: u8, quiet: u8) {
    let level = match (verbose, quiet) {
        (0, 0) => "info",
        (1, _) => "debug",
        (v, _) if v >= 2 => "trace",
        (_, 1) => "warn",
        _ => "error",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("popgo={level},popgo_core={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .try_init();
}

/// Parses the command line, runs the command and maps its error to the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("popgo: error: {:#}", f.err);
            ExitCode::from(f.code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every argument of every subcommand has help text.
    #[test]
    fn every_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                let builtin = matches!(a.get_id().as_str(), "help" | "version");
                if !builtin && a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path} {}", a.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {} (no about)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "popgo", &mut missing);
        assert!(missing.is_empty(), "arguments without help:\n{}", missing.join("\n"));
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}

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
    /// Print the manual page (roff; e.g. `popgo man > popgo.1 && man ./popgo.1`), or a
    /// command's (`popgo man replay`: popgo-replay(1); `popgo man gen synth`), or write
    /// every page to a directory (`--out-dir DIR`: popgo.1, popgo-replay.1, ...).
    Man {
        /// The command whose page to print (default: popgo's own).
        command: Vec<String>,
        /// Write every page (popgo.1 and one per command) into DIR; existing files are
        /// refused.
        #[arg(long, value_name = "DIR", conflicts_with = "command")]
        out_dir: Option<std::path::PathBuf>,
    },
}

fn dispatch(cli: Cli) -> Result<(), Failure> {
    // A stop (or reload) asked for while a forwarding command still loads its config,
    // tables and capture is kept for the engine, which acts on it when it starts: it is
    // not lost to a disposition inherited from the parent (a shell's background job
    // starts with SIGINT ignored) nor ends the process half set up without a report.
    if matches!(cli.cmd, Cmd::Replay(_) | Cmd::Run(_) | Cmd::Bench(_)) {
        popgo::sys::signal::install_handlers()
            .map_err(|e| popgo::cmd::runtime(anyhow::anyhow!("installing signal handlers: {e}")))?;
    }
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
        Cmd::Man { command, out_dir } => man(&command, out_dir.as_deref()),
    }
}

/// `popgo man`: one page to stdout, or every page into `out_dir`.
fn man(command: &[String], out_dir: Option<&std::path::Path>) -> Result<(), Failure> {
    use popgo::cmd::{runtime, usage};
    let render = |cmd: clap::Command| {
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut out)
            .map_err(|e| runtime(anyhow::anyhow!("rendering the man page: {e}")))?;
        Ok::<_, Failure>(out)
    };
    let mut top = Cli::command().disable_help_subcommand(true);
    top.build();
    if let Some(dir) = out_dir {
        // Every page, the command's own first; none is written if one exists already.
        let mut pages = Vec::new();
        let mut todo = vec![top];
        while let Some(cmd) = todo.pop() {
            todo.extend(cmd.get_subcommands().filter(|c| !c.is_hide_set()).cloned());
            let name = clap_mangen::Man::new(cmd.clone()).get_filename();
            pages.push((dir.join(name), cmd));
        }
        if let Some((p, _)) = pages.iter().find(|(p, _)| p.exists()) {
            return Err(usage(anyhow::anyhow!("--out-dir: {} exists; refusing to overwrite it", p.display())));
        }
        std::fs::create_dir_all(dir).map_err(|e| usage(anyhow::anyhow!("--out-dir {}: {e}", dir.display())))?;
        for (path, cmd) in pages {
            std::fs::write(&path, render(cmd)?).map_err(|e| runtime(anyhow::anyhow!("{}: {e}", path.display())))?;
            println!("wrote {}", path.display());
        }
        return Ok(());
    }
    let mut cmd = top;
    for (i, name) in command.iter().enumerate() {
        let names: Vec<String> =
            cmd.get_subcommands().filter(|c| !c.is_hide_set()).map(|c| c.get_name().to_string()).collect();
        let Some(sub) = cmd.find_subcommand(name).filter(|c| !c.is_hide_set()).cloned() else {
            let at = if i == 0 { "popgo".to_string() } else { format!("popgo {}", command[..i].join(" ")) };
            return Err(usage(anyhow::anyhow!(
                "popgo man: {at} has no command {name:?} (commands: {})",
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            )));
        };
        cmd = sub;
    }
    std::io::Write::write_all(&mut std::io::stdout(), &render(cmd)?)
        .map_err(|e| runtime(anyhow::anyhow!("stdout: {e}")))
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
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    init_logging(cli.verbose, cli.quiet);
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("popgo: error: {:#}", f.err);
            ExitCode::from(f.code)
        }
    }
}

/// A command-line error as one line (`popgo: error: ...`, exit 2), like every other
/// error: clap's own text is several lines (the error, its details, a usage line and a
/// pointer to --help). Help and version requests are printed as clap prints them.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
    }
    eprintln!("popgo: error: {} (see --help)", one_line(&e.render().to_string()));
    ExitCode::from(2)
}

/// clap's error text without its usage and --help lines, joined into one line.
fn one_line(text: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for l in text.lines() {
        let t = l.trim();
        if t.starts_with("Usage:") || t.starts_with("For more information") {
            break;
        }
        if !t.is_empty() {
            parts.push(t.strip_prefix("error: ").unwrap_or(t).to_string());
        }
    }
    let mut out = parts.first().cloned().unwrap_or_default();
    for p in &parts[1.min(parts.len())..] {
        out.push_str(if out.ends_with(':') { " " } else { "; " });
        out.push_str(p);
    }
    out
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

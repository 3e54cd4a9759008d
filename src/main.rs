//! popgo binary: the command line on top of the library's commands.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}

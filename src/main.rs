//! popgo binary: everything lives in the library; see `popgo::cli`.

fn main() -> std::process::ExitCode {
    popgo::cli::main()
}

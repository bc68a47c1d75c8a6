//! The `supportd` binary: parses the command line and hands over to [`supportd::cli`].
//! `anyhow` lives only at this edge; everything inside uses typed errors.

fn main() -> std::process::ExitCode {
    supportd::cli::main()
}

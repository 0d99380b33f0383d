//! The `fsbridge` command: parses arguments, runs the subcommand, exits with its code.

use std::process::ExitCode;

fn main() -> ExitCode {
    fsbridge_cli::main()
}

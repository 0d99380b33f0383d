//! `fsbridge-bench`: runs fsbridge beside `inotifywait` and a raw `notify` watcher through the
//! scenarios of issue #5 and prints a Markdown table of medians and ratios.
//!
//! These are figures, not timed tests: nothing here fails because a number is high, and nothing
//! here runs in CI. `bench/README.md` says how to run it and what each figure means.

mod args;
mod machine;
mod procfs;
mod report;
mod scenario;
mod scratch;
mod tools;
mod watcher;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let args = args::Args::parse();
    match scenario::run_all(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("fsbridge-bench: {error:#}");
            ExitCode::from(2)
        }
    }
}

//! The `fsbridge` command line, as a library so that its pieces can be tested.
//!
//! `main.rs` only calls [`main`]. Everything the command prints goes through here: data on
//! stdout (NDJSON or human lines), diagnostics on stderr, never mixed.

mod apply;
mod args;
mod config;
mod duration;
mod exit;
mod logging;
mod output;
mod run;
mod size;
mod watch;
mod write;

use std::process::ExitCode;

use clap::Parser as _;

pub use args::{Args, Command};

/// Runs the command line and returns the process's exit code.
pub fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(error) => {
            // clap prints help and version on stdout and usage errors on stderr.
            let _ = error.print();
            return if error.use_stderr() {
                exit::USAGE.into()
            } else {
                exit::SUCCESS.into()
            };
        }
    };
    logging::init(args.verbose);

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            report(&anyhow::Error::new(error).context("cannot start the async runtime"));
            return exit::USAGE.into();
        }
    };
    let result = runtime.block_on(async {
        match args.command {
            Command::Watch(watch) => watch::run(watch).await,
            Command::Apply(apply) => apply::run(apply).await,
            Command::Write(write) => write::run(write).await,
            Command::Run(run) => run::run(run).await,
        }
    });
    match result {
        Ok(code) => code.into(),
        Err(error) => {
            report(&error);
            exit::USAGE.into()
        }
    }
}

/// Prints a fatal error once, with its causes, on stderr.
fn report(error: &anyhow::Error) {
    #[expect(
        clippy::print_stderr,
        reason = "the one place the command reports a fatal error"
    )]
    {
        eprintln!("fsbridge: {error:#}");
    }
}

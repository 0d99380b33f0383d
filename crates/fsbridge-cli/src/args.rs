//! The command-line arguments: one struct per subcommand.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// A two-way bridge between a file system and an event-driven program
#[derive(Debug, Parser)]
#[command(name = "fsbridge", version)]
pub struct Args {
    /// Log more on stderr (-v info, -vv debug, -vvv trace); `FSBRIDGE_LOG` overrides
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// What to do
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Watch a directory or a file and print what really happened
    ///
    /// Prints one line per event: created, updated, moved and deleted files and directories, and
    /// the target appearing or vanishing. The target may not exist yet.
    ///
    /// Example: fsbridge watch --json /var/log/app
    Watch(WatchArgs),
}

/// Arguments of `fsbridge watch`.
#[derive(Debug, clap::Args)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "each flag is one command-line switch"
)]
pub struct WatchArgs {
    /// The directory or file to watch (it may not exist yet: then say --dir or --file)
    pub path: PathBuf,

    /// The target is a directory
    #[arg(long, conflicts_with = "file")]
    pub dir: bool,

    /// The target is a single file
    #[arg(long)]
    pub file: bool,

    /// Print NDJSON on stdout, one event per line
    #[arg(long)]
    pub json: bool,

    /// Pass the backend's own events through, unreconciled
    #[arg(long)]
    pub raw: bool,

    /// Report every entry already present as created, after `ready`
    #[arg(long)]
    pub initial: bool,

    /// How long to collect hints before looking (like 10ms, 1s; 0 turns it off)
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse, default_value = "10ms")]
    pub settle: Duration,

    /// Poll every INTERVAL instead of using native notifications (NFS, SMB, containers)
    #[arg(long, value_name = "INTERVAL", value_parser = crate::duration::parse, num_args = 0..=1, default_missing_value = "1s")]
    pub poll: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn argument_definitions_are_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn poll_without_interval_defaults_to_one_second() {
        let args = Args::try_parse_from(["fsbridge", "watch", "/tmp", "--poll"]).unwrap();

        let Command::Watch(watch) = args.command;
        assert_eq!(watch.poll, Some(Duration::from_secs(1)));
    }
}

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

    /// Apply NDJSON write commands from stdin, strictly inside one directory
    ///
    /// Reads one command per line on stdin (create, append, overwrite, delete, mkdir; see the
    /// library's `WriteCommand::from_json_line` for the fields) and prints one NDJSON result per
    /// command on stdout, in order, as soon as it is applied. Files are replaced atomically;
    /// nothing outside the root is ever touched. Exits with 1 when any command failed.
    ///
    /// Example: echo '{"id":"1","op":"create","path":"a.txt","text":"hi\n"}' | fsbridge apply --root /srv/out
    Apply(ApplyArgs),

    /// Apply one write command from the shell
    ///
    /// The content comes from --text, from --data-file, or else from stdin. Prints the NDJSON
    /// result on stdout; on failure also the message on stderr, and exits with 1.
    ///
    /// Example: fsbridge write --root /srv/out append logs/today.txt --text "done"
    Write(WriteArgs),

    /// Run the named io configs of a config file: events of every input on stdout, tagged with
    /// the config's name; write and control commands on stdin, routed by name.
    Run(RunArgs),
}

/// `fsbridge run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The config file (TOML; see examples/fsbridge.toml).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,

    /// What to do with the events fsbridge's own writes cause in watched inputs: leave them out
    /// (`drop`), or report them with `"origin":"self"` (`mark`). Overrides the file's
    /// `self_events`. Default: drop.
    #[arg(long, value_name = "WHAT", value_parser = crate::config::self_events)]
    pub self_events: Option<fsbridge::SelfEvents>,
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

    /// Poll every INTERVAL (1s if not given) instead of using native notifications (NFS, SMB,
    /// containers)
    #[arg(long, value_name = "INTERVAL", value_parser = crate::duration::parse_interval, num_args = 0..=1, default_missing_value = "1s")]
    pub poll: Option<Duration>,

    /// File content in created and updated events: none, the whole file, or only what was
    /// appended since the file's previous event (truncation and rotation are flagged)
    #[arg(long, value_enum, default_value = "none")]
    pub content: ContentArg,

    /// Carry content as UTF-8 text (the default); bytes that are not UTF-8 are an error on the
    /// event
    #[arg(long, conflicts_with = "binary")]
    pub text: bool,

    /// Carry content as base64 bytes
    #[arg(long)]
    pub binary: bool,

    /// Leave out entries matching GLOB, and everything below them (repeatable): a pattern with a
    /// `/` matches the path from the target, one without matches names at any depth; `*` stays
    /// within one name, `**` crosses directories
    #[arg(long, value_name = "GLOB")]
    pub ignore: Vec<String>,

    /// Also leave out what the tree's .gitignore files ignore (and .git), as git does. Edits of
    /// a .gitignore take effect while running: newly ignored entries are reported deleted with
    /// "reason":"ignored" and then left out, newly included ones are reported as created.
    #[arg(long)]
    pub gitignore: bool,

    /// Report changes of permission bits and owner: `file_updated` or `dir_updated` with
    /// "change":"attributes", and mode, uid and gid on every update
    #[arg(long)]
    pub attributes: bool,

    /// The most content one event carries (like 4096, 64K, 1M) [default: 1M]
    #[arg(long, value_name = "BYTES", value_parser = crate::size::parse)]
    pub max_content: Option<u64>,
}

/// What content events carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ContentArg {
    /// No content
    None,
    /// The whole file
    Full,
    /// Only the bytes appended since the file's previous event (`tail -F`)
    Appended,
}

/// Where and how commands are written; shared by `apply` and `write`.
#[derive(Debug, clap::Args)]
pub struct WriterArgs {
    /// The directory to write in; it is never created (commands fail until it exists)
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,

    /// Do not fsync files and directories: faster, but a crash may lose recent commands
    #[arg(long)]
    pub no_fsync: bool,

    /// How long to wait for another writer's lock on a file before failing with `busy`
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse, default_value = "5s")]
    pub lock_timeout: Duration,

    /// The largest content accepted, in bytes (or like 64K, 64M, 1G)
    #[arg(long, value_name = "N", value_parser = crate::size::parse, default_value = "64M")]
    pub max_bytes: u64,
}

/// Arguments of `fsbridge apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// Where and how to write
    #[command(flatten)]
    pub writer: WriterArgs,
}

/// Arguments of `fsbridge write`.
#[derive(Debug, clap::Args)]
pub struct WriteArgs {
    /// Where and how to write
    #[command(flatten)]
    pub writer: WriterArgs,

    /// What to do
    #[arg(value_enum)]
    pub op: OpArg,

    /// The path, relative to the root (or absolute and inside it)
    pub path: PathBuf,

    /// The content, as text
    #[arg(long, conflicts_with = "data_file")]
    pub text: Option<String>,

    /// Read the content from FILE (`-` for stdin)
    #[arg(long, value_name = "FILE")]
    pub data_file: Option<PathBuf>,
}

/// The operations of `fsbridge write`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OpArg {
    /// Create a new file; fails if anything is there
    Create,
    /// Append to a file, creating it when missing
    Append,
    /// Replace a file's content, creating it when missing
    Overwrite,
    /// Remove a file
    Delete,
    /// Create a directory and its parents
    Mkdir,
}

impl From<OpArg> for fsbridge::WriteOp {
    fn from(op: OpArg) -> Self {
        match op {
            OpArg::Create => Self::Create,
            OpArg::Append => Self::Append,
            OpArg::Overwrite => Self::Overwrite,
            OpArg::Delete => Self::Delete,
            OpArg::Mkdir => Self::Mkdir,
        }
    }
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

        let Command::Watch(watch) = args.command else {
            panic!("parsed as another subcommand");
        };
        assert_eq!(watch.poll, Some(Duration::from_secs(1)));
    }

    #[test]
    fn apply_defaults_to_fsync_five_seconds_and_64_mib() {
        let args = Args::try_parse_from(["fsbridge", "apply", "--root", "/srv/out"]).unwrap();

        let Command::Apply(apply) = args.command else {
            panic!("parsed as another subcommand");
        };
        assert!(!apply.writer.no_fsync);
        assert_eq!(apply.writer.lock_timeout, Duration::from_secs(5));
        assert_eq!(apply.writer.max_bytes, 64 << 20);
    }

    #[test]
    fn write_refuses_text_together_with_a_data_file() {
        let result = Args::try_parse_from([
            "fsbridge",
            "write",
            "--root",
            "/r",
            "create",
            "a",
            "--text",
            "x",
            "--data-file",
            "f",
        ]);

        assert!(result.is_err());
    }
}

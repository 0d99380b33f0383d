//! Command-line arguments of the driver, and the sizes each mode runs at.

use std::path::PathBuf;

/// Benchmarks `fsbridge watch` against `inotifywait -m -r` and a raw `notify` watcher
///
/// Runs every scenario for every watcher, one watcher process at a time, interleaved, and prints
/// a Markdown report (machine, table of medians and ratios, all samples) on stdout. Progress goes
/// to stderr. Example: `cargo run --release -p fsbridge-bench -- --quick`.
#[derive(Debug, clap::Parser)]
#[command(name = "fsbridge-bench")]
pub(crate) struct Args {
    /// Smaller sizes and one repetition (about two minutes)
    #[arg(long)]
    pub(crate) quick: bool,

    /// Repetitions per scenario and watcher (default: 3, or 1 with --quick)
    #[arg(long)]
    pub(crate) reps: Option<usize>,

    /// Run only these scenarios (comma-separated: burst, nested, latency, startup, frozen, slow)
    #[arg(long, value_delimiter = ',')]
    pub(crate) only: Vec<String>,

    /// The fsbridge binary to measure (default: build it with cargo, release profile)
    #[arg(long)]
    pub(crate) fsbridge: Option<PathBuf>,

    /// The notify-raw binary (default: build it with cargo, release profile)
    #[arg(long)]
    pub(crate) notify_raw: Option<PathBuf>,

    /// Directory for the scratch trees (default: the system temporary directory); must be a
    /// local file system, since inotify sees nothing of remote changes
    #[arg(long)]
    pub(crate) scratch: Option<PathBuf>,

    /// Also write the report to this file
    #[arg(long)]
    pub(crate) output: Option<PathBuf>,
}

/// The sizes of one run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sizes {
    pub(crate) reps: usize,
    pub(crate) burst: [usize; 2],
    pub(crate) burst_dirs: usize,
    pub(crate) nested: usize,
    pub(crate) latency_writes: usize,
    pub(crate) startup_files: usize,
    pub(crate) startup_dirs: usize,
    pub(crate) idle_secs: u64,
    pub(crate) frozen: usize,
    pub(crate) slow_appends: usize,
    pub(crate) slow_files: usize,
}

impl Args {
    /// The sizes of the issue, or smaller ones with `--quick`.
    pub(crate) fn sizes(&self) -> Sizes {
        let full = Sizes {
            reps: 3,
            burst: [20_000, 100_000],
            burst_dirs: 100,
            nested: 200,
            latency_writes: 200,
            startup_files: 100_000,
            startup_dirs: 5_000,
            idle_secs: 10,
            frozen: 20_000,
            slow_appends: 1_000_000,
            slow_files: 10,
        };
        let sizes = if self.quick {
            // The frozen burst keeps its size: below ~8,000 files the kernel queue (16,384
            // events by default) does not overflow and the scenario would measure nothing.
            Sizes {
                reps: 1,
                burst: [5_000, 20_000],
                nested: 50,
                latency_writes: 50,
                startup_files: 20_000,
                startup_dirs: 1_000,
                idle_secs: 3,
                slow_appends: 100_000,
                ..full
            }
        } else {
            full
        };
        Sizes {
            reps: self.reps.unwrap_or(sizes.reps).max(1),
            ..sizes
        }
    }

    /// Whether `scenario` was asked for (all are, unless `--only` names some).
    pub(crate) fn wants(&self, scenario: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|name| name == scenario)
    }
}

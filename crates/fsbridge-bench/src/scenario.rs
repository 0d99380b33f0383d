//! The scenarios of issue #5 and the loop that runs them: every repetition runs every scenario
//! for every watcher, one watcher process at a time, the watchers' order rotating from one
//! repetition to the next so that none always goes first on a warm or a cold machine.

mod burst;
mod frozen;
mod latency;
mod nested;
mod slow;
mod startup;

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::args::{Args, Sizes};
use crate::report::{self, Results, Row, Target};
use crate::scratch::Scratch;
use crate::watcher::{Running, Tools, Watcher};
use crate::{machine, tools};

/// The watchers every scenario runs.
const WATCHERS: [Watcher; 3] = [Watcher::Fsbridge, Watcher::Inotifywait, Watcher::NotifyRaw];

/// How long a watcher may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_mins(2);

/// How long a watcher may print nothing before a scenario stops waiting for missing paths.
const QUIET: Duration = Duration::from_secs(3);

/// What every scenario run gets.
#[derive(Debug)]
pub(crate) struct Context<'a> {
    pub(crate) tools: &'a Tools,
    pub(crate) sizes: Sizes,
    pub(crate) scratch: &'a Scratch,
}

impl Context<'_> {
    /// Starts `watcher` on `root` and waits until it is ready.
    ///
    /// Dirty pages are flushed first, so that writing back the trees earlier runs made and
    /// removed is less likely to land in this run's timed part.
    fn start(&self, watcher: Watcher, root: &Path) -> anyhow::Result<Running> {
        rustix::fs::sync();
        let mut running = Running::start(watcher, self.tools, root)?;
        if let Err(error) = running.wait_ready(READY_TIMEOUT) {
            running.stop();
            return Err(error);
        }
        Ok(running)
    }
}

/// Runs everything `args` asks for and prints the report.
///
/// # Errors
///
/// When the binaries cannot be prepared or the scratch directory cannot be made; a failing
/// scenario run only adds a note.
pub(crate) fn run_all(args: &Args) -> anyhow::Result<()> {
    let sizes = args.sizes();
    let tools = tools::prepare(args)?;
    let parent = args.scratch.clone().unwrap_or_else(std::env::temp_dir);
    let scratch = Scratch::create(&parent)?;
    let context = Context {
        tools: &tools,
        sizes,
        scratch: &scratch,
    };
    let began = Instant::now();
    let mut results = Results::default();

    let startup_tree = if args.wants("startup") {
        Some(startup::Tree::build(&context)?)
    } else {
        None
    };
    for rep in 0..sizes.reps {
        let mut order = WATCHERS;
        order.rotate_left(rep % WATCHERS.len());
        if args.wants("burst") {
            for files in sizes.burst {
                for watcher in order {
                    let outcome = burst::run(&context, watcher, files, &mut results);
                    settle(&mut results, "burst", watcher, rep, outcome);
                }
            }
        }
        if args.wants("nested") {
            for watcher in order {
                let outcome = nested::run(&context, watcher, &mut results);
                settle(&mut results, "nested", watcher, rep, outcome);
            }
        }
        if args.wants("latency") {
            let mut order = [
                Watcher::Fsbridge,
                Watcher::FsbridgeSettle0,
                Watcher::Inotifywait,
                Watcher::NotifyRaw,
            ];
            let length = order.len();
            order.rotate_left(rep % length);
            for watcher in order {
                let outcome = latency::run(&context, watcher, &mut results);
                settle(&mut results, "latency", watcher, rep, outcome);
            }
        }
        if let Some(tree) = &startup_tree {
            let outcome = startup::run_find(tree, &mut results);
            settle(&mut results, "startup", Watcher::Fsbridge, rep, outcome);
            for watcher in order {
                let outcome = startup::run(&context, tree, watcher, &mut results);
                settle(&mut results, "startup", watcher, rep, outcome);
            }
        }
        if args.wants("frozen") {
            for watcher in order {
                let outcome = frozen::run(&context, watcher, &mut results);
                settle(&mut results, "frozen", watcher, rep, outcome);
            }
        }
        if args.wants("slow") {
            for watcher in order {
                let outcome = slow::run(&context, watcher, &mut results);
                settle(&mut results, "slow", watcher, rep, outcome);
            }
        }
    }
    drop(startup_tree);

    let mut report = format!(
        "# fsbridge benchmark{}\n\nMachine and binaries:\n\n{}\n",
        if args.quick { " (--quick)" } else { "" },
        machine::describe(&tools, scratch.path(), args.fsbridge.is_none())
    );
    let _ = write!(
        report,
        "{} repetition(s); medians; ratios are fsbridge ÷ reference (below 1 means fsbridge is \
         lower). Whole run: {:.0} s.\n\n",
        sizes.reps,
        began.elapsed().as_secs_f64()
    );
    report.push_str(&report::render(&results, &rows(&sizes), sizes.reps));
    print!("{report}");
    if let Some(output) = &args.output {
        fs::write(output, &report).with_context(|| format!("cannot write {}", output.display()))?;
    }
    Ok(())
}

/// Reports a finished run on stderr; a failed one also becomes a note in the report.
fn settle(
    results: &mut Results,
    scenario: &str,
    watcher: Watcher,
    rep: usize,
    outcome: anyhow::Result<String>,
) {
    match outcome {
        Ok(summary) => eprintln!("[rep {}] {scenario} {}: {summary}", rep + 1, watcher.name()),
        Err(error) => {
            eprintln!(
                "[rep {}] {scenario} {}: failed: {error:#}",
                rep + 1,
                watcher.name()
            );
            results.note(format!(
                "repetition {}, {scenario}, {}: failed: {error:#}",
                rep + 1,
                watcher.name()
            ));
        }
    }
}

/// The rows of the table, with the targets at this run's sizes.
#[expect(clippy::too_many_lines, reason = "one table, read top to bottom")]
fn rows(sizes: &Sizes) -> Vec<Row> {
    let row = |figure, label: String, decimals| Row {
        figure,
        label,
        subject: Watcher::Fsbridge,
        decimals,
        target: None,
    };
    let target = |row: Row, text: &str, target| Row {
        target: Some((text.to_string(), target)),
        ..row
    };
    let [small, large] = sizes.burst;
    let nested = report::to_f64(sizes.nested);
    let frozen = report::to_f64(sizes.frozen);
    vec![
        target(
            row(
                "burst_small_seconds",
                format!("burst {small}: s to last path"),
                3,
            ),
            "≤ 1.1× inotifywait",
            Target::RatioAtMost(Watcher::Inotifywait, 1.1),
        ),
        target(
            row(
                "burst_small_missed",
                format!("burst {small}: paths missed"),
                0,
            ),
            "0, every rep",
            Target::Every(0.0),
        ),
        target(
            row(
                "burst_small_cpu",
                format!("burst {small}: watcher CPU s"),
                2,
            ),
            "≤ 3× inotifywait",
            Target::RatioAtMost(Watcher::Inotifywait, 3.0),
        ),
        row(
            "burst_small_lag",
            format!("burst {small}: s from writer's end to last path"),
            3,
        ),
        row("burst_small_writer", format!("burst {small}: writer s"), 3),
        target(
            row(
                "burst_large_seconds",
                format!("burst {large}: s to last path"),
                3,
            ),
            "≤ 1.1× inotifywait",
            Target::RatioAtMost(Watcher::Inotifywait, 1.1),
        ),
        target(
            row(
                "burst_large_missed",
                format!("burst {large}: paths missed"),
                0,
            ),
            "0, every rep",
            Target::Every(0.0),
        ),
        target(
            row(
                "burst_large_cpu",
                format!("burst {large}: watcher CPU s"),
                2,
            ),
            "≤ 3× inotifywait",
            Target::RatioAtMost(Watcher::Inotifywait, 3.0),
        ),
        row(
            "burst_large_rescan",
            format!("burst {large}: overflow noticed (0/1)"),
            0,
        ),
        row(
            "burst_large_lag",
            format!("burst {large}: s from writer's end to last path"),
            3,
        ),
        row("burst_large_writer", format!("burst {large}: writer s"), 3),
        target(
            row(
                "nested_reported",
                format!("nested: files of {}", sizes.nested),
                0,
            ),
            &format!("{0}/{0}, every rep", sizes.nested),
            Target::Every(nested),
        ),
        row("latency_p50", "latency p50 ms".into(), 3),
        target(
            row("latency_p99", "latency p99 ms".into(), 3),
            "≤ settle + 2 ms = 12 ms",
            Target::AtMost(12.0),
        ),
        Row {
            subject: Watcher::FsbridgeSettle0,
            ..row("latency_p50", "latency p50 ms, `--settle 0`".into(), 3)
        },
        Row {
            subject: Watcher::FsbridgeSettle0,
            ..target(
                row("latency_p99", "latency p99 ms, `--settle 0`".into(), 3),
                "≤ 1 ms",
                Target::AtMost(1.0),
            )
        },
        row("latency_missed", "latency: writes never reported".into(), 0),
        target(
            row(
                "startup_ready",
                format!(
                    "startup {} files / {} dirs: s to ready",
                    sizes.startup_files, sizes.startup_dirs
                ),
                3,
            ),
            "≤ 1.5× notify-raw",
            Target::RatioAtMost(Watcher::NotifyRaw, 1.5),
        ),
        target(
            row("startup_rss", "startup: peak RSS MB after ready".into(), 1),
            "≤ 25 MB",
            Target::AtMost(25.0),
        ),
        target(
            row(
                "idle_cpu",
                format!("idle: CPU s over {} s", sizes.idle_secs),
                2,
            ),
            "0.00",
            Target::AtMost(0.0),
        ),
        target(
            row(
                "frozen_reported",
                format!("frozen: files of {}", sizes.frozen),
                0,
            ),
            &format!("{0}/{0}, every rep", sizes.frozen),
            Target::Every(frozen),
        ),
        target(
            row(
                "frozen_rescan",
                "frozen: rescanned / overflow noticed (0/1)".into(),
                0,
            ),
            "1 (rescanned), every rep",
            Target::Every(1.0),
        ),
        target(
            row(
                "frozen_thaw_seconds",
                "frozen: s from thaw to last file".into(),
                3,
            ),
            "≤ 0.15 s",
            Target::AtMost(0.15),
        ),
        target(
            row(
                "slow_rss",
                format!("slow consumer {} appends: peak RSS MB", sizes.slow_appends),
                1,
            ),
            "< 64 MB",
            Target::AtMost(64.0),
        ),
        row("slow_writer", "slow consumer: writer s".into(), 2),
    ]
}

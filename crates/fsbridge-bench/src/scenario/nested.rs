//! Scenario 2, nested: N times `mkdir -p dI/a/b/c` and at once a file inside, the race every
//! recursive watcher must win by watching new directories before reading them.

use std::fs::{self, File};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::{Context, QUIET};
use crate::report::{Results, to_f64};
use crate::scratch::{self, text};
use crate::watcher::Watcher;

/// Runs the nested scenario for `watcher`; returns a one-line summary.
pub(super) fn run(
    context: &Context<'_>,
    watcher: Watcher,
    results: &mut Results,
) -> anyhow::Result<String> {
    let root = context.scratch.fresh("nested")?;
    let files: Vec<_> = (0..context.sizes.nested)
        .map(|index| root.join(format!("d{index:03}/a/b/c/file")))
        .collect();
    let running = context.start(watcher, &root)?;
    running.expect(files.iter().map(|path| text(path)));

    let began = Instant::now();
    for file in &files {
        let dir = file.parent().context("a file path has a parent")?;
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        File::create(file).with_context(|| format!("cannot create {}", file.display()))?;
    }
    let progress = running.wait_caught_up(Instant::now(), QUIET, began + Duration::from_mins(1));
    running.stop();
    scratch::remove(&root)?;

    results.add("nested_reported", watcher.name(), to_f64(progress.seen));
    Ok(format!(
        "{} of {} files reported",
        progress.seen, progress.expected
    ))
}

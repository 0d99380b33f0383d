//! Scenario 1, burst: once the watcher is ready, create N empty files spread over 100 existing
//! directories as fast as one thread can; report seconds from the first operation to the last
//! expected path seen, paths missed, and the watcher's CPU seconds meanwhile.

use std::fs::{self, File};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::{Context, QUIET};
use crate::procfs;
use crate::report::{Results, to_f64};
use crate::scratch::{self, text};
use crate::watcher::Watcher;

/// Runs one burst of `files` files for `watcher`; returns a one-line summary.
pub(super) fn run(
    context: &Context<'_>,
    watcher: Watcher,
    files: usize,
    results: &mut Results,
) -> anyhow::Result<String> {
    let large = files == context.sizes.burst[1];
    let root = context.scratch.fresh("burst")?;
    let dirs: Vec<_> = (0..context.sizes.burst_dirs)
        .map(|index| root.join(format!("d{index:03}")))
        .collect();
    for dir in &dirs {
        fs::create_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let paths: Vec<_> = (0..files)
        .map(|index| dirs[index % dirs.len()].join(format!("f{index:06}")))
        .collect();
    let running = context.start(watcher, &root)?;
    running.expect(paths.iter().map(|path| text(path)));

    let cpu_before = procfs::cpu_seconds(running.pid())?;
    let began = Instant::now();
    for path in &paths {
        File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    }
    let written = Instant::now();
    let progress = running.wait_caught_up(written, QUIET, began + Duration::from_mins(5));
    // The watcher may still be working (a rescan, a late batch): count its CPU until it falls
    // silent.
    let rescanned = running.wait_silent(Duration::from_millis(500), Duration::from_secs(5));
    let cpu = procfs::cpu_seconds(running.pid())? - cpu_before;
    running.stop();
    scratch::remove(&root)?;

    let seconds = progress
        .last_seen
        .map_or(f64::NAN, |last| last.duration_since(began).as_secs_f64());
    let lag = progress.last_seen.map_or(f64::NAN, |last| {
        last.saturating_duration_since(written).as_secs_f64()
    });
    let missed = progress.expected - progress.seen;
    let writer = written.duration_since(began).as_secs_f64();
    let name = watcher.name();
    if large {
        results.add("burst_large_seconds", name, seconds);
        results.add("burst_large_lag", name, lag);
        results.add("burst_large_missed", name, to_f64(missed));
        results.add("burst_large_cpu", name, cpu);
        results.add("burst_large_rescan", name, f64::from(u8::from(rescanned)));
        results.add("burst_large_writer", name, writer);
    } else {
        results.add("burst_small_seconds", name, seconds);
        results.add("burst_small_lag", name, lag);
        results.add("burst_small_missed", name, to_f64(missed));
        results.add("burst_small_cpu", name, cpu);
        results.add("burst_small_writer", name, writer);
    }
    Ok(format!(
        "{files} files: last path at {seconds:.3} s (writer {writer:.3} s, lag {lag:.3} s), {missed} missed, \
         {cpu:.2} s CPU, overflow noticed: {rescanned}"
    ))
}

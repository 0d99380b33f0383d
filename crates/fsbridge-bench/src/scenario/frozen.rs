//! Scenario 6, frozen watcher: stop the watcher (SIGSTOP), create 20,000 files in one directory
//! (more events than the kernel queue holds), continue it (SIGCONT); report files reported,
//! whether it said it rescanned (or, for the references, noticed the overflow), and seconds
//! from the thaw to the last file.

use std::fs::{self, File};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use rustix::process::Signal;

use super::{Context, QUIET};
use crate::procfs;
use crate::report::{Results, to_f64};
use crate::scratch::{self, text};
use crate::watcher::Watcher;

/// Runs the frozen-watcher scenario for `watcher`; returns a one-line summary.
pub(super) fn run(
    context: &Context<'_>,
    watcher: Watcher,
    results: &mut Results,
) -> anyhow::Result<String> {
    let root = context.scratch.fresh("frozen")?;
    let dir = root.join("d");
    fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let paths: Vec<_> = (0..context.sizes.frozen)
        .map(|index| dir.join(format!("f{index:06}")))
        .collect();
    let running = context.start(watcher, &root)?;
    running.expect(paths.iter().map(|path| text(path)));

    running.signal(Signal::STOP)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !procfs::is_stopped(running.pid()) {
        if Instant::now() >= deadline {
            running.stop();
            bail!("{} did not stop on SIGSTOP", watcher.name());
        }
        thread::sleep(Duration::from_millis(1));
    }
    for path in &paths {
        File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    }
    running.signal(Signal::CONT)?;
    let thawed = Instant::now();
    let progress = running.wait_caught_up(thawed, QUIET, thawed + Duration::from_mins(2));
    let rescanned = running.wait_silent(Duration::from_millis(500), Duration::from_secs(5));
    running.stop();
    scratch::remove(&root)?;

    let seconds = progress
        .last_seen
        .map_or(f64::NAN, |last| last.duration_since(thawed).as_secs_f64());
    let name = watcher.name();
    results.add("frozen_reported", name, to_f64(progress.seen));
    results.add("frozen_rescan", name, f64::from(u8::from(rescanned)));
    results.add("frozen_thaw_seconds", name, seconds);
    Ok(format!(
        "{} of {} reported, rescanned/overflow noticed: {}, last file {seconds:.3} s after thaw",
        progress.seen, progress.expected, rescanned
    ))
}

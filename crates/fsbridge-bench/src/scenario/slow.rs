//! Scenario 7, slow consumer: 1,000,000 appends to 10 files while nobody reads the watcher's
//! stdout; the watcher's peak RSS must stay bounded (its output pipe fills after 64 KiB, so
//! whatever it does not coalesce must wait somewhere).

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::Context;
use crate::procfs;
use crate::report::Results;
use crate::scratch;
use crate::watcher::Watcher;

/// Runs the slow-consumer scenario for `watcher`; returns a one-line summary.
pub(super) fn run(
    context: &Context<'_>,
    watcher: Watcher,
    results: &mut Results,
) -> anyhow::Result<String> {
    let root = context.scratch.fresh("slow")?;
    let paths: Vec<_> = (0..context.sizes.slow_files)
        .map(|index| root.join(format!("log{index:02}")))
        .collect();
    for path in &paths {
        File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    }
    let running = context.start(watcher, &root)?;
    let mut files = paths
        .iter()
        .map(|path| {
            OpenOptions::new()
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open {}", path.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;

    running.set_paused(true);
    let began = Instant::now();
    for index in 0..context.sizes.slow_appends {
        let count = files.len();
        files[index % count]
            .write_all(b"2026-12-03T10:00:00Z info one more line\n")
            .context("cannot append")?;
    }
    let writer = began.elapsed().as_secs_f64();
    // Let the watcher take in what the kernel still holds before reading its high-water mark.
    thread::sleep(Duration::from_secs(1));
    let rss = procfs::peak_rss_mb(running.pid())?;
    drop(files);
    running.stop();
    scratch::remove(&root)?;

    results.add("slow_rss", watcher.name(), rss);
    results.add("slow_writer", watcher.name(), writer);
    Ok(format!("peak RSS {rss:.1} MB (writer {writer:.2} s)"))
}

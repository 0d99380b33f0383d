//! Scenario 4, startup, and scenario 5, idle: on a tree of 100,000 files in 5,000 directories,
//! the time from starting the watcher to its `ready`, its peak RSS half a second later, then
//! its CPU time over 10 s in which nothing happens. `find ROOT -printf '%s\n'` over the same
//! tree is the floor for a full scan. The tree is built once and read from a warm page cache.
//!
//! Idle runs in the same watcher process, right after the startup figures, because it needs a
//! ready watcher on a large tree and building one per scenario would double the run time.

use std::fs::{self, File};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::Context;
use crate::procfs;
use crate::report::Results;
use crate::scratch;
use crate::watcher::{Running, Watcher};

/// The startup tree, removed on drop.
#[derive(Debug)]
pub(super) struct Tree {
    root: PathBuf,
}

impl Tree {
    /// Builds the tree: `dirs / 100` top directories of 99 subdirectories each, files spread
    /// evenly over all of them.
    pub(super) fn build(context: &Context<'_>) -> anyhow::Result<Self> {
        let sizes = context.sizes;
        let began = Instant::now();
        let root = context.scratch.fresh("startup")?;
        let tops = (sizes.startup_dirs / 100).max(1);
        let per_top = sizes.startup_dirs / tops;
        let mut dirs = Vec::with_capacity(sizes.startup_dirs);
        for top in 0..tops {
            let top_dir = root.join(format!("t{top:03}"));
            dirs.push(top_dir.clone());
            for sub in 1..per_top {
                dirs.push(top_dir.join(format!("s{sub:03}")));
            }
        }
        for dir in &dirs {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        for index in 0..sizes.startup_files {
            let path = dirs[index % dirs.len()].join(format!("f{index:06}"));
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        }
        let tree = Self { root };
        // One scan to warm the page cache, so that the first watcher measured is not the one
        // that pays for reading the disk.
        tree.find()?;
        eprintln!(
            "built the startup tree ({} files, {} dirs) in {:.1} s",
            sizes.startup_files,
            dirs.len(),
            began.elapsed().as_secs_f64()
        );
        Ok(tree)
    }

    /// Runs `find ROOT -printf '%s\n'` to /dev/null; returns its wall-clock seconds.
    fn find(&self) -> anyhow::Result<f64> {
        let began = Instant::now();
        let status = Command::new("find")
            .arg(&self.root)
            .args(["-printf", "%s\\n"])
            .stdout(Stdio::null())
            .status()
            .context("cannot run find")?;
        if !status.success() {
            bail!("find failed ({status})");
        }
        Ok(began.elapsed().as_secs_f64())
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = scratch::remove(&self.root);
    }
}

/// Measures the `find` floor once.
pub(super) fn run_find(tree: &Tree, results: &mut Results) -> anyhow::Result<String> {
    let seconds = tree.find()?;
    results.add("startup_ready", "find", seconds);
    Ok(format!("find floor {seconds:.3} s"))
}

/// Measures startup, then idle, for `watcher`; returns a one-line summary.
pub(super) fn run(
    context: &Context<'_>,
    tree: &Tree,
    watcher: Watcher,
    results: &mut Results,
) -> anyhow::Result<String> {
    let mut running = Running::start(watcher, context.tools, &tree.root)?;
    let ready = match running.wait_ready(super::READY_TIMEOUT) {
        Ok(ready) => ready,
        Err(error) => {
            running.stop();
            return Err(error);
        }
    };
    let seconds = ready.duration_since(running.started).as_secs_f64();
    thread::sleep(Duration::from_millis(500));
    let rss = procfs::peak_rss_mb(running.pid())?;

    thread::sleep(Duration::from_millis(500));
    let cpu_before = procfs::cpu_seconds(running.pid())?;
    thread::sleep(Duration::from_secs(context.sizes.idle_secs));
    let idle = procfs::cpu_seconds(running.pid())? - cpu_before;
    running.stop();

    let name = watcher.name();
    results.add("startup_ready", name, seconds);
    results.add("startup_rss", name, rss);
    results.add("idle_cpu", name, idle);
    Ok(format!(
        "ready in {seconds:.3} s, peak RSS {rss:.1} MB; idle CPU {idle:.2} s over {} s",
        context.sizes.idle_secs
    ))
}

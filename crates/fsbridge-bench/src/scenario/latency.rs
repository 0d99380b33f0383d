//! Scenario 3, latency: single writes to one open file, 20 ms apart; for each, the time from
//! the write's return to the first line naming the file. Each write waits for the previous
//! write's line (up to a second), so a late line is never taken for the next write's.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::Context;
use crate::report::{Results, percentile, to_f64};
use crate::scratch::{self, text};
use crate::watcher::Watcher;

/// The gap between two writes.
const GAP: Duration = Duration::from_millis(20);

/// How long a write's line may take before the write counts as never reported.
const PATIENCE: Duration = Duration::from_secs(1);

/// Runs the latency scenario for `watcher`; returns a one-line summary.
pub(super) fn run(
    context: &Context<'_>,
    watcher: Watcher,
    results: &mut Results,
) -> anyhow::Result<String> {
    let root = context.scratch.fresh("latency")?;
    let path = root.join("file");
    File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    let running = context.start(watcher, &root)?;
    let mut file = OpenOptions::new()
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // Opening the file is an event too for some watchers: let it pass before probing.
    thread::sleep(Duration::from_millis(200));
    running.probe(text(&path));

    let mut latencies = Vec::with_capacity(context.sizes.latency_writes);
    let mut missed = 0_usize;
    let mut slot = Instant::now();
    for _ in 0..context.sizes.latency_writes {
        slot += GAP;
        thread::sleep(slot.saturating_duration_since(Instant::now()));
        let before = running.probe_count();
        file.write_all(b"one more line\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        let returned = Instant::now();
        match running.wait_probe(before, returned + PATIENCE) {
            Some(arrival) => {
                latencies.push(arrival.saturating_duration_since(returned).as_secs_f64() * 1e3);
            }
            None => missed += 1,
        }
        slot = slot.max(Instant::now());
    }
    drop(file);
    running.stop();
    scratch::remove(&root)?;

    let name = watcher.name();
    let p50 = percentile(&latencies, 50.0).unwrap_or(f64::NAN);
    let p99 = percentile(&latencies, 99.0).unwrap_or(f64::NAN);
    results.add("latency_p50", name, p50);
    results.add("latency_p99", name, p99);
    results.add("latency_missed", name, to_f64(missed));
    Ok(format!(
        "p50 {p50:.3} ms, p99 {p99:.3} ms, {missed} of {} writes never reported",
        context.sizes.latency_writes
    ))
}

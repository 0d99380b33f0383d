//! Figures, not a test: what the writer's sandbox and safety cost next to plain `std::fs`.
//!
//! Run with `cargo run --release -p fsbridge --example write_bench` (optionally followed by a
//! directory to work in; by default a temporary directory). For each workload (small creates,
//! small appends, small overwrites), with and without fsync, it prints operations per second
//! for the writer and for a `std::fs` loop doing the same work, as the median of five runs,
//! and their ratio. The `std::fs` loop has no sandbox, no lock and no id bookkeeping, but its
//! overwrite is also a write to a temporary file and a rename, so that the ratio shows the cost
//! of the checks rather than of atomicity.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use fsbridge::{WriteCommand, Writer};

const RUNS: usize = 5;
const CONTENT: &[u8] = b"a small line of text, as a bot would write it\n";

#[derive(Clone, Copy)]
enum Workload {
    Create,
    Append,
    Overwrite,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::args_os().nth(1).map(PathBuf::from);
    let scratch = match &base {
        Some(base) => tempfile::tempdir_in(base)?,
        None => tempfile::tempdir()?,
    };
    println!("working in {}", scratch.path().display());
    println!(
        "{:<10} {:<6} {:>14} {:>14} {:>7}",
        "workload", "fsync", "fsbridge op/s", "std::fs op/s", "ratio"
    );
    for fsync in [false, true] {
        let count = if fsync { 200 } else { 5000 };
        for (name, workload) in [
            ("create", Workload::Create),
            ("append", Workload::Append),
            ("overwrite", Workload::Overwrite),
        ] {
            let ours = median(RUNS, || time_writer(scratch.path(), workload, fsync, count))?;
            let plain = median(RUNS, || time_std(scratch.path(), workload, fsync, count))?;
            println!(
                "{name:<10} {:<6} {ours:>14.0} {plain:>14.0} {:>7.2}",
                if fsync { "on" } else { "off" },
                ours / plain
            );
        }
    }
    Ok(())
}

/// The median of `runs` measurements of operations per second.
fn median(runs: usize, mut measure: impl FnMut() -> std::io::Result<f64>) -> std::io::Result<f64> {
    let mut rates = (0..runs)
        .map(|_| measure())
        .collect::<std::io::Result<Vec<f64>>>()?;
    rates.sort_by(f64::total_cmp);
    Ok(rates[runs / 2])
}

fn fresh_dir(scratch: &Path, label: &str) -> std::io::Result<PathBuf> {
    let dir = scratch.join(label);
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(dir.join("sub"))?;
    Ok(dir)
}

fn rate(count: usize, started: Instant) -> f64 {
    #[expect(clippy::cast_precision_loss, reason = "counts are small")]
    let count = count as f64;
    count / started.elapsed().as_secs_f64()
}

fn time_writer(
    scratch: &Path,
    workload: Workload,
    fsync: bool,
    count: usize,
) -> std::io::Result<f64> {
    let root = fresh_dir(scratch, "writer")?;
    let writer = Writer::new(&root).with_fsync(fsync);
    let started = Instant::now();
    for index in 0..count {
        let command = match workload {
            Workload::Create => WriteCommand::create(format!("sub/f{index}.txt"), CONTENT),
            Workload::Append => WriteCommand::append("sub/log.txt", CONTENT),
            Workload::Overwrite => WriteCommand::overwrite("sub/state.txt", CONTENT),
        };
        let outcome = writer.blocking_apply(command);
        if let Some(message) = outcome.message() {
            return Err(std::io::Error::other(message));
        }
    }
    Ok(rate(count, started))
}

fn time_std(scratch: &Path, workload: Workload, fsync: bool, count: usize) -> std::io::Result<f64> {
    let root = fresh_dir(scratch, "std")?;
    let dir = root.join("sub");
    let started = Instant::now();
    for index in 0..count {
        match workload {
            Workload::Create => {
                let path = dir.join(format!("f{index}.txt"));
                let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
                file.write_all(CONTENT)?;
                if fsync {
                    file.sync_all()?;
                    File::open(&dir)?.sync_all()?;
                }
            }
            Workload::Append => {
                let mut file = OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(dir.join("log.txt"))?;
                file.write_all(CONTENT)?;
                if fsync {
                    file.sync_data()?;
                }
            }
            Workload::Overwrite => {
                let temp = dir.join(".state.txt.tmp");
                let mut file = File::create(&temp)?;
                file.write_all(CONTENT)?;
                if fsync {
                    file.sync_all()?;
                }
                fs::rename(&temp, dir.join("state.txt"))?;
                if fsync {
                    File::open(&dir)?.sync_all()?;
                }
            }
        }
    }
    Ok(rate(count, started))
}

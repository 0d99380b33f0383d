//! `notify-raw`: the thinnest useful watcher on the raw `notify` crate, a reference for the
//! benchmarks.
//!
//! It watches one directory recursively and prints, for every event notify hands over, one line
//! per path, flushed at once; `ready` once the watch is in place and `rescan` when notify says
//! events were lost (kernel queue overflow). It keeps no index, reconciles nothing and never
//! looks at the disk itself: whatever it misses, it misses.

use std::io::{self, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;

use notify::{RecursiveMode, Watcher as _};

fn main() -> ExitCode {
    let Some(root) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: notify-raw DIR");
        return ExitCode::from(2);
    };
    match run(&root) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("notify-raw: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Watches `root` and prints until stdout is closed or the process is killed.
fn run(root: &std::path::Path) -> anyhow::Result<()> {
    // The handler writes straight from notify's thread: no queue of our own between the kernel
    // and the reader, so a slow reader backs up into the kernel queue as it would for any thin
    // watcher.
    let (closed, stop) = mpsc::channel::<()>();
    let mut watcher = notify::recommended_watcher(move |result: notify::Result<notify::Event>| {
        let mut out = io::stdout().lock();
        let written = match result {
            Ok(event) if event.need_rescan() => writeln!(out, "rescan"),
            Ok(event) => event
                .paths
                .iter()
                .try_for_each(|path| writeln!(out, "{}", path.display())),
            Err(error) => writeln!(out, "error {error}"),
        };
        if written.and_then(|()| out.flush()).is_err() {
            let _ = closed.send(());
        }
    })?;
    watcher.watch(root, RecursiveMode::Recursive)?;

    let mut out = io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    drop(out);

    // Runs until the reader goes away (the handler reports a failed write) or a signal ends us.
    let _ = stop.recv();
    Ok(())
}

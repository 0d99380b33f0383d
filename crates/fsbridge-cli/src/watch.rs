//! `fsbridge watch`: print a target's events until interrupted.

use std::io;

use anyhow::Context as _;
use fsbridge::{Monitor, TargetKind, WatchError};
use futures::StreamExt as _;
use tokio::signal::unix::{SignalKind, signal};

use crate::args::WatchArgs;
use crate::exit;
use crate::output::{self, Format};

/// Runs `fsbridge watch`; returns the exit code.
pub(crate) async fn run(args: WatchArgs) -> anyhow::Result<u8> {
    let mut builder = Monitor::builder(&args.path)
        .with_settle(args.settle)
        .with_initial(args.initial)
        .with_raw(args.raw);
    if args.dir {
        builder = builder.with_kind(TargetKind::Dir);
    } else if args.file {
        builder = builder.with_kind(TargetKind::File);
    }
    if let Some(interval) = args.poll {
        builder = builder.with_poll(interval);
    }
    let mut monitor = match builder.build() {
        Ok(monitor) => monitor,
        Err(WatchError::UnknownKind { path }) => anyhow::bail!(
            "cannot watch {}: it does not exist; pass --dir or --file to say what to wait for",
            path.display()
        ),
        Err(error) => {
            return Err(error).with_context(|| format!("cannot watch {}", args.path.display()));
        }
    };
    let format = if args.json {
        Format::Json
    } else {
        Format::Human
    };

    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let stdout = io::stdout();
    loop {
        let event = tokio::select! {
            event = monitor.next() => event,
            _ = interrupt.recv() => return Ok(exit::INTERRUPTED),
            _ = terminate.recv() => return Ok(exit::SUCCESS),
        };
        let Some(event) = event else {
            return Ok(exit::SUCCESS);
        };
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!("{error:#}");
                continue;
            }
        };
        let mut out = stdout.lock();
        match output::write_event(&mut out, format, &event) {
            Ok(()) => {}
            // The reader went away: nothing more to say to anyone.
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => return Ok(exit::SUCCESS),
            Err(error) => return Err(error).context("cannot write to stdout"),
        }
        drop(out);
    }
}

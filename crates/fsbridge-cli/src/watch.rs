//! `fsbridge watch`: print a target's events until interrupted.

use std::io::{self, Write as _};

use anyhow::Context as _;
use fsbridge::{ContentMode, Encoding, Monitor, TargetKind, WatchError};
use futures::{FutureExt as _, StreamExt as _};
use tokio::signal::unix::{SignalKind, signal};

use crate::args::{ContentArg, WatchArgs};
use crate::exit;
use crate::output::{self, Format};

/// Runs `fsbridge watch`; returns the exit code.
pub(crate) async fn run(args: WatchArgs) -> anyhow::Result<u8> {
    let mut builder = Monitor::builder(&args.path)
        .with_ignore(args.ignore.iter().cloned())
        .with_gitignore(args.gitignore)
        .with_settle(args.settle)
        .with_initial(args.initial)
        .with_attributes(args.attributes)
        .with_raw(args.raw);
    if args.dir {
        builder = builder.with_kind(TargetKind::Dir);
    } else if args.file {
        builder = builder.with_kind(TargetKind::File);
    }
    if let Some(interval) = args.poll {
        builder = builder.with_poll(interval);
    }
    let mode = match args.content {
        ContentArg::None => None,
        ContentArg::Full => Some(ContentMode::Full),
        ContentArg::Appended => Some(ContentMode::Appended),
    };
    if let Some(mode) = mode {
        let encoding = if args.binary {
            Encoding::Binary
        } else {
            Encoding::Text
        };
        let max = args.max_content.unwrap_or(fsbridge::DEFAULT_MAX_CONTENT);
        builder = builder.with_content(mode, encoding, max);
    } else if let Some(flag) = [
        (args.text, "--text"),
        (args.binary, "--binary"),
        (args.max_content.is_some(), "--max-content"),
    ]
    .into_iter()
    .find_map(|(given, flag)| given.then_some(flag))
    {
        anyhow::bail!(
            "{flag} says how content is carried, but no content is asked for: add --content full or --content appended"
        );
    }
    // Listening before anything else: a signal right at start must not kill the process.
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
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

    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let mut closed = closed_stdout();
    loop {
        let event = tokio::select! {
            event = monitor.next() => event,
            _ = interrupt.recv() => return Ok(exit::INTERRUPTED),
            _ = terminate.recv() => return Ok(exit::SUCCESS),
            _ = &mut closed => return Ok(exit::SUCCESS),
        };
        let Some(event) = event else {
            return Ok(exit::SUCCESS);
        };
        // Everything already waiting goes out in one write; each line is still out as soon as
        // no further event is ready.
        let mut next = Some(event);
        while let Some(event) = next {
            match event {
                Ok(event) => match output::write_event(&mut out, format, &event) {
                    Ok(()) => {}
                    Err(error) => return finish_on_write_error(error),
                },
                Err(error) => tracing::warn!("{error:#}"),
            }
            next = monitor.next().now_or_never().flatten();
        }
        if let Err(error) = out.flush() {
            return finish_on_write_error(error);
        }
    }
}

/// A write to stdout failed: a reader that went away ends the command quietly.
fn finish_on_write_error(error: io::Error) -> anyhow::Result<u8> {
    if error.kind() == io::ErrorKind::BrokenPipe {
        return Ok(exit::SUCCESS);
    }
    Err(error).context("cannot write to stdout")
}

/// Resolves when stdout's reader goes away (the pipe's other end closed, the terminal hung up),
/// so that `fsbridge watch DIR | head -3` ends without waiting for a fourth event.
pub(crate) fn closed_stdout() -> tokio::sync::oneshot::Receiver<()> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("stdout-watch".into())
        .spawn(move || {
            let stdout = io::stdout();
            let mut descriptors = [rustix::event::PollFd::new(
                &stdout,
                rustix::event::PollFlags::empty(),
            )];
            // With no events asked for, poll returns only for an error or a hang-up.
            while rustix::event::poll(&mut descriptors, None).is_err() {}
            let _ = sender.send(());
        });
    if let Err(error) = spawned {
        tracing::debug!(%error, "cannot watch stdout for its reader going away");
    }
    receiver
}

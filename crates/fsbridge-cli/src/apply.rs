//! `fsbridge apply`: NDJSON write commands on stdin, one NDJSON result per command on stdout.
//!
//! Commands are applied one at a time, in the order they arrive, and each result is printed and
//! flushed before the next command is read, so a program can wait for a result before sending
//! what depends on it. A bad line is a result (`invalid`, or `too_large` for a line too long to
//! read), never the end of the run. Blank lines are skipped without a result.
//!
//! stdin is read on a thread of its own, which never holds more than one line past the limit:
//! a line longer than twice `--max-bytes` plus 64 KiB (room for base64 and JSON escapes) is
//! skipped to its end and answered with `too_large`.

use std::io::{self, BufRead, Write};
use std::path::PathBuf;

use anyhow::Context as _;
use fsbridge::{WriteCommand, WriteError, WriteOutcome, Writer};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::args::{ApplyArgs, WriterArgs};
use crate::exit;

/// Room for the JSON around the content and for its escapes, on top of twice the content.
const LINE_SLACK: u64 = 64 * 1024;

/// How many read lines may wait for the writer.
const QUEUED_LINES: usize = 4;

/// Runs `fsbridge apply`; returns the exit code.
pub(crate) async fn run(args: ApplyArgs) -> anyhow::Result<u8> {
    let writer = writer_from(&args.writer);
    tracing::info!(root = %writer.root().display(), fsync = writer.fsync(), "applying write commands");
    // Remove what killed runs left behind now, not at the first command.
    let sweeper = writer.clone();
    match tokio::task::spawn_blocking(move || sweeper.blocking_sweep()).await {
        Ok(Ok(_) | Err(WriteError::NotFound { .. })) => {}
        Ok(Err(error)) => tracing::warn!(%error, "cannot remove stale temporary files"),
        Err(error) => tracing::warn!(%error, "the sweep of stale temporary files failed"),
    }

    let line_limit = usize::try_from(
        writer
            .max_bytes()
            .saturating_mul(2)
            .saturating_add(LINE_SLACK),
    )
    .unwrap_or(usize::MAX);
    let (lines, mut received) = mpsc::channel(QUEUED_LINES);
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || read_lines(&mut io::stdin().lock(), line_limit, &lines))
        .context("cannot start the stdin reader")?;

    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let stdout = io::stdout();
    let mut any_failed = false;
    loop {
        let line = tokio::select! {
            line = received.recv() => line,
            _ = interrupt.recv() => return Ok(exit::INTERRUPTED),
            _ = terminate.recv() => break,
        };
        let Some(line) = line else {
            break;
        };

        let outcome = match line {
            Line::Command { number, bytes } => match WriteCommand::from_json_line(&bytes, number) {
                Ok(command) => writer.apply(command).await,
                Err(rejected) => *rejected,
            },
            Line::TooLong { number } => WriteOutcome::rejected(
                None,
                None,
                None,
                Some(number),
                WriteError::TooLarge {
                    path: PathBuf::new(),
                    reason: format!(
                        "line {number} is longer than {line_limit} bytes, the longest line read with --max-bytes {}",
                        writer.max_bytes()
                    ),
                },
            ),
            Line::Failed(error) => return Err(error).context("cannot read commands from stdin"),
        };
        any_failed |= !outcome.is_ok();

        let mut out = stdout.lock();
        match write_outcome(&mut out, &outcome) {
            Ok(()) => {}
            // The reader went away: nothing more to say to anyone.
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => return Ok(exit::SUCCESS),
            Err(error) => return Err(error).context("cannot write to stdout"),
        }
    }
    Ok(if any_failed {
        exit::SOME_FAILED
    } else {
        exit::SUCCESS
    })
}

/// A writer configured from the command line.
pub(crate) fn writer_from(args: &WriterArgs) -> Writer {
    Writer::new(&args.root)
        .with_fsync(!args.no_fsync)
        .with_lock_timeout(args.lock_timeout)
        .with_max_bytes(args.max_bytes)
}

/// Prints one result as a line of JSON and flushes it.
pub(crate) fn write_outcome(out: &mut impl Write, outcome: &WriteOutcome) -> io::Result<()> {
    serde_json::to_writer(&mut *out, outcome)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// One line of stdin, as the reader thread hands it over.
#[derive(Debug)]
pub(crate) enum Line {
    /// A line that is not blank, without its newline; `number` counts from 1.
    Command { number: u64, bytes: Vec<u8> },
    /// A line longer than the limit, skipped.
    TooLong { number: u64 },
    /// stdin could not be read.
    Failed(io::Error),
}

/// Reads lines until end of input, or until nobody listens any more.
pub(crate) fn read_lines(input: &mut impl BufRead, limit: usize, lines: &mpsc::Sender<Line>) {
    let mut number = 0;
    loop {
        number += 1;
        let line = match read_line(input, limit) {
            Ok(None) => return,
            Ok(Some(Read::Blank)) => continue,
            Ok(Some(Read::Bytes(bytes))) => Line::Command { number, bytes },
            Ok(Some(Read::TooLong)) => Line::TooLong { number },
            Err(error) => Line::Failed(error),
        };
        let failed = matches!(line, Line::Failed(_));
        if lines.blocking_send(line).is_err() || failed {
            return;
        }
    }
}

/// What [`read_line`] found.
#[derive(Debug, PartialEq, Eq)]
enum Read {
    Bytes(Vec<u8>),
    Blank,
    TooLong,
}

/// Reads one line, keeping at most `limit` bytes of it; `None` at the end of input.
fn read_line(input: &mut impl BufRead, limit: usize) -> io::Result<Option<Read>> {
    let mut line = Vec::new();
    let mut too_long = false;
    let mut seen_any = false;
    loop {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if available.is_empty() {
            if !seen_any {
                return Ok(None);
            }
            break;
        }
        seen_any = true;
        let newline = available.iter().position(|&byte| byte == b'\n');
        let chunk = &available[..newline.unwrap_or(available.len())];
        if line.len() + chunk.len() > limit {
            too_long = true;
            line = Vec::new();
        } else if !too_long {
            line.extend_from_slice(chunk);
        }
        let used = newline.map_or(available.len(), |at| at + 1);
        input.consume(used);
        if newline.is_some() {
            break;
        }
    }
    Ok(Some(if too_long {
        Read::TooLong
    } else if line.iter().all(u8::is_ascii_whitespace) {
        Read::Blank
    } else {
        Read::Bytes(line)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_blank_ones_marked() {
        let mut input = io::Cursor::new(b"{\"a\":1}\n\n  \r\nlast".to_vec());

        let mut lines = Vec::new();
        while let Some(line) = read_line(&mut input, 100).unwrap() {
            lines.push(line);
        }

        assert_eq!(
            lines,
            [
                Read::Bytes(b"{\"a\":1}".to_vec()),
                Read::Blank,
                Read::Blank,
                Read::Bytes(b"last".to_vec()),
            ]
        );
    }

    #[test]
    fn a_long_line_is_skipped_to_its_end() {
        let mut input =
            io::BufReader::with_capacity(4, io::Cursor::new(b"0123456789\nok\n".to_vec()));

        let first = read_line(&mut input, 5).unwrap();
        let second = read_line(&mut input, 5).unwrap();

        assert_eq!(first, Some(Read::TooLong));
        assert_eq!(second, Some(Read::Bytes(b"ok".to_vec())));
    }
}

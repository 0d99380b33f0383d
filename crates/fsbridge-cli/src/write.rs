//! `fsbridge write`: one write command from the shell.
//!
//! The result is printed on stdout as the same NDJSON line `fsbridge apply` would print, so
//! scripts can read it; a failure is also said on stderr, for people, and exits with 1.

use std::io::{self, Read as _};
use std::path::Path;

use anyhow::Context as _;
use fsbridge::{WriteCommand, WriteError, WriteOp, WriteOutcome};

use crate::apply::{write_outcome, writer_from};
use crate::args::WriteArgs;
use crate::exit;

/// Runs `fsbridge write`; returns the exit code.
pub(crate) async fn run(args: WriteArgs) -> anyhow::Result<u8> {
    let writer = writer_from(&args.writer);
    let op = WriteOp::from(args.op);
    let path = args.path;

    let outcome = if op.has_contents() {
        let limit = writer.max_bytes();
        let contents = match (args.text, args.data_file) {
            (Some(text), _) => Ok(text.into_bytes()),
            (None, Some(file)) if file != Path::new("-") => read_file(&file, limit)?,
            (None, _) => {
                read_capped(&mut io::stdin().lock(), limit).context("cannot read stdin")?
            }
        };
        match contents {
            Ok(contents) => writer.apply(command(op, &path, contents)).await,
            Err(reason) => WriteOutcome::rejected(
                None,
                Some(op),
                Some(path.clone()),
                None,
                WriteError::TooLarge { path, reason },
            ),
        }
    } else {
        if args.text.is_some() || args.data_file.is_some() {
            anyhow::bail!("`{op}` takes no content: leave out --text and --data-file");
        }
        let command = match op {
            WriteOp::Delete => WriteCommand::delete(&path),
            _ => WriteCommand::mkdir(&path),
        };
        writer.apply(command).await
    };

    match write_outcome(&mut io::stdout().lock(), &outcome) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => {}
        Err(error) => return Err(error).context("cannot write to stdout"),
    }
    if let Some(message) = outcome.message() {
        tracing::debug!(%message, "write failed");
        #[expect(
            clippy::print_stderr,
            reason = "a failed command is said once on stderr, like a fatal error"
        )]
        {
            eprintln!("fsbridge: {message}");
        }
        return Ok(exit::SOME_FAILED);
    }
    Ok(exit::SUCCESS)
}

fn command(op: WriteOp, path: &Path, contents: Vec<u8>) -> WriteCommand {
    match op {
        WriteOp::Create => WriteCommand::create(path, contents),
        WriteOp::Append => WriteCommand::append(path, contents),
        _ => WriteCommand::overwrite(path, contents),
    }
}

/// Reads a content file; `Err(reason)` inside when it is larger than `limit`.
fn read_file(file: &Path, limit: u64) -> anyhow::Result<Result<Vec<u8>, String>> {
    let mut opened =
        std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    read_capped(&mut opened, limit).with_context(|| format!("cannot read {}", file.display()))
}

/// Reads everything up to `limit` bytes; `Err(reason)` inside when there is more.
fn read_capped(input: &mut impl io::Read, limit: u64) -> io::Result<Result<Vec<u8>, String>> {
    let mut contents = Vec::new();
    input
        .take(limit.saturating_add(1))
        .read_to_end(&mut contents)?;
    if u64::try_from(contents.len()).unwrap_or(u64::MAX) > limit {
        return Ok(Err(format!(
            "the content is more than the limit of {limit} bytes"
        )));
    }
    Ok(Ok(contents))
}

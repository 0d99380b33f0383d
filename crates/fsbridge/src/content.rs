//! Reading the content that file events carry, when asked for.
//!
//! The bytes read never go past the size the event reports, so that a file being written while
//! it is read gives content consistent with that size: at most a shorter read, never half of a
//! later write. For appended content, the previous event's size is where reading starts, unless
//! the file shrank (truncated) or is another file now (replaced): then it starts again at 0.

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::Path;

use crate::event::{Content, ContentMode, Encoding, Reset};
use crate::index::Entry;

/// The content limit the command line uses by default (`--max-content 1M`): 1 MiB.
pub const DEFAULT_MAX_CONTENT: u64 = 1024 * 1024;

/// What content file events carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ContentOptions {
    pub(crate) mode: ContentMode,
    pub(crate) encoding: Encoding,
    /// At most this many bytes per event.
    pub(crate) max: u64,
}

/// How many bytes before the appended part are kept and compared, to notice a file that was
/// truncated and written past its old size again between two events.
const TAIL: u64 = 32;

/// Where the last appended content of one file ended: where the next one starts (the size its
/// event reported, less a character held back), and the bytes just before (up to [`TAIL`];
/// none when they could not all be read).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tail {
    pub(crate) size: u64,
    bytes: Vec<u8>,
}

/// The content of the file at `abs`, now described by `entry`, for an event; `previous` is the
/// file as the last event described it (`None` for a file new to the stream), and `tail` where
/// the last content read of this file ended. Returns the content and the tail to keep.
///
/// The next appended content starts at the size this event reports, also when this one was cut
/// by the limit: the bytes past the cut are not sent later (`cut` tells the consumer so). As
/// text, a character still incomplete at the end is held back and sent whole with the next
/// content.
pub(crate) fn read(
    options: ContentOptions,
    abs: &Path,
    entry: &Entry,
    previous: Option<&Entry>,
    tail: Option<&Tail>,
) -> (Content, Tail) {
    let (mut offset, mut reset) = match (options.mode, previous) {
        (ContentMode::Full, _) | (ContentMode::Appended, None) => (0, None),
        (ContentMode::Appended, Some(previous)) if previous.id != entry.id => {
            (0, Some(Reset::Replaced))
        }
        (ContentMode::Appended, Some(previous)) if entry.size < previous.size => {
            (0, Some(Reset::Truncated))
        }
        // Where the last content ended; short of the size reported by a held-back character.
        (ContentMode::Appended, Some(previous)) => (
            tail.map_or(previous.size, |tail| tail.size.min(previous.size)),
            None,
        ),
    };
    // The bytes just before the appended part must be those the previous content ended with;
    // if not, the file was rewritten (truncated, then written past its old size). A tail of
    // another size (the file's other name read it since) says nothing about this offset.
    if offset > 0
        && let Some(tail) = tail.filter(|tail| tail.size == offset && !tail.bytes.is_empty())
    {
        let overlap = u64::try_from(tail.bytes.len()).unwrap_or(0).min(offset);
        let before = read_range(abs, offset - overlap, overlap).unwrap_or_default();
        if before != tail.bytes[tail.bytes.len() - usize::try_from(overlap).unwrap_or(0)..] {
            (offset, reset) = (0, Some(Reset::Truncated));
        }
    }
    let wanted = entry.size.saturating_sub(offset);
    let length = wanted.min(options.max);
    let cut = wanted > options.max;

    let hold = options.mode == ContentMode::Appended && !cut;
    let (data, resume) = match read_range(abs, offset, length) {
        Ok(bytes) => {
            let end = offset + u64::try_from(bytes.len()).unwrap_or(0);
            match options.encoding {
                Encoding::Binary => (Ok(bytes), end),
                Encoding::Text => match as_text(bytes, offset, cut, hold) {
                    Ok((text, held)) => (Ok(text), end - held),
                    Err(error) => (Err(error), end),
                },
            }
        }
        Err(error) => (Err(error), entry.size),
    };
    let resume = if cut { entry.size } else { resume };
    let kept = resume.min(TAIL);
    let mut new_tail = Tail {
        size: resume,
        bytes: read_range(abs, resume - kept, kept).unwrap_or_default(),
    };
    if u64::try_from(new_tail.bytes.len()).unwrap_or(0) < kept {
        // The file shrank while it was read: the next event starts over anyway.
        new_tail.bytes.clear();
    }
    let content = Content {
        mode: options.mode,
        encoding: options.encoding,
        offset,
        data,
        cut,
        reset,
    };
    (content, new_tail)
}

/// Up to `length` bytes of `abs` from `offset`: fewer if the file shrank meanwhile.
fn read_range(abs: &Path, offset: u64, length: u64) -> Result<Vec<u8>, String> {
    let file =
        File::open(abs).map_err(|error| format!("cannot read {}: {error}", abs.display()))?;
    let mut bytes = vec![0; usize::try_from(length).unwrap_or(usize::MAX)];
    let mut filled = 0;
    while filled < bytes.len() {
        let at = offset + u64::try_from(filled).unwrap_or(u64::MAX);
        match file.read_at(&mut bytes[filled..], at) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(format!("cannot read {}: {error}", abs.display())),
        }
    }
    bytes.truncate(filled);
    Ok(bytes)
}

/// `bytes` checked as UTF-8, and how many bytes at the end were left out. A character split by
/// the content limit is left out rather than reported as an error: the content was cut there
/// anyway, and `cut` says so. With `hold`, one incomplete at the end (its writer is not done
/// with it) is left out too, for the next content to start with.
fn as_text(
    mut bytes: Vec<u8>,
    offset: u64,
    cut: bool,
    hold: bool,
) -> Result<(Vec<u8>, u64), String> {
    match std::str::from_utf8(&bytes) {
        Ok(_) => Ok((bytes, 0)),
        Err(error) if (cut || hold) && error.error_len().is_none() => {
            let held = bytes.len() - error.valid_up_to();
            bytes.truncate(error.valid_up_to());
            Ok((bytes, u64::try_from(held).unwrap_or(0)))
        }
        Err(error) => Err(format!(
            "not UTF-8 at byte {}",
            offset + u64::try_from(error.valid_up_to()).unwrap_or(u64::MAX)
        )),
    }
}

//! The NDJSON lines of the events a burst is made of, written without serde.
//!
//! A burst of 100,000 files is 100,000 `file_created` lines, and serde spent most of its time on
//! them escaping paths that need no escaping and finding the shortest form of a float (#5). The
//! lines written here are byte for byte those of `serde_json::to_writer` (the tests compare the
//! two); every event this module does not take goes through serde as before.

use std::time::{SystemTime, UNIX_EPOCH};

use fsbridge::{Event, EventKind, FileType, UpdateKind};

/// Appends `event`'s JSON object to `line` if it is a plain creation, update or deletion;
/// returns `false`, having appended nothing, for anything else: other kinds, attributes, content,
/// an origin, a path
/// that is not UTF-8 or needs escaping, a time in 1970's first second (printed with an exponent)
/// or after 2106. The line is built in memory and written at once: a dozen small writes through
/// a `BufWriter` cost more than the rest of the line together.
pub(super) fn write_plain(line: &mut Vec<u8>, event: &Event) -> bool {
    let (size, file_type) = match &event.kind {
        EventKind::FileCreated { size, file_type }
        | EventKind::FileUpdated {
            size,
            file_type,
            change: UpdateKind::Content,
            attributes: None,
        } => (Some(*size), *file_type),
        EventKind::FileDeleted | EventKind::DirCreated | EventKind::DirDeleted => {
            (None, FileType::Regular)
        }
        _ => return false,
    };
    if event.content.is_some() || event.origin.is_some() {
        return false;
    }
    let Some(path) = event.path.to_str().filter(|path| !needs_escape(path)) else {
        return false;
    };
    let Some((seconds, micros)) = plain_time(event.time) else {
        return false;
    };

    line.reserve(path.len() + 128);
    line.extend_from_slice(b"{\"event\":\"");
    line.extend_from_slice(event.name().as_bytes());
    line.extend_from_slice(b"\",\"path\":\"");
    line.extend_from_slice(path.as_bytes());
    line.push(b'"');
    if let Some(size) = size {
        line.extend_from_slice(b",\"size\":");
        line.extend_from_slice(decimal(size, &mut [0; 20]));
    }
    if file_type != FileType::Regular {
        line.extend_from_slice(b",\"file_type\":\"");
        line.extend_from_slice(file_type.as_str().as_bytes());
        line.push(b'"');
    }
    if let Some(cause) = event.cause {
        line.extend_from_slice(b",\"reason\":\"");
        line.extend_from_slice(cause.as_str().as_bytes());
        line.push(b'"');
    }
    line.extend_from_slice(b",\"time\":");
    line.extend_from_slice(decimal(seconds, &mut [0; 20]));
    line.push(b'.');
    line.extend_from_slice(fraction(micros, &mut [0; 6]));
    line.push(b'}');
    true
}

/// Whether `serde_json` would escape something in `text`: quotes, backslashes, control
/// characters. Every byte is looked at (no early exit), which lets the loop run on whole vectors.
fn needs_escape(text: &str) -> bool {
    let escaped = text.bytes().fold(0, |escaped, byte| {
        escaped | u8::from(byte < 0x20 || byte == b'"' || byte == b'\\')
    });
    escaped != 0
}

/// Whole seconds and microseconds since the epoch, where the wire's float (microseconds divided
/// by a million) prints as exactly those digits: from one second on it prints without an
/// exponent, and up to 2^32 seconds a float's spacing stays below a microsecond, so no shorter
/// decimal reads back as the same float.
fn plain_time(time: SystemTime) -> Option<(u64, u32)> {
    let since = time.duration_since(UNIX_EPOCH).ok()?;
    (1..1 << 32)
        .contains(&since.as_secs())
        .then(|| (since.as_secs(), since.subsec_micros()))
}

/// The decimal digits of `value`, written at the end of `buffer`.
fn decimal(mut value: u64, buffer: &mut [u8; 20]) -> &[u8] {
    let mut start = buffer.len();
    loop {
        start -= 1;
        buffer[start] = b'0' + digit(value);
        value /= 10;
        if value == 0 {
            return &buffer[start..];
        }
    }
}

/// The six digits of `micros` with the trailing zeros left out, keeping at least one: the
/// fraction as the shortest float form prints it (`.5`, `.123456`, `.0`).
fn fraction(mut micros: u32, buffer: &mut [u8; 6]) -> &[u8] {
    for place in buffer.iter_mut().rev() {
        *place = b'0' + digit(u64::from(micros));
        micros /= 10;
    }
    let end = buffer
        .iter()
        .rposition(|&digit| digit != b'0')
        .map_or(1, |last| last + 1);
    &buffer[..end]
}

/// The last decimal digit of `value`.
fn digit(value: u64) -> u8 {
    u8::try_from(value % 10).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    use std::path::PathBuf;
    use std::time::Duration;

    use fsbridge::{Attributes, Cause, Origin};

    use super::*;

    fn plain(event: &Event) -> Option<String> {
        let mut line = Vec::new();
        write_plain(&mut line, event).then(|| String::from_utf8(line).unwrap())
    }

    fn at_micros(kind: EventKind, path: &str, micros: u64) -> Event {
        let mut event = Event::now(kind, path);
        event.time = UNIX_EPOCH + Duration::from_micros(micros);
        event
    }

    #[test]
    fn plain_lines_are_the_lines_serde_writes() {
        let kinds = [
            EventKind::FileCreated {
                size: 0,
                file_type: FileType::Regular,
            },
            EventKind::FileUpdated {
                size: 18_446_744_073_709_551_615,
                file_type: FileType::Symlink,
                change: UpdateKind::Content,
                attributes: None,
            },
            EventKind::FileDeleted,
            EventKind::DirCreated,
            EventKind::DirDeleted,
        ];
        let paths = ["/srv/in/d042/f012345", "/", "/srv/café/ü ñ", "/t/a b\u{7f}"];
        // Round and odd fractions, times near the limits, and a spread of ordinary ones.
        let mut times = vec![
            1_000_000,
            1_000_001,
            9_999_999,
            1_764_770_000_000_000,
            1_764_770_000_100_000,
            1_764_770_000_000_001,
            1_764_770_000_123_456,
            (1 << 32) * 1_000_000 - 1,
        ];
        let mut random: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            times.push(1_000_000 + random % ((1 << 32) * 1_000_000 - 1_000_000));
        }

        for (index, micros) in times.into_iter().enumerate() {
            let kind = kinds[index % kinds.len()].clone();
            let mut event = at_micros(kind, paths[index % paths.len()], micros);
            if index % 7 == 0 {
                event.cause = Some(Cause::MovedIn);
            }

            let expected = serde_json::to_string(&event).unwrap();

            assert_eq!(plain(&event).as_deref(), Some(expected.as_str()));
        }
    }

    #[test]
    fn other_events_are_left_to_serde() {
        let micros = 1_764_770_000_123_456;
        let moved = at_micros(
            EventKind::DirMoved {
                from: PathBuf::from("/t/a"),
            },
            "/t/b",
            micros,
        );
        let quoted = at_micros(EventKind::DirCreated, "/t/\"a\"", micros);
        let control = at_micros(EventKind::DirCreated, "/t/a\nb", micros);
        let mut not_utf8 = at_micros(EventKind::FileDeleted, "/", micros);
        not_utf8.path = PathBuf::from(OsStr::from_bytes(b"/t/caf\xe9"));
        let early = at_micros(EventKind::DirCreated, "/t/a", 999_999);
        let late = at_micros(EventKind::DirCreated, "/t/a", (1 << 32) * 1_000_000);
        let updated = |change, attributes| {
            let kind = EventKind::FileUpdated {
                size: 5,
                file_type: FileType::Regular,
                change,
                attributes,
            };
            at_micros(kind, "/t/a", micros)
        };
        let mode = Some(Attributes {
            mode: 0o600,
            uid: 0,
            gid: 0,
        });
        let chmod = updated(UpdateKind::Attributes, mode);
        let rewritten_with_mode = updated(UpdateKind::Content, mode);
        let mut ours = at_micros(EventKind::DirCreated, "/t/a", micros);
        ours.origin = Some(Origin::SelfWrite);

        for event in [
            moved,
            quoted,
            control,
            not_utf8,
            early,
            late,
            chmod,
            rewritten_with_mode,
            ours,
        ] {
            assert_eq!(plain(&event), None, "{event:?}");
        }
    }
}

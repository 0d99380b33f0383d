//! Printing events: NDJSON for programs, aligned lines for people.
//!
//! Both forms write one line per event and flush it at once, so that a reader sees each event as
//! soon as it happens. Human lines escape control characters (and backslashes) in paths, so a
//! file name cannot forge lines or move the terminal's cursor.

mod json;

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

use fsbridge::{Attributes, Event, EventKind, UpdateKind};

/// How events are printed.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Format {
    Json,
    Human,
}

/// Writes `event` as one line; the caller flushes.
pub(crate) fn write_event(out: &mut impl Write, format: Format, event: &Event) -> io::Result<()> {
    match format {
        Format::Json => {
            let mut line = Vec::new();
            if json::write_plain(&mut line, event) {
                line.push(b'\n');
                out.write_all(&line)?;
            } else {
                serde_json::to_writer(&mut *out, event)?;
                out.write_all(b"\n")?;
            }
        }
        Format::Human => writeln!(out, "{}", human_line(event))?,
    }
    Ok(())
}

/// One aligned line for a person: time of day, event name, path and details.
pub(crate) fn human_line(event: &Event) -> String {
    let time = jiff::Timestamp::try_from(event.time).map_or_else(
        |_| "??:??:??.???".into(),
        |timestamp| {
            timestamp
                .to_zoned(jiff::tz::TimeZone::system())
                .strftime("%H:%M:%S%.3f")
                .to_string()
        },
    );
    let path = escape(event.path());
    let detail = match &event.kind {
        EventKind::Ready { kind, present, .. } => {
            format!(
                "{} {}",
                kind.as_str(),
                if *present { "present" } else { "absent" }
            )
        }
        EventKind::TargetAppeared {
            kind,
            size: Some(size),
        } => format!("{} {size} B", kind.as_str()),
        EventKind::TargetAppeared { kind, size: None } | EventKind::TargetVanished { kind } => {
            kind.as_str().to_string()
        }
        EventKind::FileCreated { size, file_type } => format!("{size} B {}", file_type.as_str()),
        EventKind::FileUpdated {
            size,
            file_type,
            change,
            attributes,
        } => {
            let mut detail = format!("{size} B {}", file_type.as_str());
            if *change == UpdateKind::Attributes {
                detail.push_str(" attributes");
            }
            if let Some(attributes) = attributes {
                detail.push(' ');
                detail.push_str(&mode_and_owner(attributes));
            }
            detail
        }
        EventKind::DirUpdated { attributes } => {
            format!("attributes {}", mode_and_owner(attributes))
        }
        EventKind::FileMoved { from, size, .. } => format!("from {} ({size} B)", escape(from)),
        EventKind::DirMoved { from } => format!("from {}", escape(from)),
        EventKind::Rescanned { reason } => reason.as_str().to_string(),
        EventKind::Raw { kind, paths } => {
            let paths: Vec<String> = paths.iter().map(|path| escape(path)).collect();
            format!("{kind} {}", paths.join(" "))
        }
        _ => String::new(),
    };
    format!("{time}  {:<15}  {path}  {detail}", event.name())
        .trim_end()
        .to_string()
}

/// Permission bits in octal and the owner, like `mode 0644 owner 1000:100`.
fn mode_and_owner(attributes: &Attributes) -> String {
    format!(
        "mode {:04o} owner {}:{}",
        attributes.mode, attributes.uid, attributes.gid
    )
}

/// A path for a terminal: control characters and backslashes escaped, invalid UTF-8 as `\xNN`.
pub(crate) fn escape(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut escaped = String::new();
    for chunk in path.as_os_str().as_bytes().utf8_chunks() {
        for character in chunk.valid().chars() {
            match character {
                '\\' => escaped.push_str("\\\\"),
                '\n' => escaped.push_str("\\n"),
                '\t' => escaped.push_str("\\t"),
                '\r' => escaped.push_str("\\r"),
                control if control.is_control() => {
                    let _ = write!(escaped, "\\u{{{:x}}}", u32::from(control));
                }
                other => escaped.push(other),
            }
        }
        for byte in chunk.invalid() {
            let _ = write!(escaped, "\\x{byte:02x}");
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    use super::*;

    #[test]
    fn control_characters_and_invalid_bytes_are_escaped() {
        let path = Path::new(OsStr::from_bytes(b"/t/a\nb\tc\x1b[2J\\\xff"));

        assert_eq!(escape(path), "/t/a\\nb\\tc\\u{1b}[2J\\\\\\xff");
    }

    #[test]
    fn human_line_aligns_name_and_shows_size() {
        let event = Event::now(
            EventKind::FileCreated {
                size: 5,
                file_type: fsbridge::FileType::Regular,
            },
            "/t/a.txt",
        );

        let line = human_line(&event);

        assert!(
            line.ends_with("  file_created     /t/a.txt  5 B regular"),
            "{line}"
        );
    }

    #[test]
    fn human_line_shows_attribute_changes_in_octal() {
        let attributes = Attributes {
            mode: 0o640,
            uid: 1000,
            gid: 100,
        };
        let file = Event::now(
            EventKind::FileUpdated {
                size: 5,
                file_type: fsbridge::FileType::Regular,
                change: UpdateKind::Attributes,
                attributes: Some(attributes),
            },
            "/t/a.txt",
        );
        let dir = Event::now(EventKind::DirUpdated { attributes }, "/t/d");

        let file_line = human_line(&file);
        let dir_line = human_line(&dir);

        assert!(
            file_line.ends_with(
                "  file_updated     /t/a.txt  5 B regular attributes mode 0640 owner 1000:100"
            ),
            "{file_line}"
        );
        assert!(
            dir_line.ends_with("  dir_updated      /t/d  attributes mode 0640 owner 1000:100"),
            "{dir_line}"
        );
    }
}

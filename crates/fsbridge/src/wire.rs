//! The NDJSON form of events: one JSON object per line.
//!
//! # Format
//!
//! Every object's first field is `event`, the event's name. The other fields, in this order:
//!
//! | field | in | meaning |
//! |---|---|---|
//! | `from` | `file_moved`, `dir_moved` | the absolute path the entry had before |
//! | `path` | all | the absolute path the event is about (for moves: the new one) |
//! | `kind` | `ready`, `target_appeared`, `target_vanished` | the target's kind, `dir` or `file` |
//! | `kind` | `raw` | the backend's event kind, such as `create.file` or `modify.name.both` |
//! | `present` | `ready` | whether the target existed when watching began |
//! | `size` | `file_created`, `file_updated`, `file_moved`; `ready` and `target_appeared` of a file | size in bytes |
//! | `file_type` | `file_*` events | present only when the entry is not a regular file: `symlink`, `fifo`, `socket` or `device` |
//! | `change` | `file_updated`, `dir_updated` | `attributes` when only the permission bits or the owner changed (always, for `dir_updated`); absent for a change of content, which may include new attributes |
//! | `mode` | `file_updated`, `dir_updated`, when attributes are reported | the permission bits after the change, with set-user-ID, set-group-ID and sticky, as a number: `420` is `0o644` (`rw-r--r--`) |
//! | `uid` | as `mode` | the owner's user ID after the change |
//! | `gid` | as `mode` | the owner's group ID after the change |
//! | `reason` | created and deleted events | `moved_in` or `moved_out` when the entry was really renamed into or out of the tree (native backend only); `ignored` on deletions of entries a `.gitignore` edit now leaves out (they are still on disk) |
//! | `origin` | file and directory events | `self` when fsbridge's own writer made the change (only with `--self-events mark`; by default such events are not reported) |
//! | `reason` | `rescanned` | `overflow` (the kernel queue), `queue_full` (fsbridge's own bound) or `backend_error` |
//! | `paths` | `raw` | the paths the backend named |
//! | `content_mode` | with content | `full` (the whole file) or `appended` (bytes added since the file's previous event) |
//! | `encoding` | with content | `text` (UTF-8) or `base64` |
//! | `offset` | with content | the byte offset in the file where `content` starts |
//! | `content` | with content | the bytes, as text or base64 |
//! | `content_error` | with content, instead of `content` | why there is none: not UTF-8 (with `text`), or the file could not be read |
//! | `content_cut` | with content | `true` when the content stops short of `size` because of the limit |
//! | `reset` | with appended content | `truncated` or `replaced` when reading started again at 0 |
//! | `time` | all | when fsbridge observed the change: Unix seconds with microseconds |
//!
//! `dir_updated` and `"change":"attributes"` exist only when the monitor reports attributes
//! (`MonitorBuilder::with_attributes`, `fsbridge watch --attributes`); every `file_updated` has
//! `mode`, `uid` and `gid` then, also a change of content, whose new attributes would otherwise
//! go unsaid.
//!
//! # Paths that are not UTF-8
//!
//! Every path field is a JSON string. When the path's bytes are not valid UTF-8, the string is a
//! lossy rendering (invalid bytes become U+FFFD) and a sibling field with the suffix `_bytes`
//! (`path_bytes`, `from_bytes`, `paths_bytes`) carries the exact bytes in standard base64. A
//! consumer that needs exact paths uses the `_bytes` field whenever it is present.
//!
//! ```text
//! {"event":"ready","path":"/srv/in","kind":"dir","present":true,"time":1764770000.123456}
//! {"event":"file_created","path":"/srv/in/a.txt","size":5,"time":1764770000.223456}
//! {"event":"file_moved","from":"/srv/in/a.txt","path":"/srv/in/b.txt","size":5,"time":1764770000.323456}
//! {"event":"file_created","path":"/srv/in/caf\u{FFFD}","path_bytes":"L3Nydi9pbi9jYWbp","size":0,"time":1764770000.423456}
//! ```
//!
//! With attributes reported, after `chmod 600 /srv/in/b.txt` and `chown 1000:1000 /srv/in/sub`:
//!
//! ```text
//! {"event":"file_updated","path":"/srv/in/b.txt","size":5,"change":"attributes","mode":384,"uid":0,"gid":0,"time":1764770000.523456}
//! {"event":"dir_updated","path":"/srv/in/sub","change":"attributes","mode":493,"uid":1000,"gid":1000,"time":1764770000.623456}
//! ```

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use crate::event::{Attributes, Content, Encoding, Event, EventKind, FileType, UpdateKind};

/// Seconds since the Unix epoch with microsecond precision.
fn unix_seconds(time: SystemTime) -> f64 {
    let micros = match time.duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_micros()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_micros()).unwrap_or(i64::MAX),
    };
    #[expect(
        clippy::cast_precision_loss,
        reason = "microseconds of a date fit in 53 bits"
    )]
    let seconds = micros as f64 / 1e6;
    seconds
}

fn serialize_path<M: SerializeMap>(
    map: &mut M,
    key: &'static str,
    bytes_key: &'static str,
    path: &Path,
) -> Result<(), M::Error> {
    let bytes = path.as_os_str().as_bytes();
    if let Ok(text) = std::str::from_utf8(bytes) {
        return map.serialize_entry(key, text);
    }
    map.serialize_entry(key, &String::from_utf8_lossy(bytes))?;
    map.serialize_entry(
        bytes_key,
        &base64::engine::general_purpose::STANDARD.encode(bytes),
    )
}

fn serialize_content<M: SerializeMap>(map: &mut M, content: &Content) -> Result<(), M::Error> {
    map.serialize_entry("content_mode", content.mode.as_str())?;
    map.serialize_entry("encoding", content.encoding.as_str())?;
    map.serialize_entry("offset", &content.offset)?;
    match &content.data {
        Ok(bytes) => match content.encoding {
            Encoding::Text => {
                map.serialize_entry("content", &String::from_utf8_lossy(bytes))?;
            }
            Encoding::Binary => map.serialize_entry(
                "content",
                &base64::engine::general_purpose::STANDARD.encode(bytes),
            )?,
        },
        Err(message) => map.serialize_entry("content_error", message)?,
    }
    if content.cut {
        map.serialize_entry("content_cut", &true)?;
    }
    if let Some(reset) = content.reset {
        map.serialize_entry("reset", reset.as_str())?;
    }
    Ok(())
}

fn serialize_file_type<M: SerializeMap>(map: &mut M, file_type: FileType) -> Result<(), M::Error> {
    if file_type == FileType::Regular {
        return Ok(());
    }
    map.serialize_entry("file_type", file_type.as_str())
}

fn serialize_attributes<M: SerializeMap>(
    map: &mut M,
    change: UpdateKind,
    attributes: Option<&Attributes>,
) -> Result<(), M::Error> {
    if change == UpdateKind::Attributes {
        map.serialize_entry("change", change.as_str())?;
    }
    if let Some(attributes) = attributes {
        map.serialize_entry("mode", &attributes.mode)?;
        map.serialize_entry("uid", &attributes.uid)?;
        map.serialize_entry("gid", &attributes.gid)?;
    }
    Ok(())
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("event", self.name())?;
        if let EventKind::FileMoved { from, .. } | EventKind::DirMoved { from } = &self.kind {
            serialize_path(&mut map, "from", "from_bytes", from)?;
        }
        serialize_path(&mut map, "path", "path_bytes", &self.path)?;
        match &self.kind {
            EventKind::Ready {
                kind,
                present,
                size,
            } => {
                map.serialize_entry("kind", kind.as_str())?;
                map.serialize_entry("present", present)?;
                if let Some(size) = size {
                    map.serialize_entry("size", size)?;
                }
            }
            EventKind::TargetAppeared { kind, size } => {
                map.serialize_entry("kind", kind.as_str())?;
                if let Some(size) = size {
                    map.serialize_entry("size", size)?;
                }
            }
            EventKind::TargetVanished { kind } => map.serialize_entry("kind", kind.as_str())?,
            EventKind::FileCreated { size, file_type }
            | EventKind::FileMoved {
                size, file_type, ..
            } => {
                map.serialize_entry("size", size)?;
                serialize_file_type(&mut map, *file_type)?;
            }
            EventKind::FileUpdated {
                size,
                file_type,
                change,
                attributes,
            } => {
                map.serialize_entry("size", size)?;
                serialize_file_type(&mut map, *file_type)?;
                serialize_attributes(&mut map, *change, attributes.as_ref())?;
            }
            EventKind::DirUpdated { attributes } => {
                serialize_attributes(&mut map, UpdateKind::Attributes, Some(attributes))?;
            }
            EventKind::Rescanned { reason } => map.serialize_entry("reason", reason.as_str())?,
            EventKind::Raw { kind, paths } => {
                map.serialize_entry("kind", kind)?;
                let lossy: Vec<_> = paths.iter().map(|path| path.to_string_lossy()).collect();
                map.serialize_entry("paths", &lossy)?;
                if paths.iter().any(|path| path.to_str().is_none()) {
                    let exact: Vec<String> = paths
                        .iter()
                        .map(|path| {
                            base64::engine::general_purpose::STANDARD
                                .encode(path.as_os_str().as_bytes())
                        })
                        .collect();
                    map.serialize_entry("paths_bytes", &exact)?;
                }
            }
            EventKind::FileDeleted
            | EventKind::DirCreated
            | EventKind::DirMoved { .. }
            | EventKind::DirDeleted => {}
        }
        if let Some(cause) = self.cause {
            map.serialize_entry("reason", cause.as_str())?;
        }
        if let Some(origin) = self.origin {
            map.serialize_entry("origin", origin.as_str())?;
        }
        if let Some(content) = &self.content {
            serialize_content(&mut map, content)?;
        }
        map.serialize_entry("time", &unix_seconds(self.time))?;
        map.end()
    }
}

/// The JSON object on one command line, refusing a field that appears twice: with the last one
/// winning silently, a program that checked the first `path` could be bypassed. The error
/// completes a sentence about the line: "is not a JSON object", "has the field `path` twice".
///
/// # Errors
///
/// When the line is not one JSON object, or names a field twice.
pub fn json_object(line: &[u8]) -> Result<serde_json::Map<String, Value>, String> {
    use serde::de::{Deserializer as _, MapAccess, Visitor};

    struct Fields;

    impl<'de> Visitor<'de> for Fields {
        type Value = Result<serde_json::Map<String, Value>, String>;

        fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut object = serde_json::Map::new();
            let mut doubled = None;
            while let Some((key, value)) = access.next_entry::<String, Value>()? {
                if object.contains_key(&key) {
                    doubled.get_or_insert(key);
                } else {
                    object.insert(key, value);
                }
            }
            Ok(match doubled {
                Some(key) => Err(format!("has the field `{key}` twice")),
                None => Ok(object),
            })
        }
    }

    let mut deserializer = serde_json::Deserializer::from_slice(line);
    let object = match deserializer.deserialize_map(Fields) {
        Ok(object) => object?,
        Err(error) if error.is_data() => return Err("is not a JSON object".into()),
        Err(error) => return Err(format!("is not valid JSON: {error}")),
    };
    deserializer
        .end()
        .map_err(|error| format!("is not valid JSON: {error}"))?;
    Ok(object)
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::event::TargetKind;

    fn at(kind: EventKind, path: &str) -> Event {
        Event {
            kind,
            path: PathBuf::from(path),
            time: UNIX_EPOCH + Duration::from_micros(1_764_770_000_123_456),
            content: None,
            cause: None,
            origin: None,
        }
    }

    #[test]
    fn ready_has_the_documented_field_order() {
        let event = at(
            EventKind::Ready {
                kind: TargetKind::Dir,
                present: true,
                size: None,
            },
            "/abs/target",
        );

        let line = serde_json::to_string(&event).unwrap();

        assert_eq!(
            line,
            r#"{"event":"ready","path":"/abs/target","kind":"dir","present":true,"time":1764770000.123456}"#
        );
    }

    #[test]
    fn move_puts_from_before_path() {
        let event = at(
            EventKind::FileMoved {
                from: "/t/a".into(),
                size: 9,
                file_type: FileType::Regular,
            },
            "/t/b",
        );

        let line = serde_json::to_string(&event).unwrap();

        assert_eq!(
            line,
            r#"{"event":"file_moved","from":"/t/a","path":"/t/b","size":9,"time":1764770000.123456}"#
        );
    }

    #[test]
    fn symlink_is_marked_with_file_type() {
        let event = at(
            EventKind::FileCreated {
                size: 3,
                file_type: FileType::Symlink,
            },
            "/t/l",
        );

        let line = serde_json::to_string(&event).unwrap();

        assert_eq!(
            line,
            r#"{"event":"file_created","path":"/t/l","size":3,"file_type":"symlink","time":1764770000.123456}"#
        );
    }

    #[test]
    fn attribute_update_says_so_and_carries_mode_and_owner() {
        let event = at(
            EventKind::FileUpdated {
                size: 5,
                file_type: FileType::Regular,
                change: UpdateKind::Attributes,
                attributes: Some(Attributes {
                    mode: 0o600,
                    uid: 0,
                    gid: 0,
                }),
            },
            "/srv/in/b.txt",
        );

        let line = serde_json::to_string(&event).unwrap();

        assert_eq!(
            line,
            r#"{"event":"file_updated","path":"/srv/in/b.txt","size":5,"change":"attributes","mode":384,"uid":0,"gid":0,"time":1764770000.123456}"#
        );
    }

    #[test]
    fn content_update_has_no_change_field_and_attributes_only_when_reported() {
        let update = |attributes| {
            at(
                EventKind::FileUpdated {
                    size: 7,
                    file_type: FileType::Regular,
                    change: UpdateKind::Content,
                    attributes,
                },
                "/t/a",
            )
        };

        let plain = serde_json::to_string(&update(None)).unwrap();
        let reported = serde_json::to_string(&update(Some(Attributes {
            mode: 0o644,
            uid: 1000,
            gid: 100,
        })))
        .unwrap();

        assert_eq!(
            plain,
            r#"{"event":"file_updated","path":"/t/a","size":7,"time":1764770000.123456}"#
        );
        assert_eq!(
            reported,
            r#"{"event":"file_updated","path":"/t/a","size":7,"mode":420,"uid":1000,"gid":100,"time":1764770000.123456}"#
        );
    }

    #[test]
    fn dir_updated_carries_mode_and_owner() {
        let event = at(
            EventKind::DirUpdated {
                attributes: Attributes {
                    mode: 0o755,
                    uid: 1000,
                    gid: 1000,
                },
            },
            "/srv/in/sub",
        );

        let line = serde_json::to_string(&event).unwrap();

        assert_eq!(
            line,
            r#"{"event":"dir_updated","path":"/srv/in/sub","change":"attributes","mode":493,"uid":1000,"gid":1000,"time":1764770000.123456}"#
        );
    }

    #[test]
    fn non_utf8_path_carries_exact_bytes() {
        let path = PathBuf::from(OsStr::from_bytes(b"/t/caf\xe9"));
        let event = Event {
            path,
            ..at(EventKind::FileDeleted, "/")
        };

        let value: serde_json::Value = serde_json::to_value(&event).unwrap();

        assert_eq!(value["path"], "/t/caf\u{FFFD}");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value["path_bytes"].as_str().unwrap())
            .unwrap();
        assert_eq!(bytes, b"/t/caf\xe9");
    }
}

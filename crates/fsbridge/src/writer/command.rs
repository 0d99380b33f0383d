//! Write commands and their outcomes, and their NDJSON form.
//!
//! The types here are plain data: a [`WriteCommand`] says what to do, a [`WriteOutcome`] says
//! what happened. Nothing here touches the file system. The wire format is specified on
//! [`WriteCommand::from_json_line`] (commands) and [`WriteOutcome`] (results).

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use super::error::WriteError;

/// What a command does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WriteOp {
    /// Create a new file; fails with `exists` if anything is at the path.
    Create,
    /// Append to a file, creating it when missing.
    Append,
    /// Replace a file's content, creating it when missing.
    Overwrite,
    /// Remove a file (a symbolic link is removed itself, not what it points to).
    Delete,
    /// Create a directory and its parents; fine if it exists.
    Mkdir,
}

impl WriteOp {
    /// The operation's name on the wire, such as `overwrite`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Append => "append",
            Self::Overwrite => "overwrite",
            Self::Delete => "delete",
            Self::Mkdir => "mkdir",
        }
    }

    /// Parses an operation's wire name.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "create" => Self::Create,
            "append" => Self::Append,
            "overwrite" => Self::Overwrite,
            "delete" => Self::Delete,
            "mkdir" => Self::Mkdir,
            _ => return None,
        })
    }

    /// Whether the operation carries content (`text` or `data`).
    pub fn has_contents(self) -> bool {
        matches!(self, Self::Create | Self::Append | Self::Overwrite)
    }

    /// The verb for messages: "cannot {verb} {path}".
    fn verb(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Append => "append to",
            Self::Overwrite => "overwrite",
            Self::Delete => "delete",
            Self::Mkdir => "make directory",
        }
    }
}

impl fmt::Display for WriteOp {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// One command for a [`Writer`](crate::Writer): an operation on a path beneath the root.
///
/// # Examples
///
/// ```
/// use fsbridge::{WriteCommand, WriteOp};
///
/// let command = WriteCommand::create("notes/a.txt", "hello\n").with_id("1");
/// assert_eq!(command.op(), WriteOp::Create);
/// assert_eq!(command.contents(), Some(&b"hello\n"[..]));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteCommand {
    id: Option<String>,
    op: WriteOp,
    path: PathBuf,
    contents: Option<Vec<u8>>,
}

impl WriteCommand {
    /// A command that creates a new file with `contents`.
    pub fn create(path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>) -> Self {
        Self::with_contents(WriteOp::Create, path.into(), contents.into())
    }

    /// A command that appends `contents` to a file, creating the file when missing.
    pub fn append(path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>) -> Self {
        Self::with_contents(WriteOp::Append, path.into(), contents.into())
    }

    /// A command that replaces a file's content with `contents`, creating the file when missing.
    pub fn overwrite(path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>) -> Self {
        Self::with_contents(WriteOp::Overwrite, path.into(), contents.into())
    }

    /// A command that removes a file.
    pub fn delete(path: impl Into<PathBuf>) -> Self {
        Self {
            id: None,
            op: WriteOp::Delete,
            path: path.into(),
            contents: None,
        }
    }

    /// A command that creates a directory and its parents.
    pub fn mkdir(path: impl Into<PathBuf>) -> Self {
        Self {
            id: None,
            op: WriteOp::Mkdir,
            path: path.into(),
            contents: None,
        }
    }

    fn with_contents(op: WriteOp, path: PathBuf, contents: Vec<u8>) -> Self {
        Self {
            id: None,
            op,
            path,
            contents: Some(contents),
        }
    }

    /// Gives the command an id, so that a writer applies it at most once. No id by default.
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// The command's id, if it has one.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The operation.
    pub fn op(&self) -> WriteOp {
        self.op
    }

    /// The path as given: relative to the root, or absolute and inside it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The content to write; `None` for `delete` and `mkdir`.
    pub fn contents(&self) -> Option<&[u8]> {
        self.contents.as_deref()
    }

    /// A hash of what the command does (operation, path, content), to tell a redelivered
    /// command from another one that reuses its id.
    pub(crate) fn fingerprint(&self) -> u64 {
        use std::hash::{Hash as _, Hasher as _};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.op.hash(&mut hasher);
        self.path.hash(&mut hasher);
        self.contents.hash(&mut hasher);
        hasher.finish()
    }

    /// Parses one NDJSON command line; `line_number` (counted from 1) goes into the outcome of
    /// a line that cannot be parsed.
    ///
    /// # Format
    ///
    /// One JSON object per line, with these fields:
    ///
    /// | field | required | meaning |
    /// |---|---|---|
    /// | `id` | no | a string; a command whose id this writer applied already is not applied again |
    /// | `op` | yes | `create`, `append`, `overwrite`, `delete` or `mkdir` |
    /// | `path` | yes, or `path_bytes` | the path, relative to the root (or absolute and inside it) |
    /// | `path_bytes` | instead of `path` | the path's exact bytes in standard base64, for names that are not UTF-8 |
    /// | `text` | for `create`, `append`, `overwrite`: exactly one of `text` and `data` | the content as UTF-8 text |
    /// | `data` | see `text` | the content as standard base64 |
    ///
    /// Any other field, a missing or doubled field, or a field of the wrong type makes the line
    /// `invalid`. `delete` and `mkdir` take no content.
    ///
    /// ```text
    /// {"id":"1","op":"create","path":"notes/a.txt","text":"hello\n"}
    /// {"id":"2","op":"overwrite","path":"img/p.bin","data":"iVBORw0KGgo="}
    /// {"op":"mkdir","path":"archive/2026/12"}
    /// ```
    ///
    /// # Errors
    ///
    /// A line that is not a valid command gives, as the error, the outcome to report for it:
    /// kind `invalid`, with the line's id when it had a readable one, and `line_number`.
    pub fn from_json_line(line: &[u8], line_number: u64) -> Result<Self, Box<WriteOutcome>> {
        let rejected = |id: Option<String>, op: Option<WriteOp>, path: Option<PathBuf>, reason| {
            Box::new(WriteOutcome {
                id,
                op,
                result: Err(WriteError::invalid(
                    path.as_deref().unwrap_or(Path::new("")),
                    reason,
                )),
                path,
                duplicate: false,
                line: Some(line_number),
            })
        };

        let object = match crate::wire::json_object(line) {
            Ok(object) => object,
            Err(reason) => {
                return Err(rejected(
                    None,
                    None,
                    None,
                    format!("line {line_number} {reason}"),
                ));
            }
        };
        let id = object.get("id").and_then(Value::as_str).map(str::to_owned);
        let op = object
            .get("op")
            .and_then(Value::as_str)
            .and_then(WriteOp::from_name);
        let path = read_path(&object).ok().flatten();

        match parse_fields(&object) {
            Ok(command) => Ok(command),
            Err(reason) => Err(rejected(id, op, path, reason)),
        }
    }
}

/// Checks every field of a command object; returns the reason when one is wrong.
fn parse_fields(object: &Map<String, Value>) -> Result<WriteCommand, String> {
    if let Some(unknown) = object.keys().find(|key| {
        !matches!(
            key.as_str(),
            "id" | "op" | "path" | "path_bytes" | "text" | "data"
        )
    }) {
        return Err(format!("unknown field `{unknown}`"));
    }
    let id = match object.get("id") {
        None => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(_) => return Err("`id` must be a string".into()),
    };
    let op = match object.get("op") {
        None => return Err("`op` is missing".into()),
        Some(Value::String(name)) => WriteOp::from_name(name).ok_or_else(|| {
            format!("unknown op `{name}`: use create, append, overwrite, delete or mkdir")
        })?,
        Some(_) => return Err("`op` must be a string".into()),
    };
    let path = read_path(object)?.ok_or("`path` is missing")?;

    let contents = match (object.get("text"), object.get("data")) {
        (Some(_), Some(_)) => return Err("give `text` or `data`, not both".into()),
        (Some(Value::String(text)), None) => Some(text.clone().into_bytes()),
        (Some(_), None) => return Err("`text` must be a string".into()),
        (None, Some(Value::String(data))) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .map_err(|error| format!("`data` is not valid base64: {error}"))?,
        ),
        (None, Some(_)) => return Err("`data` must be a base64 string".into()),
        (None, None) => None,
    };
    if op.has_contents() && contents.is_none() {
        return Err(format!("`{op}` needs `text` or `data`"));
    }
    if !op.has_contents() && contents.is_some() {
        return Err(format!("`{op}` takes no `text` or `data`"));
    }

    Ok(WriteCommand {
        id,
        op,
        path,
        contents,
    })
}

/// Reads `path` or `path_bytes`; `Ok(None)` when both are absent.
fn read_path(object: &Map<String, Value>) -> Result<Option<PathBuf>, String> {
    match (object.get("path"), object.get("path_bytes")) {
        (Some(_), Some(_)) => Err("give `path` or `path_bytes`, not both".into()),
        (Some(Value::String(path)), None) => Ok(Some(PathBuf::from(path))),
        (Some(_), None) => Err("`path` must be a string".into()),
        (None, Some(Value::String(encoded))) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map(|bytes| Some(PathBuf::from(OsStr::from_bytes(&bytes))))
            .map_err(|error| format!("`path_bytes` is not valid base64: {error}")),
        (None, Some(_)) => Err("`path_bytes` must be a base64 string".into()),
        (None, None) => Ok(None),
    }
}

/// What a successful command did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    /// The file's size afterwards, for `create`, `append` and `overwrite`.
    pub size: Option<u64>,
    /// For `create` and `overwrite`: whether the new content was renamed into place (`true`), or
    /// written in place because the directory allows no temporary file (`false`).
    pub atomic: Option<bool>,
}

/// The result of one command: what was asked, and what happened.
///
/// # Format
///
/// [`Serialize`] writes one JSON object, with fields in this order:
///
/// | field | when | meaning |
/// |---|---|---|
/// | `id` | the command had an id | the command's id |
/// | `ok` | always | whether the command was applied (or had been applied before) |
/// | `op` | the op was readable | the command's op |
/// | `path` | the path was readable | the command's path as given (lossy when not UTF-8) |
/// | `path_bytes` | the path is not UTF-8 | the path's exact bytes in standard base64 |
/// | `size` | success of `create`, `append`, `overwrite` | the file's size afterwards |
/// | `atomic` | success of `create`, `overwrite` | `false` when the file was rewritten in place |
/// | `duplicate` | only when `true` | the id was applied before; nothing was done this time |
/// | `error` | failure | an object: `kind` (see [`WriteErrorKind`](crate::WriteErrorKind)) and `message` |
/// | `line` | an unreadable line without an id | the line number, from 1 |
///
/// ```text
/// {"id":"1","ok":true,"op":"create","path":"notes/a.txt","size":6,"atomic":true}
/// {"id":"1","ok":true,"op":"create","path":"notes/a.txt","size":6,"atomic":true,"duplicate":true}
/// {"id":"9","ok":false,"op":"create","path":"../x","error":{"kind":"escape","message":"cannot create ../x: `..` leads outside the root"}}
/// {"ok":false,"error":{"kind":"invalid","message":"line 4 is not valid JSON: expected value at line 1 column 1"},"line":4}
/// ```
#[derive(Debug)]
pub struct WriteOutcome {
    id: Option<String>,
    op: Option<WriteOp>,
    path: Option<PathBuf>,
    result: Result<Written, WriteError>,
    duplicate: bool,
    line: Option<u64>,
}

impl WriteOutcome {
    pub(crate) fn new(command: WriteCommand, result: Result<Written, WriteError>) -> Self {
        Self {
            id: command.id,
            op: Some(command.op),
            path: Some(command.path),
            result,
            duplicate: false,
            line: None,
        }
    }

    /// The outcome of a command that a front end refused before it reached a writer: a line too
    /// long to read, content too large to load. Any of `id`, `op`, `path` may be unknown;
    /// `line` is the command's line number, when it came from a stream of lines.
    pub fn rejected(
        id: Option<String>,
        op: Option<WriteOp>,
        path: Option<PathBuf>,
        line: Option<u64>,
        error: WriteError,
    ) -> Self {
        Self {
            id,
            op,
            path,
            result: Err(error),
            duplicate: false,
            line,
        }
    }

    pub(crate) fn failure(
        id: Option<String>,
        op: WriteOp,
        path: PathBuf,
        error: WriteError,
    ) -> Self {
        Self {
            id,
            op: Some(op),
            path: Some(path),
            result: Err(error),
            duplicate: false,
            line: None,
        }
    }

    pub(crate) fn duplicate(command: WriteCommand, written: Written) -> Self {
        Self {
            duplicate: true,
            ..Self::new(command, Ok(written))
        }
    }

    /// The command's id.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The command's op; `None` for a line that could not be read that far.
    pub fn op(&self) -> Option<WriteOp> {
        self.op
    }

    /// The command's path as given; `None` for a line that could not be read that far.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Whether the command was applied (now or before).
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }

    /// What was done, or why nothing was.
    pub fn result(&self) -> &Result<Written, WriteError> {
        &self.result
    }

    /// The error, when the command failed.
    pub fn error(&self) -> Option<&WriteError> {
        self.result.as_ref().err()
    }

    /// The file's size after a successful `create`, `append` or `overwrite`.
    pub fn size(&self) -> Option<u64> {
        self.result.as_ref().ok().and_then(|written| written.size)
    }

    /// Whether the file was replaced by a rename (`Some(true)`) or rewritten in place
    /// (`Some(false)`); `None` for other operations and failures.
    pub fn is_atomic(&self) -> Option<bool> {
        self.result.as_ref().ok().and_then(|written| written.atomic)
    }

    /// Whether the command's id had been applied before, so nothing was done this time.
    pub fn is_duplicate(&self) -> bool {
        self.duplicate
    }

    /// The line number of a command line that could not be parsed.
    pub fn line(&self) -> Option<u64> {
        self.line
    }

    /// The error message for people, such as `cannot create ../x: ...`; `None` on success.
    pub fn message(&self) -> Option<String> {
        let error = self.error()?;
        Some(match self.op {
            Some(op) if !error.path().as_os_str().is_empty() => {
                format!("cannot {} {error}", op.verb())
            }
            _ => error.to_string(),
        })
    }
}

impl Serialize for WriteOutcome {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if let Some(id) = &self.id {
            map.serialize_entry("id", id)?;
        }
        map.serialize_entry("ok", &self.is_ok())?;
        if let Some(op) = self.op {
            map.serialize_entry("op", op.as_str())?;
        }
        if let Some(path) = &self.path {
            let bytes = path.as_os_str().as_bytes();
            if let Ok(text) = std::str::from_utf8(bytes) {
                map.serialize_entry("path", text)?;
            } else {
                map.serialize_entry("path", &String::from_utf8_lossy(bytes))?;
                map.serialize_entry(
                    "path_bytes",
                    &base64::engine::general_purpose::STANDARD.encode(bytes),
                )?;
            }
        }
        match &self.result {
            Ok(written) => {
                if let Some(size) = written.size {
                    map.serialize_entry("size", &size)?;
                }
                if let Some(atomic) = written.atomic {
                    map.serialize_entry("atomic", &atomic)?;
                }
                if self.duplicate {
                    map.serialize_entry("duplicate", &true)?;
                }
            }
            Err(error) => {
                map.serialize_entry(
                    "error",
                    &ErrorObject {
                        kind: error.kind().as_str(),
                        message: self.message().unwrap_or_default(),
                    },
                )?;
            }
        }
        if self.id.is_none()
            && let Some(line) = self.line
        {
            map.serialize_entry("line", &line)?;
        }
        map.end()
    }
}

/// The `error` object of a result.
#[derive(serde::Serialize)]
struct ErrorObject {
    kind: &'static str,
    message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(outcome: &WriteOutcome) -> String {
        serde_json::to_string(outcome).unwrap()
    }

    #[test]
    fn text_command_parses() {
        let line = br#"{"id":"1","op":"create","path":"notes/a.txt","text":"hello\n"}"#;

        let command = WriteCommand::from_json_line(line, 1).unwrap();

        assert_eq!(
            command,
            WriteCommand::create("notes/a.txt", "hello\n").with_id("1")
        );
    }

    #[test]
    fn data_is_decoded_from_base64() {
        let line = br#"{"op":"overwrite","path":"p.bin","data":"AAH/"}"#;

        let command = WriteCommand::from_json_line(line, 1).unwrap();

        assert_eq!(command.contents(), Some(&[0, 1, 255][..]));
        assert_eq!(command.id(), None);
    }

    #[test]
    fn path_bytes_carry_names_that_are_not_utf8() {
        let line = br#"{"op":"delete","path_bytes":"Y2Fm6Q=="}"#;

        let command = WriteCommand::from_json_line(line, 1).unwrap();

        assert_eq!(command.path().as_os_str().as_bytes(), b"caf\xe9");
    }

    #[test]
    fn broken_json_is_invalid_with_the_line_number() {
        let outcome = WriteCommand::from_json_line(b"{nope", 7).unwrap_err();

        let json = json(&outcome);

        assert!(
            json.starts_with(
                r#"{"ok":false,"error":{"kind":"invalid","message":"line 7 is not valid JSON"#
            ),
            "{json}"
        );
        assert!(json.ends_with(r#","line":7}"#), "{json}");
    }

    #[test]
    fn invalid_command_keeps_its_id_op_and_path() {
        let line = br#"{"id":"x","op":"create","path":"a.txt"}"#;

        let outcome = WriteCommand::from_json_line(line, 2).unwrap_err();

        assert_eq!(
            json(&outcome),
            r#"{"id":"x","ok":false,"op":"create","path":"a.txt","error":{"kind":"invalid","message":"cannot create a.txt: `create` needs `text` or `data`"}}"#
        );
    }

    #[test]
    fn wrong_fields_are_refused_with_a_reason() {
        let cases: [(&[u8], &str); 7] = [
            (
                br#"{"op":"create","path":"a","txt":"x"}"#,
                "unknown field `txt`",
            ),
            (
                br#"{"op":"create","path":"a","text":"x","data":"eA=="}"#,
                "not both",
            ),
            (br#"{"op":"delete","path":"a","text":"x"}"#, "takes no"),
            (br#"{"op":"rename","path":"a"}"#, "unknown op `rename`"),
            (br#"{"op":"mkdir"}"#, "`path` is missing"),
            (
                br#"{"id":1,"op":"mkdir","path":"a"}"#,
                "`id` must be a string",
            ),
            (br"[1,2]", "not a JSON object"),
        ];

        for (line, expected) in cases {
            let outcome = WriteCommand::from_json_line(line, 1).unwrap_err();

            let message = outcome.message().unwrap();
            assert!(message.contains(expected), "{message} lacks {expected}");
        }
    }

    #[test]
    fn success_serializes_size_atomic_and_duplicate() {
        let command = WriteCommand::create("a.txt", "hello\n").with_id("1");
        let written = Written {
            size: Some(6),
            atomic: Some(true),
        };

        let first = WriteOutcome::new(command.clone(), Ok(written));
        let again = WriteOutcome::duplicate(command, written);

        assert_eq!(
            json(&first),
            r#"{"id":"1","ok":true,"op":"create","path":"a.txt","size":6,"atomic":true}"#
        );
        assert_eq!(
            json(&again),
            r#"{"id":"1","ok":true,"op":"create","path":"a.txt","size":6,"atomic":true,"duplicate":true}"#
        );
    }
}

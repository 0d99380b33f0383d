//! The `fsbridge run` config file, and the input and output specifications that control
//! commands share with it.
//!
//! The format is TOML; `examples/fsbridge.toml` is the commented reference. In short:
//!
//! ```toml
//! self_events = "drop"            # or "mark"
//!
//! [io.logs.input]                 # a config named `logs` with an input...
//! path = "/var/log/app"
//! content = "appended"
//!
//! [io.archive.output]             # ...and one named `archive` with an output
//! root = "/srv/archive"
//! ```
//!
//! Every mistake is refused before anything starts, as `FILE:LINE:COLUMN: KEY: what is wrong`.
//! Relative paths in the file are taken from the file's directory.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fsbridge::{ContentMode, Encoding, MonitorBuilder, SelfEvents, TargetKind, Writer};
use serde::Deserialize;

/// A config file, read and checked.
#[derive(Debug)]
pub(crate) struct ConfigFile {
    pub(crate) self_events: Option<SelfEvents>,
    /// The io configs by name.
    pub(crate) io: BTreeMap<String, Io>,
}

/// One io config: what to build for its input and output.
#[derive(Debug)]
pub(crate) struct Io {
    pub(crate) input: Option<MonitorBuilder>,
    pub(crate) output: Option<Writer>,
}

/// A config file that cannot be used, with where and why.
#[derive(Debug)]
pub(crate) struct ConfigError {
    file: PathBuf,
    /// Line and column, from 1, when known.
    at: Option<(usize, usize)>,
    /// The dotted key the mistake is in, when known.
    key: Option<String>,
    message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.file.display())?;
        if let Some((line, column)) = self.at {
            write!(formatter, ":{line}:{column}")?;
        }
        if let Some(key) = &self.key {
            write!(formatter, ": {key}")?;
        }
        write!(formatter, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The file as TOML describes it, before its values are checked.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    self_events: Option<String>,
    #[serde(default)]
    io: BTreeMap<String, RawIo>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIo {
    input: Option<InputSpec>,
    output: Option<OutputSpec>,
}

/// An input: the `[io.NAME.input]` table, or the fields of a `watch` control command.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InputSpec {
    path: PathBuf,
    kind: Option<String>,
    content: Option<String>,
    encoding: Option<String>,
    max_content: Option<Size>,
    settle: Option<DurationValue>,
    poll: Option<Poll>,
    #[serde(default)]
    initial: bool,
    #[serde(default)]
    ignore: Globs,
    #[serde(default)]
    gitignore: bool,
    #[serde(default)]
    attributes: bool,
}

/// An output: the `[io.NAME.output]` table, or the fields of an `output` control command.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutputSpec {
    root: PathBuf,
    fsync: Option<bool>,
    lock_timeout: Option<DurationValue>,
    max_bytes: Option<Size>,
}

/// `poll`: `true` for every second, `false` for native, or an interval such as `500ms`.
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "true, false or an interval such as \"500ms\"")]
enum Poll {
    Switch(bool),
    Every(String),
}

/// `ignore`: one glob, or a list of them.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged, expecting = "a glob or a list of globs")]
enum Globs {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl Globs {
    fn patterns(&self) -> Vec<String> {
        match self {
            Self::None => Vec::new(),
            Self::One(pattern) => vec![pattern.clone()],
            Self::Many(patterns) => patterns.clone(),
        }
    }
}

/// A size: a number of bytes, or a string such as `64M`.
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a number of bytes or a size such as \"64M\"")]
enum Size {
    Bytes(u64),
    Text(String),
}

impl Size {
    fn bytes(&self) -> Result<u64, String> {
        match self {
            Self::Bytes(bytes) => Ok(*bytes),
            Self::Text(text) => crate::size::parse(text),
        }
    }
}

/// A mistake in one key of a table, before it is located in the file.
#[derive(Debug)]
pub(crate) struct KeyError {
    pub(crate) key: &'static str,
    pub(crate) message: String,
}

fn wrong(key: &'static str, message: impl Into<String>) -> KeyError {
    KeyError {
        key,
        message: message.into(),
    }
}

/// `path` taken from `base` when relative; refused when empty.
fn resolve(key: &'static str, path: &Path, base: &Path) -> Result<PathBuf, KeyError> {
    if path.as_os_str().is_empty() {
        return Err(wrong(key, "is empty: give a path"));
    }
    Ok(base.join(path))
}

/// A duration: a string such as `"10ms"`, or the number `0` (a number with no unit is
/// ambiguous otherwise).
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a duration such as \"10ms\", \"1s\" or \"0\"")]
enum DurationValue {
    Text(String),
    Number(u64),
}

fn duration(
    key: &'static str,
    value: Option<&DurationValue>,
) -> Result<Option<Duration>, KeyError> {
    match value {
        None => Ok(None),
        Some(DurationValue::Number(0)) => Ok(Some(Duration::ZERO)),
        Some(DurationValue::Number(number)) => Err(wrong(
            key,
            format!("`{number}` has no unit: write it like \"{number}ms\" or \"{number}s\""),
        )),
        Some(DurationValue::Text(text)) => crate::duration::parse(text)
            .map(Some)
            .map_err(|message| wrong(key, message)),
    }
}

impl InputSpec {
    /// The monitor this input describes; relative paths are taken from `base`.
    pub(crate) fn builder(&self, base: &Path) -> Result<MonitorBuilder, KeyError> {
        let path = resolve("path", &self.path, base)?;
        let mut builder = MonitorBuilder::new(&path)
            .with_ignore(self.ignore.patterns())
            .with_gitignore(self.gitignore);
        builder
            .check_ignore()
            .map_err(|error| wrong("ignore", error.to_string()))?;
        match self.kind.as_deref() {
            None => {
                if std::fs::symlink_metadata(&path).is_err() {
                    return Err(wrong(
                        "path",
                        format!(
                            "{} does not exist; give kind \"dir\" or \"file\" to wait for it",
                            path.display()
                        ),
                    ));
                }
            }
            Some("dir") => builder = builder.with_kind(TargetKind::Dir),
            Some("file") => builder = builder.with_kind(TargetKind::File),
            Some(other) => {
                return Err(wrong(
                    "kind",
                    format!("`{other}` is not a kind: use \"dir\" or \"file\""),
                ));
            }
        }
        let mode = match self.content.as_deref() {
            None | Some("none") => None,
            Some("full") => Some(ContentMode::Full),
            Some("appended") => Some(ContentMode::Appended),
            Some(other) => {
                return Err(wrong(
                    "content",
                    format!(
                        "`{other}` is not a content mode: use \"none\", \"full\" or \"appended\""
                    ),
                ));
            }
        };
        let encoding = match self.encoding.as_deref() {
            None | Some("text") => Encoding::Text,
            Some("binary") => Encoding::Binary,
            Some(other) => {
                return Err(wrong(
                    "encoding",
                    format!("`{other}` is not an encoding: use \"text\" or \"binary\""),
                ));
            }
        };
        let max_content = match &self.max_content {
            Some(size) => size
                .bytes()
                .map_err(|message| wrong("max_content", message))?,
            None => fsbridge::DEFAULT_MAX_CONTENT,
        };
        if let Some(mode) = mode {
            builder = builder.with_content(mode, encoding, max_content);
        } else if self.encoding.is_some() || self.max_content.is_some() {
            let key = if self.encoding.is_some() {
                "encoding"
            } else {
                "max_content"
            };
            return Err(wrong(key, "needs content = \"full\" or \"appended\""));
        }
        if let Some(settle) = duration("settle", self.settle.as_ref())? {
            builder = builder.with_settle(settle);
        }
        match &self.poll {
            None | Some(Poll::Switch(false)) => {}
            Some(Poll::Switch(true)) => {
                builder = builder.with_poll(fsbridge::DEFAULT_POLL_INTERVAL);
            }
            Some(Poll::Every(interval)) => {
                let interval = crate::duration::parse_interval(interval)
                    .map_err(|message| wrong("poll", message))?;
                builder = builder.with_poll(interval);
            }
        }
        Ok(builder
            .with_initial(self.initial)
            .with_attributes(self.attributes))
    }
}

impl OutputSpec {
    /// The writer this output describes; a relative root is taken from `base`.
    pub(crate) fn writer(&self, base: &Path) -> Result<Writer, KeyError> {
        let root = resolve("root", &self.root, base)?;
        if let Ok(metadata) = std::fs::metadata(&root)
            && !metadata.is_dir()
        {
            return Err(wrong(
                "root",
                format!("{} is not a directory", root.display()),
            ));
        }
        if !root.exists() {
            // It may be mounted or made later; commands fail with `not_found` until then.
            tracing::warn!(root = %root.display(), "the output root does not exist (yet); commands fail until it does");
        }
        let mut writer = Writer::new(root).with_fsync(self.fsync.unwrap_or(true));
        if let Some(timeout) = duration("lock_timeout", self.lock_timeout.as_ref())? {
            writer = writer.with_lock_timeout(timeout);
        }
        if let Some(size) = &self.max_bytes {
            writer = writer.with_max_bytes(
                size.bytes()
                    .map_err(|message| wrong("max_bytes", message))?,
            );
        }
        Ok(writer)
    }
}

/// Parses `text` as `self_events`' value.
pub(crate) fn self_events(text: &str) -> Result<SelfEvents, String> {
    match text {
        "drop" => Ok(SelfEvents::Drop),
        "mark" => Ok(SelfEvents::Mark),
        other => Err(format!(
            "`{other}` is not a choice: use \"drop\" or \"mark\""
        )),
    }
}

/// Reads and checks the config file at `file`.
pub(crate) fn load(file: &Path) -> Result<ConfigFile, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|error| ConfigError {
        file: file.to_path_buf(),
        at: None,
        key: None,
        message: format!("cannot read it: {error}"),
    })?;
    let base = std::path::absolute(file)
        .ok()
        .and_then(|file| file.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    parse(&text, file, &base)
}

/// Checks the config `text`, read from `file`, with relative paths taken from `base`.
pub(crate) fn parse(text: &str, file: &Path, base: &Path) -> Result<ConfigFile, ConfigError> {
    let raw: RawFile = toml::from_str(text).map_err(|error| {
        let at = error.span().map(|span| line_and_column(text, span.start));
        let mut message = error.message().trim_end().to_owned();
        // The line itself says which table or key the parser means.
        if let Some(line) = at.and_then(|(line, _)| text.lines().nth(line - 1))
            && !line.trim().is_empty()
        {
            message = format!("{message}, in `{}`", line.trim());
        }
        ConfigError {
            file: file.to_path_buf(),
            at,
            key: None,
            message,
        }
    })?;
    let located = |keys: &[&str], message: String| ConfigError {
        file: file.to_path_buf(),
        at: locate(text, keys).map(|offset| line_and_column(text, offset)),
        key: Some(keys.join(".")),
        message,
    };

    let self_events = raw
        .self_events
        .as_deref()
        .map(self_events)
        .transpose()
        .map_err(|message| located(&["self_events"], message))?;
    let mut io = BTreeMap::new();
    for (name, table) in raw.io {
        if name.is_empty() {
            return Err(located(&["io", ""], "a config needs a name".into()));
        }
        let input = table
            .input
            .map(|spec| spec.builder(base))
            .transpose()
            .map_err(|error| located(&["io", &name, "input", error.key], error.message))?;
        let output = table
            .output
            .map(|spec| spec.writer(base))
            .transpose()
            .map_err(|error| located(&["io", &name, "output", error.key], error.message))?;
        io.insert(name, Io { input, output });
    }
    Ok(ConfigFile { self_events, io })
}

/// The byte offset of the dotted key `keys` in `text`, as far down as it can be found.
fn locate(text: &str, keys: &[&str]) -> Option<usize> {
    let document = toml::de::DeTable::parse(text).ok()?;
    let mut table = document.get_ref();
    let mut found = None;
    for key in keys {
        let (name, value) = table
            .iter()
            .find(|(name, _)| name.get_ref().as_ref() == *key)?;
        found = Some(name.span().start);
        match value.get_ref() {
            toml::de::DeValue::Table(inner) => table = inner,
            _ => break,
        }
    }
    found
}

/// Line and column (from 1) of the byte `offset` in `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |at| at + 1) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        parse(text, Path::new("fsbridge.toml"), Path::new("/"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_good_file_gives_each_config_its_parts() {
        let root = tempfile::tempdir().unwrap();
        let text = format!(
            "self_events = \"mark\"\n[io.logs.input]\npath = \"{}\"\ncontent = \"appended\"\nsettle = \"0\"\n[io.archive.output]\nroot = \"out\"\nfsync = false\n",
            root.path().display()
        );

        let file = parse(&text, Path::new("f.toml"), root.path()).unwrap();

        assert_eq!(file.self_events, Some(SelfEvents::Mark));
        assert!(file.io["logs"].input.is_some() && file.io["logs"].output.is_none());
        let writer = file.io["archive"].output.as_ref().unwrap();
        assert_eq!(writer.root(), root.path().join("out"));
        assert!(!writer.fsync());
    }

    #[test]
    fn attributes_are_reported_only_when_asked_for() {
        let root = tempfile::tempdir().unwrap();
        let text = format!(
            "[io.plain.input]\npath = \"{0}\"\n[io.modes.input]\npath = \"{0}\"\nattributes = true\n",
            root.path().display()
        );

        let file = parse(&text, Path::new("f.toml"), root.path()).unwrap();

        assert!(!file.io["plain"].input.as_ref().unwrap().attributes());
        assert!(file.io["modes"].input.as_ref().unwrap().attributes());
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let message = error("[io.logs.input]\npath = \"/tmp\"\npaht = \"/x\"\n");

        assert!(message.starts_with("fsbridge.toml:3:1:"), "{message}");
        assert!(message.contains("paht"), "{message}");
    }

    #[test]
    fn a_missing_field_is_named() {
        let message = error("[io.logs.input]\nkind = \"dir\"\n");

        assert!(message.starts_with("fsbridge.toml:"), "{message}");
        assert!(message.contains("missing field `path`"), "{message}");
    }

    #[test]
    fn two_configs_with_one_name_are_refused_at_the_second() {
        let message = error(
            "[io.logs.input]\npath = \"/tmp\"\n[io.logs.output]\nroot = \"/tmp\"\n[io.logs.input]\npath = \"/var\"\n",
        );

        assert!(message.starts_with("fsbridge.toml:5:"), "{message}");
        assert!(message.contains("duplicate"), "{message}");
    }

    #[test]
    fn a_bad_value_is_named_by_file_line_and_key() {
        let message = error("\n[io.logs.input]\npath = \"/tmp\"\nsettle = \"soon\"\n");

        assert!(
            message.starts_with("fsbridge.toml:4:1: io.logs.input.settle: "),
            "{message}"
        );
    }

    #[test]
    fn a_bad_glob_and_a_value_of_the_wrong_shape_are_named_in_plain_words() {
        let glob = error("[io.logs.input]\npath = \"/tmp\"\nignore = [\"a[\"]\n");
        let poll = error("[io.logs.input]\npath = \"/tmp\"\npoll = 5\n");

        assert!(
            glob.starts_with("fsbridge.toml:3:1: io.logs.input.ignore: "),
            "{glob}"
        );
        assert!(glob.contains("a["), "{glob}");
        assert!(poll.starts_with("fsbridge.toml:3:"), "{poll}");
        assert!(poll.contains("true, false or an interval"), "{poll}");
        assert!(!poll.contains("Poll"), "{poll}");
    }

    #[test]
    fn a_duration_is_a_string_with_a_unit_or_the_number_zero() {
        let root = tempfile::tempdir().unwrap();
        let text = format!(
            "[io.a.input]\npath = \"{}\"\nsettle = 0\n",
            root.path().display()
        );

        assert!(parse(&text, Path::new("f.toml"), root.path()).is_ok());
        let message = error("[io.a.input]\npath = \"/tmp\"\nsettle = 5\n");
        assert!(message.contains("io.a.input.settle"), "{message}");
        assert!(message.contains("\"5ms\""), "{message}");
        let message = error("[io.a.output]\nroot = \"/tmp\"\nlock_timeout = true\n");
        assert!(message.contains("a duration such as"), "{message}");
    }

    #[test]
    fn a_bad_path_is_named_by_file_line_and_key() {
        let missing = error("[io.a.input]\npath = \"/does/not/exist\"\n");
        let empty = error("[io.a.output]\nroot = \"\"\n");
        let file = tempfile::NamedTempFile::new().unwrap();
        let not_a_dir = error(&format!(
            "[io.a.output]\nroot = \"{}\"\n",
            file.path().display()
        ));

        assert!(
            missing
                .starts_with("fsbridge.toml:2:1: io.a.input.path: /does/not/exist does not exist"),
            "{missing}"
        );
        assert!(
            empty.starts_with("fsbridge.toml:2:1: io.a.output.root: is empty"),
            "{empty}"
        );
        assert!(not_a_dir.contains("is not a directory"), "{not_a_dir}");
    }

    #[test]
    fn the_commented_example_is_a_valid_file() {
        let text = include_str!("../../../examples/fsbridge.toml");

        let file = parse(text, Path::new("fsbridge.toml"), Path::new("/")).unwrap();

        assert_eq!(
            file.io.keys().collect::<Vec<_>>(),
            ["archive", "logs", "notes"]
        );
    }

    #[test]
    fn poll_takes_a_switch_or_an_interval_and_ignore_one_glob_or_several() {
        let root = tempfile::tempdir().unwrap();
        let input = |extra: &str| {
            format!(
                "[io.a.input]\npath = \"{}\"\n{extra}\n",
                root.path().display()
            )
        };

        for extra in [
            "poll = true",
            "poll = false",
            "poll = \"250ms\"",
            "ignore = \"*.gz\"",
            "ignore = [\"*.gz\", \"tmp\"]",
        ] {
            let parsed = parse(&input(extra), Path::new("f.toml"), root.path());
            assert!(parsed.is_ok(), "{extra}: {parsed:?}");
        }
        let message = error(&input("poll = \"0\""));
        assert!(message.contains("io.a.input.poll"), "{message}");
    }

    #[test]
    fn lines_and_columns_count_from_one() {
        assert_eq!(line_and_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_and_column("ab\ncd", 4), (2, 2));
    }
}

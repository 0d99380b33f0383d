//! Why a write command failed: [`WriteError`] and its stable [`WriteErrorKind`].
//!
//! Every error names the path of the command as it was given (or the root, when the root is
//! the problem). The kinds are a closed set that programs can match on; the messages are for
//! people and may change. Mapping an OS error number to a kind happens here, in one place.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::io::Errno;
use serde::Serialize;

/// Why a write command was not applied.
///
/// Each variant carries the path the command named, as given. [`WriteError::kind`] gives the
/// stable kind that appears in the NDJSON result.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The path leads outside the root: `..` above it, an absolute path elsewhere, or a
    /// symbolic link pointing out.
    #[error("{}: {reason}", path.display())]
    Escape {
        /// The path as given.
        path: PathBuf,
        /// How it leads outside.
        reason: String,
    },
    /// The command itself is malformed: bad JSON, an unknown operation, an empty path.
    #[error("{}", Shown { path, reason })]
    Invalid {
        /// The path as given; empty when the command had none.
        path: PathBuf,
        /// What is wrong with the command.
        reason: String,
    },
    /// Something is already where the command wants to put something new.
    #[error("{}: {reason}", path.display())]
    Exists {
        /// The path as given.
        path: PathBuf,
        /// What is in the way.
        reason: &'static str,
    },
    /// The file, a parent directory or the root does not exist.
    #[error("{}: {reason}", path.display())]
    NotFound {
        /// The path as given, or the root.
        path: PathBuf,
        /// What is missing.
        reason: &'static str,
    },
    /// The target is a directory, a fifo, a device or a socket, where a file was expected.
    #[error("{}: {reason}", path.display())]
    NotAFile {
        /// The path as given.
        path: PathBuf,
        /// What the target is instead.
        reason: &'static str,
    },
    /// The command's content (or its line) is larger than the limit.
    #[error("{}", Shown { path, reason })]
    TooLarge {
        /// The path as given; empty when the command had none.
        path: PathBuf,
        /// How large, and the limit.
        reason: String,
    },
    /// The file system is full, or a quota is exhausted.
    #[error("{}: {reason}", path.display())]
    NoSpace {
        /// The path as given.
        path: PathBuf,
        /// Which limit was hit.
        reason: &'static str,
    },
    /// The operating system refused: file mode, directory mode, read-only file system.
    #[error("{}: {reason}", path.display())]
    Permission {
        /// The path as given.
        path: PathBuf,
        /// What refused.
        reason: &'static str,
    },
    /// Another writer held the file's lock for longer than the lock timeout, or the file kept
    /// changing under the writer.
    #[error("{}: {reason}", path.display())]
    Busy {
        /// The path as given.
        path: PathBuf,
        /// What kept the writer waiting.
        reason: String,
    },
    /// The command went to an io config that has no output (no writer root) at the moment.
    #[error("{}", Shown { path, reason })]
    NoOutput {
        /// The path as given.
        path: PathBuf,
        /// Which config, and how to give it an output.
        reason: String,
    },
    /// Any other failure of the operating system.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path as given.
        path: PathBuf,
        /// What the operating system said. It is part of the message, so it is not repeated as
        /// the error's source.
        source: std::io::Error,
    },
}

/// A path and a reason, or only the reason when the path is empty.
struct Shown<'a> {
    path: &'a Path,
    reason: &'a str,
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.as_os_str().is_empty() {
            formatter.write_str(self.reason)
        } else {
            write!(formatter, "{}: {}", self.path.display(), self.reason)
        }
    }
}

/// The stable kind of a [`WriteError`], as it appears in NDJSON results (`snake_case`).
///
/// The set is closed for a given version of fsbridge; a new kind is a breaking change of the
/// wire format and is announced as one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WriteErrorKind {
    /// `escape`: the path leads outside the root.
    Escape,
    /// `invalid`: the command is malformed.
    Invalid,
    /// `exists`: something is in the way.
    Exists,
    /// `not_found`: the file, a parent or the root is missing.
    NotFound,
    /// `not_a_file`: a directory or special file where a file was expected.
    NotAFile,
    /// `too_large`: the content exceeds the limit.
    TooLarge,
    /// `no_space`: the file system is full.
    NoSpace,
    /// `permission`: the operating system refused.
    Permission,
    /// `busy`: the file stayed locked by another writer.
    Busy,
    /// `no_output`: the io config has no output to write to.
    NoOutput,
    /// `io`: any other operating system error.
    Io,
}

impl WriteErrorKind {
    /// The kind's name on the wire, such as `not_found`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Escape => "escape",
            Self::Invalid => "invalid",
            Self::Exists => "exists",
            Self::NotFound => "not_found",
            Self::NotAFile => "not_a_file",
            Self::TooLarge => "too_large",
            Self::NoSpace => "no_space",
            Self::Permission => "permission",
            Self::Busy => "busy",
            Self::NoOutput => "no_output",
            Self::Io => "io",
        }
    }
}

impl fmt::Display for WriteErrorKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl WriteError {
    /// The stable kind of this error.
    pub fn kind(&self) -> WriteErrorKind {
        match self {
            Self::Escape { .. } => WriteErrorKind::Escape,
            Self::Invalid { .. } => WriteErrorKind::Invalid,
            Self::Exists { .. } => WriteErrorKind::Exists,
            Self::NotFound { .. } => WriteErrorKind::NotFound,
            Self::NotAFile { .. } => WriteErrorKind::NotAFile,
            Self::TooLarge { .. } => WriteErrorKind::TooLarge,
            Self::NoSpace { .. } => WriteErrorKind::NoSpace,
            Self::Permission { .. } => WriteErrorKind::Permission,
            Self::Busy { .. } => WriteErrorKind::Busy,
            Self::NoOutput { .. } => WriteErrorKind::NoOutput,
            Self::Io { .. } => WriteErrorKind::Io,
        }
    }

    /// The path the error is about: the command's path as given, or the root.
    pub fn path(&self) -> &Path {
        match self {
            Self::Escape { path, .. }
            | Self::Invalid { path, .. }
            | Self::Exists { path, .. }
            | Self::NotFound { path, .. }
            | Self::NotAFile { path, .. }
            | Self::TooLarge { path, .. }
            | Self::NoSpace { path, .. }
            | Self::Permission { path, .. }
            | Self::Busy { path, .. }
            | Self::NoOutput { path, .. }
            | Self::Io { path, .. } => path,
        }
    }

    pub(crate) fn escape(path: &Path, reason: impl Into<String>) -> Self {
        Self::Escape {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(path: &Path, reason: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    pub(crate) fn too_large(path: &Path, size: u64, limit: u64) -> Self {
        Self::TooLarge {
            path: path.to_path_buf(),
            reason: format!("{size} bytes is more than the limit of {limit} bytes"),
        }
    }

    pub(crate) fn busy_lock(path: &Path, waited: Duration) -> Self {
        Self::Busy {
            path: path.to_path_buf(),
            reason: format!("locked by another writer for longer than {waited:?}"),
        }
    }

    /// Gives an OS error number its meaning for a command on `path`.
    ///
    /// The callers handle the numbers whose meaning depends on the step (`ENOENT` of a parent,
    /// `EEXIST` of a rename); what reaches this function means the same at every step.
    pub(crate) fn from_errno(path: &Path, errno: Errno) -> Self {
        let path = path.to_path_buf();
        match errno {
            // openat2 with RESOLVE_BENEATH answers EXDEV when resolution would leave the root.
            Errno::XDEV => Self::Escape {
                path,
                reason: "a symbolic link or `..` in the path leads outside the root".into(),
            },
            Errno::LOOP => Self::Invalid {
                path,
                reason: "too many levels of symbolic links".into(),
            },
            Errno::NAMETOOLONG => Self::Invalid {
                path,
                reason: "a name in the path is too long".into(),
            },
            Errno::NOENT => Self::NotFound {
                path,
                reason: "it does not exist",
            },
            Errno::EXIST => Self::Exists {
                path,
                reason: "it already exists",
            },
            Errno::NOTDIR => Self::Exists {
                path,
                reason: "a file is in the way of a directory in the path",
            },
            Errno::ISDIR => Self::NotAFile {
                path,
                reason: "it is a directory",
            },
            Errno::NXIO => Self::NotAFile {
                path,
                reason: "it is a special file",
            },
            Errno::NOSPC => Self::NoSpace {
                path,
                reason: "no space left on the file system",
            },
            Errno::DQUOT => Self::NoSpace {
                path,
                reason: "disk quota exceeded",
            },
            Errno::ACCESS | Errno::PERM => Self::Permission {
                path,
                reason: "permission denied",
            },
            Errno::ROFS => Self::Permission {
                path,
                reason: "read-only file system",
            },
            Errno::TXTBSY => Self::Busy {
                path,
                reason: "it is a program being run".into(),
            },
            Errno::AGAIN => Self::Busy {
                path,
                reason: "the directory tree kept changing during resolution".into(),
            },
            Errno::NOSYS => Self::Io {
                path,
                source: std::io::Error::other(
                    "the kernel lacks openat2 (Linux 5.6 or later is needed)",
                ),
            },
            other => Self::Io {
                path,
                source: std::io::Error::from_raw_os_error(other.raw_os_error()),
            },
        }
    }

    /// Like [`WriteError::from_errno`], for errors that come through `std::io`.
    pub(crate) fn from_io(path: &Path, error: &std::io::Error) -> Self {
        match error.raw_os_error() {
            Some(raw) => Self::from_errno(path, Errno::from_raw_os_error(raw)),
            None => Self::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(error.kind(), error.to_string()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_path_in_lowercase() {
        let error = WriteError::from_errno(Path::new("notes/a.txt"), Errno::NOSPC);

        assert_eq!(error.kind(), WriteErrorKind::NoSpace);
        assert_eq!(
            error.to_string(),
            "notes/a.txt: no space left on the file system"
        );
    }

    #[test]
    fn invalid_without_path_is_only_the_reason() {
        let error = WriteError::invalid(Path::new(""), "line 3 is not JSON");

        assert_eq!(error.to_string(), "line 3 is not JSON");
    }

    #[test]
    fn kinds_serialize_in_snake_case() {
        let kinds = [WriteErrorKind::NotAFile, WriteErrorKind::TooLarge];

        let json = serde_json::to_string(&kinds).unwrap();

        assert_eq!(json, r#"["not_a_file","too_large"]"#);
        assert_eq!(WriteErrorKind::NoSpace.as_str(), "no_space");
    }
}

//! Errors of the watching side.

use std::io;
use std::path::PathBuf;

/// Why watching could not start or go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// The target does not exist and its kind was not given, so there is nothing to wait for.
    #[error("cannot watch {}: it does not exist; say whether it is a file or a directory", path.display())]
    UnknownKind {
        /// The target.
        path: PathBuf,
    },
    /// The native backend could not be started or refused a watch.
    #[error("cannot watch {}: {message}", path.as_ref().map_or_else(|| "target".into(), |path| path.display().to_string()))]
    Backend {
        /// The path concerned, when the backend named one.
        path: Option<PathBuf>,
        /// What the backend said.
        message: String,
    },
    /// The kernel's limit on watches or watch instances is reached.
    #[error("cannot watch {}: inotify limit reached (raise fs.inotify.max_user_watches or max_user_instances)", path.display())]
    WatchLimit {
        /// The directory that could not be watched.
        path: PathBuf,
    },
    /// An `--ignore` pattern is not a valid glob.
    #[error("invalid ignore pattern {pattern:?}: {message}")]
    Pattern {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        message: String,
    },
    /// A file system operation on the target failed.
    #[error("cannot watch {}", path.display())]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl WatchError {
    pub(crate) fn backend(path: Option<PathBuf>, error: notify::Error) -> Self {
        match error.kind {
            notify::ErrorKind::MaxFilesWatch => Self::WatchLimit {
                path: path
                    .or_else(|| error.paths.first().cloned())
                    .unwrap_or_default(),
            },
            notify::ErrorKind::Io(source) => Self::Io {
                path: path
                    .or_else(|| error.paths.first().cloned())
                    .unwrap_or_default(),
                source,
            },
            kind => Self::Backend {
                path: path.or_else(|| error.paths.first().cloned()),
                message: match kind {
                    notify::ErrorKind::Generic(message) => message,
                    other => format!("{other:?}").to_lowercase(),
                },
            },
        }
    }
}

//! The typed events a monitor emits.
//!
//! An [`Event`] says what changed in the watched tree, in terms a program can act on: a file
//! created, updated, moved or deleted, a directory created, moved or deleted, the target itself
//! appearing or vanishing. The wire form of these events (NDJSON) lives in [`crate::wire`]; this
//! module holds only the in-memory model.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::origin::Origin;

/// What the watched target is: a directory with a tree below it, or a single file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TargetKind {
    /// A directory: everything below it is watched.
    Dir,
    /// A single file (any entry that is not a directory), watched through its parent directory.
    File,
}

impl TargetKind {
    /// The lowercase name used on the wire: `dir` or `file`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dir => "dir",
            Self::File => "file",
        }
    }
}

/// What kind of non-directory entry a `file_*` event is about.
///
/// Every entry that is not a directory is reported with `file_*` events; this type says which
/// kind it is. Symbolic links are reported as entries of their own and never followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileType {
    /// A regular file.
    Regular,
    /// A symbolic link (the link itself, not what it points to).
    Symlink,
    /// A named pipe.
    Fifo,
    /// A Unix domain socket.
    Socket,
    /// A block or character device.
    Device,
}

impl FileType {
    /// The lowercase name used on the wire (`regular`, `symlink`, `fifo`, `socket`, `device`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Regular => "regular",
            Self::Symlink => "symlink",
            Self::Fifo => "fifo",
            Self::Socket => "socket",
            Self::Device => "device",
        }
    }
}

/// Why a monitor rescanned its whole target instead of trusting the backend's hints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RescanReason {
    /// The kernel's event queue overflowed and events were lost.
    Overflow,
    /// fsbridge's own queue of pending hints reached its bound (the consumer or the reconciler
    /// fell behind); hints were dropped and replaced by this rescan.
    QueueFull,
    /// The backend reported an error that may have lost events.
    BackendError,
}

impl RescanReason {
    /// The lowercase name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Overflow => "overflow",
            Self::QueueFull => "queue_full",
            Self::BackendError => "backend_error",
        }
    }
}

/// Which part of a file an event's content holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContentMode {
    /// The whole file.
    Full,
    /// Only the bytes added since the last event for the file (`tail -F`).
    Appended,
}

impl ContentMode {
    /// The lowercase name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Appended => "appended",
        }
    }
}

/// How content is carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// UTF-8 text; bytes that are not UTF-8 are an error on the event, never replaced.
    Text,
    /// Any bytes (base64 on the wire).
    Binary,
}

impl Encoding {
    /// The name used on the wire: `text` or `base64`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Binary => "base64",
        }
    }
}

/// Why appended content starts again at the beginning of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reset {
    /// The file became shorter (`copytruncate`, `> file`).
    Truncated,
    /// Another file took its name (rotation by rename, an atomic save).
    Replaced,
}

impl Reset {
    /// The lowercase name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::Replaced => "replaced",
        }
    }
}

/// Where a creation or a deletion came from, when the backend knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cause {
    /// The entry was renamed into the tree from outside it.
    MovedIn,
    /// The entry was renamed out of the tree.
    MovedOut,
    /// The entry is still there, but an edit of a `.gitignore` now leaves it out of the tree
    /// (only with `.gitignore` files honoured).
    Ignored,
}

impl Cause {
    /// The name used on the wire: `moved_in`, `moved_out` or `ignored`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MovedIn => "moved_in",
            Self::MovedOut => "moved_out",
            Self::Ignored => "ignored",
        }
    }
}

/// An entry's permission bits and owner, as `lstat` reports them.
///
/// Carried by update events when the monitor reports attributes (see
/// `MonitorBuilder::with_attributes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Attributes {
    /// The permission bits, including set-user-ID, set-group-ID and sticky (`st_mode & 0o7777`),
    /// without the file type: `0o644` for `rw-r--r--`.
    pub mode: u32,
    /// The owner's user ID.
    pub uid: u32,
    /// The owner's group ID.
    pub gid: u32,
}

/// What an update changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UpdateKind {
    /// The content, modification time or type, or the file was replaced by another one. Its
    /// permission bits and owner may have changed too.
    Content,
    /// Only the permission bits or the owner (reported only when the monitor was asked to).
    Attributes,
}

impl UpdateKind {
    /// The lowercase name used on the wire: `content` or `attributes`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Content => "content",
            Self::Attributes => "attributes",
        }
    }
}

/// Content carried by a file event, when the monitor was asked for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Content {
    /// Which part of the file this is.
    pub mode: ContentMode,
    /// How it is carried.
    pub encoding: Encoding,
    /// The byte offset in the file where `data` starts.
    pub offset: u64,
    /// The bytes, or why they could not be given (not UTF-8 with [`Encoding::Text`], or the
    /// file could not be read).
    pub data: Result<Vec<u8>, String>,
    /// Whether `data` stops short of the event's size because of the content limit.
    pub cut: bool,
    /// Why appended content starts again at offset 0, if it does.
    pub reset: Option<Reset>,
}

/// What happened, with the details that depend on the kind of change.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// Watching is in place. Emitted once, first, whether or not the target exists yet.
    Ready {
        /// The kind of target being watched.
        kind: TargetKind,
        /// Whether the target existed when watching began.
        present: bool,
        /// The size in bytes, for a file target that is present.
        size: Option<u64>,
    },
    /// The target came into existence (after `ready` said it was absent, or after it vanished).
    /// For a directory target, created events for what it already holds follow.
    TargetAppeared {
        /// The kind of the target.
        kind: TargetKind,
        /// The size in bytes, for a file target.
        size: Option<u64>,
    },
    /// The target was deleted, moved away or replaced by the other kind. For a directory target,
    /// the deletions of everything it held come first.
    TargetVanished {
        /// The kind of the target.
        kind: TargetKind,
    },
    /// A non-directory entry appeared.
    FileCreated {
        /// Its size in bytes.
        size: u64,
        /// What kind of entry it is.
        file_type: FileType,
    },
    /// A file's content or modification time changed, or it was replaced by another file (an
    /// editor's atomic save, `cp` over it, a rename onto it); or, when the monitor reports
    /// attributes, only its permission bits or owner changed.
    FileUpdated {
        /// Its size in bytes.
        size: u64,
        /// What kind of entry it is now.
        file_type: FileType,
        /// What changed: [`UpdateKind::Attributes`] only for a change of nothing but the
        /// permission bits or the owner.
        change: UpdateKind,
        /// The permission bits and owner after the change, when the monitor reports attributes
        /// (on every update then, so that a change riding along with new content is not lost);
        /// `None` otherwise.
        attributes: Option<Attributes>,
    },
    /// A non-directory entry was renamed within the tree.
    FileMoved {
        /// Where it was.
        from: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// What kind of entry it is.
        file_type: FileType,
    },
    /// A non-directory entry disappeared.
    FileDeleted,
    /// A directory appeared. Created events for its contents follow it.
    DirCreated,
    /// A directory's permission bits or owner changed. Only when the monitor reports attributes:
    /// nothing else about a directory is an update (changes of its contents are their own
    /// events).
    DirUpdated {
        /// The permission bits and owner after the change.
        attributes: Attributes,
    },
    /// A directory was renamed within the tree; its contents moved with it.
    DirMoved {
        /// Where it was.
        from: PathBuf,
    },
    /// A directory disappeared. Deletions of its contents come before it.
    DirDeleted,
    /// Hints were lost (see the reason), so the whole target is being compared with the index
    /// again: the events that this comparison finds follow this one.
    Rescanned {
        /// Why the rescan happened.
        reason: RescanReason,
    },
    /// A backend event passed through unreconciled (raw mode only).
    Raw {
        /// The backend's name for the event, such as `create.file` or `modify.name.both`.
        kind: String,
        /// The paths the backend named, in its order.
        paths: Vec<PathBuf>,
    },
}

/// One thing that happened to the watched tree.
///
/// `path` is always absolute. For a move it is the new location; the old one is in the kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The absolute path the event is about.
    pub path: PathBuf,
    /// When fsbridge observed the change (not when the kernel saw it).
    pub time: SystemTime,
    /// The file's content, for `file_created`, `file_updated` and the `target_appeared` of a file
    /// target (and its `ready`, with whole content), when the monitor was asked for it (see
    /// `MonitorBuilder::with_content`).
    pub content: Option<Content>,
    /// For a creation or deletion that was really a rename across the tree's boundary: which
    /// way. Only the native backend knows; polling never says.
    pub cause: Option<Cause>,
    /// [`Origin::SelfWrite`] for a change made by fsbridge's own writer, when the monitor
    /// marks such changes instead of dropping them (see `MonitorBuilder::with_self_writes`).
    pub origin: Option<Origin>,
}

impl Event {
    /// An event stamped with the current time.
    pub fn now(kind: EventKind, path: impl Into<PathBuf>) -> Self {
        Self {
            kind,
            path: path.into(),
            time: SystemTime::now(),
            content: None,
            cause: None,
            origin: None,
        }
    }

    /// The event's name on the wire, such as `file_created`.
    pub fn name(&self) -> &'static str {
        match &self.kind {
            EventKind::Ready { .. } => "ready",
            EventKind::TargetAppeared { .. } => "target_appeared",
            EventKind::TargetVanished { .. } => "target_vanished",
            EventKind::FileCreated { .. } => "file_created",
            EventKind::FileUpdated { .. } => "file_updated",
            EventKind::FileMoved { .. } => "file_moved",
            EventKind::FileDeleted => "file_deleted",
            EventKind::DirCreated => "dir_created",
            EventKind::DirUpdated { .. } => "dir_updated",
            EventKind::DirMoved { .. } => "dir_moved",
            EventKind::DirDeleted => "dir_deleted",
            EventKind::Rescanned { .. } => "rescanned",
            EventKind::Raw { .. } => "raw",
        }
    }

    /// The absolute path the event is about.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

//! Recognising fsbridge's own writes in what it watches, so that a program that writes into a
//! tree it also watches does not feed on its own output.
//!
//! A [`Writer`](crate::Writer) given a [`SelfWrites`] records the state each command left on
//! disk: the file's identity (device, inode, birth time) and, once the write is over, its size
//! and modification time. A monitor given the same record compares what its reconciler found
//! with it: an entry in exactly the state the writer left was changed by the writer.
//!
//! The rules, per event:
//!
//! - a file created or updated is the writer's while a command is writing it, or when its size
//!   and modification time are still those the command left (a later append by someone else
//!   changes both);
//! - a directory created is the writer's when the writer created it;
//! - a deletion is the writer's when the writer deleted that very file, or when it was one of
//!   the writer's temporary files (renamed over a file, or left by a failed command);
//! - a move is the writer's when it moved one of its temporary files into place.
//!
//! Identity includes the birth time where the file system keeps one, so an inode number reused
//! by another program's file is not mistaken for the writer's.
//!
//! LIMITATION: while a command is writing a file, another program's change to that same file
//! in the same moment is taken for the writer's too; a change after the command ended is not.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use crate::index::{Entry, FileId};

/// How many written files are remembered; the oldest are forgotten first.
const REMEMBERED: usize = 16_384;

/// What fsbridge does with the events its own writes cause.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SelfEvents {
    /// They are not reported (the default).
    #[default]
    Drop,
    /// They are reported with [`Origin::SelfWrite`] (`"origin":"self"`).
    Mark,
}

impl SelfEvents {
    /// The option's name: `drop` or `mark`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Drop => "drop",
            Self::Mark => "mark",
        }
    }
}

/// Who made a change, when fsbridge knows it was itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A [`Writer`](crate::Writer) sharing the monitor's [`SelfWrites`] made it.
    SelfWrite,
}

impl Origin {
    /// The name used on the wire: `self`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SelfWrite => "self",
        }
    }
}

/// The state a writer's command left a file or directory in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Left {
    /// A command is writing it now.
    Writing,
    /// A command finished writing it: this size and modification time.
    Written {
        size: u64,
        mtime_sec: i64,
        mtime_nsec: u32,
    },
    /// A command created this directory.
    Made,
    /// A command deleted it.
    Deleted,
}

/// The record of what fsbridge's writers did, shared by writers and monitors.
///
/// Cheap to clone: clones share one record. Memory is bounded: the oldest of more than 16,384
/// recorded files are forgotten.
#[derive(Clone, Default)]
pub struct SelfWrites {
    inner: Arc<Mutex<Record>>,
}

#[derive(Default)]
struct Record {
    left: HashMap<(u64, u64), (u64, Left)>,
    order: VecDeque<(u64, u64)>,
}

impl fmt::Debug for SelfWrites {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let files = self.lock().left.len();
        formatter
            .debug_struct("SelfWrites")
            .field("files", &files)
            .finish()
    }
}

impl SelfWrites {
    /// An empty record.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Record> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, id: FileId, left: Left) {
        let key = (id.dev, id.ino);
        let mut record = self.lock();
        if record.left.insert(key, (id.birth, left)).is_none() {
            record.order.push_back(key);
            if record.order.len() > REMEMBERED
                && let Some(oldest) = record.order.pop_front()
            {
                record.left.remove(&oldest);
            }
        }
    }

    fn get(&self, id: FileId) -> Option<Left> {
        let record = self.lock();
        let &(birth, left) = record.left.get(&(id.dev, id.ino))?;
        // A birth time on both sides that differs: another file with a reused inode number.
        (birth == 0 || id.birth == 0 || birth == id.birth).then_some(left)
    }

    /// A command starts writing the file `entry` describes.
    pub(crate) fn writing(&self, entry: &Entry) {
        self.set(entry.id, Left::Writing);
    }

    /// A command finished writing: the file is now as `entry` describes.
    pub(crate) fn written(&self, entry: &Entry) {
        self.set(
            entry.id,
            Left::Written {
                size: entry.size,
                mtime_sec: entry.mtime_sec,
                mtime_nsec: entry.mtime_nsec,
            },
        );
    }

    /// A command created the directory `entry` describes.
    pub(crate) fn made(&self, entry: &Entry) {
        self.set(entry.id, Left::Made);
    }

    /// A command is deleting the file `entry` describes.
    pub(crate) fn deleted(&self, entry: &Entry) {
        self.set(entry.id, Left::Deleted);
    }

    /// Whether a file created or updated into the state `entry` is the writer's doing.
    pub(crate) fn wrote(&self, entry: &Entry) -> bool {
        match self.get(entry.id) {
            Some(Left::Writing) => true,
            Some(Left::Written {
                size,
                mtime_sec,
                mtime_nsec,
            }) => {
                size == entry.size && mtime_sec == entry.mtime_sec && mtime_nsec == entry.mtime_nsec
            }
            Some(Left::Made | Left::Deleted) | None => false,
        }
    }

    /// Whether a command is writing `entry` right now: the only time the writer changes a
    /// file's attributes (a temporary file takes those of the file it replaces).
    pub(crate) fn is_writing(&self, entry: &Entry) -> bool {
        self.get(entry.id) == Some(Left::Writing)
    }

    /// Whether the directory `entry` was created by the writer.
    pub(crate) fn made_dir(&self, entry: &Entry) -> bool {
        self.get(entry.id) == Some(Left::Made)
    }

    /// Whether the deletion of `entry` (named `name`) is the writer's doing.
    pub(crate) fn removed(&self, entry: &Entry, temporary: bool) -> bool {
        match self.get(entry.id) {
            Some(Left::Deleted) => true,
            Some(Left::Writing | Left::Written { .. }) => temporary,
            Some(Left::Made) | None => false,
        }
    }

    /// Whether moving `entry` away from a name (temporary or not) is the writer's doing.
    pub(crate) fn moved(&self, entry: &Entry, from_temporary: bool) -> bool {
        from_temporary
            && matches!(
                self.get(entry.id),
                Some(Left::Writing | Left::Written { .. })
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Kind;

    fn entry(ino: u64, birth: u64, size: u64, mtime_sec: i64) -> Entry {
        Entry {
            kind: Kind::File(crate::event::FileType::Regular),
            id: FileId { dev: 1, ino, birth },
            size,
            mtime_sec,
            mtime_nsec: 0,
            links: 1,
            attributes: None,
        }
    }

    #[test]
    fn a_file_is_ours_only_in_the_state_we_left_it() {
        let record = SelfWrites::new();
        let written = entry(7, 100, 10, 5);

        record.writing(&written);
        assert!(record.wrote(&entry(7, 100, 3, 4)), "while writing");
        record.written(&written);

        assert!(record.wrote(&written));
        assert!(!record.wrote(&entry(7, 100, 12, 6)), "appended to later");
        assert!(!record.wrote(&entry(8, 100, 10, 5)), "another inode");
        assert!(
            !record.wrote(&entry(7, 200, 10, 5)),
            "a reused inode number"
        );
    }

    #[test]
    fn deletions_are_ours_when_we_deleted_or_they_were_temporary() {
        let record = SelfWrites::new();
        let kept = entry(1, 0, 1, 1);
        let gone = entry(2, 0, 1, 1);
        record.written(&kept);
        record.deleted(&gone);

        assert!(record.removed(&gone, false));
        assert!(record.removed(&kept, true));
        assert!(!record.removed(&kept, false), "someone deleted our file");
        assert!(!record.removed(&entry(3, 0, 1, 1), true));
    }

    #[test]
    fn the_record_is_bounded() {
        let record = SelfWrites::new();
        for ino in 0..(REMEMBERED as u64 + 10) {
            record.writing(&entry(ino, 0, 0, 0));
        }

        assert_eq!(record.lock().left.len(), REMEMBERED);
        assert!(!record.wrote(&entry(0, 0, 0, 0)), "the oldest is forgotten");
        assert!(record.wrote(&entry(REMEMBERED as u64 + 9, 0, 0, 0)));
    }
}

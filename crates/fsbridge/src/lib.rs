//! fsbridge: a file or directory watched as a faithful log of typed events.
//!
//! Native notification APIs are hints, not truth: they cannot watch a path that does not exist
//! yet, go silent when a watched directory is recreated, miss files created in a brand-new
//! directory, say nothing of what a deleted directory held, and split renames into unrelated
//! halves. fsbridge treats their events as hints only. After each short settle window it looks at
//! the hinted paths on disk, compares them with an index of the tree, and emits the net changes:
//! a [`Monitor`] is a [`futures::Stream`] of [`Event`]s such that applying them in order to the
//! tree as it was when watching began gives the tree as it is on disk.
//!
//! # Example
//!
//! ```
//! use futures::StreamExt;
//! use fsbridge::{EventKind, Monitor};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let mut monitor = Monitor::dir(dir.path())?;
//!
//! let ready = monitor.next().await.expect("a ready event")?;
//! assert!(matches!(ready.kind, EventKind::Ready { present: true, .. }));
//!
//! std::fs::write(dir.path().join("hello.txt"), "hi")?;
//! let created = monitor.next().await.expect("an event")?;
//! assert_eq!(created.name(), "file_created");
//! assert_eq!(created.path(), dir.path().join("hello.txt"));
//! # Ok(())
//! # }
//! ```
//!
//! # What a monitor reports
//!
//! - Every event carries an absolute path and a time; file events carry the size.
//! - A directory that appears is walked, so its contents are reported (parents first), also
//!   when files were created in it before any watch could be placed.
//! - A directory that vanishes is reported with the deletion of everything it held, children
//!   first.
//! - A rename within the tree is one move, paired by device and inode. An entry renamed onto an
//!   existing file (an editor's atomic save, `mv` over a file) is a `file_updated` of the
//!   destination, plus a `file_deleted` of the source if the source had been reported before.
//! - The target may not exist yet, may vanish and come back, may be replaced by the other kind:
//!   see [`EventKind::TargetAppeared`] and [`EventKind::TargetVanished`].
//! - A change of only permission bits or owner is no event, unless asked for with
//!   [`MonitorBuilder::with_attributes`]: then it is a `file_updated` or a `dir_updated` that
//!   says so and carries the new mode and owner.
//!
//! The NDJSON form of events is specified in [`wire`].
//!
//! # Writing, and both at once
//!
//! A [`Writer`] applies typed write commands strictly inside one root directory. An
//! [`IoConfig`] holds one optional input and one optional output, both replaceable while it
//! runs, behind one event stream ([`IoEvents`]); changes made by its own writer are recognised
//! ([`SelfWrites`]) and left out or marked, so a program writing into a tree it watches does not
//! hear itself.
//!
//! # Known limitations
//!
//! - Linux only: the native backend is inotify (through the `inotify` crate; `notify` serves raw
//!   mode), and the writer needs `openat2`.
//! - Symbolic links inside the tree are reported as entries and never followed. A target that is
//!   itself a symbolic link is watched as a file (the link), not as what it points to.
//! - `..` in the target path is resolved lexically, before any symbolic link.
//! - Raw mode ([`MonitorBuilder::with_raw`]) watches the target as it is at start and follows no
//!   life cycle.
//! - The [`Writer`] needs Linux 5.6 or later (openat2); it refuses absolute symbolic links even
//!   when they point inside the root, replaces a file by rename (so hard links to it keep the old
//!   content), and remembers applied ids in memory only, not across restarts.
//! - A file system mounted on a directory inside the tree after watching began is not watched
//!   (inotify does not cross mount points); the mount itself is not an event.
//! - An append is written in place: a writer killed in the middle of a large append leaves the
//!   part written so far (creations and overwrites are atomic).
//! - Directories that cannot be watched natively (the kernel's watch limit, permissions) are
//!   polled every second after a warning, so their changes arrive up to a second late.
//! - Own writes are recognised by the state a command left (identity, size, modification time):
//!   while a command is writing a file, another program's change to that file in the same
//!   moment is taken for the writer's too. Events are net changes over the settle window: a file
//!   the writer creates and another program deletes within one window is no event at all.
//! - With `.gitignore` files honoured, only the `.gitignore` files inside the tree count; git's
//!   other exclude files do not.
//! - After lost hints (a kernel queue overflow) the whole tree is rescanned: nothing is lost, but
//!   a directory deleted and recreated within the lost window with the same inode number is
//!   reported as changed contents, not as a deletion and a creation.
//! - [`MonitorBuilder::with_attributes`] compares permission bits and owner only: extended
//!   attributes, ACLs or the access time alone are no event (a new modification time is an
//!   update either way). Creations and moves carry no attributes, so a consumer learns an entry's
//!   mode and owner from its first update.
//! - `moved_in`/`moved_out` reasons come from the kernel's rename events: an entry renamed inside
//!   the tree and then out of it (or in, then renamed inside) within one settle window is a plain
//!   deletion (creation), and a rename onto an ignored name is reported as the entry moving out.
//! - The writer's root is pinned to where it led when first opened: a deploy-style root link
//!   switched on purpose needs the output set again.

#![warn(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::dbg_macro
)]

mod backend;
mod content;
mod error;
mod event;
mod filter;
mod index;
mod io;
mod lifecycle;
mod monitor;
mod origin;
mod reconcile;
mod scan;
pub mod wire;
mod writer;

pub use content::DEFAULT_MAX_CONTENT;
pub use error::WatchError;
pub use event::{
    Attributes, Cause, Content, ContentMode, Encoding, Event, EventKind, FileType, RescanReason,
    Reset, TargetKind, UpdateKind,
};
pub use io::{IoConfig, IoEvents};
pub use monitor::{DEFAULT_POLL_INTERVAL, DEFAULT_SETTLE, Monitor, MonitorBuilder};
pub use origin::{Origin, SelfEvents, SelfWrites};
pub use writer::{
    DEFAULT_LOCK_TIMEOUT, DEFAULT_MAX_BYTES, WriteCommand, WriteError, WriteErrorKind, WriteOp,
    WriteOutcome, Writer, Written,
};

/// The README's Rust examples, compiled as doc tests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeExamples;

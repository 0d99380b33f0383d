//! The target's life cycle: absent, present, vanished, back again.
//!
//! One [`Lifecycle`] runs on its own thread per monitor. It owns the index and the backend's
//! watches, takes batches of hints, and decides what they mean for the target as a whole before
//! handing the paths below the target to the reconciler:
//!
//! - *absent*: only the nearest existing ancestor of the target is watched, for the next path
//!   component to appear;
//! - *present*: the target is indexed; a directory target and every directory below it are
//!   watched, and so is the target's parent, so that its replacement is noticed; a file target is
//!   watched through its parent only;
//! - the target deleted, moved away or replaced by the other kind: the deletions of its contents,
//!   then `target_vanished`, and back to *absent*.
//!
//! Every event leaves this module in the order the index changed, which is what makes the stream
//! replayable.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::backend::{Batch, Hints, Native, Touch};
use crate::content::{self, ContentOptions};
use crate::event::{Cause, Event, EventKind, FileType, TargetKind};
use crate::filter::Ignore;
use crate::index::{Entry, FileId, Index, Kind};
use crate::monitor::Chunk;
use crate::reconcile::{self, Change};
use crate::scan::{self, WatchSet};

/// How often directories that cannot be watched natively are polled.
const FALLBACK_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How the life cycle learns about changes.
pub(crate) enum Source {
    Native(Box<Native>),
    Poll(Duration),
}

impl WatchSet for Source {
    fn watch_dir(&mut self, abs: &Path, id: FileId) {
        if let Self::Native(native) = self {
            native.watch_dir(abs, id);
        }
    }

    fn watch_file(&mut self, abs: &Path, id: FileId) {
        if let Self::Native(native) = self {
            native.watch_file(abs, id);
        }
    }

    fn unwatch(&mut self, abs: &Path) {
        if let Self::Native(native) = self {
            native.unwatch(abs);
        }
    }
}

/// The backend's watches seen through the ignore patterns: what the reconciler's walks use.
struct Watching<'a> {
    source: &'a mut Source,
    ignore: Option<&'a Ignore>,
}

impl WatchSet for Watching<'_> {
    fn watch_dir(&mut self, abs: &Path, id: FileId) {
        self.source.watch_dir(abs, id);
    }

    fn watch_file(&mut self, abs: &Path, id: FileId) {
        self.source.watch_file(abs, id);
    }

    fn unwatch(&mut self, abs: &Path) {
        self.source.unwatch(abs);
    }

    fn ignores(&self, rel: &[u8]) -> bool {
        self.ignore.is_some_and(|ignore| ignore.ignores(rel))
    }
}

/// The event sender hung up: the stream was dropped.
pub(crate) struct Closed;

/// The state machine of one monitor and everything it owns.
pub(crate) struct Lifecycle {
    target: PathBuf,
    kind: TargetKind,
    index: Index,
    source: Source,
    hints: Arc<Hints>,
    /// The directory watched for the target's own appearance and replacement.
    chain: Vec<(PathBuf, FileId)>,
    /// When the whole tree was last compared.
    last_full: Instant,
    /// Whether the warning that the target is of the other kind was given for this state.
    wrong_kind_reported: bool,
    events: Outbox,
    /// What content file events carry; `None` for none.
    content: Option<ContentOptions>,
    /// What is left out of the tree.
    ignore: Option<Ignore>,
    /// This batch's paths renamed into and out of watched directories (relative).
    moved_in: HashSet<Vec<u8>>,
    moved_out: HashSet<Vec<u8>>,
    /// The last bytes of each file's latest content, to notice rewrites (content only).
    tails: RefCell<HashMap<Vec<u8>, Vec<u8>>>,
}

/// How many events travel to the stream together: one wake-up of the consumer for many events
/// in a burst.
const CHUNK: usize = 256;

/// Events on their way to the stream, sent in chunks.
struct Outbox {
    sender: mpsc::Sender<Chunk>,
    chunk: RefCell<Chunk>,
}

impl Outbox {
    fn push(&self, event: Event) -> Result<(), Closed> {
        let full = {
            let mut chunk = self.chunk.borrow_mut();
            chunk.push(Ok(event));
            chunk.len() >= CHUNK
        };
        if full { self.flush() } else { Ok(()) }
    }

    /// Sends what is waiting; waits while the stream's buffer is full.
    fn flush(&self) -> Result<(), Closed> {
        let chunk = {
            let mut chunk = self.chunk.borrow_mut();
            if chunk.is_empty() {
                return Ok(());
            }
            // At its full size at once: growing it copied each chunk of a burst 6 times.
            std::mem::replace(&mut *chunk, Vec::with_capacity(CHUNK))
        };
        self.sender.blocking_send(chunk).map_err(|_| Closed)
    }
}

impl Lifecycle {
    pub(crate) fn new(
        target: PathBuf,
        kind: TargetKind,
        source: Source,
        hints: Arc<Hints>,
        events: mpsc::Sender<Chunk>,
        content: Option<ContentOptions>,
    ) -> Self {
        Self {
            target,
            kind,
            index: Index::default(),
            source,
            hints,
            chain: Vec::new(),
            last_full: Instant::now(),
            wrong_kind_reported: false,
            events: Outbox {
                sender: events,
                chunk: RefCell::new(Vec::new()),
            },
            content,
            ignore: None,
            tails: RefCell::default(),
            moved_in: HashSet::new(),
            moved_out: HashSet::new(),
        }
    }

    /// Leaves what `ignore` matches out of the tree.
    pub(crate) fn with_ignore(mut self, ignore: Option<Ignore>) -> Self {
        self.ignore = ignore;
        self
    }

    /// Watches until the stream is dropped or the monitor closed.
    pub(crate) fn run(mut self, initial: bool) {
        if self
            .start(initial)
            .and_then(|()| self.events.flush())
            .is_err()
        {
            return;
        }
        while let Some(batch) = self.hints.next_batch(self.poll_interval()) {
            if self
                .handle(batch)
                .and_then(|()| self.events.flush())
                .is_err()
            {
                return;
            }
        }
    }

    /// How often the whole tree is compared: always with the polling backend; with the native
    /// one, only while some directories could not be watched or read.
    fn poll_interval(&self) -> Option<Duration> {
        match &self.source {
            Source::Poll(interval) => Some(*interval),
            Source::Native(native) if native.has_unwatched() || self.index.has_unreadable() => {
                Some(FALLBACK_POLL_INTERVAL)
            }
            Source::Native(_) => None,
        }
    }

    /// Puts the watches in place, indexes what is there, says `ready`.
    fn start(&mut self, initial: bool) -> Result<(), Closed> {
        let present = if let Some(entry) = self.observe_target() {
            self.index.insert(b"", entry);
            if self.kind == TargetKind::File {
                self.source.watch_file(&self.target, entry.id);
            }
            self.index_contents(entry);
            true
        } else {
            false
        };
        self.watch_chain();
        tracing::info!(target = %self.target.display(), kind = self.kind.as_str(), present, entries = self.index.len(), "watching");
        // A file target's `ready` carries its size: with it, a consumer knows the whole target,
        // which `--initial` promises.
        let size = match self.kind {
            TargetKind::File => self.index.get(b"").map(|entry| entry.size),
            TargetKind::Dir => None,
        };
        self.send(Event::now(
            EventKind::Ready {
                kind: self.kind,
                present,
                size,
            },
            &self.target,
        ))?;

        if initial && present {
            self.emit_contents()?;
        }
        Ok(())
    }

    /// Indexes everything below a directory target that was not indexed before, without events:
    /// the fast path of a start or an appearance (no comparison, no pairing).
    fn index_contents(&mut self, root: Entry) {
        if self.kind != TargetKind::Dir {
            return;
        }
        let index = &mut self.index;
        let unreadable = scan::walk_with(
            &self.target,
            b"",
            root,
            &mut Watching {
                source: &mut self.source,
                ignore: self.ignore.as_ref(),
            },
            |path, entry| {
                index.insert_owned(path, entry);
            },
        );
        self.index.set_unreadable(b"", unreadable);
    }

    /// Reports everything below the target as created, parents first.
    fn emit_contents(&self) -> Result<(), Closed> {
        for (path, entry) in self.index.below(b"") {
            self.emit(Change::Created {
                path: path.to_vec(),
                entry: *entry,
            })?;
        }
        Ok(())
    }

    fn handle(&mut self, batch: Batch) -> Result<(), Closed> {
        // The watches of directories deleted or renamed away go (a renamed one would report old
        // paths). After lost hints no watch can be trusted (a lost deletion hides a directory
        // recreated with the same inode number): the rescan's walk places every watch again, and
        // those no directory holds any more are pruned at the end.
        if let Source::Native(native) = &mut self.source {
            if batch.rescan.is_some() {
                native.forget_all();
                self.chain.clear();
            }
            for path in &batch.removed {
                native.forget(path);
            }
        }
        self.chain
            .retain(|(dir, _)| !batch.removed.iter().any(|path| dir.starts_with(path)));
        // Anything happening to an ancestor may change what the target's path leads to.
        let ancestor_touched = batch.rescan.is_some()
            || batch
                .paths
                .iter()
                .chain(&batch.removed)
                .any(|path| self.is_strict_ancestor(path));
        let removed: HashSet<Vec<u8>> = self
            .relative(batch.removed.iter().cloned())
            .into_iter()
            .collect();
        // The target or an ancestor left its path: whatever is there now came after, even if it
        // is the same directory moved back.
        let target_removed = batch
            .removed
            .iter()
            .any(|path| self.target.starts_with(path));
        self.moved_in = self
            .relative(batch.moved_in.iter().cloned())
            .into_iter()
            .collect();
        self.moved_out = self
            .relative(batch.moved_out.iter().cloned())
            .into_iter()
            .collect();
        // Said first, so that a consumer knows the events that follow come from a rescan.
        if let Some(reason) = batch.rescan {
            tracing::debug!(reason = reason.as_str(), "rescanning after lost hints");
            self.send(Event::now(EventKind::Rescanned { reason }, &self.target))?;
        }
        let now = self.observe_target();
        let before = self.index.get(b"").copied();
        // Hints from watched directories must not starve the polling of the others.
        let poll_due = self
            .poll_interval()
            .is_some_and(|interval| self.last_full.elapsed() >= interval);
        let full = batch.rescan.is_some() || batch.poll || poll_due;
        if full {
            self.last_full = Instant::now();
        }

        match (before, now) {
            (None, None) => self.watch_chain(),
            (None, Some(now)) => self.appear(now)?,
            (Some(_), None) => self.vanish()?,
            (Some(before), Some(now)) => match self.kind {
                TargetKind::Dir if before.id != now.id || target_removed => {
                    self.vanish()?;
                    self.appear(now)?;
                }
                TargetKind::Dir => {
                    let touched = self.relative(batch.paths);
                    for change in self.reconcile_below(touched, &removed, full) {
                        self.emit(change)?;
                    }
                }
                TargetKind::File => {
                    // The file itself is watched: a name it gains later outside its directory
                    // tells its directory nothing.
                    self.source.watch_file(&self.target, now.id);
                    if before.id != now.id || before.content_differs(&now) {
                        self.index.insert(b"", now);
                        self.emit(Change::Updated {
                            path: Vec::new(),
                            entry: now,
                            previous: before,
                        })?;
                    }
                }
            },
        }

        // A poll while some watches could not be placed tries the ancestors' again too.
        if full
            && let Source::Native(native) = &self.source
            && native.has_unwatched()
        {
            self.chain.clear();
        }
        if ancestor_touched || self.chain.is_empty() {
            self.watch_chain();
        }
        if batch.rescan.is_some()
            && let Source::Native(native) = &mut self.source
        {
            native.prune();
        }
        Ok(())
    }

    /// The target as it is now, if it is there as the declared kind.
    fn observe_target(&mut self) -> Option<Entry> {
        match scan::lstat(&self.target) {
            Ok(Some(entry)) if entry.kind.is_dir() == (self.kind == TargetKind::Dir) => {
                self.wrong_kind_reported = false;
                Some(entry)
            }
            Ok(Some(_)) => {
                // Waiting for the declared kind is right (the target may be replaced back), but
                // a user who mistook the kind should hear of it.
                if !self.wrong_kind_reported {
                    self.wrong_kind_reported = true;
                    let (is, wanted) = match self.kind {
                        TargetKind::Dir => ("a file", "a directory"),
                        TargetKind::File => ("a directory", "a file"),
                    };
                    tracing::warn!(path = %self.target.display(), "the target is {is}; waiting for {wanted} there");
                }
                None
            }
            Ok(None) => {
                self.wrong_kind_reported = false;
                None
            }
            Err(error) => {
                tracing::warn!(path = %self.target.display(), %error, "cannot stat target, taking it as absent");
                None
            }
        }
    }

    fn appear(&mut self, entry: Entry) -> Result<(), Closed> {
        self.index.insert(b"", entry);
        if self.kind == TargetKind::File {
            self.source.watch_file(&self.target, entry.id);
        }
        self.watch_chain();
        let size = (self.kind == TargetKind::File).then_some(entry.size);
        let mut appeared = Event::now(
            EventKind::TargetAppeared {
                kind: self.kind,
                size,
            },
            &self.target,
        );
        if let Some(options) = self.content
            && entry.kind == Kind::File(FileType::Regular)
        {
            let (content, tail) = content::read(options, &self.target, &entry, None, None);
            appeared.content = Some(content);
            self.tails.borrow_mut().insert(Vec::new(), tail);
        }
        self.send(appeared)?;
        self.index_contents(entry);
        self.emit_contents()
    }

    fn vanish(&mut self) -> Result<(), Closed> {
        let contents: Vec<(Vec<u8>, Entry)> = self
            .index
            .below(b"")
            .rev()
            .map(|(path, entry)| (path.to_vec(), *entry))
            .collect();
        for (path, entry) in contents {
            self.index.remove(&path);
            if entry.kind.is_dir() || entry.links > 1 {
                self.source.unwatch(&scan::absolute(&self.target, &path));
            }
            self.emit(Change::Deleted { path, entry })?;
        }
        self.index.clear();
        self.source.unwatch(&self.target);
        self.send(Event::now(
            EventKind::TargetVanished { kind: self.kind },
            &self.target,
        ))?;
        self.watch_chain();
        Ok(())
    }

    /// Watches every existing ancestor of the target: a rename, deletion or symbolic link
    /// change anywhere above it changes what its path leads to. While the target is absent, the
    /// nearest existing ancestor also says when the next component appears.
    fn watch_chain(&mut self) {
        let Source::Native(native) = &mut self.source else {
            return;
        };
        // Ancestors are resolved as the kernel resolves them, symbolic links included.
        let chain: Vec<(PathBuf, FileId)> = self
            .target
            .ancestors()
            .skip(1)
            .filter_map(|dir| {
                let metadata = std::fs::metadata(dir)
                    .ok()
                    .filter(std::fs::Metadata::is_dir)?;
                Some((dir.to_path_buf(), Entry::from_metadata(&metadata).id))
            })
            .collect();
        // The same path may hold a new directory: the old one's watch died with it.
        let mut changed = false;
        for old in &self.chain {
            if !chain.contains(old) {
                native.unwatch(&old.0);
                changed = true;
            }
        }
        // A file target is watched through its parent: that one needs every event.
        let parent = self
            .target
            .parent()
            .filter(|_| self.kind == TargetKind::File);
        for new in &chain {
            if !self.chain.contains(new) {
                if Some(new.0.as_path()) == parent {
                    native.watch_dir(&new.0, new.1);
                } else {
                    native.watch_ancestor(&new.0, new.1);
                }
                changed = true;
            }
        }
        if !changed {
            return;
        }
        tracing::debug!(ancestors = chain.len(), "watching the target's ancestors");
        self.chain = chain;
        // Something may have appeared between looking and watching: look again.
        if !self.index.contains(b"") {
            self.hints.touch(self.target.clone(), Touch::Changed);
        }
    }

    fn reconcile_below(
        &mut self,
        touched: Vec<Vec<u8>>,
        removed: &HashSet<Vec<u8>>,
        full: bool,
    ) -> Vec<Change> {
        let watches = &mut Watching {
            source: &mut self.source,
            ignore: self.ignore.as_ref(),
        };
        let mut outcome = reconcile::reconcile(
            &self.target,
            &mut self.index,
            watches,
            touched,
            removed,
            full,
        );
        if outcome.needs_rescan {
            let none = HashSet::new();
            let again = reconcile::reconcile(
                &self.target,
                &mut self.index,
                watches,
                Vec::new(),
                &none,
                true,
            );
            outcome.changes.extend(again.changes);
        }
        if let Source::Native(native) = &self.source {
            tracing::trace!(watches = native.len(), "watches after reconcile");
        }
        outcome.changes
    }

    /// Whether `path` lies strictly above the target; compared as bytes, as the hints' paths
    /// are built (comparing components costs a parse of both paths, per hint of a burst).
    fn is_strict_ancestor(&self, path: &Path) -> bool {
        let target = self.target.as_os_str().as_bytes();
        crate::backend::strip_ancestor(target, path.as_os_str().as_bytes())
            .is_some_and(|rest| !rest.is_empty())
    }

    /// Hinted absolute paths as paths relative to the target; ancestors and the target itself
    /// are left out (they concern the life cycle, which looked already). Each path's own
    /// buffer is reused.
    fn relative(&self, paths: impl IntoIterator<Item = PathBuf>) -> Vec<Vec<u8>> {
        let target = self.target.as_os_str().as_bytes();
        let paths = paths.into_iter();
        let mut relative = Vec::with_capacity(paths.size_hint().0);
        for path in paths {
            let mut bytes = path.into_os_string().into_vec();
            let Some(rest) = crate::backend::strip_ancestor(&bytes, target).map(<[u8]>::len) else {
                continue;
            };
            if rest > 0 {
                bytes.drain(..bytes.len() - rest);
                relative.push(bytes);
            }
        }
        relative
    }

    fn emit(&self, change: Change) -> Result<(), Closed> {
        let content = self.content.and_then(|options| {
            let (path, entry, previous) = match &change {
                Change::Created { path, entry } => (path, entry, None),
                Change::Updated {
                    path,
                    entry,
                    previous,
                } => (path, entry, Some(previous)),
                Change::Moved { .. } | Change::Deleted { .. } => return None,
            };
            if entry.kind != Kind::File(FileType::Regular) {
                return None;
            }
            let abs = scan::absolute(&self.target, path);
            let mut tails = self.tails.borrow_mut();
            let (content, tail) = content::read(
                options,
                &abs,
                entry,
                previous,
                tails.get(path).map(Vec::as_slice),
            );
            tails.insert(path.clone(), tail);
            Some(content)
        });
        if let Change::Deleted { path, .. } = &change {
            self.tails.borrow_mut().remove(path);
        }
        let cause = match &change {
            Change::Created { path, .. } if at_or_below_any(path, &self.moved_in) => {
                Some(Cause::MovedIn)
            }
            Change::Deleted { path, .. } if at_or_below_any(path, &self.moved_out) => {
                Some(Cause::MovedOut)
            }
            _ => None,
        };
        let mut event = to_event(&self.target, change);
        event.content = content;
        event.cause = cause;
        self.send(event)
    }

    fn send(&self, event: Event) -> Result<(), Closed> {
        self.events.push(event)
    }
}

/// Whether `path` or one of its ancestors is in `set`.
fn at_or_below_any(path: &[u8], set: &HashSet<Vec<u8>>) -> bool {
    if set.is_empty() {
        return false;
    }
    let mut current = path;
    loop {
        if set.contains(current) {
            return true;
        }
        match crate::index::parent(current) {
            Some(parent) if !parent.is_empty() => current = parent,
            _ => return false,
        }
    }
}

fn file_type(entry: &Entry) -> FileType {
    match entry.kind {
        Kind::File(file_type) => file_type,
        Kind::Dir => FileType::Regular,
    }
}

/// The event that reports `change` for a target at `target`.
fn to_event(target: &Path, change: Change) -> Event {
    let absolute = |path: &[u8]| scan::absolute(target, path);
    let (kind, path) = match change {
        Change::Created { path, entry } if entry.kind.is_dir() => (EventKind::DirCreated, path),
        Change::Created { path, entry } => (
            EventKind::FileCreated {
                size: entry.size,
                file_type: file_type(&entry),
            },
            path,
        ),
        Change::Updated { path, entry, .. } => (
            EventKind::FileUpdated {
                size: entry.size,
                file_type: file_type(&entry),
            },
            path,
        ),
        Change::Moved { from, to, entry } if entry.kind.is_dir() => (
            EventKind::DirMoved {
                from: absolute(&from),
            },
            to,
        ),
        Change::Moved { from, to, entry } => (
            EventKind::FileMoved {
                from: absolute(&from),
                size: entry.size,
                file_type: file_type(&entry),
            },
            to,
        ),
        Change::Deleted { path, entry } if entry.kind.is_dir() => (EventKind::DirDeleted, path),
        Change::Deleted { path, .. } => (EventKind::FileDeleted, path),
    };
    Event::now(kind, absolute(&path))
}

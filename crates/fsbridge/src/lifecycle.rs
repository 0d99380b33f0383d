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
use crate::content::{self, ContentOptions, Tail};
use crate::event::{Cause, ContentMode, Event, EventKind, FileType, TargetKind, UpdateKind};
use crate::filter::{GITIGNORE, Ignore};
use crate::index::{Entry, FileId, Index, Kind};
use crate::monitor::{Chunk, Parcel};
use crate::origin::{Origin, Place, SelfEvents, SelfWrites};
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

    fn ignores(&self, rel: &[u8], is_dir: &dyn Fn() -> bool) -> bool {
        self.ignore
            .is_some_and(|ignore| ignore.ignores(rel, is_dir))
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
    /// Whether changes of permission bits and owner are reported (the index keeps them then).
    attributes: bool,
    /// This batch's paths renamed into and out of watched directories (relative).
    moved_in: HashSet<Vec<u8>>,
    moved_out: HashSet<Vec<u8>>,
    /// The last bytes of each file's latest content, to notice rewrites (content only).
    tails: RefCell<HashMap<FileId, Tail>>,
    /// What fsbridge's writers did, and what to do with the events it caused.
    self_writes: Option<(SelfWrites, SelfEvents)>,
}

/// How many events travel to the stream together: one wake-up of the consumer for many events
/// in a burst.
const CHUNK: usize = 256;

/// Events on their way to the stream, sent in chunks.
struct Outbox {
    sender: mpsc::Sender<Parcel>,
    /// The generation of the input these events come from.
    generation: u64,
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
        self.sender
            .blocking_send((self.generation, chunk))
            .map_err(|_| Closed)
    }
}

impl Lifecycle {
    pub(crate) fn new(
        target: PathBuf,
        kind: TargetKind,
        source: Source,
        hints: Arc<Hints>,
        events: mpsc::Sender<Parcel>,
        generation: u64,
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
                generation,
                chunk: RefCell::new(Vec::new()),
            },
            content: None,
            ignore: None,
            attributes: false,
            tails: RefCell::default(),
            moved_in: HashSet::new(),
            moved_out: HashSet::new(),
            self_writes: None,
        }
    }

    /// Recognises the changes `record`'s writers made, and drops or marks their events.
    pub(crate) fn with_self_writes(mut self, record: Option<(SelfWrites, SelfEvents)>) -> Self {
        self.self_writes = record;
        self
    }

    /// Makes file events carry content as `content` says.
    pub(crate) fn with_content(mut self, content: Option<ContentOptions>) -> Self {
        self.content = content;
        self
    }

    /// Leaves what `ignore` matches out of the tree.
    pub(crate) fn with_ignore(mut self, ignore: Option<Ignore>) -> Self {
        self.ignore = ignore;
        self
    }

    /// Reports changes of permission bits and owner as updates (#6). Called before watching
    /// starts: it empties the index.
    pub(crate) fn with_attributes(mut self, attributes: bool) -> Self {
        self.attributes = attributes;
        self.index = Index::new(attributes);
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
        let mut ready = Event::now(
            EventKind::Ready {
                kind: self.kind,
                present,
                size,
            },
            &self.target,
        );
        // With whole content asked for, a file target's content is known from the start; with
        // appended content, what follows starts at the size `ready` carries.
        if let Some(options) = self.content
            && options.mode == ContentMode::Full
            && let Some(entry) = self
                .index
                .get(b"")
                .filter(|_| self.kind == TargetKind::File)
            && entry.kind == Kind::File(FileType::Regular)
        {
            let (content, tail) = content::read(options, &self.target, &entry, None, None);
            ready.content = Some(content);
            self.tails.borrow_mut().insert(entry.id, tail);
        }
        self.send(ready)?;

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
                entry,
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
        let before = self.index.get(b"");
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
                    // The target's own hints are left out of `touched`.
                    self.update_target(before, now)?;
                    let touched = self.relative(batch.paths);
                    // A `.gitignore` hinted is read again before the tree is looked at.
                    let mut edited =
                        self.gitignore_dirs(touched.iter().chain(&removed).map(Vec::as_slice));
                    self.forget_gitignores(&edited);
                    let changes = self.reconcile_below(touched, &removed, full);
                    edited.extend(self.gitignore_dirs(changes.iter().flat_map(Change::paths)));
                    edited.extend(self.forget_gone_gitignores(&changes));
                    for change in changes {
                        self.emit(change)?;
                    }
                    if !edited.is_empty() {
                        self.refilter(&edited)?;
                    }
                }
                TargetKind::File => {
                    // The file itself is watched: a name it gains later outside its directory
                    // tells its directory nothing.
                    self.source.watch_file(&self.target, now.id);
                    self.update_target(before, now)?;
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

    /// The directories (relative) whose `.gitignore` is among `paths`, when those files count.
    fn gitignore_dirs<'p>(&self, paths: impl Iterator<Item = &'p [u8]>) -> HashSet<Vec<u8>> {
        if !self.ignore.as_ref().is_some_and(Ignore::reads_gitignore) {
            return HashSet::new();
        }
        paths
            .filter(|path| crate::index::name(path) == GITIGNORE)
            .filter_map(|path| crate::index::parent(path).map(<[u8]>::to_vec))
            .collect()
    }

    /// Forgets the `.gitignore` files of directories that `changes` removed or moved; returns
    /// the directories moved to, whose entries the rules of their new place now apply to.
    fn forget_gone_gitignores(&self, changes: &[Change]) -> Vec<Vec<u8>> {
        let Some(ignore) = self
            .ignore
            .as_ref()
            .filter(|ignore| ignore.reads_gitignore())
        else {
            return Vec::new();
        };
        let mut arrived = Vec::new();
        for change in changes {
            match change {
                Change::Deleted { path, entry } if entry.kind.is_dir() => {
                    ignore.forget_gitignores_below(path);
                }
                Change::Moved { from, to, entry } if entry.kind.is_dir() => {
                    ignore.forget_gitignores_below(from);
                    ignore.forget_gitignores_below(to);
                    arrived.push(to.clone());
                }
                _ => {}
            }
        }
        arrived
    }

    fn forget_gitignores(&self, dirs: &HashSet<Vec<u8>>) {
        if let Some(ignore) = &self.ignore {
            for dir in dirs {
                ignore.forget_gitignore(dir);
            }
        }
    }

    /// Applies edited `.gitignore` files (of the directories `dirs`) to the tree: what they now
    /// ignore leaves the index and its watches without events; what they no longer ignore is
    /// found by a full comparison and reported as created.
    fn refilter(&mut self, dirs: &HashSet<Vec<u8>>) -> Result<(), Closed> {
        self.forget_gitignores(dirs);
        let Some(ignore) = &self.ignore else {
            return Ok(());
        };
        let mut doomed: HashSet<Vec<u8>> = HashSet::new();
        for (path, entry) in self.index.below(b"") {
            if !at_or_below_any(path, &doomed) && ignore.ignores(path, &|| entry.kind.is_dir()) {
                doomed.insert(path.to_vec());
            }
        }
        let leaving: Vec<(Vec<u8>, Entry)> = self
            .index
            .below(b"")
            .filter(|(path, _)| at_or_below_any(path, &doomed))
            .map(|(path, entry)| (path.to_vec(), entry))
            .collect();
        if !leaving.is_empty() {
            tracing::debug!(entries = leaving.len(), "now ignored, left out of the tree");
        }
        // Said as deletions (children first) with their reason, so that a consumer keeping a
        // copy of the tree drops them, and a later un-ignoring creates them again validly.
        for (path, entry) in leaving.into_iter().rev() {
            self.index.remove(&path);
            self.forget_tail(&entry);
            if entry.kind.is_dir() || entry.links > 1 {
                self.source.unwatch(&scan::absolute(&self.target, &path));
            }
            let mut event = to_event(
                &self.target,
                Change::Deleted { path, entry },
                self.attributes,
            );
            event.cause = Some(Cause::Ignored);
            self.send(event)?;
        }
        let none = HashSet::new();
        for change in self.reconcile_below(Vec::new(), &none, true) {
            self.emit(change)?;
        }
        Ok(())
    }

    /// Reports what changed about the target itself, still the same kind at its path: content,
    /// identity or attributes of a file target; only attributes of a directory target.
    fn update_target(&mut self, before: Entry, now: Entry) -> Result<(), Closed> {
        if !before.is_updated_by(&now) {
            return Ok(());
        }
        self.index.insert(b"", now);
        self.emit(Change::Updated {
            path: Vec::new(),
            entry: now,
            previous: before,
        })
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
            self.tails.borrow_mut().insert(entry.id, tail);
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
            .map(|(path, entry)| (path.to_vec(), entry))
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

    /// Forgets where the appended content of a file that left the tree ended, unless it has
    /// another name that stays.
    fn forget_tail(&self, entry: &Entry) {
        if entry.links <= 1 {
            self.tails.borrow_mut().remove(&entry.id);
        }
    }

    fn emit(&self, change: Change) -> Result<(), Closed> {
        // With our own events dropped, a consumer never heard of our temporary names: our
        // rename of one that another program's change rode along with is, to it, the file
        // appearing.
        let change = match (&self.self_writes, change) {
            (Some((record, SelfEvents::Drop)), change @ Change::Moved { .. })
                if matches!(&change, Change::Moved { from, .. }
                    if crate::writer::is_temp_name(crate::index::name(from)))
                    && !made_by(record, &self.index, &change, self.attributes) =>
            {
                match change {
                    Change::Moved { to, entry, .. } => Change::Created { path: to, entry },
                    other => other,
                }
            }
            (_, change) => change,
        };
        let content = self.content.and_then(|options| {
            let (path, entry, previous) = match &change {
                Change::Created { path, entry } => (path, entry, None),
                // The content did not change, and a consumer has it already.
                Change::Updated {
                    entry, previous, ..
                } if previous.only_attributes_differ(entry) => return None,
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
            let tail = tails.get(&entry.id);
            // A new name of a file whose content was sent under another (rotated by a rename
            // in the tree, or linked): what was sent is not sent again.
            let known = match (previous, tail) {
                (None, Some(tail)) if options.mode == ContentMode::Appended => {
                    (tail.size <= entry.size).then_some(Entry {
                        size: tail.size,
                        ..*entry
                    })
                }
                _ => None,
            };
            let (content, tail) =
                content::read(options, &abs, entry, previous.or(known.as_ref()), tail);
            if options.mode == ContentMode::Appended {
                tails.insert(entry.id, tail);
            }
            Some(content)
        });
        if let Change::Deleted { entry, .. } = &change {
            self.forget_tail(entry);
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
        let origin = match &self.self_writes {
            Some((record, handling)) if made_by(record, &self.index, &change, self.attributes) => {
                match handling {
                    SelfEvents::Drop => return Ok(()),
                    SelfEvents::Mark => Some(Origin::SelfWrite),
                }
            }
            _ => None,
        };
        let mut event = to_event(&self.target, change, self.attributes);
        event.content = content;
        event.cause = cause;
        event.origin = origin;
        self.send(event)
    }

    fn send(&self, event: Event) -> Result<(), Closed> {
        self.events.push(event)
    }
}

/// Whether `change` is what one of `record`'s writers did (see [`crate::origin`]); `index`
/// knows the directories, by which a place is named.
///
/// LIMITATION: a file our writer creates and another program deletes within one settle window
/// is no change at all, because events are net changes: with own events dropped, a consumer that
/// keeps track of its command results does not hear of that deletion.
fn made_by(record: &SelfWrites, index: &Index, change: &Change, attributes: bool) -> bool {
    let temporary = |path: &[u8]| crate::writer::is_temp_name(crate::index::name(path));
    // With attributes reported, a mode or owner other than the one our commands saw or left is
    // someone else's chmod or chown (our temporary files' modes are ours to change).
    if attributes {
        let compared = match change {
            Change::Created { path, entry }
            | Change::Moved {
                to: path, entry, ..
            } => Some((path, entry, None)),
            Change::Updated {
                path,
                entry,
                previous,
            } => Some((path, entry, Some(previous))),
            // A deletion leaves no mode to compare.
            Change::Deleted { .. } => None,
        };
        if let Some((path, entry, previous)) = compared {
            let theirs = !record.attributes_as_ours(entry)
                || previous.is_some_and(|previous| !record.attributes_as_ours(previous));
            if !temporary(path) && theirs {
                return false;
            }
        }
    }
    let place = |path: &[u8]| -> Option<Place> {
        let dir = index.get(crate::index::parent(path)?)?;
        Some((dir.id.dev, dir.id.ino, crate::index::name(path).into()))
    };
    match change {
        Change::Created { path, entry } if entry.kind.is_dir() => {
            place(path).is_some_and(|place| record.made_dir(entry, &place))
        }
        Change::Created { path, entry } => {
            place(path).is_some_and(|place| record.made_file(entry, &place))
        }
        // The writer changes attributes only of its temporary files (to take those of the file
        // they replace): anyone else's chmod or chown is not ours, even of a file we wrote.
        Change::Updated {
            path,
            entry,
            previous,
        } if previous.only_attributes_differ(entry) || entry.kind.is_dir() => {
            temporary(path) && place(path).is_some_and(|place| record.made_file(entry, &place))
        }
        // Our content changes in place keep the mode and owner: a file that changed both in one
        // window had its attributes changed by someone else too, which must not be lost.
        Change::Updated {
            entry, previous, ..
        } if previous.id == entry.id
            && previous.attributes.is_some()
            && previous.attributes != entry.attributes =>
        {
            false
        }
        Change::Updated {
            path,
            entry,
            previous,
        } => record.changed(previous, entry, place(path).as_ref()),
        Change::Moved { from, entry, .. } => record.moved(entry, temporary(from)),
        Change::Deleted { path, entry } => record.removed(entry, temporary(path)),
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

/// The event that reports `change` for a target at `target`; update events carry the
/// entry's permission bits and owner when `attributes` are reported.
// LIMITATION: creations and moves carry no attributes, because #6 asked for changes of them
// only; a consumer learns an entry's mode and owner from its first update.
fn to_event(target: &Path, change: Change, attributes: bool) -> Event {
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
        Change::Updated { path, entry, .. } if entry.kind.is_dir() => {
            let Some(attributes) = entry.attributes else {
                unreachable!("a directory is updated only when its attributes, looked at, differ")
            };
            (EventKind::DirUpdated { attributes }, path)
        }
        Change::Updated {
            path,
            entry,
            previous,
        } => {
            let change = if previous.only_attributes_differ(&entry) {
                UpdateKind::Attributes
            } else {
                UpdateKind::Content
            };
            (
                EventKind::FileUpdated {
                    size: entry.size,
                    file_type: file_type(&entry),
                    change,
                    attributes: entry.attributes.filter(|_| attributes),
                },
                path,
            )
        }
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

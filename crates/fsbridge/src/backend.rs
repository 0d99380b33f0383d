//! Backends: where hints come from.
//!
//! The native backend is inotify with one watch per directory, added by the reconciler right
//! before it reads the directory, so that nothing created in a brand-new directory is missed. Its
//! reading thread only records *which* paths were touched, in [`Hints`]: a set bounded in size, so a burst of events costs memory in
//! proportion to the distinct paths, and a set that reaches its bound turns into one rescan
//! instead of dropping anything. The polling backend has no watches at all: the reconciler simply
//! rescans on every tick.
//!
//! All platform-specific behaviour stays in this module (and in `notify`, for raw mode).

mod inotify;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::WatchError;
use crate::event::{RescanReason, TargetKind};
use crate::index::FileId;
use crate::scan::{self, WatchSet};

/// How many distinct paths end a settle window early: in a burst, waiting merges nothing more
/// (the paths are all different) and only delays the events.
const BURST: usize = 512;

/// How long the native reader leaves events in the kernel's queue between two reads when reading
/// sooner would not bring any event out sooner (see [`Hints::gather_pause`]). In a burst, each
/// read costs the reader a wake-up and the writing process the call that wakes it: reading every
/// few events made the reader switch context about once per file (#5). At a million events a
/// second this lets a thousand wait, far below the kernel's default queue of 16,384.
const GATHER: Duration = Duration::from_millis(1);

/// Paths touched since the last batch, shared by the backend's callback and the reconciler.
#[derive(Debug)]
pub(crate) struct Hints {
    pending: Mutex<Pending>,
    wake: Condvar,
    capacity: usize,
    /// How long hints are collected after the first one before a batch is taken.
    settle: Duration,
}

#[derive(Debug, Default)]
struct Pending {
    /// As plain strings: hashing a `Path` walks its components, which a burst pays per hint.
    paths: HashSet<OsString>,
    /// Paths whose entry was deleted or renamed away: whatever is there now is another entry,
    /// even if it has the same inode number (inode numbers are reused at once).
    removed: HashSet<PathBuf>,
    /// Paths renamed into, and away from, a watched directory: where a creation or a deletion
    /// that is not a move within the tree came from.
    moved_in: HashSet<PathBuf>,
    moved_out: HashSet<PathBuf>,
    rescan: Option<RescanReason>,
    /// When the oldest pending hint arrived: the settle window counts from there.
    since: Option<Instant>,
    /// Whether the reconciler waits for hints (rather than working on the last batch).
    waiting: bool,
    closed: bool,
    #[cfg(feature = "fault-injection")]
    fault: Option<Fault>,
}

impl Pending {
    /// Records one hint; returns whether the reconciler must be woken for it.
    fn add(&mut self, capacity: usize, path: PathBuf, touch: Touch) -> bool {
        let removed = matches!(touch, Touch::Removed | Touch::MovedOut);
        // Only the first hint of a batch wakes the reconciler: after it, the reconciler sleeps
        // until the settle window ends anyway, and waking it for every hint of a burst would
        // cost a context switch each.
        let first = self.since.is_none();
        self.since.get_or_insert_with(Instant::now);
        #[cfg(feature = "fault-injection")]
        if self.fault.as_mut().is_some_and(Fault::loses_next) {
            return true;
        }
        // Removals are kept even while a rescan is pending: a rescan compares inodes, and a
        // reused inode number would hide a replaced directory.
        if removed && self.removed.len() < capacity {
            self.removed.insert(path.clone());
        }
        let moves = match touch {
            Touch::MovedIn => Some(&mut self.moved_in),
            Touch::MovedOut => Some(&mut self.moved_out),
            Touch::Changed | Touch::Removed => None,
        };
        if let Some(moves) = moves
            && moves.len() < capacity
        {
            moves.insert(path.clone());
        }
        if self.rescan.is_none() {
            if self.paths.len() >= capacity {
                tracing::warn!(capacity, "hint queue full, rescanning instead");
                self.paths = HashSet::new();
                self.rescan = Some(RescanReason::QueueFull);
            } else {
                self.paths.insert(path.into_os_string());
            }
        }
        first || self.paths.len() == BURST
    }
}

/// Loses random windows of hints and then reports an overflow, as the kernel does when its queue
/// overflows: for tests of the recovery, which the kernel will not produce on demand.
#[cfg(feature = "fault-injection")]
#[derive(Debug)]
struct Fault {
    random: u64,
    /// Hints still to lose in the current window.
    losing: u32,
    /// Whether hints were lost since the last batch.
    lost: bool,
}

#[cfg(feature = "fault-injection")]
impl Fault {
    fn next_random(&mut self) -> u64 {
        // xorshift64: plenty for choosing windows.
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        self.random
    }

    /// Whether the next hint is lost.
    fn loses_next(&mut self) -> bool {
        if self.losing == 0 && self.next_random().is_multiple_of(8) {
            self.losing = u32::try_from(self.next_random() % 40).unwrap_or(0) + 1;
        }
        if self.losing == 0 {
            return false;
        }
        self.losing -= 1;
        self.lost = true;
        true
    }
}

/// What a hint says happened at its path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Touch {
    /// Something changed there.
    Changed,
    /// The entry there was deleted or renamed away.
    Removed,
    /// An entry was renamed to there.
    MovedIn,
    /// The entry there was renamed away.
    MovedOut,
}

/// What the reconciler takes from [`Hints`] at once.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) paths: Vec<PathBuf>,
    pub(crate) removed: HashSet<PathBuf>,
    pub(crate) moved_in: HashSet<PathBuf>,
    pub(crate) moved_out: HashSet<PathBuf>,
    pub(crate) rescan: Option<RescanReason>,
    /// The polling interval elapsed: compare the whole tree.
    pub(crate) poll: bool,
}

impl Hints {
    /// Hints bounded to `capacity` distinct paths, taken in batches `settle` after the first.
    pub(crate) fn new(capacity: usize, settle: Duration) -> Arc<Self> {
        Arc::new(Self {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            capacity,
            settle,
        })
    }

    /// Makes the hints lose random windows, chosen from `seed`, each followed by an overflow.
    #[cfg(feature = "fault-injection")]
    pub(crate) fn inject_faults(&self, seed: u64) {
        self.lock().fault = Some(Fault {
            random: seed | 1,
            losing: 0,
            lost: false,
        });
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding this lock leaves only a set of paths behind: still usable.
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that something happened at `path`.
    pub(crate) fn touch(&self, path: PathBuf, touch: Touch) {
        self.touch_all([(path, touch)]);
    }

    /// Records several hints under one lock: a read of the native queue hands over all its
    /// events at once.
    pub(crate) fn touch_all(&self, hints: impl IntoIterator<Item = (PathBuf, Touch)>) {
        let mut pending = self.lock();
        let mut wake = false;
        for (path, touch) in hints {
            wake |= pending.add(self.capacity, path, touch);
        }
        drop(pending);
        if wake {
            self.wake.notify_one();
        }
    }

    /// How long the native reader may wait before reading its queue again without delaying any
    /// batch: `None` (read at once) while the reconciler waits for hints and either no settle
    /// window is open (the next hint opens one, on time) or the open one ends within two
    /// [`GATHER`]s (its last hints must be in when it is taken); [`GATHER`] otherwise. A busy
    /// reconciler takes whatever is there when it comes back, however soon it was read.
    pub(crate) fn gather_pause(&self) -> Option<Duration> {
        let pending = self.lock();
        if !pending.waiting {
            return Some(GATHER);
        }
        let left = (pending.since? + self.settle).saturating_duration_since(Instant::now());
        (left >= 2 * GATHER).then_some(GATHER)
    }

    /// Records that hints were lost and the whole target must be compared again.
    pub(crate) fn rescan(&self, reason: RescanReason) {
        let mut pending = self.lock();
        pending.since.get_or_insert_with(Instant::now);
        pending.paths = HashSet::new();
        if pending.rescan.is_none() || reason == RescanReason::Overflow {
            pending.rescan = Some(reason);
        }
        drop(pending);
        self.wake.notify_one();
    }

    /// Stops the reconciler's wait for good.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_all();
    }

    /// Waits for hints, then lets them settle for `settle` after the first one, and takes them.
    /// With a polling `interval`, returns a polling batch when it passes without hints. `None`
    /// once closed.
    pub(crate) fn next_batch(&self, interval: Option<Duration>) -> Option<Batch> {
        let mut pending = self.lock();
        let started = Instant::now();
        pending.waiting = true;
        loop {
            if pending.closed {
                return None;
            }
            if let Some(since) = pending.since {
                let deadline = since + self.settle;
                let now = Instant::now();
                if now >= deadline || pending.paths.len() >= BURST {
                    break;
                }
                pending = self.wait(pending, deadline - now);
                continue;
            }
            match interval {
                Some(interval) => {
                    let elapsed = started.elapsed();
                    if elapsed >= interval {
                        pending.waiting = false;
                        return Some(Batch {
                            poll: true,
                            ..Batch::default()
                        });
                    }
                    pending = self.wait(pending, interval.saturating_sub(elapsed));
                }
                None => {
                    pending = self
                        .wake
                        .wait(pending)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
            }
        }
        pending.since = None;
        pending.waiting = false;
        #[cfg_attr(
            not(feature = "fault-injection"),
            expect(unused_mut, reason = "changed only by fault injection")
        )]
        let mut rescan = pending.rescan.take();
        #[cfg(feature = "fault-injection")]
        if let Some(fault) = pending.fault.as_mut()
            && std::mem::take(&mut fault.lost)
        {
            fault.losing = 0;
            rescan = Some(RescanReason::Overflow);
        }
        let paths = pending.paths.drain().map(PathBuf::from).collect();
        // The set keeps its table for the next batch (growing it again from nothing cost a
        // rehash at every doubling), but not the table of a rare huge one.
        pending.paths.shrink_to(4 * BURST);
        Some(Batch {
            paths,
            removed: std::mem::take(&mut pending.removed),
            moved_in: std::mem::take(&mut pending.moved_in),
            moved_out: std::mem::take(&mut pending.moved_out),
            rescan,
            poll: false,
        })
    }

    fn wait<'a>(
        &self,
        pending: MutexGuard<'a, Pending>,
        timeout: Duration,
    ) -> MutexGuard<'a, Pending> {
        self.wake
            .wait_timeout(pending, timeout)
            .map_or_else(|poisoned| poisoned.into_inner().0, |(pending, _)| pending)
    }
}

/// Whether a hint at `path` can matter for a target at `target`: the target itself, anything
/// below a directory target, or an ancestor of the target (the target's life cycle).
pub(crate) fn is_relevant(path: &Path, target: &Path, kind: TargetKind) -> bool {
    // Compared as bytes: a burst pays this for every native event, and the paths come from
    // joining names to the target's path, so there are no `.` or doubled separators to allow for.
    let (path, target) = (path.as_os_str().as_bytes(), target.as_os_str().as_bytes());
    below_or_at(target, path) || (kind == TargetKind::Dir && below_or_at(path, target))
}

/// The part of `path` below `ancestor` (empty for `ancestor` itself), if `path` is `ancestor`
/// or lies below it; byte-wise.
pub(crate) fn strip_ancestor<'a>(path: &'a [u8], ancestor: &[u8]) -> Option<&'a [u8]> {
    let rest = path.strip_prefix(ancestor)?;
    if rest.is_empty() || ancestor.ends_with(b"/") {
        return Some(rest);
    }
    rest.strip_prefix(b"/")
}

fn below_or_at(path: &[u8], ancestor: &[u8]) -> bool {
    strip_ancestor(path, ancestor).is_some()
}

/// The native backend: inotify, with one watch per directory, placed by the reconciler right
/// before it reads the directory.
///
/// `notify` is not used here (it still serves raw mode): its watches are added by a message to
/// its own thread and an answer back, about 65 µs each on the machines we measured, which made
/// starting on a tree of 5,000 directories three times slower than watching it with `notify`'s
/// own recursive mode. A direct `inotify_add_watch` takes a few microseconds, and the watch
/// mask leaves out the opens and reads that our own walks cause.
pub(crate) struct Native {
    instance: inotify::Instance,
    /// Watched directories: their identity and watch descriptor.
    watched: BTreeMap<PathBuf, (FileId, i32)>,
    by_id: HashMap<FileId, PathBuf>,
    limit_reported: bool,
    /// Directories that could not be watched (watch limit, permissions): polled instead.
    unwatched: BTreeSet<PathBuf>,
    /// Files with several names, watched themselves: the kernel has one watch per file, whatever
    /// name placed it, so the watch is kept by file, with the names in the tree that it serves.
    files: HashMap<FileId, (i32, Vec<PathBuf>)>,
    /// The file behind each watched name.
    names: BTreeMap<PathBuf, FileId>,
}

impl std::fmt::Debug for Native {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Native")
            .field("watched", &self.watched.len())
            .finish_non_exhaustive()
    }
}

impl Native {
    /// Starts the backend; hints relevant to `target` go to `hints`.
    pub(crate) fn new(
        target: &Path,
        kind: TargetKind,
        hints: Arc<Hints>,
    ) -> Result<Self, WatchError> {
        let instance = inotify::Instance::start(target, kind, hints).map_err(|source| {
            if source.raw_os_error() == Some(libc_emfile()) {
                WatchError::WatchLimit {
                    path: target.to_path_buf(),
                }
            } else {
                WatchError::Io {
                    path: target.to_path_buf(),
                    source,
                }
            }
        })?;
        Ok(Self {
            instance,
            watched: BTreeMap::new(),
            by_id: HashMap::new(),
            limit_reported: false,
            unwatched: BTreeSet::new(),
            files: HashMap::new(),
            names: BTreeMap::new(),
        })
    }

    /// Drops the watches of `abs` and of everything below it: what was there was deleted or
    /// renamed away, and a watch that followed a renamed directory would report old paths.
    pub(crate) fn forget(&mut self, abs: &Path) {
        let below = |map_path: &Path| map_path.starts_with(abs);
        let dead: Vec<(PathBuf, FileId, i32)> = self
            .watched
            .range::<Path, _>((std::ops::Bound::Included(abs), std::ops::Bound::Unbounded))
            .take_while(|(path, _)| below(path))
            .map(|(path, (id, wd))| (path.clone(), *id, *wd))
            .collect();
        for (path, id, wd) in dead {
            self.watched.remove(&path);
            self.by_id.remove(&id);
            self.instance.remove(wd, &path);
        }
        let names: Vec<PathBuf> = self
            .names
            .range::<Path, _>((std::ops::Bound::Included(abs), std::ops::Bound::Unbounded))
            .map(|(name, _)| name)
            .take_while(|name| below(name))
            .cloned()
            .collect();
        for name in names {
            self.unwatch_name(&name);
        }
    }

    /// Forgets every watch, so that the next walk places each one again: after lost events no
    /// watch can be trusted. The kernel's watches stay until [`Native::prune`]: placing a watch
    /// again on a directory still watched only confirms it.
    pub(crate) fn forget_all(&mut self) {
        self.files.clear();
        self.names.clear();
        self.watched.clear();
        self.by_id.clear();
    }

    /// Removes the kernel's watches that no directory or file holds any more.
    pub(crate) fn prune(&mut self) {
        let mut kept: HashSet<i32> = self.watched.values().map(|(_, wd)| *wd).collect();
        kept.extend(self.files.values().map(|(wd, _)| *wd));
        self.instance.retain(|wd| kept.contains(&wd));
    }

    /// Watches an ancestor of the target, for what changes where the target's path leads.
    pub(crate) fn watch_ancestor(&mut self, abs: &Path, id: FileId) {
        self.watch(abs, id, inotify::Watched::Ancestor);
    }

    /// Drops one name of a watched file; the file's watch goes with its last name.
    fn unwatch_name(&mut self, abs: &Path) {
        let Some(id) = self.names.remove(abs) else {
            return;
        };
        let Some((wd, names)) = self.files.get_mut(&id) else {
            return;
        };
        names.retain(|name| name != abs);
        let wd = *wd;
        // Events must name a path that still leads to the file.
        if let Some(other) = names.first() {
            self.instance.point(wd, other);
        } else {
            self.files.remove(&id);
            self.instance.remove_any(wd);
        }
    }

    fn watch(&mut self, abs: &Path, id: FileId, watched: inotify::Watched) {
        if self.watched.get(abs).is_some_and(|(known, _)| *known == id) {
            return;
        }
        // The same directory under another path was renamed here: its watch follows it, and
        // placing it again below points it at the new path.
        if let Some(old) = self.by_id.remove(&id) {
            self.watched.remove(&old);
        }
        // Another directory was at this path: its watch goes.
        if let Some((old_id, old_wd)) = self.watched.remove(abs) {
            self.by_id.remove(&old_id);
            self.instance.remove(old_wd, abs);
        }
        match self.instance.add(abs, watched) {
            Ok(wd) => {
                self.watched.insert(abs.to_path_buf(), (id, wd));
                self.by_id.insert(id, abs.to_path_buf());
                self.unwatched.remove(abs);
            }
            Err(error) if scan::is_gone(&error) => {}
            Err(error) => self.cannot_watch(abs, &error),
        }
    }

    /// Whether some directories could not be watched and must be polled.
    pub(crate) fn has_unwatched(&self) -> bool {
        !self.unwatched.is_empty()
    }

    /// The number of directories watched.
    pub(crate) fn len(&self) -> usize {
        self.watched.len()
    }

    fn cannot_watch(&mut self, abs: &Path, error: &std::io::Error) {
        if error.raw_os_error() == Some(libc_enospc()) {
            if !self.limit_reported {
                self.limit_reported = true;
                tracing::warn!(
                    path = %abs.display(),
                    "inotify watch limit reached: directories past it are polled every \
                     second; raise the limit with `sysctl fs.inotify.max_user_watches=<more>`"
                );
            }
        } else {
            tracing::warn!(path = %abs.display(), %error, "cannot watch directory, polling it");
        }
        self.unwatched.insert(abs.to_path_buf());
    }
}

/// `EMFILE` from `inotify_init1`: the per-user limit on inotify instances.
fn libc_emfile() -> i32 {
    rustix::io::Errno::MFILE.raw_os_error()
}

/// `ENOSPC` from `inotify_add_watch`: the per-user limit on watches.
fn libc_enospc() -> i32 {
    rustix::io::Errno::NOSPC.raw_os_error()
}

impl WatchSet for Native {
    fn watch_dir(&mut self, abs: &Path, id: FileId) {
        self.watch(abs, id, inotify::Watched::Directory);
    }

    fn watch_file(&mut self, abs: &Path, id: FileId) {
        match self.names.get(abs) {
            Some(known) if *known == id => return,
            // Another file took this name.
            Some(_) => self.unwatch_name(abs),
            None => {}
        }
        match self.instance.add(abs, inotify::Watched::File) {
            Ok(wd) => {
                self.names.insert(abs.to_path_buf(), id);
                self.files
                    .entry(id)
                    .or_insert_with(|| (wd, Vec::new()))
                    .1
                    .push(abs.to_path_buf());
            }
            // Writes through the file's other names may go unseen; its own directory still
            // reports writes through this name.
            Err(error) => tracing::debug!(path = %abs.display(), %error, "cannot watch file"),
        }
    }

    fn unwatch(&mut self, abs: &Path) {
        self.unwatched.remove(abs);
        self.unwatch_name(abs);
        if let Some((id, wd)) = self.watched.remove(abs) {
            self.by_id.remove(&id);
            self.instance.remove(wd, abs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relevance_needs_a_separator_after_the_prefix() {
        let target = Path::new("/srv/in");

        assert!(is_relevant(Path::new("/srv/in/a"), target, TargetKind::Dir));
        assert!(is_relevant(Path::new("/srv"), target, TargetKind::Dir));
        assert!(is_relevant(Path::new("/srv/in"), target, TargetKind::File));
        assert!(!is_relevant(
            Path::new("/srv/inner"),
            target,
            TargetKind::Dir
        ));
        assert!(!is_relevant(
            Path::new("/srv/in/a"),
            target,
            TargetKind::File
        ));
        assert!(!is_relevant(Path::new("/sr"), target, TargetKind::Dir));
    }

    #[test]
    fn everything_is_below_the_root_directory() {
        assert_eq!(strip_ancestor(b"/a/b", b"/"), Some(&b"a/b"[..]));
        assert_eq!(strip_ancestor(b"/", b"/"), Some(&b""[..]));
    }
}

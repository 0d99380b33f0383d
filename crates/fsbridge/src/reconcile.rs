//! The reconciler: turns "something happened at these paths" into the net changes, in an order
//! that replays correctly.
//!
//! Backends only give hints. The reconciler looks at each hinted path as it is *now* (`lstat`,
//! and a walk for directories that appeared), compares that with the [`Index`], and works out
//! what vanished, what appeared and what changed. A vanished and an appeared entry with the same
//! device and inode are one move. It then emits the changes one at a time, each applied to the
//! index as it is emitted, and only once it is valid against the index: a move needs its source
//! present and its destination free, a deletion needs the entry's children gone first, a creation
//! needs its parent. That keeps the invariant the whole crate rests on: replaying the emitted
//! changes on the index before the batch gives the index after it, and the index after it equals
//! the tree on disk.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::index::{self, Entry, FileId, Index};
use crate::scan::{self, WatchSet};

/// One net change, already applied to the index. Paths are relative to the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    Created {
        path: Vec<u8>,
        entry: Entry,
    },
    Updated {
        path: Vec<u8>,
        entry: Entry,
        /// The file as the previous event described it.
        previous: Entry,
    },
    Moved {
        from: Vec<u8>,
        to: Vec<u8>,
        entry: Entry,
    },
    Deleted {
        path: Vec<u8>,
        entry: Entry,
    },
}

impl Change {
    /// The paths the change is about: both ends of a move.
    pub(crate) fn paths(&self) -> impl Iterator<Item = &[u8]> {
        let (first, second) = match self {
            Self::Created { path, .. }
            | Self::Updated { path, .. }
            | Self::Deleted { path, .. } => (path.as_slice(), None),
            Self::Moved { from, to, .. } => (from.as_slice(), Some(to.as_slice())),
        };
        std::iter::once(first).chain(second)
    }
}

/// The outcome of one reconciliation.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) changes: Vec<Change>,
    /// Something could not be placed consistently (the tree changed under the walk); the caller
    /// should reconcile the whole target again.
    pub(crate) needs_rescan: bool,
}

/// Reconciles the index below the target with the tree on disk.
///
/// `touched` are the relative paths the backend hinted at (never the target itself). With `full`,
/// everything below the target is compared instead, which is what recovers from lost hints. The
/// target itself must be indexed as a directory.
pub(crate) fn reconcile(
    root: &Path,
    index: &mut Index,
    watches: &mut dyn WatchSet,
    touched: impl IntoIterator<Item = Vec<u8>>,
    removed: &HashSet<Vec<u8>>,
    full: bool,
) -> Outcome {
    let mut observer = Observer {
        root,
        index,
        watches,
        removed,
        observation: Observation::default(),
    };
    if full {
        observer.observe_all();
    } else {
        observer.observe_touched(touched);
    }
    let mut observation = observer.observation;
    let walks = std::mem::take(&mut observation.walks);

    let plan = Plan::pair(observation);

    let outcome = plan.apply(root, index, watches);
    for (top, unreadable) in walks {
        index.set_unreadable(&top, unreadable);
    }
    outcome
}

/// What changed, before moves are paired.
#[derive(Debug, Default)]
struct Observation {
    /// Index entries that are no longer on disk as they were.
    gone: Vec<(Vec<u8>, Entry)>,
    /// Entries on disk that the index does not hold as they are.
    new: Vec<(Vec<u8>, Entry)>,
    /// Files still at their path whose content, type or inode changed, and files and
    /// directories whose permission bits or owner changed (where the index keeps them).
    updated: Vec<(Vec<u8>, Entry)>,
    /// The subtrees walked, each with the directories below it that could not be read.
    walks: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
}

struct Observer<'a> {
    root: &'a Path,
    index: &'a Index,
    watches: &'a mut dyn WatchSet,
    /// Paths whose entry the backend saw deleted or renamed away: a directory there now is
    /// another one, even with the same (reused) inode number.
    removed: &'a HashSet<Vec<u8>>,
    observation: Observation,
}

impl Observer<'_> {
    fn observe_all(&mut self) {
        let Some(root_entry) = self.index.get(b"") else {
            return;
        };
        let walk = scan::walk(self.root, b"", root_entry, self.watches);
        self.diff(b"", walk.entries, &walk.unreadable);
        self.observation.walks.push((Vec::new(), walk.unreadable));
    }

    fn observe_touched(&mut self, touched: impl IntoIterator<Item = Vec<u8>>) {
        // A hint below something the index does not hold as a directory is about the nearest
        // indexed ancestor's subtree: look there instead.
        let mut touched: Vec<Vec<u8>> = touched.into_iter().collect();
        // Sorted, the paths of one directory come together and its lookup serves them all.
        touched.sort_unstable();
        let mut known_dir: Option<Vec<u8>> = None;
        let mut starts: Vec<Vec<u8>> = touched
            .into_iter()
            .map(|mut path| {
                while let Some(parent) = index::parent(&path) {
                    if known_dir.as_deref() == Some(parent) {
                        break;
                    }
                    if self
                        .index
                        .get(parent)
                        .is_some_and(|entry| entry.kind.is_dir())
                    {
                        known_dir = Some(parent.to_vec());
                        break;
                    }
                    path.truncate(parent.len());
                }
                path
            })
            .filter(|path| !path.is_empty() && !self.is_left_out(path))
            .collect();
        starts.sort_unstable();
        starts.dedup();
        // In a burst nearly every start is a new file; grown from nothing, the list was copied
        // at every doubling.
        self.observation.new.reserve(starts.len());

        let mut covered: HashSet<Vec<u8>> = HashSet::new();
        let mut abs = PathBuf::new();
        for path in starts {
            if has_ancestor_in(&path, &covered) {
                continue;
            }
            if let Some(path) = self.observe_one(path, &mut abs) {
                covered.insert(path);
            }
        }
    }

    /// Looks at one hinted path, its absolute form built in `abs` (a buffer reused from one path
    /// to the next); hands the path back when its whole subtree was compared.
    fn observe_one(&mut self, path: Vec<u8>, abs: &mut PathBuf) -> Option<Vec<u8>> {
        scan::absolute_in(self.root, &path, abs);
        let now = match scan::lstat(abs) {
            Ok(now) => now,
            Err(error) => {
                tracing::debug!(path = %abs.display(), %error, "cannot stat hinted path");
                return None;
            }
        };
        let before = self.index.get(&path);
        tracing::trace!(path = %abs.display(), ?before, ?now, "lstat");

        match (before, now) {
            (Some(before), Some(now))
                if before.kind.is_dir()
                    && now.kind.is_dir()
                    && self.is_same_dir(&path, &before, &now)
                    && !self.index.is_unreadable(&path) =>
            {
                if before.is_updated_by(&now) {
                    self.observation.updated.push((path, now));
                }
                return None;
            }
            (Some(before), Some(now)) if !before.kind.is_dir() && !now.kind.is_dir() => {
                if before.is_updated_by(&now) {
                    self.observation.updated.push((path, now));
                }
                return None;
            }
            (None, None) => return None,
            // The common cases of a burst, without the subtree comparison: a file appeared
            // where nothing was, or a file vanished.
            (None, Some(now)) if !now.kind.is_dir() => {
                self.observation.new.push((path, now));
                return None;
            }
            (Some(before), None) if !before.kind.is_dir() => {
                self.observation.gone.push((path, before));
                return None;
            }
            _ => {}
        }

        let mut found = Vec::new();
        let mut unreadable = Vec::new();
        if let Some(now) = now {
            found.push((path.clone(), now));
            if now.kind.is_dir() {
                let walk = scan::walk(self.root, &path, now, self.watches);
                found.extend(walk.entries);
                unreadable = walk.unreadable;
            }
        }
        self.diff(&path, found, &unreadable);
        self.observation.walks.push((path.clone(), unreadable));
        Some(path)
    }

    /// Whether `path` or one of its ancestors (directories all) is ignored.
    fn is_left_out(&self, path: &[u8]) -> bool {
        let is_dir = || {
            self.index.get(path).map_or_else(
                || {
                    std::fs::symlink_metadata(scan::absolute(self.root, path))
                        .is_ok_and(|metadata| metadata.is_dir())
                },
                |entry| entry.kind.is_dir(),
            )
        };
        if self.watches.ignores(path, &is_dir) {
            return true;
        }
        let mut current = index::parent(path).unwrap_or_default();
        while !current.is_empty() {
            if self.watches.ignores(current, &|| true) {
                return true;
            }
            current = index::parent(current).unwrap_or_default();
        }
        false
    }

    fn is_same_dir(&self, path: &[u8], before: &Entry, now: &Entry) -> bool {
        before.id == now.id && !self.removed.contains(path)
    }

    /// Compares the index's subtree at `top` (inclusive, unless `top` is the target) with what
    /// was found on disk there.
    fn diff(&mut self, top: &[u8], mut found: Vec<(Vec<u8>, Entry)>, unreadable: &[Vec<u8>]) {
        found.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let unreadable: HashSet<Vec<u8>> = unreadable.iter().cloned().collect();
        let indexed: Vec<(&[u8], Entry)> = (!top.is_empty())
            .then(|| self.index.get(top).map(|entry| (top, entry)))
            .flatten()
            .into_iter()
            .chain(self.index.below(top))
            .collect();

        // Below an entry that vanished or was replaced, everything vanished too; below one that
        // appeared, everything appeared.
        let mut gone_dirs: HashSet<Vec<u8>> = HashSet::new();
        let mut new_dirs: HashSet<Vec<u8>> = HashSet::new();
        let mut found = found.into_iter().peekable();
        let mut indexed = indexed.into_iter().peekable();
        loop {
            let (path, before, now) = match (indexed.peek(), found.peek()) {
                (None, None) => break,
                (Some((old_path, _)), Some((new_path, _))) if *old_path == new_path.as_slice() => {
                    let (path, before) = indexed.next().expect("peeked");
                    let (_, now) = found.next().expect("peeked");
                    (path.to_vec(), Some(before), Some(now))
                }
                (Some((old_path, _)), Some((new_path, _))) if *old_path < new_path.as_slice() => {
                    let (path, before) = indexed.next().expect("peeked");
                    (path.to_vec(), Some(before), None)
                }
                (Some(_), None) => {
                    let (path, before) = indexed.next().expect("peeked");
                    (path.to_vec(), Some(before), None)
                }
                (_, Some(_)) => {
                    let (path, now) = found.next().expect("peeked");
                    (path, None, Some(now))
                }
            };
            if !unreadable.is_empty() && has_ancestor_in(&path, &unreadable) {
                continue;
            }
            let below_gone = has_ancestor_in(&path, &gone_dirs);
            let below_new = has_ancestor_in(&path, &new_dirs);
            let (vanished, appeared) = match (before, now) {
                _ if below_gone || below_new => (before.filter(|_| below_gone), now),
                (Some(before), Some(now)) if before.kind.is_dir() && now.kind.is_dir() => {
                    if !self.is_same_dir(&path, &before, &now) {
                        (Some(before), Some(now))
                    } else if before.is_updated_by(&now) {
                        self.observation.updated.push((path, now));
                        continue;
                    } else {
                        (None, None)
                    }
                }
                (Some(before), Some(now)) if !before.kind.is_dir() && !now.kind.is_dir() => {
                    if before.is_updated_by(&now) {
                        self.observation.updated.push((path, now));
                    }
                    continue;
                }
                other => other,
            };
            if let Some(before) = vanished {
                if before.kind.is_dir() {
                    gone_dirs.insert(path.clone());
                }
                self.observation.gone.push((path.clone(), before));
            }
            if let Some(now) = appeared {
                if now.kind.is_dir() && !below_new {
                    new_dirs.insert(path.clone());
                }
                self.observation.new.push((path, now));
            }
        }
    }
}

/// Whether some strict ancestor of `path` (the target counts) is in `set`.
fn has_ancestor_in(path: &[u8], set: &HashSet<Vec<u8>>) -> bool {
    if set.is_empty() {
        return false;
    }
    let mut current = path;
    while let Some(parent) = index::parent(current) {
        if set.contains(parent) {
            return true;
        }
        current = parent;
    }
    false
}

/// An entry found on disk at a relative path.
type Found = (Vec<u8>, Entry);

/// A rename the reconciler will emit: the entry at `from` in the index is now at `to`.
#[derive(Debug)]
struct Move {
    from: Vec<u8>,
    to: Vec<u8>,
    entry: Entry,
    /// Entries below `to` that came along with the move; they need no events of their own.
    carried: Vec<(Vec<u8>, Entry)>,
}

/// A path in the index as it was when the batch began; `translate` brings it up to date with the
/// directory moves emitted since.
#[derive(Debug)]
struct OldPath {
    path: Vec<u8>,
    /// How many directory moves of this batch `path` already reflects.
    epoch: usize,
}

/// The paired changes, waiting to be emitted in a valid order.
#[derive(Debug, Default)]
struct Plan {
    moves: Vec<Move>,
    deletions: Vec<(OldPath, Entry)>,
    creations: Vec<(Vec<u8>, Entry)>,
    updates: Vec<(Vec<u8>, Entry)>,
}

impl Plan {
    /// Pairs vanished and appeared entries with the same identity into moves.
    fn pair(observation: Observation) -> Self {
        let Observation {
            gone,
            mut new,
            updated,
            walks: _,
        } = observation;
        let mut plan = Self {
            creations: Vec::with_capacity(new.len()),
            updates: updated,
            ..Self::default()
        };

        let mut gone_by_id: HashMap<(FileId, bool), usize> = HashMap::new();
        for (position, (_, entry)) in gone.iter().enumerate() {
            gone_by_id
                .entry((entry.id, entry.kind.is_dir()))
                .or_insert(position);
        }
        let mut consumed = vec![false; gone.len()];
        // For every destination of a move (or of an entry carried by one): its source, and the
        // move that carries it.
        let mut sources: HashMap<Vec<u8>, (usize, usize)> = HashMap::new();

        new.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (to, entry) in new {
            let paired = gone_by_id
                .get(&(entry.id, entry.kind.is_dir()))
                .copied()
                .filter(|&g| {
                    // A directory cannot move into itself, and an entry that left a path and
                    // came back (a reused inode) is a new entry, not a move.
                    let from = &gone[g].0;
                    !consumed[g]
                        && *from != to
                        && !index::is_below(&to, from)
                        && !index::is_below(from, &to)
                });
            let Some(source) = paired else {
                plan.creations.push((to, entry));
                continue;
            };
            consumed[source] = true;
            let from = &gone[source].0;

            let carrier = index::parent(&to).and_then(|to_parent| {
                let (parent_source, carrier) = *sources.get(to_parent)?;
                let from_parent = index::parent(from)?;
                let same_name = index::name(&to) == index::name(from);
                (gone[parent_source].0 == from_parent && same_name).then_some(carrier)
            });
            // What the move does not say (new content of an entry it carries, new attributes of
            // any entry it moves) is an update after it.
            if let Some(carrier) = carrier {
                if gone[source].1.is_updated_by(&entry) {
                    plan.updates.push((to.clone(), entry));
                }
                plan.moves[carrier].carried.push((to.clone(), entry));
                sources.insert(to, (source, carrier));
            } else {
                tracing::debug!(from = ?String::from_utf8_lossy(from), to = ?String::from_utf8_lossy(&to), "paired rename");
                if gone[source].1.attributes_differ(&entry) {
                    plan.updates.push((to.clone(), entry));
                }
                sources.insert(to.clone(), (source, plan.moves.len()));
                plan.moves.push(Move {
                    from: from.clone(),
                    to,
                    entry,
                    carried: Vec::new(),
                });
            }
        }

        plan.deletions = gone
            .into_iter()
            .zip(consumed)
            .filter(|(_, consumed)| !consumed)
            .map(|((path, entry), _)| (OldPath { path, epoch: 0 }, entry))
            .collect();
        plan
    }

    /// Emits the changes in an order that is valid at every step, applying each to the index.
    fn apply(self, root: &Path, index: &mut Index, watches: &mut dyn WatchSet) -> Outcome {
        let Self {
            mut moves,
            mut deletions,
            mut creations,
            updates,
        } = self;
        // Only deletions ask (and only a batch with moves can turn into one with deletions):
        // a burst of creations need not copy and hash every path once more.
        let arriving: HashSet<Vec<u8>> = if moves.is_empty() && deletions.is_empty() {
            HashSet::new()
        } else {
            moves
                .iter()
                .map(|planned| &planned.to)
                .chain(creations.iter().map(|(path, _)| path))
                .cloned()
                .collect()
        };
        let mut emitter = Emitter {
            root,
            index,
            watches,
            arriving,
            leaving: HashSet::new(),
            renamed: Vec::new(),
            known_dir: None,
            outcome: Outcome {
                changes: Vec::with_capacity(
                    moves.len() + deletions.len() + creations.len() + updates.len(),
                ),
                needs_rescan: false,
            },
        };
        // Children before parents.
        deletions.sort_unstable_by(|a, b| b.0.path.cmp(&a.0.path));
        // Parents before children.
        creations.sort_unstable_by(|a, b| a.0.cmp(&b.0));

        while !(moves.is_empty() && deletions.is_empty() && creations.is_empty()) {
            let mut progress = false;
            emitter.find_leaving(&moves, &deletions);
            let mut waiting = Vec::with_capacity(moves.len());
            for planned in moves.drain(..) {
                match emitter.try_move(&planned) {
                    Step::Done => progress = true,
                    Step::Wait => waiting.push(planned),
                    // The source is already gone: report what is there now as created.
                    Step::Drop => {
                        progress = true;
                        creations.push((planned.to, planned.entry));
                        creations.extend(planned.carried);
                        creations.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                    }
                }
            }
            moves = waiting;
            // The moves just emitted changed where the leaving entries are.
            emitter.find_leaving(&moves, &deletions);
            deletions.retain(|(old, entry)| match emitter.try_delete(old, entry) {
                Step::Done | Step::Drop => {
                    progress = true;
                    false
                }
                Step::Wait => true,
            });
            for (path, entry) in std::mem::take(&mut creations) {
                match emitter.try_create(path, entry) {
                    Ok(()) => progress = true,
                    Err(path) => creations.push((path, entry)),
                }
            }
            if progress {
                continue;
            }

            // Nothing could go: a cycle of moves (a swap through a temporary name) or a tree that
            // changed under the walk. Break the first move into a deletion and a creation.
            if let Some(planned) = moves.pop() {
                let (doomed, arrivals) = emitter.break_move(planned);
                deletions.extend(doomed);
                deletions.sort_unstable_by(|a, b| b.0.path.cmp(&a.0.path));
                creations.extend(arrivals);
                creations.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                continue;
            }
            tracing::warn!(
                deletions = deletions.len(),
                creations = creations.len(),
                "tree changed during reconciliation, rescanning"
            );
            emitter.outcome.needs_rescan = true;
            break;
        }

        for (path, entry) in updates {
            emitter.update(path, entry);
        }
        emitter.outcome
    }
}

/// Whether a planned change could be applied now.
enum Step {
    Done,
    Wait,
    /// Nothing left to do (or no longer possible) for this change.
    Drop,
}

struct Emitter<'a> {
    root: &'a Path,
    index: &'a mut Index,
    watches: &'a mut dyn WatchSet,
    /// Paths that a creation or a move of this batch fills again: their (new) watches stay.
    arriving: HashSet<Vec<u8>>,
    /// Where the index still holds entries that are to move away or be deleted, as of the start
    /// of the current round.
    leaving: HashSet<Vec<u8>>,
    /// Directory moves emitted so far in this batch, in order.
    renamed: Vec<(Vec<u8>, Vec<u8>)>,
    /// A path the index holds as a directory, until the next move or deletion: creations come
    /// sorted, so the files of one directory ask about the same parent one after the other.
    known_dir: Option<Vec<u8>>,
    outcome: Outcome,
}

impl Emitter<'_> {
    fn translate(&self, old: &OldPath) -> Vec<u8> {
        let mut path = old.path.clone();
        for (from, to) in &self.renamed[old.epoch..] {
            if path == *from || index::is_below(&path, from) {
                path = index::rebase(&path, from, to);
            }
        }
        path
    }

    fn is_dir(&self, path: &[u8]) -> bool {
        self.index
            .get(path)
            .is_some_and(|entry| entry.kind.is_dir())
    }

    /// Turns a move that cannot be placed into the deletion of its source (with everything the
    /// index holds below it) and the creation of what is at its destination.
    fn break_move(&mut self, planned: Move) -> (Vec<(OldPath, Entry)>, Vec<Found>) {
        // Entries already placed below the source in this batch go with it: a full
        // reconciliation afterwards reports what is really there.
        self.outcome.needs_rescan = true;
        tracing::debug!(from = ?String::from_utf8_lossy(&planned.from), "move cannot be placed, reporting deletion and creation");
        let from = self.translate(&OldPath {
            path: planned.from,
            epoch: 0,
        });
        let epoch = self.renamed.len();
        let mut doomed: Vec<(OldPath, Entry)> = self
            .index
            .below(&from)
            .map(|(path, entry)| {
                (
                    OldPath {
                        path: path.to_vec(),
                        epoch,
                    },
                    entry,
                )
            })
            .collect();
        if let Some(entry) = self.index.get(&from) {
            doomed.push((OldPath { path: from, epoch }, entry));
        }
        let mut arrivals = planned.carried;
        arrivals.push((planned.to, planned.entry));
        (doomed, arrivals)
    }

    /// Records where the entries still to move away or be deleted are now.
    fn find_leaving(&mut self, moves: &[Move], deletions: &[(OldPath, Entry)]) {
        let sources = moves.iter().map(|planned| {
            self.translate(&OldPath {
                path: planned.from.clone(),
                epoch: 0,
            })
        });
        let deleted = deletions.iter().map(|(old, _)| self.translate(old));
        self.leaving = sources.chain(deleted).collect();
    }

    /// Whether `path` would land below an entry that is still to move away or be deleted: the
    /// index holds the old directory there, not the one `path` belongs in.
    fn lands_in_leaving(&self, path: &[u8]) -> bool {
        let mut current = path;
        while let Some(parent) = index::parent(current) {
            if self.leaving.contains(parent) {
                return true;
            }
            current = parent;
        }
        false
    }

    fn try_move(&mut self, planned: &Move) -> Step {
        let from = self.translate(&OldPath {
            path: planned.from.clone(),
            epoch: 0,
        });
        let Some(moving) = self.index.get(&from) else {
            return Step::Drop;
        };
        let parent_ready = index::parent(&planned.to).is_some_and(|parent| self.is_dir(parent));
        if self.index.contains(&planned.to)
            || !parent_ready
            || index::is_below(&planned.to, &from)
            || self.lands_in_leaving(&planned.to)
        {
            return Step::Wait;
        }
        self.known_dir = None;
        self.index.rename(&from, &planned.to);
        if planned.entry.links > 1 && !planned.entry.kind.is_dir() {
            self.watches.unwatch(&scan::absolute(self.root, &from));
            self.watches
                .watch_file(&scan::absolute(self.root, &planned.to), planned.entry.id);
        }
        // The move says where the entry went, not its new attributes: the update that `pair`
        // planned says those, and needs the old ones in the index to compare with.
        self.index.insert(
            &planned.to,
            Entry {
                attributes: moving.attributes,
                ..planned.entry
            },
        );
        if planned.entry.kind.is_dir() {
            self.renamed.push((from.clone(), planned.to.clone()));
        }
        self.outcome.changes.push(Change::Moved {
            from,
            to: planned.to.clone(),
            entry: planned.entry,
        });
        Step::Done
    }

    fn try_delete(&mut self, old: &OldPath, _entry: &Entry) -> Step {
        let path = self.translate(old);
        if !self.index.contains(&path) {
            return Step::Drop;
        }
        if self.index.has_children(&path) {
            return Step::Wait;
        }
        self.known_dir = None;
        let entry = self.index.remove(&path).expect("checked above");
        if (entry.kind.is_dir() || entry.links > 1) && !self.arriving.contains(&path) {
            self.watches.unwatch(&scan::absolute(self.root, &path));
        }
        self.outcome.changes.push(Change::Deleted { path, entry });
        Step::Done
    }

    /// Creates `entry` at `path` if it can be now; hands the path back if it must wait.
    fn try_create(&mut self, path: Vec<u8>, entry: Entry) -> Result<(), Vec<u8>> {
        let parent_ready = index::parent(&path).is_some_and(|parent| {
            if self.known_dir.as_deref() == Some(parent) {
                return true;
            }
            let ready = self.is_dir(parent);
            if ready {
                self.known_dir = Some(parent.to_vec());
            }
            ready
        });
        if !parent_ready || self.lands_in_leaving(&path) || !self.index.insert_new(&path, entry) {
            return Err(path);
        }
        if entry.links > 1 && !entry.kind.is_dir() {
            self.watches
                .watch_file(&scan::absolute(self.root, &path), entry.id);
        }
        self.outcome.changes.push(Change::Created { path, entry });
        Ok(())
    }

    fn update(&mut self, path: Vec<u8>, entry: Entry) {
        let Some(previous) = self.index.get(&path) else {
            return;
        };
        if !previous.is_updated_by(&entry) {
            return;
        }
        self.index.insert(&path, entry);
        let abs = scan::absolute(self.root, &path);
        self.outcome.changes.push(Change::Updated {
            path,
            entry,
            previous,
        });
        // A directory changed only its attributes: its watch stays, and it has no other names.
        if entry.kind.is_dir() {
            return;
        }
        if entry.links > 1 {
            self.watches.watch_file(&abs, entry.id);
            self.update_other_names(entry);
        } else if previous.links > 1 {
            // Another file with one name took this one's place.
            self.watches.unwatch(&abs);
        }
    }

    /// A file with several names changed through one of them: its other names in the tree
    /// read differently too (content, and attributes, which belong to the file, not the name).
    fn update_other_names(&mut self, entry: Entry) {
        for path in self.index.paths_of(entry.id) {
            let Some(previous) = self.index.get(&path) else {
                continue;
            };
            if previous.content_differs(&entry) || previous.attributes_differ(&entry) {
                self.watches
                    .watch_file(&scan::absolute(self.root, &path), entry.id);
                self.index.insert(&path, entry);
                self.outcome.changes.push(Change::Updated {
                    path,
                    entry,
                    previous,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests;

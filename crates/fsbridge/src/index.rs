//! The in-memory index of the watched tree.
//!
//! The index maps each entry's path, relative to the target, to what fsbridge last reported about
//! it: kind, size, modification time, device and inode, and, only when they are reported (#6),
//! permission bits and owner. It is what the reconciler compares the file system against, so it
//! must always equal the tree as described by the events emitted so far: every mutation here
//! corresponds to exactly one emitted event.
//!
//! Keys are raw path bytes with `/` separators, the target itself being the empty key. A sorted
//! map makes a subtree one contiguous range (`a/` up to `a0`, since `0` follows `/`), and sorted
//! order puts every parent before its children. The index holds plain data only, no handles.
//!
//! Memory: the map's values are what a large tree costs, so an index that does not keep
//! attributes stores a [`Record`] (48 bytes) rather than a whole [`Entry`] (64 bytes); see
//! `entries_stay_small`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::Metadata;
use std::ops::Bound;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use crate::event::{Attributes, FileType};

/// The kind of an indexed entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Dir,
    File(FileType),
}

impl Kind {
    pub(crate) fn is_dir(self) -> bool {
        matches!(self, Self::Dir)
    }
}

/// What identifies an entry across renames: device, inode and birth time.
///
/// Inode numbers are reused at once: a file deleted and another created a moment later often
/// share one. The birth time (`statx` btime, where the file system keeps it) tells them apart,
/// so that a deletion and an unrelated creation are not mistaken for a rename.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FileId {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    /// Nanoseconds since the Unix epoch; 0 where the file system does not say.
    pub(crate) birth: u64,
}

/// What the index knows about one entry, or what `lstat` says of it now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) kind: Kind,
    pub(crate) id: FileId,
    pub(crate) size: u64,
    pub(crate) mtime_sec: i64,
    pub(crate) mtime_nsec: u32,
    /// The number of names the file has (hard links), saturated; writes through one name
    /// change them all.
    pub(crate) links: u16,
    /// Permission bits and owner. Always known for an entry just looked at; `None` in what an
    /// index that does not keep them hands out, and then they never differ.
    pub(crate) attributes: Option<Attributes>,
}

impl Entry {
    /// The entry described by `lstat` metadata.
    pub(crate) fn from_metadata(metadata: &Metadata) -> Self {
        let file_type = metadata.file_type();
        let kind = if file_type.is_dir() {
            Kind::Dir
        } else if file_type.is_symlink() {
            Kind::File(FileType::Symlink)
        } else if file_type.is_fifo() {
            Kind::File(FileType::Fifo)
        } else if file_type.is_socket() {
            Kind::File(FileType::Socket)
        } else if file_type.is_block_device() || file_type.is_char_device() {
            Kind::File(FileType::Device)
        } else {
            Kind::File(FileType::Regular)
        };
        Self {
            kind,
            id: FileId {
                dev: metadata.dev(),
                ino: metadata.ino(),
                birth: birth_nanos(metadata),
            },
            size: if kind.is_dir() { 0 } else { metadata.size() },
            mtime_sec: metadata.mtime(),
            mtime_nsec: u32::try_from(metadata.mtime_nsec()).unwrap_or(0),
            links: u16::try_from(metadata.nlink()).unwrap_or(u16::MAX),
            attributes: Some(Attributes {
                mode: metadata.mode() & 0o7777,
                uid: metadata.uid(),
                gid: metadata.gid(),
            }),
        }
    }

    /// Whether the same file now reads differently (size, modification time or file type).
    /// Directories never differ this way: their own changes are their children's events.
    pub(crate) fn content_differs(&self, other: &Self) -> bool {
        !self.kind.is_dir()
            && (self.size != other.size
                || self.mtime_sec != other.mtime_sec
                || self.mtime_nsec != other.mtime_nsec
                || self.kind != other.kind)
    }

    /// Whether the permission bits or the owner differ; never when either side does not know
    /// them (attributes are not reported).
    pub(crate) fn attributes_differ(&self, other: &Self) -> bool {
        matches!((self.attributes, other.attributes), (Some(mine), Some(theirs)) if mine != theirs)
    }

    /// Whether `now`, found where this entry is indexed, is an update of it: a file replaced,
    /// rewritten or retyped, or (where attributes are kept) the same file or directory with
    /// another mode or owner. A directory replaced by another is no update: it is a deletion and
    /// a creation.
    pub(crate) fn is_updated_by(&self, now: &Self) -> bool {
        match (self.kind.is_dir(), now.kind.is_dir()) {
            (false, false) => {
                self.id != now.id || self.content_differs(now) || self.attributes_differ(now)
            }
            (true, true) => self.id == now.id && self.attributes_differ(now),
            _ => false,
        }
    }

    /// Whether `now` differs from this entry in its permission bits or owner only.
    pub(crate) fn only_attributes_differ(&self, now: &Self) -> bool {
        self.id == now.id && !self.content_differs(now) && self.attributes_differ(now)
    }
}

/// An entry as an index that does not keep attributes stores it: [`Entry`] without them.
///
/// The index of a large tree is mostly these values, and the startup benchmark allows 25 MB for
/// 100,000 files: the 16 bytes that attributes would add to each are paid only by monitors that
/// report them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Record {
    kind: Kind,
    id: FileId,
    size: u64,
    mtime_sec: i64,
    mtime_nsec: u32,
    links: u16,
}

/// How the map keeps an entry: as a [`Record`], or as the whole [`Entry`].
trait Stored: Copy {
    fn store(entry: Entry) -> Self;
    fn entry(&self) -> Entry;
}

impl Stored for Record {
    fn store(entry: Entry) -> Self {
        let Entry {
            kind,
            id,
            size,
            mtime_sec,
            mtime_nsec,
            links,
            attributes: _,
        } = entry;
        Self {
            kind,
            id,
            size,
            mtime_sec,
            mtime_nsec,
            links,
        }
    }

    fn entry(&self) -> Entry {
        let Self {
            kind,
            id,
            size,
            mtime_sec,
            mtime_nsec,
            links,
        } = *self;
        Entry {
            kind,
            id,
            size,
            mtime_sec,
            mtime_nsec,
            links,
            attributes: None,
        }
    }
}

impl Stored for Entry {
    fn store(entry: Entry) -> Self {
        entry
    }

    fn entry(&self) -> Entry {
        *self
    }
}

/// The birth time of the entry in nanoseconds since the epoch, or 0 where it is not known.
fn birth_nanos(metadata: &Metadata) -> u64 {
    metadata
        .created()
        .ok()
        .and_then(|birth| birth.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|since| u64::try_from(since.as_nanos()).ok())
        .unwrap_or(0)
}

/// The parent of a relative path (the empty path for a top-level entry), or `None` for the
/// target itself.
pub(crate) fn parent(path: &[u8]) -> Option<&[u8]> {
    if path.is_empty() {
        return None;
    }
    Some(
        path.iter()
            .rposition(|&byte| byte == b'/')
            .map_or(&[][..], |slash| &path[..slash]),
    )
}

/// The last component of a relative path.
pub(crate) fn name(path: &[u8]) -> &[u8] {
    path.iter()
        .rposition(|&byte| byte == b'/')
        .map_or(path, |slash| &path[slash + 1..])
}

/// `parent` joined with one more component.
pub(crate) fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = Vec::with_capacity(parent.len() + 1 + name.len());
    path.extend_from_slice(parent);
    if !parent.is_empty() {
        path.push(b'/');
    }
    path.extend_from_slice(name);
    path
}

/// Whether `path` lies strictly below `ancestor`.
pub(crate) fn is_below(path: &[u8], ancestor: &[u8]) -> bool {
    if ancestor.is_empty() {
        return !path.is_empty();
    }
    path.len() > ancestor.len() && path.starts_with(ancestor) && path[ancestor.len()] == b'/'
}

/// `path` with its prefix `from` replaced by `to`; `path` must be `from` or lie below it.
pub(crate) fn rebase(path: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let rest = &path[from.len()..];
    if to.is_empty() {
        // Only the target itself can be rebased onto the root, and it has no rest.
        return rest.strip_prefix(b"/").unwrap_or(rest).to_vec();
    }
    let mut rebased = Vec::with_capacity(to.len() + rest.len() + 1);
    rebased.extend_from_slice(to);
    if from.is_empty() && !rest.is_empty() {
        rebased.push(b'/');
    }
    rebased.extend_from_slice(rest);
    rebased
}

/// An index key: a relative path.
type Key = Box<[u8]>;

/// A range of index keys.
type KeyRange = (Bound<Key>, Bound<Key>);

/// The bounds of the keys strictly below `path`.
fn below_range(path: &[u8]) -> KeyRange {
    if path.is_empty() {
        return (Bound::Excluded(Box::default()), Bound::Unbounded);
    }
    let mut start = path.to_vec();
    start.push(b'/');
    let mut end = path.to_vec();
    end.push(b'/' + 1);
    (Bound::Included(start.into()), Bound::Excluded(end.into()))
}

/// The map of an index, with or without attributes.
#[derive(Debug)]
enum Entries {
    Plain(BTreeMap<Key, Record>),
    WithAttributes(BTreeMap<Key, Entry>),
}

impl Default for Entries {
    fn default() -> Self {
        Self::Plain(BTreeMap::new())
    }
}

/// Runs `$body` with `$map` bound to the index's map, whichever kind it is.
macro_rules! with_map {
    ($entries:expr, $map:ident => $body:expr) => {
        match $entries {
            Entries::Plain($map) => $body,
            Entries::WithAttributes($map) => $body,
        }
    };
}

/// Every entry of `map` in `range`, as entries.
fn entries_in<V: Stored>(
    map: &BTreeMap<Key, V>,
    range: KeyRange,
) -> impl DoubleEndedIterator<Item = (&[u8], Entry)> {
    map.range(range)
        .map(|(key, stored)| (&**key, stored.entry()))
}

/// Moves `from` and everything below it to `to`.
fn rename_in<V: Stored>(map: &mut BTreeMap<Key, V>, from: &[u8], to: &[u8]) {
    let moved: Vec<Key> = map
        .range(below_range(from))
        .map(|(key, _)| key.clone())
        .collect();
    if let Some(stored) = map.remove(from) {
        map.insert(to.into(), stored);
    }
    for key in moved {
        if let Some(stored) = map.remove(&key) {
            map.insert(rebase(&key, from, to).into(), stored);
        }
    }
}

/// The watched tree as last reported.
#[derive(Debug, Default)]
pub(crate) struct Index {
    entries: Entries,
    /// Directories whose entries could not be read: what lies below them is unknown, and they
    /// are read again when touched or polled.
    unreadable: BTreeSet<Box<[u8]>>,
}

impl Index {
    /// An empty index that keeps each entry's permission bits and owner (`true`), so that their
    /// changes can be reported, or forgets them (`false`, the default).
    pub(crate) fn new(attributes: bool) -> Self {
        let entries = if attributes {
            Entries::WithAttributes(BTreeMap::new())
        } else {
            Entries::Plain(BTreeMap::new())
        };
        Self {
            entries,
            unreadable: BTreeSet::new(),
        }
    }

    pub(crate) fn get(&self, path: &[u8]) -> Option<Entry> {
        with_map!(&self.entries, map => map.get(path).map(Stored::entry))
    }

    pub(crate) fn contains(&self, path: &[u8]) -> bool {
        with_map!(&self.entries, map => map.contains_key(path))
    }

    pub(crate) fn insert(&mut self, path: &[u8], entry: Entry) {
        with_map!(&mut self.entries, map => {
            map.insert(path.into(), Stored::store(entry));
        });
    }

    /// Inserts with a key the caller no longer needs, saving a copy.
    pub(crate) fn insert_owned(&mut self, path: Vec<u8>, entry: Entry) {
        with_map!(&mut self.entries, map => {
            map.insert(path.into_boxed_slice(), Stored::store(entry));
        });
    }

    /// Inserts `entry` at `path` unless the path is taken; returns whether it did. One search
    /// where `contains` and then `insert` take two.
    pub(crate) fn insert_new(&mut self, path: &[u8], entry: Entry) -> bool {
        with_map!(&mut self.entries, map => match map.entry(path.into()) {
            std::collections::btree_map::Entry::Vacant(vacant) => {
                vacant.insert(Stored::store(entry));
                true
            }
            std::collections::btree_map::Entry::Occupied(_) => false,
        })
    }

    pub(crate) fn remove(&mut self, path: &[u8]) -> Option<Entry> {
        with_map!(&mut self.entries, map => map.remove(path).map(|stored| stored.entry()))
    }

    pub(crate) fn len(&self) -> usize {
        with_map!(&self.entries, map => map.len())
    }

    pub(crate) fn clear(&mut self) {
        with_map!(&mut self.entries, map => map.clear());
        self.unreadable.clear();
    }

    /// Whether the directory `path` could not be read when it was last walked.
    pub(crate) fn is_unreadable(&self, path: &[u8]) -> bool {
        self.unreadable.contains(path)
    }

    /// Whether any directory could not be read.
    pub(crate) fn has_unreadable(&self) -> bool {
        !self.unreadable.is_empty()
    }

    /// Records the outcome of a walk of `top`: exactly the directories in `unreadable` at or
    /// below it could not be read.
    pub(crate) fn set_unreadable(&mut self, top: &[u8], unreadable: Vec<Vec<u8>>) {
        self.unreadable
            .retain(|path| !(**path == *top || is_below(path, top)));
        self.unreadable
            .extend(unreadable.into_iter().map(Vec::into_boxed_slice));
    }

    /// Whether anything is indexed strictly below `path`.
    pub(crate) fn has_children(&self, path: &[u8]) -> bool {
        with_map!(&self.entries, map => map.range(below_range(path)).next().is_some())
    }

    /// Every entry strictly below `path`, parents before children.
    pub(crate) fn below(
        &self,
        path: &[u8],
    ) -> Box<dyn DoubleEndedIterator<Item = (&[u8], Entry)> + '_> {
        // Boxed, since the two kinds of map iterate differently: one allocation per call, which
        // walks a subtree anyway.
        with_map!(&self.entries, map => Box::new(entries_in(map, below_range(path))))
    }

    /// Every entry, parents before children.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> Box<dyn DoubleEndedIterator<Item = (&[u8], Entry)> + '_> {
        let everything = (Bound::Unbounded, Bound::Unbounded);
        with_map!(&self.entries, map => Box::new(entries_in(map, everything)))
    }

    /// Every indexed path of the entry `id` (its hard links), in no particular order. Linear in
    /// the size of the index: for files that have several names only.
    pub(crate) fn paths_of(&self, id: FileId) -> Vec<Vec<u8>> {
        with_map!(&self.entries, map => map
            .iter()
            .filter(|(_, stored)| stored.entry().id == id)
            .map(|(path, _)| path.to_vec())
            .collect())
    }

    /// Moves `from` and everything below it to `to`.
    pub(crate) fn rename(&mut self, from: &[u8], to: &[u8]) {
        with_map!(&mut self.entries, map => rename_in(map, from, to));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: Kind, ino: u64) -> Entry {
        Entry {
            kind,
            id: FileId {
                dev: 1,
                ino,
                birth: 0,
            },
            size: 0,
            mtime_sec: 0,
            mtime_nsec: 0,
            links: 1,
            attributes: Some(Attributes {
                mode: 0o644,
                uid: 0,
                gid: 0,
            }),
        }
    }

    #[test]
    fn parent_of_nested_top_level_and_root() {
        assert_eq!(parent(b"a/b/c"), Some(&b"a/b"[..]));
        assert_eq!(parent(b"a"), Some(&b""[..]));
        assert_eq!(parent(b""), None);
    }

    #[test]
    fn subtree_excludes_siblings_sharing_a_prefix() {
        let mut index = Index::default();
        for (ino, path) in [&b"a"[..], b"a-b", b"a/b", b"a/b/c", b"a0", b"ab"]
            .iter()
            .enumerate()
        {
            index.insert(path, entry(Kind::Dir, ino as u64));
        }

        let below: Vec<&[u8]> = index.below(b"a").map(|(path, _)| path).collect();

        assert_eq!(below, vec![&b"a/b"[..], b"a/b/c"]);
    }

    #[test]
    fn rename_moves_the_whole_subtree() {
        let mut index = Index::default();
        index.insert(b"d", entry(Kind::Dir, 1));
        index.insert(b"d/x", entry(Kind::File(FileType::Regular), 2));
        index.insert(b"d/y/z", entry(Kind::File(FileType::Regular), 3));
        index.insert(b"dz", entry(Kind::File(FileType::Regular), 4));

        index.rename(b"d", b"e/f");

        let keys: Vec<&[u8]> = index.iter().map(|(path, _)| path).collect();
        assert_eq!(keys, vec![&b"dz"[..], b"e/f", b"e/f/x", b"e/f/y/z"]);
    }

    /// The memory budget (#6): attributes cost only the indexes that keep them. A leaf of the
    /// map holds 11 keys (16 bytes each) and 11 values: 720 bytes with [`Record`] values (as
    /// before attributes existed), 896 with [`Entry`] values.
    #[test]
    fn entries_stay_small() {
        let record = std::mem::size_of::<Record>();
        let entry = std::mem::size_of::<Entry>();

        assert_eq!(record, 48);
        assert_eq!(entry, 64);
    }

    #[test]
    fn an_index_without_attributes_forgets_them() {
        let mut plain = Index::default();
        let mut keeping = Index::new(true);
        let file = entry(Kind::File(FileType::Regular), 1);

        plain.insert(b"f", file);
        keeping.insert(b"f", file);

        assert_eq!(plain.get(b"f").unwrap().attributes, None);
        assert_eq!(keeping.get(b"f"), Some(file));
    }

    #[test]
    fn attributes_differ_only_where_both_are_known() {
        let before = entry(Kind::File(FileType::Regular), 1);
        let mut now = before;
        now.attributes = Some(Attributes {
            mode: 0o600,
            uid: 0,
            gid: 0,
        });
        let forgotten = Entry {
            attributes: None,
            ..before
        };

        assert!(before.is_updated_by(&now));
        assert!(before.only_attributes_differ(&now));
        assert!(!forgotten.is_updated_by(&now));
    }

    #[test]
    fn a_directory_is_updated_only_by_its_own_attributes() {
        let before = entry(Kind::Dir, 1);
        let mut chmodded = before;
        chmodded.attributes = Some(Attributes {
            mode: 0o700,
            uid: 0,
            gid: 0,
        });
        let mut replaced = chmodded;
        replaced.id.ino = 2;

        assert!(before.is_updated_by(&chmodded));
        assert!(!before.is_updated_by(&replaced));
        assert!(!before.is_updated_by(&Entry { size: 9, ..before }));
    }

    #[test]
    fn is_below_needs_a_separator() {
        assert!(is_below(b"a/b", b"a"));
        assert!(!is_below(b"ab", b"a"));
        assert!(!is_below(b"a", b"a"));
        assert!(is_below(b"a", b""));
        assert!(!is_below(b"", b""));
    }
}

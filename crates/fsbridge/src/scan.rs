//! Reading the real tree: `lstat` of one path and walks of whole subtrees.
//!
//! Everything here looks at the file system as it is now and never follows symbolic links. A walk
//! asks the [`WatchSet`] to watch each directory *before* reading it, so that an entry created
//! while the walk runs is either seen by the walk or reported by the new watch, never neither.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use crate::index::{self, Entry, FileId};

/// Where directory watches are kept; the reconciler calls it as it walks and deletes directories.
pub(crate) trait WatchSet {
    /// Called before a directory's entries are read, so that later changes in it are hinted.
    fn watch_dir(&mut self, abs: &Path, id: FileId);

    /// Called for a file that has several names: a write through a name elsewhere (outside the
    /// tree, or in another directory) reaches only a watch on the file itself.
    fn watch_file(&mut self, abs: &Path, id: FileId);

    /// Called when a watched directory or file left the tree.
    fn unwatch(&mut self, abs: &Path);

    /// Whether the entry at `rel` is left out of the tree (`--ignore`, `--gitignore`): not
    /// walked, not watched, not reported. `is_dir` says whether the entry is a directory, for
    /// the patterns that match only directories. Default: nothing is.
    fn ignores(&self, _rel: &[u8], _is_dir: &dyn Fn() -> bool) -> bool {
        false
    }
}

/// A watch set that watches nothing, for tests of the reconciler alone.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct NoWatches;

#[cfg(test)]
impl WatchSet for NoWatches {
    fn watch_dir(&mut self, _abs: &Path, _id: FileId) {}

    fn watch_file(&mut self, _abs: &Path, _id: FileId) {}

    fn unwatch(&mut self, _abs: &Path) {}
}

/// `path` with `.` and `..` resolved by their names alone, without looking at the disk.
pub(crate) fn lexically_plain(path: &Path) -> PathBuf {
    let mut plain = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                plain.pop();
            }
            Component::CurDir => {}
            other => plain.push(other),
        }
    }
    plain
}

/// The absolute path of `rel` below `root`.
///
/// Allocated once at its final size: `Path::join` copies `root` and then grows the copy, two
/// allocations for each path of a burst.
pub(crate) fn absolute(root: &Path, rel: &[u8]) -> PathBuf {
    let mut path = PathBuf::new();
    absolute_in(root, rel, &mut path);
    path
}

/// Like [`absolute`], built in `path` (whose allocation is reused).
pub(crate) fn absolute_in(root: &Path, rel: &[u8], path: &mut PathBuf) {
    let mut bytes = std::mem::take(path).into_os_string().into_vec();
    let root = root.as_os_str().as_bytes();
    bytes.clear();
    bytes.reserve_exact(root.len() + 1 + rel.len());
    bytes.extend_from_slice(root);
    if !rel.is_empty() {
        if !root.ends_with(b"/") {
            bytes.push(b'/');
        }
        bytes.extend_from_slice(rel);
    }
    *path = PathBuf::from(OsString::from_vec(bytes));
}

/// The entry at `abs` as `lstat` sees it; `None` when nothing is there (also when a parent is
/// not a directory any more).
pub(crate) fn lstat(abs: &Path) -> io::Result<Option<Entry>> {
    match std::fs::symlink_metadata(abs) {
        Ok(metadata) => Ok(Some(Entry::from_metadata(&metadata))),
        Err(error) if is_gone(&error) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Whether an error only says that the path is not there (any more).
pub(crate) fn is_gone(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// The result of walking a subtree.
#[derive(Debug, Default)]
pub(crate) struct Walk {
    /// Every entry found below the start, in no particular order.
    pub(crate) entries: Vec<(Vec<u8>, Entry)>,
    /// Directories whose entries could not be read; what lies below them is unknown.
    pub(crate) unreadable: Vec<Vec<u8>>,
}

/// Walks everything below the directory `rel` (whose entry is `dir`), watching each directory
/// before reading it. Entries that vanish during the walk are left out.
pub(crate) fn walk(root: &Path, rel: &[u8], dir: Entry, watches: &mut dyn WatchSet) -> Walk {
    let mut entries = Vec::new();
    let unreadable = walk_with(root, rel, dir, watches, |path, entry| {
        entries.push((path, entry));
    });
    Walk {
        entries,
        unreadable,
    }
}

/// Walks like [`walk`], handing each entry to `visit` (parents before their children) instead of
/// collecting them; returns the directories that could not be read.
pub(crate) fn walk_with(
    root: &Path,
    rel: &[u8],
    dir: Entry,
    watches: &mut dyn WatchSet,
    mut visit: impl FnMut(Vec<u8>, Entry),
) -> Vec<Vec<u8>> {
    let mut unreadable = Vec::new();
    let mut pending = vec![(rel.to_vec(), dir.id)];
    while let Some((dir_rel, id)) = pending.pop() {
        let dir_abs = absolute(root, &dir_rel);
        watches.watch_dir(&dir_abs, id);
        let reader = match std::fs::read_dir(&dir_abs) {
            Ok(reader) => reader,
            Err(error) if is_gone(&error) => continue,
            Err(error) => {
                tracing::warn!(path = %dir_abs.display(), %error, "cannot read directory");
                unreadable.push(dir_rel);
                continue;
            }
        };
        for child in reader {
            let Ok(child) = child else { continue };
            let metadata = match child.metadata() {
                Ok(metadata) => metadata,
                Err(error) => {
                    tracing::trace!(path = %child.path().display(), %error, "skipped entry");
                    continue;
                }
            };
            let entry = Entry::from_metadata(&metadata);
            let child_rel = index::join(&dir_rel, child.file_name().as_bytes());
            if watches.ignores(&child_rel, &|| entry.kind.is_dir()) {
                continue;
            }
            if entry.kind.is_dir() {
                pending.push((child_rel.clone(), entry.id));
            } else if entry.links > 1 {
                watches.watch_file(&child.path(), entry.id);
            }
            visit(child_rel, entry);
        }
    }
    unreadable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_joins_like_path_join() {
        let root = Path::new("/srv/in");

        assert_eq!(absolute(root, b""), root);
        assert_eq!(absolute(root, b"a/b"), root.join("a/b"));
        assert_eq!(absolute(Path::new("/"), b"a"), Path::new("/a"));
    }
}

//! Finding a command's target beneath the root, with the kernel doing the resolution.
//!
//! Two steps. First, [`relative_path`] checks the path as text: not empty, no NUL byte, no
//! `..`, not the root itself, and an absolute path only when it lies lexically inside the root.
//! Second, [`locate`] opens the target's directory with `openat2(2)` and
//! `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`, relative to a descriptor of the root. The kernel
//! then refuses, atomically with the lookup itself, any symbolic link or `..` that would leave
//! the root, so a link swapped in by another process while a command runs cannot redirect it.
//! Every later step works on names relative to that directory descriptor, one component at a
//! time, with `O_NOFOLLOW` or no-follow system calls, so nothing is resolved twice.
//!
//! # Why openat2 through rustix, not cap-std
//!
//! cap-std offers the same guarantee (it uses openat2 itself where the kernel has it), but
//! hides the descriptors that the rest of the writer needs: `flock` on the target, `renameat2`
//! with `RENAME_NOREPLACE`, `fchown`, `fallocate`, and a directory descriptor to fsync. Using
//! rustix keeps every system call visible in one small module, adds no dependency the workspace
//! does not already have, and makes the one requirement explicit: Linux 5.6 or later.
//!
//! The final component is looked up without following it. A symbolic link there is checked
//! with a second beneath-the-root lookup: one that leads outside is an `escape`; one that stays
//! inside is followed for `append` and `overwrite` (so the file it points to is written, as a
//! shell redirection would), removed itself by `delete`, and is in the way of `create`.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

use super::error::WriteError;
use super::ops::Settings;

/// How often a lookup that the kernel answered with `EAGAIN` (a rename or mount raced with
/// the lookup of `..`) is retried before the command is `busy`.
const LOOKUP_ATTEMPTS: usize = 32;

/// How many symbolic links a final component may go through before the command is `invalid`.
const MAX_LINK_HOPS: usize = 16;

/// Checks `given` as text and returns it relative to `root`, made of plain names only.
///
/// `root` must be absolute and free of `..`: the writer makes it so when it is built.
pub(crate) fn relative_path(root: &Path, given: &Path) -> Result<PathBuf, WriteError> {
    let bytes = given.as_os_str().as_bytes();
    if bytes.is_empty() {
        return Err(WriteError::invalid(given, "the path is empty"));
    }
    if bytes.contains(&0) {
        return Err(WriteError::invalid(given, "the path contains a NUL byte"));
    }
    let relative = if given.is_absolute() {
        // The root may be given with `.` or `..` in it (`--root /srv/x/../out`): an absolute
        // path under its plain form is inside it too.
        let plain = crate::scan::lexically_plain(root);
        given
            .strip_prefix(root)
            .or_else(|_| given.strip_prefix(&plain))
            .map_err(|_| {
                WriteError::escape(
                    given,
                    format!("an absolute path outside the root {}", root.display()),
                )
            })?
    } else {
        given
    };

    let mut names = PathBuf::new();
    for component in relative.components() {
        match component {
            Component::Normal(name) => names.push(name),
            Component::CurDir => {}
            Component::ParentDir if names.as_os_str().is_empty() => {
                return Err(WriteError::escape(given, "`..` leads outside the root"));
            }
            Component::ParentDir => {
                return Err(WriteError::invalid(
                    given,
                    "`..` is not allowed in a path; name the directory directly",
                ));
            }
            Component::RootDir | Component::Prefix(_) => {
                unreachable!("a path stripped of the root's prefix has no root component")
            }
        }
    }
    if names.as_os_str().is_empty() {
        return Err(WriteError::invalid(given, "the path names the root itself"));
    }
    Ok(names)
}

/// Opens the root directory, which must exist: the writer never creates it.
pub(crate) fn open_root(root: &Path) -> Result<OwnedFd, WriteError> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    rustix::fs::open(root, flags, Mode::empty()).map_err(|errno| match errno {
        Errno::NOENT => WriteError::NotFound {
            path: root.to_path_buf(),
            reason: "the root directory does not exist",
        },
        Errno::NOTDIR => WriteError::NotFound {
            path: root.to_path_buf(),
            reason: "the root is not a directory",
        },
        other => WriteError::from_errno(root, other),
    })
}

/// `openat2` beneath `root`, retried while the kernel reports a race with `EAGAIN`.
pub(crate) fn open_beneath(
    root: impl AsFd,
    relative: &Path,
    flags: OFlags,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    let relative = if relative.as_os_str().is_empty() {
        Path::new(".")
    } else {
        relative
    };
    let mut attempts = 0;
    loop {
        match rustix::fs::openat2(&root, relative, flags | OFlags::CLOEXEC, mode, resolve) {
            Err(Errno::AGAIN | Errno::INTR) if attempts < LOOKUP_ATTEMPTS => attempts += 1,
            result => return result,
        }
    }
}

/// Opens the directory `relative` beneath the root as an `O_PATH` descriptor, creating it and
/// its missing parents when `create` is set (and syncing their parents when `fsync` is set).
pub(crate) fn open_dir(
    root: &OwnedFd,
    relative: &Path,
    create: bool,
    settings: Settings<'_>,
    shown: &Path,
) -> Result<OwnedFd, WriteError> {
    let flags = OFlags::PATH | OFlags::DIRECTORY;
    match open_beneath(root, relative, flags, Mode::empty()) {
        Ok(dir) => return Ok(dir),
        Err(Errno::NOENT) if create => {}
        Err(Errno::NOENT) => {
            return Err(WriteError::NotFound {
                path: shown.to_path_buf(),
                reason: "its directory does not exist",
            });
        }
        Err(errno) => return Err(dir_error(shown, errno)),
    }

    // Some directory is missing: walk down from the root, creating each missing one with a
    // single-name mkdirat in the directory found beneath the root just before.
    let mut prefix = PathBuf::new();
    let mut dir = open_beneath(root, &prefix, flags, Mode::empty())
        .map_err(|errno| WriteError::from_errno(shown, errno))?;
    for component in relative.components() {
        prefix.push(component);
        let name = component.as_os_str();
        match open_beneath(root, &prefix, flags, Mode::empty()) {
            Ok(next) => dir = next,
            Err(Errno::NOENT) => {
                let place = settings.creating(&dir, name);
                let made = match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o777)) {
                    Ok(()) => true,
                    // Another writer made it first: fine.
                    Err(Errno::EXIST) => false,
                    Err(errno) => {
                        settings.not_created(place.as_ref());
                        return Err(dir_error(shown, errno));
                    }
                };
                let next = match open_beneath(root, &prefix, flags, Mode::empty()) {
                    Ok(next) => next,
                    Err(errno) => {
                        settings.not_created(place.as_ref());
                        return Err(dir_error(shown, errno));
                    }
                };
                if made {
                    // Recorded before the (slow) sync: a monitor may look at it now.
                    settings.created(&next, place);
                    if settings.fsync {
                        sync_dir(&dir).map_err(|errno| WriteError::from_errno(shown, errno))?;
                    }
                } else {
                    settings.not_created(place.as_ref());
                }
                dir = next;
            }
            Err(errno) => return Err(dir_error(shown, errno)),
        }
    }
    Ok(dir)
}

/// The meaning of an error while opening or creating a directory of the path.
fn dir_error(shown: &Path, errno: Errno) -> WriteError {
    match errno {
        Errno::NOTDIR | Errno::EXIST => WriteError::Exists {
            path: shown.to_path_buf(),
            reason: "a file is in the way of a directory in the path",
        },
        other => WriteError::from_errno(shown, other),
    }
}

/// Flushes a directory's entries to disk (`dir` may be an `O_PATH` descriptor).
pub(crate) fn sync_dir(dir: &OwnedFd) -> Result<(), Errno> {
    match rustix::fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(readable) => rustix::fs::fsync(readable),
        // A directory we may search but not read cannot be opened for fsync; its entries reach
        // the disk with the file system's next commit.
        Err(Errno::ACCESS) => Ok(()),
        Err(errno) => Err(errno),
    }
}

/// A command's target: its directory, opened beneath the root, and its name there.
#[derive(Debug)]
pub(crate) struct Target {
    /// The directory holding the target (`O_PATH`).
    pub(crate) dir: OwnedFd,
    /// The target's name in `dir`: one plain component.
    pub(crate) name: OsString,
    /// What is at the name now, not following a symbolic link; `None` when nothing is.
    pub(crate) stat: Option<Stat>,
}

impl Target {
    /// The file type at the name, if anything is there.
    pub(crate) fn file_type(&self) -> Option<FileType> {
        self.stat
            .as_ref()
            .map(|stat| FileType::from_raw_mode(stat.st_mode))
    }

    /// Looks at the name again, not following a symbolic link.
    pub(crate) fn restat(&mut self, shown: &Path) -> Result<(), WriteError> {
        self.stat = stat_name(&self.dir, &self.name, shown)?;
        Ok(())
    }
}

/// `lstat` of one name in a directory; `None` when nothing is there.
pub(crate) fn stat_name(
    dir: &OwnedFd,
    name: &OsStr,
    shown: &Path,
) -> Result<Option<Stat>, WriteError> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some(stat)),
        Err(Errno::NOENT) => Ok(None),
        Err(errno) => Err(WriteError::from_errno(shown, errno)),
    }
}

/// Finds the target of `relative` (plain names, from [`relative_path`]) beneath the root.
///
/// Missing parent directories are created when `create_parents` is set. A symbolic link as the
/// final component is an `escape` when it leads outside the root; when it stays inside it is
/// followed if `follow` is set, and returned as the target otherwise.
pub(crate) fn locate(
    root: &OwnedFd,
    relative: &Path,
    create_parents: bool,
    follow: bool,
    settings: Settings<'_>,
    shown: &Path,
) -> Result<Target, WriteError> {
    let mut relative = relative.to_path_buf();
    for _ in 0..MAX_LINK_HOPS {
        let Some(name) = relative.file_name().map(OsStr::to_os_string) else {
            // A followed link ended in `..`: that is a directory.
            return Err(WriteError::NotAFile {
                path: shown.to_path_buf(),
                reason: "a symbolic link at the path points to a directory",
            });
        };
        let parent = relative.parent().unwrap_or(Path::new(""));
        let dir = open_dir(root, parent, create_parents, settings, shown)?;
        let stat = stat_name(&dir, &name, shown)?;
        let is_link = stat
            .as_ref()
            .is_some_and(|stat| FileType::from_raw_mode(stat.st_mode).is_symlink());
        if !is_link {
            return Ok(Target { dir, name, stat });
        }

        // A link: let the kernel say whether it stays beneath the root.
        match open_beneath(root, &relative, OFlags::PATH, Mode::empty()) {
            Ok(_) | Err(Errno::NOENT | Errno::NOTDIR) => {}
            Err(Errno::XDEV) => {
                return Err(WriteError::escape(
                    shown,
                    "a symbolic link at the path leads outside the root",
                ));
            }
            Err(errno) => return Err(WriteError::from_errno(shown, errno)),
        }
        if !follow {
            return Ok(Target { dir, name, stat });
        }
        let content = rustix::fs::readlinkat(&dir, name.as_os_str(), Vec::new())
            .map_err(|errno| WriteError::from_errno(shown, errno))?;
        let content = Path::new(OsStr::from_bytes(content.as_bytes()));
        if content.is_absolute() {
            return Err(WriteError::escape(
                shown,
                "a symbolic link at the path is absolute, which leads outside the root",
            ));
        }
        // The kernel resolves `parent/content` exactly as it resolves the link from `parent`.
        relative = parent.join(content);
    }
    Err(WriteError::invalid(
        shown,
        "too many levels of symbolic links",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relative(given: &str) -> Result<PathBuf, WriteError> {
        relative_path(Path::new("/srv/out"), Path::new(given))
    }

    #[test]
    fn plain_relative_paths_pass_without_dots() {
        assert_eq!(relative("a/./b.txt").unwrap(), Path::new("a/b.txt"));
        assert_eq!(relative("./a/").unwrap(), Path::new("a"));
    }

    #[test]
    fn absolute_path_inside_the_root_becomes_relative() {
        assert_eq!(relative("/srv/out/a/b").unwrap(), Path::new("a/b"));
        assert_eq!(relative("/srv/./out/a").unwrap(), Path::new("a"));
    }

    #[test]
    fn absolute_path_elsewhere_is_an_escape() {
        let error = relative("/srv/outside/a").unwrap_err();

        assert_eq!(error.kind(), crate::WriteErrorKind::Escape);
        assert!(error.to_string().contains("outside the root /srv/out"));
    }

    #[test]
    fn dot_dot_is_an_escape_at_the_top_and_invalid_below() {
        assert_eq!(
            relative("../x").unwrap_err().kind(),
            crate::WriteErrorKind::Escape
        );
        assert_eq!(
            relative("/srv/out/../x").unwrap_err().kind(),
            crate::WriteErrorKind::Escape
        );
        assert_eq!(
            relative("a/../../x").unwrap_err().kind(),
            crate::WriteErrorKind::Invalid
        );
    }

    #[test]
    fn empty_nul_and_root_itself_are_invalid() {
        for given in ["", "a\0b", ".", "./", "/srv/out", "/srv/out/."] {
            let error = relative(given).unwrap_err();

            assert_eq!(error.kind(), crate::WriteErrorKind::Invalid, "{given:?}");
        }
    }
}

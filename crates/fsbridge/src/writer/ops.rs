//! The five operations, on a target already found beneath the root.
//!
//! What every operation keeps:
//!
//! - **Never torn**: `create` and `overwrite` fill a temporary file in the target's directory,
//!   fsync it, and rename it into place. Only when the directory allows no new file but the
//!   target itself is writable does `overwrite` write in place, under the lock, and say
//!   `atomic: false`; it reserves the space first, so a full disk fails before a byte changes.
//! - **Never interleaved**: a write to an existing file first takes `flock(LOCK_EX)` on it,
//!   waiting up to the lock timeout. Because `overwrite` replaces the file by a rename, whoever
//!   gets the lock then checks that the name still leads to the inode it locked, and starts
//!   over when it does not; cooperating writers thus always end up on the current file.
//! - **Nothing lost on failure**: a failed `create` or `overwrite` removes its temporary file;
//!   a failed append truncates the file back to its size before the append.
//! - **Temporary files are recognisable and owned**: they are named `.fsbridge-tmp-` and
//!   sixteen hex digits, and their writer holds a `flock` on them until they are renamed. A
//!   temporary file whose lock is free belongs to a writer that died; see [`sweep`].

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::hash::BuildHasher as _;
use std::io::Write as _;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::fs::{
    AtFlags, FallocateFlags, FileType, FlockOperation, Gid, Mode, OFlags, RenameFlags, Stat, Uid,
};
use rustix::io::Errno;

use super::command::{WriteCommand, WriteOp, Written};
use super::error::WriteError;
use super::sandbox::{self, Target};
use crate::index::Entry;
use crate::origin::{Place, SelfWrites};

/// The start of every temporary file's name.
pub(crate) const TEMP_PREFIX: &str = ".fsbridge-tmp-";

/// How often an operation starts over because the file changed under it before it is `busy`.
const ATTEMPTS: usize = 64;

/// The longest pause between two tries of a held lock.
const MAX_LOCK_PAUSE: Duration = Duration::from_millis(20);

/// How deep [`sweep`] descends.
const MAX_SWEEP_DEPTH: usize = 256;

/// What an operation needs from the writer's configuration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings<'a> {
    pub(crate) fsync: bool,
    pub(crate) lock_timeout: Duration,
    /// Where the state each command leaves is recorded, if anywhere.
    pub(crate) record: Option<&'a SelfWrites>,
}

impl Settings<'_> {
    /// The state of the file or directory open at `fd`, when steps are recorded.
    fn state(&self, fd: impl AsFd) -> Option<Entry> {
        self.record?;
        // A duplicate descriptor as a `File`, for the birth time `File::metadata` reads.
        let fd = fd.as_fd().try_clone_to_owned().ok()?;
        File::from(fd)
            .metadata()
            .ok()
            .map(|metadata| Entry::from_metadata(&metadata))
    }

    /// Where the entry `name` in the directory open at `dir` is, for the record.
    fn place(&self, dir: impl AsFd, name: &OsStr) -> Option<Place> {
        let dir = self.state(dir)?;
        Some((dir.id.dev, dir.id.ino, name.as_bytes().into()))
    }

    /// Records that a command is about to create `name` in the directory open at `dir`; hand
    /// the place back to [`Self::not_created`] if it fails.
    pub(crate) fn creating(&self, dir: impl AsFd, name: &OsStr) -> Option<Place> {
        let place = self.place(dir, name)?;
        self.record?.creating(place.clone());
        Some(place)
    }

    /// Records that the creation announced at `place` did not happen.
    pub(crate) fn not_created(&self, place: Option<&Place>) {
        if let (Some(record), Some(place)) = (self.record, place) {
            record.not_created(place);
        }
    }

    /// Records that a command created what is open at `fd`, at the `place` it announced with
    /// [`Self::creating`]; returns its first state.
    pub(crate) fn created(&self, fd: impl AsFd, place: Option<Place>) -> Option<Entry> {
        let entry = self.state(fd)?;
        self.record?.created(&entry, place?);
        Some(entry)
    }

    /// Records that a command renamed the file it created, open at `fd`, to `name` in the
    /// directory open at `dir`.
    fn placed(&self, fd: impl AsFd, dir: impl AsFd, name: &OsStr) {
        if let (Some(record), Some(entry), Some(place)) =
            (self.record, self.state(fd), self.place(dir, name))
        {
            record.placed(&entry, place);
        }
    }

    /// Records that a command starts changing the file open at `fd`; returns its state before.
    fn writing(&self, fd: impl AsFd) -> Option<Entry> {
        let entry = self.state(fd)?;
        self.record?.writing(&entry);
        Some(entry)
    }

    /// Records that a command turned the file that was `before` into what is open at `fd` now.
    fn wrote(&self, before: Option<Entry>, fd: impl AsFd) -> Option<Entry> {
        let after = self.state(fd)?;
        self.record?.wrote(&before?, &after);
        Some(after)
    }

    /// Records that a command deletes what is open at `fd`.
    fn deleting(&self, fd: impl AsFd) {
        if let (Some(record), Some(entry)) = (self.record, self.state(fd)) {
            record.deleting(&entry);
        }
    }
}

/// Why one attempt of an operation stopped.
enum Flow {
    /// The file changed under the attempt (replaced, removed, turned into a link): start over.
    Again,
    /// A real failure, reported as it is.
    Fail(WriteError),
}

impl From<WriteError> for Flow {
    fn from(error: WriteError) -> Self {
        Self::Fail(error)
    }
}

/// Applies `command`, whose path is `relative` (plain names) beneath the root `root`.
pub(crate) fn run(
    root: &OwnedFd,
    relative: &Path,
    command: &WriteCommand,
    settings: Settings<'_>,
) -> Result<Written, WriteError> {
    let shown = command.path();
    let contents = command.contents().unwrap_or_default();
    let attempt = || match command.op() {
        WriteOp::Create => create(root, relative, contents, settings, shown),
        WriteOp::Append => append(root, relative, contents, settings, shown),
        WriteOp::Overwrite => overwrite(root, relative, contents, settings, shown),
        WriteOp::Delete => delete(root, relative, settings, shown),
        WriteOp::Mkdir => sandbox::open_dir(root, relative, true, settings, shown)
            .map(|_| Written {
                size: None,
                atomic: None,
            })
            .map_err(Flow::Fail),
    };
    for _ in 0..ATTEMPTS {
        match attempt() {
            Ok(written) => return Ok(written),
            Err(Flow::Fail(error)) => return Err(error),
            Err(Flow::Again) => tracing::debug!(path = %shown.display(), "file changed, retrying"),
        }
    }
    Err(WriteError::Busy {
        path: shown.to_path_buf(),
        reason: "it kept changing while being written".into(),
    })
}

fn create(
    root: &OwnedFd,
    relative: &Path,
    contents: &[u8],
    settings: Settings<'_>,
    shown: &Path,
) -> Result<Written, Flow> {
    let target = sandbox::locate(root, relative, true, false, settings, shown)?;
    if let Some(file_type) = target.file_type() {
        return Err(Flow::Fail(WriteError::Exists {
            path: shown.to_path_buf(),
            reason: in_the_way(file_type),
        }));
    }

    let temp =
        Temp::create(&target.dir, 0o666, settings).map_err(|errno| errno_fail(shown, errno))?;
    temp.fill(contents, settings, shown)?;
    match temp.rename_into_place(&target.name, false, settings) {
        Ok(()) => {}
        Err(Errno::EXIST) => {
            return Err(Flow::Fail(WriteError::Exists {
                path: shown.to_path_buf(),
                reason: "it already exists",
            }));
        }
        Err(errno) => return Err(errno_fail(shown, errno)),
    }
    sync_dir(&target.dir, settings, shown)?;
    Ok(Written {
        size: Some(len(contents)),
        atomic: Some(true),
    })
}

fn overwrite(
    root: &OwnedFd,
    relative: &Path,
    contents: &[u8],
    settings: Settings<'_>,
    shown: &Path,
) -> Result<Written, Flow> {
    let mut target = sandbox::locate(root, relative, true, true, settings, shown)?;
    match target.file_type() {
        None => return create_missing(&target, contents, settings, shown),
        Some(FileType::RegularFile) => {}
        Some(other) => return Err(Flow::Fail(not_a_file(shown, other))),
    }
    let (file, stat) = open_locked(&mut target, OFlags::WRONLY, settings, shown)?;
    let before = settings.writing(&file);

    let temp = match Temp::create(&target.dir, 0o600, settings) {
        Ok(temp) => temp,
        // LIMITATION: a directory that allows no new file forces an in-place rewrite, which a
        // crash can leave torn; the result says `atomic: false` so the caller knows.
        Err(Errno::ACCESS | Errno::PERM) => {
            return rewrite_in_place(&file, &stat, contents, settings, shown);
        }
        Err(errno) => return Err(errno_fail(shown, errno)),
    };
    temp.take_attributes(&stat);
    temp.fill(contents, settings, shown)?;
    temp.rename_into_place(&target.name, true, settings)
        .map_err(|errno| errno_fail(shown, errno))?;
    // The old file became the new one: a chain of steps may run through the replacement.
    settings.wrote(before, &temp.file);
    sync_dir(&target.dir, settings, shown)?;
    drop(file);
    Ok(Written {
        size: Some(len(contents)),
        atomic: Some(true),
    })
}

/// `overwrite` of a name where nothing is: like `create`, but a file appearing meanwhile means
/// starting over as an overwrite of that file.
fn create_missing(
    target: &Target,
    contents: &[u8],
    settings: Settings<'_>,
    shown: &Path,
) -> Result<Written, Flow> {
    let temp =
        Temp::create(&target.dir, 0o666, settings).map_err(|errno| errno_fail(shown, errno))?;
    temp.fill(contents, settings, shown)?;
    match temp.rename_into_place(&target.name, false, settings) {
        Ok(()) => {}
        Err(Errno::EXIST) => return Err(Flow::Again),
        Err(errno) => return Err(errno_fail(shown, errno)),
    }
    sync_dir(&target.dir, settings, shown)?;
    Ok(Written {
        size: Some(len(contents)),
        atomic: Some(true),
    })
}

/// Rewrites a locked file in place, for a directory that allows no temporary file.
fn rewrite_in_place(
    file: &File,
    stat: &Stat,
    contents: &[u8],
    settings: Settings<'_>,
    shown: &Path,
) -> Result<Written, Flow> {
    let new_len = len(contents);
    let old_len = u64::try_from(stat.st_size).unwrap_or(0);

    // Reserve the blocks first: a full disk then fails before the old content is touched.
    if new_len > old_len {
        match rustix::fs::fallocate(file, FallocateFlags::KEEP_SIZE, 0, new_len) {
            Ok(()) | Err(Errno::OPNOTSUPP | Errno::NOSYS | Errno::INVAL) => {}
            Err(errno) => return Err(errno_fail(shown, errno)),
        }
    }
    let before = settings.writing(file);
    file.write_all_at(contents, 0)
        .and_then(|()| file.set_len(new_len))
        .and_then(|()| {
            if settings.fsync {
                file.sync_data()
            } else {
                Ok(())
            }
        })
        .map_err(|error| Flow::Fail(WriteError::from_io(shown, &error)))?;
    settings.wrote(before, file);
    Ok(Written {
        size: Some(new_len),
        atomic: Some(false),
    })
}

fn append(
    root: &OwnedFd,
    relative: &Path,
    contents: &[u8],
    settings: Settings<'_>,
    shown: &Path,
) -> Result<Written, Flow> {
    let mut target = sandbox::locate(root, relative, true, true, settings, shown)?;
    let flags = OFlags::WRONLY | OFlags::APPEND;
    let (file, stat, created) = match target.file_type() {
        None => {
            let place = settings.creating(&target.dir, &target.name);
            let fd = match rustix::fs::openat(
                &target.dir,
                target.name.as_os_str(),
                flags | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o666),
            ) {
                Ok(fd) => fd,
                Err(errno) => {
                    settings.not_created(place.as_ref());
                    if errno == Errno::EXIST {
                        return Err(Flow::Again);
                    }
                    return Err(errno_fail(shown, errno));
                }
            };
            let file = File::from(fd);
            // Recorded at once: a monitor may look at the new name any moment now.
            settings.created(&file, place);
            let stat = lock_and_verify(&file, &mut target, settings, shown)?;
            (file, stat, true)
        }
        Some(FileType::RegularFile) => {
            let (file, stat) = open_locked(&mut target, flags, settings, shown)?;
            (file, stat, false)
        }
        Some(other) => return Err(Flow::Fail(not_a_file(shown, other))),
    };
    let old_len = u64::try_from(stat.st_size).unwrap_or(0);
    let before = settings.writing(&file);

    // One O_APPEND write under the lock; a partial write (full disk) is undone.
    // LIMITATION: a process killed (SIGKILL, power loss) in the middle of a large append leaves
    // the part written so far, because an append goes to the file itself, not to a temporary
    // copy; copying the file for every append would cost more than most appends write.
    let written = (&file).write_all(contents).and_then(|()| {
        if settings.fsync {
            file.sync_data()
        } else {
            Ok(())
        }
    });
    if let Err(error) = written {
        if created {
            let _ = rustix::fs::unlinkat(&target.dir, target.name.as_os_str(), AtFlags::empty());
        } else {
            let _ = file.set_len(old_len);
        }
        return Err(Flow::Fail(WriteError::from_io(shown, &error)));
    }
    settings.wrote(before, &file);
    if created {
        sync_dir(&target.dir, settings, shown)?;
    }
    Ok(Written {
        size: Some(old_len + len(contents)),
        atomic: None,
    })
}

fn delete(
    root: &OwnedFd,
    relative: &Path,
    settings: Settings<'_>,
    shown: &Path,
) -> Result<Written, Flow> {
    let mut target = sandbox::locate(root, relative, false, false, settings, shown)?;
    let lock = match target.file_type() {
        None => {
            return Err(Flow::Fail(WriteError::NotFound {
                path: shown.to_path_buf(),
                reason: "it does not exist",
            }));
        }
        // The link itself goes; what it points to stays.
        Some(FileType::Symlink) => None,
        Some(FileType::RegularFile) => {
            match open_locked(&mut target, OFlags::RDONLY, settings, shown) {
                Ok((file, _)) => Some(file),
                // A file we may not read (mode 0200) can still be removed from a writable
                // directory; it goes without the lock.
                Err(Flow::Fail(WriteError::Permission { .. })) => None,
                Err(other) => return Err(other),
            }
        }
        Some(other) => return Err(Flow::Fail(not_a_file(shown, other))),
    };

    if settings.record.is_some()
        && let Ok(doomed) = rustix::fs::openat(
            &target.dir,
            target.name.as_os_str(),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
    {
        settings.deleting(&doomed);
    }
    match rustix::fs::unlinkat(&target.dir, target.name.as_os_str(), AtFlags::empty()) {
        Ok(()) => {}
        Err(Errno::NOENT) => return Err(Flow::Again),
        Err(errno) => return Err(errno_fail(shown, errno)),
    }
    drop(lock);
    sync_dir(&target.dir, settings, shown)?;
    Ok(Written {
        size: None,
        atomic: None,
    })
}

/// Opens the regular file at the target's name without following a link, locks it, and checks
/// that the name still leads to it.
fn open_locked(
    target: &mut Target,
    flags: OFlags,
    settings: Settings<'_>,
    shown: &Path,
) -> Result<(File, Stat), Flow> {
    // O_NONBLOCK: should a fifo be swapped in after the type check, opening it must not hang.
    let fd = match rustix::fs::openat(
        &target.dir,
        target.name.as_os_str(),
        flags | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        // Removed, or replaced by a link or a fifo, since we looked.
        Err(Errno::NOENT | Errno::LOOP | Errno::NXIO) => return Err(Flow::Again),
        Err(errno) => return Err(errno_fail(shown, errno)),
    };
    let file = File::from(fd);
    let stat = rustix::fs::fstat(&file).map_err(|errno| errno_fail(shown, errno))?;
    let file_type = FileType::from_raw_mode(stat.st_mode);
    if file_type != FileType::RegularFile {
        return Err(Flow::Fail(not_a_file(shown, file_type)));
    }
    let stat = lock_and_verify(&file, target, settings, shown)?;
    Ok((file, stat))
}

/// Locks `file` and checks that the target's name still leads to it; returns its fresh `stat`.
fn lock_and_verify(
    file: &File,
    target: &mut Target,
    settings: Settings<'_>,
    shown: &Path,
) -> Result<Stat, Flow> {
    lock(file, settings.lock_timeout, shown)?;
    let stat = rustix::fs::fstat(file).map_err(|errno| errno_fail(shown, errno))?;
    target.restat(shown)?;
    match &target.stat {
        Some(now) if now.st_dev == stat.st_dev && now.st_ino == stat.st_ino => Ok(stat),
        _ => Err(Flow::Again),
    }
}

/// Takes an exclusive `flock`, trying again until `timeout` has passed.
fn lock(file: &File, timeout: Duration, shown: &Path) -> Result<(), WriteError> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        match rustix::fs::flock(file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(()),
            Err(Errno::WOULDBLOCK | Errno::INTR) => {}
            Err(errno) => return Err(WriteError::from_errno(shown, errno)),
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(WriteError::busy_lock(shown, timeout));
        }
        // flock has no timeout of its own: poll, backing off, never past the deadline.
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(MAX_LOCK_PAUSE);
    }
}

fn sync_dir(dir: &OwnedFd, settings: Settings<'_>, shown: &Path) -> Result<(), Flow> {
    if !settings.fsync {
        return Ok(());
    }
    sandbox::sync_dir(dir).map_err(|errno| errno_fail(shown, errno))
}

fn errno_fail(shown: &Path, errno: Errno) -> Flow {
    Flow::Fail(WriteError::from_errno(shown, errno))
}

fn len(contents: &[u8]) -> u64 {
    u64::try_from(contents.len()).unwrap_or(u64::MAX)
}

fn not_a_file(shown: &Path, file_type: FileType) -> WriteError {
    WriteError::NotAFile {
        path: shown.to_path_buf(),
        reason: match file_type {
            FileType::Directory => "it is a directory",
            FileType::Fifo => "it is a fifo, not a regular file",
            FileType::CharacterDevice | FileType::BlockDevice => {
                "it is a device, not a regular file"
            }
            FileType::Socket => "it is a socket, not a regular file",
            FileType::Symlink => "it is a symbolic link",
            _ => "it is not a regular file",
        },
    }
}

fn in_the_way(file_type: FileType) -> &'static str {
    match file_type {
        FileType::Directory => "a directory is in the way",
        FileType::Symlink => "a symbolic link is in the way",
        FileType::RegularFile => "it already exists",
        _ => "a special file is in the way",
    }
}

/// A temporary file in the target's directory, removed on drop unless renamed into place.
struct Temp<'dir> {
    dir: &'dir OwnedFd,
    name: OsString,
    file: File,
    renamed: std::cell::Cell<bool>,
    /// Its first state, when steps are recorded.
    born: Option<Entry>,
}

impl<'dir> Temp<'dir> {
    /// Creates and locks a fresh temporary file with permission bits `mode` (before umask).
    fn create(dir: &'dir OwnedFd, mode: u32, settings: Settings<'_>) -> Result<Self, Errno> {
        for _ in 0..ATTEMPTS {
            let name = temp_name();
            let place = settings.creating(dir, &name);
            let fd = match rustix::fs::openat(
                dir,
                name.as_os_str(),
                OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(mode),
            ) {
                Ok(fd) => fd,
                Err(errno) => {
                    settings.not_created(place.as_ref());
                    if errno == Errno::EXIST {
                        continue;
                    }
                    return Err(errno);
                }
            };
            // The lock says "in use" to a sweeper. One that got here first removes the file:
            // leave it to that sweeper and take another name.
            let file = File::from(fd);
            // Recorded at once: a monitor may look at the new name any moment now.
            let born = settings.created(&file, place);
            if rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
                continue;
            }
            let mine = rustix::fs::fstat(&file)?;
            match rustix::fs::statat(dir, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(now) if now.st_ino == mine.st_ino && now.st_dev == mine.st_dev => {
                    return Ok(Self {
                        dir,
                        name,
                        file,
                        renamed: std::cell::Cell::new(false),
                        born,
                    });
                }
                _ => {}
            }
        }
        Err(Errno::AGAIN)
    }

    /// Gives the temporary file the owner and permission bits of the file it will replace.
    fn take_attributes(&self, old: &Stat) {
        if let Ok(mine) = rustix::fs::fstat(&self.file)
            && (mine.st_uid != old.st_uid || mine.st_gid != old.st_gid)
        {
            // Only root (or the owner, for the group) may do this; "where allowed".
            let _ = rustix::fs::fchown(
                &self.file,
                Some(Uid::from_raw(old.st_uid)),
                Some(Gid::from_raw(old.st_gid)),
            );
        }
        let _ = rustix::fs::fchmod(&self.file, Mode::from_raw_mode(old.st_mode & 0o7777));
    }

    /// Writes the content and makes it durable (when asked).
    fn fill(&self, contents: &[u8], settings: Settings<'_>, shown: &Path) -> Result<(), Flow> {
        // A monitor may look while the content goes in: the states it sees are ours.
        if let (Some(record), Some(born)) = (settings.record, &self.born) {
            record.writing(born);
        }
        (&self.file)
            .write_all(contents)
            .and_then(|()| {
                if settings.fsync {
                    self.file.sync_all()
                } else {
                    Ok(())
                }
            })
            .map_err(|error| Flow::Fail(WriteError::from_io(shown, &error)))?;
        settings.wrote(self.born, &self.file);
        Ok(())
    }

    /// Renames the temporary file to `name`; replaces what is there only when `replace` is set.
    fn rename_into_place(
        &self,
        name: &OsStr,
        replace: bool,
        settings: Settings<'_>,
    ) -> Result<(), Errno> {
        // Recorded first: a monitor may look at the name as soon as the rename is done.
        settings.placed(&self.file, self.dir, name);
        if replace {
            rustix::fs::renameat(self.dir, self.name.as_os_str(), self.dir, name)?;
            self.renamed.set(true);
            return Ok(());
        }
        match rustix::fs::renameat_with(
            self.dir,
            self.name.as_os_str(),
            self.dir,
            name,
            RenameFlags::NOREPLACE,
        ) {
            Ok(()) => {
                self.renamed.set(true);
                Ok(())
            }
            // A file system without RENAME_NOREPLACE: a hard link fails on an existing name too;
            // the temporary name then goes on drop.
            Err(Errno::INVAL | Errno::NOSYS) => rustix::fs::linkat(
                self.dir,
                self.name.as_os_str(),
                self.dir,
                name,
                AtFlags::empty(),
            ),
            Err(errno) => Err(errno),
        }
    }
}

impl Drop for Temp<'_> {
    fn drop(&mut self) {
        if !self.renamed.get() {
            let _ = rustix::fs::unlinkat(self.dir, self.name.as_os_str(), AtFlags::empty());
        }
    }
}

/// A fresh temporary name: the prefix and sixteen hex digits.
fn temp_name() -> OsString {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    // RandomState is seeded from the OS once per thread and varies per instance.
    let random = std::hash::RandomState::new().hash_one((count, std::process::id()));
    format!("{TEMP_PREFIX}{random:016x}").into()
}

/// Whether `name` has the shape of a temporary file's name.
pub(crate) fn is_temp_name(name: &[u8]) -> bool {
    name.strip_prefix(TEMP_PREFIX.as_bytes())
        .is_some_and(|rest| rest.len() == 16 && rest.iter().all(u8::is_ascii_hexdigit))
}

/// Removes the temporary files left by writers that died, everywhere beneath the root; returns
/// how many it removed.
///
/// A temporary file whose `flock` can be taken has no live writer. Symbolic links are not
/// followed; descent stops [`MAX_SWEEP_DEPTH`] levels down.
pub(crate) fn sweep(root: &OwnedFd) -> Result<usize, Errno> {
    let readable = rustix::fs::openat(
        root,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(sweep_dir(readable, 0))
}

fn sweep_dir(dir: OwnedFd, depth: usize) -> usize {
    let Ok(mut entries) = rustix::fs::Dir::new(dir) else {
        return 0;
    };
    let mut names = Vec::new();
    let mut subdirs = Vec::new();
    while let Some(Ok(entry)) = entries.read() {
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        match entry.file_type() {
            FileType::Directory | FileType::Unknown => subdirs.push(name.to_vec()),
            FileType::RegularFile if is_temp_name(name) => names.push(name.to_vec()),
            _ => {}
        }
    }
    let Ok(fd) = entries.fd() else {
        return 0;
    };

    let mut removed = names
        .iter()
        .filter(|name| remove_stale(fd, OsStr::from_bytes(name)))
        .count();
    if depth < MAX_SWEEP_DEPTH {
        for name in subdirs {
            // O_NOFOLLOW and a single name: the walk never leaves the tree.
            if let Ok(child) = rustix::fs::openat(
                fd,
                OsStr::from_bytes(&name),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                removed += sweep_dir(child, depth + 1);
            }
        }
    }
    removed
}

/// Removes one temporary file if no writer holds its lock.
fn remove_stale(dir: impl AsFd, name: &OsStr) -> bool {
    let Ok(fd) = rustix::fs::openat(
        &dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    if rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive).is_err() {
        return false;
    }
    let (Ok(mine), Ok(now)) = (
        rustix::fs::fstat(&fd),
        rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW),
    ) else {
        return false;
    };
    if mine.st_ino != now.st_ino || mine.st_dev != now.st_dev {
        return false;
    }
    tracing::debug!(name = %name.to_string_lossy(), "removing a stale temporary file");
    rustix::fs::unlinkat(&dir, name, AtFlags::empty()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_recognised_and_unique() {
        let first = temp_name();
        let second = temp_name();

        assert!(is_temp_name(first.as_bytes()));
        assert_ne!(first, second);
        assert!(!is_temp_name(b".fsbridge-tmp-xyz"));
        assert!(!is_temp_name(b"notes.txt"));
    }
}

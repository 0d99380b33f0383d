//! The output side: a [`Writer`] applies [`WriteCommand`]s strictly inside one root directory.
//!
//! What lives here is the writer's configuration, the bookkeeping of applied ids, and the
//! order of the steps every command goes through:
//!
//! 1. ids: a command whose id this writer applied successfully already is answered with
//!    `duplicate: true` and not applied again;
//! 2. the path is checked as text ([`sandbox::relative_path`]) and the content against the
//!    size limit, before anything is touched;
//! 3. the root is opened; it is never created, so while it is missing every command is
//!    `not_found` naming it, and the next command after it appears works;
//! 4. the first time a writer meets a root (and whenever the root was replaced), it removes the
//!    temporary files that killed writers left beneath it ([`ops::sweep`]);
//! 5. the operation runs ([`ops`]), with the target found beneath the root by the kernel
//!    ([`sandbox`]).
//!
//! The rules each operation keeps (atomic replacement, locks, permission bits) are in [`ops`];
//! how paths are confined is in [`sandbox`]; the wire format is in [`command`].
//!
//! Decisions where issue #4 is silent:
//!
//! - Only successful commands count as applied: a command that failed (a `busy` file, a full
//!   disk) may be sent again with the same id and is then tried again. A duplicate of a
//!   command still running waits for it and answers as it does.
//! - `..` that would climb out of the root is an `escape`; any other `..` is `invalid`, so a
//!   path names its target directly.
//! - `delete` and `mkdir` report no size; `create` and `overwrite` report `atomic`.

mod command;
mod error;
mod ops;
mod sandbox;

use std::collections::{HashMap, HashSet, VecDeque};
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use crate::origin::SelfWrites;

pub use command::{WriteCommand, WriteOp, WriteOutcome, Written};
pub use error::{WriteError, WriteErrorKind};
pub(crate) use ops::is_temp_name;

/// How long a writer waits for another writer's lock by default.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest content a writer accepts by default: 64 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// How many applied ids a writer remembers; the oldest are forgotten first.
const REMEMBERED_IDS: usize = 65_536;

/// Applies write commands inside one root directory: atomically, durably, never outside it.
///
/// A writer is cheap to clone; clones share the root, the configuration and the memory of
/// applied ids. Configure it before sharing it.
///
/// # Examples
///
/// ```
/// use fsbridge::{WriteCommand, Writer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let root = tempfile::tempdir()?;
/// let writer = Writer::new(root.path()).with_fsync(false);
///
/// let outcome = writer.apply(WriteCommand::create("notes/a.txt", "hello\n")).await;
/// assert_eq!(outcome.size(), Some(6));
///
/// let outcome = writer.apply(WriteCommand::create("../escape.txt", "no")).await;
/// assert_eq!(outcome.error().map(|error| error.kind().as_str()), Some("escape"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Writer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    fsync: bool,
    lock_timeout: Duration,
    max_bytes: u64,
    ids: Ids,
    /// The (device, inode) of the root last swept for stale temporary files.
    swept: Mutex<Option<(u64, u64)>>,
    /// Where the root really is (symbolic links resolved), learned when it is first opened:
    /// a root later replaced by a link elsewhere is refused, not followed.
    resolved: Mutex<Option<PathBuf>>,
    /// Where the state each command leaves is recorded, for monitors to recognise.
    self_writes: Option<SelfWrites>,
}

impl Writer {
    /// A writer rooted at `root`, which need not exist yet.
    ///
    /// A relative `root` is made absolute against the current directory now (without resolving
    /// symbolic links), so that absolute command paths can be compared with it.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let root = std::path::absolute(&root).unwrap_or(root);
        Self {
            inner: Arc::new(Inner {
                root,
                fsync: true,
                lock_timeout: DEFAULT_LOCK_TIMEOUT,
                max_bytes: DEFAULT_MAX_BYTES,
                ids: Ids::default(),
                swept: Mutex::new(None),
                resolved: Mutex::new(None),
                self_writes: None,
            }),
        }
    }

    /// Whether to fsync each written file and its directory, so that an applied command
    /// survives a power loss. On by default; off trades that for speed (a crash may then lose
    /// recent commands, but still never leaves a torn file).
    #[must_use]
    pub fn with_fsync(self, fsync: bool) -> Self {
        self.configure(|inner| inner.fsync = fsync)
    }

    /// How long to wait for another writer's lock on a file before failing with `busy`.
    /// [`DEFAULT_LOCK_TIMEOUT`] (5 s) by default.
    #[must_use]
    pub fn with_lock_timeout(self, timeout: Duration) -> Self {
        self.configure(|inner| inner.lock_timeout = timeout)
    }

    /// The largest content accepted; larger commands fail with `too_large` before anything is
    /// written. [`DEFAULT_MAX_BYTES`] (64 MiB) by default.
    #[must_use]
    pub fn with_max_bytes(self, max_bytes: u64) -> Self {
        self.configure(|inner| inner.max_bytes = max_bytes)
    }

    /// Records in `record` the state every command leaves, so that monitors given the same
    /// record ([`MonitorBuilder::with_self_writes`](crate::MonitorBuilder::with_self_writes))
    /// recognise the events this writer causes. Off by default.
    #[must_use]
    pub fn with_self_writes(self, record: &SelfWrites) -> Self {
        let record = record.clone();
        self.configure(|inner| inner.self_writes = Some(record))
    }

    fn configure(mut self, change: impl FnOnce(&mut Inner)) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            change(inner);
            return self;
        }
        // Configured after cloning: this writer gets its own state.
        let mut inner = Inner {
            root: self.inner.root.clone(),
            fsync: self.inner.fsync,
            lock_timeout: self.inner.lock_timeout,
            max_bytes: self.inner.max_bytes,
            ids: Ids::default(),
            swept: Mutex::new(None),
            resolved: Mutex::new(None),
            self_writes: self.inner.self_writes.clone(),
        };
        change(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The root, made absolute.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Whether files and directories are fsynced.
    pub fn fsync(&self) -> bool {
        self.inner.fsync
    }

    /// How long a lock is waited for.
    pub fn lock_timeout(&self) -> Duration {
        self.inner.lock_timeout
    }

    /// The largest content accepted, in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.inner.max_bytes
    }

    /// Applies one command and says what happened. Never panics on a failed command: the
    /// failure is in the outcome.
    ///
    /// The file system work runs on tokio's blocking thread pool, so it needs a tokio runtime.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe in the usual sense: dropping the future does not stop the command,
    /// which may still be applied (completely or not at all, never torn). Its outcome is then
    /// lost; sending the command again with the same id reports it as a duplicate.
    pub async fn apply(&self, command: WriteCommand) -> WriteOutcome {
        let inner = Arc::clone(&self.inner);
        let id = command.id().map(str::to_owned);
        let op = command.op();
        let path = command.path().to_path_buf();
        match tokio::task::spawn_blocking(move || inner.apply(command)).await {
            Ok(outcome) => outcome,
            Err(join_error) => WriteOutcome::failure(
                id,
                op,
                path.clone(),
                WriteError::Io {
                    path,
                    source: std::io::Error::other(format!("the write task failed: {join_error}")),
                },
            ),
        }
    }

    /// The blocking twin of [`Writer::apply`], for code outside an async runtime.
    ///
    /// # Panics
    ///
    /// Does not panic; like any blocking call it must not run on an async runtime's worker.
    pub fn blocking_apply(&self, command: WriteCommand) -> WriteOutcome {
        self.inner.apply(command)
    }

    /// Removes the temporary files that killed writers left beneath the root now, instead of
    /// waiting for the first command; returns how many were removed.
    ///
    /// # Errors
    ///
    /// `not_found` while the root does not exist, or the error that stopped the walk at its
    /// start. Directories that cannot be read are skipped.
    pub fn blocking_sweep(&self) -> Result<usize, WriteError> {
        let root = self.inner.open_root()?;
        self.inner.sweep(&root)
    }
}

impl Inner {
    /// Opens the root, checking that it still is the directory it was when first opened (by
    /// its path with symbolic links resolved; a directory deleted and made again in its place
    /// is still the root).
    fn open_root(&self) -> Result<OwnedFd, WriteError> {
        let root = sandbox::open_root(&self.root)?;
        // Where the descriptor really leads, as the kernel says; unknown without /proc.
        let Ok(now) = std::fs::read_link(format!("/proc/self/fd/{}", root.as_raw_fd())) else {
            return Ok(root);
        };
        let mut resolved = self.resolved.lock().unwrap_or_else(PoisonError::into_inner);
        match resolved.as_ref() {
            Some(first) if *first != now => Err(WriteError::escape(
                &self.root,
                format!(
                    "the root now leads to {}, not {} as before: it was replaced (by a symbolic link?); set the output again to follow it",
                    now.display(),
                    first.display()
                ),
            )),
            Some(_) => Ok(root),
            None => {
                *resolved = Some(now);
                Ok(root)
            }
        }
    }

    fn apply(&self, command: WriteCommand) -> WriteOutcome {
        let Some(id) = command.id() else {
            let result = self.execute(&command);
            return WriteOutcome::new(command, result);
        };
        let fingerprint = command.fingerprint();
        let claim = match self.ids.claim(id, fingerprint) {
            Claimed::Run(claim) => claim,
            Claimed::Duplicate(written) => {
                tracing::debug!(id, "duplicate command ignored");
                return WriteOutcome::duplicate(command, written);
            }
            // Answering "duplicate" would claim a success for a command never applied.
            Claimed::Conflict => {
                let error = WriteError::invalid(
                    command.path(),
                    format!("id {id:?} was applied already, to a different command"),
                );
                return WriteOutcome::new(command, Err(error));
            }
        };
        let result = self.execute(&command);
        claim.finish(result.as_ref().ok().copied());
        WriteOutcome::new(command, result)
    }

    fn execute(&self, command: &WriteCommand) -> Result<Written, WriteError> {
        let relative = sandbox::relative_path(&self.root, command.path())?;
        let size = u64::try_from(command.contents().map_or(0, <[u8]>::len)).unwrap_or(u64::MAX);
        if size > self.max_bytes {
            return Err(WriteError::too_large(command.path(), size, self.max_bytes));
        }

        let root = self.open_root()?;
        self.sweep_once(&root);

        let settings = ops::Settings {
            fsync: self.fsync,
            lock_timeout: self.lock_timeout,
            record: self.self_writes.as_ref(),
        };
        ops::run(&root, &relative, command, settings)
    }

    /// Sweeps the root if this writer has not swept this very directory yet.
    fn sweep_once(&self, root: &std::os::fd::OwnedFd) {
        let Ok(stat) = rustix::fs::fstat(root) else {
            return;
        };
        let identity = (stat.st_dev, stat.st_ino);
        let mut swept = self.swept.lock().unwrap_or_else(PoisonError::into_inner);
        if *swept == Some(identity) {
            return;
        }
        *swept = Some(identity);
        drop(swept);
        if let Err(error) = self.sweep(root) {
            tracing::warn!(%error, "cannot remove stale temporary files");
        }
    }

    fn sweep(&self, root: &std::os::fd::OwnedFd) -> Result<usize, WriteError> {
        let removed =
            ops::sweep(root).map_err(|errno| WriteError::from_errno(&self.root, errno))?;
        if removed > 0 {
            tracing::info!(removed, root = %self.root.display(), "removed stale temporary files");
        }
        Ok(removed)
    }
}

/// The ids this writer applied, and those being applied now.
#[derive(Debug, Default)]
struct Ids {
    state: Mutex<IdState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct IdState {
    /// What each applied id wrote, and the fingerprint of its command.
    applied: HashMap<String, (Written, u64)>,
    order: VecDeque<String>,
    running: HashSet<String>,
}

impl Ids {
    /// Claims `id` for running the command with `fingerprint`; waits while another command with
    /// the same id runs.
    fn claim(&self, id: &str, fingerprint: u64) -> Claimed<'_> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(&(written, applied)) = state.applied.get(id) {
                return if applied == fingerprint {
                    Claimed::Duplicate(written)
                } else {
                    Claimed::Conflict
                };
            }
            if !state.running.contains(id) {
                state.running.insert(id.to_owned());
                return Claimed::Run(Claim {
                    ids: self,
                    id: id.to_owned(),
                    fingerprint,
                    done: false,
                });
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn release(&self, id: &str, fingerprint: u64, written: Option<Written>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.running.remove(id);
        if let Some(written) = written {
            // LIMITATION: applied ids live in memory only, so a restarted writer applies a
            // redelivered command again; a create then fails with `exists`.
            state.applied.insert(id.to_owned(), (written, fingerprint));
            state.order.push_back(id.to_owned());
            while state.order.len() > REMEMBERED_IDS {
                if let Some(oldest) = state.order.pop_front() {
                    state.applied.remove(&oldest);
                }
            }
        }
        drop(state);
        self.changed.notify_all();
    }
}

/// A running command's hold on its id; released (as not applied) if dropped unfinished.
struct Claim<'ids> {
    ids: &'ids Ids,
    id: String,
    fingerprint: u64,
    done: bool,
}

/// What claiming an id found.
enum Claimed<'ids> {
    /// The id is new (or its earlier command failed): run the command.
    Run(Claim<'ids>),
    /// The same command was applied already, with this result.
    Duplicate(Written),
    /// The id was applied already to another command.
    Conflict,
}

impl Claim<'_> {
    fn finish(mut self, written: Option<Written>) {
        self.done = true;
        self.ids.release(&self.id, self.fingerprint, written);
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.ids.release(&self.id, self.fingerprint, None);
        }
    }
}

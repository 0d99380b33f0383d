//! The public face of the watching side: [`MonitorBuilder`] and the [`Monitor`] event stream.
//!
//! A monitor runs its life cycle on a thread of its own (all of its work is blocking file system
//! calls) and hands events to the stream through a bounded channel. When the consumer is slower
//! than the tree changes, that thread waits, hints pile up as a bounded set of paths, and past
//! the set's bound they become one rescan: memory stays bounded and nothing is lost.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use crate::backend::{Hints, Native};
use crate::content::ContentOptions;
use crate::error::WatchError;
use crate::event::{ContentMode, Encoding, Event, EventKind, RescanReason, TargetKind};
use crate::filter::Ignore;
use crate::lifecycle::{Lifecycle, Source};
use crate::origin::{SelfEvents, SelfWrites};

/// Events travel from the monitor's thread to the stream in chunks.
pub(crate) type Chunk = Vec<Result<Event, WatchError>>;

/// A chunk and the generation of the input that sent it: an io config's stream outlives its
/// inputs and drops what a replaced input still sent.
pub(crate) type Parcel = (u64, Chunk);

/// The default settle window: hints are collected this long after the first one before the
/// reconciler looks.
pub const DEFAULT_SETTLE: Duration = Duration::from_millis(10);

/// The default polling interval of [`MonitorBuilder::with_poll`].
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Configures and starts a [`Monitor`].
#[derive(Clone, Debug)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "each is one independent switch of the builder"
)]
pub struct MonitorBuilder {
    path: PathBuf,
    kind: Option<TargetKind>,
    settle: Duration,
    poll: Option<Duration>,
    initial: bool,
    raw: bool,
    capacity: usize,
    hint_capacity: usize,
    content: Option<ContentOptions>,
    ignore: Vec<String>,
    gitignore: bool,
    attributes: bool,
    self_writes: Option<(SelfWrites, SelfEvents)>,
    #[cfg(feature = "fault-injection")]
    fault_seed: Option<u64>,
}

impl MonitorBuilder {
    /// A builder for watching `path`, of a kind inferred when it exists.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            kind: None,
            settle: DEFAULT_SETTLE,
            poll: None,
            initial: false,
            raw: false,
            capacity: 1024,
            hint_capacity: 65_536,
            content: None,
            ignore: Vec::new(),
            gitignore: false,
            attributes: false,
            self_writes: None,
            #[cfg(feature = "fault-injection")]
            fault_seed: None,
        }
    }

    /// Declares what the target is. Default: inferred from the path when it exists; a target
    /// that does not exist yet needs it.
    #[must_use]
    pub fn with_kind(mut self, kind: TargetKind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// The path to watch, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The declared kind, if any.
    pub fn kind(&self) -> Option<TargetKind> {
        self.kind
    }

    /// How long hints are collected after the first one before the tree is looked at. Longer
    /// windows merge more (a burst of writes becomes one update); zero looks at once. Default:
    /// [`DEFAULT_SETTLE`].
    #[must_use]
    pub fn with_settle(mut self, settle: Duration) -> Self {
        self.settle = settle;
        self
    }

    /// The settle window.
    pub fn settle(&self) -> Duration {
        self.settle
    }

    /// Polls every `interval` instead of using native notifications, for file systems that send
    /// none (NFS, SMB, some container mounts). Default: native.
    #[must_use]
    pub fn with_poll(mut self, interval: Duration) -> Self {
        self.poll = Some(interval);
        self
    }

    /// Reports every entry already present as created, right after `ready`. Default: off.
    #[must_use]
    pub fn with_initial(mut self, initial: bool) -> Self {
        self.initial = initial;
        self
    }

    /// Passes the backend's own events through unreconciled, as [`EventKind::Raw`]. Raw mode
    /// watches the target recursively as it is at start and follows no life cycle. Default: off.
    #[must_use]
    pub fn with_raw(mut self, raw: bool) -> Self {
        self.raw = raw;
        self
    }

    /// How many events may wait for the consumer before the monitor waits too. Default: 1024.
    #[must_use]
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// How many distinct touched paths may wait for the reconciler before they are replaced by
    /// one rescan of the whole target. Default: 65,536.
    #[must_use]
    pub fn with_hint_capacity(mut self, capacity: usize) -> Self {
        self.hint_capacity = capacity.max(1);
        self
    }

    /// Makes created and updated file events carry content: the whole file
    /// ([`ContentMode::Full`]) or the bytes appended since the file's previous event
    /// ([`ContentMode::Appended`], with truncation and replacement detected), as UTF-8 text or
    /// bytes, at most `max` bytes per event. Default: no content.
    #[must_use]
    pub fn with_content(mut self, mode: ContentMode, encoding: Encoding, max: u64) -> Self {
        self.content = Some(ContentOptions {
            mode,
            encoding,
            max,
        });
        self
    }

    /// Leaves out of the tree every entry a glob matches, and everything below it: not walked,
    /// not watched, not reported. A pattern with a `/` matches the path relative to the target;
    /// one without, the entry's name at any depth (`node_modules`, `*.log`). `*` and `?` stay
    /// within one name, `**` crosses directories. Default: none.
    #[must_use]
    pub fn with_ignore(mut self, patterns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.ignore.extend(patterns.into_iter().map(Into::into));
        self
    }

    /// Checks the patterns given to [`Self::with_ignore`] without starting anything, so that a
    /// caller can say which setting is wrong before the monitor starts.
    ///
    /// # Errors
    ///
    /// [`WatchError::Pattern`] for the first pattern that is not a valid glob.
    pub fn check_ignore(&self) -> Result<(), WatchError> {
        Ignore::new(Path::new("/"), &self.ignore, false).map(drop)
    }

    /// Also leaves out what the `.gitignore` files inside the tree ignore, and `.git` itself:
    /// each `.gitignore` applies to its directory and below, the deepest one with a matching
    /// pattern decides, `!` re-includes, and a pattern ending in `/` matches only directories
    /// (`.git/info/exclude`, the global excludes file and `.gitignore` files above the target
    /// are not read). An edit of a `.gitignore` takes effect at once: entries it now ignores are
    /// reported deleted with [`Cause::Ignored`](crate::Cause::Ignored) (`"reason":"ignored"`;
    /// they are still on disk, no longer watched); entries it no longer ignores are reported as
    /// created. Default: off.
    #[must_use]
    pub fn with_gitignore(mut self, gitignore: bool) -> Self {
        self.gitignore = gitignore;
        self
    }

    /// Reports changes of permission bits and owner (`chmod`, `chown`): a file's as a
    /// [`EventKind::FileUpdated`] with [`UpdateKind::Attributes`], a directory's (the target's
    /// included) as an [`EventKind::DirUpdated`]; and every file update then carries the
    /// [`Attributes`] it leaves. Without it such a change is no event at all.
    ///
    /// The index then keeps 16 more bytes per entry: a watch of 100,000 files peaked at 24.1 MB
    /// instead of 21.9 MB in the startup benchmark. Raw mode ignores it. Default: off.
    ///
    /// [`Attributes`]: crate::Attributes
    /// [`UpdateKind::Attributes`]: crate::UpdateKind::Attributes
    #[must_use]
    pub fn with_attributes(mut self, attributes: bool) -> Self {
        self.attributes = attributes;
        self
    }

    /// Whether changes of permission bits and owner are reported.
    pub fn attributes(&self) -> bool {
        self.attributes
    }

    /// Recognises the changes made by writers that share `record` (see
    /// [`Writer::with_self_writes`](crate::Writer::with_self_writes)): their events are dropped,
    /// or marked [`Origin::SelfWrite`](crate::Origin::SelfWrite) with [`SelfEvents::Mark`]. A
    /// program that writes into a tree it watches then does not hear its own writes. Default:
    /// every change is reported.
    #[must_use]
    pub fn with_self_writes(mut self, record: &SelfWrites, handling: SelfEvents) -> Self {
        self.self_writes = Some((record.clone(), handling));
        self
    }

    /// Loses random windows of native hints, each followed by an overflow, as an overflowing
    /// kernel queue would: for testing the recovery. Only with the `fault-injection` feature.
    #[cfg(feature = "fault-injection")]
    #[must_use]
    pub fn with_injected_faults(mut self, seed: u64) -> Self {
        self.fault_seed = Some(seed);
        self
    }

    /// Starts watching.
    ///
    /// # Errors
    ///
    /// [`WatchError::UnknownKind`] when the target does not exist and no kind was declared;
    /// [`WatchError::Backend`] or [`WatchError::WatchLimit`] when the native backend cannot
    /// start; [`WatchError::Io`] when the current directory is needed and unreadable.
    pub fn build(self) -> Result<Monitor, WatchError> {
        // The channel holds chunks of events: about `capacity` events in all.
        let (sender, receiver) = mpsc::channel(self.capacity.div_ceil(256));
        let running = self.start(sender, 0)?;
        Ok(Monitor {
            receiver,
            buffered: Vec::new().into_iter(),
            _running: running,
        })
    }

    /// Starts watching, sending events to `sender` in parcels of `generation`.
    pub(crate) fn start(
        self,
        sender: mpsc::Sender<Parcel>,
        generation: u64,
    ) -> Result<Running, WatchError> {
        let target = absolute(&self.path)?;
        let kind = match self.kind {
            Some(kind) => kind,
            None => match std::fs::symlink_metadata(&target) {
                Ok(metadata) if metadata.is_dir() => TargetKind::Dir,
                Ok(_) => TargetKind::File,
                Err(_) => return Err(WatchError::UnknownKind { path: target }),
            },
        };
        let hints = Hints::new(self.hint_capacity, self.settle);
        #[cfg(feature = "fault-injection")]
        if let Some(seed) = self.fault_seed {
            hints.inject_faults(seed);
        }

        if self.raw {
            let watcher = start_raw(&target, &sender, generation)?;
            return Ok(Running {
                hints,
                _raw: Some(watcher),
            });
        }
        let source = match self.poll {
            Some(interval) => Source::Poll(interval),
            None => Source::Native(Box::new(Native::new(&target, kind, Arc::clone(&hints))?)),
        };
        tracing::info!(
            backend = if self.poll.is_some() {
                "poll"
            } else {
                "native"
            },
            "backend chosen"
        );
        let ignore = Ignore::new(&target, &self.ignore, self.gitignore)?;
        let lifecycle =
            Lifecycle::new(target, kind, source, Arc::clone(&hints), sender, generation)
                .with_content(self.content)
                .with_ignore(ignore)
                .with_self_writes(self.self_writes)
                .with_attributes(self.attributes);
        let initial = self.initial;
        std::thread::Builder::new()
            .name("fsbridge-monitor".into())
            .spawn(move || lifecycle.run(initial))
            .map_err(|source| WatchError::Io {
                path: PathBuf::new(),
                source,
            })?;
        Ok(Running { hints, _raw: None })
    }
}

/// A started input without its stream; dropping it stops watching and removes the watches.
#[derive(Debug)]
pub(crate) struct Running {
    hints: Arc<Hints>,
    _raw: Option<RecommendedWatcher>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.hints.close();
    }
}

/// `path` made absolute against the current directory, with `.` and `..` resolved lexically.
fn absolute(path: &Path) -> Result<PathBuf, WatchError> {
    let joined = std::path::absolute(path).map_err(|source| WatchError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(crate::scan::lexically_plain(&joined))
}

fn start_raw(
    target: &Path,
    sender: &mpsc::Sender<Parcel>,
    generation: u64,
) -> Result<RecommendedWatcher, WatchError> {
    let ready = Event::now(
        EventKind::Ready {
            kind: TargetKind::Dir,
            present: true,
            size: None,
        },
        target,
    );
    let events = sender.clone();
    let root = target.to_path_buf();
    let mut watcher = RecommendedWatcher::new(
        move |result: notify::Result<notify::Event>| {
            let event = match result {
                Ok(event) if event.need_rescan() => Ok(Event::now(
                    EventKind::Rescanned {
                        reason: RescanReason::Overflow,
                    },
                    &root,
                )),
                Ok(event) => Ok(Event::now(
                    EventKind::Raw {
                        kind: raw_kind(event.kind),
                        paths: event.paths.clone(),
                    },
                    event.paths.first().cloned().unwrap_or_else(|| root.clone()),
                )),
                Err(error) => Err(WatchError::backend(None, error)),
            };
            // The stream may be gone already; the watcher is dropped with it.
            let _ = events.blocking_send((generation, vec![event]));
        },
        notify::Config::default(),
    )
    .map_err(|error| WatchError::backend(Some(target.to_path_buf()), error))?;
    watcher
        .watch(target, RecursiveMode::Recursive)
        .map_err(|error| WatchError::backend(Some(target.to_path_buf()), error))?;
    let _ = sender.try_send((generation, vec![Ok(ready)]));
    Ok(watcher)
}

/// The backend's event kind in a stable lowercase dotted form, such as `modify.name.both`.
fn raw_kind(kind: notify::EventKind) -> String {
    format!("{kind:?}")
        .to_lowercase()
        .replace('(', ".")
        .replace(')', "")
}

/// A running watch: a stream of the target's events.
///
/// Dropping it stops watching and removes its watches.
///
/// # Examples
///
/// ```no_run
/// use futures::StreamExt;
///
/// # async fn example() -> Result<(), fsbridge::WatchError> {
/// let mut monitor = fsbridge::Monitor::dir("/var/log/app")?;
/// while let Some(event) = monitor.next().await {
///     let event = event?;
///     println!("{} {}", event.name(), event.path().display());
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Monitor {
    receiver: mpsc::Receiver<Parcel>,
    /// The rest of the chunk being handed out.
    buffered: std::vec::IntoIter<Result<Event, WatchError>>,
    _running: Running,
}

impl Monitor {
    /// Starts watching the directory `path` with the default settings (see [`MonitorBuilder`]).
    ///
    /// # Errors
    ///
    /// As [`MonitorBuilder::build`].
    pub fn dir(path: impl Into<PathBuf>) -> Result<Self, WatchError> {
        MonitorBuilder::new(path).with_kind(TargetKind::Dir).build()
    }

    /// Starts watching the file `path` with the default settings (see [`MonitorBuilder`]).
    ///
    /// # Errors
    ///
    /// As [`MonitorBuilder::build`].
    pub fn file(path: impl Into<PathBuf>) -> Result<Self, WatchError> {
        MonitorBuilder::new(path)
            .with_kind(TargetKind::File)
            .build()
    }

    /// A builder for watching `path`.
    pub fn builder(path: impl Into<PathBuf>) -> MonitorBuilder {
        MonitorBuilder::new(path)
    }

    /// Waits for the next event; `None` once the monitor has stopped.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a cancelled call loses no event.
    pub async fn recv(&mut self) -> Option<Result<Event, WatchError>> {
        loop {
            if let Some(event) = self.buffered.next() {
                return Some(event);
            }
            self.buffered = self.receiver.recv().await?.1.into_iter();
        }
    }

    /// The blocking twin of [`Monitor::recv`], for code outside an async runtime.
    ///
    /// # Panics
    ///
    /// When called inside an async runtime (as tokio's `blocking_recv`).
    pub fn blocking_recv(&mut self) -> Option<Result<Event, WatchError>> {
        loop {
            if let Some(event) = self.buffered.next() {
                return Some(event);
            }
            self.buffered = self.receiver.blocking_recv()?.1.into_iter();
        }
    }
}

impl Stream for Monitor {
    type Item = Result<Event, WatchError>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(event) = self.buffered.next() {
                return Poll::Ready(Some(event));
            }
            match std::task::ready!(self.receiver.poll_recv(context)) {
                Some((_, chunk)) => self.buffered = chunk.into_iter(),
                None => return Poll::Ready(None),
            }
        }
    }
}

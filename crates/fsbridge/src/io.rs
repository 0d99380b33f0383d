//! Io configs: one optional input and one optional output, both changeable while running,
//! behind one event stream.
//!
//! An [`IoConfig`] is the handle: it sets, replaces and removes the input (a
//! [`MonitorBuilder`]) and the output (a [`Writer`]), and applies write commands. Its
//! [`IoEvents`] is the stream of the current input's events; it stays the same stream across
//! every change of input. Each input started sends its events tagged with a generation number;
//! the stream drops whatever a replaced or removed input still had on its way, so after
//! [`IoConfig::set_input`] returns, the stream yields only the new input's events (starting with
//! its `ready`).
//!
//! Every writer set as an output records what it writes in the config's [`SelfWrites`], and
//! every input consults it, so that a config whose output lies inside its own input (or inside
//! the input of another config sharing the record) does not hear its own writes; see
//! [`crate::origin`].

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::mpsc;

use crate::error::WatchError;
use crate::event::Event;
use crate::monitor::{MonitorBuilder, Parcel, Running};
use crate::origin::{SelfEvents, SelfWrites};
use crate::writer::{WriteCommand, WriteError, WriteOutcome, Writer};

/// How many chunks of events (up to 256 each) wait for the consumer.
const PARCELS: usize = 4;

/// One optional input and one optional output, changeable while running.
///
/// Cheap to clone: clones control the same config. Dropping every handle stops the input; the
/// stream then ends.
///
/// # Examples
///
/// ```no_run
/// use futures::StreamExt;
/// use fsbridge::{IoConfig, MonitorBuilder, WriteCommand, Writer};
///
/// # async fn example() -> Result<(), fsbridge::WatchError> {
/// let (config, mut events) = IoConfig::new();
/// config.set_input(MonitorBuilder::new("/var/log/app"))?;
/// config.set_output(Writer::new("/srv/archive"));
/// while let Some(event) = events.next().await {
///     let event = event?;
///     let line = format!("{} {}\n", event.name(), event.path().display());
///     config.apply(WriteCommand::append("seen.log", line)).await;
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct IoConfig {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    sender: mpsc::Sender<Parcel>,
    /// The generation of the current input; the stream drops parcels of older ones.
    current: Arc<AtomicU64>,
    input: Mutex<Option<Running>>,
    output: Mutex<Option<Writer>>,
    self_writes: SelfWrites,
    self_events: SelfEvents,
}

impl IoConfig {
    /// A config with neither input nor output, and the stream of its events. Its own writes are
    /// recognised and their events dropped.
    pub fn new() -> (Self, IoEvents) {
        Self::with_self_writes(&SelfWrites::new(), SelfEvents::Drop)
    }

    /// As [`IoConfig::new`], recording writes in `record` (share one record among configs whose
    /// outputs and inputs overlap) and handling the events they cause as `handling` says.
    pub fn with_self_writes(record: &SelfWrites, handling: SelfEvents) -> (Self, IoEvents) {
        let (sender, receiver) = mpsc::channel(PARCELS);
        let current = Arc::new(AtomicU64::new(0));
        let config = Self {
            shared: Arc::new(Shared {
                sender,
                current: Arc::clone(&current),
                input: Mutex::new(None),
                output: Mutex::new(None),
                self_writes: record.clone(),
                self_events: handling,
            }),
        };
        let events = IoEvents {
            receiver,
            current,
            newest: 0,
            buffered: Vec::new().into_iter(),
        };
        (config, events)
    }

    /// Starts watching as `input` says, replacing the current input if there is one. When the
    /// new input cannot start, the current one is kept.
    ///
    /// The input's own capacity setting is not used: the config's stream has its own bound.
    ///
    /// # Errors
    ///
    /// As [`MonitorBuilder::build`].
    pub fn set_input(&self, input: MonitorBuilder) -> Result<(), WatchError> {
        let shared = &self.shared;
        let mut slot = shared.input.lock().unwrap_or_else(PoisonError::into_inner);
        let generation = shared.current.load(Ordering::Acquire) + 1;
        let running = input
            .with_self_writes(&shared.self_writes, shared.self_events)
            .start(shared.sender.clone(), generation)?;
        shared.current.store(generation, Ordering::Release);
        // The old input stops here; what it still sends is dropped by the stream.
        *slot = Some(running);
        Ok(())
    }

    /// Stops watching; `false` when there was no input. The stream stays open for a later input.
    pub fn remove_input(&self) -> bool {
        let shared = &self.shared;
        let mut slot = shared.input.lock().unwrap_or_else(PoisonError::into_inner);
        shared.current.fetch_add(1, Ordering::AcqRel);
        slot.take().is_some()
    }

    /// Whether the config has an input.
    pub fn has_input(&self) -> bool {
        self.shared
            .input
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Makes `writer` the output, replacing the current one. The writer records what it writes
    /// in the config's [`SelfWrites`].
    pub fn set_output(&self, writer: Writer) {
        let writer = writer.with_self_writes(&self.shared.self_writes);
        *self
            .shared
            .output
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(writer);
    }

    /// Removes the output; `false` when there was none. Commands are then refused with
    /// `no_output` until another output is set.
    pub fn remove_output(&self) -> bool {
        self.shared
            .output
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .is_some()
    }

    /// The current output, if any.
    pub fn output(&self) -> Option<Writer> {
        self.shared
            .output
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Applies `command` with the current output, or refuses it with
    /// [`WriteError::NoOutput`] when there is none.
    pub async fn apply(&self, command: WriteCommand) -> WriteOutcome {
        match self.output() {
            Some(writer) => writer.apply(command).await,
            None => no_output(command),
        }
    }

    /// The blocking twin of [`IoConfig::apply`].
    pub fn blocking_apply(&self, command: WriteCommand) -> WriteOutcome {
        match self.output() {
            Some(writer) => writer.blocking_apply(command),
            None => no_output(command),
        }
    }
}

fn no_output(command: WriteCommand) -> WriteOutcome {
    let error = WriteError::NoOutput {
        path: command.path().to_path_buf(),
        reason:
            "this config has no output: set one first (`output` op, or an [io.NAME.output] table)"
                .into(),
    };
    WriteOutcome::new(command, Err(error))
}

/// The event stream of an [`IoConfig`]: the events of whichever input the config has, in
/// order, across changes of input. Ends when every handle of the config is dropped.
#[derive(Debug)]
pub struct IoEvents {
    receiver: mpsc::Receiver<Parcel>,
    current: Arc<AtomicU64>,
    /// The newest generation seen; parcels of older ones are left out.
    newest: u64,
    /// The rest of the chunk being handed out, of generation `newest`.
    buffered: std::vec::IntoIter<Result<Event, WatchError>>,
}

impl IoEvents {
    /// The next event of the chunk being handed out, unless its input was replaced meanwhile.
    fn next_buffered(&mut self) -> Option<Result<Event, WatchError>> {
        if self.current.load(Ordering::Acquire) > self.newest {
            self.buffered = Vec::new().into_iter();
        }
        self.buffered.next()
    }

    /// Whether a parcel of `generation` comes from the current input.
    fn accepts(&mut self, generation: u64) -> bool {
        self.newest = self
            .newest
            .max(self.current.load(Ordering::Acquire))
            .max(generation);
        generation == self.newest
    }

    /// Waits for the next event; `None` once the config is gone.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a cancelled call loses no event.
    pub async fn recv(&mut self) -> Option<Result<Event, WatchError>> {
        loop {
            if let Some(event) = self.next_buffered() {
                return Some(event);
            }
            let (generation, chunk) = self.receiver.recv().await?;
            if self.accepts(generation) {
                self.buffered = chunk.into_iter();
            }
        }
    }
}

impl Stream for IoEvents {
    type Item = Result<Event, WatchError>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(event) = self.next_buffered() {
                return Poll::Ready(Some(event));
            }
            match std::task::ready!(self.receiver.poll_recv(context)) {
                Some((generation, chunk)) => {
                    if self.accepts(generation) {
                        self.buffered = chunk.into_iter();
                    }
                }
                None => return Poll::Ready(None),
            }
        }
    }
}

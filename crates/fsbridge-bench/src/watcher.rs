//! The watchers under test: how each is started, how its output lines are read and counted.
//!
//! One [`Running`] watcher is one child process with two reader threads (stdout and stderr).
//! The stdout thread timestamps every line as it arrives and matches it against the paths the
//! current scenario expects; the scenario thread only waits on that state. Timestamps are taken
//! on arrival in this process, so every watcher pays the same pipe and wake-up cost.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use rustix::process::{Pid, Signal, kill_process};

/// The inotify events `inotifywait` asks for: the same mask notify's inotify backend uses (and
/// so fsbridge), so that both read the same kernel events.
const INOTIFYWAIT_EVENTS: &str =
    "attrib,create,open,delete,close_write,modify,move,delete_self,move_self";

/// A watcher under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Watcher {
    /// `fsbridge watch --json`, default settle window (10 ms).
    Fsbridge,
    /// `fsbridge watch --json --settle 0`.
    FsbridgeSettle0,
    /// `inotifywait -m -r` with notify's event mask.
    Inotifywait,
    /// The `notify-raw` binary of this crate.
    NotifyRaw,
}

impl Watcher {
    /// The name used in tables and progress lines.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Fsbridge => "fsbridge",
            Self::FsbridgeSettle0 => "fsbridge --settle 0",
            Self::Inotifywait => "inotifywait",
            Self::NotifyRaw => "notify-raw",
        }
    }
}

/// Where the watcher binaries are.
#[derive(Debug)]
pub(crate) struct Tools {
    pub(crate) fsbridge: PathBuf,
    pub(crate) notify_raw: PathBuf,
    pub(crate) inotifywait: PathBuf,
}

/// What one output line says, once parsed.
enum Line<'a> {
    Ready,
    /// An overflow notice or a rescan: events were lost (and, for fsbridge, recovered).
    Rescan,
    Path(&'a str),
    Other,
}

/// The fields of an fsbridge NDJSON line the driver needs.
#[derive(serde::Deserialize)]
struct FsbridgeLine<'a> {
    event: &'a str,
    #[serde(borrow)]
    path: Option<std::borrow::Cow<'a, str>>,
}

/// What the reader threads have seen so far.
#[derive(Debug, Default)]
struct State {
    ready: Option<Instant>,
    rescanned: bool,
    lines: u64,
    last_line: Option<Instant>,
    /// Expected path → number of lines that named it.
    expected: HashMap<Box<str>, u32>,
    /// Distinct expected paths seen at least once.
    seen: usize,
    last_seen: Option<Instant>,
    /// One path whose every line is timestamped (the latency scenario).
    probe: Option<Box<str>>,
    probe_arrivals: Vec<Instant>,
    /// While set, the stdout thread reads nothing (the slow-consumer scenario).
    paused: bool,
    stderr_tail: Vec<String>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A reader thread that panicked leaves plain counters behind: still worth reading.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// How far a watcher got with the expected paths.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Progress {
    pub(crate) seen: usize,
    pub(crate) expected: usize,
    pub(crate) last_seen: Option<Instant>,
}

/// A started watcher process.
#[derive(Debug)]
pub(crate) struct Running {
    watcher: Watcher,
    child: Child,
    shared: Arc<Shared>,
    readers: Vec<JoinHandle<()>>,
    pub(crate) started: Instant,
}

impl Running {
    /// Starts `watcher` on `root` (an existing directory).
    ///
    /// # Errors
    ///
    /// When the process cannot be started.
    pub(crate) fn start(watcher: Watcher, tools: &Tools, root: &Path) -> anyhow::Result<Self> {
        let mut command = match watcher {
            Watcher::Fsbridge | Watcher::FsbridgeSettle0 => {
                let mut command = Command::new(&tools.fsbridge);
                command.arg("watch").arg("--json");
                if watcher == Watcher::FsbridgeSettle0 {
                    command.args(["--settle", "0"]);
                }
                command.arg(root);
                command
            }
            Watcher::Inotifywait => {
                let mut command = Command::new(&tools.inotifywait);
                command
                    .args(["-m", "-r", "-e", INOTIFYWAIT_EVENTS, "--format", "%e %w%f"])
                    .arg(root);
                command
            }
            Watcher::NotifyRaw => {
                let mut command = Command::new(&tools.notify_raw);
                command.arg(root);
                command
            }
        };
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());

        let started = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", watcher.name()))?;
        let shared = Arc::new(Shared::default());
        let stdout = child.stdout.take().context("stdout is piped")?;
        let stderr = child.stderr.take().context("stderr is piped")?;
        let readers = vec![
            spawn_reader(watcher, stdout, Arc::clone(&shared), read_stdout)?,
            spawn_reader(watcher, stderr, Arc::clone(&shared), read_stderr)?,
        ];
        Ok(Self {
            watcher,
            child,
            shared,
            readers,
            started,
        })
    }

    /// The watcher's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the watcher says its watches are in place; returns when it said so.
    ///
    /// # Errors
    ///
    /// When `timeout` passes first or the watcher exits.
    pub(crate) fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(ready) = self.shared.lock().ready {
                return Ok(ready);
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before it was ready: {}",
                    self.watcher.name(),
                    self.stderr_tail()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} was not ready within {timeout:?}: {}",
                    self.watcher.name(),
                    self.stderr_tail()
                );
            }
            let state = self.shared.lock();
            drop(
                self.shared
                    .changed
                    .wait_timeout(state, Duration::from_millis(20)),
            );
        }
    }

    /// Sets the paths the scenario expects from now on, forgetting earlier counts.
    pub(crate) fn expect(&self, paths: impl IntoIterator<Item = String>) {
        let mut state = self.shared.lock();
        state.expected = paths.into_iter().map(|path| (path.into(), 0)).collect();
        state.seen = 0;
        state.last_seen = None;
        state.rescanned = false;
    }

    /// Timestamps every line naming `path` from now on.
    pub(crate) fn probe(&self, path: String) {
        let mut state = self.shared.lock();
        state.probe = Some(path.into());
        state.probe_arrivals.clear();
    }

    /// The number of probe lines so far.
    pub(crate) fn probe_count(&self) -> usize {
        self.shared.lock().probe_arrivals.len()
    }

    /// Waits for probe line number `index` (counting from 0) until `deadline`.
    pub(crate) fn wait_probe(&self, index: usize, deadline: Instant) -> Option<Instant> {
        let mut state = self.shared.lock();
        loop {
            if let Some(arrival) = state.probe_arrivals.get(index) {
                return Some(*arrival);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// Waits until every expected path was seen, or nothing was printed for `quiet` (counted
    /// from `since` at the earliest), or `deadline` passes.
    pub(crate) fn wait_caught_up(
        &self,
        since: Instant,
        quiet: Duration,
        deadline: Instant,
    ) -> Progress {
        let mut state = self.shared.lock();
        loop {
            let now = Instant::now();
            let last_activity = state.last_line.map_or(since, |line| line.max(since));
            if state.seen == state.expected.len()
                || now >= deadline
                || now.duration_since(last_activity) >= quiet
            {
                return Progress {
                    seen: state.seen,
                    expected: state.expected.len(),
                    last_seen: state.last_seen,
                };
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, Duration::from_millis(50))
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// Waits until the watcher printed nothing for `quiet` (or `timeout` passes); returns
    /// whether it said, by then, that it lost events. fsbridge says `rescanned` after the
    /// batch the rescan produced, so the notice comes after the last expected path.
    pub(crate) fn wait_silent(&self, quiet: Duration, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        loop {
            let now = Instant::now();
            let silent = state
                .last_line
                .is_none_or(|line| now.duration_since(line) >= quiet);
            if silent || now >= deadline {
                return state.rescanned;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, Duration::from_millis(20))
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// Stops or resumes reading the watcher's stdout.
    pub(crate) fn set_paused(&self, paused: bool) {
        self.shared.lock().paused = paused;
        self.shared.changed.notify_all();
    }

    /// Sends `signal` to the watcher.
    ///
    /// # Errors
    ///
    /// When the signal cannot be sent.
    pub(crate) fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        let pid = Pid::from_child(&self.child);
        kill_process(pid, signal).with_context(|| format!("cannot signal {}", self.watcher.name()))
    }

    /// The last lines the watcher wrote on stderr, joined.
    pub(crate) fn stderr_tail(&self) -> String {
        self.shared.lock().stderr_tail.join(" | ")
    }

    /// Ends the watcher (SIGTERM, SIGKILL after two seconds) and joins its reader threads.
    pub(crate) fn stop(mut self) {
        self.set_paused(false);
        let _ = self.signal(Signal::CONT);
        let _ = self.signal(Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

/// Starts a thread running `read` over one of the watcher's output pipes.
fn spawn_reader<R: Read + Send + 'static>(
    watcher: Watcher,
    pipe: R,
    shared: Arc<Shared>,
    read: fn(Watcher, R, &Shared),
) -> anyhow::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name(format!("read {}", watcher.name()))
        .spawn(move || read(watcher, pipe, &shared))
        .context("cannot start a reader thread")
}

/// Reads stdout line by line until end of file, timestamping and matching each line.
fn read_stdout(watcher: Watcher, pipe: impl Read, shared: &Shared) {
    let mut reader = BufReader::with_capacity(64 * 1024, pipe);
    let mut buffer = Vec::with_capacity(256);
    loop {
        drop(
            shared
                .changed
                .wait_while(shared.lock(), |state| state.paused)
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let arrival = Instant::now();
        let text = String::from_utf8_lossy(&buffer);
        let text = text.trim_end_matches('\n');

        let fsbridge_line;
        let line = match watcher {
            Watcher::Fsbridge | Watcher::FsbridgeSettle0 => {
                fsbridge_line = serde_json::from_str::<FsbridgeLine<'_>>(text).ok();
                match &fsbridge_line {
                    Some(parsed) if parsed.event == "ready" => Line::Ready,
                    Some(parsed) if parsed.event == "rescanned" => Line::Rescan,
                    Some(FsbridgeLine {
                        path: Some(path), ..
                    }) => Line::Path(path),
                    _ => Line::Other,
                }
            }
            Watcher::Inotifywait => match text.split_once(' ') {
                Some((events, _)) if events.contains("Q_OVERFLOW") => Line::Rescan,
                Some((_, path)) => Line::Path(path),
                None => Line::Other,
            },
            Watcher::NotifyRaw => match text {
                "ready" => Line::Ready,
                "rescan" => Line::Rescan,
                path if path.starts_with('/') => Line::Path(path),
                _ => Line::Other,
            },
        };

        let mut state = shared.lock();
        record(&mut state, &line, arrival);
        drop(state);
        shared.changed.notify_all();
    }
}

/// Counts one stdout line.
fn record(state: &mut State, line: &Line<'_>, arrival: Instant) {
    state.lines += 1;
    state.last_line = Some(arrival);
    match line {
        Line::Ready => {
            state.ready.get_or_insert(arrival);
        }
        Line::Rescan => state.rescanned = true,
        Line::Path(path) => {
            if state.probe.as_deref() == Some(*path) {
                state.probe_arrivals.push(arrival);
            }
            if let Some(count) = state.expected.get_mut(*path) {
                *count += 1;
                if *count == 1 {
                    state.seen += 1;
                    state.last_seen = Some(arrival);
                }
            }
        }
        Line::Other => {}
    }
}

/// Reads stderr: keeps the last lines for error messages, and takes `inotifywait`'s
/// "Watches established." as its `ready`.
fn read_stderr(watcher: Watcher, pipe: impl Read, shared: &Shared) {
    let reader = BufReader::new(pipe);
    for line in reader.lines() {
        let Ok(line) = line else { return };
        let arrival = Instant::now();
        let mut state = shared.lock();
        if watcher == Watcher::Inotifywait && line.contains("Watches established") {
            state.ready.get_or_insert(arrival);
        }
        if state.stderr_tail.len() == 8 {
            state.stderr_tail.remove(0);
        }
        state.stderr_tail.push(line);
        drop(state);
        shared.changed.notify_all();
    }
}

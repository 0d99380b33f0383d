//! The inotify instance of the native backend and the thread that reads it.
//!
//! Watches are added by the reconciler's thread, directly with `inotify_add_watch` (a few
//! microseconds each), and events are read here on a thread of their own. The two share the map
//! from watch descriptors to paths: the reader turns each event into a path and hands it to
//! [`Hints`]; it never decides anything.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask, Watches};
use rustix::event::Timespec;

use super::{Hints, Touch, is_relevant};
use crate::event::{RescanReason, TargetKind};
use crate::scan;

/// What a watch on an ancestor of the target reports: only what changes where the target's path
/// leads. A busy neighbour of the target (a log next to it) must cost nothing.
const ANCESTOR: WatchMask = WatchMask::CREATE
    .union(WatchMask::DELETE)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::DELETE_SELF)
    .union(WatchMask::MOVE_SELF)
    .union(WatchMask::ONLYDIR)
    .union(WatchMask::EXCL_UNLINK);

/// What a directory watch reports: every change to its entries, and its own end. Reads and
/// opens are left out: they change nothing, and the reconciler's own walks would flood the
/// queue with them.
const DIRECTORY: WatchMask = ANCESTOR
    .union(WatchMask::MODIFY)
    .union(WatchMask::CLOSE_WRITE)
    .union(WatchMask::ATTRIB);

/// What a watch is for; it decides the events asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Watched {
    /// A directory of the tree.
    Directory,
    /// An ancestor of the target.
    Ancestor,
    /// A file with several names.
    File,
}

/// What a watch on a file with several names reports: writes through any of its names.
const FILE: WatchMask = WatchMask::MODIFY
    .union(WatchMask::CLOSE_WRITE)
    .union(WatchMask::ATTRIB)
    .union(WatchMask::DELETE_SELF);

/// Watch descriptors (by number) and the paths they watch.
type Paths = Arc<Mutex<HashMap<i32, (WatchDescriptor, PathBuf)>>>;

fn lock(paths: &Paths) -> MutexGuard<'_, HashMap<i32, (WatchDescriptor, PathBuf)>> {
    paths.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An inotify instance with its reading thread; dropping it stops the thread.
pub(crate) struct Instance {
    watches: Watches,
    paths: Paths,
    /// Written to (by dropping it) to stop the reader.
    stop: Option<OwnedFd>,
    reader: Option<JoinHandle<()>>,
}

impl Instance {
    /// Starts an instance whose events relevant to `target` go to `hints`.
    pub(crate) fn start(target: &Path, kind: TargetKind, hints: Arc<Hints>) -> io::Result<Self> {
        let inotify = Inotify::init()?;
        let watches = inotify.watches();
        let paths: Paths = Arc::default();
        let (stopped, stop) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let reader = Reader {
            inotify,
            paths: Arc::clone(&paths),
            hints,
            target: target.to_path_buf(),
            kind,
        };
        let reader = std::thread::Builder::new()
            .name("fsbridge-inotify".into())
            .spawn(move || reader.run(&stopped))?;
        Ok(Self {
            watches,
            paths,
            stop: Some(stop),
            reader: Some(reader),
        })
    }

    /// Watches the directory (or, with `directory` false, the file) at `abs`; returns the
    /// descriptor, which is the same for every path of one inode.
    pub(crate) fn add(&mut self, abs: &Path, watched: Watched) -> io::Result<i32> {
        let mask = match watched {
            Watched::Directory => DIRECTORY,
            Watched::Ancestor => ANCESTOR,
            Watched::File => FILE,
        };
        let descriptor = self.watches.add(abs, mask)?;
        let wd = descriptor.get_watch_descriptor_id();
        lock(&self.paths).insert(wd, (descriptor, abs.to_path_buf()));
        Ok(wd)
    }

    /// Removes the watch `wd` if it still watches `abs` (a watch that followed its directory to
    /// another path stays).
    pub(crate) fn remove(&mut self, wd: i32, abs: &Path) {
        let mut paths = lock(&self.paths);
        if paths.get(&wd).is_none_or(|(_, watched)| watched != abs) {
            return;
        }
        let Some((descriptor, _)) = paths.remove(&wd) else {
            return;
        };
        drop(paths);
        // The kernel drops the watch of a deleted directory by itself: an error only says so.
        let _ = self.watches.remove(descriptor);
    }

    /// Removes the watch `wd`, whatever path it reports now.
    pub(crate) fn remove_any(&mut self, wd: i32) {
        let Some((descriptor, _)) = lock(&self.paths).remove(&wd) else {
            return;
        };
        let _ = self.watches.remove(descriptor);
    }

    /// Makes the watch `wd` report its events at `abs` (another name of the same file).
    pub(crate) fn point(&mut self, wd: i32, abs: &Path) {
        if let Some((_, watched)) = lock(&self.paths).get_mut(&wd) {
            *watched = abs.to_path_buf();
        }
    }

    /// Removes every watch whose descriptor `keep` refuses: after a rescan placed the watches
    /// again, those of directories that left the tree while events were lost. Removing them one
    /// by one (rather than all watches before the rescan) keeps the kernel queue from
    /// overflowing again with their removal notices.
    pub(crate) fn retain(&mut self, keep: impl Fn(i32) -> bool) {
        let dead: Vec<WatchDescriptor> = {
            let mut paths = lock(&self.paths);
            let dead: Vec<i32> = paths.keys().copied().filter(|wd| !keep(*wd)).collect();
            dead.iter()
                .filter_map(|wd| paths.remove(wd))
                .map(|(descriptor, _)| descriptor)
                .collect()
        };
        for descriptor in dead {
            let _ = self.watches.remove(descriptor);
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // Closing the pipe's write end wakes the reader, which then ends.
        drop(self.stop.take());
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// The reading side, on its own thread.
struct Reader {
    inotify: Inotify,
    paths: Paths,
    hints: Arc<Hints>,
    target: PathBuf,
    kind: TargetKind,
}

impl Reader {
    fn run(mut self, stopped: &OwnedFd) {
        let mut buffer = vec![0; 64 * 1024];
        let mut touched = Vec::new();
        loop {
            let mut descriptors = [
                rustix::event::PollFd::new(&self.inotify, rustix::event::PollFlags::IN),
                rustix::event::PollFd::new(stopped, rustix::event::PollFlags::IN),
            ];
            match rustix::event::poll(&mut descriptors, None) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(error) => {
                    tracing::warn!(%error, "cannot wait for inotify events");
                    return;
                }
            }
            if !descriptors[1].revents().is_empty() {
                return;
            }
            self.drain(&mut buffer, &mut touched);
            // Waking for every few events of a burst costs a context switch each, here and in
            // the writing process; while the batch is not due, let the queue fill a little.
            let pause = self.hints.gather_pause();
            if let Some(timeout) = pause.and_then(|pause| Timespec::try_from(pause).ok()) {
                let mut descriptors = [rustix::event::PollFd::new(
                    stopped,
                    rustix::event::PollFlags::IN,
                )];
                if matches!(
                    rustix::event::poll(&mut descriptors, Some(&timeout)),
                    Ok(1..)
                ) {
                    return;
                }
            }
        }
    }

    /// Reads every event waiting in the queue and hands them to the hints, one lock per read.
    fn drain(&mut self, buffer: &mut [u8], touched: &mut Vec<(PathBuf, Touch)>) {
        let mut moves = Vec::new();
        loop {
            match self.inotify.read_events(buffer) {
                Ok(events) => {
                    let paths = lock(&self.paths);
                    let mut ended = Vec::new();
                    let mut previous = None;
                    for event in events {
                        let wd = event.wd.get_watch_descriptor_id();
                        tracing::trace!(wd, mask = ?event.mask, name = ?event.name, cookie = event.cookie, "inotify event");
                        let Some(touch) = touch_of(event.mask) else {
                            previous = None;
                            if event.mask.contains(EventMask::Q_OVERFLOW) {
                                // The hints read before the overflow go first, as they happened.
                                pair_renames(touched, &mut moves);
                                self.hints.touch_all(touched.drain(..));
                                self.hints.rescan(RescanReason::Overflow);
                            } else {
                                ended.push(wd);
                            }
                            continue;
                        };
                        let half = event
                            .mask
                            .intersects(EventMask::MOVED_FROM | EventMask::MOVED_TO);
                        // Events in a row that say the same of one path (a new file's creation
                        // and the close of its first write, a file's writes) make one hint.
                        let key = Some((wd, event.name, touch));
                        if key == previous && !half {
                            continue;
                        }
                        previous = key;
                        if self.hint(&paths, wd, event.name, touch, touched) && half {
                            moves.push(Half {
                                at: touched.len() - 1,
                                cookie: event.cookie,
                                from: event.mask.contains(EventMask::MOVED_FROM),
                            });
                        }
                    }
                    drop(paths);
                    pair_renames(touched, &mut moves);
                    self.hints.touch_all(touched.drain(..));
                    if !ended.is_empty() {
                        let mut paths = lock(&self.paths);
                        for wd in ended {
                            paths.remove(&wd);
                        }
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) => {
                    tracing::warn!(%error, "cannot read inotify events, rescanning");
                    self.hints.rescan(RescanReason::BackendError);
                    return;
                }
            }
        }
    }

    /// Turns one event into a hint in `touched`; whether it was one (its path is in the
    /// watched tree).
    fn hint(
        &self,
        paths: &HashMap<i32, (WatchDescriptor, PathBuf)>,
        wd: i32,
        name: Option<&OsStr>,
        touch: Touch,
        touched: &mut Vec<(PathBuf, Touch)>,
    ) -> bool {
        let Some((_, watched)) = paths.get(&wd) else {
            return false;
        };
        let path = match name {
            Some(name) => scan::absolute(watched, name.as_bytes()),
            None => watched.clone(),
        };
        if !is_relevant(&path, &self.target, self.kind) {
            return false;
        }
        touched.push((path, touch));
        true
    }
}

/// One half of a rename among the hints of a read: the hint at `at`.
struct Half {
    at: usize,
    cookie: u32,
    from: bool,
}

/// A rename inside the watched tree is a `MOVED_FROM` and a `MOVED_TO` with one cookie, both in the
/// tree; only an unpaired half crosses the tree's boundary (moved in or out). The paired halves
/// become a removal and a change, which the reconciler pairs into a move by inode.
///
/// LIMITATION: the reason is tied to the paths of the halves, because the reconciler reports
/// net changes: a file renamed inside the tree and then out within one window is deleted under
/// its first name, which no unpaired half named, so the deletion carries no `moved_out`.
fn pair_renames(touched: &mut [(PathBuf, Touch)], moves: &mut Vec<Half>) {
    if moves.is_empty() {
        return;
    }
    let sources: HashSet<u32> = moves
        .iter()
        .filter(|half| half.from)
        .map(|half| half.cookie)
        .collect();
    let paired: HashSet<u32> = moves
        .iter()
        .filter(|half| !half.from && sources.contains(&half.cookie))
        .map(|half| half.cookie)
        .collect();
    for half in moves.drain(..) {
        if paired.contains(&half.cookie) {
            touched[half.at].1 = if half.from {
                Touch::Removed
            } else {
                Touch::Changed
            };
        }
    }
}

/// What an event says happened at its path; `None` for the events that name no change (an
/// overflow, a watch ended).
fn touch_of(mask: EventMask) -> Option<Touch> {
    if mask.intersects(EventMask::Q_OVERFLOW | EventMask::IGNORED) {
        None
    } else if mask.contains(EventMask::MOVED_TO) {
        Some(Touch::MovedIn)
    } else if mask.intersects(EventMask::MOVED_FROM | EventMask::MOVE_SELF) {
        Some(Touch::MovedOut)
    } else if mask.intersects(EventMask::DELETE | EventMask::DELETE_SELF) {
        Some(Touch::Removed)
    } else {
        Some(Touch::Changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creation_and_first_close_are_the_same_hint_and_removals_are_not() {
        let created = touch_of(EventMask::CREATE);
        let closed = touch_of(EventMask::CLOSE_WRITE);
        let deleted = touch_of(EventMask::DELETE);

        assert_eq!(created, closed);
        assert_ne!(created, deleted);
        assert_eq!(touch_of(EventMask::IGNORED), None);
        assert_eq!(touch_of(EventMask::Q_OVERFLOW), None);
    }
}

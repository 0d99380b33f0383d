//! Recognising fsbridge's own writes in what it watches, so that a program that writes into a
//! tree it also watches does not feed on its own output.
//!
//! A [`Writer`](crate::Writer) given a [`SelfWrites`] records every step its commands take, as
//! a transition between two exact states of a file: identity (device, inode, birth time), size
//! and modification time. "The file in state A became state B", "the file in state A is being
//! written now", "the file in state A was deleted", and "this file or directory was created by
//! us". A monitor given the same record asks whether the change it found is a chain of such
//! steps, starting from the state its previous event reported:
//!
//! - a file updated from state P to state N is ours when our steps lead from P to N; a change
//!   by another program before, between or after ours breaks the chain and is reported (with
//!   everything it came with);
//! - a file created is ours when we created that inode under that name in that directory
//!   (directory by identity, so no path spelling matters), and our steps lead from its first
//!   state to the one found; the same file appearing under another name (a hard link, a move
//!   back into the tree by someone else) is not ours;
//! - a directory created is ours when we created it there;
//! - a deletion is ours when our steps lead from the state last reported to our deletion, or
//!   when it was one of our temporary files (renamed over a file, or left by a failed command);
//! - a move is ours when it moved one of our temporary files into place, in the state our steps
//!   led it to;
//! - a change of mode or owner of a file changed in place is never ours (the writer changes
//!   them only on its temporary files); with attributes reported, a file whose mode or owner
//!   differs from the one our command saw or left in that state was chmodded or chowned by
//!   someone else, and is reported.
//!
//! A state seen while one of our commands is writing the file counts as ours, and is
//! remembered as seen during that command: the chain goes on from where the command ended. A
//! creation is announced before it happens, so a name found before its inode was recorded (the
//! writer descheduled in between) is ours too.
//!
//! LIMITATION: while a command is writing a file, another program's change to that same file
//! in the same moment is taken for the writer's too; a change before or after is not.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use crate::event::Attributes;
use crate::index::Entry;

/// How many steps and created inodes are remembered; the oldest are forgotten first.
const REMEMBERED: usize = 16_384;

/// The longest chain of steps followed from one state to another.
const LONGEST_CHAIN: usize = 256;

/// How many creations may be announced at once (one per command in flight, in practice).
const PENDING: usize = 1024;

/// What fsbridge does with the events its own writes cause.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SelfEvents {
    /// They are not reported (the default).
    #[default]
    Drop,
    /// They are reported with [`Origin::SelfWrite`] (`"origin":"self"`).
    Mark,
}

impl SelfEvents {
    /// The option's name: `drop` or `mark`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Drop => "drop",
            Self::Mark => "mark",
        }
    }
}

/// Who made a change, when fsbridge knows it was itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A [`Writer`](crate::Writer) sharing the monitor's [`SelfWrites`] made it.
    SelfWrite,
}

impl Origin {
    /// The name used on the wire: `self`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SelfWrite => "self",
        }
    }
}

/// One exact state of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct State {
    dev: u64,
    ino: u64,
    birth: u64,
    size: u64,
    mtime_sec: i64,
    mtime_nsec: u32,
}

impl From<&Entry> for State {
    fn from(entry: &Entry) -> Self {
        Self {
            dev: entry.id.dev,
            ino: entry.id.ino,
            birth: entry.id.birth,
            size: entry.size,
            mtime_sec: entry.mtime_sec,
            mtime_nsec: entry.mtime_nsec,
        }
    }
}

/// What one of our commands did to a file in a given state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// It is writing it now.
    Writing,
    /// It turned it into this state.
    To(State),
    /// It deleted it.
    Deleted,
    /// A state seen while it wrote the file that was in the given state: where that write ended
    /// is where the chain goes on.
    During(State),
}

/// An inode we created, by (device, inode).
type Inode = (u64, u64);

/// Where an entry is: its directory's (device, inode), and its name there.
pub(crate) type Place = (u64, u64, Box<[u8]>);

/// The record of what fsbridge's writers did, shared by writers and monitors.
///
/// Cheap to clone: clones share one record. Memory is bounded: past 16,384 remembered steps and
/// created files, the oldest are forgotten.
#[derive(Clone, Default)]
pub struct SelfWrites {
    inner: Arc<Mutex<Record>>,
}

#[derive(Default)]
struct Record {
    /// From a state, what our command did.
    steps: HashMap<State, Step>,
    /// Inodes we created: birth time, what they were first, and the places we put them.
    born: HashMap<Inode, Creation>,
    /// Places where a command is creating something right now: a monitor may find it there
    /// before its inode is known (the writer was descheduled between the two).
    pending: HashSet<Place>,
    /// The mode and owner a file had in a state our commands started from or left: a state
    /// found with others was chmodded or chowned by someone else.
    modes: HashMap<State, Attributes>,
    order: VecDeque<Remembered>,
}

/// An inode we created.
#[derive(Debug)]
struct Creation {
    birth: u64,
    first: Born,
    places: Vec<Place>,
}

/// What an inode we created was first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Born {
    /// A file, in this state.
    File(State),
    /// A directory.
    Dir,
}

#[derive(Clone, Copy)]
enum Remembered {
    Step(State),
    Born(Inode),
    Mode(State),
}

impl Record {
    fn remember(&mut self, what: Remembered) {
        self.order.push_back(what);
        while self.order.len() > REMEMBERED {
            match self.order.pop_front() {
                Some(Remembered::Step(state)) => {
                    self.steps.remove(&state);
                }
                Some(Remembered::Born(inode)) => {
                    self.born.remove(&inode);
                }
                Some(Remembered::Mode(state)) => {
                    self.modes.remove(&state);
                }
                None => break,
            }
        }
    }

    /// Remembers the mode and owner `entry` has, when known.
    fn mode(&mut self, entry: &Entry) {
        if let Some(attributes) = entry.attributes {
            let state = State::from(entry);
            if self.modes.insert(state, attributes).is_none() {
                self.remember(Remembered::Mode(state));
            }
        }
    }

    fn step(&mut self, from: State, step: Step) {
        if self.steps.insert(from, step).is_none() {
            self.remember(Remembered::Step(from));
        }
    }

    /// What we know of the inode of `entry`, if we created it.
    fn born(&self, entry: &Entry) -> Option<&Creation> {
        let creation = self.born.get(&(entry.id.dev, entry.id.ino))?;
        let birth = creation.birth;
        // A birth time on both sides that differs: another file with a reused inode number.
        (birth == 0 || entry.id.birth == 0 || birth == entry.id.birth).then_some(creation)
    }

    /// What the inode of `entry` was first, if we created it and put it at `place`.
    fn born_at(&self, entry: &Entry, place: &Place) -> Option<Born> {
        self.born(entry)
            .filter(|creation| creation.places.contains(place))
            .map(|creation| creation.first)
    }

    /// Whether our steps lead from `from` to a deletion.
    fn leads_to_deletion(&self, from: State) -> bool {
        let mut current = from;
        for _ in 0..LONGEST_CHAIN {
            match self.steps.get(&current) {
                Some(Step::To(next)) => current = *next,
                Some(Step::During(start)) => current = *start,
                Some(Step::Deleted) => return true,
                Some(Step::Writing) | None => return false,
            }
        }
        false
    }

    /// Whether our steps lead from `from` to `to`. A state seen while a command writes is
    /// remembered as a step of it.
    fn leads(&mut self, from: State, to: State) -> bool {
        let mut current = from;
        for _ in 0..LONGEST_CHAIN {
            if current == to {
                return true;
            }
            match self.steps.get(&current) {
                Some(Step::To(next)) => current = *next,
                Some(Step::Writing) => {
                    // The state seen now is one the command passes through: once it ends, the
                    // chain goes on from where it ended, not from anything after `to`.
                    if to != current {
                        self.step(to, Step::During(current));
                    }
                    return true;
                }
                // A state seen mid-write: the write's start says whether it is over.
                Some(Step::During(start)) => current = *start,
                Some(Step::Deleted) | None => return false,
            }
        }
        false
    }
}

impl fmt::Debug for SelfWrites {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let record = self.lock();
        formatter
            .debug_struct("SelfWrites")
            .field("steps", &record.steps.len())
            .field("created", &record.born.len())
            .finish()
    }
}

impl SelfWrites {
    /// An empty record.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Record> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A command is about to create a file or directory at `place`: until [`Self::created`]
    /// or [`Self::not_created`] says how it went, what a monitor finds there is ours.
    pub(crate) fn creating(&self, place: Place) {
        let mut record = self.lock();
        // Bounded: a command that never said how it went (a panic) leaves no lasting trace.
        if record.pending.len() >= PENDING {
            record.pending.clear();
        }
        record.pending.insert(place);
    }

    /// The creation announced at `place` failed (the name was taken, say).
    pub(crate) fn not_created(&self, place: &Place) {
        self.lock().pending.remove(place);
    }

    /// A command created the file or directory `entry` describes, as it is now, at `place`.
    pub(crate) fn created(&self, entry: &Entry, place: Place) {
        let inode = (entry.id.dev, entry.id.ino);
        let first = if entry.kind.is_dir() {
            Born::Dir
        } else {
            Born::File(State::from(entry))
        };
        let creation = Creation {
            birth: entry.id.birth,
            first,
            places: vec![place],
        };
        let mut record = self.lock();
        record.mode(entry);
        record.pending.remove(&creation.places[0]);
        if record.born.insert(inode, creation).is_none() {
            record.remember(Remembered::Born(inode));
        }
    }

    /// A command put the file it created, described by `entry`, at `place` too (renamed it
    /// there).
    pub(crate) fn placed(&self, entry: &Entry, place: Place) {
        let mut record = self.lock();
        record.mode(entry);
        if let Some(creation) = record.born.get_mut(&(entry.id.dev, entry.id.ino))
            && !creation.places.contains(&place)
        {
            creation.places.push(place);
        }
    }

    /// A command starts changing the file that is now as `entry` describes.
    pub(crate) fn writing(&self, entry: &Entry) {
        let mut record = self.lock();
        record.mode(entry);
        record.step(State::from(entry), Step::Writing);
    }

    /// A command turned the file that was as `before` describes into `after` (another inode
    /// when it replaced the file).
    pub(crate) fn wrote(&self, before: &Entry, after: &Entry) {
        let mut record = self.lock();
        record.mode(after);
        record.step(State::from(before), Step::To(State::from(after)));
    }

    /// Whether `entry` has the mode and owner our commands saw or left in its state (or we know
    /// of none for it): if not, someone else changed them, which is not ours to hide.
    pub(crate) fn attributes_as_ours(&self, entry: &Entry) -> bool {
        let Some(attributes) = entry.attributes else {
            return true;
        };
        self.lock()
            .modes
            .get(&State::from(entry))
            .is_none_or(|ours| *ours == attributes)
    }

    /// A command deletes the file that is now as `entry` describes.
    pub(crate) fn deleting(&self, entry: &Entry) {
        self.lock().step(State::from(entry), Step::Deleted);
    }

    /// Whether the file found as `now` at `place`, not known before, was created there by our
    /// commands.
    pub(crate) fn made_file(&self, now: &Entry, place: &Place) -> bool {
        let mut record = self.lock();
        match record.born_at(now, place) {
            Some(Born::File(first)) => record.leads(first, State::from(now)),
            Some(Born::Dir) => false,
            None => record.pending.contains(place),
        }
    }

    /// Whether the directory found as `now` at `place`, not known before, was created there
    /// by our commands.
    pub(crate) fn made_dir(&self, now: &Entry, place: &Place) -> bool {
        let record = self.lock();
        match record.born_at(now, place) {
            Some(born) => born == Born::Dir,
            None => record.pending.contains(place),
        }
    }

    /// Whether our commands changed the file at `place` from `previous` (as last reported) to
    /// `now`: step by step, or by deleting it and creating another there.
    pub(crate) fn changed(&self, previous: &Entry, now: &Entry, place: Option<&Place>) -> bool {
        let mut record = self.lock();
        if record.leads(State::from(previous), State::from(now)) {
            return true;
        }
        let first = match place.and_then(|place| record.born_at(now, place)) {
            Some(Born::File(first)) => first,
            Some(Born::Dir) | None => return false,
        };
        record.leads_to_deletion(State::from(previous)) && record.leads(first, State::from(now))
    }

    /// Whether the deletion of the file last reported as `entry` is ours; `temporary` says
    /// whether it had one of our temporary names.
    pub(crate) fn removed(&self, entry: &Entry, temporary: bool) -> bool {
        let record = self.lock();
        record.leads_to_deletion(State::from(entry)) || (temporary && record.born(entry).is_some())
    }

    /// Whether moving `entry` away from a name (temporary or not) is ours: we created it under
    /// a temporary name, and our steps lead from its first state to the one found now.
    pub(crate) fn moved(&self, entry: &Entry, from_temporary: bool) -> bool {
        if !from_temporary {
            return false;
        }
        let mut record = self.lock();
        match record.born(entry).map(|creation| creation.first) {
            Some(Born::File(first)) => record.leads(first, State::from(entry)),
            Some(Born::Dir) => true,
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{FileId, Kind};

    fn place(name: &[u8]) -> Place {
        (1, 2, name.into())
    }

    fn file(ino: u64, birth: u64, size: u64, mtime_sec: i64) -> Entry {
        Entry {
            kind: Kind::File(crate::event::FileType::Regular),
            id: FileId { dev: 1, ino, birth },
            size,
            mtime_sec,
            mtime_nsec: 0,
            links: 1,
            attributes: None,
        }
    }

    #[test]
    fn what_is_found_where_we_are_creating_is_ours_until_we_say_how_it_went() {
        let record = SelfWrites::new();
        let found = file(9, 100, 0, 1);
        let mut dir = found;
        dir.kind = Kind::Dir;
        record.creating(place(b".fsbridge-tmp-1"));
        record.creating(place(b"new-dir"));
        record.creating(place(b"taken"));

        assert!(record.made_file(&found, &place(b".fsbridge-tmp-1")));
        assert!(record.made_dir(&dir, &place(b"new-dir")));
        assert!(!record.made_file(&found, &place(b"elsewhere")));
        record.not_created(&place(b"taken"));
        assert!(
            !record.made_file(&found, &place(b"taken")),
            "the name was someone else's"
        );
        record.created(&file(10, 100, 0, 1), place(b".fsbridge-tmp-1"));
        assert!(
            !record.made_file(&found, &place(b".fsbridge-tmp-1")),
            "once created, only the inode we made counts"
        );
    }

    #[test]
    fn a_state_seen_mid_write_leads_only_where_the_write_ended() {
        let record = SelfWrites::new();
        let born = file(5, 100, 0, 1);
        record.created(&born, place(b".fsbridge-tmp-2"));
        record.writing(&born);
        let halfway = file(5, 100, 4096, 2);
        let written = file(5, 100, 8192, 3);
        let theirs = file(5, 100, 8199, 4);

        assert!(record.made_file(&halfway, &place(b".fsbridge-tmp-2")));
        assert!(
            record.changed(&halfway, &file(5, 100, 6000, 2), None),
            "still writing"
        );
        record.wrote(&born, &written);
        record.placed(&written, place(b"f"));

        assert!(record.changed(&halfway, &written, None));
        assert!(record.moved(&written, true));
        assert!(
            !record.changed(&halfway, &theirs, None),
            "appended after our write ended"
        );
        assert!(
            !record.moved(&theirs, true),
            "our rename carried someone else's append"
        );
    }

    #[test]
    fn our_appends_chain_and_anyone_elses_breaks_the_chain() {
        let record = SelfWrites::new();
        let start = file(7, 100, 10, 1);
        let first = file(7, 100, 20, 2);
        let second = file(7, 100, 30, 3);
        record.wrote(&start, &first);
        record.wrote(&first, &second);

        assert!(record.changed(&start, &first, None));
        assert!(
            record.changed(&start, &second, None),
            "two of ours in one window"
        );
        assert!(
            !record.changed(&start, &file(7, 100, 35, 4), None),
            "someone appended after"
        );
        assert!(
            !record.changed(&file(7, 100, 5, 0), &second, None),
            "someone appended before"
        );
        assert!(
            !record.changed(&file(7, 200, 10, 1), &file(7, 200, 20, 2), None),
            "reused inode"
        );
    }

    #[test]
    fn a_file_we_deleted_and_created_again_under_its_name_is_ours() {
        let record = SelfWrites::new();
        let old = file(3, 1, 5, 1);
        let new_born = file(4, 2, 0, 2);
        let new = file(4, 2, 6, 3);
        record.deleting(&old);
        record.created(&new_born, place(b"f"));
        record.wrote(&new_born, &new);

        assert!(record.changed(&old, &new, Some(&place(b"f"))));
        assert!(
            !record.changed(&old, &new, Some(&place(b"g"))),
            "made elsewhere"
        );
        assert!(
            !record.changed(&file(3, 1, 7, 9), &new, Some(&place(b"f"))),
            "changed by someone before our deletion"
        );
    }

    #[test]
    fn a_state_seen_mid_write_continues_the_chain() {
        let record = SelfWrites::new();
        let start = file(7, 0, 10, 1);
        let middle = file(7, 0, 15, 2);
        let end = file(7, 0, 20, 2);
        record.writing(&start);

        assert!(record.changed(&start, &middle, None));
        record.wrote(&start, &end);

        assert!(record.changed(&middle, &end, None));
    }

    #[test]
    fn a_created_file_is_ours_only_along_our_steps_and_where_we_put_it() {
        let record = SelfWrites::new();
        let born = file(9, 5, 0, 1);
        let filled = file(9, 5, 4, 2);
        let temp = place(b".fsbridge-tmp-0123456789abcdef");
        record.created(&born, temp.clone());
        record.wrote(&born, &filled);
        record.placed(&filled, place(b"f"));

        assert!(record.made_file(&filled, &place(b"f")));
        assert!(record.made_file(&filled, &temp));
        assert!(
            !record.made_file(&filled, &place(b"link")),
            "another name for it"
        );
        assert!(
            !record.made_file(&file(9, 5, 9, 3), &place(b"f")),
            "written to by someone else too"
        );
        assert!(
            !record.made_file(&file(10, 5, 4, 2), &place(b"f")),
            "not created by us"
        );
    }

    #[test]
    fn deletions_are_ours_when_we_deleted_that_state_or_it_was_temporary() {
        let record = SelfWrites::new();
        let ours = file(1, 0, 1, 1);
        let overwritten = file(4, 0, 1, 1);
        let replacement = file(5, 0, 2, 2);
        let temp = file(2, 0, 0, 1);
        record.deleting(&ours);
        record.wrote(&overwritten, &replacement);
        record.deleting(&replacement);
        record.created(&temp, place(b"t"));

        assert!(record.removed(&ours, false));
        assert!(
            record.removed(&overwritten, false),
            "overwritten, then deleted, in one window"
        );
        assert!(
            !record.removed(&file(1, 0, 2, 2), false),
            "changed by someone first"
        );
        assert!(record.removed(&temp, true));
        assert!(
            !record.removed(&temp, false),
            "our file, deleted by someone under its name"
        );
        assert!(!record.removed(&file(3, 0, 1, 1), true));
    }

    #[test]
    fn the_record_is_bounded() {
        let record = SelfWrites::new();
        let total = u64::try_from(REMEMBERED).unwrap() + 10;
        for ino in 0..total {
            record.writing(&file(ino, 0, 0, 0));
        }

        assert_eq!(record.lock().steps.len(), REMEMBERED);
        assert!(
            !record.changed(&file(0, 0, 0, 0), &file(0, 0, 1, 1), None),
            "the oldest is forgotten"
        );
        assert!(record.changed(&file(total - 1, 0, 0, 0), &file(total - 1, 0, 1, 1), None));
    }
}

//! Rule 3 of #4: writers take `flock` on an existing file and wait for it, up to the timeout.
//!
//! The "other writer" here is the test itself holding the lock on the file, the way any
//! cooperating program does. Waiting is observed with deadlines, never with a fixed sleep.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fsbridge::{WriteCommand, WriteErrorKind, WriteOutcome, Writer};
use rustix::fs::{FlockOperation, flock};

/// How long a writer is given to show that it waits: it must not finish within this.
const STILL_WAITING: Duration = Duration::from_millis(300);

fn setup(lock_timeout: Duration) -> (tempfile::TempDir, PathBuf, Writer) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let writer = Writer::new(&root)
        .with_fsync(false)
        .with_lock_timeout(lock_timeout);
    (dir, root, writer)
}

/// Runs `command` on a thread; its outcome arrives on the returned channel.
fn apply_in_background(writer: &Writer, command: WriteCommand) -> mpsc::Receiver<WriteOutcome> {
    let (sender, receiver) = mpsc::channel();
    let writer = writer.clone();
    std::thread::spawn(move || sender.send(writer.blocking_apply(command)).unwrap());
    receiver
}

#[test]
fn append_lands_after_a_locked_write_of_another_program_not_inside_it() {
    let (_dir, root, writer) = setup(Duration::from_secs(10));
    let path = root.join("log.txt");
    let mut other = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    flock(&other, FlockOperation::LockExclusive).unwrap();
    other.write_all(b"first half, ").unwrap();

    let outcome = apply_in_background(&writer, WriteCommand::append("log.txt", "appended\n"));
    let early = outcome.recv_timeout(STILL_WAITING);
    other.write_all(b"second half\n").unwrap();
    flock(&other, FlockOperation::Unlock).unwrap();
    let outcome = outcome.recv_timeout(Duration::from_secs(10)).unwrap();

    assert!(early.is_err(), "the append did not wait for the lock");
    assert!(outcome.is_ok(), "{outcome:?}");
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "first half, second half\nappended\n"
    );
}

#[test]
fn overwrite_waits_for_the_lock_then_replaces() {
    let (_dir, root, writer) = setup(Duration::from_secs(10));
    let path = root.join("state.json");
    fs::write(&path, "old").unwrap();
    let other = File::open(&path).unwrap();
    flock(&other, FlockOperation::LockExclusive).unwrap();

    let outcome = apply_in_background(&writer, WriteCommand::overwrite("state.json", "new"));
    let early = outcome.recv_timeout(STILL_WAITING);
    let during = fs::read_to_string(&path).unwrap();
    drop(other);
    let outcome = outcome.recv_timeout(Duration::from_secs(10)).unwrap();

    assert!(early.is_err(), "the overwrite did not wait for the lock");
    assert_eq!(during, "old");
    assert!(outcome.is_ok(), "{outcome:?}");
    assert_eq!(fs::read_to_string(&path).unwrap(), "new");
}

#[test]
fn lock_held_past_the_timeout_is_busy_and_changes_nothing() {
    let timeout = Duration::from_millis(150);
    let (_dir, root, writer) = setup(timeout);
    let path = root.join("held.txt");
    fs::write(&path, "old").unwrap();
    let other = File::open(&path).unwrap();
    flock(&other, FlockOperation::LockExclusive).unwrap();

    let started = Instant::now();
    let outcomes = [
        writer.blocking_apply(WriteCommand::append("held.txt", "x")),
        writer.blocking_apply(WriteCommand::overwrite("held.txt", "x")),
        writer.blocking_apply(WriteCommand::delete("held.txt")),
    ];
    let elapsed = started.elapsed();

    for outcome in &outcomes {
        assert_eq!(
            outcome.error().map(fsbridge::WriteError::kind),
            Some(WriteErrorKind::Busy),
            "{outcome:?}"
        );
        assert!(outcome.message().unwrap().contains("held.txt"));
    }
    assert!(elapsed >= timeout * 3, "gave up after {elapsed:?}");
    assert_eq!(fs::read_to_string(&path).unwrap(), "old");
}

/// Two writers (as two processes would be) append and overwrite the same file at once. Because
/// an overwrite replaces the inode, an appender that locked the old one must notice and go to
/// the new one: the file always ends as the last overwrite followed by whole records only.
#[test]
fn concurrent_writers_leave_only_whole_records() {
    let (_dir, root, first) = setup(Duration::from_secs(10));
    let second = Writer::new(&root).with_fsync(false);
    let record_len = 64 * 1024;

    let threads: Vec<_> = (0..4_u8)
        .map(|thread| {
            let writer = if thread.is_multiple_of(2) {
                first.clone()
            } else {
                second.clone()
            };
            std::thread::spawn(move || {
                for round in 0..40_u8 {
                    let command = if thread == 3 && round.is_multiple_of(8) {
                        WriteCommand::overwrite("shared.bin", b"RESET\n".to_vec())
                    } else {
                        let mut record = vec![b'a' + thread; record_len - 1];
                        record.push(b'\n');
                        WriteCommand::append("shared.bin", record)
                    };
                    let outcome = writer.blocking_apply(command);
                    assert!(outcome.is_ok(), "{outcome:?}");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }

    let contents = fs::read(root.join("shared.bin")).unwrap();
    let body = contents.strip_prefix(b"RESET\n").unwrap_or(&contents);
    for record in body.split_inclusive(|&byte| byte == b'\n') {
        assert_eq!(record.len(), record_len, "a record was cut or mixed");
        assert!(
            record[..record_len - 1]
                .iter()
                .all(|&byte| byte == record[0])
        );
    }
}

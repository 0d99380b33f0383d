//! What each operation does, and rules 5 (too large, special files) and 6 (applied once) of #4.

use std::fs;
use std::path::{Path, PathBuf};

use fsbridge::{WriteCommand, WriteErrorKind, WriteOutcome, Writer};

fn setup() -> (tempfile::TempDir, PathBuf, Writer) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let writer = Writer::new(&root).with_fsync(false);
    (dir, root, writer)
}

fn kind(outcome: &WriteOutcome) -> Option<WriteErrorKind> {
    outcome.error().map(fsbridge::WriteError::kind)
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

#[test]
fn create_makes_missing_parents_and_refuses_an_existing_file() {
    let (_dir, root, writer) = setup();

    let first = writer.blocking_apply(WriteCommand::create("a/b/c.txt", "hello\n"));
    let second = writer.blocking_apply(WriteCommand::create("a/b/c.txt", "other"));

    assert_eq!(first.size(), Some(6));
    assert_eq!(first.is_atomic(), Some(true));
    assert_eq!(kind(&second), Some(WriteErrorKind::Exists));
    assert!(second.message().unwrap().contains("a/b/c.txt"));
    assert_eq!(read(&root.join("a/b/c.txt")), "hello\n");
}

#[test]
fn append_creates_a_missing_file_then_extends_it() {
    let (_dir, root, writer) = setup();

    let first = writer.blocking_apply(WriteCommand::append("log/today.txt", "one\n"));
    let second = writer.blocking_apply(WriteCommand::append("log/today.txt", "two\n"));

    assert_eq!(first.size(), Some(4));
    assert_eq!(second.size(), Some(8));
    assert_eq!(read(&root.join("log/today.txt")), "one\ntwo\n");
}

#[test]
fn overwrite_creates_or_replaces() {
    let (_dir, root, writer) = setup();

    let created = writer.blocking_apply(WriteCommand::overwrite("p.bin", [0_u8, 1, 2]));
    let replaced = writer.blocking_apply(WriteCommand::overwrite("p.bin", [9_u8]));

    assert_eq!(created.size(), Some(3));
    assert_eq!(replaced.size(), Some(1));
    assert_eq!(replaced.is_atomic(), Some(true));
    assert_eq!(fs::read(root.join("p.bin")).unwrap(), [9]);
}

#[test]
fn delete_removes_a_file_and_names_what_is_missing_or_a_directory() {
    let (_dir, root, writer) = setup();
    fs::write(root.join("a.txt"), "x").unwrap();
    fs::create_dir(root.join("dir")).unwrap();

    let deleted = writer.blocking_apply(WriteCommand::delete("a.txt"));
    let missing = writer.blocking_apply(WriteCommand::delete("a.txt"));
    let missing_parent = writer.blocking_apply(WriteCommand::delete("nope/a.txt"));
    let directory = writer.blocking_apply(WriteCommand::delete("dir"));

    assert!(deleted.is_ok(), "{deleted:?}");
    assert!(!root.join("a.txt").exists());
    assert_eq!(kind(&missing), Some(WriteErrorKind::NotFound));
    assert_eq!(kind(&missing_parent), Some(WriteErrorKind::NotFound));
    assert!(
        !root.join("nope").exists(),
        "delete must not create parents"
    );
    assert_eq!(kind(&directory), Some(WriteErrorKind::NotAFile));
    assert!(root.join("dir").is_dir());
}

#[test]
fn mkdir_makes_parents_accepts_an_existing_directory_and_refuses_a_file_in_the_way() {
    let (_dir, root, writer) = setup();
    fs::write(root.join("file"), "x").unwrap();

    let made = writer.blocking_apply(WriteCommand::mkdir("archive/2026/12"));
    let again = writer.blocking_apply(WriteCommand::mkdir("archive/2026/12"));
    let blocked = writer.blocking_apply(WriteCommand::mkdir("file"));
    let blocked_below = writer.blocking_apply(WriteCommand::mkdir("file/sub"));
    let file_as_parent = writer.blocking_apply(WriteCommand::create("file/a.txt", "x"));

    assert!(made.is_ok() && again.is_ok(), "{made:?} {again:?}");
    assert!(root.join("archive/2026/12").is_dir());
    assert_eq!(kind(&blocked), Some(WriteErrorKind::Exists));
    assert_eq!(kind(&blocked_below), Some(WriteErrorKind::Exists));
    assert_eq!(kind(&file_as_parent), Some(WriteErrorKind::Exists));
}

#[test]
fn missing_root_is_not_found_until_it_appears_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("later");
    let writer = Writer::new(&root).with_fsync(false);

    let before = writer.blocking_apply(WriteCommand::create("a.txt", "x"));
    let mkdir_before = writer.blocking_apply(WriteCommand::mkdir("d"));
    fs::create_dir(&root).unwrap();
    let after = writer.blocking_apply(WriteCommand::create("a.txt", "x"));

    for outcome in [&before, &mkdir_before] {
        assert_eq!(kind(outcome), Some(WriteErrorKind::NotFound));
        assert!(outcome.message().unwrap().contains(root.to_str().unwrap()));
    }
    assert!(after.is_ok(), "{after:?}");
    assert_eq!(read(&root.join("a.txt")), "x");
}

#[test]
fn replaced_root_is_used_as_it_is_now() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    let writer = Writer::new(&root).with_fsync(false);
    writer.blocking_apply(WriteCommand::create("first.txt", "1"));

    fs::rename(&root, dir.path().join("old")).unwrap();
    fs::create_dir(&root).unwrap();
    let outcome = writer.blocking_apply(WriteCommand::create("second.txt", "2"));

    assert!(outcome.is_ok(), "{outcome:?}");
    assert!(root.join("second.txt").exists());
    assert!(!dir.path().join("old/second.txt").exists());
}

#[test]
fn command_over_the_limit_is_too_large_before_anything_is_written() {
    let (_dir, root, writer) = setup();
    let writer = writer.with_max_bytes(10);
    fs::write(root.join("kept.txt"), "old").unwrap();

    let outcomes = [
        writer.blocking_apply(WriteCommand::create("new/a.txt", vec![b'x'; 11])),
        writer.blocking_apply(WriteCommand::overwrite("kept.txt", vec![b'x'; 11])),
        writer.blocking_apply(WriteCommand::append("kept.txt", vec![b'x'; 11])),
    ];
    let at_limit = writer.blocking_apply(WriteCommand::create("ten.txt", vec![b'x'; 10]));

    for outcome in &outcomes {
        assert_eq!(kind(outcome), Some(WriteErrorKind::TooLarge), "{outcome:?}");
        assert!(outcome.message().unwrap().contains("11 bytes"));
    }
    assert!(!root.join("new").exists());
    assert_eq!(read(&root.join("kept.txt")), "old");
    assert!(at_limit.is_ok());
}

#[test]
fn fifo_as_a_target_is_refused_without_blocking() {
    let (_dir, root, writer) = setup();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("pipe"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();

    let outcomes: Vec<_> = [
        WriteCommand::append("pipe", "x"),
        WriteCommand::overwrite("pipe", "x"),
        WriteCommand::delete("pipe"),
        WriteCommand::create("pipe", "x"),
    ]
    .into_iter()
    .map(|command| writer.blocking_apply(command))
    .collect();

    assert_eq!(kind(&outcomes[0]), Some(WriteErrorKind::NotAFile));
    assert_eq!(kind(&outcomes[1]), Some(WriteErrorKind::NotAFile));
    assert_eq!(kind(&outcomes[2]), Some(WriteErrorKind::NotAFile));
    assert_eq!(kind(&outcomes[3]), Some(WriteErrorKind::Exists));
    assert!(outcomes[0].message().unwrap().contains("fifo"));
    let metadata = fs::symlink_metadata(root.join("pipe")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(
        &metadata.file_type()
    ));
}

#[test]
fn device_as_a_target_is_refused() {
    let (_dir, root, writer) = setup();
    // /dev/null's numbers; making a device node needs root (CAP_MKNOD).
    let made = rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("null"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    );
    if made.is_err() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI must run the writer tests as root: cannot make a device node ({made:?})"
        );
        eprintln!("SKIPPED device_as_a_target_is_refused: cannot make a device node ({made:?})");
        return;
    }

    let appended = writer.blocking_apply(WriteCommand::append("null", "x"));
    let overwritten = writer.blocking_apply(WriteCommand::overwrite("null", "x"));

    assert_eq!(kind(&appended), Some(WriteErrorKind::NotAFile));
    assert_eq!(kind(&overwritten), Some(WriteErrorKind::NotAFile));
    assert!(appended.message().unwrap().contains("device"));
}

#[test]
fn command_with_an_applied_id_is_not_applied_again() {
    let (_dir, root, writer) = setup();

    let first = writer.blocking_apply(WriteCommand::append("log.txt", "once\n").with_id("7"));
    let again = writer.blocking_apply(WriteCommand::append("log.txt", "once\n").with_id("7"));
    let other = writer.blocking_apply(WriteCommand::append("log.txt", "more\n").with_id("8"));

    assert!(!first.is_duplicate());
    assert!(again.is_duplicate() && again.is_ok());
    assert_eq!(again.size(), Some(5));
    assert!(!other.is_duplicate());
    assert_eq!(read(&root.join("log.txt")), "once\nmore\n");
}

#[test]
fn failed_command_may_be_sent_again_with_the_same_id() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("later");
    let writer = Writer::new(&root).with_fsync(false);

    let failed = writer.blocking_apply(WriteCommand::create("a.txt", "x").with_id("1"));
    fs::create_dir(&root).unwrap();
    let retried = writer.blocking_apply(WriteCommand::create("a.txt", "x").with_id("1"));

    assert!(!failed.is_ok());
    assert!(retried.is_ok() && !retried.is_duplicate(), "{retried:?}");
}

#[test]
fn clones_share_the_memory_of_applied_ids() {
    let (_dir, _root, writer) = setup();
    let clone = writer.clone();

    writer.blocking_apply(WriteCommand::create("a.txt", "x").with_id("1"));
    let again = clone.blocking_apply(WriteCommand::create("a.txt", "x").with_id("1"));

    assert!(again.is_duplicate());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_apply_gives_the_same_outcome_as_the_blocking_twin() {
    let (_dir, root, writer) = setup();

    let created = writer.apply(WriteCommand::create("a.txt", "hello")).await;
    let refused = writer.apply(WriteCommand::create("../a.txt", "x")).await;

    assert_eq!(created.size(), Some(5));
    assert_eq!(kind(&refused), Some(WriteErrorKind::Escape));
    assert_eq!(read(&root.join("a.txt")), "hello");
}

#[test]
fn defaults_are_fsync_five_seconds_and_64_mib() {
    let writer = Writer::new("/srv/out");

    assert!(writer.fsync());
    assert_eq!(writer.lock_timeout(), std::time::Duration::from_secs(5));
    assert_eq!(writer.max_bytes(), 64 * 1024 * 1024);
}

#[test]
fn fsync_on_gives_the_same_results() {
    let (_dir, root, writer) = setup();
    let writer = writer.with_fsync(true);

    let outcomes = [
        writer.blocking_apply(WriteCommand::create("d/a.txt", "1")),
        writer.blocking_apply(WriteCommand::append("d/a.txt", "2")),
        writer.blocking_apply(WriteCommand::overwrite("d/a.txt", "3")),
        writer.blocking_apply(WriteCommand::mkdir("e/f")),
        writer.blocking_apply(WriteCommand::delete("d/a.txt")),
    ];

    assert!(outcomes.iter().all(WriteOutcome::is_ok), "{outcomes:?}");
    assert!(root.join("e/f").is_dir());
}

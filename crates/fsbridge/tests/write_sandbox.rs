//! Rule 1 of #4: a writer never creates, changes or deletes anything outside its root.
//!
//! Each test arranges a root next to an `outside` directory holding a file, sends commands that
//! try to reach it (`..`, absolute paths, symbolic links of every kind, a link swapped in while
//! writes run), and compares the outside tree before and after, byte for byte.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fsbridge::{WriteCommand, WriteErrorKind, WriteOutcome, Writer};

/// A root and an `outside` directory next to it, holding `secret.txt`.
struct Sandbox {
    _dir: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        fs::create_dir(&root).unwrap();
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("secret.txt"), "secret").unwrap();
        Self {
            _dir: dir,
            root,
            outside,
        }
    }

    fn writer(&self) -> Writer {
        Writer::new(&self.root).with_fsync(false)
    }
}

/// Every entry beneath `dir` with its content (files), target (links) or nothing (directories).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut entries = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            let metadata = fs::symlink_metadata(&path).unwrap();
            let description = if metadata.is_symlink() {
                format!("link -> {}", fs::read_link(&path).unwrap().display())
            } else if metadata.is_dir() {
                pending.push(path.clone());
                "dir".to_string()
            } else {
                format!("file {:?}", fs::read(&path).unwrap())
            };
            entries.insert(path, description);
        }
    }
    entries
}

/// Every kind of command on `path`.
fn every_op(path: &str) -> Vec<WriteCommand> {
    vec![
        WriteCommand::create(path, "x"),
        WriteCommand::append(path, "x"),
        WriteCommand::overwrite(path, "x"),
        WriteCommand::delete(path),
        WriteCommand::mkdir(path),
    ]
}

fn kind(outcome: &WriteOutcome) -> Option<WriteErrorKind> {
    outcome.error().map(fsbridge::WriteError::kind)
}

#[test]
fn dot_dot_is_refused_and_nothing_outside_changes() {
    let sandbox = Sandbox::new();
    let writer = sandbox.writer();
    let before = snapshot(&sandbox.outside);

    let outcomes: Vec<_> = [
        "../outside/secret.txt",
        "../outside/new.txt",
        "a/../../outside/x",
    ]
    .into_iter()
    .flat_map(every_op)
    .map(|command| writer.blocking_apply(command))
    .collect();

    for outcome in &outcomes {
        assert!(
            matches!(
                kind(outcome),
                Some(WriteErrorKind::Escape | WriteErrorKind::Invalid)
            ),
            "{outcome:?}"
        );
        let message = outcome.message().unwrap();
        assert!(message.contains("outside"), "{message}");
    }
    assert_eq!(snapshot(&sandbox.outside), before);
    assert!(snapshot(&sandbox.root).is_empty());
}

#[test]
fn absolute_path_outside_the_root_is_an_escape() {
    let sandbox = Sandbox::new();
    let writer = sandbox.writer();
    let before = snapshot(&sandbox.outside);
    let target = sandbox.outside.join("secret.txt");

    let outcomes: Vec<_> = every_op(target.to_str().unwrap())
        .into_iter()
        .map(|command| writer.blocking_apply(command))
        .collect();

    for outcome in &outcomes {
        assert_eq!(kind(outcome), Some(WriteErrorKind::Escape), "{outcome:?}");
        assert!(outcome.message().unwrap().contains("secret.txt"));
    }
    assert_eq!(snapshot(&sandbox.outside), before);
}

#[test]
fn absolute_path_inside_the_root_is_taken_relative_to_it() {
    let sandbox = Sandbox::new();
    let writer = sandbox.writer();
    let inside = sandbox.root.join("notes/a.txt");

    let outcome = writer.blocking_apply(WriteCommand::create(&inside, "hello"));

    assert!(outcome.is_ok(), "{outcome:?}");
    assert_eq!(fs::read_to_string(&inside).unwrap(), "hello");
}

#[test]
fn empty_nul_dot_and_root_paths_are_invalid() {
    let sandbox = Sandbox::new();
    let writer = sandbox.writer();
    let root = sandbox.root.to_str().unwrap().to_string();

    let outcomes: Vec<_> = ["", "a\0b", ".", "./", &root, &format!("{root}/.")]
        .into_iter()
        .flat_map(every_op)
        .map(|command| writer.blocking_apply(command))
        .collect();

    for outcome in &outcomes {
        assert_eq!(kind(outcome), Some(WriteErrorKind::Invalid), "{outcome:?}");
    }
    assert!(snapshot(&sandbox.root).is_empty());
}

#[test]
fn symlink_to_a_file_outside_is_refused() {
    let sandbox = Sandbox::new();
    let writer = sandbox.writer();
    symlink(
        sandbox.outside.join("secret.txt"),
        sandbox.root.join("absolute"),
    )
    .unwrap();
    symlink("../outside/secret.txt", sandbox.root.join("relative")).unwrap();
    let before = snapshot(&sandbox.outside);

    let outcomes: Vec<_> = ["absolute", "relative"]
        .into_iter()
        .flat_map(|name| {
            vec![
                WriteCommand::append(name, "x"),
                WriteCommand::overwrite(name, "x"),
                WriteCommand::delete(name),
                WriteCommand::mkdir(name),
            ]
        })
        .map(|command| writer.blocking_apply(command))
        .collect();

    for outcome in &outcomes {
        assert_eq!(kind(outcome), Some(WriteErrorKind::Escape), "{outcome:?}");
    }
    assert_eq!(snapshot(&sandbox.outside), before);
}

#[test]
fn dangling_symlink_to_outside_is_refused_and_nothing_is_created_there() {
    let sandbox = Sandbox::new();
    let writer = sandbox.writer();
    symlink("../outside/new.txt", sandbox.root.join("dangling")).unwrap();
    symlink(
        sandbox.outside.join("new.txt"),
        sandbox.root.join("dangling_absolute"),
    )
    .unwrap();
    let before = snapshot(&sandbox.outside);

    let outcomes: Vec<_> = ["dangling", "dangling_absolute"]
        .into_iter()
        .flat_map(|name| {
            vec![
                WriteCommand::create(name, "x"),
                WriteCommand::append(name, "x"),
                WriteCommand::overwrite(name, "x"),
            ]
        })
        .map(|command| writer.blocking_apply(command))
        .collect();

    for outcome in &outcomes {
        assert_eq!(kind(outcome), Some(WriteErrorKind::Escape), "{outcome:?}");
    }
    assert_eq!(snapshot(&sandbox.outside), before);
    assert!(!sandbox.outside.join("new.txt").exists());
}

#[test]
fn symlink_to_a_directory_outside_is_refused_anywhere_in_the_path() {
    let sandbox = Sandbox::new();
    let writer = sandbox.writer();
    fs::create_dir(sandbox.root.join("real")).unwrap();
    symlink("../../outside", sandbox.root.join("real/link")).unwrap();
    symlink(&sandbox.outside, sandbox.root.join("link")).unwrap();
    let before = snapshot(&sandbox.outside);

    let outcomes: Vec<_> = [
        "link/secret.txt",
        "link/new.txt",
        "link/deep/new.txt",
        "real/link/secret.txt",
        "real/link/deep/er/new.txt",
    ]
    .into_iter()
    .flat_map(every_op)
    .map(|command| writer.blocking_apply(command))
    .collect();

    for outcome in &outcomes {
        assert_eq!(kind(outcome), Some(WriteErrorKind::Escape), "{outcome:?}");
    }
    assert_eq!(snapshot(&sandbox.outside), before);
}

#[test]
fn symlink_inside_the_root_is_followed_for_writes_and_removed_itself_by_delete() {
    let sandbox = Sandbox::new();
    let writer = sandbox.writer();
    fs::create_dir(sandbox.root.join("data")).unwrap();
    fs::write(sandbox.root.join("data/real.txt"), "old").unwrap();
    fs::create_dir(sandbox.root.join("other")).unwrap();
    symlink("../data/real.txt", sandbox.root.join("other/link.txt")).unwrap();

    let overwritten = writer.blocking_apply(WriteCommand::overwrite("other/link.txt", "new"));
    let appended = writer.blocking_apply(WriteCommand::append("other/link.txt", "er"));
    let created = writer.blocking_apply(WriteCommand::create("other/link.txt", "x"));
    let deleted = writer.blocking_apply(WriteCommand::delete("other/link.txt"));

    assert!(
        overwritten.is_ok() && appended.is_ok(),
        "{overwritten:?} {appended:?}"
    );
    assert_eq!(kind(&created), Some(WriteErrorKind::Exists));
    assert!(deleted.is_ok(), "{deleted:?}");
    assert_eq!(
        fs::read_to_string(sandbox.root.join("data/real.txt")).unwrap(),
        "newer"
    );
    assert!(fs::symlink_metadata(sandbox.root.join("other/link.txt")).is_err());
}

/// The kernel resolves beneath the root at the moment of each lookup, so a directory that is
/// swapped for a link to outside while writes run can only make those writes fail.
#[test]
fn swapped_symlink_never_redirects_a_write_outside() {
    let sandbox = Sandbox::new();
    let writer = sandbox.writer();
    fs::create_dir(sandbox.root.join("sub")).unwrap();
    symlink("../outside", sandbox.root.join("swap")).unwrap();
    let before = snapshot(&sandbox.outside);
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let swapper = {
        let (stop, swaps, root) = (Arc::clone(&stop), Arc::clone(&swaps), sandbox.root.clone());
        std::thread::spawn(move || {
            let dir = fs::File::open(&root).unwrap();
            while !stop.load(Ordering::Relaxed) {
                // `sub` is the real directory one moment and the link to outside the next.
                rustix::fs::renameat_with(
                    &dir,
                    "sub",
                    &dir,
                    "swap",
                    rustix::fs::RenameFlags::EXCHANGE,
                )
                .unwrap();
                swaps.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut applied, mut escaped, mut total) = (0_u64, 0_u64, 0_u64);
    while total < 4000 || ((applied == 0 || escaped == 0) && Instant::now() < deadline) {
        let path = format!("sub/f{}", total % 20);
        let command = match total % 5 {
            0 => WriteCommand::create(&path, "x"),
            1 => WriteCommand::overwrite(&path, "xy"),
            2 => WriteCommand::append(&path, "z"),
            3 => WriteCommand::delete(&path),
            _ => WriteCommand::mkdir(format!("sub/d{}/e", total % 7)),
        };
        let outcome = writer.blocking_apply(command);
        match kind(&outcome) {
            None => applied += 1,
            Some(WriteErrorKind::Escape) => escaped += 1,
            Some(_) => {}
        }
        total += 1;
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();

    println!(
        "{total} commands, {applied} applied, {escaped} escapes refused, {} swaps",
        swaps.load(Ordering::Relaxed)
    );
    assert!(applied > 0 && escaped > 0, "the race was not exercised");
    assert_eq!(snapshot(&sandbox.outside), before);
}

#[test]
fn a_root_replaced_by_a_link_elsewhere_is_refused_and_one_made_again_is_used() {
    let sandbox = Sandbox::new();
    let writer = sandbox.writer();
    assert!(
        writer
            .blocking_apply(WriteCommand::create("first.txt", "1"))
            .is_ok()
    );
    let before = snapshot(&sandbox.outside);

    fs::remove_dir_all(&sandbox.root).unwrap();
    symlink(&sandbox.outside, &sandbox.root).unwrap();
    let outcomes: Vec<_> = every_op("planted.txt")
        .into_iter()
        .map(|command| writer.blocking_apply(command))
        .collect();
    fs::remove_file(&sandbox.root).unwrap();
    fs::create_dir(&sandbox.root).unwrap();
    let again = writer.blocking_apply(WriteCommand::create("again.txt", "2"));

    for outcome in &outcomes {
        assert_eq!(kind(outcome), Some(WriteErrorKind::Escape), "{outcome:?}");
        assert!(
            outcome.message().unwrap().contains("replaced"),
            "{outcome:?}"
        );
    }
    assert_eq!(snapshot(&sandbox.outside), before);
    assert!(again.is_ok(), "{again:?}");
    assert!(sandbox.root.join("again.txt").exists());
}

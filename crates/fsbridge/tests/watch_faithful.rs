//! The faithful-log property: random sequences of file system operations run against a live
//! watch, and the events, applied in order to the tree as it was at `ready`, must give the tree
//! on disk.
//!
//! The case count is small by default so that CI stays quick; set `FSBRIDGE_PROPTEST_CASES` for
//! a longer run, for example `FSBRIDGE_PROPTEST_CASES=2000 cargo nextest run --release -E
//! 'binary(watch_faithful)'`.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fsbridge::{Monitor, TargetKind};
use proptest::prelude::*;
use support::Watch;

/// Relative paths the operations pick from: three names, up to three levels deep, so that
/// operations collide often.
fn path() -> impl Strategy<Value = PathBuf> {
    proptest::collection::vec(prop_oneof![Just("a"), Just("b"), Just("c")], 1..=3)
        .prop_map(|names| names.iter().collect())
}

#[derive(Clone, Debug)]
enum Op {
    Create(PathBuf, usize),
    Write(PathBuf, usize),
    Delete(PathBuf),
    Rename(PathBuf, PathBuf),
    Mkdir(PathBuf),
    RemoveTree(PathBuf),
    /// Replace whatever is there by the other kind.
    Replace(PathBuf),
    /// Create a directory with contents elsewhere and move it in.
    MoveIn(PathBuf),
    /// Move an entry out of the tree.
    MoveOut(PathBuf),
    /// Change an entry's permission bits (always leaving the owner able to read and walk it).
    Chmod(PathBuf, u32),
    /// Let the watch catch up before going on, so that later operations land in later batches.
    CatchUp,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (path(), 0..64usize).prop_map(|(path, size)| Op::Create(path, size)),
        2 => (path(), 1..64usize).prop_map(|(path, size)| Op::Write(path, size)),
        2 => path().prop_map(Op::Delete),
        3 => (path(), path()).prop_map(|(from, to)| Op::Rename(from, to)),
        3 => path().prop_map(Op::Mkdir),
        1 => path().prop_map(Op::RemoveTree),
        1 => path().prop_map(Op::Replace),
        1 => path().prop_map(Op::MoveIn),
        1 => path().prop_map(Op::MoveOut),
        2 => (path(), prop_oneof![Just(0o700), Just(0o711), Just(0o750), Just(0o755)])
            .prop_map(|(path, mode)| Op::Chmod(path, mode)),
        1 => Just(Op::CatchUp),
    ]
}

/// Applies `op` below `root`; operations that do not fit the tree simply fail and are ignored,
/// as they would for a real program.
fn apply(root: &Path, outside: &Path, op: &Op, serial: usize) {
    let at = |path: &Path| root.join(path);
    let _ = match op {
        Op::Create(path, size) => fs::write(at(path), vec![b'x'; *size]),
        Op::Write(path, size) => fs::OpenOptions::new()
            .append(true)
            .open(at(path))
            .and_then(|mut file| std::io::Write::write_all(&mut file, &vec![b'y'; *size])),
        Op::Delete(path) => fs::remove_file(at(path)),
        Op::Rename(from, to) => fs::rename(at(from), at(to)),
        Op::Mkdir(path) => fs::create_dir_all(at(path)),
        Op::RemoveTree(path) => fs::remove_dir_all(at(path)),
        Op::Replace(path) => {
            let target = at(path);
            if target.is_dir() {
                fs::remove_dir_all(&target).and_then(|()| fs::write(&target, "was a dir"))
            } else {
                fs::remove_file(&target).and_then(|()| fs::create_dir(&target))
            }
        }
        Op::MoveIn(path) => {
            let staged = outside.join(format!("in{serial}"));
            fs::create_dir_all(staged.join("a"))
                .and_then(|()| fs::write(staged.join("a/f"), "moved in"))
                .and_then(|()| fs::rename(&staged, at(path)))
        }
        Op::MoveOut(path) => fs::rename(at(path), outside.join(format!("out{serial}"))),
        Op::Chmod(path, mode) => fs::set_permissions(at(path), fs::Permissions::from_mode(*mode)),
        Op::CatchUp => Ok(()),
    };
}

#[derive(Clone, Copy, Debug)]
enum Backend {
    Native {
        settle: Duration,
    },
    /// Native, losing random windows of hints, each followed by an overflow.
    Lossy {
        seed: u64,
    },
    Poll {
        interval: Duration,
    },
}

fn backend() -> impl Strategy<Value = Backend> {
    prop_oneof![
        Just(Backend::Native {
            settle: Duration::ZERO
        }),
        Just(Backend::Native {
            settle: Duration::from_millis(10)
        }),
        Just(Backend::Poll {
            interval: Duration::from_millis(25)
        }),
        any::<u64>().prop_map(|seed| Backend::Lossy { seed }),
    ]
}

/// Runs `ops` on a tree built by `setup`, watched on `backend`, reporting attribute changes or
/// not: attribute updates change nothing in the model, but they must name entries that exist
/// and are of their kind.
fn run_case(setup: &[Op], ops: &[Op], backend: Backend, attributes: bool) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir(&root).unwrap();
        for (serial, op) in setup.iter().enumerate() {
            apply(&root, outside.path(), op, serial);
        }
        let builder = Monitor::builder(&root)
            .with_kind(TargetKind::Dir)
            .with_attributes(attributes);
        let builder = match backend {
            Backend::Native { settle } => builder.with_settle(settle),
            Backend::Poll { interval } => builder.with_poll(interval),
            Backend::Lossy { seed } => builder.with_injected_faults(seed),
        };
        let mut watch = Watch::start(&root, builder).await;

        for (serial, op) in ops.iter().enumerate() {
            if matches!(op, Op::CatchUp) {
                watch.settle_on_disk().await;
            }
            apply(&root, outside.path(), op, setup.len() + serial);
        }

        // Panics (inside the model) on any event that does not fit, and when the model never
        // matches the disk.
        watch.settle_on_disk().await;
    });
}

fn cases() -> u32 {
    std::env::var("FSBRIDGE_PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(24)
}

fn shrink_iterations() -> u32 {
    std::env::var("FSBRIDGE_PROPTEST_SHRINK")
        .ok()
        .and_then(|iterations| iterations.parse().ok())
        .unwrap_or(16)
}

proptest! {
    // Each failing run waits for the deadline: keep shrinking short.
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: shrink_iterations(),
        ..ProptestConfig::default()
    })]

    #[test]
    fn replaying_events_gives_the_tree_on_disk(
        setup in proptest::collection::vec(op(), 0..12),
        ops in proptest::collection::vec(op(), 1..30),
        backend in backend(),
        attributes in any::<bool>(),
    ) {
        run_case(&setup, &ops, backend, attributes);
    }
}

/// A case the property test found: a directory removed and another moved in at the same path
/// in one batch, with the freed inode number reused, was paired as a move onto itself and lost
/// its contents.
#[test]
fn directory_replaced_in_place_by_one_moved_in_keeps_its_contents() {
    use Op::{CatchUp, Create, Delete, Mkdir, MoveIn, RemoveTree, Rename, Replace, Write};
    let path = PathBuf::from;
    let setup = [
        Rename(path("b/a"), path("b/c/b")),
        Rename(path("b/a/c"), path("c")),
        RemoveTree(path("c/a")),
        Rename(path("b/c/b"), path("b/c")),
        Rename(path("a/c/c"), path("b")),
        Mkdir(path("c/a")),
        CatchUp,
        Rename(path("a/b"), path("c/c/a")),
        Delete(path("b/c/b")),
        Rename(path("c"), path("a/b/c")),
    ];
    let ops = [
        RemoveTree(path("a/b/b")),
        Mkdir(path("a/c")),
        Rename(path("c/c"), path("a/a/a")),
        Mkdir(path("b/b")),
        Rename(path("a/a"), path("b")),
        Create(path("b"), 48),
        Rename(path("b/b/c"), path("b/c")),
        Replace(path("b/b")),
        Delete(path("b/c")),
        Rename(path("c"), path("c/b")),
        Create(path("a/a"), 6),
        RemoveTree(path("c/a")),
        MoveIn(path("c/a")),
        Mkdir(path("b/a")),
        Mkdir(path("c")),
        Write(path("a/b"), 54),
        Replace(path("a/b/c")),
    ];

    for _ in 0..3 {
        run_case(
            &setup,
            &ops,
            Backend::Native {
                settle: Duration::from_millis(10),
            },
            false,
        );
    }
}

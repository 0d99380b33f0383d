//! Tests of the reconciler alone, on real temporary directories: the orders it emits and the
//! states it reaches.

use std::fs;

use super::*;
use crate::scan::NoWatches;

/// An index of `root` as it is now, built the way a monitor builds it.
fn indexed(root: &Path) -> Index {
    let mut index = Index::default();
    index.insert(b"", scan::lstat(root).unwrap().unwrap());
    reconcile(
        root,
        &mut index,
        &mut NoWatches,
        Vec::new(),
        &HashSet::new(),
        true,
    );
    index
}

fn names(changes: &[Change]) -> Vec<String> {
    let text = |path: &[u8]| String::from_utf8_lossy(path).into_owned();
    changes
        .iter()
        .map(|change| match change {
            Change::Created { path, .. } => format!("created {}", text(path)),
            Change::Updated { path, .. } => format!("updated {}", text(path)),
            Change::Moved { from, to, .. } => format!("moved {} {}", text(from), text(to)),
            Change::Deleted { path, .. } => format!("deleted {}", text(path)),
        })
        .collect()
}

fn touched(paths: &[&str]) -> Vec<Vec<u8>> {
    paths.iter().map(|path| path.as_bytes().to_vec()).collect()
}

#[test]
fn files_swapped_through_a_temporary_name_are_updates() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a"), "a").unwrap();
    fs::write(dir.path().join("b"), "bb").unwrap();
    let mut index = indexed(dir.path());

    fs::create_dir(dir.path().join("x")).unwrap();
    fs::rename(dir.path().join("a"), dir.path().join("x/t")).unwrap();
    fs::rename(dir.path().join("b"), dir.path().join("a")).unwrap();
    fs::rename(dir.path().join("x/t"), dir.path().join("b")).unwrap();
    let outcome = reconcile(
        dir.path(),
        &mut index,
        &mut NoWatches,
        touched(&["a", "b", "x", "x/t"]),
        &HashSet::new(),
        false,
    );

    assert_eq!(
        names(&outcome.changes),
        ["created x", "updated a", "updated b"]
    );
    assert_eq!(index.get(b"a").unwrap().size, 2);
    assert_eq!(index.get(b"b").unwrap().size, 1);
}

#[test]
fn directories_swapped_through_a_temporary_name_break_the_cycle_and_ask_for_a_rescan() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b"] {
        fs::create_dir(dir.path().join(name)).unwrap();
        fs::write(dir.path().join(name).join(name), name).unwrap();
    }
    let mut index = indexed(dir.path());

    fs::rename(dir.path().join("a"), dir.path().join("t")).unwrap();
    fs::rename(dir.path().join("b"), dir.path().join("a")).unwrap();
    fs::rename(dir.path().join("t"), dir.path().join("b")).unwrap();
    let outcome = reconcile(
        dir.path(),
        &mut index,
        &mut NoWatches,
        touched(&["a", "b", "t"]),
        &HashSet::new(),
        false,
    );

    let again = reconcile(
        dir.path(),
        &mut index,
        &mut NoWatches,
        [],
        &HashSet::new(),
        true,
    );

    assert!(outcome.needs_rescan);
    assert!(!again.needs_rescan);
    let now: Vec<String> = indexed(dir.path())
        .below(b"")
        .map(|(path, _)| String::from_utf8_lossy(path).into())
        .collect();
    let after: Vec<String> = index
        .below(b"")
        .map(|(path, _)| String::from_utf8_lossy(path).into())
        .collect();
    assert_eq!(after, now);
}

#[test]
fn child_moved_out_of_a_moved_directory_follows_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("d")).unwrap();
    fs::write(dir.path().join("d/stays"), "1").unwrap();
    fs::write(dir.path().join("d/leaves"), "2").unwrap();
    let mut index = indexed(dir.path());

    fs::rename(dir.path().join("d"), dir.path().join("e")).unwrap();
    fs::rename(dir.path().join("e/leaves"), dir.path().join("left")).unwrap();
    let outcome = reconcile(
        dir.path(),
        &mut index,
        &mut NoWatches,
        touched(&["d", "e", "e/leaves", "left"]),
        &HashSet::new(),
        false,
    );

    assert_eq!(
        names(&outcome.changes),
        ["moved d e", "moved e/leaves left"]
    );
}

#[test]
fn deletion_inside_a_moved_directory_uses_the_new_path() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("d")).unwrap();
    fs::write(dir.path().join("d/gone"), "1").unwrap();
    let mut index = indexed(dir.path());

    fs::rename(dir.path().join("d"), dir.path().join("e")).unwrap();
    fs::remove_file(dir.path().join("e/gone")).unwrap();
    let outcome = reconcile(
        dir.path(),
        &mut index,
        &mut NoWatches,
        touched(&["d", "e"]),
        &HashSet::new(),
        false,
    );

    assert_eq!(names(&outcome.changes), ["moved d e", "deleted e/gone"]);
}

#[test]
fn removed_directory_with_a_reused_inode_is_replaced_with_its_contents() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("d")).unwrap();
    let mut index = indexed(dir.path());
    let removed: HashSet<Vec<u8>> = touched(&["d"]).into_iter().collect();

    // As if `d` was removed and another directory with the same inode number moved in.
    fs::create_dir(dir.path().join("d/a")).unwrap();
    fs::write(dir.path().join("d/a/f"), "x").unwrap();
    let outcome = reconcile(
        dir.path(),
        &mut index,
        &mut NoWatches,
        touched(&["d"]),
        &removed,
        false,
    );

    assert_eq!(
        names(&outcome.changes),
        ["deleted d", "created d", "created d/a", "created d/a/f"]
    );
}

/// Random operations for the property below: paths from three names, three levels deep.
mod property {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    use proptest::prelude::*;

    use super::*;

    #[derive(Clone, Debug)]
    pub(super) enum Op {
        Create(PathBuf, usize),
        Delete(PathBuf),
        Rename(PathBuf, PathBuf),
        Mkdir(PathBuf),
        RemoveTree(PathBuf),
        MoveIn(PathBuf),
        MoveOut(PathBuf),
    }

    fn path() -> impl Strategy<Value = PathBuf> {
        proptest::collection::vec(prop_oneof![Just("a"), Just("b"), Just("c")], 1..=3)
            .prop_map(|names| names.iter().collect())
    }

    pub(super) fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (path(), 0..8usize).prop_map(|(path, size)| Op::Create(path, size)),
            path().prop_map(Op::Delete),
            (path(), path()).prop_map(|(from, to)| Op::Rename(from, to)),
            path().prop_map(Op::Mkdir),
            path().prop_map(Op::RemoveTree),
            path().prop_map(Op::MoveIn),
            path().prop_map(Op::MoveOut),
        ]
    }

    pub(super) fn apply(root: &Path, outside: &Path, op: &Op, serial: usize) {
        let at = |path: &Path| root.join(path);
        let _ = match op {
            Op::Create(path, size) => fs::write(at(path), vec![b'x'; *size]),
            Op::Delete(path) => fs::remove_file(at(path)),
            Op::Rename(from, to) => fs::rename(at(from), at(to)),
            Op::Mkdir(path) => fs::create_dir_all(at(path)),
            Op::RemoveTree(path) => fs::remove_dir_all(at(path)),
            Op::MoveIn(path) => {
                let staged = outside.join(format!("in{serial}"));
                fs::create_dir_all(staged.join("a"))
                    .and_then(|()| fs::write(staged.join("a/f"), "in"))
                    .and_then(|()| fs::rename(&staged, at(path)))
            }
            Op::MoveOut(path) => fs::rename(at(path), outside.join(format!("out{serial}"))),
        };
    }

    /// Applies `changes` to a model of the index, failing on any change that does not fit.
    pub(super) fn replay(model: &mut BTreeMap<Vec<u8>, bool>, changes: &[Change]) {
        let children = |model: &BTreeMap<Vec<u8>, bool>, path: &[u8]| {
            model
                .keys()
                .filter(|key| index::is_below(key, path))
                .cloned()
                .collect::<Vec<_>>()
        };
        for change in changes {
            match change {
                Change::Created { path, entry } => {
                    assert!(
                        !model.contains_key(path),
                        "created over an entry: {change:?}"
                    );
                    let parent = index::parent(path).unwrap();
                    assert!(
                        parent.is_empty() || model.get(parent) == Some(&true),
                        "no parent: {change:?}"
                    );
                    model.insert(path.clone(), entry.kind.is_dir());
                }
                Change::Updated { path, .. } => {
                    assert_eq!(
                        model.get(path),
                        Some(&false),
                        "update of no file: {change:?}"
                    );
                }
                Change::Deleted { path, .. } => {
                    assert!(model.contains_key(path), "deletion of nothing: {change:?}");
                    assert!(
                        children(model, path).is_empty(),
                        "children left: {change:?}"
                    );
                    model.remove(path);
                }
                Change::Moved { from, to, .. } => {
                    assert!(model.contains_key(from), "move of nothing: {change:?}");
                    assert!(!model.contains_key(to), "move onto an entry: {change:?}");
                    assert!(!index::is_below(to, from), "move into itself: {change:?}");
                    let parent = index::parent(to).unwrap();
                    assert!(
                        parent.is_empty() || model.get(parent) == Some(&true),
                        "no parent: {change:?}"
                    );
                    let moved = children(model, from);
                    let is_dir = model.remove(from).unwrap();
                    model.insert(to.clone(), is_dir);
                    for old in moved {
                        let is_dir = model.remove(&old).unwrap();
                        model.insert(index::rebase(&old, from, to), is_dir);
                    }
                }
            }
        }
    }

    pub(super) fn model_of(index: &Index) -> BTreeMap<Vec<u8>, bool> {
        index
            .below(b"")
            .map(|(path, entry)| (path.to_vec(), entry.kind.is_dir()))
            .collect()
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: std::env::var("FSBRIDGE_PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(256),
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// However the tree changed, one full reconciliation emits a sequence of changes that
    /// replays correctly and leaves the index equal to the tree (or asks for another pass,
    /// after which it is).
    #[test]
    fn full_reconciliation_replays_and_reaches_the_tree(
        setup in proptest::collection::vec(property::op(), 0..20),
        ops in proptest::collection::vec(property::op(), 1..20),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        for (serial, op) in setup.iter().enumerate() {
            property::apply(dir.path(), outside.path(), op, serial);
        }
        let mut index = indexed(dir.path());
        let mut model = property::model_of(&index);

        for (serial, op) in ops.iter().enumerate() {
            property::apply(dir.path(), outside.path(), op, setup.len() + serial);
        }
        let mut outcome =
            reconcile(dir.path(), &mut index, &mut NoWatches, [], &HashSet::new(), true);
        property::replay(&mut model, &outcome.changes);
        if outcome.needs_rescan {
            outcome = reconcile(dir.path(), &mut index, &mut NoWatches, [], &HashSet::new(), true);
            property::replay(&mut model, &outcome.changes);
        }

        proptest::prop_assert!(!outcome.needs_rescan);
        proptest::prop_assert_eq!(&model, &property::model_of(&index));
        proptest::prop_assert_eq!(property::model_of(&index), property::model_of(&indexed(dir.path())));
    }
}

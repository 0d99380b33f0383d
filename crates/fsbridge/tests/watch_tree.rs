//! Changes inside a watched directory: creation of nested trees, deletions of subtrees, renames,
//! atomic saves and hard links, on the real file system.

mod support;

use std::fs;
use std::os::unix::fs::MetadataExt;

use fsbridge::{EventKind, Monitor, TargetKind};
use support::{Backend, Watch, summary};

on_both_backends! {
async fn nested_directories_created_at_full_speed_are_all_reported_parents_first(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut watch = Watch::dir_on(backend, dir.path()).await;

    for round in 0..20 {
        let leaf = dir.path().join(format!("d{round}/a/b/c"));
        fs::create_dir_all(&leaf).unwrap();
        fs::write(leaf.join("f"), "\n").unwrap();
    }
    let events = watch.settle_on_disk().await;

    for round in 0..20 {
        for path in ["", "/a", "/a/b", "/a/b/c", "/a/b/c/f"] {
            let wanted = dir.path().join(format!("d{round}{path}"));
            let position = events.iter().position(|event| event.path == wanted);
            assert!(
                position.is_some(),
                "{} never reported: {:#?}",
                wanted.display(),
                summary(dir.path(), &events)
            );
        }
    }
    for event in &events {
        assert!(
            // An update when a walk caught a file between its creation and its write.
            matches!(
                event.kind,
                EventKind::DirCreated | EventKind::FileCreated { .. } | EventKind::FileUpdated { .. }
            ),
            "unexpected {event:?}"
        );
    }
}

async fn removing_a_subtree_reports_every_entry_children_first(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().join("top");
    for sub in ["x/y", "x/z", "w"] {
        fs::create_dir_all(top.join(sub)).unwrap();
        fs::write(top.join(sub).join("file"), "data").unwrap();
    }
    let before = support::Tree::snapshot(&top).nodes.len();
    let mut watch = Watch::dir_on(backend, dir.path()).await;

    fs::remove_dir_all(&top).unwrap();
    let events = watch.settle_on_disk().await;

    let deleted: Vec<_> = events
        .iter()
        .filter(|event| matches!(event.kind, EventKind::FileDeleted | EventKind::DirDeleted))
        .collect();
    assert_eq!(deleted.len(), before, "{:#?}", summary(dir.path(), &events));
    assert_eq!(
        deleted.last().unwrap().path,
        top,
        "the subtree's root is deleted last"
    );
    // Children before parents is also checked by the model, which refuses to delete a
    // directory that still has children.
}

async fn rename_within_the_tree_is_one_move(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.txt"), "hello").unwrap();
    fs::create_dir_all(dir.path().join("d/inner")).unwrap();
    fs::write(dir.path().join("d/inner/f"), "x").unwrap();
    let mut watch = Watch::dir_on(backend, dir.path()).await;

    fs::rename(dir.path().join("a.txt"), dir.path().join("b.txt")).unwrap();
    let file_events = watch.settle_on_disk().await;
    fs::rename(dir.path().join("d"), dir.path().join("e")).unwrap();
    let dir_events = watch.settle_on_disk().await;

    assert_eq!(
        summary(dir.path(), &file_events),
        ["file_moved a.txt -> b.txt"]
    );
    assert_eq!(summary(dir.path(), &dir_events), ["dir_moved d -> e"]);
}

async fn rename_into_a_new_directory_is_a_move_after_its_creation(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.txt"), "hello").unwrap();
    let mut watch = Watch::dir_on(backend, dir.path()).await;

    fs::create_dir(dir.path().join("new")).unwrap();
    fs::rename(dir.path().join("a.txt"), dir.path().join("new/a.txt")).unwrap();
    let events = watch.settle_on_disk().await;

    let names = summary(dir.path(), &events);
    assert!(
        names.contains(&"file_moved a.txt -> new/a.txt".to_string()),
        "{names:#?}"
    );
}

async fn directory_moved_in_is_created_with_its_contents_and_moved_out_is_deleted_with_them(backend: Backend) {
    let outside = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(outside.path().join("pkg/sub")).unwrap();
    fs::write(outside.path().join("pkg/sub/f"), "1").unwrap();
    fs::write(outside.path().join("pkg/g"), "22").unwrap();
    let mut watch = Watch::dir_on(backend, dir.path()).await;

    fs::rename(outside.path().join("pkg"), dir.path().join("pkg")).unwrap();
    let moved_in = watch.settle_on_disk().await;
    fs::rename(dir.path().join("pkg"), outside.path().join("back")).unwrap();
    let moved_out = watch.settle_on_disk().await;

    assert_eq!(
        summary(dir.path(), &moved_in),
        [
            "dir_created pkg",
            "file_created pkg/g",
            "dir_created pkg/sub",
            "file_created pkg/sub/f"
        ]
    );
    assert_eq!(
        summary(dir.path(), &moved_out),
        [
            "file_deleted pkg/sub/f",
            "dir_deleted pkg/sub",
            "file_deleted pkg/g",
            "dir_deleted pkg"
        ]
    );
}

async fn hard_link_is_a_creation_not_a_move(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a"), "same inode").unwrap();
    let mut watch = Watch::dir_on(backend, dir.path()).await;

    fs::hard_link(dir.path().join("a"), dir.path().join("b")).unwrap();
    let events = watch.settle_on_disk().await;

    assert_eq!(summary(dir.path(), &events), ["file_created b"]);
    assert_eq!(
        fs::metadata(dir.path().join("a")).unwrap().ino(),
        fs::metadata(dir.path().join("b")).unwrap().ino()
    );
}

async fn atomic_save_is_one_update_of_the_target(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("notes.txt");
    fs::write(&target, "old").unwrap();
    // A window long enough that a loaded machine cannot split the save across two batches.
    // A poll may still fall between the write and the rename: then the temporary file is seen
    // for a moment, but the target is still never deleted.
    let builder = backend
        .builder(dir.path())
        .with_kind(TargetKind::Dir)
        .with_settle(std::time::Duration::from_millis(300));
    let mut watch = Watch::start(dir.path(), builder).await;

    let temporary = dir.path().join(".notes.txt.swp");
    fs::write(&temporary, "new content").unwrap();
    fs::rename(&temporary, &target).unwrap();
    let events = watch.settle_on_disk().await;

    let names = summary(dir.path(), &events);
    if backend == Backend::Native {
        assert_eq!(names, ["file_updated notes.txt"]);
    } else {
        assert!(!names.contains(&"file_deleted notes.txt".to_string()), "{names:#?}");
    }
    let last = events.last().unwrap();
    assert_eq!(last.path, target);
    assert_eq!(
        last.kind,
        EventKind::FileUpdated {
            size: 11,
            file_type: fsbridge::FileType::Regular,
            change: fsbridge::UpdateKind::Content,
            attributes: None,
        }
    );
}

async fn atomic_save_seen_in_two_steps_never_deletes_the_target(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("notes.txt");
    fs::write(&target, "old").unwrap();
    let mut watch = Watch::dir_on(backend, dir.path()).await;

    let temporary = dir.path().join("notes.txt.tmp");
    fs::write(&temporary, "new content").unwrap();
    watch.settle_on_disk().await;
    fs::rename(&temporary, &target).unwrap();
    let events = watch.settle_on_disk().await;

    let names = summary(dir.path(), &events);
    assert!(
        names.contains(&"file_updated notes.txt".to_string()),
        "{names:#?}"
    );
    assert!(
        !names.contains(&"file_deleted notes.txt".to_string()),
        "{names:#?}"
    );
}

async fn directory_recreated_within_one_window_is_watched_again(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("d");
    fs::create_dir(&sub).unwrap();
    fs::write(sub.join("old"), "1").unwrap();
    // The new directory usually gets the freed inode number back: only the deletion event can
    // tell the two apart.
    let builder = backend.builder(dir.path())
        .with_kind(TargetKind::Dir)
        .with_settle(std::time::Duration::from_millis(300));
    let mut watch = Watch::start(dir.path(), builder).await;

    fs::remove_dir_all(&sub).unwrap();
    fs::create_dir(&sub).unwrap();
    watch.settle_on_disk().await;
    support::put(&sub.join("new"), "2");
    let events = watch.settle_on_disk().await;

    assert_eq!(summary(dir.path(), &events), ["file_created d/new"]);
}
}

#[tokio::test]
async fn writes_within_the_settle_window_are_one_update() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("log");
    fs::write(&target, "").unwrap();
    let builder = Monitor::builder(dir.path())
        .with_kind(TargetKind::Dir)
        .with_settle(std::time::Duration::from_millis(500));
    let mut watch = Watch::start(dir.path(), builder).await;

    let mut file = fs::OpenOptions::new().append(true).open(&target).unwrap();
    for _ in 0..10 {
        std::io::Write::write_all(&mut file, b"line\n").unwrap();
    }
    let events = watch.settle_on_disk().await;

    assert_eq!(summary(dir.path(), &events), ["file_updated log"]);
    assert_eq!(
        events[0].kind,
        EventKind::FileUpdated {
            size: 50,
            file_type: fsbridge::FileType::Regular,
            change: fsbridge::UpdateKind::Content,
            attributes: None,
        }
    );
}

#[tokio::test]
async fn moves_across_the_boundary_say_so_and_plain_ones_do_not() {
    let outside = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(outside.path().join("pkg/sub")).unwrap();
    fs::write(outside.path().join("pkg/sub/f"), "1").unwrap();
    let mut watch = Watch::dir(dir.path()).await;

    fs::rename(outside.path().join("pkg"), dir.path().join("pkg")).unwrap();
    let moved_in = watch.settle_on_disk().await;
    fs::write(dir.path().join("plain"), "x").unwrap();
    fs::remove_file(dir.path().join("plain")).unwrap();
    fs::write(dir.path().join("made"), "x").unwrap();
    // Written under a temporary name and renamed inside the tree, as an editor saves: when both
    // fall in one window the file is new to the stream, but it came from nowhere outside.
    fs::write(dir.path().join(".saved.tmp"), "x").unwrap();
    fs::rename(dir.path().join(".saved.tmp"), dir.path().join("saved")).unwrap();
    let plain = watch.settle_on_disk().await;
    fs::rename(dir.path().join("pkg"), outside.path().join("back")).unwrap();
    let moved_out = watch.settle_on_disk().await;

    let causes =
        |events: &[fsbridge::Event]| events.iter().map(|event| event.cause).collect::<Vec<_>>();
    assert_eq!(causes(&moved_in), [Some(fsbridge::Cause::MovedIn); 3]);
    assert!(causes(&plain).iter().all(Option::is_none), "{plain:#?}");
    assert_eq!(causes(&moved_out), [Some(fsbridge::Cause::MovedOut); 3]);
    let line = serde_json::to_value(&moved_in[0]).unwrap();
    assert_eq!(line["reason"], "moved_in");
}

on_both_backends! {
    async fn ignored_entries_and_everything_below_them_are_left_out(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("node_modules/pkg")).unwrap();
        let builder = backend
            .builder(dir.path())
            .with_kind(TargetKind::Dir)
            .with_ignore(["node_modules", "*.log", "build/*.o"]);
        let mut watch = Watch::start(dir.path(), builder).await;

        fs::write(dir.path().join("node_modules/pkg/index.js"), "x").unwrap();
        fs::create_dir_all(dir.path().join("src/node_modules")).unwrap();
        fs::write(dir.path().join("app.log"), "x").unwrap();
        fs::create_dir_all(dir.path().join("build")).unwrap();
        fs::write(dir.path().join("build/main.o"), "x").unwrap();
        support::put(&dir.path().join("src/main.rs"), "fn main() {}");
        let events = watch.until(|event| event.path.ends_with("src/main.rs")).await;

        let mut names = summary(dir.path(), &events);
        names.sort();
        assert_eq!(names, ["dir_created build", "dir_created src", "file_created src/main.rs"]);
    }
}

/// The target's parent is watched too (for the target's own coming and going), so a rename
/// between it and the tree is seen whole; it still crosses the tree's boundary.
#[tokio::test]
async fn moves_between_the_tree_and_its_parent_say_so() {
    let parent = tempfile::tempdir().unwrap();
    let root = parent.path().join("tree");
    fs::create_dir(&root).unwrap();
    fs::write(parent.path().join("beside"), "1").unwrap();
    let mut watch = Watch::dir(&root).await;

    fs::rename(parent.path().join("beside"), root.join("came")).unwrap();
    let moved_in = watch.settle_on_disk().await;
    fs::rename(root.join("came"), parent.path().join("left")).unwrap();
    let moved_out = watch.settle_on_disk().await;

    let causes =
        |events: &[fsbridge::Event]| events.iter().map(|event| event.cause).collect::<Vec<_>>();
    assert_eq!(
        causes(&moved_in),
        [Some(fsbridge::Cause::MovedIn)],
        "{moved_in:#?}"
    );
    assert_eq!(
        causes(&moved_out),
        [Some(fsbridge::Cause::MovedOut)],
        "{moved_out:#?}"
    );
}

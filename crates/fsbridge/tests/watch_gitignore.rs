//! `--gitignore`: the tree's `.gitignore` files leave entries out, ignored subtrees cost no
//! watches, and an edit of a `.gitignore` takes effect while running.

mod support;

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use fsbridge::{Event, Monitor, TargetKind};
use support::{Backend, put, summary};

async fn start(backend: Backend, root: &Path) -> Monitor {
    let mut monitor = backend
        .builder(root)
        .with_kind(TargetKind::Dir)
        .with_gitignore(true)
        .with_initial(true)
        .build()
        .unwrap();
    let ready = support::next(&mut monitor).await.expect("ready");
    assert_eq!(ready.name(), "ready");
    monitor
}

/// Events until one is about `path`, which is included.
async fn until(monitor: &mut Monitor, path: &Path) -> Vec<Event> {
    let mut taken = Vec::new();
    loop {
        let event = support::next(monitor)
            .await
            .unwrap_or_else(|| panic!("no event about {}; so far {taken:#?}", path.display()));
        let done = event.path == path;
        taken.push(event);
        if done {
            return taken;
        }
    }
}

/// The inode numbers this process's inotify instances watch, from `/proc/self/fdinfo`.
fn watched_inodes() -> HashSet<u64> {
    let mut inodes = HashSet::new();
    for entry in fs::read_dir("/proc/self/fdinfo").unwrap() {
        let Ok(info) = fs::read_to_string(entry.unwrap().path()) else {
            continue;
        };
        for line in info.lines().filter(|line| line.starts_with("inotify wd:")) {
            let ino = line
                .split_whitespace()
                .find_map(|field| field.strip_prefix("ino:"))
                .expect("an inode field");
            inodes.insert(u64::from_str_radix(ino, 16).unwrap());
        }
    }
    inodes
}

on_both_backends! {
    async fn gitignored_entries_are_neither_reported_nor_walked(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for sub in [".git/objects", "target/debug", "src/generated", "docs"] {
            fs::create_dir_all(root.join(sub)).unwrap();
        }
        fs::write(root.join(".gitignore"), "target/\n*.log\n").unwrap();
        fs::write(root.join("src/.gitignore"), "generated/\n!keep.log\n").unwrap();
        for file in ["a.log", "src/keep.log", "src/main.rs", "target/debug/app", ".git/HEAD"] {
            fs::write(root.join(file), "x").unwrap();
        }
        let mut monitor = start(backend, root).await;

        put(&root.join("docs/end.md"), "end");
        let events = until(&mut monitor, &root.join("docs/end.md")).await;

        let mut names = summary(root, &events);
        names.sort();
        assert_eq!(
            names,
            [
                "dir_created docs",
                "dir_created src",
                "file_created .gitignore",
                "file_created docs/end.md",
                "file_created src/.gitignore",
                "file_created src/keep.log",
                "file_created src/main.rs",
            ]
        );
    }

    async fn an_edited_gitignore_takes_effect_while_running(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join("build")).unwrap();
        fs::write(root.join(".gitignore"), "*.log\nbuild/\n").unwrap();
        fs::write(root.join("a.log"), "a").unwrap();
        fs::write(root.join("build/out.o"), "o").unwrap();
        fs::write(root.join("b.txt"), "b").unwrap();
        let mut monitor = start(backend, root).await;
        until(&mut monitor, &root.join("b.txt")).await;

        // Now logs count and text files do not: the log and the build directory appear, the
        // text file leaves, said as a deletion for that reason.
        put(&root.join(".gitignore"), "*.txt\n");
        let events = until(&mut monitor, &root.join("build/out.o")).await;
        let mut names = summary(root, &events);
        names.sort();
        assert_eq!(
            names,
            [
                "dir_created build",
                "file_created a.log",
                "file_created build/out.o",
                "file_deleted b.txt",
                "file_updated .gitignore",
            ]
        );
        let left = events.iter().find(|event| event.name() == "file_deleted").unwrap();
        assert_eq!(left.cause, Some(fsbridge::Cause::Ignored));
        assert!(root.join("b.txt").exists());
        // A change to the now ignored file is not reported: the next event is another file's.
        fs::write(root.join("b.txt"), "changed").unwrap();
        put(&root.join("c.md"), "c");
        let events = until(&mut monitor, &root.join("c.md")).await;
        assert_eq!(summary(root, &events), ["file_created c.md"]);

        // Without the .gitignore, the text file is back.
        fs::remove_file(root.join(".gitignore")).unwrap();
        let mut names = summary(root, &until(&mut monitor, &root.join("b.txt")).await);
        names.sort();
        assert_eq!(names, ["file_created b.txt", "file_deleted .gitignore"]);
    }
}

#[tokio::test]
async fn ignored_subtrees_cost_no_watches() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for sub in [
        ".git/objects/ab",
        "node_modules/pkg/lib",
        "target/debug",
        "src",
    ] {
        fs::create_dir_all(root.join(sub)).unwrap();
    }
    fs::write(root.join(".gitignore"), "node_modules/\ntarget/\n").unwrap();
    let inode = |sub: &str| fs::metadata(root.join(sub)).unwrap().ino();
    let mut monitor = start(Backend::Native, root).await;
    put(&root.join("src/lib.rs"), "x");
    until(&mut monitor, &root.join("src/lib.rs")).await;

    let watched = watched_inodes();

    assert!(watched.contains(&inode("")), "the target is watched");
    assert!(watched.contains(&inode("src")), "src is watched");
    for ignored in [
        ".git",
        ".git/objects",
        "node_modules",
        "node_modules/pkg",
        "target",
        "target/debug",
    ] {
        assert!(!watched.contains(&inode(ignored)), "{ignored} is watched");
    }
}

on_both_backends! {
    async fn a_gitignore_moved_or_deleted_with_its_directory_stops_applying_there(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for sub in ["a", "gone"] {
            fs::create_dir(root.join(sub)).unwrap();
            fs::write(root.join(sub).join(".gitignore"), "*.log\n").unwrap();
        }
        let mut monitor = start(backend, root).await;

        // Each step waits for its own event, so the next one happens in a later batch.
        fs::rename(root.join("a"), root.join("b")).unwrap();
        until(&mut monitor, &root.join("b")).await;
        fs::remove_dir_all(root.join("gone")).unwrap();
        until(&mut monitor, &root.join("gone")).await;
        fs::create_dir(root.join("a")).unwrap();
        fs::create_dir(root.join("gone")).unwrap();
        until(&mut monitor, &root.join("gone")).await;
        put(&root.join("b/still.log"), "x");
        put(&root.join("a/new.log"), "x");
        put(&root.join("gone/new.log"), "x");
        let events = until(&mut monitor, &root.join("gone/new.log")).await;

        assert_eq!(summary(root, &events), ["file_created a/new.log", "file_created gone/new.log"]);
    }
}
